"""Extract the embedded model's pretraining corpus from unpacked Debian packages.

Input: a folder holding the packages unpacked with `dpkg -x` (r-cran-janeaustenr, sword-text-web,
python3.11-doc, sqlite3-doc, postgresql-doc-15, wordnet-base). Output, in --out:
  train.txt, heldout.txt      one paragraph per line, a blank line between documents
  heldout_<source>.txt        the held-out slice per source (for per-source evaluation)
  *_sentences.txt             the same text one sentence per line (for `packing="lines"` pretraining)
  stats.json                  documents / lines / bytes per source and split, licenses

A "document" is a chapter (Austen, Bible), one HTML page (manuals) or 200 consecutive WordNet synsets of
one part of speech (their definitions and example sentences: short, everyday English). The held-out slice is the
~1% of documents of each source whose SHA-1 of their id is smallest (at least one per source), so
the split is deterministic and never depends on extraction order.

Formats parsed here, with the standard library only:
  * R's serialized lazy-load database (data/Rdata.rdx + .rdb, XDR format version 2/3);
  * SWORD zText modules (.bzs block index, .bzv verse index, .bzz zlib blocks) holding OSIS XML;
  * HTML pages via html.parser (navigation, code blocks and scripts dropped).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import re
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

# --------------------------------------------------------------------------------------------------
# R serialization (only what a lazy-loaded character-vector dataset needs)
# --------------------------------------------------------------------------------------------------
_NILVALUE, _REF, _ENV = 254, 255, 4
_SPECIAL_NO_PAYLOAD = {242, 241, 253, 252, 251, 247}  # empty/base/global env, unbound, missing arg, base ns
_PAIRLIKE = {2, 6, 3, 5, 17}  # LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP


class _RReader:
    """Reads one R object in XDR serialization format; returns Python lists/str/None."""

    def __init__(self, data: bytes):
        if data[:2] != b"X\n":
            raise ValueError(f"not an XDR R serialization (starts with {data[:2]!r})")
        self.d, self.i, self.refs = data, 2, []
        version = self.int()
        self.int(), self.int()  # writer R version, minimal reader version
        if version == 3:
            n = self.int()  # native encoding name
            self.i += n
        elif version != 2:
            raise ValueError(f"unsupported R serialization version {version}")

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.d, self.i)
        self.i += 4
        return v

    def length(self) -> int:
        n = self.int()
        if n == -1:  # long vector: two 32-bit halves
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def item(self):
        flags = self.int()
        typ, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if typ == _NILVALUE or typ in _SPECIAL_NO_PAYLOAD:
            return None
        if typ == _REF:
            idx = flags >> 8 or self.int()
            return self.refs[idx - 1]
        if typ == 1:  # SYMSXP
            sym = self.item()
            self.refs.append(sym)
            return sym
        if typ == _ENV:
            self.refs.append(None)
            self.int()  # locked
            for _ in range(4):  # enclos, frame, hashtab, attrib
                self.item()
            return None
        if typ in _PAIRLIKE:
            out = []
            while True:  # iterate the CDR chain instead of recursing (long pairlists)
                attr = self.item() if has_attr else None
                tag = self.item() if has_tag else None
                out.append((tag, self.item()))
                flags = self.int()
                typ, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
                if typ not in _PAIRLIKE:
                    self.i -= 4
                    self.item()  # the final CDR (normally NILVALUE)
                    return out
        if typ == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            s = self.d[self.i : self.i + n].decode("utf-8", "replace")
            self.i += n
            return s
        if typ in (10, 13):  # logical, integer
            n = self.length()
            v = list(struct.unpack_from(f">{n}i", self.d, self.i))
            self.i += 4 * n
        elif typ == 14:  # double
            n = self.length()
            v = list(struct.unpack_from(f">{n}d", self.d, self.i))
            self.i += 8 * n
        elif typ in (16, 19, 20):  # character vector, list, expression
            v = [self.item() for _ in range(self.length())]
        else:
            raise ValueError(f"unsupported R SEXP type {typ} at byte {self.i}")
        if has_attr:
            names = dict(self.item()).get("names")  # attributes: a tagged pairlist
            if typ == 19 and names:  # a named list reads as a dict
                return dict(zip(names, v))
        return v


def read_r_lazyload(rdx: Path) -> dict[str, object]:
    """All objects of an R lazy-load database (`X.rdx` index + `X.rdb` blobs) by name."""
    index = _RReader(gzip.decompress(rdx.read_bytes())).item()
    blob = rdx.with_suffix(".rdb").read_bytes()
    out = {}
    for name, (offset, size) in index["variables"].items():
        raw = blob[offset : offset + size]
        # 4-byte big-endian uncompressed length, then zlib (type 1) or a type byte + bzip2/xz/none.
        body = raw[4:]
        if body[:1] in (b"2", b"Z", b"0"):
            import bz2
            import lzma

            body = {b"2": bz2.decompress, b"Z": lzma.decompress, b"0": bytes}[body[:1]](body[1:])
        else:
            body = zlib.decompress(body)
        out[name] = _RReader(body).item()
    return out


def austen_documents(root: Path):
    """Chapters of the six novels; wrapped lines joined into paragraphs."""
    rdx = root / "usr/lib/R/site-library/janeaustenr/data/Rdata.rdx"
    for novel, lines in sorted(read_r_lazyload(rdx).items()):
        chapter, para, n = [], [], 0
        for line in list(lines) + [""]:
            line = (line or "").strip()
            if re.match(r"^(CHAPTER|Chapter)\s+[0-9IVXLC]+", line):
                if para:
                    chapter.append(" ".join(para))
                    para = []
                if chapter:
                    yield f"{novel}/{n}", chapter
                chapter, n = [], n + 1
            elif line:
                para.append(line)
            elif para:
                chapter.append(" ".join(para))
                para = []
        if chapter:
            yield f"{novel}/{n}", chapter


# --------------------------------------------------------------------------------------------------
# SWORD zText (World English Bible)
# --------------------------------------------------------------------------------------------------
def _osis_to_text(xml: str) -> str:
    xml = re.sub(r"<note\b.*?</note>", "", xml, flags=re.S)  # footnotes
    xml = re.sub(r"<title\b.*?</title>", "", xml, flags=re.S)  # section headings
    text = re.sub(r"<[^>]+>", "", xml)
    return text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')


def bible_documents(root: Path):
    """Chapters (OSIS <chapter sID>) with paragraphs split at OSIS x-p markers."""
    mod = root / "usr/share/sword/modules/texts/ztext/engWEB2015eb"
    for testament in ("ot", "nt"):
        bzs, bzv = (mod / f"{testament}.bzs").read_bytes(), (mod / f"{testament}.bzv").read_bytes()
        bzz = (mod / f"{testament}.bzz").read_bytes()
        blocks = [struct.unpack_from("<III", bzs, i) for i in range(0, len(bzs), 12)]
        cache: dict[int, bytes] = {}
        xml = []
        for i in range(0, len(bzv), 10):
            block, off, size = struct.unpack_from("<IIH", bzv, i)
            if size == 0:
                continue
            if block not in cache:
                start, csize, _ = blocks[block]
                cache = {block: zlib.decompress(bzz[start : start + csize])}  # one book at a time
            xml.append(cache[block][off : off + size].decode("utf-8", "replace") + " ")
        xml = "".join(xml)
        for m in re.finditer(r'<chapter\b[^>]*\bsID="([^"]+)"[^>]*/>(.*?)(?=<chapter\b[^>]*\bsID=|$)', xml, re.S):
            paras = re.split(r'<div\b[^>]*type="x-p"[^>]*/>', m.group(2))
            lines = [" ".join(_osis_to_text(p).split()) for p in paras]
            lines = [ln for ln in lines if ln]
            if lines:
                yield m.group(1), lines


# --------------------------------------------------------------------------------------------------
# HTML manuals
# --------------------------------------------------------------------------------------------------
_BLOCK = {"p", "div", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "br", "table",
          "blockquote", "section", "ul", "ol", "dl", "td", "th", "caption", "title"}
_SKIP_TAGS = {"script", "style", "pre", "head", "nav", "code_block", "textarea", "svg"}
# Navigation chrome of Sphinx (Python), DocBook (PostgreSQL) and the SQLite site.
_SKIP_CLASSES = {"sphinxsidebar", "related", "footer", "navheader", "navfooter", "toc", "menu",
                 "nosearch", "highlight", "search", "mobile-nav", "header", "headerlink", "programlisting",
                 "screen", "synopsis", "codeblock", "fancy_toc", "tocentry", "tabs", "breadcrumbs"}
_VOID = {"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines, self.cur, self.stack, self.skip_depth = [], [], [], 0

    def _flush(self):
        line = " ".join("".join(self.cur).split())
        if line:
            self.lines.append(line)
        self.cur = []

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            if tag == "br" and not self.skip_depth:
                self._flush()
            return
        classes = set((dict(attrs).get("class") or "").split()) | {dict(attrs).get("role") or ""}
        skip = tag in _SKIP_TAGS or bool(classes & _SKIP_CLASSES) or "navigation" in classes
        self.stack.append((tag, skip))
        if skip:
            self.skip_depth += 1
        if tag in _BLOCK and not self.skip_depth:
            self._flush()

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        # Pop to the matching open tag (HTML in the wild leaves <p>/<li> unclosed).
        for k in range(len(self.stack) - 1, -1, -1):
            if self.stack[k][0] == tag:
                for _, skip in self.stack[k:]:
                    self.skip_depth -= skip
                del self.stack[k:]
                break
        if tag in _BLOCK and not self.skip_depth:
            self._flush()

    def handle_data(self, data):
        if not self.skip_depth:
            self.cur.append(data)


def _prose(line: str) -> bool:
    """Keep lines that read as sentences: enough words, mostly letters."""
    words = line.split()
    letters = sum(c.isalpha() or c.isspace() for c in line)
    return len(words) >= 4 and letters >= 0.75 * len(line)


def html_documents(folder: Path, exclude=()):
    for path in sorted(folder.rglob("*.html")):
        rel = path.relative_to(folder).as_posix()
        if any(rel.startswith(e) for e in exclude):
            continue
        parser = _TextExtractor()
        parser.feed(path.read_text("utf-8", errors="replace"))
        parser.close()
        parser._flush()
        lines = [ln for ln in parser.lines if _prose(ln)]
        if lines:
            yield rel, lines


# --------------------------------------------------------------------------------------------------
# WordNet: `offset lex_filenum pos ... | gloss; "example"; "example"` per synset line of data.<pos>
_WN_EXAMPLE = re.compile(r'"([^"]+)"')


def wordnet_documents(root: Path, per_document: int = 200):
    for pos in ("noun", "verb", "adj", "adv"):
        lines: list[str] = []
        count = 0
        with open(root / f"usr/share/wordnet/data.{pos}", encoding="utf-8", errors="replace") as f:
            for record in f:
                if record.startswith("  ") or " | " not in record:  # the license header
                    continue
                gloss = record.split(" | ", 1)[1].strip()
                definition = gloss.split(";")[0].strip()
                if definition and not definition.startswith('"'):
                    lines.append(definition[0].upper() + definition[1:] + ".")
                lines += [e.strip()[0].upper() + e.strip()[1:] + ("" if e.strip()[-1] in ".!?" else ".")
                          for e in _WN_EXAMPLE.findall(gloss) if len(e.split()) >= 3]
                count += 1
                if count % per_document == 0:
                    yield f"{pos}/{count // per_document}", lines
                    lines = []
        if lines:
            yield f"{pos}/{count // per_document + 1}", lines


# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) before a space and a capital
# letter or an opening quote; abbreviations such as "Mr." are glued back below.
_SENTENCE_END = re.compile(r'(?<=[.!?])["\')\]]?\s+(?=["\'(\[]?[A-Z])')
_ABBREVIATIONS = ("Mr.", "Mrs.", "Dr.", "St.", "e.g.", "i.e.", "etc.", "vs.", "Ms.", "No.")


def split_sentences(paragraph: str, min_words: int = 4) -> list[str]:
    """A paragraph -> its sentences; pieces of fewer than `min_words` words join the sentence after them."""
    out: list[str] = []
    carry = ""
    for piece in _SENTENCE_END.split(paragraph):
        piece = (carry + " " + piece).strip() if carry else piece.strip()
        if piece.endswith(_ABBREVIATIONS) or len(piece.split()) < min_words:
            carry = piece
            continue
        out.append(piece)
        carry = ""
    if carry:
        if out:
            out[-1] = out[-1] + " " + carry
        else:
            out.append(carry)
    return out


# --------------------------------------------------------------------------------------------------
# Sphinx assets, the symbol indexes (lists of names, not prose) and the license pages.
_PY_EXCLUDE = ("_", "genindex", "py-modindex", "whatsnew/changelog", "copyright", "license")
SOURCES = {
    # name: (package, license, documents(root))
    "austen": ("r-cran-janeaustenr", "MIT (novels themselves public domain)", austen_documents),
    "bible": ("sword-text-web", "public domain (World English Bible)", bible_documents),
    "python": ("python3.11-doc", "PSF License Agreement (Python 3.11 documentation)",
               lambda r: html_documents(r / "usr/share/doc/python3.11/html", exclude=_PY_EXCLUDE)),
    "sqlite": ("sqlite3-doc", "public domain", lambda r: html_documents(r / "usr/share/doc/sqlite3")),
    "postgresql": ("postgresql-doc-15", "PostgreSQL License (BSD/MIT-style)",
                   lambda r: html_documents(r / "usr/share/doc/postgresql-doc-15/html")),
    "wordnet": ("wordnet-base", "WordNet 3.0 license (permissive, BSD-style; Princeton University)", wordnet_documents),
}


def _write(path: Path, docs) -> int:
    """Write documents (lists of paragraphs) to `path`, and one sentence per line to `<stem>_sentences.txt`."""
    for target, split in ((path, False), (path.with_name(path.stem + "_sentences.txt"), True)):
        tmp = target.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for lines in docs:
                if split:
                    lines = [s for line in lines for s in split_sentences(line)]
                f.write("\n".join(lines) + "\n\n")
        os.replace(tmp, target)
    return path.stat().st_size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, type=Path, help="folder the .deb files were unpacked into")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--heldout-fraction", type=float, default=0.01)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train, heldout, stats = [], [], {}
    for name, (package, license_, fn) in SOURCES.items():
        docs = list(fn(args.root))
        if not docs:
            raise SystemExit(f"no text found for {name} ({package}) under {args.root}")
        ranked = sorted(docs, key=lambda d: hashlib.sha1(f"{name}/{d[0]}".encode()).hexdigest())
        n_held = max(1, math.ceil(args.heldout_fraction * len(docs)))
        held_ids = {d[0] for d in ranked[:n_held]}
        held = [lines for doc_id, lines in docs if doc_id in held_ids]
        kept = [lines for doc_id, lines in docs if doc_id not in held_ids]
        train += kept
        heldout += held
        size = lambda ds: sum(len(ln.encode()) + 1 for d in ds for ln in d)
        stats[name] = {"package": package, "license": license_, "documents": len(docs),
                       "heldout_documents": len(held), "train_bytes": size(kept), "heldout_bytes": size(held)}
        _write(args.out / f"heldout_{name}.txt", held)
        print(f"{name:10s} {len(docs):5d} docs  train {size(kept)/1e6:6.2f} MB  held-out {size(held)/1e3:7.1f} kB")
    _write(args.out / "train.txt", train)
    _write(args.out / "heldout.txt", heldout)
    (args.out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    total = sum(s["train_bytes"] for s in stats.values())
    print(f"total train {total/1e6:.2f} MB, held-out {sum(s['heldout_bytes'] for s in stats.values())/1e3:.1f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
