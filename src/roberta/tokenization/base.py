"""What the slow and fast RoBERTa tokenizers share: special tokens, added tokens, the encode pipeline
(raw encodings -> truncation/overflow -> `<s> A </s></s> B </s>` -> padding -> BatchEncoding), pad(), decode.

The encode pipeline itself lives in encode.py (EncodeMixin). A subclass supplies only the raw tokenization of plain text (no special tokens):
`_raw_encode(texts, pretokenized, add_prefix_space, split_special)` -> objects with `.ids`, `.tokens`, `.offsets`, `.word_ids`,
plus vocabulary look-ups. Everything a user sees downstream of that is computed here, once, for both.
"""
from __future__ import annotations

import logging
import operator

from .added_tokens import AddedToken, as_added_token
from .bpe import bytes_from_tokens
from .batch_encoding import BatchEncoding  # noqa: F401  (re-exported: roberta.BatchEncoding resolves here)
from .encode import EncodeMixin

logger = logging.getLogger(__name__)

SPECIAL_TOKENS_ATTRIBUTES = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
# Flags of a special token given as a bare string to __init__ or an attribute setter, as transformers'
# RobertaTokenizer makes them: <mask> swallows the space before it; the others are "normalized" (a no-op here,
# RoBERTa has no normalizer, but it is what transformers shows and writes for roberta-base's <s>, </s>, ...).
_FLAGS_FROM_STR = {"mask_token": {"lstrip": True, "normalized": False}}
_DEFAULT_FLAGS_FROM_STR = {"normalized": True}


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


class RobertaTokenizerBase(EncodeMixin):
    """Shared API of RobertaTokenizer and RobertaTokenizerFast (the transformers v4.57 surface)."""

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
    model_input_names = ["input_ids", "attention_mask"]
    is_fast = False
    pad_token_type_id = 0

    def __init__(self, *, errors="replace", bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                 unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", add_prefix_space=False, trim_offsets=True,
                 model_max_length=512, padding_side="right", truncation_side="right",
                 clean_up_tokenization_spaces=False, additional_special_tokens=None, name_or_path="",
                 model_input_names=None, added_tokens_decoder=None, chat_template=None, split_special_tokens=False,
                 **kwargs):
        """model_max_length defaults to 512 (roberta-base's limit), never transformers' 1e30 "unknown" sentinel,
        so truncation=True and padding='max_length' work on files without a tokenizer_config.json."""
        for key in kwargs:  # as transformers: a setting named like a method would shadow it
            if callable(getattr(type(self), key, None)):
                raise AttributeError(f"{key} conflicts with the method {key} in {type(self).__name__}")
        if padding_side not in ("right", "left") or truncation_side not in ("right", "left"):
            raise ValueError(f"padding_side/truncation_side must be 'right' or 'left', got {padding_side!r}/{truncation_side!r}")
        self.errors, self.trim_offsets = errors, trim_offsets
        self._add_prefix_space = bool(add_prefix_space)
        self.model_max_length = int(model_max_length) if model_max_length is not None else 512
        self.padding_side, self.truncation_side = padding_side, truncation_side
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        # encode special tokens' text as plain text (per call too); other added tokens still match, as in the fast
        # tokenizer of transformers (its slow one splits those too)
        self.split_special_tokens = bool(split_special_tokens)
        self.name_or_path = str(name_or_path)
        if model_input_names is not None:
            self.model_input_names = list(model_input_names)
        self.chat_template = chat_template  # a Jinja template, or {name: template}; see chat.py
        # The construction arguments, as transformers records them (code reads init_kwargs["add_prefix_space"] etc.).
        self.init_inputs = ()
        self.init_kwargs = {
            "errors": errors, "bos_token": bos_token, "eos_token": eos_token, "sep_token": sep_token,
            "cls_token": cls_token, "unk_token": unk_token, "pad_token": pad_token, "mask_token": mask_token,
            "add_prefix_space": add_prefix_space, "trim_offsets": trim_offsets, "model_max_length": model_max_length,
            "padding_side": padding_side, "truncation_side": truncation_side,
            "clean_up_tokenization_spaces": clean_up_tokenization_spaces,
            "additional_special_tokens": additional_special_tokens, **kwargs}
        self._warned_too_long = False
        self._added_tokens_decoder: dict[int, AddedToken] = {}
        self._added_ids: dict[str, int] = {}
        self._special: dict[str, AddedToken | None] = {}
        for attr, value in zip(SPECIAL_TOKENS_ATTRIBUTES,
                               (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token)):
            self._set_special(attr, value)
        self._additional = [as_added_token(t, special=True) for t in (additional_special_tokens or [])]
        # Saved added tokens first, in id order, so a reload gives each its saved id.
        for tid, tok in sorted((added_tokens_decoder or {}).items()):
            tok = as_added_token(tok)
            self._add_tokens([tok], special=tok.special)
            if self._added_ids.get(tok.content) != int(tid):
                logger.warning("added token %r got id %s, not its saved id %s", tok.content, self._added_ids.get(tok.content), tid)
        # Then the special tokens, unless already there with the same flags (AddedToken equality compares them):
        # a special given with other flags than the saved token's wins, as in transformers.
        self._add_tokens([t for t in self.all_special_tokens_extended
                          if self._added_tokens_decoder.get(self._added_ids.get(t.content)) != t], special=True)

    # special tokens ----------------------------------------------------------------------------------
    def _set_special(self, attr: str, value) -> None:
        """Set a special-token attribute from __init__ or a setter (a string gets RoBERTa's flags for it)."""
        flags = _FLAGS_FROM_STR.get(attr, _DEFAULT_FLAGS_FROM_STR)
        self._special[attr] = None if value is None else as_added_token(value, special=True, **flags)

    @property
    def additional_special_tokens(self) -> list[str] | None:
        return None if self._additional is None else [t.content for t in self._additional]

    @additional_special_tokens.setter
    def additional_special_tokens(self, tokens) -> None:
        """Replace the list (None unsets it); like transformers, this does not add them to the vocabulary."""
        self._additional = None if tokens is None else [as_added_token(t, special=True) for t in tokens]

    @property
    def additional_special_tokens_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.additional_special_tokens or [])

    @additional_special_tokens_ids.setter
    def additional_special_tokens_ids(self, ids) -> None:
        self.additional_special_tokens = [self._one_id_to_token(i) for i in ids]

    @property
    def special_tokens_map(self) -> dict:
        """special_tokens_map_extended with AddedTokens written as their strings."""
        return {a: [t.content for t in v] if isinstance(v, list) else v.content
                for a, v in self.special_tokens_map_extended.items()}

    @property
    def special_tokens_map_extended(self) -> dict:
        out = {a: t for a, t in self._special.items() if t is not None}
        if self._additional:
            out["additional_special_tokens"] = list(self._additional)
        return out

    @property
    def all_special_tokens_extended(self) -> list[AddedToken]:
        seen, out = set(), []
        for tok in [t for t in self._special.values() if t is not None] + (self._additional or []):
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
        """{id: AddedToken}; copies (as transformers' fast tokenizer hands out), so changing one changes nothing here."""
        return {i: as_added_token(t) for i, t in sorted(self._added_tokens_decoder.items())}

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {t.content: i for i, t in sorted(self._added_tokens_decoder.items())}

    def get_added_vocab(self) -> dict[str, int]:
        return self.added_tokens_encoder

    def _add_tokens(self, tokens, special: bool = False) -> int:
        toks = [as_added_token(t, special=special) for t in tokens]
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
        # Empty tokens are skipped, as transformers does (a list built from text may contain "").
        return self._add_tokens([t for t in new_tokens if str(getattr(t, "content", t))], special=special_tokens)

    def add_special_tokens(self, special_tokens_dict: dict, replace_additional_special_tokens: bool = True) -> int:
        """Set special-token attributes (bos_token, ..., additional_special_tokens) and add them to the vocabulary."""
        if not isinstance(special_tokens_dict, dict):
            raise TypeError(f"add_special_tokens expects a dict like {{'pad_token': '[PAD]'}}, got {type(special_tokens_dict).__name__}")
        to_add = []
        for key, value in special_tokens_dict.items():
            if key == "additional_special_tokens":
                if not isinstance(value, (list, tuple)):
                    raise TypeError("additional_special_tokens must be a list of tokens")
                extra = [as_added_token(t, special=True) for t in value]
                if replace_additional_special_tokens:
                    self._additional = extra
                else:
                    have = self.additional_special_tokens or []
                    self._additional = (self._additional or []) + [t for t in extra if t.content not in have]
                to_add += extra
            elif key in SPECIAL_TOKENS_ATTRIBUTES:
                # Unlike __init__ and the setters, a string here gets no RoBERTa flags (<mask> included), as in transformers.
                self._special[key] = None if value is None else as_added_token(value, special=True)
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

    @property
    def vocab(self) -> dict[str, int]:
        return self.get_vocab()

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

    # chat templates ----------------------------------------------------------------------------------
    def apply_chat_template(self, conversation, tools=None, documents=None, chat_template=None,
                            add_generation_prompt=False, continue_final_message=False, tokenize=True, padding=False,
                            truncation=False, max_length=None, return_tensors=None, return_dict=False,
                            tokenizer_kwargs=None, **kwargs):
        """Conversation(s) of {"role", "content"} messages -> prompt text (tokenize=False), its ids, or (return_dict)
        its BatchEncoding. Extra keyword arguments are template variables."""
        from . import chat

        if kwargs.pop("return_assistant_tokens_mask", False):
            raise NotImplementedError("return_assistant_tokens_mask is not supported (no {% generation %} tag)")
        template = chat.pick_template(self.chat_template, chat_template)
        batched = chat.is_batch(conversation)
        conversations = conversation if batched else [conversation]
        texts = [chat.render(template, getattr(c, "messages", c), add_generation_prompt=add_generation_prompt,
                             continue_final_message=continue_final_message, tools=tools, documents=documents, **kwargs)
                 for c in conversations]
        if not tokenize:
            return texts if batched else texts[0]
        # The template writes any special tokens itself.
        out = self(texts if batched else texts[0], padding=padding, truncation=truncation, max_length=max_length,
                   add_special_tokens=False, return_tensors=return_tensors, **(tokenizer_kwargs or {}))
        return out if return_dict else out["input_ids"]

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

        return save_pretrained(self, save_directory, filename_prefix, save_jinja_files=kwargs.get("save_jinja_files", True))

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

    def _raw_encode(self, texts: list, pretokenized: bool, add_prefix_space: bool, split_special: bool = False) -> list:
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
