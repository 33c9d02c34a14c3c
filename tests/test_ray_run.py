"""`roberta run --engine ray` on a local 2-CPU Ray cluster: byte-for-byte the output of `roberta run`.

The cluster is started here with ray.init(num_cpus=2) and the command joins it by address, as it would join a
real cluster. The embedded model keeps it cheap.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from test_cli_run import ENV, roberta_command
from test_serve_app import FILL, QA

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]


def run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*roberta_command(), "run", *args], capture_output=True, text=True,
                          env={**os.environ, **ENV}, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the Ray extra is not installed: pip install 'roberta[ray]'")
    pytest.importorskip("ray.data")
    context = ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        yield context.address_info["address"]  # host:port of the cluster's GCS, what `ray start --head` prints
    finally:
        ray.shutdown()


def test_ray_engine_writes_exactly_what_roberta_run_writes(ray_cluster, tmp_path):
    source = tmp_path / "in.txt"
    texts = [FILL[i % len(FILL)] + " " * (i % 5) + f"Line {i}." for i in range(45)]  # 45 lines, chunks of 16
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    local, distributed = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    common = ["--task", "fill-mask", "--input", str(source), "--batch-size", "2", "--top-k", "3"]
    first = run([*common, "--output", str(local)])
    assert first.returncode == 0, first.stderr
    second = run([*common, "--output", str(distributed), "--engine", "ray", "--ray-address", ray_cluster,
                  "--ray-actors", "2"])
    assert second.returncode == 0, second.stderr
    assert distributed.read_bytes() == local.read_bytes()
    lines = distributed.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 45 and len(json.loads(lines[0])) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".roberta-run-")]  # no temp file left


def test_ray_engine_question_answering_from_stdin_with_a_bad_line(ray_cluster, tmp_path):
    from test_pipeline_models import save_tiny_model

    from roberta.embedded import default_model_path

    folder = str(save_tiny_model("question-answering", default_model_path(), tmp_path / "qa", num_labels=2))
    stdin = "".join(json.dumps(q) + "\n" for q in QA * 3) + "not json\n" + json.dumps(QA[0]) + "\n"
    common = ["--task", "question-answering", "--model", folder, "--batch-size", "1"]
    local = run(common, input=stdin)
    distributed = run([*common, "--engine", "ray", "--ray-address", ray_cluster], input=stdin)
    assert (local.returncode, distributed.returncode) == (1, 1), distributed.stderr  # a line was recorded as failed
    assert distributed.stdout == local.stdout
    lines = distributed.stdout.splitlines()
    assert len(lines) == 8 and json.loads(lines[6]) == {"line": 7, "error": "not a JSON object (Expecting value)"}
    assert "1 input line(s) failed" in distributed.stderr

    stopped = run([*common, "--engine", "ray", "--ray-address", ray_cluster, "--on-error", "stop",
                   "--output", str(tmp_path / "out.jsonl")], input=stdin)
    assert stopped.returncode == 2 and "line 7: not a JSON object" in stopped.stderr
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_ray_flags_are_checked():
    result = run(["--task", "fill-mask", "--engine", "ray", "--ray-actors", "0"], input="a <mask>\n")
    assert result.returncode == 2 and "--ray-actors must be at least 1 (got 0)" in result.stderr
    result = run(["--task", "fill-mask", "--engine", "spark"], input="a <mask>\n")
    assert result.returncode == 2 and "invalid choice: 'spark'" in result.stderr
