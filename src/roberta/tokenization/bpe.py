"""Pure-Python byte-level BPE: the byte<->unicode map, GPT-2 pre-tokenization, vocab/merges files, merges.

Data flow: text piece (one pre-token) -> UTF-8 bytes -> one printable char per byte -> ranked merges ->
vocabulary ids. Results are cached per piece, so a corpus pays the merge loop once per distinct word.
"""
from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from heapq import heapify, heappop, heappush

import regex

__all__ = ["bytes_to_unicode", "BYTE_ENCODER", "BYTE_DECODER", "PRETOKENIZE", "read_vocab", "read_merges",
           "BytePairEncoder", "bytes_from_tokens", "pretokenizer_for"]


@lru_cache(maxsize=None)
def bytes_to_unicode() -> dict[int, str]:
    """Map each byte to a printable char: printable Latin-1 bytes map to themselves, the other 68 bytes
    to chr(256 + n) in increasing byte order (so space -> 'Ġ' U+0120, newline -> 'Ċ' U+010A)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}
# bytes -> mapped str in one C-level call: latin-1 decoding turns each byte into chr(byte), translate remaps it.
_LATIN1_TO_MAPPED = {b: c for b, c in BYTE_ENCODER.items()}

# Code points the `regex` module's (newer) Unicode tables call letters or numbers but the Rust `tokenizers`
# pre-tokenizer (older tables) does not. Measured by splitting "a<c>a", "1<c>1", " <c> x", ".<c>." for every
# code point with both; all were unassigned in Unicode 14. Treating them as "other" keeps the slow
# tokenizer's splits identical to the fast one's on any input.
_NOT_LETTERS_IN_RUST = (
    "558 58B-58C 88F C5C CDC 208F 209D-209F A7CE-A7CF A7D2 A7D4 A7DD A7E2 A7F1 AB6C-AB6D 107BB-107BF "
    "10940-10959 10EC5-10EC7 10ED9-10EEE 11B0A 11DB0-11DDB 11DE0-11DE9 11DF1 1246F 12475-1247F 12550-12686 "
    "16EA0-16EB8 16EBB-16ED3 16FF2-16FF6 187F8-187FF 18CD6-18CDA 18D09-18D20 18D80-18DF2 18E00-19191 "
    "191A0-191D2 1B123-1B128 1B168 1D6A6 1DF1F-1DF24 1DF2B-1DF81 1DF90-1DF96 1DFCD-1DFFF 1E6C0-1E6DE "
    "1E6E0-1E6E2 1E6E4-1E6E5 1E6E7-1E6ED 1E6F0-1E6F4 1E6FE-1E6FF 2B73A-2B73F 2B81E 2CEA2-2CEAD 323B0-33479 "
    "3D000-3FC3F"
)


def _class_of(ranges: str) -> str:
    parts = []
    for r in ranges.split():
        lo, _, hi = r.partition("-")
        parts.append(f"\\U{int(lo, 16):08X}" + (f"-\\U{int(hi, 16):08X}" if hi else ""))
    return "[" + "".join(parts) + "]"


_X = _class_of(_NOT_LETTERS_IN_RUST)
_L, _N = f"[\\p{{L}}--{_X}]", f"[\\p{{N}}--{_X}]"
# GPT-2's pattern. Contractions are case-sensitive; `\s+(?!\S)` leaves the last space of a run to the next word.
PRETOKENIZE = regex.compile(
    rf"(?V1)'s|'t|'re|'ve|'m|'ll|'d| ?{_L}+| ?{_N}+| ?[[^\s\p{{L}}\p{{N}}]{_X}]+|\s+(?!\S)|\s+"
)
# The same split, faster, for the common cases (the set operations above cost ~3x): text without any of
# the excluded chars, and pure-ASCII text (stdlib `re`; whitespace spelled out because `re`'s \s also
# matches \x1c-\x1f, which are not Unicode White_Space).
_PLAIN = regex.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")
_WS = r"\t\n\x0b\x0c\r "
_ASCII = re.compile(rf"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^{_WS}A-Za-z0-9]+|[{_WS}]+(?![^{_WS}])|[{_WS}]+")
_HAS_EXCLUDED = regex.compile(_X).search


def pretokenizer_for(text: str):
    """The compiled pre-tokenization pattern to use on `text` (all three split identically)."""
    if text.isascii():
        return _ASCII
    return _PLAIN if _HAS_EXCLUDED(text) is None else PRETOKENIZE


def read_vocab(path: str | os.PathLike) -> dict[str, int]:
    """Load vocab.json ({token: id}); a file that is not a JSON object of str -> int raises ValueError."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            vocab = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"vocab file {path!r} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"vocab file {path!r} is not UTF-8 text ({e.reason})") from None
    check_vocab(vocab, path)
    return vocab


def check_vocab(vocab, where: str = "vocab") -> None:
    """Ids must be 0..len(vocab)-1, each used once: a duplicate makes decoding ambiguous, and an id past the
    end would collide with the ids added tokens get (len(vocab), len(vocab)+1, ...)."""
    if not isinstance(vocab, dict):
        raise ValueError(f"{where} must be a JSON object mapping token -> id, got {type(vocab).__name__}")
    if not vocab:
        raise ValueError(f"{where} is empty")
    seen: dict[int, str] = {}
    for token, idx in vocab.items():
        if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
            raise ValueError(f"{where}: token {token!r} maps to {idx!r}; ids must be non-negative integers")
        if idx >= len(vocab):
            raise ValueError(f"{where}: token {token!r} has id {idx}, out of range for a vocabulary of {len(vocab)} "
                             f"tokens (ids must be 0..{len(vocab) - 1})")
        if idx in seen:
            raise ValueError(f"{where}: id {idx} is given to two tokens, {seen[idx]!r} and {token!r}")
        seen[idx] = token


def read_merges(path: str | os.PathLike, vocab: dict[str, int] | None = None) -> list[tuple[str, str]]:
    """Load merges.txt in rank order. Skips the `#version` header and blank lines; every other line must be
    two space-separated symbols, each (and their concatenation) in `vocab` when it is given."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as e:
        raise ValueError(f"merges file {path!r} is not UTF-8 text ({e.reason})") from None
    merges = []
    for lineno, line in enumerate(lines, 1):
        if not line or (lineno == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValueError(f"merges file {path!r}, line {lineno}: expected two symbols separated by one space, got {line!r}")
        merges.append((parts[0], parts[1]))
    if vocab is not None:
        check_merges(merges, vocab, f"merges file {path!r}")
    return merges


def check_merges(merges, vocab: dict[str, int], where: str = "merges") -> None:
    for rank, (a, b) in enumerate(merges):
        for sym in (a, b, a + b):
            if sym not in vocab:
                raise ValueError(f"{where}: merge #{rank + 1} ({a!r} {b!r}) uses {sym!r}, which is not in the vocabulary")


def bytes_from_tokens(tokens, errors: str = "replace") -> str:
    """Inverse byte map over concatenated byte-level tokens; chars outside the map pass through as UTF-8."""
    text = "".join(tokens)
    try:
        raw = bytes(BYTE_DECODER[c] for c in text)
    except KeyError:
        raw = b"".join(bytes([BYTE_DECODER[c]]) if c in BYTE_DECODER else c.encode("utf-8") for c in text)
    return raw.decode("utf-8", errors=errors)


class BytePairEncoder:
    """Ranked merges over byte-mapped pieces, memoised per piece (the raw text of one pre-token)."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], unk_id: int | None = None):
        self.vocab = vocab
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.unk_id = unk_id
        self.cache: dict[str, tuple[int, ...]] = {}

    def ids(self, piece: str) -> tuple[int, ...]:
        """Ids of one pre-token (raw text, not yet byte-mapped)."""
        hit = self.cache.get(piece)
        if hit is None:
            mapped = piece.encode("utf-8").decode("latin-1").translate(_LATIN1_TO_MAPPED)
            vocab, unk = self.vocab, self.unk_id
            whole = vocab.get(mapped)
            if whole is not None and len(mapped) == 1:
                hit = (whole,)
            else:
                syms = self.merge(mapped)
                hit = tuple(vocab[s] if s in vocab else unk for s in syms)
                if unk is None and None in hit:  # no unk token: drop unknown symbols like the Rust BPE
                    hit = tuple(i for i in hit if i is not None)
            if len(self.cache) < 500_000:  # bound memory on adversarial input; real text repeats
                self.cache[piece] = hit
        return hit

    def merge(self, word: str) -> list[str]:
        """Merge the lowest-ranked adjacent pair, leftmost first, until no ranked pair is left.

        The symbols form a linked list and candidate pairs wait in a heap keyed (rank, position), as in the
        Rust BPE: O(n log n) in the word's length, so a 100,000-letter "word" takes a fraction of a second
        (rescanning every pair after each merge, GPT-2's loop, is quadratic: minutes). A popped pair is
        stale when either symbol has changed since it was pushed; ranks are unique per pair, so comparing
        the current pair's rank with the popped one detects that.
        """
        n = len(word)
        if n < 2:
            return list(word)
        rank_of = self.ranks.get
        syms: list[str | None] = list(word)  # None: absorbed into the symbol on its left
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        prv = list(range(-1, n - 1))
        heap = [(r, i) for i in range(n - 1) if (r := rank_of((syms[i], syms[i + 1]))) is not None]
        heapify(heap)
        while heap:
            rank, i = heappop(heap)
            left = syms[i]
            j = nxt[i]
            if left is None or j < 0 or rank_of((left, syms[j])) != rank:
                continue
            merged = syms[i] = left + syms[j]
            syms[j] = None
            k = nxt[i] = nxt[j]
            if k >= 0:
                prv[k] = i
                if (r := rank_of((merged, syms[k]))) is not None:
                    heappush(heap, (r, i))
            p = prv[i]
            if p >= 0 and (r := rank_of((syms[p], merged))) is not None:
                heappush(heap, (r, p))
        return [s for s in syms if s is not None]
