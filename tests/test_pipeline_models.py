"""Tiny random transformers models + tokenizers saved to folders, shared by the pipeline and CLI tests.

transformers builds and saves them (it is the reference); our pipelines load the same folders. Two tokenizers:
a small byte-level BPE trained here with `tokenizers` (always available) and the real roberta-base one
(../shared, skipped when absent). The model's vocab_size always equals the tokenizer's length.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

CORPUS = [
    "The quick brown fox jumps over the lazy dog near the riverbank.",
    "Wolfgang Amadeus Mozart was born in Salzburg and lived in Vienna.",
    "Paris is the capital of France; Berlin is the capital of Germany.",
    "Machine learning models answer questions about long documents.",
    "Jean-Baptiste visited New York City with Hugging Face engineers.",
    "The weather today is sunny, warm and pleasant for a long walk.",
    "RoBERTa is a robustly optimized BERT pretraining approach.",
    "Tokenizers split words into several pieces when they are rare.",
] * 4
LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


def train_tokenizer(out: Path, vocab_size: int = 1000) -> Path:
    """A small RoBERTa-style byte-level BPE trained on CORPUS, saved as a transformers RobertaTokenizerFast."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=vocab_size, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    bpe.save_model(str(out))
    RobertaTokenizerFast(vocab_file=str(out / "vocab.json"), merges_file=str(out / "merges.txt")).save_pretrained(out)
    return out


def real_tokenizer(base_dir: Path, out: Path) -> Path:
    from transformers import RobertaTokenizerFast

    RobertaTokenizerFast.from_pretrained(str(base_dir)).save_pretrained(out)
    return out


def save_tiny_model(task: str, tokenizer_dir: Path, out: Path, *, max_positions: int = 514, seed: int = 0,
                    num_labels: int = 5, problem_type: str | None = None, hidden: int = 32, tokenizer=None) -> Path:
    """A random transformers Roberta* for `task`, saved with its tokenizer in `out`."""
    import transformers

    if tokenizer is None:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    labels = {i: LABELS.get(i, f"LABEL_{i}") for i in range(num_labels)}
    config = transformers.RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=max_positions, type_vocab_size=1, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, initializer_range=0.2, id2label=labels,
        label2id={v: k for k, v in labels.items()}, problem_type=problem_type)
    cls = {
        "fill-mask": transformers.RobertaForMaskedLM,
        "text-classification": transformers.RobertaForSequenceClassification,
        "token-classification": transformers.RobertaForTokenClassification,
        "question-answering": transformers.RobertaForQuestionAnswering,
        "feature-extraction": transformers.RobertaModel,
    }[task]
    torch.manual_seed(seed)
    model = cls(config).eval()
    if task == "fill-mask":  # a visible bias spreads the (otherwise near-uniform) random predictions
        with torch.no_grad():
            model.lm_head.bias.normal_(0.0, 2.0)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def trained_tokenizer_dir(tmp_path_factory) -> Path:
    return train_tokenizer(tmp_path_factory.mktemp("tok-trained"))


@pytest.fixture(scope="session", params=["trained", "roberta-base"])
def tokenizer_dir(request, tmp_path_factory) -> Path:
    if request.param == "trained":
        return request.getfixturevalue("trained_tokenizer_dir")
    base = request.getfixturevalue("roberta_base_dir")
    return real_tokenizer(base, tmp_path_factory.mktemp("tok-base"))


def test_trained_tokenizer_is_roberta_like(trained_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(trained_tokenizer_dir))
    assert (tok.pad_token_id, tok.mask_token_id) == (1, 4)
    assert len(tok("Salzburgerland rarewordish")["input_ids"]) > 4  # rare words split into several pieces
