"""The `roberta` dispatcher: every failure is a short message and a non-zero exit; --debug shows the traceback."""
from __future__ import annotations

import pytest

from roberta import cli
from roberta.training import commands


@pytest.fixture
def failing(monkeypatch):
    """Make `roberta train-tokenizer` raise the given exception."""
    def set_error(err):
        def boom(args):
            raise err
        monkeypatch.setattr(commands, "_run_train_tokenizer", boom)
    return set_error


ARGV = ["train-tokenizer", "--files", "x.txt", "--vocab-size", "300", "--out", "tok"]


@pytest.mark.parametrize("err, code, expected", [
    (FileNotFoundError("data file not found: x.txt"), 2, "error: data file not found: x.txt\n"),
    (KeyError("record 3 has no 'label' field"), 2, "error: record 3 has no 'label' field\n"),
    (RuntimeError("CUDA error: device-side assert\n1\n2\n3\n4"), 1,
     "error: RuntimeError: CUDA error: device-side assert\n  1\n  2\n  ... (run with --debug for the traceback)\n"),
    (MemoryError(), 1, "error: out of memory (run with --debug for the traceback)\n"),
    (AssertionError(), 1, "error: AssertionError (run with --debug for the traceback)\n"),
])
def test_every_failure_is_a_short_message(failing, capsys, err, code, expected):
    failing(err)
    assert cli.main(ARGV) == code
    captured = capsys.readouterr()
    assert captured.err == "roberta train-tokenizer: " + expected and captured.out == ""


@pytest.mark.parametrize("argv", [["--debug", *ARGV], [*ARGV, "--debug"]])
def test_debug_shows_the_traceback(failing, argv):
    failing(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(argv)


def test_ctrl_c_exits_130(failing, capsys):
    failing(KeyboardInterrupt())
    assert cli.main(ARGV) == 130
    assert capsys.readouterr().err == "roberta train-tokenizer: interrupted\n"
