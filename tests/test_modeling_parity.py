"""Parity with transformers 4.57 on tiny random models with identical weights: every head's outputs and
losses, hidden states/attentions, eager vs SDPA, padding, inputs_embeds, dtypes, one training step."""
import pytest
import torch

from test_modeling_helpers import CLASSES, TINY, assert_close, batch, configs, transformers, twins

import roberta.modeling as ours_mod


@pytest.mark.parametrize("name", CLASSES)
def test_state_dict_keys_identical(name):
    extra = {"is_decoder": True} if name == "RobertaForCausalLM" else {}
    ours_cfg, theirs_cfg = configs(**extra)
    theirs = getattr(transformers, name)(theirs_cfg)
    ours = getattr(ours_mod, name)(ours_cfg)
    assert sorted(theirs.state_dict()) == sorted(ours.state_dict())
    assert {k: v.shape for k, v in theirs.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}


def test_decoder_with_cross_attention_keys_identical():
    ours_cfg, theirs_cfg = configs(is_decoder=True, add_cross_attention=True)
    assert sorted(transformers.RobertaForCausalLM(theirs_cfg).state_dict()) == \
        sorted(ours_mod.RobertaForCausalLM(ours_cfg).state_dict())


def _run(model, name, ids, mask, **kw):
    if name == "RobertaForMultipleChoice":  # (B, C, T): 3 choices built from the batch rows
        ids = torch.stack([ids, ids.flip(0), ids.roll(1, 0)], 1)
        mask = torch.stack([mask, mask.flip(0), mask.roll(1, 0)], 1)
    return model(input_ids=ids, attention_mask=mask, **kw)


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_outputs_match(name, impl):
    extra = {"is_decoder": True} if name == "RobertaForCausalLM" else {}
    ours, theirs = twins(name, attn_implementation=impl, **extra)
    ids, mask = batch()
    with torch.no_grad():
        a = _run(theirs, name, ids, mask, output_hidden_states=True, output_attentions=True)
        b = _run(ours, name, ids, mask, output_hidden_states=True, output_attentions=True)
        assert set(a.keys()) == set(b.keys())
        for key in a.keys():
            if key != "past_key_values":
                assert_close(b[key], a[key])
        # plain call (no hidden states / attentions: our fast paths) gives the same main output
        a2, b2 = _run(theirs, name, ids, mask), _run(ours, name, ids, mask)
        assert_close(b2[0], a2[0])
        # return_dict=False: the same tuple, in transformers' order
        ta = _run(theirs, name, ids, mask, return_dict=False, output_hidden_states=True)
        tb = _run(ours, name, ids, mask, return_dict=False, output_hidden_states=True)
        assert isinstance(tb, tuple) and len(ta) == len(tb)
        for x, y in zip(ta, tb):
            if torch.is_tensor(x) or isinstance(x, tuple):
                assert_close(y, x)
            else:  # the decoder's cache object (theirs EncoderDecoderCache, ours KeyValueCache)
                assert_close([kv[:2] for kv in y.to_legacy_cache()], [kv[:2] for kv in x.to_legacy_cache()])


LOSS_CASES = [
    ("RobertaForMaskedLM", {}, lambda ids: torch.where(torch.rand(ids.shape) < 0.3, ids, -100)),
    ("RobertaForCausalLM", {"is_decoder": True}, lambda ids: torch.where(ids == 1, -100, ids)),
    ("RobertaForSequenceClassification", {"num_labels": 3}, lambda ids: torch.tensor([0, 2, 1])),
    ("RobertaForSequenceClassification", {"num_labels": 1}, lambda ids: torch.tensor([0.5, -1.0, 2.0])),
    ("RobertaForSequenceClassification", {"num_labels": 3, "problem_type": "multi_label_classification"},
     lambda ids: torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 1]])),
    ("RobertaForSequenceClassification", {"num_labels": 2, "problem_type": "regression"},
     lambda ids: torch.tensor([[0.5, 1.0], [-1.0, 0.0], [2.0, 3.0]])),
    ("RobertaForTokenClassification", {"num_labels": 5}, lambda ids: torch.where(ids == 1, -100, ids % 5)),
    ("RobertaForMultipleChoice", {}, lambda ids: torch.tensor([0, 2, 1])),
]


@pytest.mark.parametrize("name,extra,make_labels", LOSS_CASES)
def test_losses_match(name, extra, make_labels):
    ours, theirs = twins(name, **extra)
    ids, mask = batch()
    torch.manual_seed(1)
    labels = make_labels(ids)
    with torch.no_grad():
        a = _run(theirs, name, ids, mask, labels=labels)
        b = _run(ours, name, ids, mask, labels=labels)
    assert_close(b.loss, a.loss)
    assert_close(b.logits, a.logits)
    assert b[0] is b.loss  # int indexing skips None fields: loss comes first when labels are given
    assert ours.config.problem_type == theirs.config.problem_type


def test_problem_type_is_decided_and_stored():
    ours, _ = twins("RobertaForSequenceClassification", num_labels=3)
    ids, mask = batch()
    assert ours.config.problem_type is None
    ours(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 2]))
    assert ours.config.problem_type == "single_label_classification"
    ours2, _ = twins("RobertaForSequenceClassification", num_labels=3)
    ours2(input_ids=ids, attention_mask=mask, labels=torch.ones(3, 3))
    assert ours2.config.problem_type == "multi_label_classification"


def test_regression_accepts_integer_labels():
    """transformers raises a dtype error in MSELoss for int labels with num_labels=1; we treat them as floats."""
    ours, theirs = twins("RobertaForSequenceClassification", num_labels=1)
    ids, mask = batch()
    with torch.no_grad():
        a = theirs(input_ids=ids, attention_mask=mask, labels=torch.tensor([1.0, 0.0, 3.0]))
        b = ours(input_ids=ids, attention_mask=mask, labels=torch.tensor([1, 0, 3]))
    assert_close(b.loss, a.loss)


@pytest.mark.parametrize("start,end", [([1, 3, 100], [2, 50, 4]), ([[0], [2], [-5]], [[1], [3], [4]])])
def test_question_answering_loss_clamps_positions(start, end):
    ours, theirs = twins("RobertaForQuestionAnswering")
    ids, mask = batch()
    kw = dict(start_positions=torch.tensor(start), end_positions=torch.tensor(end))
    with torch.no_grad():
        a = theirs(input_ids=ids, attention_mask=mask, **kw)
        b = ours(input_ids=ids, attention_mask=mask, **kw)
    assert_close(b.loss, a.loss)
    assert_close(b.start_logits, a.start_logits)
    assert_close(b.end_logits, a.end_logits)


@pytest.mark.parametrize("padding", ["left", "right"])
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_padded_row_equals_row_alone(padding, impl):
    ours, theirs = twins("RobertaModel", attn_implementation=impl)
    ids, mask = batch(padding=padding)
    keep = mask[1].bool()
    with torch.no_grad():
        full = ours(input_ids=ids, attention_mask=mask).last_hidden_state
        alone = ours(input_ids=ids[1:2, keep]).last_hidden_state
        ref = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
    assert_close(full[1, keep], alone[0])
    assert_close(full, ref)


def test_inputs_embeds_path_matches():
    ours, theirs = twins("RobertaForMaskedLM")
    ids, mask = batch(padding="right")
    with torch.no_grad():
        embeds = theirs.get_input_embeddings()(ids)
        a = theirs(inputs_embeds=embeds, attention_mask=mask).logits
        b = ours(inputs_embeds=embeds, attention_mask=mask).logits
        # right padding: sequential positions equal the id-derived ones on real tokens
        c = ours(input_ids=ids, attention_mask=mask).logits
    assert_close(b, a)
    assert_close(b[mask.bool()], c[mask.bool()])


def test_position_ids_and_token_type_ids_passed_explicitly():
    ours, theirs = twins("RobertaModel", type_vocab_size=2)
    ids, mask = batch()
    pos = torch.arange(2, 2 + ids.shape[1])[None].expand_as(ids)
    tt = torch.zeros_like(ids)
    tt[:, 4:] = 1
    with torch.no_grad():
        a = theirs(input_ids=ids, attention_mask=mask, position_ids=pos, token_type_ids=tt).last_hidden_state
        b = ours(input_ids=ids, attention_mask=mask, position_ids=pos, token_type_ids=tt).last_hidden_state
    assert_close(b, a)


@pytest.mark.parametrize("kind", ["bool", "float", "3d"])
def test_higher_rank_masks(kind):
    ours, theirs = twins("RobertaModel")
    ids, mask = batch()
    with torch.no_grad():
        ref = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
        if kind == "bool":
            m = mask.bool()[:, None, None, :].expand(-1, 1, ids.shape[1], -1)
        elif kind == "float":
            m = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        else:
            m = mask[:, None, :].expand(-1, ids.shape[1], -1)
        out = ours(input_ids=ids, attention_mask=m).last_hidden_state
    assert_close(out, ref)


def test_head_mask_matches():
    ours, theirs = twins("RobertaModel", attn_implementation="eager")
    ids, mask = batch()
    hm = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    with torch.no_grad():
        a = theirs(input_ids=ids, attention_mask=mask, head_mask=hm, output_attentions=True)
        b = ours(input_ids=ids, attention_mask=mask, head_mask=hm, output_attentions=True)
    assert_close(b.last_hidden_state, a.last_hidden_state)
    assert_close(b.attentions, a.attentions)


def test_sdpa_and_eager_agree_and_attentions_force_eager():
    ours, _ = twins("RobertaForSequenceClassification")
    ids, mask = batch()
    with torch.no_grad():
        sdpa = ours(input_ids=ids, attention_mask=mask)
        withattn = ours(input_ids=ids, attention_mask=mask, output_attentions=True)
        ours.config._attn_implementation = "eager"
        eager = ours(input_ids=ids, attention_mask=mask)
    assert_close(sdpa.logits, eager.logits)
    assert len(withattn.attentions) == 2 and withattn.attentions[0].shape == (3, 4, 9, 9)
    assert_close(withattn.attentions[0].sum(-1), torch.ones(3, 4, 9))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_close_to_fp32(dtype):
    ours, _ = twins("RobertaForMaskedLM")
    ids, mask = batch()
    labels = torch.where(torch.rand(ids.shape, generator=torch.Generator().manual_seed(0)) < 0.3, ids, -100)
    with torch.no_grad():
        ref = ours(input_ids=ids, attention_mask=mask, labels=labels)
        low = ours.to(dtype)
        assert low.dtype == dtype
        out = low(input_ids=ids, attention_mask=mask, labels=labels)
    assert out.logits.dtype == dtype
    assert out.loss.dtype == torch.float32  # logits upcast before the loss
    assert torch.isfinite(out.logits).all()
    assert_close(out.logits.float(), ref.logits, atol=5e-2, rtol=5e-2)
    assert abs(out.loss.item() - ref.loss.item()) < 2e-2


def test_half_and_dtype_device_properties():
    ours, _ = twins("RobertaModel")
    assert ours.dtype == torch.float32 and ours.device == torch.device("cpu")
    ours.half()
    assert ours.dtype == torch.float16
    assert ours.config is ours.base_model.config


def test_training_step_matches_transformers():
    """Same weights, same batch, dropout off: gradients and one AdamW step agree."""
    ours, theirs = twins("RobertaForMaskedLM", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ids, mask = batch()
    labels = torch.where(torch.rand(ids.shape, generator=torch.Generator().manual_seed(3)) < 0.3, ids, -100)
    models = (theirs.train(), ours.train())
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2) for m in models]
    for m, opt in zip(models, opts):
        m(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
    a, b = theirs.state_dict(), ours.state_dict()
    for key in a:
        assert_close(b[key], a[key], atol=1e-5, rtol=1e-4)
    # the tie survives the step
    assert ours.lm_head.decoder.weight is ours.roberta.embeddings.word_embeddings.weight


def test_sparse_logits_training_step_matches_full():
    """sparse_logits=True gives the same loss and gradients as the full logits (what the trainer relies on)."""
    ours, _ = twins("RobertaForMaskedLM", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ids, mask = batch()
    labels = torch.where(torch.rand(ids.shape, generator=torch.Generator().manual_seed(4)) < 0.3, ids, -100)
    full = ours(input_ids=ids, attention_mask=mask, labels=labels)
    full.loss.backward()
    grads = {n: p.grad.clone() for n, p in ours.named_parameters()}
    ours.zero_grad()
    sparse = ours(input_ids=ids, attention_mask=mask, labels=labels, sparse_logits=True)
    sparse.loss.backward()
    n = int((labels != -100).sum())
    assert sparse.logits.shape == (n, TINY["vocab_size"])
    assert_close(sparse.logits, full.logits[labels != -100])
    assert_close(sparse.loss, full.loss)
    for name, p in ours.named_parameters():
        assert_close(p.grad, grads[name], atol=1e-6, rtol=1e-4)


def test_logits_mask_selects_positions():
    ours, _ = twins("RobertaForMaskedLM")
    ids, mask = batch()
    sel = torch.zeros_like(mask, dtype=torch.bool)
    sel[0, 2] = sel[2, 5] = sel[2, 7] = True
    with torch.no_grad():
        full = ours(input_ids=ids, attention_mask=mask).logits
        part = ours(input_ids=ids, attention_mask=mask, logits_mask=sel).logits
        alias = ours(input_ids=ids, attention_mask=mask, logits_positions=sel).logits
    assert part.shape == (3, TINY["vocab_size"])
    assert_close(part, full[sel])
    assert_close(alias, part)
    with pytest.raises(ValueError, match="needs labels"):
        ours(input_ids=ids, sparse_logits=True)


def test_zero_layers_match_and_take_a_logits_mask():
    """num_hidden_layers=0 (transformers allows it: the embeddings are the output): the few-rows path used to
    skip the row selection there, an IndexError about mask shapes in `roberta pretrain --num-layers 0`."""
    ids, mask = batch()
    sel = torch.zeros_like(mask, dtype=torch.bool)
    sel[0, 2] = sel[2, 5] = True
    for name in ("RobertaForMaskedLM", "RobertaForSequenceClassification"):
        ours, theirs = twins(name, num_hidden_layers=0)
        with torch.no_grad():
            full = theirs(input_ids=ids, attention_mask=mask).logits
            assert_close(ours(input_ids=ids, attention_mask=mask).logits, full)
            if name == "RobertaForMaskedLM":
                assert_close(ours(input_ids=ids, attention_mask=mask, logits_mask=sel).logits, full[sel])


def test_gradient_checkpointing_same_gradients():
    ours, _ = twins("RobertaForSequenceClassification", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ids, mask = batch()
    labels = torch.tensor([0, 1, 0])
    ours.train()
    ours(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    ref = {n: p.grad.clone() for n, p in ours.named_parameters() if p.grad is not None}
    ours.zero_grad()
    ours.gradient_checkpointing_enable()
    assert ours.is_gradient_checkpointing
    ours(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    for n, g in ref.items():
        assert_close(dict(ours.named_parameters())[n].grad, g, atol=1e-6, rtol=1e-5)


def test_dropout_only_in_training():
    ours, _ = twins("RobertaModel")
    ids, mask = batch()
    with torch.no_grad():
        e1 = ours(input_ids=ids, attention_mask=mask).last_hidden_state
        e2 = ours(input_ids=ids, attention_mask=mask).last_hidden_state
        ours.train()
        t1 = ours(input_ids=ids, attention_mask=mask).last_hidden_state
        t2 = ours(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(e1, e2)
    assert not torch.allclose(t1, t2)


@pytest.mark.parametrize("extra", [{"chunk_size_feed_forward": 3}, {"hidden_act": "gelu_new"}, {"hidden_act": "relu"},
                                   {"layer_norm_eps": 1e-5, "initializer_range": 0.1}])
def test_config_variants_match(extra):
    ours, theirs = twins("RobertaForTokenClassification", **extra)
    ids, mask = batch()
    with torch.no_grad():
        assert_close(ours(input_ids=ids, attention_mask=mask).logits, theirs(input_ids=ids, attention_mask=mask).logits)


def test_classifier_dropout_is_used_in_training():
    ours, theirs = twins("RobertaForSequenceClassification", classifier_dropout=0.0, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)
    ids, mask = batch()
    ours.train(), theirs.train()
    assert_close(ours(input_ids=ids, attention_mask=mask).logits, theirs(input_ids=ids, attention_mask=mask).logits)
    assert ours.classifier.dropout.p == 0.0


@pytest.mark.parametrize("kind", ["relative_key", "relative_key_query"])
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_relative_position_embeddings_match(kind, impl):
    # transformers' decoders with a cache (use_cache=True, their default) give every query the last query's
    # distances; without a cache they are right, and that is what we match (see the README)
    for name, extra in [("RobertaForSequenceClassification", {}), ("RobertaForCausalLM", {"is_decoder": True})]:
        ours, theirs = twins(name, position_embedding_type=kind, attn_implementation=impl, **extra)
        assert "roberta.encoder.layer.0.attention.self.distance_embedding.weight" in ours.state_dict()
        ids, mask = batch()
        with torch.no_grad():
            a = theirs(input_ids=ids, attention_mask=mask, output_hidden_states=True, **(
                {"use_cache": False} if extra else {}))
            b = ours(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            assert_close(b.logits, a.logits)
            assert_close(b.hidden_states, a.hidden_states)
            assert_close(ours(input_ids=ids, attention_mask=mask).logits, a.logits)
