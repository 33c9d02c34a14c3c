"""`roberta serve`: flags, then uvicorn in front of roberta.serve.app (imported only when the command runs).

    roberta serve --task fill-mask                        # the embedded model on http://127.0.0.1:8000
    roberta serve --task ner --model ./my-ner --port 9000 --max-batch-size 64

On SIGTERM or Ctrl-C uvicorn stops accepting connections and lets open requests finish (the batcher runs
whatever is queued), then the process exits 0. (uvicorn itself re-raises the signal after that clean stop, so
the process would die by it with status 143; a stop that was asked for and went well is not a failure.)
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal

from roberta.pipelines import get_supported_tasks, normalize_task


def add_parser(subparsers) -> argparse.ArgumentParser:
    tasks = get_supported_tasks()
    parser = subparsers.add_parser(
        "serve", help="serve a task pipeline over HTTP with dynamic batching (needs roberta[serve])",
        description="An HTTP server for a task pipeline: POST /predict, GET /health, /metrics, /docs, and a page "
                    "to try the model at /. Concurrent requests are merged into batches.",
        epilog="example: roberta serve --task fill-mask --port 8000  then  curl -s localhost:8000/predict "
               "-H 'content-type: application/json' -d '{\"inputs\": \"Paris is the <mask> of France.\"}'")
    parser.add_argument("--task", required=True, choices=tasks, metavar="TASK", help=f"one of: {', '.join(tasks)}")
    parser.add_argument("--model", default=None, metavar="PATH_OR_ID",
                        help="model folder or hub id (optional for fill-mask: the embedded default model)")
    parser.add_argument("--tokenizer", default=None, metavar="PATH_OR_ID", help="tokenizer folder or hub id (default: --model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--device", default="cpu", help="cpu (default), N or cuda:N")
    parser.add_argument("--dtype", default=None, choices=["auto", "float32", "float16", "bfloat16"],
                        help="weights dtype (default: as saved)")
    parser.add_argument("--quantize", default=None, choices=["int8", "int8_weight_only"],
                        help="int8 encoder matmuls (dynamic activations), or int8 weights only (see roberta.quantization)")
    parser.add_argument("--max-batch-size", type=int, default=32, metavar="N", help="inputs per forward pass (default 32)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, metavar="MS",
                        help="under load, how long a batch waits to fill (default 5; an idle server never waits)")
    parser.add_argument("--max-queue", type=int, default=1024, metavar="N",
                        help="inputs allowed to wait; beyond that requests get 503 + Retry-After (default 1024)")
    parser.add_argument("--max-inputs", type=int, default=256, metavar="N", help="inputs per request (default 256; more: 413)")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="forward rounds run at once on the one model, in threads (default 2: one thread's forward "
                             "pass overlaps another's tokenization and post-processing)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads per forward pass (default: torch's thread count / --workers, at least 1; "
                             "torch's count is the physical cores, or OMP_NUM_THREADS)")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20, metavar="N",
                        help="request body size limit (default 1 MiB; more: 413)")
    parser.add_argument("--graceful-timeout", type=float, default=30.0, metavar="S",
                        help="on SIGTERM, how long open requests may take to finish (default 30)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.set_defaults(func=serve_command)
    return parser


def serve_command(args) -> int:
    task = normalize_task(args.task)
    if args.model is None and task != "fill-mask":
        raise ValueError(f"--model is required for {args.task} (only fill-mask has a default model)")
    if not 0 <= args.port <= 65535:  # uvicorn would report 'running' on it, then never accept
        raise ValueError(f"--port must be 0..65535 (got {args.port})")
    for name in ("max_batch_size", "max_queue", "max_inputs", "max_body_bytes", "workers", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)})")
    try:
        import uvicorn
    except ImportError as err:
        raise ImportError("roberta serve needs the server extra: pip install 'roberta[serve]'") from err
    import torch

    from .app import create_app

    # workers x threads = the cores torch would use for one forward pass (more threads than cores: OpenMP's
    # barriers spin against each other)
    torch.set_num_threads(args.threads or max(1, torch.get_num_threads() // args.workers))

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    failures = []  # a model that cannot load stops the server: a process that can never answer should not linger

    def stop(err: Exception) -> None:
        failures.append(err)
        server.should_exit = True

    app = create_app(task, args.model, tokenizer=args.tokenizer, device=args.device, dtype=args.dtype,
                     max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                     max_inputs=args.max_inputs, max_body_bytes=args.max_body_bytes, workers=args.workers,
                     pipeline_kwargs={"quantization_config": args.quantize} if args.quantize else None,
                     on_load_failure=stop)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=args.graceful_timeout, access_log=False)
    server = _server_class(uvicorn)(config)
    server.run()
    if failures:
        raise failures[0]  # reported as `roberta run` reports a model that cannot load (a bad path: exit code 2)
    return 0 if server.started else 1  # 1: it never listened (the port is taken: see the log)


def _server_class(uvicorn):
    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # SIGTERM / SIGINT start the graceful stop and are not re-raised after it
            stops = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server
