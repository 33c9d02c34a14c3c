"""train_bpe_tokenizer: RoBERTa's special-token layout, loadable by ours and transformers' tokenizers."""
from __future__ import annotations

import json

import pytest

from roberta.training.tokenizer_training import train_bpe_tokenizer
from test_training_helpers import single_thread  # noqa: F401  (autouse: one torch thread)
from test_training_helpers import load_tokenizer, tokenizer_dir, write_corpus

TEXTS = ["the quick brown fox", " leading space and  double", "a <mask> in the middle", "naïve café 1999!",
         "unseen zebra ünïcödé 😀 words", "line\nbreak\ttab", ""]


def test_files_and_special_ids():
    folder = tokenizer_dir()
    for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (folder / name).is_file(), name
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 384 and vocab["<mask>"] == 383
    assert (folder / "merges.txt").read_text(encoding="utf-8").startswith("#version: 0.2\n")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == 512
    tokenizer_json = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    assert tokenizer_json["model"]["vocab"] == vocab
    mask = [t for t in tokenizer_json["added_tokens"] if t["content"] == "<mask>"][0]
    assert mask["id"] == 383 and mask["lstrip"] is True and mask["special"] is True


def test_transformers_slow_and_fast_agree():
    from transformers import RobertaTokenizer, RobertaTokenizerFast

    slow = RobertaTokenizer.from_pretrained(str(tokenizer_dir()))
    fast = RobertaTokenizerFast.from_pretrained(str(tokenizer_dir()))
    assert len(slow) == len(fast) == 384
    assert slow.all_special_ids == fast.all_special_ids
    for text in TEXTS:
        assert slow(text)["input_ids"] == fast(text)["input_ids"], text
        if "<mask>" not in text:  # byte-level BPE is lossless
            assert slow.decode(slow(text)["input_ids"], skip_special_tokens=True) == text
    ids = fast("a <mask> in")["input_ids"]
    assert ids.count(383) == 1 and ids[0] == 0 and ids[-1] == 2


@pytest.mark.parametrize("slow", [False, True])
def test_our_tokenizers_match_transformers(slow):
    from transformers import RobertaTokenizerFast

    ours = load_tokenizer(slow=slow)
    theirs = RobertaTokenizerFast.from_pretrained(str(tokenizer_dir()))
    for text in TEXTS:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], text


def test_train_from_strings_and_errors(tmp_path):
    lines = (tmp_path / "c.txt")
    write_corpus(lines, lines=300, seed=1)
    out = train_bpe_tokenizer(iter(lines.read_text(encoding="utf-8").splitlines()), 280, tmp_path / "tok", show_progress=False)
    assert json.loads((out / "vocab.json").read_text(encoding="utf-8"))["<mask>"] == 279
    with pytest.raises(ValueError, match="at least"):
        train_bpe_tokenizer([lines], 100, tmp_path / "small")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        train_bpe_tokenizer([lines, tmp_path / "missing.txt"], 300, tmp_path / "bad")
    for bad, message in [(dict(min_frequency=-1), "min_frequency must be an integer >= 0, got -1"),
                         (dict(model_max_length=0), "model_max_length must be an integer >= 1, got 0")]:
        with pytest.raises(ValueError, match=message):  # was tokenizers' OverflowError / a useless tokenizer
            train_bpe_tokenizer([lines], 300, tmp_path / "bad", **bad)
    with pytest.raises(NotADirectoryError, match=f"output folder {lines} is a file"):  # before training
        train_bpe_tokenizer([lines], 300, lines)


def test_debris_of_a_killed_write_is_swept(tmp_path):
    """A run killed while writing leaves `.tokenizer.<random>` in the output folder; the next run removes it
    (its lock is free, or it has no lock and is old), never other hidden entries."""
    import os
    import time

    corpus = write_corpus(tmp_path / "c.txt", lines=50)
    out = tmp_path / "tok"
    for name in (".tokenizer.dead1234", ".tokenizer.old_5678", ".tokenizer.new_5678", ".keep"):
        (out / name).mkdir(parents=True)
    (out / ".tokenizer.dead1234" / ".writer.lock").write_text("")  # a dead writer's lock: nobody holds it
    os.utime(out / ".tokenizer.old_5678", (time.time() - 7200, time.time() - 7200))
    train_bpe_tokenizer([corpus], 300, out, show_progress=False)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".keep", ".tokenizer.new_5678"]
