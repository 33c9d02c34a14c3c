"""Pretraining data: tokenize a corpus once into a memory-mapped token file, then pack it into blocks.

Layout on disk (one folder per cache key):
    tokens.bin   flat token ids (uint16 when the vocabulary fits, else int32), every document followed by `</s>`
    offsets.npy  int64 start of each document in tokens.bin (plus the total length at the end)
    meta.json    dtype, token and document counts (written last: its presence marks a complete cache)
It is written as `.<key>.<random>` and renamed into place when complete. Several processes may tokenize into
one cache at once: each holds a lock on its temp folder (roberta._io.held_temp_dir), so the next
tokenize_corpus removes the temp folders of killed runs and leaves live ones alone.

The token file is memory-mapped, so a corpus larger than RAM works. Packing is lazy and cheap: block i is
`<s>` + the i-th run of (block_size - 2) stream tokens + `</s>`, crossing document boundaries (which keep
their `</s>` separator), as RoBERTa's FULL-SENTENCES setting (`packing="full-sentences"`). With
`packing="lines"` every document is its own example instead (`LineDataset`: `<s> document </s>`, a document
longer than a block cut into block-sized pieces), never packed with its neighbours: the setting small models
learn word order fastest with (BabyBERTa's single sentences), given a corpus of one sentence per line. The
cache depends on neither, so changing the block size or the packing reuses the tokenized corpus.

A document is a non-empty line of a text file (a path or a list/tuple of paths), or the `text` field of each
row of a `datasets`-like object (any other iterable: of dicts, or of strings such as a generator).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from roberta._io import held_temp_dir, replace_held_dir, sweep_abandoned_temp_dirs

logger = logging.getLogger(__name__)

_CHUNK_DOCS = 1000  # documents tokenized per batch call (the fast tokenizer parallelises within a batch)
_TEMP_RE = re.compile(r"^\.[0-9a-f]{24}\.[a-z0-9_]{8}$")  # `.<key>.<mkdtemp suffix>`: a cache folder being written


def default_cache_dir() -> Path:
    root = os.environ.get("ROBERTA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "roberta")
    return Path(root) / "tokenized"


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of what decides token ids: vocabulary, a probe encoding (catches merges) and special ids."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    vocab = tokenizer.get_vocab()
    h.update(json.dumps(sorted(vocab.items())).encode())
    probe = "Hello world! cécé herlolip 418, tokenizers\nnewline   spaces"
    h.update(json.dumps(tokenizer(probe, add_special_tokens=False)["input_ids"]).encode())
    h.update(json.dumps([tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id]).encode())
    return h.hexdigest()


def _is_text_files(source) -> bool:
    """A path or a list/tuple of paths; any other iterable (rows, a generator of strings) is the text itself."""
    if isinstance(source, (str, os.PathLike)):
        return True
    return isinstance(source, (list, tuple)) and bool(source) and all(isinstance(s, (str, os.PathLike)) for s in source)


def _iter_file_docs(files: list[Path]) -> Iterator[str]:
    for path in files:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    yield line


def _iter_rows(source: Iterable, text_column: str) -> Iterator[str]:
    for row in source:
        text = row[text_column] if isinstance(row, Mapping) else row
        if not isinstance(text, str):
            raise TypeError(f"expected a string in column {text_column!r}, got {type(text).__name__}")
        if text.strip():
            yield text


def _source_key(source, text_column: str) -> tuple[str, Iterable[str] | None]:
    """Key of the corpus; for in-memory sources also the texts (so they are read only once)."""
    h = hashlib.sha256()
    if _is_text_files(source):
        files = [Path(source)] if isinstance(source, (str, os.PathLike)) else [Path(s) for s in source]
        for path in files:
            if not path.is_file():
                raise FileNotFoundError(f"training text file not found: {path}")
            st = path.stat()
            h.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest(), None
    fingerprint = getattr(source, "_fingerprint", None)  # datasets.Dataset has one
    if isinstance(fingerprint, str):
        h.update(f"dataset:{fingerprint}:{text_column}".encode())
        return h.hexdigest(), None
    texts = list(_iter_rows(source, text_column))
    for text in texts:
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest(), texts


def tokenize_corpus(source, tokenizer, cache_dir: str | os.PathLike | None = None, text_column: str = "text",
                    show_progress: bool = True) -> Path:
    """Tokenize `source` (text file path(s) or a datasets-like object) once; return the cache folder."""
    key, texts = _source_key(source, text_column)
    key = hashlib.sha256(f"{key}|{tokenizer_fingerprint(tokenizer)}".encode()).hexdigest()[:24]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    sweep_abandoned_temp_dirs(folder, _TEMP_RE)  # a killed run's half-written folders, not a live run's
    final = folder / key
    if (final / "meta.json").is_file():
        logger.info("using tokenized corpus cache %s", final)
        return final
    if texts is None:
        texts = _iter_file_docs([Path(source)] if isinstance(source, (str, os.PathLike)) else [Path(s) for s in source]) \
            if _is_text_files(source) else _iter_rows(source, text_column)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos token (`</s>`), needed to separate documents")
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.int32
    folder.mkdir(parents=True, exist_ok=True)
    with held_temp_dir(f".{key}.", folder) as tmp:  # other processes may tokenize into this cache at the same time
        tmp = Path(tmp)
        offsets = [0]
        with open(tmp / "tokens.bin", "wb") as out:
            chunk: list[str] = []
            bar = tqdm(desc="tokenizing", unit="doc", disable=not show_progress)
            for text in texts:
                chunk.append(text)
                if len(chunk) == _CHUNK_DOCS:
                    _write_chunk(chunk, tokenizer, eos, dtype, out, offsets)
                    bar.update(len(chunk))
                    chunk = []
            if chunk:
                _write_chunk(chunk, tokenizer, eos, dtype, out, offsets)
                bar.update(len(chunk))
            bar.close()
        np.save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
        meta = {"dtype": np.dtype(dtype).name, "num_tokens": offsets[-1], "num_documents": len(offsets) - 1,
                "eos_token_id": eos, "vocab_size": len(tokenizer)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        try:
            replace_held_dir(tmp, final)  # atomic: a cache folder is either complete or absent
        except OSError:
            if not (final / "meta.json").is_file():  # someone else finished first: theirs is as good
                raise
    logger.info("tokenized %d documents, %d tokens into %s", meta["num_documents"], meta["num_tokens"], final)
    return final


def _write_chunk(chunk, tokenizer, eos, dtype, out, offsets) -> None:
    encoded = tokenizer(chunk, add_special_tokens=False)["input_ids"]
    flat: list[int] = []
    for ids in encoded:
        flat.extend(ids)
        flat.append(eos)
        offsets.append(offsets[-1] + len(ids) + 1)
    np.asarray(flat, dtype=dtype).tofile(out)


class PackedDataset(torch.utils.data.Dataset):
    """Fixed-length MLM blocks `<s> ... </s>` packed across documents from a tokenized cache folder.

    Items are `{"input_ids": LongTensor (block_size,)}`; with `drop_remainder=False` the last block may be
    shorter (the collator pads it).
    """

    def __init__(self, cache_folder: str | os.PathLike, block_size: int, bos_token_id: int, eos_token_id: int,
                 drop_remainder: bool = True):
        if block_size < 3:
            raise ValueError(f"block_size must be at least 3 (<s>, one token, </s>), got {block_size}")
        folder = Path(cache_folder)
        meta = json.loads((folder / "meta.json").read_text())
        self.folder = folder
        self.block_size = block_size
        self.bos, self.eos = bos_token_id, eos_token_id
        self.num_tokens = int(meta["num_tokens"])
        self.tokens = np.memmap(folder / "tokens.bin", dtype=meta["dtype"], mode="r", shape=(self.num_tokens,)) \
            if self.num_tokens else np.zeros(0, dtype=meta["dtype"])
        self.span = block_size - 2
        full, rest = divmod(self.num_tokens, self.span)
        self.num_blocks = full + (1 if rest and not drop_remainder else 0)
        if self.num_blocks == 0:
            raise ValueError(f"the corpus has {self.num_tokens} tokens, fewer than one block of {block_size}: "
                             "use a smaller block size or more text")

    def __len__(self) -> int:
        return self.num_blocks

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.num_blocks <= index < self.num_blocks:
            raise IndexError(f"block {index} out of range for {self.num_blocks} blocks")
        index %= self.num_blocks
        body = np.asarray(self.tokens[index * self.span:(index + 1) * self.span], dtype=np.int64)
        ids = np.empty(len(body) + 2, dtype=np.int64)
        ids[0], ids[1:-1], ids[-1] = self.bos, body, self.eos
        return {"input_ids": torch.from_numpy(ids)}


class LineDataset(torch.utils.data.Dataset):
    """One example per document (`<s> document </s>`, no packing across documents) from a tokenized cache.

    A document longer than `block_size - 2` tokens is cut into consecutive pieces of that many tokens (the
    last piece may be short); examples have different lengths, and the collator pads each batch.
    Items are `{"input_ids": LongTensor (length,)}`.
    """

    def __init__(self, cache_folder: str | os.PathLike, block_size: int, bos_token_id: int, eos_token_id: int):
        if block_size < 3:
            raise ValueError(f"block_size must be at least 3 (<s>, one token, </s>), got {block_size}")
        folder = Path(cache_folder)
        meta = json.loads((folder / "meta.json").read_text())
        self.folder, self.block_size, self.bos, self.eos = folder, block_size, bos_token_id, eos_token_id
        num_tokens = int(meta["num_tokens"])
        self.tokens = np.memmap(folder / "tokens.bin", dtype=meta["dtype"], mode="r", shape=(num_tokens,)) \
            if num_tokens else np.zeros(0, dtype=meta["dtype"])
        offsets = np.load(folder / "offsets.npy")
        starts, ends = offsets[:-1], offsets[1:] - 1  # each document's `</s>` separator is dropped here
        span = block_size - 2
        pieces = np.maximum(1, -(-(ends - starts) // span))  # ceil; an empty document still gives <s> </s>
        doc = np.repeat(np.arange(len(starts)), pieces)
        first = np.repeat(np.cumsum(pieces) - pieces, pieces)
        self.starts = starts[doc] + (np.arange(len(doc)) - first) * span  # (N,) piece starts
        self.ends = np.minimum(self.starts + span, ends[doc])
        if len(self.starts) == 0:
            raise ValueError("the corpus has no documents")

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) tokens per example, `<s>` and `</s>` included (for group_by_length batching)."""
        return self.ends - self.starts + 2

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"example {index} out of range for {len(self)} examples")
        body = np.asarray(self.tokens[self.starts[index]:self.ends[index]], dtype=np.int64)
        ids = np.empty(len(body) + 2, dtype=np.int64)
        ids[0], ids[1:-1], ids[-1] = self.bos, body, self.eos
        return {"input_ids": torch.from_numpy(ids)}


PACKINGS = ("full-sentences", "lines")


def build_pretraining_dataset(source, tokenizer, block_size: int = 512, cache_dir=None, text_column: str = "text",
                              drop_remainder: bool = True, show_progress: bool = True,
                              packing: str = "full-sentences") -> PackedDataset | LineDataset:
    """Text files or a datasets-like object -> PackedDataset, or LineDataset with `packing="lines"`
    (tokenized once, cached, memory-mapped)."""
    if packing not in PACKINGS:
        raise ValueError(f"packing must be one of {PACKINGS}, got {packing!r}")
    folder = tokenize_corpus(source, tokenizer, cache_dir=cache_dir, text_column=text_column,
                             show_progress=show_progress)
    if packing == "lines":
        return LineDataset(folder, block_size, tokenizer.bos_token_id, tokenizer.eos_token_id)
    return PackedDataset(folder, block_size, tokenizer.bos_token_id, tokenizer.eos_token_id, drop_remainder)
