"""Weights of the TF classes: transformers' tf_model.h5 both ways, and PyTorch checkpoints in (no torch).

Names. Every variable's Keras path, less the model's own name, is its name in transformers' tf_model.h5
(`roberta/encoder/layer_._0/attention/self/query/kernel`). The PyTorch state-dict name follows from it by
the declarative table TF_TO_PT below; Dense kernels are stored transposed ((in, out) in TF, (out, in) in
PyTorch). PyTorch checkpoints are read into numpy by roberta.weight_files (safetensors, or the
pytorch_model.bin zip through a restricted unpickler).

tf_model.h5 layout (what tf-keras's save_weights writes and transformers' loader reads): root attribute
`layer_names` (the model's top-level layers), and per layer a group whose attribute `weight_names` lists
`<model name>/<weight name>:0`, each a dataset at that path inside the group. The LM head's group also holds
the embeddings, because transformers' LM head owns them (its decoder is the embedding layer).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile

import numpy as np

from roberta._io import make_save_directory
from roberta.config import CONFIG_NAME, RobertaConfig, prepare_config
from roberta.hub import resolve_file
from roberta.weight_files import CheckpointError, find_weight_files, read_numpy_weights

logger = logging.getLogger(__name__)

TF_WEIGHTS_NAME = "tf_model.h5"

# transformers' TF name -> PyTorch state-dict name: (regex, replacement), applied in order.
TF_TO_PT = (
    (r"layer_\._(\d+)", r"layer.\1"),
    (r"/kernel$", "/weight"),
    (r"/gamma$", "/weight"),  # LayerNormalization
    (r"/beta$", "/bias"),
    (r"_embeddings/embeddings$", "_embeddings/weight"),  # position / token type tables
    (r"/", "."),
)
TRANSPOSED = re.compile(r"/kernel$")  # Dense kernels: (in, out) in TF, (out, in) in PyTorch
# PyTorch names that are aliases or buffers, with no TF variable of their own.
PT_ONLY = re.compile(r"(^|\.)lm_head\.decoder\.(weight|bias)$|(^|\.)position_ids$|(^|\.)token_type_ids$")
# Extra weights a top-level layer's h5 group holds (transformers' LM head owns the embedding layer).
H5_GROUP_EXTRAS = {"lm_head": "roberta/embeddings/"}
_H5_ATTR_LIMIT = 64512  # HDF5 object header limit; longer attributes are split into name0, name1, ...


def tf_to_pt(name: str) -> str:
    for pattern, repl in TF_TO_PT:
        name = re.sub(pattern, repl, name)
    return name


def weight_name(variable) -> str:
    """Keras path less the model name: `tf_roberta_model/roberta/pooler/dense/kernel` -> `roberta/pooler/...`."""
    return variable.path.split("/", 1)[1]


def named_weights(model) -> dict[str, object]:
    model.build_in_name_scope()
    return {weight_name(v): v for v in model.weights}


# ---- reading ---------------------------------------------------------------------------------------------
def _read_attr(group, name: str) -> list[str]:
    if name in group.attrs:
        values = list(group.attrs[name])
    else:  # split attribute: name0, name1, ...
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values.extend(group.attrs[f"{name}{i}"])
            i += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def read_tf_h5(path: str) -> dict[str, np.ndarray]:
    """transformers' tf_model.h5 -> {weight name without model name and ':0': array}."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            out = {}
            for layer in _read_attr(f, "layer_names"):
                group = f[layer]
                for full in _read_attr(group, "weight_names"):
                    name = full.split("/", 1)[1] if "/" in full else full
                    out[name.removesuffix(":0")] = np.asarray(group[full])
            return out
    except OSError as err:
        raise CheckpointError(f"{path} could not be read as an HDF5 weights file (truncated or corrupt?): "
                              f"{err}") from None


def tf_weights_from_pt(state: dict[str, np.ndarray], names) -> dict[str, np.ndarray]:
    """PyTorch-named arrays -> {TF name: array} for the TF names `names` that the checkpoint holds. A base
    checkpoint (no `roberta.` prefix) fits a model whose names have it, as in the PyTorch loader."""
    if not any(k.startswith("roberta.") for k in state):
        state = {f"roberta.{k}": v for k, v in state.items()}
    out = {}
    for name in names:
        value = state.get(tf_to_pt(name))
        if value is not None:
            out[name] = value.T if TRANSPOSED.search(name) else value
    return out


def assign_weights(model, values: dict[str, np.ndarray], ignore_mismatched_sizes: bool = False) -> dict:
    """Assign arrays to the model's variables by name; -> loading info (missing, unexpected, mismatched)."""
    variables = named_weights(model)
    mismatched = []
    for name, variable in variables.items():
        if name not in values:
            continue
        value = values[name]
        if tuple(value.shape) != tuple(variable.shape):
            if not ignore_mismatched_sizes:
                raise ValueError(f"Error loading {type(model).__name__}: {name} has shape {tuple(value.shape)} in the "
                                 f"checkpoint but {tuple(variable.shape)} in the model. Pass "
                                 f"ignore_mismatched_sizes=True to re-initialise it (e.g. a new num_labels).")
            mismatched.append(name)
            continue
        variable.assign(value.astype(variable.dtype))
    missing = [n for n in variables if n not in values or n in mismatched]
    unexpected = [n for n in values if n not in variables]
    head = [n for n in missing if not n.startswith("roberta/")]  # a new task head: expected before fine-tuning
    if head:
        logger.info("Weights of %s newly initialized (not in the checkpoint): %s. This is expected for a new "
                    "task head: fine-tune the model before using it for predictions.", type(model).__name__, head)
    if len(head) < len(missing):
        logger.warning("Weights of %s MISSING from the checkpoint and randomly initialized: %s",
                       type(model).__name__, [n for n in missing if n not in head])
    if unexpected:
        logger.info("Checkpoint weights not used by %s: %s", type(model).__name__, unexpected)
    return {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": mismatched, "error_msgs": []}


_HUB_KWARGS = ("cache_dir", "revision", "local_files_only", "token")
_IGNORED_KWARGS = ("force_download", "resume_download", "proxies", "trust_remote_code", "_from_auto",
                   "_from_pipeline", "mirror", "use_safetensors")


def load_pretrained(cls, path_or_id, *model_args, config=None, from_pt: bool = False,
                    ignore_mismatched_sizes: bool = False, output_loading_info: bool = False, **kwargs):
    if model_args:
        raise TypeError(f"{cls.__name__}.from_pretrained takes no extra positional arguments; got {model_args}")
    hub = {k: kwargs.pop(k, None) for k in _HUB_KWARGS}
    hub["local_files_only"] = bool(hub["local_files_only"])
    for name in _IGNORED_KWARGS:
        kwargs.pop(name, None)
    config, unused = prepare_config(RobertaConfig, path_or_id, config, hub, kwargs)
    if unused:
        raise TypeError(f"{cls.__name__}.from_pretrained got arguments that are neither loading options nor config "
                        f"attributes: {sorted(unused)}")
    model = cls(config)
    names = list(named_weights(model))
    h5 = None if from_pt else resolve_file(path_or_id, TF_WEIGHTS_NAME, required=False, **hub)
    if h5 is not None:
        values, source = read_tf_h5(h5), h5
    else:
        files = find_weight_files(path_or_id, hub, None, required=False)
        if not files:
            what = "PyTorch weights (model.safetensors / pytorch_model.bin)" if from_pt else \
                f"{TF_WEIGHTS_NAME} or PyTorch weights (model.safetensors / pytorch_model.bin)"
            raise CheckpointError(f"no {what} found for {os.fspath(path_or_id)!r}")
        state = read_numpy_weights(files)
        unused = [k for k in state if PT_ONLY.search(k)]
        values, source = tf_weights_from_pt({k: v for k, v in state.items() if k not in unused}, names), files[0]
        leftover = set(state) - set(unused) - {tf_to_pt(n) for n in names} - {f"roberta.{tf_to_pt(n)}" for n in names}
        if leftover:
            logger.info("PyTorch weights not used by %s: %s", cls.__name__, sorted(leftover))
    info = assign_weights(model, values, ignore_mismatched_sizes)
    config._name_or_path = os.fspath(path_or_id)
    logger.info("Loaded %s from %s", cls.__name__, source)
    return (model, info) if output_loading_info else model


# ---- writing ---------------------------------------------------------------------------------------------
def _write_attr(group, name: str, values: list[str]) -> None:
    data = np.asarray([v.encode("utf8") for v in values])
    chunks = max(1, -(-data.nbytes // _H5_ATTR_LIMIT))
    if chunks == 1:
        group.attrs[name] = data
        return
    for i, part in enumerate(np.array_split(data, chunks)):
        group.attrs[f"{name}{i}"] = part


def write_tf_h5(model, path: str) -> None:
    """Write transformers' tf_model.h5 layout (see module docstring)."""
    import h5py

    weights = named_weights(model)
    layers = list(dict.fromkeys(name.split("/", 1)[0] for name in weights))
    with h5py.File(path, "w") as f:
        _write_attr(f, "layer_names", layers)
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.21.0"  # the tf-keras whose layout this is
        for layer in layers:
            group = f.create_group(layer)
            extra = H5_GROUP_EXTRAS.get(layer)
            mine = [n for n in weights if n.startswith(layer + "/") or (extra and n.startswith(extra))]
            full = [f"{model.name}/{n}:0" for n in mine]
            _write_attr(group, "weight_names", full)
            for name, key in zip(mine, full):
                value = weights[name].numpy()
                group.create_dataset(key, data=value, dtype=value.dtype)


def save_pretrained(model, save_directory, saved_model: bool = False, version: int = 1, **kwargs) -> None:
    """config.json + tf_model.h5 written into a temp folder and moved into place (a crash leaves the old
    files); with saved_model=True also saved_model/<version>."""
    import tensorflow as tf

    kwargs.pop("is_main_process", None)
    if kwargs.pop("push_to_hub", False):
        raise NotImplementedError("push_to_hub is not supported; upload the saved folder with huggingface_hub")
    if kwargs:
        raise TypeError(f"save_pretrained got unexpected arguments: {sorted(kwargs)}")
    save_directory = make_save_directory(save_directory)
    model.config.architectures = [type(model).__name__.removeprefix("TF")]
    tmp = tempfile.mkdtemp(prefix=".tmp-save-", dir=save_directory)
    try:
        write_tf_h5(model, os.path.join(tmp, TF_WEIGHTS_NAME))
        model.config.to_json_file(os.path.join(tmp, CONFIG_NAME))
        for name in (TF_WEIGHTS_NAME, CONFIG_NAME):
            os.replace(os.path.join(tmp, name), os.path.join(save_directory, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if saved_model:
        tf.saved_model.save(model, os.path.join(save_directory, "saved_model", str(version)),
                            signatures=model.serving)
    logger.info("Model weights saved in %s", os.path.join(save_directory, TF_WEIGHTS_NAME))
