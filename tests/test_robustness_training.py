"""Training never loses a user's work: output-folder rules, run-scoped pruning, debris sweep, corrupted
checkpoints, SIGINT/SIGTERM, and a pretraining run killed (SIGTERM, SIGKILL) again and again that still ends
with the weights of an uninterrupted run."""
from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from roberta.training import checkpoint as ckpt
from roberta.training.collator import DataCollatorForLanguageModeling
from roberta.training.runs import OutputDirInUse, TrainingInterrupted, sweep_debris
from roberta.training.trainer import Trainer, TrainingArguments
from test_training_helpers import single_thread  # noqa: F401  (autouse: one torch thread)
from test_training_helpers import tokenizer_dir, write_corpus
from test_training_trainer import _mlm_model, _run, setup  # noqa: F401  (fixture)


def assert_same_weights(a, b):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6, msg=name)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


# -- the output folder belongs to one run ------------------------------------------------------------------
def test_non_empty_output_dir_is_refused_unless_resume_or_overwrite(setup, tmp_path):
    tok, data, _ = setup
    out = tmp_path / "out"
    _run(tok, data, out, max_steps=4, save_steps=2)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(OutputDirInUse, match=r"is not empty \(checkpoint-2, train_log.jsonl\).*--resume.*--overwrite"):
        _run(tok, data, out, max_steps=4, save_steps=2)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing touched

    (out / "notes.txt").write_text("mine")  # a user's file survives --overwrite; the old checkpoints do not
    old_run = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["run_id"]
    _, trainer = _run(tok, data, out, max_steps=3, save_steps=1, overwrite_output_dir=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    new_run = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["run_id"]
    assert new_run == trainer.state["run_id"] != old_run
    assert [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()] == [2, 3]


def test_resume_never_writes_over_a_finished_model(setup, tmp_path):
    tok, data, _ = setup
    out = tmp_path / "out"
    _run(tok, data, out, max_steps=2, save_steps=None)[1].save_model()  # a finished run without checkpoints
    with pytest.raises(OutputDirInUse, match="nothing to resume: .* holds no checkpoint-N"):
        _run(tok, data, out, max_steps=2, resume=True)
    (tmp_path / "log-only").mkdir()  # a run killed before its first checkpoint: --resume starts afresh
    (tmp_path / "log-only" / "train_log.jsonl").write_text('{"step": 1}\n')
    _, trainer = _run(tok, data, tmp_path / "log-only", max_steps=2, save_steps=None, resume=True)
    assert trainer.state["global_step"] == 2
    assert [json.loads(x)["step"] for x in (tmp_path / "log-only" / "train_log.jsonl").read_text().splitlines()] == [2]


def test_pretrain_cli_refuses_early_with_one_line(tmp_path, capsys):
    from roberta.cli import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"an earlier run")
    corpus = write_corpus(tmp_path / "c.txt", lines=20)
    argv = ["pretrain", "--train-files", str(corpus), "--tokenizer", str(tokenizer_dir()), "--output-dir", str(out),
            "--hidden-size", "32", "--num-layers", "1", "--num-heads", "2", "--intermediate-size", "64",
            "--max-seq-len", "32", "--max-steps", "1", "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "cache").exists()  # refused before tokenizing
    assert err.startswith(f"roberta pretrain: error: output folder {out} is not empty (model.safetensors)")
    assert len(err.strip().splitlines()) == 1
    assert (out / "model.safetensors").read_bytes() == b"an earlier run"
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "model.safetensors").read_bytes() != b"an earlier run"


def test_pruning_deletes_only_this_runs_checkpoints(setup, tmp_path):
    tok, data, _ = setup
    out = tmp_path / "out"
    _run(tok, data, out, max_steps=5, save_steps=2)  # checkpoint-2, checkpoint-4
    state_file = out / "checkpoint-2" / "trainer_state.json"
    state_file.write_text(json.dumps({**json.loads(state_file.read_text()), "run_id": "someone-else"}))
    _run(tok, data, out, max_steps=8, save_steps=2, save_total_limit=1, resume=True)  # resumes checkpoint-4
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-6"]


# -- debris and corrupted checkpoints ------------------------------------------------------------------------
def test_debris_of_our_naming_is_swept_and_nothing_else(tmp_path, caplog):
    for name in (".checkpoint-6.k2j3", ".stale-checkpoint-4", ".final.x1", ".tmp-save-abc"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"half")
    (tmp_path / ".tmp-abcconfig.json").write_text("{")
    keep = [".gitignore", ".checkpoint-notes", "checkpoint-4", "notes.tmp"]
    for name in keep:
        (tmp_path / name).write_text("mine")
    with caplog.at_level(logging.WARNING):
        removed = sweep_debris(tmp_path)
    assert sorted(removed) == [".checkpoint-6.k2j3", ".final.x1", ".stale-checkpoint-4", ".tmp-abcconfig.json",
                               ".tmp-save-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
    assert "removed debris of an interrupted save" in caplog.text


TOKENIZE_DRIVER = """
import os, sys, time
from roberta.tokenization import RobertaTokenizerFast
from roberta.training import data

def stall(chunk, tokenizer, eos, dtype, out, offsets):  # a long tokenization, caught in the middle
    print(os.path.dirname(out.name), flush=True)
    time.sleep(300)

data._write_chunk = stall
data.tokenize_corpus(sys.argv[1], RobertaTokenizerFast.from_pretrained(sys.argv[2]), cache_dir=sys.argv[3],
                     show_progress=False)
"""


def test_a_killed_tokenization_is_swept_and_a_concurrent_live_one_is_not(tmp_path, caplog):
    """kill -9 while the corpus is tokenized leaves `.<key>.<random>` in the cache; the next tokenization in
    that cache removes it, but not the temp folder of another process tokenizing there at the same time."""
    from roberta.training.data import tokenize_corpus
    from test_training_helpers import load_tokenizer

    cache = tmp_path / "cache"
    corpora = [write_corpus(tmp_path / f"{i}.txt", lines=20, seed=i) for i in range(2)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    writers = [subprocess.Popen([sys.executable, "-c", TOKENIZE_DRIVER, str(c), str(tokenizer_dir()), str(cache)],
                                stdout=subprocess.PIPE, text=True, env=env) for c in corpora]
    try:
        killed, live = (Path(w.stdout.readline().strip()).name for w in writers)
        writers[0].kill()
        writers[0].wait()
        old, young = ".0123456789abcdef01234567.old_1234", ".0123456789abcdef01234567.young123"
        for name in (old, young, ".not-ours", ".0123456789abcdef01234567.toolong99"):  # no lock file in these
            (cache / name).mkdir()
        os.utime(cache / old, (time.time() - 7200, time.time() - 7200))  # older code's debris, or killed before locking
        assert hidden(cache) == sorted([killed, live, old, young, ".not-ours", ".0123456789abcdef01234567.toolong99"])
        with caplog.at_level(logging.WARNING):
            final = tokenize_corpus(corpora[0], load_tokenizer(), cache_dir=cache, show_progress=False)
        assert (final / "meta.json").is_file()
        assert hidden(cache) == sorted([live, young, ".not-ours", ".0123456789abcdef01234567.toolong99"])
        assert "removed 2 folder(s) left half-written by interrupted runs" in caplog.text and killed in caplog.text
        assert writers[1].poll() is None and (cache / live / "tokens.bin").is_file()  # the live writer carries on
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", ["truncated weights", "bad json", "truncated optimizer"])
def test_resume_falls_back_past_a_corrupted_checkpoint(setup, tmp_path, caplog, damage):
    tok, data, _ = setup
    straight, _ = _run(tok, data, tmp_path / "a", max_steps=6, save_steps=2)
    with pytest.raises(RuntimeError, match="crash"):
        _run(tok, data, tmp_path / "b", max_steps=6, save_steps=2, stop_at=5, crash_with=RuntimeError("crash"))
    latest = tmp_path / "b" / "checkpoint-4"
    bad = {"truncated weights": latest / "model.safetensors", "bad json": latest / "trainer_state.json",
           "truncated optimizer": latest / "optimizer.pt"}[damage]
    _truncate(bad)
    with pytest.raises(ckpt.CheckpointError, match=re.escape(str(bad))):  # an explicit checkpoint: a clear stop
        _run(tok, data, tmp_path / "b", max_steps=6, save_steps=2, resume=str(latest))
    with caplog.at_level(logging.WARNING):
        resumed, trainer = _run(tok, data, tmp_path / "b", max_steps=6, save_steps=2, resume=True)
    assert f"cannot resume from checkpoint-4: {bad}" in caplog.text
    assert "newest readable checkpoint" in caplog.text
    assert trainer.state["global_step"] == 6
    assert_same_weights(straight, resumed)
    assert ckpt.read_checkpoint(latest)["trainer_state"]["global_step"] == 4  # redone and readable again


def test_all_checkpoints_corrupted_is_a_clear_error(setup, tmp_path):
    tok, data, _ = setup
    _run(tok, data, tmp_path, max_steps=5, save_steps=2)
    for step in (2, 4):
        _truncate(tmp_path / f"checkpoint-{step}" / "model.safetensors")
    with pytest.raises(ckpt.CheckpointError, match=r"no readable checkpoint in .*checkpoint-4/model.safetensors is "
                                                   r"unreadable.*checkpoint-2/model.safetensors"):
        _run(tok, data, tmp_path, max_steps=5, resume=True)


# -- SIGINT / SIGTERM ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_a_checkpoint_and_resume_matches(setup, tmp_path, signum):
    tok, data, _ = setup
    straight, _ = _run(tok, data, tmp_path / "a", max_steps=6, save_steps=None)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)

    def send(trainer):
        if trainer.state["global_step"] == 3:
            os.kill(os.getpid(), signum)

    args = TrainingArguments(output_dir=str(tmp_path / "b"), per_device_train_batch_size=4,
                             gradient_accumulation_steps=2, max_steps=6, learning_rate=2e-3, warmup_steps=2,
                             weight_decay=0.01, logging_steps=2, disable_tqdm=True, seed=11)
    trainer = Trainer(_mlm_model(tok), args, train_dataset=data, tokenizer=tok, callbacks=[send],
                      data_collator=DataCollatorForLanguageModeling(tok, seed=5))
    with pytest.raises(TrainingInterrupted, match=f"{signum.name}: stopped at step 3") as info:
        trainer.train()
    assert isinstance(info.value, KeyboardInterrupt) and info.value.signum == signum
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # handlers restored
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["checkpoint-3", "train_log.jsonl"]
    resumed, _ = _run(tok, data, tmp_path / "b", max_steps=6, save_steps=None, resume=True)
    assert_same_weights(straight, resumed)


def test_sigterm_during_a_checkpoint_finishes_it_first(setup, tmp_path, monkeypatch):
    tok, data, _ = setup
    real_save = torch.save

    def save(obj, path, *args, **kwargs):
        if Path(path).name == "optimizer.pt":  # halfway through writing checkpoint-2
            os.kill(os.getpid(), signal.SIGTERM)
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "save", save)
    with pytest.raises(TrainingInterrupted, match="stopped at step 2"):
        _run(tok, data, tmp_path, max_steps=6, save_steps=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "train_log.jsonl"]
    ckpt.read_checkpoint(tmp_path / "checkpoint-2")  # complete


# -- the whole command, killed for real ------------------------------------------------------------------------
DRIVER = """
import os, signal, sys, time
import torch
import roberta.training.trainer as trainer

if os.environ.get("KILL_AT_SAVE"):  # signal ourselves in the middle of the Nth torch.save of a checkpoint
    sig, nth = os.environ["KILL_AT_SAVE"].split(":")
    real_save, calls = torch.save, [0]
    def save(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(nth):
            os.kill(os.getpid(), getattr(signal, sig))
        return real_save(*args, **kwargs)
    torch.save = save
real_prepare = trainer.Trainer._prepare
def slow_prepare(self, batch):  # tiny steps are too fast to be hit at random moments
    time.sleep(0.02)
    return real_prepare(self, batch)
trainer.Trainer._prepare = slow_prepare
from roberta.cli import main
sys.exit(main(sys.argv[1:]))
"""


def inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


@pytest.mark.slow
def test_pretraining_killed_again_and_again_ends_like_an_uninterrupted_run(tmp_path):
    """SIGTERM and SIGKILL at random moments and in the middle of checkpoints, resumed each time: the final
    weights equal an uninterrupted run's, and the output folder holds no debris."""
    from safetensors.torch import load_file

    corpus = write_corpus(tmp_path / "corpus.txt", lines=300, seed=4)
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}

    def command(out, *extra):
        return [sys.executable, str(tmp_path / "driver.py"), "pretrain", "--train-files", str(corpus),
                "--tokenizer", str(tokenizer_dir()), "--output-dir", str(out), "--hidden-size", "32",
                "--num-layers", "2", "--num-heads", "2", "--intermediate-size", "64", "--max-seq-len", "32",
                "--batch-size", "4", "--grad-accum", "2", "--max-steps", "30", "--save-steps", "4",
                "--save-total-limit", "2", "--log-every", "5", "--cache-dir", str(tmp_path / "cache"),
                "--quiet", *extra]

    done = subprocess.run(command(tmp_path / "straight"), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    reference = load_file(str(tmp_path / "straight" / "model.safetensors"))

    out, rng = tmp_path / "killed", random.Random(12)
    attacks = [("TERM", "save:3"), ("KILL", "save:2"), ("TERM", "random"), ("KILL", "random"), ("KILL", "save:4"),
               ("TERM", "random")]
    outcomes = []
    for sig, when in attacks:
        extra = ["--resume"] if out.exists() else []
        kill_env = {**env, "KILL_AT_SAVE": f"SIG{sig}:{when[5:]}"} if when.startswith("save") else env
        proc = subprocess.Popen(command(out, *extra), env=kill_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        if when == "random":  # wait until training runs (a resumed run rewrites the log), then strike at random
            log, deadline = out / "train_log.jsonl", time.monotonic() + 120
            before = inode(log)
            while proc.poll() is None and time.monotonic() < deadline and inode(log) in (None, before):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.6))
            proc.send_signal(getattr(signal, f"SIG{sig}"))
        _, stderr = proc.communicate(timeout=600)
        outcomes.append((sig, when, proc.returncode))
        if sig == "TERM" and proc.returncode == 143:  # a graceful stop: checkpoint saved, nothing left behind
            assert "interrupted (SIGTERM" in stderr, stderr
            assert hidden(out) == [], hidden(out)
        else:
            assert proc.returncode in (0, -signal.SIGKILL, -signal.SIGTERM, 143), stderr
    expected = {"TERM": 143, "KILL": -signal.SIGKILL}  # mid-checkpoint strikes always land in training
    assert all(code == expected[sig] for sig, when, code in outcomes if when != "random"), outcomes
    assert sum(code == -signal.SIGKILL for _, _, code in outcomes) >= 2, outcomes
    assert sum(code == 143 for _, _, code in outcomes) >= 2, outcomes

    done = subprocess.run(command(out, "--resume"), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    final = load_file(str(out / "model.safetensors"))
    assert final.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(final[name], reference[name], rtol=0, atol=1e-6, msg=name)
    assert hidden(out) == [] and hidden(tmp_path / "cache") == []
    runs = {json.loads((p / "trainer_state.json").read_text())["run_id"] for p in out.glob("checkpoint-*")}
    assert len(runs) == 1 and len(list(out.glob("checkpoint-*"))) == 2  # one run, pruned to the limit
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20, 25, 30]  # redone steps are logged once


# -- every training subcommand: bad input is one line naming the culprit, exit 2 -----------------------------
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    from roberta.modeling import RobertaForMaskedLM
    from test_training_helpers import load_tokenizer, tiny_config

    root = tmp_path_factory.mktemp("cli-sweep")
    write_corpus(root / "c.txt", lines=60)
    (root / "bad.txt").write_bytes("fine line\n".encode() + b"caf\xe9 latin-1\n")
    (root / "list.json").write_text("[1, 2]")
    (root / "d.csv").write_text("text,label\na fox,yes\na dog,no\n")
    (root / "header.csv").write_text("text,label\n")
    (root / "long.csv").write_text("text,label\n" + " ".join(["fox"] * 100) + ",yes\nb,no\n")
    tok = load_tokenizer()
    torch.manual_seed(0)
    RobertaForMaskedLM(tiny_config(len(tok), max_len=32)).save_pretrained(root / "m")
    tok.save_pretrained(root / "m")
    return root


PRETRAIN = ["pretrain", "--train-files", "{r}/c.txt", "--tokenizer", "{r}/m", "--hidden-size", "32", "--num-layers",
            "1", "--num-heads", "2", "--intermediate-size", "64", "--max-seq-len", "16", "--max-steps", "1", "--quiet"]
FINETUNE = ["finetune", "--task", "sequence-classification", "--model", "{r}/m", "--train-file", "{r}/d.csv",
            "--max-steps", "1", "--quiet"]
CLI_CASES = [
    (["train-tokenizer", "--files", "{r}/c.txt", "{r}/bad.txt", "--vocab-size", "300", "--out", "{o}", "--quiet"],
     r"{r}/bad.txt, line 2: not UTF-8 text"),
    (["train-tokenizer", "--files", "{r}/c.txt", "--vocab-size", "300", "--out", "{o}", "--min-frequency", "-1"],
     r"min_frequency must be an integer >= 0, got -1"),
    (["train-tokenizer", "--files", "{r}/c.txt", "--vocab-size", "300", "--out", "{r}/c.txt"],
     r"output folder {r}/c.txt is a file"),
    ([*PRETRAIN, "--train-files", "{r}/c.txt", "{r}/bad.txt"], r"{r}/bad.txt, line 2: not UTF-8 text"),
    ([*PRETRAIN, "--config-json", "{r}/list.json"], r"{r}/list.json must hold a JSON object of config fields"),
    ([*PRETRAIN, "--save-steps", "0"], r"save_steps must be >= 1"),
    ([*PRETRAIN, "--eval-steps", "0"], r"eval_steps must be >= 1"),
    ([*PRETRAIN, "--save-total-limit", "0"], r"save_total_limit must be >= 1"),
    ([*PRETRAIN, "--warmup-steps", "-1"], r"warmup_steps must be >= 0"),
    ([*FINETUNE, "--labels", "yes", "no", "yes"], r"--labels names yes more than once"),
    ([*FINETUNE, "--train-file", "{r}/header.csv"], r"no records in {r}/header.csv"),
    ([*FINETUNE, "--weight-decay", "nan"], r"weight_decay must be a finite number, got nan"),
    ([*PRETRAIN, "--epochs", "inf", "--max-steps", "-1"], r"num_train_epochs must be a finite number, got inf"),
    ([*FINETUNE, "--train-file", "{r}/long.csv", "--max-length", "1000"],
     r"some inputs are 102 tokens, the model has 32 positions: pass --max-length 32 or less"),
]


@pytest.mark.parametrize("argv, message", CLI_CASES, ids=[f"case{i}" for i in range(len(CLI_CASES))])
def test_training_commands_refuse_bad_input_in_one_line(cli_files, tmp_path, capsys, argv, message):
    from roberta.cli import main

    fill = {"{r}": str(cli_files), "{o}": str(tmp_path / "out")}
    argv = [_fill(a, fill) for a in argv] + ["--cache-dir", str(tmp_path / "cache")] * (argv[0] == "pretrain")
    if argv[0] != "train-tokenizer":
        argv += ["--output-dir", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.match(f"roberta {argv[0]}: error: " + _fill(message, {k: re.escape(v) for k, v in fill.items()}), err), err
    assert len(err.strip().splitlines()) == 1


def _fill(text: str, values: dict) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text
