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


def test_lines_packing_keeps_each_document_alone(tok, tmp_path):
    lines = ["the cat sat on the mat.", "a dog ran.", " ".join(["word"] * 70) + "."]
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    ds = build_pretraining_dataset(path, tok, block_size=32, cache_dir=tmp_path / "c", show_progress=False,
                                   packing="lines")
    hf = hf_tokenizer()
    expected = [hf(line, add_special_tokens=False)["input_ids"] for line in lines]
    long = expected[2]
    pieces = [expected[0], expected[1]] + [long[i:i + 30] for i in range(0, len(long), 30)]
    assert len(ds) == len(pieces)
    for i, body in enumerate(pieces):
        assert ds[i]["input_ids"].tolist() == [tok.bos_token_id] + body + [tok.eos_token_id]
    with pytest.raises(ValueError, match="packing must be one of"):
        build_pretraining_dataset(path, tok, block_size=32, cache_dir=tmp_path / "c", packing="sentences")


@pytest.mark.parametrize("packing,group_by_length", [("lines", False), ("lines", True), ("full-sentences", False)])
def test_training_batches_decode_back_to_the_source_text(tok, tmp_path, packing, group_by_length):
    """Nothing between the text file and the model reorders tokens: every row the model is fed (tokenize,
    cache, pack, shuffle, collate, mask), with its masked positions restored from the labels, decodes to a
    line of the corpus (lines) or to a piece of the corpus stream (full-sentences)."""
    import torch

    from roberta.config import RobertaConfig
    from roberta.modeling import RobertaForMaskedLM
    from roberta.training.collator import DataCollatorForLanguageModeling
    from roberta.training.trainer import Trainer, TrainingArguments

    corpus = write_corpus(tmp_path / "corpus.txt", lines=60, seed=3)
    lines = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    data = build_pretraining_dataset(corpus, tok, block_size=24, cache_dir=tmp_path / "c", show_progress=False,
                                     packing=packing)
    config = RobertaConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=30, type_vocab_size=1)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=6,
                             logging_steps=100, seed=0, disable_tqdm=True, device="cpu",
                             group_by_length=group_by_length)
    trainer = Trainer(RobertaForMaskedLM(config), args, train_dataset=data, task="mlm",
                      data_collator=DataCollatorForLanguageModeling(tok, mask_replace_prob=1.0,
                                                                    random_replace_prob=0.0, seed=0))
    fed = []
    forward = trainer._forward

    def recording_forward(model, batch):
        fed.append(torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"]))
        assert (batch["input_ids"][batch["labels"] != -100] == tok.mask_token_id).all()  # 100% <mask>
        return forward(model, batch)

    trainer._forward = recording_forward
    trainer.train()
    rows = [row for batch in fed for row in batch.tolist()]
    assert len(fed) == 6 and len(rows) >= 6 * 4
    stream = " ".join(lines)
    for row in rows:
        text = tok.decode(row, skip_special_tokens=True).strip()
        if packing == "lines":  # a whole line, or a piece of one longer than the block
            real = [t for t in row if t != tok.pad_token_id]
            assert any(text in line for line in lines) and tok.eos_token_id not in real[1:-1]
        else:  # a block is a run of the stream, documents joined by </s> (dropped by skip_special_tokens)
            pieces = [p.strip() for p in tok.decode(row).replace("<pad>", "").split("</s>")]
            assert all(p.replace("<s>", "").strip() in stream for p in pieces)
    assert len({tuple(r) for r in rows}) > 8  # the sampler shuffles across the corpus, not one row again
    if group_by_length:  # a batch's sentences are alike in length: little padding
        pad = sum(int((b == tok.pad_token_id).sum()) for b in fed) / sum(b.numel() for b in fed)
        assert pad < 0.1, pad
