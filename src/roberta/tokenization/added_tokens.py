"""Added tokens (specials and user tokens) and the splitter that cuts them out of text before BPE.

RoBERTa's trap: `<mask>` has lstrip=True, so the whitespace before it belongs to the mask token
("Encode <mask> sequence" -> `Encode`, `<mask>`, `Ġsequence`), as in fairseq's fill_mask.
"""
from __future__ import annotations

import regex


class AddedToken:
    """A token matched whole in raw text before BPE. Flags as in `tokenizers.AddedToken`:
    lstrip/rstrip swallow whitespace on that side, single_word only matches outside words,
    normalized is kept for file round-trips (RoBERTa has no normalizer), special marks it skippable in decode."""

    __slots__ = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")

    def __init__(self, content: str, single_word: bool = False, lstrip: bool = False, rstrip: bool = False,
                 normalized: bool | None = None, special: bool = False):
        if not isinstance(content, str) or not content:
            raise ValueError(f"an added token needs non-empty string content, got {content!r}")
        self.content, self.single_word, self.lstrip, self.rstrip = content, single_word, lstrip, rstrip
        self.special = special
        self.normalized = (not special) if normalized is None else normalized

    @classmethod
    def coerce(cls, token, special: bool = False, **defaults) -> "AddedToken":
        """Accept a str, our AddedToken, a tokenizers/transformers AddedToken or a dict from a JSON file."""
        if isinstance(token, cls):
            return token
        if isinstance(token, str):
            return cls(token, special=special, **defaults)
        if isinstance(token, dict):
            keys = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")
            kw = {k: token[k] for k in keys if k in token}
            kw.setdefault("special", special)
            return cls(**kw)
        if hasattr(token, "content"):
            return cls(token.content, single_word=getattr(token, "single_word", False),
                       lstrip=getattr(token, "lstrip", False), rstrip=getattr(token, "rstrip", False),
                       normalized=getattr(token, "normalized", None), special=getattr(token, "special", special))
        raise TypeError(f"special/added tokens must be str or AddedToken, got {type(token).__name__}: {token!r}")

    def to_dict(self) -> dict:
        return {"content": self.content, "lstrip": self.lstrip, "normalized": self.normalized,
                "rstrip": self.rstrip, "single_word": self.single_word, "special": self.special}

    def __str__(self) -> str:
        return self.content

    def __repr__(self) -> str:
        return (f"AddedToken({self.content!r}, rstrip={self.rstrip}, lstrip={self.lstrip}, "
                f"single_word={self.single_word}, normalized={self.normalized}, special={self.special})")

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            return self.content == other
        return isinstance(other, AddedToken) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.content)

    def __getstate__(self):
        return self.to_dict()

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)


class AddedTokenSplitter:
    """One compiled alternation over all added tokens, longest first (leftmost-longest, like the Rust
    AddedVocabulary). Whitespace for lstrip/rstrip is Unicode White_Space, like Rust's trim_end/trim_start."""

    def __init__(self, tokens: dict[int, AddedToken]):
        ordered = sorted(tokens.items(), key=lambda kv: -len(kv[1].content))
        self.ids = [tid for tid, _ in ordered]
        alts = []
        for _, tok in ordered:
            core = "(" + regex.escape(tok.content) + ")"
            if tok.single_word:
                core = r"(?<!\w)" + core + r"(?!\w)"
            alts.append((r"\p{White_Space}*" if tok.lstrip else "") + core + (r"\p{White_Space}*" if tok.rstrip else ""))
        self.pattern = regex.compile("|".join(alts)) if alts else None

    def split(self, text: str) -> list[tuple[int, int, int | None]]:
        """[(start, end, added_token_id or None for plain text)] covering `text`; empty plain spans dropped."""
        if self.pattern is None:
            return [(0, len(text), None)] if text else []
        out, pos, ids = [], 0, self.ids
        for m in self.pattern.finditer(text):
            s, e = m.span()
            if s > pos:
                out.append((pos, s, None))
            out.append((s, e, ids[m.lastindex - 1]))
            pos = e
        if pos < len(text):
            out.append((pos, len(text), None))
        return out
