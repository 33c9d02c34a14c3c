"""The encode pipeline shared by both tokenizers: raw encodings -> truncation/overflow rows ->
`<s> A </s></s> B </s>` -> padding -> BatchEncoding; plus pad() for already-encoded inputs.

Mixed into RobertaTokenizerBase; uses its special-token ids, model_max_length, padding/truncation sides and
the subclass's `_raw_encode(texts, pretokenized, add_prefix_space, split_special)`.
"""
from __future__ import annotations

import logging

from .batch_encoding import BatchEncoding, Row, Template
from .strategies import padded_length, resolve_strategies, truncate

logger = logging.getLogger(__name__)

_TEXT_TYPES_HELP = ("`str` (one text), `list[str]` (a batch, or one text split into words with is_split_into_words=True) "
                    "or `list[list[str]]` (a batch of word lists)")


def _check_texts(text, pretokenized: bool, name: str):
    """-> (batched, list of samples); anything else raises TypeError naming the offending value."""
    def bad(where, value):
        return TypeError(f"{name}{where} must be {_TEXT_TYPES_HELP}; got {type(value).__name__}: {value!r:.80}")

    if pretokenized:
        if isinstance(text, (list, tuple)):
            if all(isinstance(w, str) for w in text):
                return False, [list(text)]
            for i, sample in enumerate(text):
                if not isinstance(sample, (list, tuple)) or not all(isinstance(w, str) for w in sample):
                    raise bad(f"[{i}]", sample)
            return True, [list(s) for s in text]
        raise bad("", text)
    if isinstance(text, str):
        return False, [text]
    if isinstance(text, (list, tuple)):
        for i, sample in enumerate(text):
            if not isinstance(sample, str):
                raise bad(f"[{i}]", sample)
        return True, list(text)
    raise bad("", text)


def _as_list(value):
    """A tensor or array -> nested lists (TF tensors have no .tolist(); their numpy views do); others as given."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "numpy"):
        return value.numpy().tolist()
    return value


class RawIds:
    """A raw encoding made from ids alone (prepare_for_model): no text, so no offsets or words."""

    def __init__(self, ids: list[int], to_tokens):
        self.ids, self._to_tokens = ids, to_tokens

    @property
    def tokens(self):
        return self._to_tokens(self.ids)

    @property
    def offsets(self):
        return [(0, 0)] * len(self.ids)

    @property
    def word_ids(self):
        return [None] * len(self.ids)


class EncodeMixin:
    def __call__(self, text=None, text_pair=None, text_target=None, text_pair_target=None, add_special_tokens=True,
                 padding=False, truncation=None, max_length=None, stride=0, is_split_into_words=False,
                 pad_to_multiple_of=None, padding_side=None, return_tensors=None, return_token_type_ids=None,
                 return_attention_mask=None, return_overflowing_tokens=False, return_special_tokens_mask=False,
                 return_offsets_mapping=False, return_length=False, verbose=True, **kwargs) -> BatchEncoding:
        """Tokenize text(s) (and pairs) into model inputs; options as in transformers' PreTrainedTokenizerBase.__call__."""
        if text is None and text_target is None:
            raise ValueError("You need to specify either `text` or `text_target`.")
        opts = dict(add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                    max_length=max_length, stride=stride, is_split_into_words=is_split_into_words,
                    pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side, return_tensors=return_tensors,
                    return_token_type_ids=return_token_type_ids, return_attention_mask=return_attention_mask,
                    return_overflowing_tokens=return_overflowing_tokens,
                    return_special_tokens_mask=return_special_tokens_mask,
                    return_offsets_mapping=return_offsets_mapping, return_length=return_length, verbose=verbose, **kwargs)
        encodings = self._call_one(text, text_pair, **opts) if text is not None else None
        if text_target is None:
            return encodings
        targets = self._call_one(text_target, text_pair_target, **opts)
        if encodings is None:
            return targets
        encodings["labels"] = targets["input_ids"]
        return encodings

    def _call_one(self, text, text_pair=None, *, is_split_into_words=False, **opts) -> BatchEncoding:
        if (text_pair is None and not is_split_into_words and isinstance(text, (list, tuple)) and text
                and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in text)):
            text, text_pair = [x[0] for x in text], [x[1] for x in text]  # a batch of (text, text_pair)
        batched, first = _check_texts(text, is_split_into_words, "text")
        second = None
        if text_pair == "" and isinstance(text, str):
            text_pair = None  # transformers encodes a single text when the pair is an empty string
        if text_pair is not None:
            batched_b, second = _check_texts(text_pair, is_split_into_words, "text_pair")
            if batched != batched_b or len(first) != len(second):
                raise ValueError(f"text and text_pair must both be single inputs or batches of the same length "
                                 f"(got {len(first)} and {len(second)} samples)")
        return self._encode(first, second, batched=batched, pretokenized=is_split_into_words, **opts)

    def encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        return self._call_one(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs) -> BatchEncoding:
        """A batch of texts, or of (text, text_pair) tuples."""
        items = list(batch_text_or_text_pairs)
        pretok = kwargs.get("is_split_into_words", False)
        is_pair = (lambda x: isinstance(x, (list, tuple)) and len(x) == 2 and isinstance(x[0], (list, tuple))) if pretok \
            else (lambda x: isinstance(x, (list, tuple)))
        if items and all(is_pair(x) for x in items):
            return self._call_one([a for a, _ in items], [b for _, b in items], **kwargs)
        return self._call_one(items, **kwargs)

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, **kwargs) -> list[int]:
        """Input ids of one text (or pair)."""
        return self._call_one(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """Token strings (vocabulary spellings; `<mask>` without the space it swallowed)."""
        return self.convert_ids_to_tokens(self.encode(text, pair, add_special_tokens=add_special_tokens, **kwargs))

    def prepare_seq2seq_batch(self, src_texts, tgt_texts=None, max_length=None, max_target_length=None,
                              padding="longest", return_tensors=None, truncation=True, **kwargs) -> BatchEncoding:
        """Deprecated in transformers, kept for old scripts: source texts, and target texts as `labels`."""
        kwargs.pop("src_lang", None)
        kwargs.pop("tgt_lang", None)
        max_length = self.model_max_length if max_length is None else max_length
        opts = dict(padding=padding, truncation=truncation, return_tensors=return_tensors, **kwargs)
        inputs = self(src_texts, max_length=max_length, **opts)
        if tgt_texts is not None:
            targets = self(tgt_texts, max_length=max_length if max_target_length is None else max_target_length, **opts)
            inputs["labels"] = targets["input_ids"]
        return inputs

    def prepare_for_model(self, ids: list[int], pair_ids: list[int] | None = None, **kwargs) -> BatchEncoding:
        """Specials, truncation and padding for already-tokenized ids (one sample). Overflow comes back as
        extra rows, as from __call__."""
        kwargs.pop("prepend_batch_axis", None)
        tokens = self.convert_ids_to_tokens
        return self._encode(RawIds(list(ids), tokens), None if pair_ids is None else RawIds(list(pair_ids), tokens),
                            batched=False, pretokenized=False, **kwargs)

    def _encode(self, first, second, *, batched, pretokenized, add_special_tokens=True, padding=False,
                truncation=None, max_length=None, stride=0, pad_to_multiple_of=None, padding_side=None,
                return_tensors=None, return_token_type_ids=None, return_attention_mask=None,
                return_overflowing_tokens=False, return_special_tokens_mask=False, return_offsets_mapping=False,
                return_length=False, verbose=True, add_prefix_space=None, split_special_tokens=None,
                **unknown) -> BatchEncoding:
        if unknown:
            logger.warning("Keyword arguments %s not recognized.", unknown)
        pad, trunc, max_length = resolve_strategies(padding, truncation, max_length, pad_to_multiple_of,
                                                    self.model_max_length, verbose)
        side = padding_side or self.padding_side
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
        if pad != "do_not_pad" and self.pad_token_id is None:
            raise ValueError("Asking to pad but the tokenizer does not have a padding token; set tokenizer.pad_token "
                             "(e.g. tokenizer.pad_token = tokenizer.eos_token) or add one with add_special_tokens.")
        prefix = self._add_prefix_space if add_prefix_space is None else bool(add_prefix_space)
        if isinstance(first, RawIds):  # prepare_for_model: ids given, nothing to tokenize
            raws_a, raws_b = [first], None if second is None else [second]
        else:
            split = self.split_special_tokens if split_special_tokens is None else bool(split_special_tokens)
            raws_a = self._raw_encode(first, pretokenized, prefix, split)
            raws_b = None if second is None else self._raw_encode(second, pretokenized, prefix, split)
        n_special = (4 if second is not None else 2) if add_special_tokens else 0
        if trunc != "do_not_truncate" and max_length < n_special:
            raise ValueError(f"max_length={max_length} is smaller than the {n_special} special tokens "
                             f"{'a pair' if second is not None else 'a single sequence'} needs")
        cls, sep = self.cls_token_id, self.sep_token_id
        overflow = bool(return_overflowing_tokens)
        rows, id_rows, sample_of = [], [], []
        for i, a in enumerate(raws_a):
            ia = a.ids
            b = None if raws_b is None else raws_b[i]
            ib = None if b is None else b.ids
            if trunc == "do_not_truncate" and b is None:
                id_rows.append([cls, *ia, sep] if add_special_tokens else list(ia))
                rows.append(Row(a, (0, len(ia)), None, None, 0, 0, add_special_tokens))
                sample_of.append(i)
                continue
            for (a0, a1), bs in truncate(len(ia), None if ib is None else len(ib), trunc,
                                         (max_length or 0) - n_special, stride, self.truncation_side, overflow):
                ids = [cls, *ia[a0:a1], sep] if add_special_tokens else ia[a0:a1]
                if b is not None:
                    ids += [sep, *ib[bs[0]:bs[1]], sep] if add_special_tokens else ib[bs[0]:bs[1]]
                id_rows.append(ids)
                rows.append(Row(a, (a0, a1), b, bs, 0, 0, add_special_tokens))
                sample_of.append(i)
        if trunc == "do_not_truncate" and verbose and not self._warned_too_long:
            longest = max((len(r) for r in id_rows), default=0)
            if longest > self.model_max_length:
                self._warned_too_long = True
                logger.warning("Token indices sequence length is longer than the specified maximum sequence length "
                               "for this model (%d > %d). Running this sequence through the model will result in "
                               "indexing errors", longest, self.model_max_length)
        data, lengths = self._assemble_outputs(rows, id_rows, pad, max_length, pad_to_multiple_of, side,
                                               return_token_type_ids, return_attention_mask, return_special_tokens_mask)
        enc = BatchEncoding(data, rows=rows, template=Template(self.cls_token, self.sep_token, self.pad_token),
                            n_sequences=2 if second is not None else 1)
        if return_offsets_mapping:
            dict.__setitem__(enc, "offset_mapping", [enc.offsets(r) for r in range(len(rows))])
        if return_length:
            dict.__setitem__(enc, "length", lengths)
        if overflow:
            dict.__setitem__(enc, "overflow_to_sample_mapping", sample_of)
        if not batched and return_tensors is None and not overflow:
            for k in list(enc.keys()):  # like transformers: only per-token lists lose the batch axis
                if enc[k] and isinstance(enc[k][0], list):
                    dict.__setitem__(enc, k, enc[k][0])
        return enc.convert_to_tensors(return_tensors)

    def _assemble_outputs(self, rows, id_rows, pad, max_length, multiple, side, want_types, want_attention,
                          want_special) -> tuple[dict, list[int]]:
        """Pad rows in place (recording pad counts in `rows`) and build the per-token side outputs."""
        target = padded_length([len(r) for r in id_rows], pad, max_length, multiple)
        if want_attention is None:
            want_attention = "attention_mask" in self.model_input_names
        if want_types is None:
            want_types = "token_type_ids" in self.model_input_names
        pad_id, left = self.pad_token_id, side == "left"
        data = {"input_ids": id_rows}
        types, attention, special, length = [], [], [], []
        for j, ids in enumerate(id_rows):
            n = len(ids)
            extra = target - n if target is not None and target > n else 0
            row = rows[j]
            if want_special:
                la, lb = row.a_span[1] - row.a_span[0], None if row.b is None else row.b_span[1] - row.b_span[0]
                mask = (self.get_special_tokens_mask([0] * la, None if lb is None else [0] * lb)
                        if row.specials else [0] * n)
            if extra:
                rows[j] = row._replace(pad_left=extra) if left else row._replace(pad_right=extra)
                id_rows[j] = ids = [pad_id] * extra + ids if left else ids + [pad_id] * extra
            if want_types:
                types.append([0] * len(ids))
            if want_attention:
                attention.append(([0] * extra + [1] * n) if left else ([1] * n + [0] * extra))
            if want_special:
                special.append(([1] * extra + mask) if left else (mask + [1] * extra))
            length.append(len(ids))
        if want_types:
            data["token_type_ids"] = types
        if want_attention:
            data["attention_mask"] = attention
        if want_special:
            data["special_tokens_mask"] = special
        return data, length

    def pad(self, encoded_inputs, padding=True, max_length=None, pad_to_multiple_of=None, padding_side=None,
            return_attention_mask=None, return_tensors=None, verbose=True) -> BatchEncoding:
        """Pad already-encoded inputs (a dict of lists or a list of dicts, lists/tensors/arrays inside), as collators do."""
        if isinstance(encoded_inputs, (list, tuple)):
            if not encoded_inputs:
                return BatchEncoding({}, tensor_type=return_tensors)
            if not all(hasattr(e, "keys") for e in encoded_inputs):
                raise TypeError("pad() expects a dict of lists or a list of dicts (e.g. tokenizer outputs)")
            encoded_inputs = {k: [e[k] for e in encoded_inputs] for k in encoded_inputs[0].keys()}
        main = self.model_input_names[0]  # "input_ids", unless the user renamed the model's inputs
        if main not in encoded_inputs:
            raise ValueError(f"pad() needs {main!r} among the keys; got {list(encoded_inputs.keys())}")
        first = encoded_inputs[main]
        if return_tensors is None:
            probe = first[0] if isinstance(first, (list, tuple)) and first else first
            mod = type(probe).__module__
            return_tensors = ("pt" if mod.startswith("torch") else "np" if mod.startswith("numpy")
                              else "tf" if mod.startswith("tensorflow") else None)
        data = {k: [_as_list(x) for x in v] if isinstance(v, (list, tuple)) else _as_list(v)
                for k, v in encoded_inputs.items()}
        single = bool(data[main]) and not isinstance(data[main][0], (list, tuple))
        if single:
            data = {k: [v] for k, v in data.items()}
        pad, _, max_length = resolve_strategies(padding, False, max_length, pad_to_multiple_of, self.model_max_length, verbose)
        if pad != "do_not_pad" and self.pad_token_id is None:
            raise ValueError("Asking to pad but the tokenizer does not have a padding token.")
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        if return_attention_mask and "attention_mask" not in data:
            data["attention_mask"] = [[1] * len(ids) for ids in data[main]]
        target = padded_length([len(r) for r in data[main]], pad, max_length, pad_to_multiple_of)
        left = (padding_side or self.padding_side) == "left"
        fill = {main: self.pad_token_id, "attention_mask": 0, "token_type_ids": self.pad_token_type_id,
                "special_tokens_mask": 1, "offset_mapping": (0, 0)}
        if target is not None:
            for key, value in fill.items():
                if key in data:
                    data[key] = [([value] * (target - len(r)) + list(r)) if left else (list(r) + [value] * (target - len(r)))
                                 for r in data[key]]
        if single and return_tensors is None:
            data = {k: v[0] for k, v in data.items()}
        return BatchEncoding(data, tensor_type=return_tensors, prepend_batch_axis=False)
