"""The HTTP server in-process (FastAPI's TestClient and a real uvicorn in a thread): every task, bad requests,
the bounded queue, /health before the model is loaded, /metrics, /docs and the page.

Every /predict answer is compared with the same pipeline called directly on the same inputs (our pipelines'
parity with transformers is tested in test_pipeline_parity.py). Tiny random models are saved with the embedded
model's tokenizer for the heads the embedded model does not have.
"""
from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed: pip install 'roberta[serve]'")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")

from fastapi.testclient import TestClient  # noqa: E402

from roberta.embedded import default_model_path  # noqa: E402
from roberta.pipelines import pipeline  # noqa: E402
from roberta.serve.app import create_app  # noqa: E402

pytestmark = pytest.mark.xdist_group("serve")

FILL = ["The capital of France is <mask>.", "Mozart lived in <mask> with his family.", "I <mask> it.",
        "<mask> is a robustly optimized approach to pretraining language models."]
TEXTS = ["Mozart was born in Salzburg.", "Paris is the capital of France and a large city.", "Hi",
         "Jean-Baptiste visited New York City with Hugging Face engineers."]
QA = [{"question": "Where was Mozart born?", "context": "Mozart was born in Salzburg and lived in Vienna."},
      {"question": "What is the capital?", "context": "Paris is the capital of France."}]
PAIRS = [{"text": "Paris is in France.", "text_pair": "France has a capital."}, {"text": "Hi", "text_pair": "Hello"}]


# ---------------------------------------------------------------- shared helpers (also used by the other serve tests)
@pytest.fixture(scope="session")
def serve_models(tmp_path_factory) -> dict[str, str]:
    """task -> model folder: the embedded model for fill-mask, tiny random transformers models for the others."""
    from test_pipeline_models import save_tiny_model

    root = tmp_path_factory.mktemp("serve-models")
    tokenizer = Path(default_model_path())
    folders = {"fill-mask": default_model_path()}
    for task, labels in (("text-classification", 3), ("token-classification", 5), ("question-answering", 2),
                         ("feature-extraction", 2)):
        folders[task] = str(save_tiny_model(task, tokenizer, root / task, num_labels=labels))
    return folders


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def uvicorn_thread(app):
    """A real uvicorn on a free loopback port in a thread; yields the base URL once /health answers 200."""
    import httpx
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, httpx)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def wait_healthy(url: str, httpx, timeout: float = 120, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {process.stderr.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became healthy")


def assert_close(ours, ref, path="result"):
    """Equal JSON, floats within 1e-4 (a batch pads differently from a lone input)."""
    if isinstance(ref, dict):
        assert isinstance(ours, dict) and set(ours) == set(ref), path
        for key in ref:
            assert_close(ours[key], ref[key], f"{path}.{key}")
    elif isinstance(ref, list):
        assert isinstance(ours, list) and len(ours) == len(ref), path
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_close(a, b, f"{path}[{i}]")
    elif isinstance(ref, float):
        assert ours == pytest.approx(ref, abs=1e-4), path
    else:
        assert ours == ref, path


def as_json(value):
    return json.loads(json.dumps(value, default=lambda v: v.tolist()))


@contextlib.contextmanager
def client_for(task, folder, **kwargs):
    app = create_app(task, folder, device="cpu", **kwargs)
    with TestClient(app) as client:
        deadline = time.monotonic() + 120
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "model never loaded"
            time.sleep(0.05)
        yield client


def hold_worker(client):
    """Make the app's batcher wait at a gate before each forward round -> (batcher, gate, entered)."""
    gate, entered = threading.Event(), threading.Event()
    batcher = client.app.state.batcher
    run = batcher.run_batch

    def held(items, params):
        entered.set()
        assert gate.wait(30)
        return run(items, params)

    batcher.run_batch = held
    return batcher, gate, entered


# ---------------------------------------------------------------- every task, equal to the pipeline called directly
CASES = {
    "fill-mask": [(FILL[0], {}), (FILL, {"top_k": 3}), ([FILL[1]], {}), (FILL[2], {"targets": ["love", "hate"]})],
    "text-classification": [(TEXTS[0], {}), (TEXTS, {"top_k": None}), (PAIRS[0], {}), (PAIRS, {"top_k": 2})],
    "token-classification": [(TEXTS[0], {}), (TEXTS, {"aggregation_strategy": "simple"})],
    "question-answering": [(QA[0], {}), (QA, {"top_k": 2}), ([QA[1]], {})],
    "feature-extraction": [(TEXTS[2], {}), (TEXTS, {"pooling": "mean"})],
}


@pytest.mark.parametrize("task", list(CASES))
def test_every_task_answers_exactly_what_the_pipeline_returns(task, serve_models):
    direct = pipeline(task, model=serve_models[task], device="cpu")
    cases = CASES[task]
    with client_for(task, serve_models[task], max_batch_size=4) as client:
        # all cases at once from several threads: they are merged into shared batches where parameters agree
        with ThreadPoolExecutor(len(cases) * 2) as pool:
            responses = list(pool.map(lambda case: client.post("/predict", json={"inputs": case[0], "parameters": case[1]}),
                                      cases * 2))
        metrics = client.get("/metrics").text
    for (inputs, params), response in zip(cases * 2, responses):
        assert response.status_code == 200, response.text
        assert_close(response.json(), as_json(direct(inputs, **params)))
    assert f'roberta_requests_total{{code="200"}} {float(len(cases) * 2)}' in metrics


def test_concurrent_requests_share_forward_passes(serve_models):
    direct = pipeline("fill-mask", device="cpu")
    with client_for("fill-mask", None, max_batch_size=64) as client:
        batcher, gate, entered = hold_worker(client)
        with ThreadPoolExecutor(9) as pool:
            first = pool.submit(client.post, "/predict", json={"inputs": FILL[3]})
            assert entered.wait(30)  # the worker took the first request and waits at the gate
            rest = [pool.submit(client.post, "/predict", json={"inputs": text}) for text in FILL * 2]
            while batcher.depth < len(rest):
                time.sleep(0.01)
            gate.set()
            responses = [first.result()] + [f.result() for f in rest]
        metrics = client.get("/metrics").text
    for text, response in zip([FILL[3], *FILL * 2], responses):
        assert_close(response.json(), as_json(direct(text)))
    # two forward rounds: the first request alone, then the 8 that queued behind it together
    assert "roberta_batch_requests_count 2.0" in metrics
    assert 'roberta_batch_requests_bucket{le="8.0"} 2.0' in metrics
    assert 'roberta_batch_requests_bucket{le="4.0"} 1.0' in metrics
    assert "roberta_batch_size_sum 9.0" in metrics


# ---------------------------------------------------------------- bad requests
@pytest.fixture(scope="module")
def fill_client():
    with client_for("fill-mask", None, max_inputs=4, max_body_bytes=2000) as client:
        yield client


@pytest.mark.parametrize("body, status, message", [
    ({}, 422, "inputs: Field required"),
    ({"inputs": 5}, 422, 'inputs: expected a text, a {"question", "context"} or {"text", "text_pair"} object, or a list of those'),
    ({"inputs": [1]}, 422, "inputs: expected a text"),
    ({"inputs": "a <mask>", "parameters": {"top_k": 0}}, 422, "parameters: top_k must be an integer >= 1, got 0"),
    ({"inputs": "a <mask>", "parameters": {"colour": "red"}}, 422, "parameters: fill-mask has no parameter 'colour'"),
    ({"inputs": "a <mask>", "extra": 1}, 422, "extra: Extra inputs are not permitted"),
    ({"inputs": "no mask token here"}, 422, "inputs: fill-mask: No mask_token (<mask>) found on the input"),
    ({"inputs": []}, 422, "inputs: the list is empty"),
    ({"inputs": ["a <mask>"] * 5}, 413, "inputs: 5 inputs in one request; the server's limit is 4"),
    ({"inputs": "a <mask> " + "x" * 3000}, 413, "request body is larger than the server's limit of 2000 bytes"),
])
def test_bad_requests_get_a_json_error_naming_the_problem(fill_client, body, status, message):
    response = fill_client.post("/predict", json=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_malformed_json_and_chunked_oversized_bodies(fill_client):
    response = fill_client.post("/predict", content=b'{"inputs": ', headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON decode error" in response.json()["error"]
    chunks = (b"x" * 500 for _ in range(6))  # no Content-Length: counted while it streams in
    response = fill_client.post("/predict", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "2000 bytes" in response.json()["error"]


def test_a_bad_input_does_not_fail_the_good_requests_batched_with_it(fill_client):
    direct = pipeline("fill-mask", device="cpu")
    with ThreadPoolExecutor(6) as pool:
        bodies = [{"inputs": FILL[0]}, {"inputs": "no mask"}, {"inputs": FILL[1]}] * 2
        responses = list(pool.map(lambda b: fill_client.post("/predict", json=b), bodies))
    for body, response in zip(bodies, responses):
        if "<mask>" in body["inputs"]:
            assert_close(response.json(), as_json(direct(body["inputs"])))
        else:
            assert response.status_code == 422 and "No mask_token" in response.json()["error"]


def test_full_queue_answers_503_with_retry_after(serve_models):
    with client_for("fill-mask", None, max_queue=2) as client:
        batcher, gate, entered = hold_worker(client)
        with ThreadPoolExecutor(2) as pool:
            held = pool.submit(client.post, "/predict", json={"inputs": FILL[0]})
            assert entered.wait(30)
            queued = pool.submit(client.post, "/predict", json={"inputs": FILL[1:3]})
            while batcher.depth < 2:
                time.sleep(0.01)
            refused = client.post("/predict", json={"inputs": FILL[3]})
            gate.set()
            assert held.result().status_code == 200 and queued.result().status_code == 200
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        assert "2 inputs are queued (limit 2)" in refused.json()["error"]
        assert client.post("/predict", json={"inputs": FILL[3]}).status_code == 200  # room again
        metrics = client.get("/metrics").text
    assert 'roberta_errors_total{kind="queue_full"} 1.0' in metrics
    assert 'roberta_requests_total{code="503"} 1.0' in metrics


# ---------------------------------------------------------------- health, metrics, docs, the page
def test_health_is_503_until_the_model_is_loaded(monkeypatch):
    import roberta.pipelines

    gate = threading.Event()
    build = roberta.pipelines.pipeline

    def slow_pipeline(*args, **kwargs):
        assert gate.wait(30)
        return build(*args, **kwargs)

    monkeypatch.setattr(roberta.pipelines, "pipeline", slow_pipeline)
    with TestClient(create_app("fill-mask", device="cpu")) as client:
        health = client.get("/health")
        assert health.status_code == 503 and health.headers["retry-after"] == "1"
        assert health.json() == {"error": "the model is still loading"}
        early = client.post("/predict", json={"inputs": FILL[0]})
        assert early.status_code == 503 and early.json() == {"error": "the model is still loading"}
        gate.set()
        deadline = time.monotonic() + 60
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.get("/health").json() == {"status": "ok", "task": "fill-mask"}


def test_a_model_that_fails_to_load_keeps_health_503_with_the_reason(tmp_path):
    with TestClient(create_app("text-classification", str(tmp_path / "missing"), device="cpu")) as client:
        deadline = time.monotonic() + 30
        while "failed" not in client.get("/health").json()["error"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        health = client.get("/health")
        assert health.status_code == 503 and "retry-after" not in health.headers
        assert "the model failed to load" in health.json()["error"] and "missing" in health.json()["error"]


def test_metrics_docs_and_page(fill_client):
    assert fill_client.post("/predict", json={"inputs": [FILL[0], FILL[1]]}).status_code == 200
    metrics = fill_client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    for series in ("roberta_requests_total", "roberta_errors_total", "roberta_inputs_total", "roberta_batch_size_bucket",
                   "roberta_queue_depth 0.0", "roberta_request_latency_seconds_bucket", "roberta_batch_seconds_count"):
        assert series in metrics.text
    schema = fill_client.get("/openapi.json").json()
    assert "/predict" in schema["paths"] and "PredictRequest" in json.dumps(schema)
    docs = fill_client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    page = fill_client.get("/")
    assert page.status_code == 200 and '<form id="form">' in page.text
    assert fill_client.get("/static/app.js").status_code == 200
    assert fill_client.get("/info").json()["task"] == "fill-mask"


def test_create_app_refuses_a_pipeline_for_another_task():
    fill = pipeline("fill-mask", device="cpu")
    with pytest.raises(ValueError, match="the pipeline given is for 'fill-mask', not 'text-classification'"):
        create_app("sentiment-analysis", pipeline=fill)


def test_real_uvicorn_in_a_thread(serve_models):
    import httpx

    direct = pipeline("question-answering", model=serve_models["question-answering"], device="cpu")
    with uvicorn_thread(create_app("question-answering", serve_models["question-answering"], device="cpu")) as url:
        response = httpx.post(f"{url}/predict", json={"inputs": QA, "parameters": {"top_k": 2}}, timeout=30)
    assert response.status_code == 200
    assert_close(response.json(), as_json(direct(QA, top_k=2)))


def test_quantized_model_serves_what_the_quantized_pipeline_returns():
    pytest.importorskip("roberta.quantization")
    # int8 with dynamic activations scales each forward pass by its own batch: compare the same batch (both texts
    # in one forward pass, as the server runs a lone request of two inputs)
    direct = pipeline("fill-mask", device="cpu", quantization_config="int8", batch_size=32)
    with client_for("fill-mask", None, pipeline_kwargs={"quantization_config": "int8"}) as client:
        response = client.post("/predict", json={"inputs": FILL[:2], "parameters": {"top_k": 3}})
    assert response.status_code == 200
    assert_close(response.json(), as_json(direct(FILL[:2], top_k=3)))
