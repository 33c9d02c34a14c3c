"""Pipelines: ours vs transformers' own `pipeline`, one process, identical weights and inputs.

A roberta-base-sized random RobertaForMaskedLM (12 layers, hidden 768, vocab 50265) and a sequence classifier
of the same size are saved once by transformers; both libraries load the same folder with the real roberta-base
tokenizer (../shared/data/roberta-base). Inputs: N sentences of 5 to 200 words with one <mask> each (seeded).
For each batch size the two pipelines run interleaved, `--repeats` times, and the median total time is reported,
with the number of sentences whose top-5 tokens agree. `--chunk N` splits the sentences into calls of N, the two
libraries alternating call by call (order flipped every call), so a slow patch of a shared machine hits both
alike; for batch 1 that changes nothing else (a chunk also bounds the length sorting of batched calls).

    python bench/bench_pipelines.py --sentences 2000            # the full run
    python bench/bench_pipelines.py --batch-sizes 1 --tasks fill-mask --chunk 100 --threads 1   # batch 1
    python bench/bench_pipelines.py --sentences 200 --write      # a reduced run, recorded in BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
BASE = REPO.parent / "shared" / "data" / "roberta-base"
WORDS = ("the of and to in is was for on that with as by at from his her it an were which are this be "
         "city music river people history science language school family government water country world "
         "music court church year time war king river system series team film album song station "
         "played built became known called made found born moved wrote lived named used began won").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 200))]
        words[rng.randrange(len(words))] = "<mask>"
        out.append(" ".join(words).capitalize() + ".")
    return out


def build(folder: Path, kind: str) -> Path:
    import transformers

    config = transformers.RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1,
                                        pad_token_id=1, bos_token_id=0, eos_token_id=2, num_labels=2)
    cls = transformers.RobertaForMaskedLM if kind == "mlm" else transformers.RobertaForSequenceClassification
    torch.manual_seed(0)
    model = cls(config).eval()
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(str(BASE)).save_pretrained(folder)
    return folder


def interleaved(ref, ours, texts, chunk, **call):
    """Run both pipelines over `texts`, `chunk` sentences at a time, back to back (order flipped every chunk),
    so a slow patch of the machine hits both alike. -> (ref seconds, our seconds, ref outputs, our outputs)."""
    seconds = {"ref": 0.0, "ours": 0.0}
    outputs = {"ref": [], "ours": []}
    sides = (("ref", ref), ("ours", ours))
    chunk = chunk or len(texts)
    for n, start in enumerate(range(0, len(texts), chunk)):
        part = texts[start:start + chunk]
        for name, pipe in (sides if n % 2 == 0 else sides[::-1]):
            begin = time.perf_counter()
            outputs[name] += pipe(part, **call)
            seconds[name] += time.perf_counter() - begin
    return seconds["ref"], seconds["ours"], outputs["ref"], outputs["ours"]


def bench_fill_mask(folder, texts, batch_sizes, repeats, chunk, pack_weights):
    import transformers

    from roberta.pipelines import pipeline

    ref = transformers.pipeline("fill-mask", model=str(folder), device=-1, dtype=torch.float32)
    ours = pipeline("fill-mask", model=str(folder), device=-1, dtype=torch.float32, pack_weights=pack_weights)
    ref(texts[:2]), ours(texts[:2])  # warm-up
    rows = []
    for bs in batch_sizes:
        t_ref, t_ours = [], []
        for _ in range(repeats):
            a, b, ref_out, our_out = interleaved(ref, ours, texts, chunk, batch_size=bs, top_k=5)
            t_ref.append(a)
            t_ours.append(b)
        agree = sum([r["token"] for r in a] == [r["token"] for r in b] for a, b in zip(our_out, ref_out))
        rows.append(("fill-mask", bs, len(texts) / statistics.median(t_ours), len(texts) / statistics.median(t_ref),
                     f"{agree}/{len(texts)} same top-5"))
        print(rows[-1], flush=True)
    return rows


def bench_classification(folder, texts, batch_size, repeats, chunk, pack_weights):
    import transformers

    from roberta.pipelines import pipeline

    ref = transformers.pipeline("text-classification", model=str(folder), device=-1, dtype=torch.float32)
    ours = pipeline("text-classification", model=str(folder), device=-1, dtype=torch.float32,
                    pack_weights=pack_weights)
    ref(texts[:2]), ours(texts[:2])
    t_ref, t_ours = [], []
    for _ in range(repeats):
        a, b, ref_out, our_out = interleaved(ref, ours, texts, chunk, batch_size=batch_size)
        t_ref.append(a)
        t_ours.append(b)
    agree = sum(a["label"] == b["label"] and abs(a["score"] - b["score"]) < 1e-3 for a, b in zip(our_out, ref_out))
    row = ("text-classification", batch_size, len(texts) / statistics.median(t_ours),
           len(texts) / statistics.median(t_ref), f"{agree}/{len(texts)} same label and score")
    print(row, flush=True)
    return [row]


def table(rows, args) -> str:
    lines = [
        "## pipelines",
        "",
        f"`python bench/bench_pipelines.py {' '.join(sys.argv[1:])}` on "
        f"{platform.machine()} CPU, {os.cpu_count()} cores shared with other jobs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, float32. Model: random roberta-base-sized weights "
        "(12 layers, hidden 768, vocab 50265), the real roberta-base tokenizer, saved once and loaded by both "
        f"libraries. Inputs: {args.sentences} seeded sentences of 5-200 words, one `<mask>` each. "
        "Throughput in sentences/s (median of the repeats, runs interleaved); ratio = ours / transformers.",
        "",
        "| task | batch | ours (sent/s) | transformers (sent/s) | ratio | agreement |",
        "|---|---|---|---|---|---|",
    ]
    for task, bs, ours, ref, agree in rows:
        lines.append(f"| {task} | {bs} | {ours:.2f} | {ref:.2f} | {ours / ref:.2f}x | {agree} |")
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path = REPO / "BENCHMARKS.md") -> None:
    """Replace (or append) the `## pipelines` section of BENCHMARKS.md, leaving other sections alone."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start = old.find("\n## pipelines")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + 1)
        new = old[: start + 1] + text + ("" if end < 0 else "\n" + old[end + 1 :])
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--tasks", nargs="+", default=["fill-mask", "text-classification"],
                        choices=["fill-mask", "text-classification"])
    parser.add_argument("--chunk", type=int, default=0,
                        help="sentences per timed call, the two libraries alternating chunk by chunk (default 0: all "
                             "in one call; a chunk also bounds the length sorting, so keep it >> the batch size)")
    parser.add_argument("--no-pack-weights", dest="pack_weights", action="store_false",
                        help="ours without packed CPU weights (pipeline(..., pack_weights=False))")
    parser.add_argument("--write", action="store_true", help="record the table under `## pipelines` in BENCHMARKS.md")
    parser.add_argument("--note", default="", help="a sentence appended to the recorded section")
    args = parser.parse_args()
    if not (BASE / "vocab.json").is_file():
        print(f"the real roberta-base tokenizer is needed at {BASE}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = sentences(args.sentences)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if "fill-mask" in args.tasks:
            rows += bench_fill_mask(build(Path(tmp) / "mlm", "mlm"), texts, args.batch_sizes, args.repeats,
                                    args.chunk, args.pack_weights)
        if "text-classification" in args.tasks:
            rows += bench_classification(build(Path(tmp) / "cls", "cls"), texts, 32, args.repeats, args.chunk,
                                         args.pack_weights)
    text = table(rows, args) + (f"\n{args.note}\n" if args.note else "")
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
