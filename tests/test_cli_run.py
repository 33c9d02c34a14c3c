"""`roberta run` as a user runs it: the installed entry point in a subprocess.

Results are checked against transformers' own pipelines on the same tiny model folders.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_pipeline_models import save_tiny_model, trained_tokenizer_dir  # noqa: F401 (fixture)

transformers = pytest.importorskip("transformers")


# one thread: tiny models gain nothing from more, and on a shared machine extra threads only spin
ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def roberta_command() -> list[str]:
    beside = Path(sys.executable).with_name("roberta")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("roberta")
    return [found] if found else [sys.executable, "-m", "roberta.cli"]


def run(args, stdin: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV}
    return subprocess.run([*roberta_command(), *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=300, **kwargs)


@pytest.fixture(scope="module")
def folders(trained_tokenizer_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-models")
    return {"fill-mask": save_tiny_model("fill-mask", trained_tokenizer_dir, root / "fm"),
            "question-answering": save_tiny_model("question-answering", trained_tokenizer_dir, root / "qa", num_labels=2),
            "text-classification": save_tiny_model("text-classification", trained_tokenizer_dir, root / "tc")}


TEXTS = ["The capital of France is <mask>.", "Mozart lived in <mask> with his family",
         "<mask> is a robustly optimized approach.", "Tokenizers split <mask>"]


def assert_close(ours, ref):
    if isinstance(ref, dict):
        assert set(ours) == set(ref)
        for key in ref:
            assert_close(ours[key], ref[key])
    elif isinstance(ref, list):
        assert len(ours) == len(ref)
        for a, b in zip(ours, ref):
            assert_close(a, b)
    elif isinstance(ref, float):
        assert abs(ours - ref) <= 1e-4
    else:
        assert ours == ref


def test_fill_mask_from_stdin_matches_transformers(folders):
    result = run(["run", "--task", "fill-mask", "--model", str(folders["fill-mask"]), "--top-k", "3",
                  "--batch-size", "2"], stdin="".join(t + "\n" for t in TEXTS))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    ref = transformers.pipeline("fill-mask", model=str(folders["fill-mask"]), device=-1)
    assert len(lines) == len(TEXTS)
    for line, text in zip(lines, TEXTS):  # the trailing newline is not part of the text
        assert_close(line, ref(text, top_k=3))


def test_file_input_and_atomic_output(folders, tmp_path):
    source, target = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    result = run(["run", "--task", "fill-mask", "--model", str(folders["fill-mask"]), "--input", str(source),
                  "--output", str(target), "--progress"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and f"{len(TEXTS)} lines" in result.stderr  # tqdm's bar on stderr
    assert [len(json.loads(line)) for line in target.read_text(encoding="utf-8").splitlines()] == [5] * len(TEXTS)
    # a run stopped by a bad line leaves the earlier output untouched and no temp file behind
    before = target.read_text(encoding="utf-8")
    source.write_text(TEXTS[0] + "\nno mask on this line\n", encoding="utf-8")
    failed = run(["run", "--task", "fill-mask", "--model", str(folders["fill-mask"]), "--input", str(source),
                  "--output", str(target), "--on-error", "stop"])
    assert failed.returncode == 2
    assert "line 2" in failed.stderr and "<mask>" in failed.stderr and "Traceback" not in failed.stderr
    assert target.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def test_a_bad_line_costs_only_itself(folders, tmp_path):
    """--on-error record (default) writes an error object in the bad line's place; skip leaves it out; both exit 1."""
    lines = [TEXTS[0], "no mask on this line", TEXTS[1], TEXTS[2]]
    ref = transformers.pipeline("fill-mask", model=str(folders["fill-mask"]), device=-1)
    recorded = run(["run", "--task", "fill-mask", "--model", str(folders["fill-mask"]), "--batch-size", "2"],
                   stdin="".join(t + "\n" for t in lines))
    assert recorded.returncode == 1, recorded.stderr
    got = [json.loads(line) for line in recorded.stdout.splitlines()]
    assert len(got) == 4 and got[1]["line"] == 2 and "<mask>" in got[1]["error"]
    for i in (0, 2, 3):
        assert_close(got[i], ref(lines[i]))
    assert "1 input line(s) failed, recorded" in recorded.stderr and "Traceback" not in recorded.stderr
    skipped = run(["run", "--task", "fill-mask", "--model", str(folders["fill-mask"]), "--on-error", "skip",
                   "--output", str(tmp_path / "out.jsonl")], stdin="".join(t + "\n" for t in lines))
    assert skipped.returncode == 1 and "skipped line 2" in skipped.stderr
    assert_close([json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()], [got[0], got[2], got[3]])
    qa = run(["run", "--task", "question-answering", "--model", str(folders["question-answering"])],
             stdin='{"question": "Who?", "context": "Mozart lived in Vienna."}\n{not json\n[1]\n')
    assert qa.returncode == 1
    records = [json.loads(line) for line in qa.stdout.splitlines()]
    assert "answer" in records[0] and records[1]["line"] == 2 and "not a JSON object" in records[1]["error"]
    assert records[2] == {"line": 3, "error": "expected a JSON object, got list"}


def test_a_line_that_is_not_utf8_is_named_and_costs_only_itself(folders, tmp_path, monkeypatch, capsys):
    """Invalid UTF-8 (here latin-1 'café') is reported for its own line, with the file or <stdin>, under every
    --on-error policy; it used to end in tokenizers' "TextInputSequence must be str" or a decoder error that
    lost the whole run. A byte-order mark opening the input is not part of line 1."""
    data = ("\ufeff" + TEXTS[0] + "\n").encode() + b"caf\xe9 <mask>\n" + (TEXTS[1] + "\n").encode()
    model = str(folders["fill-mask"])
    ref = transformers.pipeline("fill-mask", model=model, device=-1)
    recorded = subprocess.run([*roberta_command(), "run", "--task", "fill-mask", "--model", model], input=data,
                              capture_output=True, env={**os.environ, **ENV}, timeout=300)
    assert recorded.returncode == 1, recorded.stderr
    got = [json.loads(line) for line in recorded.stdout.decode().splitlines()]
    assert got[1] == {"line": 2, "error": "not UTF-8 text (invalid continuation byte at byte 3)"}
    assert_close([got[0], got[2]], [ref(TEXTS[0]), ref(TEXTS[1])])
    assert b"(first: <stdin>, line 2: not UTF-8 text" in recorded.stderr and b"Traceback" not in recorded.stderr

    from roberta.cli import main  # the same, in process, from a file: stop names the file, skip leaves it out
    (tmp_path / "in.txt").write_bytes(data)
    assert main(["run", "--task", "fill-mask", "--model", model, "--input", str(tmp_path / "in.txt"),
                 "--on-error", "stop", "--output", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err == f"roberta run: error: {tmp_path / 'in.txt'}, line 2: not UTF-8 text (invalid continuation byte at byte 3)\n"
    assert not (tmp_path / "out.jsonl").exists()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert main(["run", "--task", "fill-mask", "--model", model, "--on-error", "skip"]) == 1
    out, err = capsys.readouterr()
    assert_close([json.loads(line) for line in out.splitlines()], [got[0], got[2]])
    assert "skipped line 2: not UTF-8 text" in err


def test_output_file_streams_as_partial_and_lands_with_normal_permissions(folders, tmp_path):
    """Results appear in OUT.partial chunk by chunk (batch-size x 8 lines); the finished file replaces OUT,
    0644 under umask 022 (not a temp file's 0600); a symlink at OUT is written through, not replaced; SIGTERM
    leaves OUT as it was and no temp file."""
    real = tmp_path / "store" / "results.jsonl"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(real)
    partial = real.with_name("results.jsonl.partial")

    def start_and_feed_one_chunk():
        proc = subprocess.Popen([*roberta_command(), "run", "--task", "fill-mask", "--model",
                                 str(folders["fill-mask"]), "--batch-size", "1", "--output", str(link)],
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV},
                                umask=0o022)
        proc.stdin.write("".join(TEXTS[i % 4] + "\n" for i in range(8)))  # one chunk
        proc.stdin.flush()
        deadline = time.monotonic() + 120
        while not (partial.exists() and len(partial.read_text().splitlines()) == 8) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(partial.read_text().splitlines()) == 8  # visible while the run waits for more input
        assert real.read_text() == "old\n"  # the destination is untouched until the end
        return proc

    proc = start_and_feed_one_chunk()
    proc.send_signal(signal.SIGTERM)  # stopped halfway: no partial file left, the old result intact
    assert proc.wait(timeout=120) == 143 and "interrupted" in proc.stderr.read()
    assert real.read_text() == "old\n" and sorted(p.name for p in real.parent.iterdir()) == ["results.jsonl"]
    proc.stdin.close()
    proc.stderr.close()
    proc = start_and_feed_one_chunk()
    proc.stdin.write(TEXTS[0] + "\n")
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    proc.stderr.close()
    assert link.is_symlink() and len(real.read_text().splitlines()) == 9 and not partial.exists()
    assert stat.S_IMODE(real.stat().st_mode) == 0o644


def test_output_problems_are_caught_before_the_model_loads(tmp_path, capsys):
    from roberta.cli import main

    (tmp_path / "dir").mkdir()
    (tmp_path / "in.txt").write_text("a <mask>\n")
    (tmp_path / "link.txt").symlink_to(tmp_path / "in.txt")
    cases = [(tmp_path / "no" / "out.jsonl", "does not exist"), (tmp_path / "dir", "is a folder"),
             (tmp_path / "in.txt", "is the --input file: the results would replace the input"),
             (tmp_path / "link.txt", "is the --input file")]  # was: the input replaced by its results
    for output, needle in cases:
        code = main(["run", "--task", "fill-mask", "--model", "/no/such/model", "--input", str(tmp_path / "in.txt"),
                     "--output", str(output)])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and "/no/such/model" not in err
    assert (tmp_path / "in.txt").read_text() == "a <mask>\n"


def test_question_answering_json_lines(folders):
    items = [{"question": "Where was Mozart born?", "context": "Mozart was born in Salzburg and lived in Vienna."},
             {"question": "Who lived in Vienna?", "context": "Mozart lived in Vienna with his family."}]
    result = run(["run", "--task", "question-answering", "--model", str(folders["question-answering"])],
                 stdin="".join(json.dumps(i) + "\n" for i in items))
    assert result.returncode == 0, result.stderr
    ref = transformers.pipeline("question-answering", model=str(folders["question-answering"]), device=-1)
    for line, item in zip(result.stdout.splitlines(), items):
        assert_close(json.loads(line), ref(**item))


def test_text_classification_lines(folders):
    result = run(["run", "--task", "sentiment-analysis", "--model", str(folders["text-classification"]), "--top-k", "2",
                  "--no-pack-weights"],
                 stdin="Mozart lived in Vienna\n" + json.dumps({"text": "a question?", "text_pair": "an answer."}) + "\n")
    assert result.returncode == 0, result.stderr
    ref = transformers.pipeline("text-classification", model=str(folders["text-classification"]), device=-1)
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert_close(got, [ref("Mozart lived in Vienna", top_k=2), ref({"text": "a question?", "text_pair": "an answer."}, top_k=2)])


@pytest.mark.parametrize("args,needle", [
    (["--model", "/no/such/model/folder"], "/no/such/model/folder"),
    (["--model", "{fm}", "--device", "tpu:7"], "device"),
    (["--model", "{fm}", "--batch-size", "0"], "batch-size"),
    (["--model", "{fm}", "--pooling", "mean"], "pooling"),
    (["--model", "{fm}", "--top-k", "0"], "--top-k must be at least 1 (got 0)"),
])
def test_bad_arguments_give_one_line_and_exit_2(folders, args, needle):
    args = [a.replace("{fm}", str(folders["fill-mask"])) for a in args]
    result = run(["run", "--task", "fill-mask", *args], stdin=TEXTS[0] + "\n")
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_lists_tasks_and_options():
    top = run(["--help"])
    assert top.returncode == 0 and "run" in top.stdout
    assert all(task in top.stdout for task in ("fill-mask", "text-classification", "question-answering"))
    sub = run(["run", "--help"])
    assert sub.returncode == 0
    for word in ("fill-mask", "question-answering", "token-classification", "--batch-size", "--dtype", "--device",
                 "--input", "--output", "--top-k", "--progress"):
        assert word in sub.stdout


def _peak_rss_kib(args, input_path: Path) -> int:
    """Peak RSS of one `roberta run` child, measured by a small parent process of its own."""
    code = ("import resource, subprocess, sys\n"
            "with open(sys.argv[1], 'rb') as f:\n"
            "    rc = subprocess.run(sys.argv[2:], stdin=f, stdout=subprocess.DEVNULL).returncode\n"
            "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code, str(input_path), *roberta_command(), *args],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, **ENV})
    rc, rss = out.stdout.split()
    assert rc == "0", out.stderr
    return int(rss)


def test_large_input_streams_with_bounded_memory(folders, tmp_path):
    """10,000 long lines (~4.9 MB): a run that buffered them (texts, token ids, results) would grow by far more
    than the bound; a streaming run's peak memory is that of a 500-line run."""
    line = ("Mozart lived in Vienna with his family and wrote music for the court " * 7).strip()
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    with open(large, "w", encoding="utf-8") as f:
        for i in range(10_000):
            f.write(f"{i} {line} <mask>.\n")
    with open(small, "w", encoding="utf-8") as f:
        for i in range(500):
            f.write(f"{i} {line} <mask>.\n")
    assert large.stat().st_size > 4_500_000
    args = ["run", "--task", "fill-mask", "--model", str(folders["fill-mask"]), "--batch-size", "32"]
    base = _peak_rss_kib(args, small)
    big = _peak_rss_kib(args, large)
    assert big - base < 25 * 1024, (base, big)  # KiB


def test_output_to_a_fifo_is_written_through_not_replaced(folders, tmp_path):
    """--output /dev/null (or any non-regular file) must be written to, never swapped for a regular file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text(encoding="utf-8")))
    reader.start()
    result = run(["run", "--task", "fill-mask", "--model", str(folders["fill-mask"]), "--output", str(fifo)],
                 stdin=TEXTS[0] + "\n")
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert fifo.is_fifo()
    assert len(json.loads(received[0])) == 5


def test_fill_mask_without_model_uses_the_embedded_default():
    from roberta.embedded import default_model_path

    try:
        folder = default_model_path()
    except FileNotFoundError as err:
        pytest.skip(f"embedded default model not built: {err}")
    result = run(["run", "--task", "fill-mask", "--top-k", "2"], stdin="The capital of France is <mask>.\n")
    assert result.returncode == 0, result.stderr
    ref = transformers.pipeline("fill-mask", model=folder, device=-1)
    assert_close(json.loads(result.stdout), ref("The capital of France is <mask>.", top_k=2))
