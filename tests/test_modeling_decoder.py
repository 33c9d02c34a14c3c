"""Decoder use: causal masking, key/value cache (legacy tuples and KeyValueCache), cross-attention, and
masked rows that must not produce NaN. generate() is tested in test_generation.py."""
import pytest
import torch

from test_modeling_helpers import assert_close, batch, configs, transformers, twins

import roberta.modeling as ours_mod
from roberta.modeling import KeyValueCache

DECODER = dict(is_decoder=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _legacy_kv(cache):
    return [layer[:2] for layer in cache.to_legacy_cache()]


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_causal_forward_and_cache_match_transformers(impl):
    ours, theirs = twins("RobertaForCausalLM", attn_implementation=impl, **DECODER)
    ids, mask = batch(padding="right")
    with torch.no_grad():
        a = theirs(input_ids=ids, attention_mask=mask, use_cache=True)
        b = ours(input_ids=ids, attention_mask=mask, use_cache=True)
    assert_close(b.logits, a.logits)
    assert isinstance(b.past_key_values, KeyValueCache)
    assert b.past_key_values.get_seq_length() == ids.shape[1]
    assert_close(_legacy_kv(b.past_key_values), _legacy_kv(a.past_key_values))


@pytest.mark.parametrize("legacy", [True, False])
def test_incremental_decoding_equals_full_forward(legacy):
    ours, theirs = twins("RobertaForCausalLM", **DECODER)
    ids, _ = batch(padding=None)
    with torch.no_grad():
        full = ours(input_ids=ids).logits
        ref = theirs(input_ids=ids).logits
        out = ours(input_ids=ids[:, :4], use_cache=True)
        past = out.past_key_values.to_legacy_cache() if legacy else out.past_key_values
        steps = [out.logits]
        for t in range(4, ids.shape[1]):
            out = ours(input_ids=ids[:, t:t + 1], past_key_values=past, use_cache=True)
            assert isinstance(out.past_key_values, tuple if legacy else KeyValueCache)
            past = out.past_key_values
            steps.append(out.logits)
    assert_close(torch.cat(steps, 1), full)
    assert_close(full, ref)


def test_legacy_cache_input_matches_transformers():
    ours, theirs = twins("RobertaForCausalLM", **DECODER)
    ids, _ = batch(padding=None)
    with torch.no_grad():
        past = ours(input_ids=ids[:, :5], use_cache=True).past_key_values.to_legacy_cache()
        a = theirs(input_ids=ids[:, 5:], past_key_values=past, use_cache=True)
        b = ours(input_ids=ids[:, 5:], past_key_values=past, use_cache=True)
    assert_close(b.logits, a.logits)
    assert isinstance(b.past_key_values, tuple) and len(b.past_key_values) == 2
    assert_close(_legacy_kv(KeyValueCache.from_legacy_cache(b.past_key_values)), _legacy_kv(a.past_key_values))


def test_causal_lm_loss_and_num_items_in_batch():
    ours, theirs = twins("RobertaForCausalLM", **DECODER)
    ids, mask = batch()
    labels = torch.where(mask.bool(), ids, -100)
    with torch.no_grad():
        a = theirs(input_ids=ids, attention_mask=mask, labels=labels)
        b = ours(input_ids=ids, attention_mask=mask, labels=labels)
        a2 = theirs(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=torch.tensor(7))
        b2 = ours(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=torch.tensor(7))
    assert_close(b.loss, a.loss)
    assert_close(b2.loss, a2.loss)
    assert "past_key_values" not in b.keys()  # labels turn the cache off, like transformers


def _cross_inputs():
    g = torch.Generator().manual_seed(5)
    enc = torch.randn(3, 6, 32, generator=g)
    enc_mask = torch.ones(3, 6, dtype=torch.long)
    enc_mask[2, 4:] = 0
    return enc, enc_mask


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_cross_attention_matches_transformers(impl):
    ours, theirs = twins("RobertaForCausalLM", attn_implementation=impl, add_cross_attention=True, **DECODER)
    ids, mask = batch()
    enc, enc_mask = _cross_inputs()
    kw = dict(input_ids=ids, attention_mask=mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask,
              output_attentions=True)
    with torch.no_grad():
        a, b = theirs(**kw), ours(**kw)
    assert_close(b.logits, a.logits)
    assert_close(b.attentions, a.attentions)
    assert_close(b.cross_attentions, a.cross_attentions)
    assert b.cross_attentions[0].shape == (3, 4, 9, 6)


def test_cross_attention_cached_decoding_equals_full():
    ours, _ = twins("RobertaForCausalLM", add_cross_attention=True, **DECODER)
    ids, _ = batch(padding=None)
    enc, enc_mask = _cross_inputs()
    kw = dict(encoder_hidden_states=enc, encoder_attention_mask=enc_mask)
    with torch.no_grad():
        full = ours(input_ids=ids, **kw).logits
        out = ours(input_ids=ids[:, :3], use_cache=True, **kw)
        assert len(out.past_key_values[0]) == 4  # (k, v, cross_k, cross_v)
        steps = [out.logits]
        for t in range(3, ids.shape[1]):
            out = ours(input_ids=ids[:, t:t + 1], past_key_values=out.past_key_values, use_cache=True, **kw)
            steps.append(out.logits)
    assert_close(torch.cat(steps, 1), full)


def test_cross_attention_configuration_errors():
    ours_cfg, theirs_cfg = configs(add_cross_attention=True)  # without is_decoder
    with pytest.raises(ValueError):
        transformers.RobertaModel(theirs_cfg)
    with pytest.raises(ValueError, match="is_decoder"):
        ours_mod.RobertaModel(ours_cfg)
    ours, _ = twins("RobertaForCausalLM", **DECODER)
    with pytest.raises(ValueError, match="add_cross_attention"):
        ours(input_ids=batch()[0], encoder_hidden_states=torch.randn(3, 4, 32))


def test_left_padded_decoder_has_no_nan_rows():
    ours, theirs = twins("RobertaForCausalLM", **DECODER)
    ids, mask = batch(padding="left")
    with torch.no_grad():
        out = ours(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        ref = theirs(input_ids=ids, attention_mask=mask)
    for h in out.hidden_states:
        assert torch.isfinite(h).all()
    real = mask.bool()  # pad query rows see no key at all; compare the real tokens
    assert_close(out.logits[real], ref.logits[real])


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_fully_masked_rows_are_zeroed_not_nan(impl):
    ours, _ = twins("RobertaModel", attn_implementation=impl)
    ids, mask = batch()
    mask[2] = 0  # a row with nothing to attend to
    bias = torch.zeros(3, 1, 9, 9)
    bias[0, :, 4, :] = float("-inf")  # one query row fully -inf in a user 4-D float mask
    with torch.no_grad():
        out = ours(input_ids=ids, attention_mask=mask).last_hidden_state
        out4 = ours(input_ids=ids, attention_mask=bias).last_hidden_state
        ok = ours(input_ids=ids[:2], attention_mask=mask[:2]).last_hidden_state
    assert torch.isfinite(out).all() and torch.isfinite(out4).all()
    assert_close(out[:2], ok)  # other rows unaffected


def test_relative_positions_incremental_decoding_equals_full():
    ours, theirs = twins("RobertaForCausalLM", position_embedding_type="relative_key_query", **DECODER)
    ids, _ = batch(padding=None)
    with torch.no_grad():
        full = ours(input_ids=ids).logits
        out = ours(input_ids=ids[:, :4], use_cache=True)
        steps = [out.logits]
        for t in range(4, ids.shape[1]):
            out = ours(input_ids=ids[:, t:t + 1], past_key_values=out.past_key_values, use_cache=True)
            steps.append(out.logits)
        ref = theirs(input_ids=ids, use_cache=False).logits  # with their cache on, distances are all the last row's
    assert_close(torch.cat(steps, 1), full)
    assert_close(full, ref)
