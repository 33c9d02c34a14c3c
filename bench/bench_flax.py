"""Flax speed: jit-compiled forward of our FlaxRobertaModel vs our PyTorch RobertaModel and transformers
4.57's FlaxRobertaModel, one process, identical random roberta-base weights (12 layers, hidden 768).

Throughput in sequences/s at each BxT shape (fp32, CPU, every core for each framework): one warm-up call per
model and shape (it compiles the jit functions), then interleaved rounds (each round runs the three back to back,
order rotated every round, because the machine is shared); seq/s from the median wall time, and each ratio is the
median over rounds of that round's time ratio (> 1: our Flax model is faster). transformers' Flax model is wrapped
in jax.jit (it does not jit by itself). Prints a table to paste into BENCHMARKS.md, then the total wall time and
the peak memory of the run.

    python bench/bench_flax.py --shapes 8x128 32x128 --rounds 3     # the BENCHMARKS.md run
    python bench/bench_flax.py --shapes 8x128 --rounds 2 --layers 1  # a smoke run (~1 minute)
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import jax
import numpy as np
import torch

import roberta
from _timing import interleaved, paired, parse_shapes, peak_rss_gib
from roberta import RobertaConfig

NAMES = {"ours_flax": "ours Flax", "ours_torch": "ours PyTorch", "transformers_flax": "transformers Flax"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=["8x128", "32x128"], help="BxT shapes (space or comma separated)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--layers", type=int, default=12, help="encoder layers (12 = roberta-base; fewer for a smoke run)")
    return p.parse_args(argv)


def build(folder: str, layers: int) -> dict:
    """Three models on one set of random roberta-base weights: ours (Flax), ours (PyTorch), transformers' Flax."""
    torch.manual_seed(0)
    pt = roberta.RobertaModel(RobertaConfig(num_hidden_layers=layers)).eval()  # roberta-base shape
    pt.save_pretrained(os.path.join(folder, "pt"))
    ours = roberta.FlaxRobertaModel.from_pretrained(os.path.join(folder, "pt"))
    ours.save_pretrained(os.path.join(folder, "fx"), pytorch_weights=False)
    models = {"ours_flax": ours, "ours_torch": pt}
    try:
        import transformers

        models["transformers_flax"] = transformers.FlaxRobertaModel.from_pretrained(os.path.join(folder, "fx"))
    except Exception as err:  # noqa: BLE001 - the anchor is optional: say why it is missing
        print(f"transformers' FlaxRobertaModel unavailable ({type(err).__name__}: {err}); its column is left out")
    return models


def runner(name, model, ids, mask):
    """A zero-argument function running one forward to completion and returning last_hidden_state."""
    if name == "ours_torch":
        t_ids, t_mask = torch.tensor(ids), torch.tensor(mask)

        def run():
            with torch.inference_mode():
                return model(input_ids=t_ids, attention_mask=t_mask).last_hidden_state
        return run
    if name == "ours_flax":
        return lambda: model(ids, attention_mask=mask).last_hidden_state.block_until_ready()
    fn = jax.jit(lambda params, i, m: model(i, attention_mask=m, params=params).last_hidden_state)
    return lambda: fn(model.params, ids, mask).block_until_ready()


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        models = build(folder, args.layers)
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores (load average "
          f"{os.getloadavg()[0]:.1f}); jax {jax.__version__} (CPU), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); {args.layers} layers, hidden 768, fp32, all-ones mask; "
          f"{args.rounds} rounds.\n")
    names = list(models)
    theirs = "transformers_flax" in models
    print("| shape | " + " | ".join(f"{NAMES[n]} seq/s" for n in names) + " | ours Flax / ours PyTorch | "
          + ("ours Flax / transformers Flax | " if theirs else "") + "max abs diff vs PyTorch |")
    print("|---|" + "---:|" * (len(names) + 2 + theirs))
    rng = np.random.default_rng(0)
    for B, T in parse_shapes(args.shapes):
        ids = rng.integers(3, 50265, (B, T)).astype(np.int32)
        ids[:, 0], ids[:, -1] = 0, 2
        mask = np.ones_like(ids)
        runs = {n: runner(n, m, ids, mask) for n, m in models.items()}
        outputs = {n: np.asarray(run()) for n, run in runs.items()}  # warm-up: compiles the jit functions
        diff = max(float(np.abs(outputs[n] - outputs["ours_torch"]).max()) for n in outputs)
        del outputs
        times = interleaved(runs, args.rounds)
        rate = {n: B / statistics.median(t) for n, t in times.items()}
        vs_theirs = f"**{paired(times, 'transformers_flax', 'ours_flax'):.2f}x** | " if theirs else ""
        print(f"| {B}x{T} | " + " | ".join(f"{rate[n]:.2f}" for n in names)
              + f" | **{paired(times, 'ours_torch', 'ours_flax'):.2f}x** | {vs_theirs}{diff:.1e} |", flush=True)
    print(f"\nTotal wall time {time.perf_counter() - started:.0f} s, peak memory {peak_rss_gib():.1f} GiB.")


if __name__ == "__main__":
    sys.exit(main())
