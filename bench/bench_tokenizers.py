"""Tokenizer throughput: ours vs transformers 4.57, in one process, on the same sentences.

Sentences are generated deterministically from the real roberta-base vocabulary's words (mixed lengths,
punctuation, numbers, some non-ASCII). Each measurement is interleaved (ours, theirs, ours, ...) over several
repeats and the median is reported, with the ratio, because the machine is shared. Caches are warmed first
(both slow tokenizers memoise BPE per word).

    /work/venv-dev/bin/python bench/bench_tokenizers.py [--n 20000] [--repeats 3] [--dir ../shared/data/roberta-base]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_sentences(vocab_file: Path, n: int, seed: int = 0) -> list[str]:
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    words = sorted(t[1:] for t in vocab if t.startswith("Ġ") and t[1:].isalpha() and t[1:].isascii())
    rng = random.Random(seed)
    extras = ["café", "naïve", "東京", "😀", "3.14", "1,000", "don't", "it's", "(see above)", "e.g.", "—", "\"quoted\""]
    out = []
    for _ in range(n):
        length = int(rng.choice([rng.randint(3, 12), rng.randint(12, 40), rng.randint(40, 120)]))
        toks = [rng.choice(extras) if rng.random() < 0.05 else rng.choice(words) for _ in range(length)]
        s = " ".join(toks)
        out.append(s[0].upper() + s[1:] + rng.choice([".", "!", "?", "", "..."]))
    return out


def timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def compare(name: str, ours, theirs, n_items: int, repeats: int) -> dict:
    ours()  # warm-up (caches, lazy backends)
    theirs()
    ow, oc, tw, tc = [], [], [], []
    for _ in range(repeats):
        a, b = timed(ours)
        ow.append(a)
        oc.append(b)
        a, b = timed(theirs)
        tw.append(a)
        tc.append(b)
    row = {"case": name, "ours_per_s": n_items / statistics.median(ow), "theirs_per_s": n_items / statistics.median(tw),
           "ours_cpu_per_s": n_items / statistics.median(oc), "theirs_cpu_per_s": n_items / statistics.median(tc)}
    row["ratio"] = row["ours_per_s"] / row["theirs_per_s"]
    row["ratio_cpu"] = row["ours_cpu_per_s"] / row["theirs_cpu_per_s"]
    print(f"{name:<34} ours {row['ours_per_s']:>9.0f}/s  transformers {row['theirs_per_s']:>9.0f}/s  "
          f"ratio {row['ratio']:.2f}x (cpu-time ratio {row['ratio_cpu']:.2f}x)", flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", type=Path, default=REPO.parent / "shared" / "data" / "roberta-base")
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args()
    logging.disable(logging.WARNING)
    from transformers import RobertaTokenizer as HS
    from transformers import RobertaTokenizerFast as HF
    from transformers.utils import logging as hf_logging

    from roberta.tokenization import RobertaTokenizer, RobertaTokenizerFast

    hf_logging.set_verbosity_error()
    sents = make_sentences(args.dir / "vocab.json", args.n)
    ours_s, ours_f = RobertaTokenizer.from_pretrained(args.dir), RobertaTokenizerFast.from_pretrained(args.dir)
    hs, hf = HS.from_pretrained(str(args.dir), model_max_length=512), HF.from_pretrained(str(args.dir), model_max_length=512)
    assert ours_s(sents[:500])["input_ids"] == hs(sents[:500])["input_ids"] == ours_f(sents[:500])["input_ids"]
    n_tok = sum(len(x) for x in ours_f(sents)["input_ids"])
    print(f"{len(sents)} sentences, {n_tok} tokens; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs", flush=True)
    bs = args.batch_size
    chunks = [sents[i:i + bs] for i in range(0, len(sents), bs)]
    kw = dict(truncation=True, max_length=512)
    rows = [
        compare("slow, batched __call__", lambda: ours_s(sents, **kw), lambda: hs(sents, **kw), len(sents), args.repeats),
        compare("slow, one call per sentence", lambda: [ours_s(s, **kw) for s in sents],
                lambda: [hs(s, **kw) for s in sents], len(sents), args.repeats),
        compare("fast, one call per sentence", lambda: [ours_f(s, **kw) for s in sents],
                lambda: [hf(s, **kw) for s in sents], len(sents), args.repeats),
        compare(f"fast, batches of {bs} (padding=True)", lambda: [ours_f(c, padding=True, **kw) for c in chunks],
                lambda: [hf(c, padding=True, **kw) for c in chunks], len(sents), args.repeats),
        compare("fast, one batch of all", lambda: ours_f(sents, **kw), lambda: hf(sents, **kw), len(sents), args.repeats),
    ]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
