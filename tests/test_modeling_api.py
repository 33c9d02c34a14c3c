"""Model API: outputs semantics, clear input errors, initialisation, tying, resizing, counting, meta builds,
loading delegation."""
import pickle

import pytest
import torch
import torch.utils._pytree as pytree

from test_modeling_helpers import CLASSES, TINY, assert_close, batch, configs, transformers, twins

import roberta.modeling as ours_mod
from roberta.modeling.outputs import MaskedLMOutput, SequenceClassifierOutput


# ---- outputs -------------------------------------------------------------------------------------
def test_model_output_access_like_transformers():
    logits, hidden = torch.ones(2, 3), (torch.zeros(1),)
    out = SequenceClassifierOutput(logits=logits, hidden_states=hidden)
    ref = transformers.modeling_outputs.SequenceClassifierOutput(logits=logits, hidden_states=hidden)
    assert list(out.keys()) == list(ref.keys()) == ["logits", "hidden_states"]
    assert out[0] is out.logits is out["logits"]
    assert out[1:] == (hidden,) and out.to_tuple() == (logits, hidden)
    assert "loss" not in out and out.loss is None
    a, b = out.to_tuple()
    assert a is logits and b is hidden
    for method, args in [("pop", ("logits",)), ("setdefault", ("x", 1)), ("update", ({},)), ("__delitem__", ("logits",))]:
        with pytest.raises(Exception):
            getattr(out, method)(*args)
    out.logits = torch.zeros(2, 3)
    assert torch.equal(out["logits"], torch.zeros(2, 3))


def test_model_output_pytree_and_pickle():
    out = MaskedLMOutput(loss=torch.tensor(1.0), logits=torch.ones(2))
    leaves, spec = pytree.tree_flatten(out)
    assert len(leaves) == 2
    back = pytree.tree_unflatten(leaves, spec)
    assert isinstance(back, MaskedLMOutput) and torch.equal(back.logits, out.logits)
    again = pickle.loads(pickle.dumps(out))
    assert list(again.keys()) == ["loss", "logits"]


# ---- clear errors ------------------------------------------------------------------------------------
def test_token_type_ids_error_is_clear():
    ours, theirs = twins("RobertaModel")
    ids, mask = batch()
    tt = torch.zeros_like(ids)
    tt[:, 5:] = 1
    with pytest.raises(IndexError):  # transformers: a bare IndexError from the embedding lookup
        theirs(input_ids=ids, token_type_ids=tt)
    with pytest.raises(ValueError, match=r"type_vocab_size=1; token_type_ids must be 0"):
        ours(input_ids=ids, token_type_ids=tt)


def test_too_long_input_names_the_limit():
    ours, _ = twins("RobertaModel")
    with pytest.raises(ValueError, match=r"maximum of 62 tokens.*truncation=True, max_length=62"):
        ours(input_ids=torch.full((1, 63), 5))
    ours(input_ids=torch.full((1, 62), 5))  # the limit itself works
    base_like, _ = configs(max_position_embeddings=514)
    model = ours_mod.RobertaModel(base_like)
    with pytest.raises(ValueError, match=r"longer than this model's maximum of 512 tokens.*max_length=512"):
        model(input_ids=torch.full((1, 513), 5))


@pytest.mark.parametrize("bad", [-1, 99, 1000])
def test_out_of_vocabulary_ids(bad):
    ours, _ = twins("RobertaForMaskedLM")
    ids, _ = batch()
    ids[0, 3] = bad
    with pytest.raises(ValueError, match=rf"id {bad}.*vocab_size=99.*resize_token_embeddings"):
        ours(input_ids=ids)


def test_input_and_mask_shape_errors():
    ours, _ = twins("RobertaModel")
    ids, mask = batch()
    with pytest.raises(ValueError, match="both input_ids and inputs_embeds"):
        ours(input_ids=ids, inputs_embeds=torch.zeros(3, 9, 32))
    with pytest.raises(ValueError, match="either input_ids or inputs_embeds"):
        ours()
    with pytest.raises(ValueError, match="2-D"):
        ours(input_ids=ids[0])
    with pytest.raises(ValueError, match="must be 2-D.*3-D.*4-D"):
        ours(input_ids=ids, attention_mask=mask[0])
    with pytest.raises(ValueError, match="attention_mask has shape"):
        ours(input_ids=ids, attention_mask=mask[:, :5])
    with pytest.raises(ValueError, match="position_ids contains 64"):
        ours(input_ids=ids, position_ids=torch.full_like(ids, 64))


def test_unsupported_attention_implementation():
    cfg, _ = configs()
    cfg._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="not supported"):
        ours_mod.RobertaModel(cfg)


def test_relative_positions_length_limit():
    ours, _ = twins("RobertaModel", position_embedding_type="relative_key")
    with pytest.raises(ValueError, match="longer than max_position_embeddings=64"):
        ours(input_ids=torch.full((1, 65), 5))


# ---- init, tying, counting ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,extra", [(n, {}) for n in CLASSES] + [
    ("RobertaForCausalLM", {"position_embedding_type": "relative_key_query", "add_cross_attention": True})])
def test_seeded_init_equals_transformers(name, extra):
    ours_cfg, theirs_cfg = configs(is_decoder=name == "RobertaForCausalLM", **extra)
    torch.manual_seed(0)
    theirs = getattr(transformers, name)(theirs_cfg)
    torch.manual_seed(0)
    ours = getattr(ours_mod, name)(ours_cfg)
    a, b = theirs.state_dict(), ours.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert ours.num_parameters() == theirs.num_parameters()
    assert ours.num_parameters(exclude_embeddings=True) == theirs.num_parameters(exclude_embeddings=True)


def test_init_statistics():
    cfg, _ = configs(hidden_size=64, vocab_size=500, intermediate_size=128, initializer_range=0.05)
    model = ours_mod.RobertaForMaskedLM(cfg)
    emb = model.roberta.embeddings
    assert emb.word_embeddings.weight[1].abs().sum() == 0 and emb.position_embeddings.weight[1].abs().sum() == 0
    assert abs(emb.word_embeddings.weight.std().item() - 0.05) < 0.005
    q = model.roberta.encoder.layer[0].attention.self.query
    assert abs(q.weight.std().item() - 0.05) < 0.005 and q.bias.abs().sum() == 0
    ln = model.roberta.encoder.layer[0].output.LayerNorm
    assert torch.equal(ln.weight, torch.ones(64)) and torch.equal(ln.bias, torch.zeros(64))
    assert model.lm_head.bias.abs().sum() == 0


def test_tying_and_embedding_accessors():
    ours, _ = twins("RobertaForMaskedLM")
    assert ours._tied_weights_keys == ["lm_head.decoder.weight", "lm_head.decoder.bias"]
    assert ours.get_output_embeddings() is ours.lm_head.decoder
    assert ours.get_input_embeddings() is ours.roberta.embeddings.word_embeddings
    assert ours.lm_head.decoder.weight is ours.get_input_embeddings().weight
    assert ours.lm_head.bias is ours.lm_head.decoder.bias
    new = torch.nn.Embedding(TINY["vocab_size"], 32, padding_idx=1)
    ours.set_input_embeddings(new)
    ours.tie_weights()
    assert ours.lm_head.decoder.weight is new.weight
    assert ours.num_parameters(only_trainable=True) == ours.num_parameters()
    ours.roberta.embeddings.requires_grad_(False)
    assert ours.num_parameters(only_trainable=True) < ours.num_parameters()
    assert ours_mod.RobertaModel.base_model_prefix == "roberta" and ours.main_input_name == "input_ids"
    assert ours.config_class.__name__ == "RobertaConfig"
    assert not ours_mod.RobertaForMaskedLM.can_generate() and ours_mod.RobertaForCausalLM.can_generate()


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("mean_resizing", [True, False])
@pytest.mark.parametrize("new_size", [120, 50])
def test_resize_token_embeddings_equals_transformers(mean_resizing, new_size, tied):
    ours, theirs = twins("RobertaForMaskedLM", tie_word_embeddings=tied)
    if not tied:
        with torch.no_grad():  # a bias with spread, so the mean/std draw of new entries is visible
            for m in (ours, theirs):
                m.lm_head.bias.copy_(torch.linspace(-1, 1, 99))
    old = ours.get_input_embeddings().weight.detach().clone()
    torch.manual_seed(1)
    theirs.resize_token_embeddings(new_size, mean_resizing=mean_resizing)
    torch.manual_seed(1)
    ret = ours.resize_token_embeddings(new_size, mean_resizing=mean_resizing)
    assert ret is ours.get_input_embeddings()
    a, b = theirs.state_dict(), ours.state_dict()
    assert sorted(a) == sorted(b)
    for key in a:
        assert_close(b[key], a[key], atol=0, rtol=0)
    keep = min(new_size, 99)
    assert torch.equal(ours.get_input_embeddings().weight[:keep], old[:keep])
    assert ours.config.vocab_size == new_size and ours.lm_head.bias.shape == (new_size,)
    assert (ours.lm_head.decoder.weight is ours.get_input_embeddings().weight) == tied
    assert ours.lm_head.bias is ours.lm_head.decoder.bias
    ids, mask = batch()
    ids = ids % new_size
    ids[0, 2] = new_size - 1
    with torch.no_grad():
        assert_close(ours(input_ids=ids).logits, theirs(input_ids=ids).logits)


def test_resize_pad_to_multiple_of():
    ours, theirs = twins("RobertaForMaskedLM")
    assert ours.resize_token_embeddings(101, pad_to_multiple_of=8).num_embeddings == 104
    assert ours.resize_token_embeddings(pad_to_multiple_of=64).num_embeddings == 128
    assert ours.config.vocab_size == 128
    assert ours.resize_token_embeddings() is ours.get_input_embeddings()


# ---- meta builds and loading hooks -------------------------------------------------------------------------
def test_meta_build_then_load_and_init_buffers():
    ours_cfg, _ = configs()
    ref, theirs = twins("RobertaForMaskedLM")
    with torch.device("meta"):
        model = ours_mod.RobertaForMaskedLM(ours_cfg)
    assert model.device.type == "meta"
    model.load_state_dict(theirs.state_dict(), assign=True)
    model.tie_weights()
    model._init_buffers("cpu")
    model.eval()
    assert model.roberta.embeddings.position_ids.device.type == "cpu"
    assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight
    assert model.lm_head.bias is model.lm_head.decoder.bias
    ids, mask = batch()
    with torch.no_grad():
        assert_close(model(input_ids=ids, attention_mask=mask).logits, ref(input_ids=ids, attention_mask=mask).logits)


def test_buffers_not_in_state_dict():
    ours, _ = twins("RobertaModel")
    assert "embeddings.position_ids" not in ours.state_dict()
    assert "embeddings.token_type_ids" not in ours.state_dict()


def test_from_pretrained_and_save_pretrained_delegate(monkeypatch, tmp_path):
    import roberta.loading as loading
    calls = []
    monkeypatch.setattr(loading, "load_model", lambda cls, path, *a, **k: calls.append(("load", cls, path, k)))
    monkeypatch.setattr(loading, "save_model", lambda model, path, **k: calls.append(("save", model, path, k)))
    ours, _ = twins("RobertaModel")
    ours_mod.RobertaForMaskedLM.from_pretrained("some/id", dtype=torch.float16)
    ours.save_pretrained(tmp_path, safe_serialization=True)
    assert calls[0] == ("load", ours_mod.RobertaForMaskedLM, "some/id", {"dtype": torch.float16})
    assert calls[1] == ("save", ours, tmp_path, {"safe_serialization": True})


def test_warns_once_when_padding_and_no_mask(caplog):
    import roberta.modeling.attention as attn
    attn._warned.discard("We strongly recommend passing in an `attention_mask` since your input_ids may be padded.")
    ours, _ = twins("RobertaModel")
    ids, mask = batch(padding="right")
    with caplog.at_level("WARNING"):
        ours(input_ids=ids, attention_mask=mask)
        assert "attention_mask" not in caplog.text
        ours(input_ids=ids)
        ours(input_ids=ids)
    assert caplog.text.count("strongly recommend passing in an `attention_mask`") == 1


def test_enable_input_require_grads_and_footprint():
    ours, theirs = twins("RobertaForSequenceClassification")
    assert ours.get_memory_footprint() == theirs.get_memory_footprint()
    ours.requires_grad_(False)
    ours.enable_input_require_grads()
    ids, mask = batch()
    out = ours(input_ids=ids, attention_mask=mask)
    assert out.logits.requires_grad
    ours.disable_input_require_grads()
    assert not ours(input_ids=ids, attention_mask=mask).logits.requires_grad
