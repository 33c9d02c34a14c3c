"""The shipped default model: complete HF folder, loads offline in fp32, fill-mask works on it with no model
named, it matches transformers on the same folder, and it has learned English (held-out masked accuracy well
above a unigram baseline computed here).

tests/data/embedded_heldout_sample.txt is ~32 kB of the held-out slice (documents the model never trained
on; ~6 kB from each source: Jane Austen (public domain, via r-cran-janeaustenr, MIT), the World English
Bible (public domain), the Python 3.11 (PSF License), SQLite (public domain) and PostgreSQL 15 (PostgreSQL
License) manuals). See src/roberta/embedded/MODEL_CARD.md.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from roberta.embedded import REQUIRED_FILES, default_model_path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).resolve().parent / "data" / "embedded_heldout_sample.txt"
README_SENTENCE = "I love using <mask> for NLP tasks!"

# Measured on SAMPLE with the shipped model (phase 7), as it was trained (one sentence per example, 15% of tokens
# selected, all made <mask>, seed 0): accuracy 44.0%, perplexity 21.0, order gain 5.53 nats, against the unigram
# baseline's 5.2% and 932 (MODEL_CARD.md has the whole held-out slice; phase 5 got 36.1%, 33.5 and 4.96 here).
# The floors sit below the measured values and far above what an untrained (~0%, perplexity ~8000) or a
# bag-of-words model gets (the model shipped before phase 3 gained 0.0002 nats from word order).
ACCURACY_FLOOR = 0.38
UNIGRAM_MARGIN = 0.30  # the model must beat the optimistic unigram baseline by this much accuracy
ORDER_GAIN_FLOOR = 4.0  # nats per masked token: shuffling the visible words must cost the model this much


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def model_and_tokenizer():
    from roberta.modeling import RobertaForMaskedLM
    from roberta.tokenization import RobertaTokenizerFast

    path = default_model_path()
    return RobertaForMaskedLM.from_pretrained(path).eval(), RobertaTokenizerFast.from_pretrained(path)


def _eval_module():
    spec = importlib.util.spec_from_file_location("embedded_eval", REPO / "scripts" / "embedded_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folder_is_complete_and_small():
    folder = Path(default_model_path())
    for name in REQUIRED_FILES:
        assert (folder / name).is_file(), name
    assert sum(f.stat().st_size for f in folder.iterdir()) < 25e6
    config = json.loads((folder / "config.json").read_text())
    assert config["type_vocab_size"] == 1 and config["max_position_embeddings"] == 130
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 128


def test_missing_folder_is_a_clear_error(monkeypatch, tmp_path):
    import roberta.embedded as embedded

    monkeypatch.setattr(embedded, "_MODEL_DIR", tmp_path / "model")
    with pytest.raises(FileNotFoundError, match="config.json.*missing"):
        embedded.default_model_path()


def test_loads_in_fp32_with_tied_decoder(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    assert next(model.parameters()).dtype == torch.float32  # stored fp16, upcast for CPU inference
    assert model.lm_head.decoder.weight.data_ptr() == model.roberta.embeddings.word_embeddings.weight.data_ptr()
    assert len(tokenizer) == model.config.vocab_size
    assert tokenizer.mask_token_id == len(tokenizer) - 1


def test_matches_transformers_on_the_shipped_folder(model_and_tokenizer):
    transformers = pytest.importorskip("transformers")
    model, tokenizer = model_and_tokenizer
    ref = transformers.RobertaForMaskedLM.from_pretrained(default_model_path()).eval()
    ref_tok = transformers.RobertaTokenizerFast.from_pretrained(default_model_path())
    text = ["Elizabeth was <mask> to see him.", README_SENTENCE]
    ours_enc = tokenizer(text, padding=True, return_tensors="pt")
    ref_enc = ref_tok(text, padding=True, return_tensors="pt")
    assert ours_enc["input_ids"].tolist() == ref_enc["input_ids"].tolist()
    with torch.no_grad():
        ours = model(**ours_enc).logits
        theirs = ref(**ref_enc).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_default_fill_mask_pipeline_gives_five_words():
    from roberta.pipelines import pipeline

    fill = pipeline("fill-mask")  # no model named: the embedded one
    results = fill(README_SENTENCE)
    assert len(results) == 5
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
    for r in results:
        assert r["sequence"] == README_SENTENCE.replace(" <mask>", r["token_str"]), r
    # A small model: its guesses are mostly frequent words (and some punctuation), not NLP libraries.
    words = [r["token_str"].strip() for r in fill("She was very <mask> to see her sister again.")]
    assert sum(w.isalpha() and len(w) >= 2 for w in words) >= 3, words


def test_heldout_masked_accuracy_beats_unigram_and_uses_word_order(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    figures = _eval_module().evaluate(model, tokenizer, [SAMPLE], block_size=64, mlm_probability=0.15, seed=0,
                                      packing="lines", mask_replace_prob=1.0, random_replace_prob=0.0)
    assert figures["masked_tokens"] > 500
    # The unigram baseline always predicts the sample's most frequent token (it knows the held-out
    # distribution): ~5% accuracy. An untrained model is at ~0%.
    assert figures["unigram_accuracy"] < 0.15
    assert figures["accuracy"] > figures["unigram_accuracy"] + UNIGRAM_MARGIN, figures
    assert figures["accuracy"] > ACCURACY_FLOOR, figures
    assert figures["perplexity"] < figures["unigram_perplexity"] / 20, figures
    assert figures["order_gain"] > ORDER_GAIN_FLOOR, figures
