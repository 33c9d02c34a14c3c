"""BatchEncoding: the tokenizer's output, a dict of lists (tensors only at return_tensors) that also knows
how each row was built, so word_ids / tokens / sequence_ids / char_to_token work for slow and fast alike.

A row is `[pad]*left + <s> A[a0:a1] </s> (</s> B[b0:b1] </s>) + [pad]*right`, where A and B are the raw
(special-token-free) encodings of the texts. Per-token views are assembled from A and B on demand.
"""
from __future__ import annotations

from typing import Any, NamedTuple


class CharSpan(NamedTuple):
    start: int
    end: int


class TokenSpan(NamedTuple):
    start: int
    end: int


class Row(NamedTuple):
    """How one output row was assembled (see module docstring)."""
    a: Any
    a_span: tuple[int, int]
    b: Any
    b_span: tuple[int, int] | None
    pad_left: int
    pad_right: int
    specials: bool


class Template(NamedTuple):
    cls: str
    sep: str
    pad: str


def to_tensors(data: dict, tensor_type) -> dict:
    """Convert list values to torch ('pt'), numpy ('np') or TensorFlow ('tf') tensors; ragged rows raise a clear
    ValueError."""
    if tensor_type is None:
        return data
    tensor_type = getattr(tensor_type, "value", tensor_type)
    if tensor_type == "pt":
        import torch

        def convert(v):
            if isinstance(v, torch.Tensor):
                return v
            if hasattr(v, "__array__") and not isinstance(v, list):
                return torch.from_numpy(v) if type(v).__module__ == "numpy" else torch.tensor(v)
            return torch.tensor(v)
    elif tensor_type == "np":
        import numpy as np

        def convert(v):
            return v if isinstance(v, np.ndarray) else np.asarray(v)
    elif tensor_type == "tf":
        try:
            import tensorflow as tf
        except ImportError:
            raise ImportError("return_tensors='tf' needs TensorFlow: pip install 'roberta[tf]'") from None

        def convert(v):
            return v if tf.is_tensor(v) else tf.constant(v)
    else:
        raise ValueError(f"return_tensors={tensor_type!r} is not supported; use 'pt', 'np', 'tf' or None")
    out = {}
    for key, value in data.items():
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
            lengths = {len(row) for row in value}
            if len(lengths) > 1:
                raise ValueError(
                    f"Unable to create tensor for {key!r}: the rows have different lengths ({sorted(lengths)[:2]}...). "
                    f"Pass padding=True (or 'max_length') and truncation=True to get a rectangular batch."
                )
        try:
            out[key] = convert(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Unable to create a {tensor_type!r} tensor for {key!r}: {e}") from None
    return out


class BatchEncoding(dict):
    """dict of model inputs with attribute access (`enc.input_ids`), `.to(device)` and token alignment helpers."""

    def __init__(self, data: dict | None = None, tensor_type=None, rows: list[Row] | None = None,
                 template: Template | None = None, n_sequences: int | None = None, prepend_batch_axis: bool = False):
        super().__init__(data or {})
        self._rows = rows
        self._template = template
        self._n_sequences = n_sequences
        self.convert_to_tensors(tensor_type, prepend_batch_axis=prepend_batch_axis)

    # dict + attribute access -------------------------------------------------------------------------
    def __getattr__(self, name: str):
        if name.startswith("__") or name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key or attribute {name!r} (keys: {list(self.keys())})") from None

    def __getitem__(self, key):
        if isinstance(key, str):
            return dict.__getitem__(self, key)
        if isinstance(key, slice):
            return {k: v[key] for k, v in self.items()}
        if isinstance(key, int) and self._rows is not None:
            return RowView(self, key)
        raise KeyError(f"index BatchEncoding with a key name (str) or a row number, not {key!r}")

    def __getstate__(self):
        return {"data": dict(self), "rows": self._rows, "template": self._template, "n": self._n_sequences}

    def __setstate__(self, state):
        self.update(state["data"])
        self._rows, self._template, self._n_sequences = state["rows"], state["template"], state["n"]

    @property
    def data(self) -> dict:
        return dict(self)

    @property
    def n_sequences(self) -> int | None:
        return self._n_sequences

    @property
    def is_fast(self) -> bool:
        return self._rows is not None

    @property
    def encodings(self) -> list["RowView"] | None:
        """Per-row views with `ids`, `tokens`, `offsets`, `word_ids`, `sequence_ids`, `attention_mask`
        (what transformers' fast tokenizer returns as `tokenizers.Encoding`); None without alignment."""
        return None if self._rows is None else [RowView(self, i) for i in range(len(self._rows))]

    def convert_to_tensors(self, tensor_type=None, prepend_batch_axis: bool = False) -> "BatchEncoding":
        if tensor_type is None:
            return self
        data = dict(self)
        if prepend_batch_axis:
            data = {k: [v] for k, v in data.items()}
        self.update(to_tensors(data, tensor_type))
        return self

    def to(self, device, non_blocking: bool = False) -> "BatchEncoding":
        """Move every torch tensor value to `device` (in place; returns self, like transformers)."""
        import torch

        if isinstance(device, (str, int, torch.device)):
            for k, v in self.items():
                if isinstance(v, torch.Tensor):
                    dict.__setitem__(self, k, v.to(device=device, non_blocking=non_blocking))
        else:
            raise TypeError(f"BatchEncoding.to() expects a device (str, int or torch.device), got {type(device).__name__}")
        return self

    # per-token views ---------------------------------------------------------------------------------
    def _row(self, i: int) -> Row:
        if self._rows is None:
            raise ValueError("this BatchEncoding was not produced by a tokenizer call, so it has no token alignment")
        if not -len(self._rows) <= i < len(self._rows):
            raise IndexError(f"batch index {i} out of range for a batch of {len(self._rows)} rows")
        return self._rows[i]

    def _assemble(self, i: int, field: str, special, pad, cls=None, sep=None):
        r = self._row(i)
        cls = special if cls is None else cls
        sep = special if sep is None else sep
        a0, a1 = r.a_span
        out = [pad] * r.pad_left
        if r.specials:
            out.append(cls)
        out += getattr(r.a, field)[a0:a1]
        if r.specials:
            out.append(sep)
        if r.b is not None:
            b0, b1 = r.b_span
            if r.specials:
                out.append(sep)
            out += getattr(r.b, field)[b0:b1]
            if r.specials:
                out.append(sep)
        out += [pad] * r.pad_right
        return out

    def tokens(self, batch_index: int = 0) -> list[str]:
        t = self._template
        return self._assemble(batch_index, "tokens", None, t.pad, t.cls, t.sep)

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._assemble(batch_index, "word_ids", None, None)

    def words(self, batch_index: int = 0) -> list[int | None]:
        return self.word_ids(batch_index)

    def offsets(self, batch_index: int = 0) -> list[tuple[int, int]]:
        return self._assemble(batch_index, "offsets", (0, 0), (0, 0))

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        r = self._row(batch_index)
        a0, a1 = r.a_span
        sp = [None] if r.specials else []
        out = [None] * r.pad_left + sp + [0] * (a1 - a0) + sp
        if r.b is not None:
            b0, b1 = r.b_span
            out += sp + [1] * (b1 - b0) + sp
        return out + [None] * r.pad_right

    def _split_index(self, batch_or_index: int, index: int | None) -> tuple[int, int]:
        if index is None:
            if len(self._rows or ()) > 1:
                raise ValueError("this is a batch: pass (batch_index, index)")
            return 0, batch_or_index
        return batch_or_index, index

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        b, t = self._split_index(batch_or_token_index, token_index)
        return self.sequence_ids(b)[t]

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        b, t = self._split_index(batch_or_token_index, token_index)
        return self.word_ids(b)[t]

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        b, t = self._split_index(batch_or_token_index, token_index)
        if self.sequence_ids(b)[t] is None:
            return None
        return CharSpan(*self.offsets(b)[t])

    def word_to_tokens(self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0) -> TokenSpan | None:
        b, w = self._split_index(batch_or_word_index, word_index)
        hits = [t for t, (s, wid) in enumerate(zip(self.sequence_ids(b), self.word_ids(b))) if s == sequence_index and wid == w]
        return TokenSpan(hits[0], hits[-1] + 1) if hits else None

    def word_to_chars(self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0) -> CharSpan | None:
        b, w = self._split_index(batch_or_word_index, word_index)
        span = self.word_to_tokens(b, w, sequence_index)
        if span is None:
            return None
        offs = self.offsets(b)
        return CharSpan(offs[span.start][0], offs[span.end - 1][1])

    def char_to_token(self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0) -> int | None:
        b, c = self._split_index(batch_or_char_index, char_index)
        for t, (s, (o0, o1)) in enumerate(zip(self.sequence_ids(b), self.offsets(b))):
            if s == sequence_index and o0 <= c < o1:
                return t
        return None

    def char_to_word(self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0) -> int | None:
        b, c = self._split_index(batch_or_char_index, char_index)
        t = self.char_to_token(b, c, sequence_index)
        return None if t is None else self.word_ids(b)[t]


class RowView:
    """One row of a BatchEncoding seen like a `tokenizers.Encoding`."""

    def __init__(self, batch: BatchEncoding, index: int):
        batch._row(index)  # range check
        self._batch, self._i = batch, index

    def _field(self, key):
        value = self._batch[key][self._i] if key in self._batch else None
        return value.tolist() if hasattr(value, "tolist") else value

    ids = property(lambda self: self._field("input_ids"))
    attention_mask = property(lambda self: self._field("attention_mask"))
    special_tokens_mask = property(lambda self: self._field("special_tokens_mask"))
    tokens = property(lambda self: self._batch.tokens(self._i))
    offsets = property(lambda self: self._batch.offsets(self._i))
    word_ids = property(lambda self: self._batch.word_ids(self._i))
    words = word_ids
    sequence_ids = property(lambda self: self._batch.sequence_ids(self._i))
    n_sequences = property(lambda self: self._batch.n_sequences)

    @property
    def type_ids(self):
        return self._field("token_type_ids") or [0] * len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"RowView(num_tokens={len(self)}, attributes=[ids, type_ids, tokens, offsets, attention_mask, special_tokens_mask, word_ids, sequence_ids])"
