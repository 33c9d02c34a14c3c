"""`roberta train-tokenizer | pretrain | finetune` end to end through the CLI parser (tiny sizes)."""
from __future__ import annotations

import json

import pytest

from roberta.training.commands import build_parser
from test_training_helpers import single_thread  # noqa: F401  (autouse: one torch thread)
from test_training_helpers import write_corpus


def _run(argv, capsys):
    args = build_parser().parse_args(argv)
    assert args.func(args) == 0
    return json.loads(capsys.readouterr().out)


def test_tokenizer_pretrain_finetune_resume(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", lines=400, seed=9)
    out = _run(["train-tokenizer", "--files", str(corpus), "--vocab-size", "320", "--out", str(tmp_path / "tok"),
                "--quiet"], capsys)
    assert out["vocab_size"] == 320
    common = ["--tokenizer", str(tmp_path / "tok"), "--train-files", str(corpus), "--eval-files", str(corpus),
              "--output-dir", str(tmp_path / "mlm"), "--hidden-size", "32", "--num-layers", "2", "--num-heads", "2",
              "--intermediate-size", "64", "--max-seq-len", "32", "--batch-size", "8", "--lr", "1e-3",
              "--warmup-steps", "1", "--save-steps", "2", "--log-every", "2", "--cache-dir", str(tmp_path / "cache"),
              "--quiet"]
    first = _run(["pretrain", *common, "--max-steps", "4"], capsys)
    assert first["global_step"] == 4 and first["eval_perplexity"] > 1
    resumed = _run(["pretrain", *common, "--max-steps", "6", "--resume"], capsys)  # from checkpoint-2 (latest)
    assert resumed["global_step"] == 6
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json", "train_log.jsonl"):
        assert (tmp_path / "mlm" / name).is_file(), name
    config = json.loads((tmp_path / "mlm" / "config.json").read_text())
    assert config["vocab_size"] == 320 and config["max_position_embeddings"] == 34

    rows = [{"text": f"{w} fox", "label": "yes"} for w in ("a", "the", "red")] + \
           [{"text": f"{w} dog", "label": "no"} for w in ("a", "the", "red")]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    result = _run(["finetune", "--task", "sequence-classification", "--model", str(tmp_path / "mlm"),
                   "--train-file", str(tmp_path / "train.jsonl"), "--eval-file", str(tmp_path / "train.jsonl"),
                   "--output-dir", str(tmp_path / "cls"), "--epochs", "1", "--batch-size", "4", "--quiet"], capsys)
    assert "eval_accuracy" in result
    assert json.loads((tmp_path / "cls" / "config.json").read_text())["label2id"] == {"no": 0, "yes": 1}


def test_every_flag_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in ("train-tokenizer", "pretrain", "finetune"):
        for action in sub.choices[name]._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"


def test_bad_input_is_a_clear_error(tmp_path):
    args = build_parser().parse_args(["train-tokenizer", "--files", str(tmp_path / "missing.txt"),
                                      "--vocab-size", "300", "--out", str(tmp_path / "t"), "--quiet"])
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        args.func(args)
