"""Which weight files a checkpoint has, and reading them into numpy: no deep-learning framework imported.

Shared by the PyTorch loader (roberta.loading) and the Flax classes (roberta.flax), so both find weights
the same way (folder or hub cache via roberta.hub, safetensors before .bin, sharded indexes, variants).
`read_numpy_weights` reads model.safetensors through safetensors.numpy and pytorch_model.bin through a
restricted unpickler that only rebuilds tensors (the same guarantee as torch.load(weights_only=True)).
"""
from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np

from roberta.config import read_json_file
from roberta.hub import is_local, resolve_file

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_INDEX_NAME = "model.safetensors.index.json"
TORCH_WEIGHTS_NAME = "pytorch_model.bin"
TORCH_INDEX_NAME = "pytorch_model.bin.index.json"
WEIGHT_FILES = (SAFE_WEIGHTS_NAME, SAFE_INDEX_NAME, TORCH_WEIGHTS_NAME, TORCH_INDEX_NAME)  # order of preference


class CheckpointError(OSError):
    """A weight file is missing, truncated, corrupt or unsafe."""


def with_variant(name: str, variant: str | None) -> str:
    """model.safetensors -> model.fp16.safetensors; model.safetensors.index.json -> model.safetensors.index.fp16.json."""
    if not variant:
        return name
    stem, ext = name.rsplit(".", 1)
    return f"{stem}.{variant}.{ext}"


def find_weight_files(path_or_id, hub: dict, use_safetensors: bool | None, variant: str | None = None,
                      required: bool = True) -> list[str]:
    """Local paths of the weight files to read, by preference; a clear error when there are none (or [] when
    not `required`)."""
    for plain in WEIGHT_FILES:
        is_safe = plain.startswith("model.safetensors")
        name = with_variant(plain, variant)
        if (use_safetensors is True and not is_safe) or (use_safetensors is False and is_safe):
            continue
        path = resolve_file(path_or_id, name, required=False, **hub)
        if path is None:
            continue
        if not plain.endswith(".index.json"):
            return [path]
        index = read_json_file(path)
        if not isinstance(index.get("weight_map"), dict):
            raise CheckpointError(f"{path} has no 'weight_map' object; it is not a sharded checkpoint index")
        shards = sorted(set(_shard_name(path, v) for v in index["weight_map"].values()))
        return [resolve_file(path_or_id, shard, **hub) for shard in shards]
    if not required:
        return []
    wanted = " / ".join(with_variant(n, variant) for n in (WEIGHT_FILES[:2] if use_safetensors else WEIGHT_FILES))
    if is_local(path_or_id):
        present = ", ".join(sorted(os.listdir(path_or_id))) or "nothing"
        raise CheckpointError(f"no weights ({wanted}) in folder {os.fspath(path_or_id)!r}; it holds: {present}")
    raise CheckpointError(f"no weights ({wanted}) found for {path_or_id!r} (revision {hub.get('revision') or 'main'})")


def _shard_name(index_path: str, name) -> str:
    """A shard named by an index must be a file inside the model folder: no absolute path, no `..`."""
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{index_path}: weight_map values must be shard file names, got {name!r}")
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        raise CheckpointError(f"{index_path} names shard {name!r}, which is outside the model folder; refused "
                              f"(an index may only name files inside its own folder)")
    return name


def merge_shards(states) -> dict:
    """One state dict from (path, {name: tensor}) per shard; a tensor stored in two shards is refused
    (which copy is right cannot be known)."""
    out, home = {}, {}
    for path, state in states:
        for name, tensor in state.items():
            if name in home:
                raise CheckpointError(f"tensor {name!r} is stored in two shards, {home[name]} and {path}")
            out[name], home[name] = tensor, path
    return out


# ---- numpy readers ------------------------------------------------------------------------------------------
def _numpy_dtype(name: str) -> np.dtype:
    if name in ("bfloat16", "BF16"):
        import ml_dtypes  # installed with jax and tensorflow; numpy itself has no bfloat16

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def read_safetensors_numpy(path: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            return {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} could not be read as a safetensors file (truncated or corrupt?): {err}") from None


# torch's legacy storage class names (what torch.save pickles) -> numpy dtype names
_TORCH_STORAGES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}


class _Storage:
    def __init__(self, dtype: str):
        self.dtype = dtype


class _TensorUnpickler(pickle.Unpickler):
    """Unpickles torch.save's data.pkl into numpy arrays; any global other than the few that rebuild tensors
    and ordered dicts is refused, so a checkpoint cannot run code."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_parameter"):
            return _rebuild_tensor if name == "_rebuild_tensor_v2" else _rebuild_parameter
        if module == "torch" and name in _TORCH_STORAGES:
            return _Storage(_TORCH_STORAGES[name])
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a weights-only checkpoint")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid
        if kind != "storage" or not isinstance(storage_type, _Storage):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        raw = self.archive.read(f"{self.prefix}/data/{key}")
        return np.frombuffer(raw, dtype=_numpy_dtype(storage_type.dtype))


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_ignored) -> np.ndarray:
    """A strided view of the flat storage, copied into its own contiguous array."""
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride))
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, *_ignored):
    return data


def read_torch_bin_numpy(path: str) -> dict[str, np.ndarray]:
    """Read a (zip-format, torch >= 1.6) pytorch_model.bin into numpy arrays without importing torch."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            if pkl is None:
                raise CheckpointError(f"{path} has no data.pkl; it is not a zip-format PyTorch checkpoint")
            with archive.open(pkl) as f:
                state = _TensorUnpickler(f, archive, pkl[: -len("/data.pkl")]).load()
    except zipfile.BadZipFile:
        raise CheckpointError(f"{path} is not a zip-format PyTorch checkpoint (truncated, corrupt, or saved by "
                              f"torch < 1.6: re-save it with a recent torch)") from None
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"{path} holds Python objects other than tensors, so it was not unpickled: {err}") from None
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return dict(state)


def read_numpy_weights(files: list[str]) -> dict[str, np.ndarray]:
    """Merge the (PyTorch-named) arrays of one or more weight files (shards)."""
    return merge_shards((path, read_safetensors_numpy(path) if path.endswith(".safetensors") else read_torch_bin_numpy(path))
                        for path in files)
