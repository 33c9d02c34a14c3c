"""Timing pieces shared by bench_flax.py and bench_tf.py: shapes from the command line, interleaved rounds with
paired ratios (the machine is shared), and the run's peak memory.

Wall-clock time: JAX and TensorFlow run kernels on their own pool threads, so the calling thread's CPU time
misses them, and the process's CPU time charges one framework for another's idle pool threads."""
from __future__ import annotations

import resource
import statistics
import time

CLOCK = time.perf_counter


def parse_shapes(values: list[str]) -> list[tuple[int, int]]:
    """["8x128", "32x128"] or ["8x128,32x128"] -> [(8, 128), (32, 128)]."""
    shapes = []
    for item in ",".join(values).split(","):
        batch, _, length = item.strip().partition("x")
        if not (batch.isdigit() and length.isdigit()):
            raise SystemExit(f"--shapes: {item!r} is not BxT (e.g. 8x128)")
        shapes.append((int(batch), int(length)))
    return shapes


def interleaved(fns: dict, rounds: int, clock=CLOCK, warmup: int = 0) -> dict[str, list[float]]:
    """Seconds (by `clock`) per call of each zero-argument callable, `rounds` times; every round runs each once,
    back to back, in an order rotated every round, after `warmup` untimed calls of each."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = clock()
            fns[name]()
            times[name].append(clock() - start)
    return times


def paired(times: dict, slow: str, fast: str) -> float:
    """Median over rounds of that round's time ratio slow/fast (> 1: `fast` is faster). Adjacent runs share the
    machine's load of the moment, which the per-round ratio cancels."""
    return statistics.median(a / b for a, b in zip(times[slow], times[fast]))


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux
