"""`roberta run --engine ray`: the same job as `roberta run`, spread over a Ray cluster with Ray Data.

    roberta run --task fill-mask --input in.txt --output out.jsonl --engine ray                # a local Ray
    roberta run --task ner --model ./ner --input in.txt --output out.jsonl --engine ray \
        --ray-address ray://head:10001 --ray-actors 8 --ray-cpus-per-actor 4

Each actor loads the model once and runs the pipeline over whole chunks of batch-size x 8 input lines, the same
chunks `roberta run` reads in one process: every forward pass sees the same inputs in the same padded batch, so
the output is the same, byte for byte, in input order. The driver reads and checks the input (bad lines are
reported with their number before the cluster starts work) and writes the output atomically, as `roberta run` does.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import sys

from roberta.pipelines import cli_run

logger = logging.getLogger(__name__)


def add_engine_arguments(run_parser: argparse.ArgumentParser) -> None:
    """Add --engine and the --ray-* flags to `roberta run`; --engine ray dispatches here."""
    group = run_parser.add_argument_group("scale-out (needs roberta[ray])")
    group.add_argument("--engine", default="local", choices=["local", "ray"],
                       help="local (default): this process; ray: Ray Data map_batches over a Ray cluster")
    group.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="cluster to join: host:port of `ray start --head`, ray://host:10001, or auto "
                            "(default: $RAY_ADDRESS, else a local Ray started for this run)")
    group.add_argument("--ray-actors", type=int, default=None, metavar="N",
                       help="model replicas (actors) in the whole cluster (default: cluster CPUs / cpus-per-actor)")
    group.add_argument("--ray-cpus-per-actor", type=int, default=1, metavar="N",
                       help="CPUs reserved per actor, also its torch threads (default 1)")
    group.add_argument("--ray-gpus-per-actor", type=float, default=0, metavar="N",
                       help="GPUs per actor (default 0; e.g. 1 with --device cuda)")
    local = run_parser.get_default("func")

    def dispatch(args) -> int:
        return run_ray(args) if args.engine == "ray" else local(args)

    run_parser.set_defaults(func=dispatch)


def run_ray(args) -> int:
    try:
        task, call_kwargs = cli_run._task_options(args)
        for name in ("ray_cpus_per_actor", "ray_actors"):
            value = getattr(args, name)
            if value is not None and value < 1:
                raise cli_run.UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        ray = _import_ray()
    except Exception as err:
        return cli_run._fail(err)
    try:
        chunks = _read_chunks(task, args)
    except (OSError, cli_run.UsageError) as err:
        return cli_run._fail(err)
    if not chunks:
        return _write(args, [])
    started_here = not ray.is_initialized()
    if started_here:
        address = args.ray_address or os.environ.get("RAY_ADDRESS") or None
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                 configure_logging=False)
    try:
        lines = _predict(ray, task, call_kwargs, chunks, args)
    except Exception as err:  # an actor failed: a bad model path, an input the pipeline rejects
        return cli_run._fail(_root_cause(err))
    finally:
        if started_here:
            ray.shutdown()
    return _write(args, lines)


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise ImportError(f"--engine ray needs Ray Data ({err.name} is missing): pip install 'roberta[ray]'") from None
    return ray


def _read_chunks(task, args) -> list[str]:
    """Input lines, parsed and checked as `roberta run` does, in chunks of batch-size x 8 (a JSON list each)."""
    source = sys.stdin if args.input is None else open(args.input, encoding="utf-8", newline="")
    try:
        lines = enumerate(source, start=1)
        size = args.batch_size * cli_run._CHUNK_BATCHES
        chunks = []
        while chunk := list(itertools.islice(lines, size)):
            chunks.append(json.dumps([cli_run._parse(task, text, number) for number, text in chunk]))
        return chunks
    finally:
        if source is not sys.stdin:
            source.close()


class _Predictor:
    """One Ray actor: loads the pipeline once, turns chunks of inputs into chunks of JSON lines."""

    def __init__(self, options: dict, task: str, call_kwargs: dict, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.pipe = cli_run._build(argparse.Namespace(**options), task)
        self.call_kwargs = call_kwargs

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        out = []
        for chunk in batch["chunk"]:
            results = self.pipe(iter(json.loads(chunk)), **self.call_kwargs)
            out.append("".join(json.dumps(r, ensure_ascii=False, default=cli_run._jsonable) + "\n" for r in results))
        return {"index": batch["index"], "lines": np.array(out, dtype=object)}


def _predict(ray, task, call_kwargs, chunks: list[str], args) -> list[str]:
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    cpus = args.ray_cpus_per_actor
    actors = args.ray_actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus)
    actors = min(actors, len(chunks))
    options = {name: getattr(args, name, None)  # what cli_run._build reads
               for name in ("model", "tokenizer", "device", "dtype", "batch_size", "pack_weights", "quantize")}
    logger.info("Ray: %d chunks over %d actors (%d CPUs each)", len(chunks), actors, cpus)
    dataset = ray.data.from_items([{"index": i, "chunk": c} for i, c in enumerate(chunks)])
    mapped = dataset.map_batches(
        _Predictor, batch_size=1, concurrency=actors, num_cpus=cpus, num_gpus=args.ray_gpus_per_actor or None,
        fn_constructor_kwargs={"options": options, "task": task, "call_kwargs": call_kwargs, "threads": cpus})
    rows = sorted(mapped.take_all(), key=lambda row: row["index"])  # in input order, whatever Ray did
    if [row["index"] for row in rows] != list(range(len(chunks))):
        raise RuntimeError(f"Ray returned {len(rows)} of {len(chunks)} chunks")
    return [row["lines"] for row in rows]


def _write(args, lines: list[str]) -> int:
    """stdout, or --output replaced atomically once every line is written (cli_run's temp file beside it)."""
    out, tmp_path = cli_run._open_output(args.output)
    try:
        with out if out is not sys.stdout else contextlib.nullcontext(out):
            out.writelines(lines)
            out.flush()
    except BaseException:
        if tmp_path is not None:
            os.unlink(tmp_path)
        raise
    if tmp_path is not None:
        os.replace(tmp_path, args.output)
    return 0


def _root_cause(err: BaseException) -> BaseException:
    """Ray wraps an actor's exception (RayTaskError, ...): the innermost cause names the real problem."""
    while getattr(err, "cause", None) is not None and err.cause is not err:
        err = err.cause
    return err.__cause__ if err.__cause__ is not None and "Ray" in type(err).__name__ else err
