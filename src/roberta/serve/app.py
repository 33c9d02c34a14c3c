"""The HTTP server: FastAPI routes in front of one task pipeline and a DynamicBatcher.

    app = create_app("fill-mask")                  # the embedded model; or model="path/or/id", pipeline=pipe
    uvicorn.run(app, host="127.0.0.1", port=8000)

Routes:
  POST /predict  {"inputs": ..., "parameters": {...}} -> exactly what pipe(inputs, **parameters) returns
  GET  /health   200 once the model is loaded, 503 (Retry-After) before
  GET  /metrics  Prometheus text: requests, errors, batch sizes, queue depth, latency histograms
  GET  /info     task, model and limits (the page reads it)
  GET  /         a page to try the model (static/); /docs and /openapi.json are FastAPI's
Errors are JSON {"error": "..."}: 422 bad fields or inputs the pipeline rejects, 413 a body or an input list over
the limit, 503 (Retry-After) while loading, when the queue is full, or while shutting down.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable

from roberta.pipelines import normalize_task
from roberta.pipelines.cli_run import jsonable

from .batcher import Closed, DynamicBatcher, QueueFull

try:  # the optional extra; app.py is only imported by `roberta serve` and by users who asked for the server
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    from prometheus_client import CONTENT_TYPE_LATEST
    from pydantic import BaseModel, ConfigDict
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"roberta serve needs the server extra ({err.name} is missing): pip install 'roberta[serve]'") from err

logger = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
# transformers' pipelines unwrap a one-element list for these tasks (pipe([x]) == pipe(x))
_UNWRAP_SINGLE_LIST = {"fill-mask", "question-answering"}


class PredictRequest(BaseModel):
    """inputs: a text, a list of texts, {"question", "context"} (QA), {"text", "text_pair"} (pairs), or a list of
    those. parameters: the pipeline's keyword arguments (top_k, targets, aggregation_strategy, pooling, ...)."""

    model_config = ConfigDict(extra="forbid")
    inputs: str | dict[str, Any] | list[str | dict[str, Any]]
    parameters: dict[str, Any] = {}


class _Metrics:
    """Prometheus series in a registry of their own (several apps can live in one process, as in tests)."""

    def __init__(self, depth: Callable[[], int], max_batch_size: int):
        self.registry = CollectorRegistry()
        self.requests = Counter("roberta_requests", "HTTP /predict requests by status code", ["code"],
                                registry=self.registry)
        self.errors = Counter("roberta_errors", "failed /predict requests by kind", ["kind"], registry=self.registry)
        self.inputs = Counter("roberta_inputs", "inputs predicted", registry=self.registry)
        buckets = sorted({1, 2, 4, 8, 16, 32, 64, 128, max_batch_size})
        self.batch_size = Histogram("roberta_batch_size", "inputs per forward round", buckets=buckets,
                                    registry=self.registry)
        self.batch_requests = Histogram("roberta_batch_requests", "requests merged per forward round",
                                        buckets=buckets, registry=self.registry)
        self.batch_seconds = Histogram("roberta_batch_seconds", "seconds per forward round", registry=self.registry)
        self.latency = Histogram("roberta_request_latency_seconds", "/predict latency, arrival to answer",
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self.queue_depth = Gauge("roberta_queue_depth", "inputs waiting for a batch", registry=self.registry)
        self.queue_depth.set_function(depth)

    def on_batch(self, n_inputs: int, n_requests: int, seconds: float) -> None:
        self.batch_size.observe(n_inputs)
        self.batch_requests.observe(n_requests)
        self.batch_seconds.observe(seconds)


def _error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _BodyLimit:
    """ASGI middleware: 413 for a body over `limit` bytes, by Content-Length or while it streams in (chunked).

    The body is read here in full (it is at most `limit` bytes) and handed on to the app in one piece."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = _error(413, f"request body is larger than the server's limit of {self.limit} bytes")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await too_big(scope, receive, send)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            body += message.get("body", b"")
            if len(body) > self.limit:
                return await too_big(scope, receive, send)
            if not message.get("more_body"):
                break
        delivered = False

        async def replay():
            nonlocal delivered
            if delivered:  # after the body, the app only waits for a disconnect
                return await receive()
            delivered = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


def create_app(task: str, model=None, *, pipeline=None, tokenizer=None, device=None, dtype=None,
               max_batch_size: int = 32, max_wait_ms: float = 5.0, max_queue: int = 1024, max_inputs: int = 256,
               max_body_bytes: int = 1 << 20, workers: int = 1, pipeline_kwargs: dict | None = None,
               on_load_failure: Callable[[Exception], None] | None = None) -> FastAPI:
    """A FastAPI app serving `task`. The model loads in a thread when the app starts (/health is 503 until then),
    unless a ready `pipeline` is given. Limits: max_batch_size inputs per forward round, max_wait_ms a batch waits
    under load, max_queue inputs waiting (then 503), max_inputs per request and max_body_bytes per body (413).
    workers: forward rounds run at once on the one model (threads; see DynamicBatcher). If loading fails,
    /health answers 503 with the reason and on_load_failure(exception) is called (`roberta serve` stops there)."""
    task = normalize_task(task)
    if pipeline is not None and pipeline.task != task:
        raise ValueError(f"the pipeline given is for {pipeline.task!r}, not {task!r}")
    state = _State(pipeline)
    batcher = DynamicBatcher(state.run_batch, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                             max_queue=max_queue, workers=workers)
    metrics = _Metrics(lambda: batcher.depth, max_batch_size)
    batcher.on_batch = metrics.on_batch

    def load():
        from roberta.pipelines import pipeline as build

        try:
            state.ready(build(task, model=model, tokenizer=tokenizer, device=device, dtype=dtype,
                              batch_size=max_batch_size, **(pipeline_kwargs or {})))
            logger.info("%s model loaded; ready", task)
        except Exception as err:  # /health keeps answering 503 with the reason; the log says why
            state.failed = f"the model failed to load: {err}"
            # bad input (a missing folder, a corrupt file) is said in one line; a traceback for the unexpected
            expected = isinstance(err, (OSError, ValueError, KeyError, TypeError, ImportError))
            logger.error("loading the %s model failed: %s", task, err,
                         exc_info=not expected or logger.isEnabledFor(logging.DEBUG))
            if on_load_failure is not None:
                on_load_failure(err)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        if state.pipe is None:
            threading.Thread(target=load, name="roberta-load", daemon=True).start()
        yield
        # uvicorn has stopped accepting and waited for open requests; run whatever is still queued, then stop
        await asyncio.to_thread(batcher.close)

    app = FastAPI(title=f"roberta serve: {task}", version="1", lifespan=lifespan,
                  description="RoBERTa task pipelines over HTTP with dynamic batching. POST /predict takes the "
                              "pipeline's inputs and keyword arguments and returns exactly what the pipeline returns.")
    app.state.batcher, app.state.metrics, app.state.serving = batcher, metrics, state
    app.add_middleware(_BodyLimit, limit=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def bad_fields(request: Request, exc: RequestValidationError):
        metrics.errors.labels("invalid").inc()
        metrics.requests.labels("422").inc()
        return _error(422, _describe(exc.errors()))

    @app.post("/predict")
    async def predict(body: PredictRequest):
        started = time.perf_counter()
        response = await _predict(body)
        metrics.requests.labels(str(response.status_code)).inc()
        if response.status_code == 200:
            metrics.latency.observe(time.perf_counter() - started)
        return response

    async def _predict(body: PredictRequest) -> Response:
        if state.pipe is None:
            metrics.errors.labels("loading").inc()
            return _error(503, state.failed or "the model is still loading", retry_after=None if state.failed else 1)
        items = body.inputs if isinstance(body.inputs, list) else [body.inputs]
        if not items:
            metrics.errors.labels("invalid").inc()
            return _error(422, "inputs: the list is empty")
        if len(items) > max_inputs:
            metrics.errors.labels("too_many_inputs").inc()
            return _error(413, f"inputs: {len(items)} inputs in one request; the server's limit is {max_inputs}")
        try:  # bad parameters are caught here, before they could hold up anybody's batch
            state.pipe._sanitize_parameters(**body.parameters)
            future = batcher.submit(items, body.parameters)
        except (ValueError, TypeError, KeyError) as err:
            metrics.errors.labels("invalid").inc()
            return _error(422, f"parameters: {_message(err, task)}")
        except QueueFull as err:
            metrics.errors.labels("queue_full").inc()
            return _error(503, str(err), retry_after=err.retry_after)
        except Closed as err:
            metrics.errors.labels("shutting_down").inc()
            return _error(503, str(err), retry_after=1)
        try:
            results = await asyncio.wrap_future(future)
        except (ValueError, TypeError, KeyError) as err:  # the pipeline rejected an input
            metrics.errors.labels("invalid").inc()
            return _error(422, f"inputs: {_message(err)}")
        except Exception as err:  # noqa: BLE001 (a bug or an out-of-memory: answer, log, keep serving)
            logger.exception("predict failed")
            metrics.errors.labels("internal").inc()
            return _error(500, f"{type(err).__name__}: {err}")
        metrics.inputs.inc(len(items))
        shaped = _shape(state.pipe, body.inputs, results, body.parameters)
        return Response(json.dumps(shaped, ensure_ascii=False, default=jsonable), media_type="application/json")

    @app.get("/health")
    async def health():
        if state.pipe is None:
            return _error(503, state.failed or "the model is still loading", retry_after=None if state.failed else 1)
        return {"status": "ok", "task": task}

    @app.get("/metrics")
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/info")
    async def info():
        pipe = state.pipe
        name = getattr(getattr(pipe, "model", None), "name_or_path", None) or (str(model) if model else "embedded")
        return {"task": task, "model": name, "ready": pipe is not None, "max_batch_size": max_batch_size,
                "max_inputs": max_inputs, "max_body_bytes": max_body_bytes}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


class _State:
    """The pipeline once loaded (None before), and why loading failed, if it did."""

    def __init__(self, pipe=None):
        self.pipe = pipe
        self.failed: str | None = None

    def ready(self, pipe) -> None:
        self.pipe = pipe

    def run_batch(self, items: list, params: dict) -> list:
        # a lazy iterable makes the pipeline yield one result per input (no single-input unwrapping); the whole
        # round is sorted by length and cut into forward passes of at most the pipeline's batch_size
        # (= max_batch_size) where padding would cost more than another pass (pipelines.base.length_batches)
        return list(self.pipe(iter(items), **params))


def _shape(pipe, inputs, results: list, params: dict):
    """One result per input -> exactly what pipe(inputs, **params) returns, with transformers' special cases."""
    if isinstance(inputs, list):
        return results[0] if len(results) == 1 and pipe.task in _UNWRAP_SINGLE_LIST else results
    if (pipe.task == "text-classification" and isinstance(inputs, str) and "top_k" not in params
            and "top_k" not in pipe._defaults):
        return [results[0]]  # one text without top_k: a one-element list
    return results[0]


def _describe(errors) -> str:
    """Pydantic's error list -> one line naming the field."""
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        if loc[:1] == ["inputs"] and error.get("type") != "missing":  # one line for the union's three complaints
            text = ('inputs: expected a text, a {"question", "context"} or {"text", "text_pair"} object, '
                    "or a list of those")
        else:
            text = f"{'.'.join(loc) or 'body'}: {error.get('msg', 'invalid')}"
        if text not in parts:
            parts.append(text)
    return "; ".join(parts[:3])


def _message(err: BaseException, task: str = "") -> str:
    text = str(err)
    unknown = re.search(r"unexpected keyword argument '(\w+)'", text)
    if isinstance(err, TypeError) and unknown:  # Python's wording names a private method; name the parameter
        return f"{task} has no parameter {unknown.group(1)!r}"
    if isinstance(err, KeyError) and text[:1] in "'\"":
        text = text[1:-1]
    return text
