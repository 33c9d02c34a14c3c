"""`roberta run --engine ray`: the same job as `roberta run`, spread over a Ray cluster with Ray Data.

    roberta run --task fill-mask --input in.txt --output out.jsonl --engine ray                # a local Ray
    roberta run --task ner --model ./ner --input in.txt --output out.jsonl --engine ray \
        --ray-address ray://head:10001 --ray-actors 8 --ray-cpus-per-actor 4

Each actor loads the model once and runs whole chunks of batch-size x 8 input lines through `roberta run`'s own
chunk runner, the same chunks `roberta run` reads in one process: every forward pass sees the same inputs in the
same padded batch, so the output is the same, byte for byte, in input order, and a bad line costs only itself
under the same --on-error policy. The driver reads the input and writes the output with `roberta run`'s own
readers and writer (cli_run.read_chunks, cli_run.write_results), so the files and exit codes are the same
(PATH.partial renamed onto PATH when complete).
"""
from __future__ import annotations

import argparse
import json
import logging
import os

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
        task, call_kwargs = cli_run.task_options(args)
        cli_run.check_output(args.output, args.input)
        for name in ("ray_cpus_per_actor", "ray_actors"):
            value = getattr(args, name)
            if value is not None and value < 1:
                raise cli_run.UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        ray = _import_ray()
        with cli_run.open_input(args.input) as source:  # chunks as `roberta run` reads them, a JSON list each
            chunks = [json.dumps(chunk) for chunk in cli_run.read_chunks(source, args.batch_size)]
    except Exception as err:
        return cli_run.fail(err)
    started_here = not ray.is_initialized()
    if started_here and chunks:
        address = args.ray_address or os.environ.get("RAY_ADDRESS") or None
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                 configure_logging=False)
    try:
        results = _predict(ray, task, call_kwargs, chunks, args) if chunks else []
        return cli_run.write_results(args, results)
    except cli_run.UsageError as err:  # --on-error stop
        return cli_run.fail(err)
    except Exception as err:  # an actor failed: a bad model path, an unexpected error
        return cli_run.fail(_root_cause(err))
    finally:
        if started_here and ray.is_initialized():
            ray.shutdown()


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise ImportError(f"--engine ray needs Ray Data ({err.name} is missing): pip install 'roberta[ray]'") from None
    return ray


class _Predictor:
    """One Ray actor: loads the pipeline once, turns chunks of input lines into chunks of results."""

    def __init__(self, options: dict, task: str, call_kwargs: dict, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.pipe = cli_run.build_pipeline(argparse.Namespace(**options), task)
        self.task, self.call_kwargs = task, call_kwargs

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        out = []
        for chunk in batch["chunk"]:
            lines = [tuple(pair) for pair in json.loads(chunk)]  # (line number, text) as `roberta run` reads them
            # (line number, result as a JSON line or None, error message or None) per line
            out.append(json.dumps(list(cli_run.run_chunk(self.pipe, self.task, self.call_kwargs, lines))))
        return {"index": batch["index"], "rows": np.array(out, dtype=object)}


def _predict(ray, task, call_kwargs, chunks: list[str], args) -> list[list]:
    """The chunks' rows, chunk by chunk in input order: what cli_run.write_results takes."""
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    cpus = args.ray_cpus_per_actor
    actors = args.ray_actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus)
    actors = min(actors, len(chunks))
    options = {name: getattr(args, name, None)  # what cli_run.build_pipeline reads
               for name in ("model", "tokenizer", "device", "dtype", "batch_size", "pack_weights", "quantize")}
    logger.info("Ray: %d chunks over %d actors (%d CPUs each)", len(chunks), actors, cpus)
    dataset = ray.data.from_items([{"index": i, "chunk": c} for i, c in enumerate(chunks)])
    mapped = dataset.map_batches(
        _Predictor, batch_size=1, concurrency=actors, num_cpus=cpus, num_gpus=args.ray_gpus_per_actor or None,
        fn_constructor_kwargs={"options": options, "task": task, "call_kwargs": call_kwargs, "threads": cpus})
    rows = sorted(mapped.take_all(), key=lambda row: row["index"])  # in input order, whatever Ray did
    if [row["index"] for row in rows] != list(range(len(chunks))):
        raise RuntimeError(f"Ray returned {len(rows)} of {len(chunks)} chunks")
    return [json.loads(row["rows"]) for row in rows]


def _root_cause(err: BaseException) -> BaseException:
    """Ray wraps an actor's exception (RayTaskError, ...): the innermost cause names the real problem."""
    while getattr(err, "cause", None) is not None and err.cause is not err:
        err = err.cause
    return err.__cause__ if err.__cause__ is not None and "Ray" in type(err).__name__ else err
