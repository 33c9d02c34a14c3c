"""The .safetensors layout, parsed and checked without any framework (torch, numpy, jax, tf readers share it).

File = 8-byte little-endian header length N | N bytes of JSON header | data. The header maps each tensor
name to {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets relative to the data start),
plus an optional "__metadata__" object of strings. A reader that trusts the header blindly loads wrong
weights without a word when offsets overlap or point backwards, when the dtype label does not match the
bytes, or when a span is shorter than its shape needs. So, like the reference Rust reader, we accept a
header only when the tensors tile the data exactly: sorted by offset, each starts where the previous ended,
each span is exactly numel x itemsize bytes, and the last ends at the end of the file.
"""
from __future__ import annotations

import json
import math
import os
from typing import NamedTuple

# Bytes per element of each dtype label of the format.
DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
    "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
}
MAX_HEADER_BYTES = 100_000_000  # the reference reader's limit: a bigger "length" is a corrupt or foreign file


class SafetensorsError(OSError):
    """A .safetensors file whose header is missing, corrupt or inconsistent with its data."""


class TensorEntry(NamedTuple):
    dtype: str  # the format's label, e.g. "F32"
    shape: tuple[int, ...]
    begin: int  # absolute byte offsets in the file
    end: int


def read_header(path: str | os.PathLike) -> tuple[dict[str, TensorEntry], dict[str, str]]:
    """({tensor name: TensorEntry with absolute offsets}, metadata) of a .safetensors file, validated.

    Raises SafetensorsError naming the file (and the tensor, where one is at fault).
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        header_len = int.from_bytes(head, "little") if len(head) == 8 else -1
        if header_len < 0 or 8 + header_len > size:
            raise SafetensorsError(f"{path} is truncated or not a safetensors file (header does not fit in {size} bytes)")
        if header_len > MAX_HEADER_BYTES:
            raise SafetensorsError(f"{path} is not a safetensors file (its header claims {header_len} bytes)")
        try:
            header = json.loads(f.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SafetensorsError(f"{path} is corrupt: its safetensors header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path} is corrupt: its safetensors header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{path} is corrupt: __metadata__ must be an object of strings, got {metadata!r:.80}")
    base = 8 + header_len
    entries = {name: _entry(path, name, info, base) for name, info in header.items()}
    _check_tiling(path, entries, base, size)
    return entries, metadata


def _entry(path: str, name: str, info, base: int) -> TensorEntry:
    where = f"{path}: tensor {name!r}"
    if not isinstance(info, dict):
        raise SafetensorsError(f"{where}: header entry must be an object with dtype, shape, data_offsets; got {info!r:.80}")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_SIZES:
        raise SafetensorsError(f"{where} has unsupported dtype {dtype!r} (known: {', '.join(DTYPE_SIZES)})")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise SafetensorsError(f"{where}: shape must be a list of non-negative integers, got {shape!r:.80}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise SafetensorsError(f"{where}: data_offsets must be [begin, end] with non-negative integers, got {offsets!r:.80}")
    begin, end = offsets
    if end < begin:
        raise SafetensorsError(f"{where}: data_offsets [{begin}, {end}] end before they begin")
    need = math.prod(shape) * DTYPE_SIZES[dtype]
    if end - begin != need:
        raise SafetensorsError(
            f"{where}: dtype {dtype} and shape {shape} need {need} bytes but data_offsets [{begin}, {end}] span "
            f"{end - begin} (a wrong dtype label, shape or offsets)"
        )
    return TensorEntry(dtype, tuple(shape), base + begin, base + end)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_tiling(path: str, entries: dict[str, TensorEntry], base: int, size: int) -> None:
    """Tensors must cover the data region exactly once: no overlap, no gap, nothing past the end."""
    data_end = max((e.end for e in entries.values()), default=base)
    if data_end > size:
        raise SafetensorsError(
            f"{path} is truncated: its header describes {data_end} bytes but the file has {size} "
            f"(an interrupted download or copy?)"
        )
    ordered = sorted(entries.items(), key=lambda kv: (kv[1].begin, kv[1].end))
    for (first, a), (second, b) in zip(ordered, ordered[1:]):  # overlaps first: the more telling error
        if b.begin < a.end:
            raise SafetensorsError(f"{path}: tensor {second!r} overlaps tensor {first!r} (data_offsets "
                                   f"[{b.begin - base}, {b.end - base}] and [{a.begin - base}, {a.end - base}]); "
                                   f"the file is corrupt")
    position = base
    for name, entry in ordered:
        if entry.begin > position:
            raise SafetensorsError(f"{path}: {entry.begin - position} bytes before tensor {name!r} belong to no "
                                   f"tensor (data_offsets [{entry.begin - base}, {entry.end - base}]); the file is corrupt")
        position = entry.end
    if position != size:
        raise SafetensorsError(f"{path}: {size - position} bytes after the last tensor belong to no tensor; the "
                               f"header does not describe this file's data")
