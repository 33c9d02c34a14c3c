"""Flax weights: the name table between PyTorch state dicts and Flax params, and from/save_pretrained.

Names: a PyTorch key `roberta.encoder.layer.0.attention.self.query.weight` is the Flax path
`roberta/encoder/layer/0/attention/self/query/kernel` (transposed). Only the leaf changes, by the kind of
module that holds it: one declarative table, LEAF_RULES, used in both directions.

Files: flax_model.msgpack is transformers' Flax format (flax.serialization of the params pytree).
PyTorch files (model.safetensors, pytorch_model.bin, shards) are read into numpy by roberta.weight_files,
so this package never imports torch. save_pretrained writes config.json, flax_model.msgpack and a
model.safetensors with PyTorch names that roberta's (and transformers') PyTorch classes load.
"""
from __future__ import annotations

import logging
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from flax.traverse_util import flatten_dict, unflatten_dict

from roberta._io import atomic_write_bytes, make_save_directory
from roberta.config import CONFIG_NAME, prepare_config
from roberta.hub import is_local, resolve_file
from roberta.weight_files import SAFE_WEIGHTS_NAME, CheckpointError, find_weight_files, read_numpy_weights

logger = logging.getLogger(__name__)

FLAX_WEIGHTS_NAME = "flax_model.msgpack"

# (module name pattern, PyTorch leaf, Flax leaf, transpose): first match wins, in both directions.
LEAF_RULES = (
    (r"LayerNorm|layer_norm", "weight", "scale", False),
    (r"LayerNorm|layer_norm", "gamma", "scale", False),  # TF-era checkpoints
    (r"LayerNorm|layer_norm", "beta", "bias", False),
    (r".*_embeddings", "weight", "embedding", False),
    (r".*", "weight", "kernel", True),  # nn.Linear stores (out, in); flax Dense (in, out)
    (r".*", "bias", "bias", False),
)
# PyTorch keys with no Flax parameter: buffers, and the LM decoder's bias (one tensor with lm_head.bias).
PT_ONLY = (r"(^|\.)position_ids$", r"(^|\.)token_type_ids$", r"^(roberta\.)?lm_head\.decoder\.bias$")
TIED_DECODER = r"^lm_head\.decoder\.weight$"  # the word embeddings when config.tie_word_embeddings


def pt_to_flax(state: dict[str, np.ndarray], config) -> dict[tuple, np.ndarray]:
    """PyTorch-named arrays -> flat Flax params {path tuple: array}."""
    out = {}
    for key, value in state.items():
        if any(re.search(p, key) for p in PT_ONLY):
            continue
        if config.tie_word_embeddings and re.search(TIED_DECODER, key):
            continue
        *modules, leaf = key.split(".")
        parent = modules[-1] if modules else ""
        for pattern, pt_leaf, flax_leaf, transpose in LEAF_RULES:
            if leaf == pt_leaf and re.fullmatch(pattern, parent):
                out[(*modules, flax_leaf)] = value.T if transpose else value
                break
        else:
            out[tuple(key.split("."))] = value  # no rule: kept as is, reported as unexpected if unused
    return out


def flax_to_pt(params: dict) -> dict[str, np.ndarray]:
    """Flax params pytree -> PyTorch-named numpy arrays (tied weights are left for the loader to re-tie)."""
    out = {}
    for path, value in flatten_dict(params).items():
        *modules, leaf = path
        parent = modules[-1] if modules else ""
        value = np.asarray(value)
        for pattern, pt_leaf, flax_leaf, transpose in LEAF_RULES:
            if leaf == flax_leaf and re.fullmatch(pattern, parent) and pt_leaf not in ("gamma", "beta"):
                out[".".join((*modules, pt_leaf))] = np.ascontiguousarray(value.T if transpose else value)
                break
        else:
            out[".".join(path)] = value
    return out


def align_prefix(flat: dict[tuple, np.ndarray], expected: set[tuple], prefix: str) -> dict[tuple, np.ndarray]:
    """A base checkpoint loaded into a head gains `roberta/`; a head checkpoint into the base loses it."""
    model_has = any(k[0] == prefix for k in expected)
    ckpt_has = any(k[0] == prefix for k in flat)
    if model_has and not ckpt_has:
        return {(prefix, *k): v for k, v in flat.items()}
    if ckpt_has and not model_has:
        return {k[1:]: v for k, v in flat.items() if k[0] == prefix}
    return flat


def _read_msgpack(path: str) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    try:
        return serialization.msgpack_restore(data)
    except Exception as err:  # msgpack raises several unrelated types on corrupt input
        raise CheckpointError(f"{path} could not be read as a Flax msgpack checkpoint (truncated or corrupt?): "
                              f"{type(err).__name__}: {err}") from None


_MODEL_KWARGS = ("input_shape", "seed", "gradient_checkpointing", "add_pooling_layer")
_IGNORED = ("force_download", "resume_download", "proxies", "trust_remote_code", "_from_auto", "from_flax")


def _read_state(path, hub, from_pt: bool, use_safetensors) -> tuple[dict, str]:
    """The checkpoint as a nested dict in Flax names, and a description of where it came from."""
    msgpack = None if from_pt else resolve_file(path, FLAX_WEIGHTS_NAME, required=False, **hub)
    if msgpack is not None:
        return _read_msgpack(msgpack), msgpack
    files = find_weight_files(path, hub, use_safetensors, required=from_pt)
    if not files:
        where = f"folder {os.fspath(path)!r} (it holds: {', '.join(sorted(os.listdir(path))) or 'nothing'})" \
            if is_local(path) else repr(path)
        raise CheckpointError(f"no weights ({FLAX_WEIGHTS_NAME}, model.safetensors or pytorch_model.bin) in {where}")
    logger.info("Loading PyTorch weights %s into Flax", ", ".join(files))
    return files, ", ".join(files)


def load_flax_model(cls, pretrained_model_name_or_path, *model_args, dtype=jnp.float32, config=None,
                    cache_dir=None, revision=None, local_files_only=False, token=None, from_pt=False,
                    use_safetensors=None, ignore_mismatched_sizes=False, _do_init=True, subfolder="", **kwargs):
    """`cls.from_pretrained(...)` with transformers' Flax keywords; other keywords that name config
    attributes (num_labels=3, is_decoder=True) override the config. With _do_init=False returns
    (model, params) and builds no random weights."""
    path = pretrained_model_name_or_path
    if subfolder:
        if not is_local(path):
            raise NotImplementedError(f"subfolder={subfolder!r} is supported for local folders only, not hub id {path!r}")
        path = os.path.join(path, subfolder)
    for name in _IGNORED:
        kwargs.pop(name, None)
    model_kwargs = {k: kwargs.pop(k) for k in _MODEL_KWARGS if k in kwargs}
    hub = {"cache_dir": cache_dir, "revision": revision, "local_files_only": local_files_only, "token": token}
    config, unused = prepare_config(cls.config_class, path, config, hub, kwargs)
    if model_args or unused:
        raise TypeError(f"{cls.__name__}.from_pretrained got arguments that are neither loading options nor config "
                        f"attributes: {list(model_args) + sorted(unused)}")
    state, source = _read_state(path, hub, from_pt, use_safetensors)
    model = cls(config, dtype=dtype, _do_init=False, **model_kwargs)
    shapes = flatten_dict(model.params_shape_tree)
    flat = pt_to_flax(read_numpy_weights(state), config) if isinstance(state, list) else flatten_dict(state)
    flat = align_prefix(flat, set(shapes), cls.base_model_prefix)

    unexpected = sorted(k for k in flat if k not in shapes)
    mismatched = [(k, flat[k].shape, shapes[k].shape) for k in flat if k in shapes and flat[k].shape != shapes[k].shape]
    if mismatched and not ignore_mismatched_sizes:
        detail = "; ".join(f"{'/'.join(k)}: the checkpoint has shape {got}, the model expects {want}"
                           for k, got, want in mismatched)
        raise ValueError(f"Error loading {cls.__name__} from {source}: size mismatch for {detail}. Pass "
                         f"ignore_mismatched_sizes=True to re-initialise these weights instead.")
    # float32 params whatever the file stores (as our PyTorch loader's default): fp16/bf16 storage would make
    # optimizers like Adam underflow; model.to_bf16(params) gives half-precision params on purpose
    params = {k: jnp.asarray(v, jnp.float32) if jnp.issubdtype(v.dtype, jnp.floating) else jnp.asarray(v)
              for k, v in flat.items() if k in shapes and v.shape == shapes[k].shape}
    missing = sorted(k for k in shapes if k not in params)
    if unexpected:
        logger.warning("Checkpoint weights at %s not used by %s: %s", source, cls.__name__,
                       ", ".join("/".join(k) for k in unexpected))
    if missing:
        logger.warning("Weights of %s newly initialized (not in %s): %s. Train the model before using it.",
                       cls.__name__, source, ", ".join("/".join(k) for k in missing))
    config._name_or_path = os.fspath(path)
    if not _do_init:
        model._missing_keys = set(missing)
        return model, unflatten_dict(params)
    model._missing_keys = set(missing)
    model.params = model.init_weights(model.key, model.input_shape, unflatten_dict(params)) if missing \
        else unflatten_dict(params)
    return model


def save_flax_model(model, save_directory, params: dict | None = None, push_to_hub: bool = False,
                    pytorch_weights: bool = True, **kwargs) -> None:
    """Write config.json + flax_model.msgpack (+ model.safetensors in PyTorch names, unless
    pytorch_weights=False). Each file is written atomically, config last."""
    if push_to_hub:
        raise NotImplementedError("push_to_hub is not supported; upload the saved folder with huggingface_hub")
    for ignored in ("safe_serialization", "max_shard_size", "token"):
        kwargs.pop(ignored, None)
    if kwargs:
        raise TypeError(f"save_pretrained got unexpected arguments: {sorted(kwargs)}")
    save_directory = make_save_directory(save_directory)
    params = jax.device_get(model.params if params is None else params)
    atomic_write_bytes(os.path.join(save_directory, FLAX_WEIGHTS_NAME), serialization.to_bytes(params))
    if pytorch_weights:
        from safetensors.numpy import save

        state = flax_to_pt(params)
        atomic_write_bytes(os.path.join(save_directory, SAFE_WEIGHTS_NAME), save(state, metadata={"format": "pt"}))
    config = model.config
    config.architectures = [type(model).__name__[len("Flax"):]]  # as transformers: the PyTorch class name
    config.to_json_file(os.path.join(save_directory, CONFIG_NAME))
    logger.info("Model weights saved in %s", save_directory)
