"""generate() speed: our RobertaForCausalLM.generate vs transformers 4.57.6's, one process, same weights and prompts.

A random-init decoder (default 6 layers, hidden 512, vocab 50265, is_decoder=True), a left-padded batch of
prompts; greedy search, sampling and beam search for --new tokens each. Runs alternate ours/theirs (order
flipped every repeat), timed by process CPU time (the machine is shared); the median of per-repeat ratios
(transformers time / ours, > 1 means ours is faster) is reported. Both sides must return the same tokens
(sampling from the same seed), else the run stops.

    python bench/bench_generation.py                 # default sizes, 3 repeats
    python bench/bench_generation.py --write         # also replace `## generation` in BENCHMARKS.md
    python bench/bench_generation.py --layers 2 --hidden 64 --new 8 --repeats 1   # smoke run
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
CLOCK = time.process_time

MODES = {
    "greedy": dict(),
    "sampling (top_k 50, top_p 0.9)": dict(do_sample=True, top_p=0.9),
    "beam search (4 beams)": dict(num_beams=4),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--vocab", type=int, default=50265)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--prompt", type=int, default=32, help="prompt tokens (the shortest row has half)")
    p.add_argument("--new", type=int, default=32, help="tokens to generate")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--write", action="store_true", help="record the table under `## generation` in BENCHMARKS.md")
    return p.parse_args(argv)


def build(args):
    import transformers

    import roberta

    kw = dict(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
              num_attention_heads=args.heads, intermediate_size=4 * args.hidden, is_decoder=True,
              initializer_range=0.1)  # peaked logits: float rounding cannot flip a greedy choice
    torch.manual_seed(0)
    theirs = transformers.RobertaForCausalLM(transformers.RobertaConfig(**kw)).eval()
    ours = roberta.RobertaForCausalLM(roberta.RobertaConfig(**kw)).eval()
    ours.load_state_dict(theirs.state_dict())
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, args.vocab, (args.batch, args.prompt), generator=g)
    mask = torch.ones_like(ids)
    mask[0, :args.prompt // 2] = 0  # one left-padded row
    ids[mask == 0] = 1
    return ours, theirs, ids, mask


def timed(model, ids, mask, args, options):
    torch.manual_seed(0)
    start = CLOCK()
    out = model.generate(ids, attention_mask=mask, max_new_tokens=args.new, min_new_tokens=args.new, **options)
    return CLOCK() - start, out


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    ours, theirs, ids, mask = build(args)
    rows = []
    for name, options in MODES.items():
        timed(ours, ids, mask, args, options), timed(theirs, ids, mask, args, options)  # warm-up
        ours_t, theirs_t, ratios = [], [], []
        for r in range(args.repeats):
            pair = [(ours, ours_t), (theirs, theirs_t)]
            outs = []
            for model, times in (pair if r % 2 == 0 else pair[::-1]):
                t, out = timed(model, ids, mask, args, options)
                times.append(t)
                outs.append(out)
            if not torch.equal(outs[0], outs[1]):
                raise SystemExit(f"{name}: the two libraries returned different tokens")
            ratios.append(theirs_t[-1] / ours_t[-1])
        rows.append((name, statistics.median(ours_t), statistics.median(theirs_t), statistics.median(ratios)))
        print(f"{name:32s} ours {rows[-1][1]:.3f}s  transformers {rows[-1][2]:.3f}s  ratio {rows[-1][3]:.2f}x")
    report = render(args, rows)
    print(report)
    if args.write:
        from bench_loading import _write_section

        _write_section(ROOT / "BENCHMARKS.md", "generation", report)


def render(args, rows) -> str:
    table = "\n".join(f"| {n} | {o:.3f} | {t:.3f} | **{r:.2f}x** |" for n, o, t, r in rows)
    return (f"Machine: {platform.machine()} CPU shared with other jobs, torch {torch.__version__}, "
            f"{args.threads} torch thread(s), timed by process CPU time.\n"
            f"Model: random-init RobertaForCausalLM (is_decoder), {args.layers} layers, hidden {args.hidden}, "
            f"vocab {args.vocab}, fp32; {args.batch} prompts of {args.prompt} tokens (one left-padded to half), "
            f"{args.new} new tokens each; the same tokens on both sides (checked every run).\n\n"
            "| mode | ours (s) | transformers 4.57.6 (s) | speed ratio transformers / ours |\n|---|---|---|---|\n"
            f"{table}\n\nMedian of {args.repeats} interleaved repeats. Command: `python bench/bench_generation.py"
            f"{' --write' if args.write else ''}`.")


if __name__ == "__main__":
    main()
