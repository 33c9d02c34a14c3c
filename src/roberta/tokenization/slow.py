"""RobertaTokenizer: the pure-Python byte-level BPE tokenizer (vocab.json + merges.txt).

Raw encoding of one text: cut out added tokens (`<mask>` takes the whitespace before it) -> GPT-2 regex
pieces -> cached BPE ids. Token strings, character offsets and word ids are rebuilt lazily, only when
asked for, by the same walk with alignment kept; they reproduce the Rust pipeline's (trim_offsets) values,
so offsets work here too (transformers refuses them on its slow tokenizer).
"""
from __future__ import annotations

import regex

from .added_tokens import AddedTokenSplitter
from .base import RobertaTokenizerBase
from .bpe import PRETOKENIZE, BytePairEncoder, read_merges, read_vocab

_FINDALL, _FINDITER = PRETOKENIZE.findall, PRETOKENIZE.finditer
_LEAD = regex.compile(r"[\p{White_Space}Ġ]*")
_TRAIL = regex.compile(r"[\p{White_Space}Ġ]+$")
_SPACELIKE = regex.compile(r"[\p{White_Space}Ġ]")


def trim_offsets(tokens: list[str], offsets: list[tuple[int, int]], add_prefix_space: bool) -> list[tuple[int, int]]:
    """Drop leading/trailing spaces from offsets like Rust's byte_level::process_offsets: a token's
    leading 'Ġ'/whitespace chars move its start right, unless it is the sequence's first token (or starts
    at 0) and carries exactly the one space add_prefix_space put there."""
    out = []
    for i, (tok, (s, e)) in enumerate(zip(tokens, offsets)):
        if tok and (_SPACELIKE.match(tok[0]) or _SPACELIKE.match(tok[-1])):
            lead = _LEAD.match(tok).end()
            trail_m = _TRAIL.search(tok)
            trail = len(trail_m.group()) if trail_m else 0
            if lead:
                if (i == 0 or s == 0) and add_prefix_space and lead == 1:
                    lead = 0
                s = min(s + lead, e)
            if trail and e >= trail:
                e = max(e - trail, s)
        out.append((s, e))
    return out


class SlowEncoding:
    """Raw (special-token-free) encoding of one text; tokens/offsets/word_ids computed on first access."""

    __slots__ = ("ids", "_owner", "_text", "_prefix", "_pretok", "_details")

    def __init__(self, ids, owner, text, prefix, pretok):
        self.ids, self._owner, self._text, self._prefix, self._pretok = ids, owner, text, prefix, pretok
        self._details = None

    def _get(self):
        if self._details is None:
            self._details = self._owner._details(self._text, self._prefix, self._pretok)
        return self._details

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
        self._splitter = AddedTokenSplitter({})
        self._first_chars = frozenset()
        super().__init__(errors=errors, bos_token=bos_token, eos_token=eos_token, sep_token=sep_token,
                         cls_token=cls_token, unk_token=unk_token, pad_token=pad_token, mask_token=mask_token,
                         add_prefix_space=add_prefix_space, **kwargs)

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
        self._splitter = AddedTokenSplitter(self._added_tokens_decoder)
        # Cheap screen: a text with none of these chars cannot contain an added token.
        self._first_chars = frozenset(t.content[0] for t in self._added_tokens_decoder.values())

    # raw encoding ------------------------------------------------------------------------------------
    def _raw_encode(self, texts, pretokenized, add_prefix_space):
        if pretokenized:
            return [SlowEncoding([i for w in words for i in self._ids(w, True)], self, words, True, True)
                    for words in texts]
        ids = self._ids
        return [SlowEncoding(ids(t, add_prefix_space), self, t, add_prefix_space, False) for t in texts]

    def _segments(self, text):
        if self._first_chars and any(c in text for c in self._first_chars):
            return self._splitter.split(text)
        return [(0, len(text), None)] if text else []

    def _ids(self, text: str, prefix: bool) -> list[int]:
        cache, bpe, out = self._bpe.cache, self._bpe.ids, []
        for s, e, tid in self._segments(text):
            if tid is not None:
                out.append(tid)
                continue
            seg = text if (s == 0 and e == len(text)) else text[s:e]
            if prefix and seg[0] != " ":  # the Rust pre-tokenizer prefixes every plain segment
                seg = " " + seg
            for piece in _FINDALL(seg):
                hit = cache.get(piece)
                out.extend(hit if hit is not None else bpe(piece))
        return out

    def _details(self, text, prefix: bool, pretok: bool):
        if not pretok:
            toks, offs, wids = self._details_one(text, prefix)
        else:
            toks, offs, wids = [], [], []
            for w, word in enumerate(text):
                t, o, _ = self._details_one(word, True)
                toks += t
                offs += o
                wids += [w] * len(t)
            prefix = True
        if self.trim_offsets:
            offs = trim_offsets(toks, offs, prefix)
        return toks, offs, wids

    def _details_one(self, text: str, prefix: bool):
        """Token strings, untrimmed char offsets and word ids (one per regex piece or added token)."""
        toks, offs, wids, word = [], [], [], 0
        decoder, unk = self.decoder, self.unk_token or ""
        for s, e, tid in self._segments(text):
            if tid is not None:
                toks.append(text[s:e])
                offs.append((s, e))
                wids.append(word)
                word += 1
                continue
            seg = text[s:e]
            pre = prefix and seg[0] != " "
            if pre:
                seg = " " + seg
            shift = s - 1 if pre else s
            for m in _FINDITER(seg):
                piece, p0 = m.group(), m.start()
                ptoks = [decoder.get(i, unk) for i in self._bpe.ids(piece)]
                char_of_byte = None if piece.isascii() else [
                    ci for ci, ch in enumerate(piece) for _ in range(len(ch.encode("utf-8")))]
                b = 0
                for t in ptoks:
                    b0, b = b, b + len(t)
                    c0, c1 = (b0, b) if char_of_byte is None else (char_of_byte[b0], char_of_byte[b - 1] + 1)
                    c0, c1 = c0 + p0, c1 + p0
                    # A prepended space is aligned to the segment's first char, as in Rust's NormalizedString.
                    offs.append((s if pre and c0 == 0 else c0 + shift, s + 1 if pre and c1 == 1 else c1 + shift))
                    toks.append(t)
                    wids.append(word)
                word += 1
        return toks, offs, wids
