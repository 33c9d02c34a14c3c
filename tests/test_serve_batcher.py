"""DynamicBatcher alone (no HTTP, no model): merging, limits, errors, the bounded queue, draining on close.

run_batch here is a recording function: results are computed from the inputs by hand (text -> text.upper()),
so every assertion names the exact expected value.
"""
from __future__ import annotations

import threading

import pytest

from roberta.serve.batcher import Closed, DynamicBatcher, QueueFull


class Recorder:
    """run_batch that records each call; "boom" in an input raises ValueError; a gate can hold the worker."""

    def __init__(self):
        self.calls: list[tuple[list, dict]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, items, params):
        self.entered.set()
        assert self.gate.wait(10), "test gate never opened"
        self.calls.append((list(items), dict(params)))
        if any("boom" in item for item in items):
            raise ValueError("boom is not allowed")
        suffix = params.get("suffix", "")
        return [item.upper() + suffix for item in items]


def test_requests_queued_together_run_in_one_batch_and_get_their_own_results():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=8, max_wait_ms=0)
    futures = [batcher.submit(["a", "b"]), batcher.submit(["c"]), batcher.submit(["d", "e", "f"])]
    batcher.start()
    assert [f.result(timeout=10) for f in futures] == [["A", "B"], ["C"], ["D", "E", "F"]]
    batcher.close()
    assert run.calls == [(["a", "b", "c", "d", "e", "f"], {})]


def test_batches_never_exceed_max_batch_size_and_keep_arrival_order():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=3, max_wait_ms=0)
    futures = [batcher.submit([text]) for text in "abcdefg"]
    batcher.start()
    assert [f.result(timeout=10) for f in futures] == [[t.upper()] for t in "abcdefg"]
    batcher.close()
    assert [items for items, _ in run.calls] == [["a", "b", "c"], ["d", "e", "f"], ["g"]]


def test_a_request_larger_than_a_batch_runs_alone():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=2, max_wait_ms=0)
    big, small = batcher.submit(["a", "b", "c"]), batcher.submit(["d"])
    batcher.start()
    assert big.result(timeout=10) == ["A", "B", "C"] and small.result(timeout=10) == ["D"]
    batcher.close()
    assert [items for items, _ in run.calls] == [["a", "b", "c"], ["d"]]


def test_different_parameters_never_share_a_batch():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=8, max_wait_ms=0)
    futures = [batcher.submit(["a"], {"suffix": "!"}), batcher.submit(["b"]), batcher.submit(["c"], {"suffix": "!"})]
    batcher.start()
    assert [f.result(timeout=10) for f in futures] == [["A!"], ["B"], ["C!"]]
    batcher.close()
    assert run.calls == [(["a", "c"], {"suffix": "!"}), (["b"], {})]


def test_a_bad_request_fails_alone_and_the_rest_of_its_batch_still_succeeds():
    run = Recorder()
    batcher = DynamicBatcher(run, max_batch_size=8, max_wait_ms=0)
    good1, bad, good2 = batcher.submit(["a"]), batcher.submit(["boom"]), batcher.submit(["b", "c"])
    batcher.start()
    assert good1.result(timeout=10) == ["A"] and good2.result(timeout=10) == ["B", "C"]
    with pytest.raises(ValueError, match="boom is not allowed"):
        bad.result(timeout=10)
    batcher.close()
    # the merged batch failed, then each request ran alone
    assert [items for items, _ in run.calls] == [["a", "boom", "b", "c"], ["a"], ["boom"], ["b", "c"]]


def test_wrong_result_count_is_an_error_not_a_misaligned_answer():
    batcher = DynamicBatcher(lambda items, params: items[:-1], max_batch_size=4, max_wait_ms=0).start()
    with pytest.raises(RuntimeError, match="returned 1 results for 2 inputs"):
        batcher.submit(["a", "b"]).result(timeout=10)
    batcher.close()


def test_full_queue_refuses_with_retry_after_and_recovers():
    run = Recorder()
    run.gate.clear()
    batcher = DynamicBatcher(run, max_batch_size=4, max_wait_ms=0, max_queue=3).start()
    running = batcher.submit(["a"])
    assert run.entered.wait(10)  # the worker holds "a"; the queue is empty again
    queued = batcher.submit(["b", "c"])
    assert batcher.depth == 2
    with pytest.raises(QueueFull, match=r"2 inputs are queued \(limit 3\)") as info:
        batcher.submit(["d", "e"])
    assert info.value.retry_after >= 1
    assert batcher.depth == 2  # the refused request left no trace
    also_fits = batcher.submit(["f"])
    run.gate.set()
    assert running.result(timeout=10) == ["A"]
    assert queued.result(timeout=10) == ["B", "C"] and also_fits.result(timeout=10) == ["F"]
    batcher.close()


def test_close_finishes_queued_requests_then_refuses_new_ones():
    run = Recorder()
    run.gate.clear()
    batcher = DynamicBatcher(run, max_batch_size=1, max_wait_ms=0).start()
    futures = [batcher.submit([t]) for t in "abc"]
    assert run.entered.wait(10)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    run.gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert [f.result(timeout=0) for f in futures] == [["A"], ["B"], ["C"]]
    with pytest.raises(Closed, match="shutting down"):
        batcher.submit(["d"])


def test_close_without_start_fails_queued_requests_instead_of_leaving_them_hanging():
    batcher = DynamicBatcher(Recorder(), max_batch_size=1)
    future = batcher.submit(["a"])
    batcher.close()
    with pytest.raises(Closed, match="shut down before this request ran"):
        future.result(timeout=0)


def test_an_idle_server_runs_a_lone_request_without_waiting():
    # max_wait_ms is an hour: if a lone request waited for company, result() would time out
    batcher = DynamicBatcher(Recorder(), max_batch_size=32, max_wait_ms=3_600_000).start()
    for text in ("a", "b", "c"):  # one at a time, as a single client sends them
        assert batcher.submit([text]).result(timeout=10) == [text.upper()]
    batcher.close()


def test_on_batch_reports_inputs_and_requests_per_round():
    seen = []
    batcher = DynamicBatcher(Recorder(), max_batch_size=8, max_wait_ms=0,
                             on_batch=lambda n, r, s: seen.append((n, r, s >= 0)))
    futures = [batcher.submit(["a", "b"]), batcher.submit(["c"])]
    batcher.start()
    [f.result(timeout=10) for f in futures]
    batcher.close()
    assert seen == [(3, 2, True)]


@pytest.mark.parametrize("kwargs, message", [
    ({"max_batch_size": 0}, "max_batch_size must be an integer >= 1, got 0"),
    ({"max_queue": 1.5}, "max_queue must be an integer >= 1, got 1.5"),
    ({"max_wait_ms": -1}, "max_wait_ms must be a number >= 0, got -1"),
])
def test_bad_limits_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        DynamicBatcher(Recorder(), **kwargs)


def test_submit_needs_a_non_empty_list():
    batcher = DynamicBatcher(Recorder())
    with pytest.raises(ValueError, match="non-empty list"):
        batcher.submit([])
    with pytest.raises(ValueError, match="non-empty list"):
        batcher.submit("a text")


def test_two_workers_run_two_rounds_at_once():
    both_inside = threading.Barrier(2, timeout=10)  # broken (an error) unless two rounds are inside together
    calls = []

    def run(items, params):
        both_inside.wait()
        calls.append(items)
        return [item.upper() for item in items]

    # different parameters: the two requests cannot share a round, so only a second worker runs them together
    with DynamicBatcher(run, max_batch_size=8, max_wait_ms=0, workers=2) as batcher:
        first, second = batcher.submit(["a"], {"x": 1}), batcher.submit(["b"], {"x": 2})
        assert first.result(timeout=10) == ["A"] and second.result(timeout=10) == ["B"]
    assert sorted(calls) == [["a"], ["b"]]
    with pytest.raises(ValueError, match="workers must be an integer >= 1, got 0"):
        DynamicBatcher(run, workers=0)
