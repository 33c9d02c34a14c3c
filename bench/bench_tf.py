"""TensorFlow forward throughput: our TFRoberta* (eager and XLA) vs transformers 4.57's TFRoberta* (eager and
XLA) and vs our PyTorch forward, one process, identical random weights (roberta-base-sized by default).

Each round runs every contender once, back to back, in an order rotated every round (the machine is shared);
per contender the median time is reported, and each **paired ratio** is the median over rounds of that
round's time ratio (> 1 = our TF side faster). Times are wall-clock, with one intra-op thread in both
TensorFlow and torch; adjacent runs share the machine's load of the moment, which the paired ratios cancel.

    python bench/bench_tf.py                                   # 1x128 and 8x128, RobertaModel and MaskedLM
    python bench/bench_tf.py --shapes 8x128 --models model --repeats 3 --layers 4
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
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
torch.set_num_threads(1)
import transformers  # noqa: E402  (its TF classes need tf-keras)

import roberta  # noqa: E402

MODELS = {"model": "Model", "mlm": "ForMaskedLM"}
# Wall clock: TensorFlow runs kernels on its own pool threads, so the calling thread's CPU time misses them,
# and the process's CPU time charges one framework for the other's idle pool threads.
CLOCK = time.perf_counter


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="1x128,8x128", help="comma-separated BxT")
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


def run_case(fns: dict, ids, mask, repeats: int) -> tuple[dict, dict]:
    """-> (per contender: list of seconds, per contender: output), after one warm-up call each (XLA compiles)."""
    outputs = {name: np.asarray(fn(ids, mask)) for name, fn in fns.items()}
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = CLOCK()
            np.asarray(fns[name](ids, mask))
            times[name].append(CLOCK() - start)
    return times, outputs


def paired(times: dict, slow: str, fast: str) -> float:
    return statistics.median(a / b for a, b in zip(times[slow], times[fast]))


def main(argv=None):
    args = parse_args(argv)
    config = roberta.RobertaConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                                   num_attention_heads=args.heads, intermediate_size=4 * args.hidden,
                                   max_position_embeddings=514, type_vocab_size=1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, tensorflow {tf.__version__}, torch "
          f"{torch.__version__}, transformers {transformers.__version__}, Python {platform.python_version()}; "
          f"{args.layers} layers, hidden {args.hidden}, vocab {args.vocab}; 1 thread; {args.repeats} rounds")
    print("| model | B x T | ours TF eager ms | ours TF XLA ms | transformers TF eager ms | transformers TF XLA ms | "
          "ours PyTorch ms | eager: transformers TF / ours TF | XLA: transformers TF / ours TF | "
          "ours PyTorch / ours TF XLA | max abs diff vs PyTorch |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in args.models.split(","):
        head = MODELS[key]
        with tempfile.TemporaryDirectory() as folder:
            torch.manual_seed(0)
            getattr(roberta, f"Roberta{head}")(config).save_pretrained(folder)
            fns = contenders(head, folder)
        for shape in args.shapes.split(","):
            B, T = (int(x) for x in shape.split("x"))
            rng = np.random.default_rng(0)
            ids = tf.constant(np.concatenate([np.zeros((B, 1)), rng.integers(3, args.vocab, (B, T - 2)),
                                              np.full((B, 1), 2)], axis=1), tf.int32)
            mask = tf.ones_like(ids)
            times, outputs = run_case(fns, ids, mask, args.repeats)
            ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
            diff = max(float(np.abs(outputs[n] - outputs["ours PyTorch"]).max()) for n in outputs)
            print(f"| TFRoberta{head} | {B}x{T} | {ms['ours TF eager']:.1f} | {ms['ours TF XLA']:.1f} | "
                  f"{ms['transformers TF eager']:.1f} | {ms['transformers TF XLA']:.1f} | {ms['ours PyTorch']:.1f} | "
                  f"**{paired(times, 'transformers TF eager', 'ours TF eager'):.3f}** | "
                  f"**{paired(times, 'transformers TF XLA', 'ours TF XLA'):.3f}** | "
                  f"{paired(times, 'ours PyTorch', 'ours TF XLA'):.3f} | {diff:.1e} |", flush=True)
        del fns


if __name__ == "__main__":
    sys.exit(main())
