"""TensorFlow forward throughput: our TFRoberta* (eager and XLA) vs transformers 4.57's TFRoberta* (eager and
XLA) and vs our PyTorch forward, one process, identical random weights (roberta-base-sized by default).

One warm-up call per contender and shape (XLA compiles there), then rounds: each round runs every contender once,
back to back, in an order rotated every round (the machine is shared). Throughput (sequences/s) is from the
median wall time; each ratio is a speed ratio, the median over rounds of that round's time ratio (> 1: the first
named is faster). One intra-op thread in both TensorFlow and torch. Prints a table to paste into BENCHMARKS.md,
then the total wall time and the peak memory of the run.

    python bench/bench_tf.py --repeats 5                    # the BENCHMARKS.md run: RobertaModel and MaskedLM
                                                            # at 1x128 and 8x128
    python bench/bench_tf.py --repeats 2 --layers 1         # a smoke run
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
torch.set_num_threads(1)
import transformers  # noqa: E402  (its TF classes need tf-keras)

import roberta  # noqa: E402
from _timing import interleaved, paired, parse_shapes, peak_rss_gib  # noqa: E402

MODELS = {"model": "Model", "mlm": "ForMaskedLM"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=["1x128", "8x128"], help="BxT shapes (space or comma separated)")
    p.add_argument("--models", default="model,mlm", help="comma-separated: model, mlm")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--vocab", type=int, default=50265)
    return p.parse_args(argv)


def contenders(head: str, folder: str) -> dict:
    """name -> callable(ids, mask) returning the first output as numpy, all on the same weights."""
    ours = getattr(roberta, f"TFRoberta{head}").from_pretrained(folder)
    theirs = getattr(transformers, f"TFRoberta{head}").from_pretrained(folder, from_pt=True)
    pt = getattr(roberta, f"Roberta{head}").from_pretrained(folder)
    first = "logits" if head != "Model" else "last_hidden_state"

    def keras_call(model):
        return lambda ids, mask: model(input_ids=ids, attention_mask=mask, training=False)[first]

    def pt_call(ids, mask):
        with torch.inference_mode():
            return pt(input_ids=torch.from_numpy(ids.numpy()).long(),
                      attention_mask=torch.from_numpy(mask.numpy()).long())[first].numpy()

    return {
        "ours TF eager": keras_call(ours),
        "ours TF XLA": tf.function(keras_call(ours), jit_compile=True),
        "transformers TF eager": keras_call(theirs),
        "transformers TF XLA": tf.function(keras_call(theirs), jit_compile=True),
        "ours PyTorch": pt_call,
    }


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    config = roberta.RobertaConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                                   num_attention_heads=args.heads, intermediate_size=4 * args.hidden,
                                   max_position_embeddings=514, type_vocab_size=1)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}); "
          f"tensorflow {tf.__version__} (Keras {keras.__version__} for ours, tf-keras for transformers'), torch "
          f"{torch.__version__}, transformers {transformers.__version__}, Python {platform.python_version()}; "
          f"{args.layers} layers, hidden {args.hidden}, vocab {args.vocab}; 1 thread; {args.repeats} rounds.\n")
    print("| model | B x T | ours TF eager seq/s | ours TF XLA seq/s | transformers TF eager seq/s | "
          "transformers TF XLA seq/s | ours PyTorch seq/s | eager: ours TF / transformers TF | "
          "XLA: ours TF / transformers TF | ours TF XLA / ours PyTorch | max abs diff vs PyTorch |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in args.models.split(","):
        head = MODELS[key]
        with tempfile.TemporaryDirectory() as folder:
            torch.manual_seed(0)
            getattr(roberta, f"Roberta{head}")(config).save_pretrained(folder)
            fns = contenders(head, folder)
        for B, T in parse_shapes(args.shapes):
            rng = np.random.default_rng(0)
            ids = tf.constant(np.concatenate([np.zeros((B, 1)), rng.integers(3, args.vocab, (B, T - 2)),
                                              np.full((B, 1), 2)], axis=1), tf.int32)
            mask = tf.ones_like(ids)
            outputs = {name: np.asarray(fn(ids, mask)) for name, fn in fns.items()}  # warm-up: XLA compiles
            diff = max(float(np.abs(outputs[n] - outputs["ours PyTorch"]).max()) for n in outputs)
            del outputs
            times = interleaved({name: (lambda fn=fn: np.asarray(fn(ids, mask))) for name, fn in fns.items()},
                                args.repeats)
            rate = {name: B / statistics.median(t) for name, t in times.items()}
            print(f"| TFRoberta{head} | {B}x{T} | " + " | ".join(f"{rate[n]:.2f}" for n in fns) + " | "
                  f"**{paired(times, 'transformers TF eager', 'ours TF eager'):.2f}x** | "
                  f"**{paired(times, 'transformers TF XLA', 'ours TF XLA'):.2f}x** | "
                  f"{paired(times, 'ours PyTorch', 'ours TF XLA'):.2f}x | {diff:.1e} |", flush=True)
        del fns
    print(f"\nTotal wall time {time.perf_counter() - started:.0f} s, peak memory {peak_rss_gib():.1f} GiB.")


if __name__ == "__main__":
    sys.exit(main())
