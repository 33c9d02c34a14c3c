"""Dynamic batching: requests from many callers merged into few forward passes. No HTTP in here.

    batcher = DynamicBatcher(run_batch, max_batch_size=32, max_wait_ms=5, max_queue=1024)
    batcher.start()
    future = batcher.submit(["a text", "another"], {"top_k": 3})   # from any thread
    future.result()                                                 # -> one result per input
    batcher.close()                                                 # finish what is queued, then stop

A worker thread takes the oldest waiting request, adds every later request that has the same parameters (in
arrival order) until `max_batch_size` inputs, and calls `run_batch(items, params)` once for all of them (the
pipeline sorts those inputs by length, so each forward pass pads little). Requests with other parameters wait
for the next round; nobody is overtaken by more than one round. With `workers=2` (or more) several rounds run
at once on the same model: one worker's forward pass (which releases the GIL) overlaps another's tokenization
and post-processing, and each keeps a core busy, as a thread pool of per-request pipelines does.

When to wait for more: an idle server never waits (a lone request runs at once, so latency at low load is the
pipeline's own). Under load (the last batch merged several requests) a batch waits up to `max_wait_ms` after its
oldest request arrived for others to join. Requests that arrive while a batch runs are merged into the next one
anyway, so throughput comes mostly from that, and the wait only tops batches up.

The queue is bounded in inputs: `submit` raises QueueFull (the HTTP layer answers 503 + Retry-After) rather
than letting latency grow without limit. `close()` refuses new work (Closed), runs what is queued, and joins.
"""
from __future__ import annotations

import collections
import json
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

logger = logging.getLogger(__name__)


class QueueFull(RuntimeError):
    """The queue holds max_queue inputs already; try again after `retry_after` seconds."""

    def __init__(self, depth: int, limit: int, retry_after: int):
        super().__init__(f"the server is busy: {depth} inputs are queued (limit {limit}); retry in {retry_after} s")
        self.retry_after = retry_after


class Closed(RuntimeError):
    """The batcher is shutting down and takes no new requests."""


@dataclass
class _Job:
    items: list
    params: dict
    key: str
    future: Future
    arrived: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    """See the module docstring. `run_batch(items, params) -> list` must return one result per item, in order.

    on_batch(n_inputs, n_requests, seconds): called after each forward round (metrics).
    """

    def __init__(self, run_batch: Callable[[list, dict], list], *, max_batch_size: int = 32, max_wait_ms: float = 5.0,
                 max_queue: int = 1024, workers: int = 1, on_batch: Callable[[int, int, float], None] | None = None):
        for name, value in (("max_batch_size", max_batch_size), ("max_queue", max_queue), ("workers", workers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(max_wait_ms, (int, float)) or max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be a number >= 0, got {max_wait_ms!r}")
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.workers = workers
        self.on_batch = on_batch
        self._queue: collections.deque[_Job] = collections.deque()
        self._depth = 0  # inputs waiting in _queue
        self._cond = threading.Condition()
        self._closing = False
        self._loaded = False  # the last batch merged several requests: wait for more next time
        self._seconds_per_input = 0.01  # moving estimate, for Retry-After
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ callers' side
    @property
    def depth(self) -> int:
        """Inputs waiting (not counting the batch being run)."""
        return self._depth

    def submit(self, items: list, params: dict | None = None) -> Future:
        """Queue `items` (a non-empty list of inputs) to run with `params`; the future gets one result per item."""
        if not isinstance(items, list) or not items:
            raise ValueError("items must be a non-empty list of inputs")
        params = dict(params or {})
        key = json.dumps(params, sort_keys=True, default=repr)  # requests with equal parameters share batches
        job = _Job(items, params, key, Future())
        with self._cond:
            if self._closing:
                raise Closed("the server is shutting down")
            if self._depth + len(items) > self.max_queue and self._depth > 0:
                # a single request larger than the queue still runs when the queue is empty (the HTTP layer caps
                # inputs per request); otherwise the caller backs off
                raise QueueFull(self._depth, self.max_queue, self._retry_after())
            self._queue.append(job)
            self._depth += len(items)
            self._cond.notify()
        return job.future

    def _retry_after(self) -> int:
        return max(1, round(self._depth * self._seconds_per_input))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "DynamicBatcher":
        if not self._threads:
            self._threads = [threading.Thread(target=self._loop, name=f"roberta-batcher-{i}", daemon=True)
                             for i in range(self.workers)]
            for thread in self._threads:
                thread.start()
        return self

    def close(self, timeout: float | None = None) -> None:
        """Refuse new requests, finish every queued one, stop the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._threads:
            deadline = None if timeout is None else time.monotonic() + timeout
            for thread in self._threads:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        else:  # never started: nothing will run what is queued
            self._fail_all(Closed("the server shut down before this request ran"))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ the worker
    def _loop(self) -> None:
        while True:
            jobs = self._next_jobs()
            if jobs is None:
                return
            self._run(jobs)

    def _next_jobs(self) -> list[_Job] | None:
        """Block until there is work; return the requests of the next batch (None: closed and drained)."""
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            if self._loaded and not self._closing:
                deadline = self._queue[0].arrived + self.max_wait
                while self._depth < self.max_batch_size and not self._closing:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            first = self._queue.popleft()
            jobs, size, kept = [first], len(first.items), collections.deque()
            while self._queue:
                job = self._queue.popleft()
                if job.key == first.key and size + len(job.items) <= self.max_batch_size:
                    jobs.append(job)
                    size += len(job.items)
                else:
                    kept.append(job)
            self._queue = kept
            self._depth -= size
            self._loaded = len(jobs) > 1
            return jobs

    def _run(self, jobs: list[_Job]) -> None:
        items = [item for job in jobs for item in job.items]
        start = time.perf_counter()
        try:
            results = self.run_batch(items, jobs[0].params)
            if len(results) != len(items):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)} inputs")
        except Exception as err:  # noqa: BLE001 (every caller must get an answer, whatever broke)
            if len(jobs) == 1:
                _settle(jobs[0].future, error=err)
            else:  # one bad request must not fail the others: run each alone to find it
                for job in jobs:
                    self._run([job])
            return
        finally:
            seconds = time.perf_counter() - start
        self._seconds_per_input = 0.8 * self._seconds_per_input + 0.2 * seconds / len(items)
        offset = 0
        for job in jobs:
            _settle(job.future, result=results[offset : offset + len(job.items)])
            offset += len(job.items)
        if self.on_batch is not None:
            self.on_batch(len(items), len(jobs), seconds)

    def _fail_all(self, error: BaseException) -> None:
        with self._cond:
            jobs, self._queue, self._depth = list(self._queue), collections.deque(), 0
        for job in jobs:
            _settle(job.future, error=error)


def _settle(future: Future, *, result: Any = None, error: BaseException | None = None) -> None:
    if future.set_running_or_notify_cancel():  # False: the caller gave up (a cancelled request); drop it
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
