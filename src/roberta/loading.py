"""Loading and saving model weights: the one module that touches checkpoint files.

Flow of `load_model`: config (file + overrides) -> weight files (folder or hub cache, via roberta.hub) ->
state dict read once, already in the target dtype -> key renames (one declarative table) -> model built
on the meta device -> `load_state_dict(assign=True)` (the checkpoint tensors become the parameters, so a
load costs one copy of the weights, not two) -> missing weights materialised and initialised -> tied
weights re-tied -> non-persistent buffers rebuilt -> eval().

`save_model` writes config.json + model.safetensors (or shards + index, or pytorch_model.bin) into a temp
folder and moves each file into place with os.replace, so a crash mid-save leaves the old checkpoint intact.
"""
from __future__ import annotations

import json
import logging
import math
import os
import pickle
import re
import shutil
import tempfile
import warnings
import zipfile
from collections import defaultdict

import torch
from torch import nn

from roberta._io import make_save_directory, move_into_place
from roberta.config import CONFIG_NAME, RobertaConfig, prepare_config
from roberta.hub import is_local
from roberta.safetensors_format import SafetensorsError, read_header
from roberta.weight_files import (  # noqa: F401 (re-exported: the public names lived here first)
    SAFE_INDEX_NAME, SAFE_WEIGHTS_NAME, TORCH_INDEX_NAME, TORCH_WEIGHTS_NAME, WEIGHT_FILES, CheckpointError,
    find_weight_files, merge_shards, with_variant)

logger = logging.getLogger(__name__)


def _weight_file_pattern(variant: str | None) -> re.Pattern:
    """Names of weight files (single, shards, index) of one variant: what a new save supersedes."""
    v = re.escape("." + variant) if variant else ""
    shard = r"(-\d{5}-of-\d{5})?"
    return re.compile(rf"^(model{v}{shard}\.safetensors|pytorch_model{v}{shard}\.bin|(model\.safetensors|pytorch_model\.bin)\.index{v}\.json)$")

# Legacy checkpoint key -> current key: (regex, replacement), applied in order to every key. The only
# renames we do; the prefix rule (adding or stripping "roberta.") is appended per load by `_prefix_rules`.
LEGACY_RENAMES = (
    (r"\.gamma$", ".weight"),  # TF-era LayerNorm.gamma
    (r"\.beta$", ".bias"),  # TF-era LayerNorm.beta
)

# from_pretrained keywords of transformers that have no effect here (everything is low-memory already).
_IGNORED_KWARGS = ("force_download", "resume_download", "proxies", "trust_remote_code", "low_cpu_mem_usage",
                   "_from_auto", "_from_pipeline", "_fast_init", "offload_state_dict")

_ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "U16": torch.uint16, "U32": torch.uint32, "U64": torch.uint64,
}


# ---- key renaming ---------------------------------------------------------------------------------------
def rename_keys(keys, rules) -> dict[str, str]:
    """{old: new} for `keys` after applying each (regex, replacement) rule in order."""
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    out = {}
    for key in keys:
        new = key
        for pattern, repl in compiled:
            new = pattern.sub(repl, new)
        out[key] = new
    return out


def _prefix_rules(prefix: str, model_keys, ckpt_keys) -> list[tuple[str, str]]:
    """A base checkpoint loaded into a head class gains `roberta.`; a head checkpoint into the base loses it."""
    if not prefix:
        return []
    model_has = any(k.startswith(prefix + ".") for k in model_keys)
    ckpt_has = any(k.startswith(prefix + ".") for k in ckpt_keys)
    if model_has and not ckpt_has:
        return [(r"^", prefix + ".")]
    if ckpt_has and not model_has:
        return [(rf"^{re.escape(prefix)}\.", "")]
    return []


# ---- reading weight files -------------------------------------------------------------------------------
def read_safetensors(path: str, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Read a .safetensors file into CPU tensors (floating ones cast to `dtype`).

    Tensors that need no cast are views of a private (copy-on-write) memory map of the file, as in
    transformers: loading reads nothing up front, pages come in on first use and are shared with the page
    cache, and writing to a parameter never touches the file. Our saves replace files (os.replace) rather
    than rewrite them, so re-saving into the folder a model was loaded from is safe.
    """
    try:
        entries, _ = read_header(path)
    except SafetensorsError as err:
        raise CheckpointError(str(err)) from None
    size = os.path.getsize(path)
    storage = torch.UntypedStorage.from_file(path, shared=False, nbytes=size) if size else None
    out = {}
    for name, entry in entries.items():
        if entry.dtype not in _ST_DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {entry.dtype}, which torch cannot hold")
        src = _ST_DTYPES[entry.dtype]
        itemsize = torch.empty(0, dtype=src).element_size()
        if entry.begin % itemsize == 0:
            tensor = torch.empty(0, dtype=src).set_(storage, entry.begin // itemsize, entry.shape)
        else:  # misaligned (hand-written file): copy the bytes out
            raw = torch.empty(0, dtype=torch.uint8).set_(storage, entry.begin, (entry.end - entry.begin,))
            tensor = raw.clone().view(src).reshape(entry.shape)
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        out[name] = tensor
    return out


def read_torch_bin(path: str, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Read a pytorch_model.bin with torch.load(weights_only=True): a pickle carrying code is refused."""
    try:
        try:  # zip-format files (torch >= 1.6) map lazily, like safetensors; legacy ones are read whole
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds Python objects other than tensors, so it was not unpickled (torch.load with "
            f"weights_only=True refuses to run code from a checkpoint). Details: {str(err).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"{path} could not be read as a PyTorch checkpoint (truncated or corrupt?): {err}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    return state


def read_checkpoint(files: list[str], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Merge the state dicts of one or more weight files (shards)."""
    if len(files) > 1:
        from tqdm.auto import tqdm

        files = tqdm(files, desc="Loading checkpoint shards", disable=None)
    return merge_shards((path, (read_safetensors if path.endswith(".safetensors") else read_torch_bin)(path, dtype))
                        for path in files)


# ---- dtype and device placement ------------------------------------------------------------------------
def _resolve_dtype(dtype, config) -> torch.dtype | None:
    """The dtype to load in; None means "whatever the checkpoint holds" (dtype="auto" with no config dtype)."""
    if dtype is None:
        return torch.get_default_dtype()
    if dtype == "auto":
        return config.dtype if isinstance(config.dtype, torch.dtype) else None
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.split(".")[-1], None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"dtype={dtype!r} is not a torch dtype; use e.g. 'float32', 'float16', 'bfloat16' or 'auto'")
        return resolved
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype must be a torch.dtype, a dtype name or 'auto'; got {dtype!r}")
    return dtype


def _as_device(value) -> torch.device:
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"cuda:{value}"
    if value in ("disk", "meta"):
        raise ValueError(f"device_map value {value!r}: offloading to disk/meta is not supported; use 'cpu' or a GPU")
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"device_map value {value!r} is not a device (use 'cpu', 'cuda', 'cuda:0', an int, 'auto')") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device_map asks for {value!r} but CUDA is not available on this machine")
    return device


def _placement(device_map) -> dict[str, torch.device]:
    """device_map -> {module prefix: device}; "" is the whole model."""
    if device_map is None:
        return {"": torch.device("cpu")}
    if isinstance(device_map, dict):
        if not device_map:
            raise ValueError("device_map is an empty dict; give {'': device} or {module_name: device, ...}")
        return {k: _as_device(v) for k, v in device_map.items()}
    return {"": _as_device(device_map)}


def _device_for(key: str, placement: dict[str, torch.device]) -> torch.device:
    best = None
    for prefix in placement:
        if prefix == "" or key == prefix or key.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    if best is None:
        raise ValueError(f"device_map does not place {key!r}; add its module (or '' for the rest) to the map")
    return placement[best]


def _move_inputs_hook(device):
    def hook(module, args, kwargs):
        move = lambda x: x.to(device) if isinstance(x, torch.Tensor) else x  # noqa: E731
        return tuple(move(a) for a in args), {k: move(v) for k, v in kwargs.items()}
    return hook


# ---- loading --------------------------------------------------------------------------------------------
def _prepare_config(cls, path_or_id, config, attn_implementation, hub, overrides):
    config_class = getattr(cls, "config_class", None) or RobertaConfig
    config, unused = prepare_config(config_class, path_or_id, config, hub, overrides)
    if attn_implementation is not None:
        if attn_implementation not in ("eager", "sdpa"):
            raise ValueError(f"attn_implementation={attn_implementation!r} is not supported; use 'sdpa' (default) or 'eager'")
        config._attn_implementation = attn_implementation
    return config, unused


_INIT_FILLS = {torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.random_, torch.Tensor.bernoulli_,
               torch.Tensor.exponential_, torch.Tensor.cauchy_, torch.Tensor.log_normal_, torch.Tensor.geometric_,
               torch.Tensor.zero_, torch.Tensor.fill_}


class _SkipInitOnMeta(torch.overrides.TorchFunctionMode):
    """While building on the meta device, in-place init fills (normal_, uniform_, zero_, fill_...) are skipped
    and `torch.arange` runs on the CPU.

    The values would be replaced by the checkpoint anyway, and torch runs random fills on meta tensors
    through its decomposition machinery, which costs more than the whole load (and ~75 MB of imports).
    Torch function modes are thread-local, so this affects only the build inside the `with` block.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        is_init = func in _INIT_FILLS or getattr(func, "__module__", None) == "torch.nn.init"  # nn.init.normal_ etc.
        target = args[0] if args else kwargs.get("tensor")
        if is_init and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        if func is torch.arange and kwargs.get("device") is None:
            # position-id buffers: arange on meta goes through sympy-backed decompositions (~40 MB, seconds
            # on first use); an empty meta tensor of the same length and dtype costs nothing, whatever
            # max_position_embeddings says (a CPU arange of 1e9 positions would allocate 8 GB).
            return _meta_arange(*args, **kwargs)
        return func(*args, **kwargs)


def _meta_arange(*args, dtype=None, **kwargs) -> torch.Tensor:
    """torch.arange's result shape and dtype on the meta device, computed without running arange."""
    if not all(isinstance(a, (int, float)) for a in args) or kwargs.keys() - {"requires_grad", "layout"}:
        return torch.arange(*args, dtype=dtype, **kwargs, device="cpu").to("meta")
    start, end, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    if dtype is None:
        dtype = torch.int64 if all(isinstance(a, int) for a in args) else torch.get_default_dtype()
    return torch.empty(max(0, math.ceil((end - start) / step)), dtype=dtype, device="meta")


def _tied_groups(model: nn.Module) -> list[list[str]]:
    """Names that are one shared Parameter in the freshly built model, canonical (non-alias) name first."""
    by_id = defaultdict(list)
    for name, param in model.named_parameters(remove_duplicate=False):
        by_id[id(param)].append(name)
    aliases = set(getattr(model, "_tied_weights_keys", None) or [])
    return [sorted(names, key=lambda n: (n in aliases, names.index(n))) for names in by_id.values() if len(names) > 1]


def _non_persistent_buffers(model: nn.Module) -> set[str]:
    return {f"{mod_name}.{b}" if mod_name else b for mod_name, module in model.named_modules()
            for b in getattr(module, "_non_persistent_buffers_set", ())}


def _keep_float32(model: nn.Module, dtype: torch.dtype) -> set[str]:
    """Under bfloat16, put the modules the class names in `_keep_in_fp32_modules_bf16` (the embeddings and the LM
    head; see RobertaPreTrainedModel) back to float32 on the meta model. -> the state-dict keys kept float32.
    They stay float32 in memory and in files saved from the model (save_pretrained writes the tensors as they
    are; config.json records bfloat16), so a bf16 model saved and loaded back computes the same numbers."""
    kept_in = getattr(model, "_kept_in_float32", None)
    if dtype != torch.bfloat16 or kept_in is None:
        return set()
    kept = set()
    for name, module in model.named_modules():
        if name and kept_in(name) and not kept_in(name.rpartition(".")[0]):  # the outermost kept modules
            module.to(torch.float32)
            kept |= {f"{name}.{key}" for key, t in module.state_dict(keep_vars=True).items() if t.is_floating_point()}
    return kept


def _load_dtype(key: str, want: torch.Tensor, dtype: torch.dtype, kept: set[str]) -> torch.dtype:
    """The dtype checkpoint tensor `key` loads in: float32 if kept, else `dtype` for floats, else the model's."""
    if not want.is_floating_point():
        return want.dtype
    return torch.float32 if key in kept else dtype


@torch.no_grad()
def _materialize(model: nn.Module, keys, placement, dtype, kept=frozenset()) -> None:
    """Give meta tensors `keys` real (zeroed) storage, then run the model's init on their modules.

    Loaded tensors of the same module are put back after init, so a module half-present in the checkpoint
    keeps its loaded half.
    """
    by_module = defaultdict(list)
    for key in keys:
        mod_name, _, name = key.rpartition(".")
        by_module[mod_name].append(name)
    for mod_name, names in by_module.items():
        module = model.get_submodule(mod_name)
        device = _device_for(f"{mod_name}.{names[0]}" if mod_name else names[0], placement)
        own = dict(module.named_parameters(recurse=False)) | dict(module.named_buffers(recurse=False))
        loaded = {n: t.detach().clone() for n, t in own.items() if n not in names and not t.is_meta}
        for name in names:
            old = own[name]
            key = f"{mod_name}.{name}" if mod_name else name
            new = torch.zeros(old.shape, device=device, dtype=_load_dtype(key, old, dtype, kept))
            if name in module._parameters:
                module._parameters[name] = nn.Parameter(new, requires_grad=old.requires_grad)
            else:
                module._buffers[name] = new
        init = getattr(model, "_init_weights", None)
        if init is not None:
            init(module)
        elif hasattr(module, "reset_parameters"):
            module.reset_parameters()
        for name, value in loaded.items():
            getattr(module, name).copy_(value)


def _retie(model: nn.Module, groups: list[list[str]]) -> None:
    """Point every alias back at its canonical tensor (assign=True replaced the canonical one)."""
    for names in groups:
        canonical = model.get_parameter(names[0])
        for alias in names[1:]:
            mod_name, _, attr = alias.rpartition(".")
            setattr(model.get_submodule(mod_name), attr, canonical)


def _summarize(kind: str, keys: list[str], level: int, message: str) -> None:
    if not keys:
        return
    groups = defaultdict(int)
    for key in keys:
        groups[key.rsplit(".", 1)[0]] += 1
    summary = ", ".join(f"{g} ({n})" if n > 1 else g for g, n in sorted(groups.items()))
    logger.log(level, "%s: %s. %s", kind, summary, message)
    logger.debug("%s, per key: %s", kind, ", ".join(keys))


def _align_keys(model, state, expected, groups) -> tuple[dict, list[str]]:
    """Rename checkpoint keys to the model's (legacy table + prefix rule), store each tied tensor under its
    canonical name, and split off the keys the model has no place for (returned as `unexpected`)."""
    prefix = getattr(model, "base_model_prefix", "")
    renames = rename_keys(state, LEGACY_RENAMES + tuple(_prefix_rules(prefix, expected, state)))
    legacy = [old for old, new in renames.items() if old.rsplit(".", 1)[-1] != new.rsplit(".", 1)[-1]]
    if legacy:
        logger.info("Renamed %d legacy checkpoint keys (e.g. %s -> %s)", len(legacy), legacy[0], renames[legacy[0]])
    state = {renames[k]: v for k, v in state.items()}
    for names in groups:  # a tied tensor may be stored under any of its names
        present = [n for n in names if n in state]
        if present:
            value = state[names[0]] if names[0] in state else state[present[0]]
            for n in present:
                del state[n]
            state[names[0]] = value
    ignore = [re.compile(p) for p in getattr(model, "_keys_to_ignore_on_load_unexpected", None) or []]
    silent = _non_persistent_buffers(model)  # e.g. old checkpoints' embeddings.position_ids
    unexpected = [k for k in state if k not in expected and k not in silent and not any(p.search(k) for p in ignore)]
    aliases = {a for names in groups for a in names[1:]}
    return {k: v for k, v in state.items() if k in expected and k not in aliases}, unexpected


def _place_buffers_and_hooks(model, placement) -> None:
    """Rebuild non-persistent buffers on the target device; with a per-module map, move module buffers
    there too and move inputs between devices with forward pre-hooks."""
    if hasattr(model, "_init_buffers"):
        model._init_buffers(placement.get("", next(iter(placement.values()))))
    for prefix, device in placement.items():
        if prefix:
            model.get_submodule(prefix).to(device)
    still_meta = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if still_meta:
        raise RuntimeError(f"{type(model).__name__} has tensors left on the meta device after loading: {still_meta}")
    if len(set(placement.values())) > 1:
        for prefix, device in placement.items():
            if prefix:
                model.get_submodule(prefix).register_forward_pre_hook(_move_inputs_hook(device), with_kwargs=True)


def _log_summary(model, path, missing, unexpected, mismatched) -> None:
    """One line per kind at INFO/WARNING, per-key detail at DEBUG (transformers' levels)."""
    name = type(model).__name__
    # In a head class, weights outside the base model (classifier.*, lm_head.*) are the task head.
    prefix = getattr(model, "base_model_prefix", "")
    is_head_class = bool(prefix) and isinstance(getattr(model, prefix, None), nn.Module)
    in_head = [k for k in missing if is_head_class and not k.startswith(prefix + ".")]
    in_body = [k for k in missing if k not in in_head]
    _summarize(f"Weights of {name} newly initialized (not in the checkpoint at {path})", in_head, logging.INFO,
               "This is expected for a new task head: fine-tune the model before using it for predictions.")
    _summarize(f"Weights of {name} MISSING from the checkpoint at {path} and randomly initialized", in_body,
               logging.WARNING, "The checkpoint may belong to another architecture or be incomplete.")
    own_architecture = name in (model.config.architectures or [])
    _summarize(f"Checkpoint weights at {path} not used by {name}", unexpected,
               logging.WARNING if own_architecture else logging.INFO,
               "Expected when the checkpoint was saved from another head (e.g. an MLM checkpoint into a classifier).")
    for key, got, want in mismatched:
        logger.warning("Re-initialized %s: checkpoint shape %s, model shape %s (ignore_mismatched_sizes=True)", key, got, want)


def load_model(cls, pretrained_model_name_or_path, *model_args, config=None, dtype=None, device_map=None,
               attn_implementation=None, revision=None, cache_dir=None, local_files_only=False, token=None,
               ignore_mismatched_sizes=False, output_loading_info=False, torch_dtype=None, use_safetensors=None,
               variant=None, subfolder="", **kwargs):
    """Build `cls` from a folder or hub id: `cls.from_pretrained(...)` with transformers' keywords.

    dtype: None (float32), a torch dtype or its name, or "auto" (config.dtype, else the checkpoint's).
    device_map: None (cpu), "auto" (cuda if available), "cpu", "cuda:0", an int, {"": device} or
    {module_prefix: device} (inputs are moved between devices by forward pre-hooks).
    Other keywords that name config attributes (num_labels=3, id2label=..., is_decoder=True) override the
    config. Returns the model in eval mode, or (model, info) with output_loading_info=True, where info has
    missing_keys, unexpected_keys, mismatched_keys and error_msgs.
    """
    path = pretrained_model_name_or_path
    if subfolder and is_local(path):
        path, subfolder = os.path.join(path, subfolder), ""
    if torch_dtype is not None:
        warnings.warn("torch_dtype is deprecated; use dtype", FutureWarning, stacklevel=3)
        dtype = torch_dtype if dtype is None else dtype
    for name in _IGNORED_KWARGS:
        kwargs.pop(name, None)
    if kwargs.pop("state_dict", None) is not None:
        raise NotImplementedError("from_pretrained(state_dict=...) is not supported; use model.load_state_dict")
    hub = {"cache_dir": cache_dir, "revision": revision, "local_files_only": local_files_only, "token": token,
           "subfolder": subfolder}
    generation_config = kwargs.pop("generation_config", None)
    quantization_config = kwargs.pop("quantization_config", None)  # roberta.quantization, applied after the load
    config, unused = _prepare_config(cls, path, config, attn_implementation, hub, kwargs)
    if model_args or unused:
        raise TypeError(f"{cls.__name__}.from_pretrained got arguments that are neither loading options nor config "
                        f"attributes: {list(model_args) + sorted(unused)}")
    placement = _placement(device_map)
    target_dtype = _resolve_dtype(dtype, config)
    # bf16 keeps some modules in float32 (_keep_float32): read those tensors as stored, not rounded first
    state = read_checkpoint(find_weight_files(path, hub, use_safetensors, variant),
                            None if target_dtype == torch.bfloat16 else target_dtype)
    if target_dtype is None:  # "auto" without a dtype in config.json: the first floating tensor decides
        target_dtype = next((t.dtype for t in state.values() if t.is_floating_point()), torch.get_default_dtype())

    with torch.device("meta"), _SkipInitOnMeta():
        model = cls(config)
    model.to(dtype=target_dtype)  # free on meta; sets the dtype of the params we will materialise
    kept = _keep_float32(model, target_dtype)
    saved_quantization = getattr(config, "quantization_config", None)
    if saved_quantization:  # an int8 checkpoint: int8 layers first, so its weights load as saved
        from roberta.quantization import prepare_quantized_load

        prepare_quantized_load(model, saved_quantization)
    expected = model.state_dict(keep_vars=True)
    groups = _tied_groups(model)
    state, unexpected = _align_keys(model, state, expected, groups)
    mismatched = [(k, tuple(v.shape), tuple(expected[k].shape)) for k, v in state.items() if v.shape != expected[k].shape]
    if mismatched and not ignore_mismatched_sizes:
        detail = "; ".join(f"{k}: the checkpoint has shape {got}, the model expects {want}" for k, got, want in mismatched)
        raise RuntimeError(f"Error loading {cls.__name__} from {path}: size mismatch for {detail}. Pass "
                           f"ignore_mismatched_sizes=True to re-initialise these weights instead (e.g. a classifier "
                           f"with a new num_labels).")
    for key, _, _ in mismatched:
        del state[key]
    for key, tensor in state.items():  # per tensor, so CPU copies are freed as they move to the device
        want = expected[key]
        state[key] = tensor.to(device=_device_for(key, placement),
                               dtype=_load_dtype(key, want, target_dtype, kept))
    skip = _non_persistent_buffers(model) | {k for k, _, _ in mismatched} | {a for names in groups for a in names[1:]}
    missing = [k for k in expected if k not in state and k not in skip]

    model.load_state_dict(state, strict=False, assign=True)
    del state
    _materialize(model, missing + [k for k, _, _ in mismatched], placement, target_dtype, kept)
    _retie(model, groups)
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    _place_buffers_and_hooks(model, placement)
    if device_map is not None:
        model.hf_device_map = {k: (v.index or 0) if v.type == "cuda" else v.type for k, v in placement.items()}
    config.dtype = target_dtype
    config._name_or_path = os.fspath(path)
    model.eval()
    if hasattr(model, "_load_generation_config"):  # generation-capable models: generation_config.json, if any
        model._load_generation_config(path, hub, generation_config)
    _log_summary(model, path, missing, unexpected, mismatched)
    if quantization_config is not None and not saved_quantization:
        from roberta.quantization import quantize

        quantize(model, quantization_config)
    elif target_dtype == torch.bfloat16 and all(d.type == "cpu" for d in placement.values()) \
            and hasattr(model, "pack_weights"):
        model.pack_weights()  # bf16 on CPU: packed for the matrix units (or float32 compute; see modeling/fused.py)
    if output_loading_info:
        info = {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": [m[0] for m in mismatched],
                "error_msgs": []}
        return model, info
    return model


# ---- saving ---------------------------------------------------------------------------------------------
def _parse_size(size) -> int:
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B)?\s*", str(size), re.IGNORECASE)
    if not match:
        raise ValueError(f"max_shard_size={size!r} is not a size; use an int (bytes) or e.g. '5GB', '500MB', '2GiB'")
    unit = (match.group(2) or "B").upper()
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}[unit]
    return int(float(match.group(1)) * scale)


def dedupe_tied(state: dict[str, torch.Tensor], aliases: set[str]) -> tuple[dict, dict[str, str]]:
    """Split shared tensors (tied weights) into one kept name each and {alias: kept name}.

    safetensors files hold each tensor once (transformers drops lm_head.decoder.weight/bias there);
    pytorch_model.bin keeps the alias names, as transformers' .bin files do (torch.save stores them once).
    """
    by_storage = defaultdict(list)
    for name, tensor in state.items():
        by_storage[(tensor.device, tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tensor.shape)].append(name)
    unique, alias_of = dict(state), {}
    for names in by_storage.values():
        if len(names) > 1:
            keep = next((n for n in names if n not in aliases), names[0])
            for n in names:
                if n != keep:
                    del unique[n]
                    alias_of[n] = keep
    return unique, alias_of


def _write_safetensors(tensors: dict[str, torch.Tensor], path: str) -> None:
    from safetensors.torch import save_file

    save_file(tensors, path, metadata={"format": "pt"})


def _write_torch_bin(tensors: dict[str, torch.Tensor], path: str) -> None:
    torch.save(tensors, path)


def save_model(model: nn.Module, save_directory, *, safe_serialization: bool = True, max_shard_size="5GB",
               state_dict: dict | None = None, is_main_process: bool = True, variant: str | None = None,
               **kwargs) -> None:
    """Write config.json and the weights (model.safetensors, shards + index, or pytorch_model.bin); with
    `variant="fp16"` the names become model.fp16.safetensors etc., as in transformers."""
    if kwargs.pop("push_to_hub", False):
        raise NotImplementedError("push_to_hub is not supported; upload the saved folder with huggingface_hub")
    kwargs.pop("save_function", None)
    if kwargs:
        raise TypeError(f"save_pretrained got unexpected arguments: {sorted(kwargs)}")
    if not is_main_process:
        return
    save_directory = make_save_directory(save_directory)

    state = model.state_dict() if state_dict is None else dict(state_dict)
    state, alias_of = dedupe_tied(state, set(getattr(model, "_tied_weights_keys", None) or []))
    # config.json's dtype: the encoder's, not that of the modules a bf16 model keeps in float32
    kept_in = getattr(model, "_kept_in_float32", lambda name: False)
    floats = [(name, t.dtype) for name, t in state.items() if t.is_floating_point()]
    config = model.config
    config.architectures = [type(model).__name__]
    config.dtype = next((d for name, d in floats if not kept_in(name)),
                        floats[0][1] if floats else torch.get_default_dtype())

    limit = _parse_size(max_shard_size)
    shards, current, current_size = [], {}, 0
    for name, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if current and current_size + nbytes > limit:
            shards.append(current)
            current, current_size = {}, 0
        current[name] = tensor
        current_size += nbytes
    shards.append(current)
    if not safe_serialization:
        home = {k: shard for shard in shards for k in shard}
        for alias, kept in alias_of.items():
            home[kept][alias] = home[kept][kept]

    stem, ext, index_name = ("model", "safetensors", SAFE_INDEX_NAME) if safe_serialization else ("pytorch_model", "bin", TORCH_INDEX_NAME)
    stem, index_name = (f"{stem}.{variant}" if variant else stem), with_variant(index_name, variant)
    write = _write_safetensors if safe_serialization else _write_torch_bin
    names = [f"{stem}.{ext}"] if len(shards) == 1 else [f"{stem}-{i:05d}-of-{len(shards):05d}.{ext}" for i in range(1, len(shards) + 1)]

    tmp = tempfile.mkdtemp(prefix=".tmp-save-", dir=save_directory)
    try:
        for name, shard in zip(names, shards):
            write({k: v.detach().to("cpu").contiguous() for k, v in shard.items()}, os.path.join(tmp, name))
        written = list(names)
        if len(shards) > 1:
            index = {"metadata": {"total_parameters": sum(t.numel() for t in state.values()),
                                  "total_size": sum(t.numel() * t.element_size() for t in state.values())},
                     "weight_map": {k: n for n, shard in zip(names, shards) for k in shard}}
            with open(os.path.join(tmp, index_name), "w", encoding="utf-8") as f:
                f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
            written.append(index_name)
        if getattr(model, "can_generate", lambda: False)() and hasattr(model, "generation_config"):
            model.generation_config.save_pretrained(tmp)  # generation_config.json, as transformers writes it
            written.append("generation_config.json")
        config.to_json_file(os.path.join(tmp, CONFIG_NAME))
        written.append(CONFIG_NAME)
        for name in written:  # each file lands atomically, with umask permissions; config last
            move_into_place(os.path.join(tmp, name), os.path.join(save_directory, name))
        for name in os.listdir(save_directory):  # stale weights of an earlier save would shadow the new ones
            if _weight_file_pattern(variant).match(name) and name not in written:
                os.remove(os.path.join(save_directory, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Model weights saved in %s (%s)", save_directory, ", ".join(names))
