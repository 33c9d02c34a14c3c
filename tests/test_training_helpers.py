"""Shared helpers for the training tests: a synthetic corpus, a tiny trained BPE tokenizer, tiny configs.

(Imported by the test_training_* modules; the one test here checks the helper tokenizer itself.)
"""
from __future__ import annotations

import atexit
import functools
import random
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

WORDS = ("the quick brown fox jumps over a lazy dog while seven happy cats sleep near old red barn "
         "under bright blue sky and rain falls on green hills café naïve 42 1999").split()


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread: on 2 cores shared by many processes, torch's thread pool spins and a tiny
    training step takes ~25x longer than on one thread. (Autouse in the modules that import it.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_corpus(path: Path, lines: int = 2000, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            f.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))) + ".\n")
    return path


@functools.lru_cache(maxsize=None)
def tokenizer_dir() -> Path:
    """A 384-token byte-level BPE (every corpus word one token), trained once per session by our code."""
    from roberta.training.tokenizer_training import train_bpe_tokenizer

    folder = Path(tempfile.mkdtemp(prefix="roberta-train-tests-"))
    atexit.register(shutil.rmtree, folder, True)
    corpus = write_corpus(folder / "corpus.txt")
    train_bpe_tokenizer([corpus], 384, folder / "tokenizer", show_progress=False)
    return folder / "tokenizer"


def load_tokenizer(slow: bool = False):
    """Our tokenizer on the helper files (the training code is tokenizer-agnostic)."""
    from roberta.tokenization import RobertaTokenizer, RobertaTokenizerFast

    return (RobertaTokenizer if slow else RobertaTokenizerFast).from_pretrained(str(tokenizer_dir()))


def hf_tokenizer():
    from transformers import RobertaTokenizerFast

    return RobertaTokenizerFast.from_pretrained(str(tokenizer_dir()))


def tiny_config(vocab_size: int, max_len: int = 64, dropout: float = 0.1, **kw):
    from roberta.config import RobertaConfig

    return RobertaConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=max_len + 2, hidden_dropout_prob=dropout,
                         attention_probs_dropout_prob=dropout, **kw)


def test_helper_tokenizer_layout():
    """The helper tokenizer has RoBERTa's special ids, <mask> last (a precondition of the other tests)."""
    import json

    vocab = json.loads((tokenizer_dir() / "vocab.json").read_text(encoding="utf-8"))
    assert [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert vocab["<mask>"] == len(vocab) - 1 == 383
