"""RobertaTokenizerFast: the same API on the Rust `tokenizers` library.

Rust does the raw tokenization only (added-token split, ByteLevel pre-tokenizer, BPE, offset trimming);
special tokens, truncation/overflow, padding and tensors are done by the shared Python code in base.py,
so the outputs are those of the slow tokenizer by construction. `add_prefix_space` selects one of two
backends that differ in their pre-tokenizer and post-processor, so it works per instance and per call.
"""
from __future__ import annotations

import json

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

from .added_tokens import AddedToken, as_added_token
from .base import RobertaTokenizerBase
from .bpe import check_merges, check_vocab, read_merges, read_vocab


def _set_prefix_flags(node, add_prefix_space: bool, trim_offsets: bool | None = None):
    """Rewrite add_prefix_space (and trim_offsets) in a serialized pre-tokenizer/post-processor tree."""
    if isinstance(node, dict):
        if node.get("type") in ("ByteLevel", "RobertaProcessing"):
            node["add_prefix_space"] = add_prefix_space
            if trim_offsets is not None and node.get("type") == "RobertaProcessing":
                node["trim_offsets"] = trim_offsets
        for v in node.values():
            _set_prefix_flags(v, add_prefix_space, trim_offsets)
    elif isinstance(node, list):
        for v in node:
            _set_prefix_flags(v, add_prefix_space, trim_offsets)


def roberta_post_processor(sep: tuple[str, int], cls: tuple[str, int], trim_offsets: bool = True,
                           add_prefix_space: bool = False):
    """`<s> A </s></s> B </s>` as a `tokenizers` post-processor.

    sep and cls go by position: tokenizers 0.23 renamed the `cls` keyword to `cls_token`, so either keyword
    breaks one side of the range we support (>=0.19); the positions never changed.
    """
    return processors.RobertaProcessing(sep, cls, trim_offsets=trim_offsets, add_prefix_space=add_prefix_space)


class RobertaTokenizerFast(RobertaTokenizerBase):
    """Byte-level BPE tokenizer for RoBERTa backed by `tokenizers` (from tokenizer.json or vocab.json + merges.txt)."""

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt", "tokenizer_file": "tokenizer.json"}
    is_fast = True

    def __init__(self, vocab_file=None, merges_file=None, tokenizer_file=None, errors="replace", bos_token="<s>",
                 eos_token="</s>", sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                 mask_token="<mask>", add_prefix_space=False, trim_offsets=True, tokenizer_object=None, **kwargs):
        if tokenizer_object is not None:
            backend = Tokenizer.from_str(tokenizer_object.to_str())
        elif tokenizer_file is not None:
            backend = self._load_tokenizer_json(str(tokenizer_file))
        elif vocab_file is not None and merges_file is not None:
            vocab = read_vocab(vocab_file)
            backend = self._build_backend(vocab, read_merges(merges_file, vocab), str(cls_token), str(sep_token))
        else:
            raise ValueError("RobertaTokenizerFast needs tokenizer_file (tokenizer.json) or vocab_file + merges_file")
        backend.no_truncation()
        backend.no_padding()
        self._backend = backend
        self._variants: dict[bool, Tokenizer] = {}
        # The added tokens the backend already matches (tokenizer.json's) are ours too, as in transformers, where
        # the backend is the fast tokenizer's added-token table: one overridden by a keyword stays an added token.
        if not kwargs.get("added_tokens_decoder"):
            kwargs["added_tokens_decoder"] = backend.get_added_tokens_decoder()
        super().__init__(errors=errors, bos_token=bos_token, eos_token=eos_token, sep_token=sep_token,
                         cls_token=cls_token, unk_token=unk_token, pad_token=pad_token, mask_token=mask_token,
                         add_prefix_space=add_prefix_space, trim_offsets=trim_offsets, **kwargs)
        self.init_kwargs["tokenizer_object"] = tokenizer_object

    @staticmethod
    def _load_tokenizer_json(path: str) -> Tokenizer:
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"tokenizer file {path!r} is not valid JSON: {e}") from None
        model = state.get("model") if isinstance(state, dict) else None
        if not isinstance(model, dict) or model.get("type", "BPE") != "BPE":
            raise ValueError(f"tokenizer file {path!r} does not hold a BPE model (RoBERTa needs byte-level BPE)")
        check_vocab(model.get("vocab"), f"tokenizer file {path!r} model.vocab")
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
        bad = next((m for m in merges if len(m) != 2), None)
        if bad is not None:
            raise ValueError(f"tokenizer file {path!r}: merge {' '.join(bad)!r} does not split into two symbols")
        check_merges(merges, model["vocab"], f"tokenizer file {path!r}")
        try:
            return Tokenizer.from_str(json.dumps(state))
        except Exception as e:  # the Rust error names the field
            raise ValueError(f"tokenizer file {path!r} could not be loaded by `tokenizers`: {e}") from None

    @staticmethod
    def _build_backend(vocab, merges, cls_token: str, sep_token: str) -> Tokenizer:
        """What transformers' RobertaConverter builds from vocab.json + merges.txt."""
        tok = Tokenizer(models.BPE(vocab, merges, dropout=None, continuing_subword_prefix="", end_of_word_suffix="",
                                   fuse_unk=False))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = roberta_post_processor((sep_token, vocab.get(sep_token, 0)),
                                                    (cls_token, vocab.get(cls_token, 0)))
        return tok

    def train_new_from_iterator(self, text_iterator, vocab_size: int, length: int | None = None,
                                new_special_tokens=None, special_tokens_map: dict | None = None, **kwargs):
        """A tokenizer of the same kind (byte-level BPE, RoBERTa's specials and settings) trained on new text.

        special_tokens_map renames special tokens ({"<s>": "<cls>"}), keeping their flags; new_special_tokens
        are added as additional special tokens. Extra keywords go to tokenizers' BpeTrainer (min_frequency...).
        """
        from tokenizers import trainers

        rename = special_tokens_map or {}

        def renamed(tok: AddedToken) -> AddedToken:
            if tok.content not in rename:
                return tok
            return AddedToken(rename[tok.content], single_word=tok.single_word, lstrip=tok.lstrip, rstrip=tok.rstrip,
                              normalized=tok.normalized, special=True)

        specials = {attr: renamed(tok) for attr, tok in self._special.items() if tok is not None}
        additional = [renamed(t) for t in self._additional or []] + [as_added_token(t, special=True)
                                                                      for t in new_special_tokens or []]
        # Special tokens keep their relative id order (roberta: <s> 0, <pad> 1, </s> 2, <unk> 3), as in transformers.
        old = sorted((t for t in self.all_special_tokens_extended), key=lambda t: self._one_token_to_id(t.content) or 0)
        names = list(dict.fromkeys([renamed(t).content for t in old] + [t.content for t in additional]))
        bpe = Tokenizer(models.BPE(dropout=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=names, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), **kwargs)
        bpe.train_from_iterator(text_iterator, trainer, length=length)
        model = json.loads(bpe.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        backend = self._build_backend(model["vocab"], merges, specials["cls_token"].content if "cls_token" in specials
                                      else "<s>", specials["sep_token"].content if "sep_token" in specials else "</s>")
        return type(self)(tokenizer_object=backend, **{a: specials.get(a) for a in self._special},
                          additional_special_tokens=additional or None, add_prefix_space=self.add_prefix_space,
                          trim_offsets=self.trim_offsets, model_max_length=self.model_max_length,
                          padding_side=self.padding_side, truncation_side=self.truncation_side,
                          errors=self.errors, clean_up_tokenization_spaces=self.clean_up_tokenization_spaces)

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The Rust tokenizer configured like this instance (add_prefix_space included)."""
        return self._variant(self._add_prefix_space)

    @property
    def _tokenizer(self) -> Tokenizer:  # transformers' attribute name, used by some user code
        return self.backend_tokenizer

    def _variant(self, add_prefix_space: bool) -> Tokenizer:
        tok = self._variants.get(add_prefix_space)
        if tok is None:
            state = json.loads(self._backend.to_str())
            _set_prefix_flags(state.get("pre_tokenizer"), add_prefix_space)
            _set_prefix_flags(state.get("post_processor"), add_prefix_space, self.trim_offsets)
            tok = self._variants[add_prefix_space] = Tokenizer.from_str(json.dumps(state))
        return tok

    @property
    def vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def _token_to_id(self, token):
        return self._backend.token_to_id(token)

    def _id_to_token(self, index):
        return self._backend.id_to_token(index)

    def _base_vocab(self):
        return self._backend.get_vocab(with_added_tokens=False)

    def _vocab_and_merges(self):
        model = json.loads(self._backend.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        return model["vocab"], merges

    def _backend_add_tokens(self, tokens):
        self._backend.add_special_tokens([t for t in tokens if t.special])
        self._backend.add_tokens([t for t in tokens if not t.special])
        return [self._backend.token_to_id(t.content) for t in tokens]

    def _added_tokens_changed(self):
        self._variants.clear()

    def _raw_encode(self, texts, pretokenized, add_prefix_space, split_special=False):
        # Pretokenized words each get a prefix space, as the slow tokenizer does (transformers' fast asserts).
        backend = self._variant(add_prefix_space or pretokenized)
        if backend.encode_special_tokens != split_special:
            backend.encode_special_tokens = split_special
        if len(texts) == 1:
            return [backend.encode(texts[0], is_pretokenized=pretokenized, add_special_tokens=False)]
        return backend.encode_batch(texts, is_pretokenized=pretokenized, add_special_tokens=False)

    def tokenizer_json(self) -> str:
        return self.backend_tokenizer.to_str()
