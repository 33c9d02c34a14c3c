"""Flax speed: jit-compiled forward of our FlaxRobertaModel vs our PyTorch RobertaModel and transformers
4.57's FlaxRobertaModel, one process, identical random roberta-base weights (12 layers, hidden 768).

Throughput in sequences/s at each BxT shape (fp32, CPU): wall time per forward after one warm-up call
(which compiles the jit functions), median of interleaved rounds (the order rotates each round, because
the machine is shared). transformers' Flax model is wrapped in jax.jit (it does not jit by itself).
Ratios > 1 mean ours is faster.

    python bench/bench_flax.py                  # 8x128 and 32x128, 5 rounds
    python bench/bench_flax.py --shapes 8x128 --rounds 3
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import jax
import numpy as np
import torch

import roberta
from roberta import RobertaConfig


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="8x128,32x128", help="comma-separated BxT shapes")
    p.add_argument("--rounds", type=int, default=5)
    return p.parse_args(argv)


def build(folder: str):
    """Three models on one set of random roberta-base weights: ours (PyTorch), ours (Flax), transformers' Flax."""
    torch.manual_seed(0)
    pt = roberta.RobertaModel(RobertaConfig()).eval()  # roberta-base shape
    pt.save_pretrained(os.path.join(folder, "pt"))
    ours = roberta.FlaxRobertaModel.from_pretrained(os.path.join(folder, "pt"))
    ours.save_pretrained(os.path.join(folder, "fx"), pytorch_weights=False)
    models = {"ours_flax": ours, "ours_torch": pt}
    try:
        import transformers

        theirs = transformers.FlaxRobertaModel.from_pretrained(os.path.join(folder, "fx"))
        models["transformers_flax"] = theirs
    except Exception as err:  # noqa: BLE001 - the anchor is optional: report why it is missing
        print(f"transformers' FlaxRobertaModel unavailable: {err}")
    return models


def runner(name, model, ids, mask):
    """A zero-argument function running one forward to completion."""
    if name == "ours_torch":
        t_ids, t_mask = torch.tensor(ids), torch.tensor(mask)

        def run():
            with torch.inference_mode():
                model(input_ids=t_ids, attention_mask=t_mask)
        return run
    if name == "ours_flax":
        return lambda: model(ids, attention_mask=mask).last_hidden_state.block_until_ready()
    fn = jax.jit(lambda params, i, m: model(i, attention_mask=m, params=params).last_hidden_state)
    return lambda: fn(model.params, ids, mask).block_until_ready()


def main(argv=None):
    args = parse_args(argv)
    print(f"jax {jax.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus")
    with tempfile.TemporaryDirectory() as folder:
        models = build(folder)
    rng = np.random.default_rng(0)
    print("| shape | " + " | ".join(f"{n} seq/s" for n in models) + " | ours_flax / ours_torch | ours_flax / transformers_flax |")
    print("|---|" + "---|" * (len(models) + 2))
    for shape in args.shapes.split(","):
        B, T = map(int, shape.split("x"))
        ids = rng.integers(3, 50265, (B, T)).astype(np.int32)
        ids[:, 0], ids[:, -1] = 0, 2
        mask = np.ones_like(ids)
        runs = {n: runner(n, m, ids, mask) for n, m in models.items()}
        for run in runs.values():
            run()  # warm-up: compiles the jit functions
        times = {n: [] for n in runs}
        names = list(runs)
        for r in range(args.rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                start = time.perf_counter()
                runs[n]()
                times[n].append(time.perf_counter() - start)
        rate = {n: B / statistics.median(t) for n, t in times.items()}
        vs_theirs = f"{rate['ours_flax'] / rate['transformers_flax']:.2f}x" if "transformers_flax" in rate else "n/a"
        print(f"| {shape} | " + " | ".join(f"{rate[n]:.1f}" for n in names)
              + f" | {rate['ours_flax'] / rate['ours_torch']:.2f}x | {vs_theirs} |", flush=True)


if __name__ == "__main__":
    main()
