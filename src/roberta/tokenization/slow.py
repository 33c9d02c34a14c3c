"""RobertaTokenizer: the pure-Python byte-level BPE tokenizer (vocab.json + merges.txt).

Raw encoding of one text: cut out added tokens (`<mask>` takes the whitespace before it) -> GPT-2 regex
pieces -> cached BPE ids. Token strings, character offsets and word ids are rebuilt lazily, only when
asked for, by the same walk with alignment kept; they reproduce the Rust pipeline's (trim_offsets) values,
so offsets work here too (transformers refuses them on its slow tokenizer).
"""
from __future__ import annotations

from typing import NamedTuple

import regex

from .added_tokens import AddedTokenSplitter
from .base import RobertaTokenizerBase
from .bpe import BYTE_DECODER, BYTE_ENCODER, PRETOKENIZE, BytePairEncoder, pretokenizer_for, read_merges, read_vocab

# Chars Rust's offset trimming treats as spaces: the byte-mapped space 'Ġ' and Unicode White_Space.
_SPACES = frozenset("Ġ" + "".join(regex.findall(r"\p{White_Space}", "".join(map(chr, range(0x3001))))))


def _trim(tok: str, s: int, e: int, first: bool, add_prefix_space: bool) -> tuple[int, int]:
    """Rust byte_level::process_offsets for one token: leading spaces move the start right (unless this is
    the first token carrying the single space add_prefix_space put there), trailing ones move the end left."""
    n, lead = len(tok), 0
    while lead < n and tok[lead] in _SPACES:
        lead += 1
    trail = 0
    while trail < n and tok[n - 1 - trail] in _SPACES:
        trail += 1
    if lead:
        if first and add_prefix_space and lead == 1:
            lead = 0
        s = min(s + lead, e)
    if trail and e >= trail:
        e = max(e - trail, s)
    return s, e


class FrozenEncoding(NamedTuple):
    """A SlowEncoding with its views computed: what a pickled BatchEncoding carries (not the tokenizer)."""
    ids: list
    tokens: list
    offsets: list
    word_ids: list


class SlowEncoding:
    """Raw (special-token-free) encoding of one text; tokens/offsets/word_ids computed on first access."""

    __slots__ = ("ids", "_owner", "_text", "_prefix", "_pretok", "_split", "_details")

    def __init__(self, ids, owner, text, prefix, pretok, split=False):
        self.ids, self._owner, self._text, self._prefix, self._pretok = ids, owner, text, prefix, pretok
        self._split, self._details = split, None

    def _get(self):
        if self._details is None:
            self._details = self._owner._details(self._text, self._prefix, self._pretok, self._split)
        return self._details

    def __reduce__(self):
        return FrozenEncoding, (self.ids, *self._get())

    @property
    def tokens(self) -> list[str]:
        return self._get()[0]

    @property
    def offsets(self) -> list[tuple[int, int]]:
        return self._get()[1]

    @property
    def word_ids(self) -> list[int]:
        return self._get()[2]


class RobertaTokenizer(RobertaTokenizerBase):
    """Byte-level BPE tokenizer for RoBERTa, in pure Python; same outputs as RobertaTokenizerFast."""

    def __init__(self, vocab_file, merges_file, errors="replace", bos_token="<s>", eos_token="</s>", sep_token="</s>",
                 cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", add_prefix_space=False,
                 **kwargs):
        self.encoder = read_vocab(vocab_file)
        self._merges = read_merges(merges_file, self.encoder)
        self.decoder = {i: t for t, i in self.encoder.items()}
        self.bpe_ranks = {pair: rank for rank, pair in enumerate(self._merges)}
        self._bpe = BytePairEncoder(self.encoder, self._merges, unk_id=self.encoder.get(str(unk_token)))
        self._bpe.ranks = self.bpe_ranks
        self._splitters = {False: AddedTokenSplitter({}), True: AddedTokenSplitter({})}
        self._first_chars = {False: frozenset(), True: frozenset()}
        self._layout_cache: dict[str, tuple[list[str], list[tuple[int, int]]]] = {}
        super().__init__(errors=errors, bos_token=bos_token, eos_token=eos_token, sep_token=sep_token,
                         cls_token=cls_token, unk_token=unk_token, pad_token=pad_token, mask_token=mask_token,
                         add_prefix_space=add_prefix_space, **kwargs)

    byte_encoder, byte_decoder, pat = BYTE_ENCODER, BYTE_DECODER, PRETOKENIZE  # transformers' attribute names

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    @property
    def cache(self) -> dict:
        return self._bpe.cache

    def bpe(self, token: str) -> str:
        """Merge one byte-mapped word; symbols joined by spaces (transformers' RobertaTokenizer.bpe)."""
        return " ".join(self._bpe.merge(token))

    def _token_to_id(self, token):
        return self.encoder.get(token)

    def _id_to_token(self, index):
        return self.decoder.get(index)

    def _base_vocab(self):
        return self.encoder

    def _vocab_and_merges(self):
        return self.encoder, self._merges

    def _backend_add_tokens(self, tokens):
        ids, next_id = [], len(self)
        for tok in tokens:
            tid = self._added_ids.get(tok.content, self.encoder.get(tok.content))
            if tid is None:
                tid, next_id = next_id, next_id + 1
            ids.append(tid)
        return ids

    def _added_tokens_changed(self):
        # keyed by split_special_tokens: with it, special tokens are plain text and only the others match
        tokens = {False: self._added_tokens_decoder,
                  True: {i: t for i, t in self._added_tokens_decoder.items() if not t.special}}
        self._splitters = {k: AddedTokenSplitter(v) for k, v in tokens.items()}
        # Cheap screen: a text with none of these chars cannot contain an added token.
        self._first_chars = {k: frozenset(t.content[0] for t in v.values()) for k, v in tokens.items()}

    # raw encoding ------------------------------------------------------------------------------------
    def _raw_encode(self, texts, pretokenized, add_prefix_space, split_special=False):
        if pretokenized:
            return [SlowEncoding([i for w in words for i in self._ids(w, True, split_special)], self, words, True,
                                 True, split_special) for words in texts]
        ids = self._ids
        return [SlowEncoding(ids(t, add_prefix_space, split_special), self, t, add_prefix_space, False, split_special)
                for t in texts]

    def _segments(self, text, split_special=False):
        first_chars = self._first_chars[split_special]
        if first_chars and any(c in text for c in first_chars):
            return self._splitters[split_special].split(text)
        return [(0, len(text), None)] if text else []

    def _ids(self, text: str, prefix: bool, split_special: bool = False) -> list[int]:
        cache, bpe, out = self._bpe.cache, self._bpe.ids, []
        for s, e, tid in self._segments(text, split_special):
            if tid is not None:
                out.append(tid)
                continue
            seg = text if (s == 0 and e == len(text)) else text[s:e]
            if prefix and seg[0] != " ":  # the Rust pre-tokenizer prefixes every plain segment
                seg = " " + seg
            for piece in pretokenizer_for(seg).findall(seg):
                hit = cache.get(piece)
                out.extend(hit if hit is not None else bpe(piece))
        return out

    def _details(self, text, prefix: bool, pretok: bool, split_special: bool = False):
        if not pretok:
            return self._details_one(text, prefix, prefix, split_special)
        toks, offs, wids = [], [], []
        for w, word in enumerate(text):
            t, o, _ = self._details_one(word, True, True, split_special)
            toks += t
            offs += o
            wids += [w] * len(t)
        return toks, offs, wids

    def _piece_layout(self, piece: str):
        """(token strings, char spans within the piece) of one pre-token; cached like the ids."""
        hit = self._layout_cache.get(piece)
        if hit is None:
            decoder, unk = self.decoder, self.unk_token or ""
            toks = [decoder.get(i, unk) for i in self._bpe.ids(piece)]
            if len(toks) == 1:
                spans = [(0, len(piece))]
            else:
                char_of_byte = None if piece.isascii() else [
                    ci for ci, ch in enumerate(piece) for _ in range(len(ch.encode("utf-8")))]
                spans, b = [], 0
                for t in toks:
                    b0, b = b, min(b + len(t), len(char_of_byte or piece))
                    spans.append((b0, b) if char_of_byte is None else (char_of_byte[b0], char_of_byte[b - 1] + 1))
            hit = (toks, spans)
            if len(self._layout_cache) < 200_000:
                self._layout_cache[piece] = hit
        return hit

    def _details_one(self, text: str, prefix: bool, trim_prefix: bool, split_special: bool = False):
        """Token strings, char offsets (trimmed like Rust's post-processor) and word ids (one word per regex
        piece or added token) of one text."""
        toks, offs, wids, word = [], [], [], 0
        trim, layout = self.trim_offsets, self._piece_layout
        for s, e, tid in self._segments(text, split_special):
            if tid is not None:
                t = text[s:e]
                if trim:
                    s, e = _trim(t, s, e, not toks or s == 0, trim_prefix)
                toks.append(t)
                offs.append((s, e))
                wids.append(word)
                word += 1
                continue
            seg = text[s:e]
            pre = prefix and seg[0] != " "
            if pre:
                seg = " " + seg
            shift = s - 1 if pre else s
            for m in pretokenizer_for(seg).finditer(seg):
                p0 = m.start()
                ptoks, spans = layout(m.group())
                for t, (c0, c1) in zip(ptoks, spans):
                    c0, c1 = c0 + p0, c1 + p0
                    # A prepended space is aligned to the segment's first char, as in Rust's NormalizedString.
                    o0 = s if pre and c0 == 0 else c0 + shift
                    o1 = s + 1 if pre and c1 == 1 else c1 + shift
                    if trim and (t[0] in _SPACES or t[-1] in _SPACES):
                        o0, o1 = _trim(t, o0, o1, not toks or o0 == 0, trim_prefix)
                    toks.append(t)
                    offs.append((o0, o1))
                    wids.append(word)
                word += 1
        return toks, offs, wids
