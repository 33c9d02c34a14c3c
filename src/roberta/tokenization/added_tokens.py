"""Added tokens (specials and user tokens) and the splitter that cuts them out of text before BPE.

Tokens are `tokenizers.AddedToken` objects, the class transformers uses and re-exports (`roberta.AddedToken` is
that class too), so what our tokenizers hand out passes users' isinstance checks and compares equal to theirs.
That class is Rust: not subclassable, lstrip/rstrip/single_word/normalized read-only (content and special are
writable), equal only to an AddedToken with the same content and flags (never to a str), and an unset
`normalized` reads as `not special`.

RoBERTa's trap: `<mask>` has lstrip=True, so the whitespace before it belongs to the mask token
("Encode <mask> sequence" -> `Encode`, `<mask>`, `Ġsequence`), as in fairseq's fill_mask.
"""
from __future__ import annotations

import regex
from tokenizers import AddedToken

# An AddedToken's fields, in the (sorted) order transformers writes them to tokenizer_config.json.
FIELDS = ("content", "lstrip", "normalized", "rstrip", "single_word", "special")


def as_added_token(token, special: bool = False, **str_flags) -> AddedToken:
    """What a user or a file gives as a token -> an AddedToken the tokenizer owns (never the caller's object).

    Accepts a str (made with `str_flags`), an AddedToken (tokenizers' or transformers', the same class), a
    {"content": ..., "lstrip": ...} dict from a JSON file, or any object with those attributes. special=True marks
    the token special; on a caller's AddedToken that happens in place, as transformers does, so a `normalized` it
    never set follows to False, as in transformers' fast tokenizer.
    """
    if isinstance(token, AddedToken):
        if special and not token.special:
            token.special = True
        return AddedToken(**token.__getstate__())
    if isinstance(token, str):
        fields = {"content": token, "special": special, **str_flags}
    elif isinstance(token, dict):
        fields = {k: token[k] for k in FIELDS if k in token}
    elif hasattr(token, "content"):
        fields = {k: getattr(token, k) for k in FIELDS if getattr(token, k, None) is not None}
    else:
        raise TypeError(f"special/added tokens must be str or AddedToken, got {type(token).__name__}: {token!r}")
    if not isinstance(fields.get("content"), str) or not fields["content"]:
        raise ValueError(f"an added token needs non-empty string content, got {fields.get('content')!r}")
    fields["special"] = fields.get("special", False) or special
    return AddedToken(**fields)


def token_state(token: AddedToken) -> dict:
    """The token as written to tokenizer_config.json ({"content": ..., "lstrip": ..., ...}, keys sorted)."""
    return {k: getattr(token, k) for k in FIELDS}


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
