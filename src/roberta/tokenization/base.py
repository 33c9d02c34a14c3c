"""What the slow and fast RoBERTa tokenizers share: special tokens, added tokens, the encode pipeline
(raw encodings -> truncation/overflow -> `<s> A </s></s> B </s>` -> padding -> BatchEncoding), pad(), decode.

A subclass supplies only the raw tokenization of plain text (no special tokens):
`_raw_encode(texts, pretokenized, add_prefix_space)` -> objects with `.ids`, `.tokens`, `.offsets`, `.word_ids`,
plus vocabulary look-ups. Everything a user sees downstream of that is computed here, once, for both.
"""
from __future__ import annotations

import logging
import operator

from .added_tokens import AddedToken
from .batch_encoding import BatchEncoding, Row, Template, to_tensors
from .bpe import bytes_from_tokens
from .strategies import padded_length, resolve_strategies, truncate

logger = logging.getLogger(__name__)

SPECIAL_TOKENS_ATTRIBUTES = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
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


def clean_up_tokenization(text: str) -> str:
    """transformers' legacy English detokenizer (" ." -> ".", " n't" -> "n't", ...); off by default."""
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                 (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text


def _as_int_list(ids, what="token_ids") -> list:
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    try:
        if not isinstance(ids, (list, tuple)):
            return [operator.index(ids)]
        return [operator.index(i) for i in ids]
    except TypeError:
        raise TypeError(f"{what} must be an int or a flat list of ints (use batch_decode for a batch), got {ids!r:.80}") from None


class RobertaTokenizerBase:
    """Shared API of RobertaTokenizer and RobertaTokenizerFast (the transformers v4.57 surface)."""

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
    model_input_names = ["input_ids", "attention_mask"]
    is_fast = False
    pad_token_type_id = 0

    def __init__(self, *, errors="replace", bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                 unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", add_prefix_space=False, trim_offsets=True,
                 model_max_length=512, padding_side="right", truncation_side="right",
                 clean_up_tokenization_spaces=False, additional_special_tokens=None, name_or_path="",
                 model_input_names=None, added_tokens_decoder=None, **kwargs):
        """model_max_length defaults to 512 (roberta-base's limit), never transformers' 1e30 "unknown" sentinel,
        so truncation=True and padding='max_length' work on files without a tokenizer_config.json."""
        if padding_side not in ("right", "left") or truncation_side not in ("right", "left"):
            raise ValueError(f"padding_side/truncation_side must be 'right' or 'left', got {padding_side!r}/{truncation_side!r}")
        self.errors, self.trim_offsets = errors, trim_offsets
        self._add_prefix_space = bool(add_prefix_space)
        self.model_max_length = int(model_max_length) if model_max_length is not None else 512
        self.padding_side, self.truncation_side = padding_side, truncation_side
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.name_or_path = str(name_or_path)
        if model_input_names is not None:
            self.model_input_names = list(model_input_names)
        self.init_kwargs = dict(kwargs)
        self._warned_too_long = False
        self._added_tokens_decoder: dict[int, AddedToken] = {}
        self._added_ids: dict[str, int] = {}
        self._special: dict[str, AddedToken | None] = {}
        for attr, value in zip(SPECIAL_TOKENS_ATTRIBUTES,
                               (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token)):
            self._set_special(attr, value)
        self._additional = [AddedToken.coerce(t, special=True) for t in (additional_special_tokens or [])]
        # Saved added tokens first, in id order, so a reload gives each its saved id.
        for tid, tok in sorted((added_tokens_decoder or {}).items()):
            tok = AddedToken.coerce(tok)
            self._add_tokens([tok], special=tok.special)
            if self._added_ids.get(tok.content) != int(tid):
                logger.warning("added token %r got id %s, not its saved id %s", tok.content, self._added_ids.get(tok.content), tid)
        self._add_tokens([t for t in self.all_special_tokens_extended if t.content not in self._added_ids], special=True)

    # special tokens ----------------------------------------------------------------------------------
    def _set_special(self, attr: str, value) -> None:
        if value is None:
            self._special[attr] = None
            return
        # RoBERTa's mask token swallows the space before it, whatever string is assigned (as transformers' fast).
        default = {"lstrip": True, "normalized": False} if attr == "mask_token" else {}
        tok = AddedToken.coerce(value, special=True, **default)
        tok.special = True
        self._special[attr] = tok

    @property
    def additional_special_tokens(self) -> list[str]:
        return [t.content for t in self._additional]

    @property
    def additional_special_tokens_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.additional_special_tokens)

    @property
    def special_tokens_map(self) -> dict:
        out = {a: t.content for a, t in self._special.items() if t is not None}
        if self._additional:
            out["additional_special_tokens"] = self.additional_special_tokens
        return out

    @property
    def special_tokens_map_extended(self) -> dict:
        out = {a: t for a, t in self._special.items() if t is not None}
        if self._additional:
            out["additional_special_tokens"] = list(self._additional)
        return out

    @property
    def all_special_tokens_extended(self) -> list[AddedToken]:
        seen, out = set(), []
        for tok in [t for t in self._special.values() if t is not None] + self._additional:
            if tok.content not in seen:
                seen.add(tok.content)
                out.append(tok)
        return out

    @property
    def all_special_tokens(self) -> list[str]:
        return [t.content for t in self.all_special_tokens_extended]

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    @property
    def add_prefix_space(self) -> bool:
        return self._add_prefix_space

    @add_prefix_space.setter
    def add_prefix_space(self, value: bool) -> None:
        # Unlike transformers' fast tokenizer (issue #11057), this really changes later encodings.
        self._add_prefix_space = bool(value)

    # added tokens ------------------------------------------------------------------------------------
    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return dict(sorted(self._added_tokens_decoder.items()))

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {t.content: i for i, t in sorted(self._added_tokens_decoder.items())}

    def get_added_vocab(self) -> dict[str, int]:
        return self.added_tokens_encoder

    def _add_tokens(self, tokens, special: bool = False) -> int:
        toks = []
        for t in tokens:
            tok = AddedToken.coerce(t, special=special)
            if special:
                tok.special = True
            toks.append(tok)
        if not toks:
            return 0
        before = len(self)
        ids = self._backend_add_tokens(toks)
        for tok, tid in zip(toks, ids):
            old = self._added_ids.get(tok.content)
            if old is not None and old != tid:
                self._added_tokens_decoder.pop(old, None)
            self._added_tokens_decoder[tid] = tok
            self._added_ids[tok.content] = tid
        self._added_tokens_changed()
        return len(self) - before

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens matched whole before BPE; returns how many new ids were created."""
        if isinstance(new_tokens, (str, AddedToken)) or hasattr(new_tokens, "content"):
            new_tokens = [new_tokens]
        return self._add_tokens(new_tokens, special=special_tokens)

    def add_special_tokens(self, special_tokens_dict: dict, replace_additional_special_tokens: bool = True) -> int:
        """Set special-token attributes (bos_token, ..., additional_special_tokens) and add them to the vocabulary."""
        if not isinstance(special_tokens_dict, dict):
            raise TypeError(f"add_special_tokens expects a dict like {{'pad_token': '[PAD]'}}, got {type(special_tokens_dict).__name__}")
        to_add = []
        for key, value in special_tokens_dict.items():
            if key == "additional_special_tokens":
                if not isinstance(value, (list, tuple)):
                    raise TypeError("additional_special_tokens must be a list of tokens")
                extra = [AddedToken.coerce(t, special=True) for t in value]
                if replace_additional_special_tokens:
                    self._additional = extra
                else:
                    self._additional += [t for t in extra if t.content not in self.additional_special_tokens]
                to_add += extra
            elif key in SPECIAL_TOKENS_ATTRIBUTES:
                self._set_special(key, value)
                if self._special[key] is not None:
                    to_add.append(self._special[key])
            else:
                raise ValueError(f"{key!r} is not a special token attribute; use one of {SPECIAL_TOKENS_ATTRIBUTES} "
                                 f"or 'additional_special_tokens'")
        return self._add_tokens(to_add, special=True)

    # vocabulary --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.vocab_size + sum(1 for t in self._added_ids if self._token_to_id(t) is None or
                                     self._token_to_id(t) >= self.vocab_size)

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self._base_vocab())
        vocab.update(self._added_ids)
        return vocab

    def convert_tokens_to_ids(self, tokens):
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._one_token_to_id(tokens)
        return [self._one_token_to_id(t) for t in tokens]

    def _one_token_to_id(self, token: str):
        tid = self._added_ids.get(token)
        if tid is None:
            tid = self._token_to_id(token)
        if tid is None:
            unk = self._special.get("unk_token")
            tid = None if unk is None else self._added_ids.get(unk.content, self._token_to_id(unk.content))
        return tid

    def _one_id_to_token(self, index: int):
        tok = self._added_tokens_decoder.get(index)
        return tok.content if tok is not None else self._id_to_token(index)

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        if isinstance(ids, int) and not isinstance(ids, bool):
            return self._one_id_to_token(ids)
        ids = _as_int_list(ids, "ids")
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._one_id_to_token(i) for i in ids if i not in skip]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return bytes_from_tokens(tokens, self.errors)

    # model-input helpers (the single/pair template) ---------------------------------------------------
    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 4 if pair else 2

    @property
    def max_len_single_sentence(self) -> int:
        return self.model_max_length - 2

    @property
    def max_len_sentences_pair(self) -> int:
        return self.model_max_length - 4

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """`<s> A </s>` or `<s> A </s></s> B </s>` (RoBERTa doubles the separator between segments)."""
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + list(token_ids_0) + sep
        return cls + list(token_ids_0) + sep + sep + list(token_ids_1) + sep

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens: bool = False) -> list[int]:
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("with already_has_special_tokens=True pass one sequence that already holds them")
            special = set(self.all_special_ids)
            return [1 if i in special else 0 for i in token_ids_0]
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None) -> list[int]:
        """All zeros: RoBERTa has one token type (type_vocab_size=1)."""
        n = len(token_ids_0) + 2 + (0 if token_ids_1 is None else len(token_ids_1) + 2)
        return [0] * n

    # encoding ----------------------------------------------------------------------------------------
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

    def _encode(self, first, second, *, batched, pretokenized, add_special_tokens=True, padding=False,
                truncation=None, max_length=None, stride=0, pad_to_multiple_of=None, padding_side=None,
                return_tensors=None, return_token_type_ids=None, return_attention_mask=None,
                return_overflowing_tokens=False, return_special_tokens_mask=False, return_offsets_mapping=False,
                return_length=False, verbose=True, add_prefix_space=None, **unknown) -> BatchEncoding:
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
        raws_a = self._raw_encode(first, pretokenized, prefix)
        raws_b = None if second is None else self._raw_encode(second, pretokenized, prefix)
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
        if "input_ids" not in encoded_inputs:
            raise ValueError(f"pad() needs 'input_ids' among the keys; got {list(encoded_inputs.keys())}")
        first = encoded_inputs["input_ids"]
        if return_tensors is None:
            probe = first[0] if isinstance(first, (list, tuple)) and first else first
            mod = type(probe).__module__
            return_tensors = "pt" if mod.startswith("torch") else "np" if mod.startswith("numpy") else None
        data = {k: (v.tolist() if hasattr(v, "tolist") else [x.tolist() if hasattr(x, "tolist") else x for x in v]
                    if isinstance(v, (list, tuple)) else v) for k, v in encoded_inputs.items()}
        single = bool(data["input_ids"]) and not isinstance(data["input_ids"][0], (list, tuple))
        if single:
            data = {k: [v] for k, v in data.items()}
        pad, _, max_length = resolve_strategies(padding, False, max_length, pad_to_multiple_of, self.model_max_length, verbose)
        if pad != "do_not_pad" and self.pad_token_id is None:
            raise ValueError("Asking to pad but the tokenizer does not have a padding token.")
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        if return_attention_mask and "attention_mask" not in data:
            data["attention_mask"] = [[1] * len(ids) for ids in data["input_ids"]]
        target = padded_length([len(r) for r in data["input_ids"]], pad, max_length, pad_to_multiple_of)
        left = (padding_side or self.padding_side) == "left"
        fill = {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": self.pad_token_type_id,
                "special_tokens_mask": 1, "offset_mapping": (0, 0)}
        if target is not None:
            for key, value in fill.items():
                if key in data:
                    data[key] = [([value] * (target - len(r)) + list(r)) if left else (list(r) + [value] * (target - len(r)))
                                 for r in data[key]]
        if single and return_tensors is None:
            data = {k: v[0] for k, v in data.items()}
        return BatchEncoding(data, tensor_type=return_tensors, prepend_batch_axis=False)

    # decoding ----------------------------------------------------------------------------------------
    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               **kwargs) -> str:
        """Ids -> text. Added tokens are emitted verbatim; vocabulary tokens go back through the byte map."""
        ids = _as_int_list(token_ids)
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        parts, run = [], []
        for i in ids:
            if i in skip:
                continue
            added = self._added_tokens_decoder.get(i)
            if added is not None:
                if run:
                    parts.append(bytes_from_tokens(run, self.errors))
                    run = []
                parts.append(added.content)
                continue
            tok = self._id_to_token(i)
            if tok is not None:
                run.append(tok)
        if run:
            parts.append(bytes_from_tokens(run, self.errors))
        text = "".join(parts)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs) -> list[str]:
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces, **kwargs) for s in sequences]

    # files -------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *init_inputs, **kwargs):
        """Load from a folder or hub id (vocab.json + merges.txt and/or tokenizer.json, tokenizer_config.json,
        special_tokens_map.json); keyword arguments override the files' settings."""
        from .files import load_pretrained

        return load_pretrained(cls, pretrained_model_name_or_path, init_inputs, kwargs)

    def save_pretrained(self, save_directory, legacy_format=None, filename_prefix=None, **kwargs) -> tuple[str, ...]:
        """Write tokenizer_config.json, special_tokens_map.json, vocab.json, merges.txt and tokenizer.json."""
        from .files import save_pretrained

        return save_pretrained(self, save_directory, filename_prefix)

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, str]:
        from .files import write_vocab_files

        vocab, merges = self._vocab_and_merges()
        return write_vocab_files(save_directory, filename_prefix, vocab, merges)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"model_max_length={self.model_max_length}, is_fast={self.is_fast}, padding_side={self.padding_side!r}, "
                f"truncation_side={self.truncation_side!r}, special_tokens={self.special_tokens_map}, "
                f"add_prefix_space={self.add_prefix_space})")

    # subclass hooks ----------------------------------------------------------------------------------
    vocab_size: int

    def _raw_encode(self, texts: list, pretokenized: bool, add_prefix_space: bool) -> list:
        raise NotImplementedError

    def _token_to_id(self, token: str) -> int | None:
        raise NotImplementedError

    def _id_to_token(self, index: int) -> str | None:
        raise NotImplementedError

    def _base_vocab(self) -> dict[str, int]:
        raise NotImplementedError

    def _vocab_and_merges(self) -> tuple[dict[str, int], list[tuple[str, str]]]:
        raise NotImplementedError

    def _backend_add_tokens(self, tokens: list[AddedToken]) -> list[int]:
        raise NotImplementedError

    def _added_tokens_changed(self) -> None:
        pass


def _special_properties(attr: str):
    def get_token(self):
        tok = self._special.get(attr)
        return None if tok is None else tok.content

    def set_token(self, value):
        self._set_special(attr, value)

    def get_id(self):
        tok = self._special.get(attr)
        return None if tok is None else self._one_token_to_id(tok.content)

    def set_id(self, value):
        self._set_special(attr, None if value is None else self._one_id_to_token(value))

    return property(get_token, set_token), property(get_id, set_id)


for _attr in SPECIAL_TOKENS_ATTRIBUTES:
    _tok_prop, _id_prop = _special_properties(_attr)
    setattr(RobertaTokenizerBase, _attr, _tok_prop)
    setattr(RobertaTokenizerBase, _attr + "_id", _id_prop)
