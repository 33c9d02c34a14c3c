"""Key handling on load: legacy names, base <-> head prefixes, new heads, shape mismatches."""
import logging

import pytest
import torch
from safetensors.torch import load_file, save_file

from test_loading_utils import assert_same_outputs, inputs, ours_cls, theirs


def _rewrite(path, fn):
    """Rewrite model.safetensors in `path` through fn(state_dict) -> state_dict."""
    state = load_file(path / "model.safetensors")
    save_file(fn(state), path / "model.safetensors", metadata={"format": "pt"})


def test_legacy_gamma_beta_names(tmp_path, caplog):
    ref = theirs("RobertaForMaskedLM")
    ref.save_pretrained(tmp_path)
    _rewrite(tmp_path, lambda sd: {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
                                   .replace("layer_norm.weight", "layer_norm.gamma"): v for k, v in sd.items()})
    assert any(k.endswith("LayerNorm.gamma") for k in load_file(tmp_path / "model.safetensors"))
    with caplog.at_level(logging.INFO, logger="roberta.loading"):
        model, info = ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert "legacy checkpoint keys" in caplog.text
    assert_same_outputs(model, ref, inputs("RobertaForMaskedLM"))


def test_old_position_ids_key_is_ignored_silently(tmp_path):
    ref = theirs("RobertaModel")
    ref.save_pretrained(tmp_path)
    _rewrite(tmp_path, lambda sd: {**sd, "embeddings.position_ids": torch.arange(40)[None]})
    model, info = ours_cls("RobertaModel").from_pretrained(tmp_path, output_loading_info=True)
    assert info["unexpected_keys"] == [] and info["missing_keys"] == []
    assert_same_outputs(model, ref, inputs("RobertaModel"))


def test_base_checkpoint_into_head_initialises_head(tmp_path, caplog):
    base = theirs("RobertaModel")
    base.save_pretrained(tmp_path)  # keys without the roberta. prefix
    torch.manual_seed(123)
    with caplog.at_level(logging.DEBUG, logger="roberta.loading"):
        model, info = ours_cls("RobertaForSequenceClassification").from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.dense.bias", "classifier.dense.weight",
                                            "classifier.out_proj.bias", "classifier.out_proj.weight"]
    assert sorted(info["unexpected_keys"]) == ["roberta.pooler.dense.bias", "roberta.pooler.dense.weight"]
    infos = [r for r in caplog.records if r.levelno == logging.INFO and "newly initialized" in r.getMessage()]
    assert len(infos) == 1 and "fine-tune" in infos[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(r.levelno == logging.DEBUG and "classifier.out_proj.weight" in r.getMessage() for r in caplog.records)
    # the body is the checkpoint's, the head is freshly initialised with transformers' scheme
    torch.testing.assert_close(model.roberta.encoder.layer[1].output.dense.weight, base.encoder.layer[1].output.dense.weight)
    assert torch.all(model.classifier.dense.bias == 0) and torch.all(model.classifier.out_proj.bias == 0)
    std = model.classifier.dense.weight.std().item()
    assert 0.01 < std < 0.03  # normal(0, initializer_range=0.02), not zeros or garbage
    assert not any(p.is_meta for p in model.parameters())


def test_head_checkpoint_into_base_strips_prefix(tmp_path):
    ref = theirs("RobertaForTokenClassification")
    ref.save_pretrained(tmp_path)
    model, info = ours_cls("RobertaModel").from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["unexpected_keys"]) == ["classifier.bias", "classifier.weight"]
    assert sorted(info["missing_keys"]) == ["pooler.dense.bias", "pooler.dense.weight"]
    torch.testing.assert_close(model.embeddings.word_embeddings.weight, ref.roberta.embeddings.word_embeddings.weight)
    batch = inputs("RobertaModel")
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).last_hidden_state, ref.roberta(**batch).last_hidden_state)


def test_mlm_checkpoint_into_classifier(tmp_path):
    theirs("RobertaForMaskedLM").save_pretrained(tmp_path)
    _, info = ours_cls("RobertaForSequenceClassification").from_pretrained(tmp_path, output_loading_info=True)
    assert set(info["unexpected_keys"]) == {"lm_head.bias", "lm_head.dense.weight", "lm_head.dense.bias",
                                            "lm_head.layer_norm.weight", "lm_head.layer_norm.bias"}
    assert all(k.startswith("classifier.") for k in info["missing_keys"])


def test_shape_mismatch_error_and_ignore(tmp_path, caplog):
    theirs("RobertaForSequenceClassification").save_pretrained(tmp_path)  # 3 labels
    cls = ours_cls("RobertaForSequenceClassification")
    with pytest.raises(RuntimeError, match=r"classifier\.out_proj\.weight: the checkpoint has shape \(3, 32\), "
                                           r"the model expects \(5, 32\).*ignore_mismatched_sizes=True"):
        cls.from_pretrained(tmp_path, num_labels=5)
    with caplog.at_level(logging.WARNING, logger="roberta.loading"):
        model, info = cls.from_pretrained(tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert sorted(info["mismatched_keys"]) == ["classifier.out_proj.bias", "classifier.out_proj.weight"]  # as transformers
    assert info["missing_keys"] == []
    assert model.classifier.out_proj.weight.shape == (5, 32) and torch.all(model.classifier.out_proj.bias == 0)
    assert "Re-initialized classifier.out_proj.weight" in caplog.text
    assert model(**inputs("RobertaForSequenceClassification")).logits.shape == (2, 5)


def test_partially_present_module_keeps_loaded_half(tmp_path):
    ref = theirs("RobertaForTokenClassification")
    ref.save_pretrained(tmp_path)
    _rewrite(tmp_path, lambda sd: {k: v for k, v in sd.items() if k != "classifier.bias"})
    model, info = ours_cls("RobertaForTokenClassification").from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == ["classifier.bias"]
    torch.testing.assert_close(model.classifier.weight, ref.classifier.weight)  # not overwritten by the init
    assert torch.all(model.classifier.bias == 0)


def test_missing_body_weight_warns(tmp_path, caplog):
    theirs("RobertaModel").save_pretrained(tmp_path)
    _rewrite(tmp_path, lambda sd: {k: v for k, v in sd.items() if not k.startswith("encoder.layer.1.")})
    with caplog.at_level(logging.WARNING, logger="roberta.loading"):
        _, info = ours_cls("RobertaModel").from_pretrained(tmp_path, output_loading_info=True)
    assert len(info["missing_keys"]) == 16
    assert "MISSING from the checkpoint" in caplog.text and "encoder.layer.1.attention.self.query (2)" in caplog.text


def test_tied_decoder_stored_under_alias_only(tmp_path):
    """Old checkpoints stored lm_head.decoder.bias instead of lm_head.bias: it still lands in the one bias."""
    ref = theirs("RobertaForMaskedLM")
    ref.save_pretrained(tmp_path)
    _rewrite(tmp_path, lambda sd: {("lm_head.decoder.bias" if k == "lm_head.bias" else k): v for k, v in sd.items()})
    model, info = ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    torch.testing.assert_close(model.lm_head.bias, ref.lm_head.bias)
    assert model.lm_head.decoder.bias is model.lm_head.bias
