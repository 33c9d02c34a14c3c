"""Pretraining data: FULL-SENTENCES packing, the memory-mapped token cache, datasets-like inputs."""
from __future__ import annotations

import numpy as np
import pytest

from roberta.training.data import PackedDataset, build_pretraining_dataset, tokenize_corpus
from test_training_helpers import single_thread  # noqa: F401  (autouse: one torch thread)
from test_training_helpers import hf_tokenizer, load_tokenizer, write_corpus


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture()
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus.txt", lines=200, seed=5)


def _expected_stream(path) -> list[int]:
    """Every non-empty line tokenized by transformers' tokenizer, each followed by </s>."""
    hf = hf_tokenizer()
    stream = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            stream += hf(line.strip(), add_special_tokens=False)["input_ids"] + [hf.eos_token_id]
    return stream


def test_blocks_pack_documents_across_boundaries(tok, corpus, tmp_path):
    ds = build_pretraining_dataset(corpus, tok, block_size=64, cache_dir=tmp_path / "cache", show_progress=False)
    stream = _expected_stream(corpus)
    assert len(ds) == len(stream) // 62
    for i in (0, 1, len(ds) - 1):
        ids = ds[i]["input_ids"].tolist()
        assert len(ids) == 64 and ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
        assert ids[1:-1] == stream[i * 62:(i + 1) * 62]
    assert isinstance(ds.tokens, np.memmap) and ds.tokens.dtype == np.uint16  # a 384-token vocab fits 16 bits
    tail = build_pretraining_dataset(corpus, tok, block_size=64, cache_dir=tmp_path / "cache", drop_remainder=False,
                                     show_progress=False)
    assert len(tail) == len(ds) + 1
    assert tail[-1]["input_ids"].tolist()[1:-1] == stream[len(ds) * 62:]


def test_cache_is_reused_and_keyed(tok, corpus, tmp_path):
    cache = tmp_path / "cache"
    first = tokenize_corpus(corpus, tok, cache_dir=cache, show_progress=False)
    stamp = (first / "tokens.bin").stat().st_mtime_ns
    assert tokenize_corpus(corpus, tok, cache_dir=cache, show_progress=False) == first
    assert (first / "tokens.bin").stat().st_mtime_ns == stamp
    with open(corpus, "a", encoding="utf-8") as f:
        f.write("one more line\n")
    assert tokenize_corpus(corpus, tok, cache_dir=cache, show_progress=False) != first
    assert not [p for p in cache.iterdir() if p.name.startswith(".")], "a temp folder was left behind"


def test_datasets_like_object_matches_files(tok, corpus, tmp_path):
    class Rows:  # duck-typed like datasets.Dataset: iteration over dicts with a "text" column
        column_names = ["text", "id"]

        def __init__(self, lines):
            self.lines = lines

        def __iter__(self):
            return iter({"text": t, "id": i} for i, t in enumerate(self.lines))

    lines = corpus.read_text(encoding="utf-8").splitlines()
    from_rows = build_pretraining_dataset(Rows(lines), tok, block_size=32, cache_dir=tmp_path / "c", show_progress=False)
    from_file = build_pretraining_dataset(corpus, tok, block_size=32, cache_dir=tmp_path / "c", show_progress=False)
    assert len(from_rows) == len(from_file)
    assert all(from_rows[i]["input_ids"].tolist() == from_file[i]["input_ids"].tolist() for i in range(len(from_file)))
    from_strings = build_pretraining_dataset(iter(lines), tok, block_size=32, cache_dir=tmp_path / "c", show_progress=False)
    assert from_strings[3]["input_ids"].tolist() == from_file[3]["input_ids"].tolist()


def test_errors(tok, tmp_path):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("two words\n", encoding="utf-8")
    with pytest.raises(ValueError, match="fewer than one block"):
        build_pretraining_dataset(tiny, tok, block_size=64, cache_dir=tmp_path / "c", show_progress=False)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        build_pretraining_dataset(tmp_path / "nope.txt", tok, cache_dir=tmp_path / "c", show_progress=False)
    folder = tokenize_corpus(tiny, tok, cache_dir=tmp_path / "c", show_progress=False)
    with pytest.raises(IndexError):
        PackedDataset(folder, 3, 0, 2)[10]
