"""FlaxRoberta* against our PyTorch classes on the same weights (fp32, atol 1e-5): every head, padding on
either side, hidden states and attentions, head_mask, the causal cache, cross-attention; compile reuse,
bfloat16 compute, input errors, output access, lazy import."""
from __future__ import annotations


import numpy as np
import pytest

from test_flax_helpers import DECODER, HEADS, assert_close, batch, config, twins

import jax  # noqa: E402  (test_flax_helpers skips the module without it)
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402

import roberta  # noqa: E402

OUTPUT_FIELDS = {
    "RobertaModel": ["last_hidden_state", "pooler_output"],
    "RobertaForQuestionAnswering": ["start_logits", "end_logits"],
}


def _inputs(name, padding):
    ids, mask = batch(padding)
    if name == "RobertaForMultipleChoice":  # (B, N, T): the batch's rows as 3 choices of 1 example, twice
        ids, mask = np.stack([ids, ids[::-1]]), np.stack([mask, mask[::-1]])
    return ids, mask


@pytest.mark.parametrize("padding", ["right", "left"])
@pytest.mark.parametrize("name", HEADS)
def test_every_head_matches_pytorch(name, padding):
    extra = DECODER if name == "RobertaForCausalLM" else ()
    pt, fx, _ = twins(name, extra)
    ids, mask = _inputs(name, padding)
    with torch.no_grad():
        want = pt(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), output_hidden_states=True,
                  output_attentions=True)
    got = fx(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    for field in OUTPUT_FIELDS.get(name, ["logits"]):
        assert_close(got[field], want[field])
    assert len(got.hidden_states) == pt.config.num_hidden_layers + 1
    assert_close(got.hidden_states, want.hidden_states)
    assert_close(got.attentions, want.attentions)


def test_head_mask_and_token_type_and_position_ids_match_pytorch():
    pt, fx, _ = twins("RobertaModel")
    ids, mask = batch("right")
    head_mask = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], dtype=np.float32)
    positions = np.broadcast_to(np.arange(2, 2 + ids.shape[1]), ids.shape)
    with torch.no_grad():
        want = pt(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), head_mask=torch.tensor(head_mask),
                  token_type_ids=torch.zeros(ids.shape, dtype=torch.long), position_ids=torch.tensor(positions),
                  output_attentions=True)
    got = fx(ids, attention_mask=mask, head_mask=head_mask, token_type_ids=np.zeros_like(ids), position_ids=positions,
             output_attentions=True)
    assert_close(got.last_hidden_state, want.last_hidden_state)
    assert float(jnp.abs(got.attentions[0][:, 1]).max()) == 0.0  # head 1 of layer 0 switched off
    assert_close(got.attentions, want.attentions)


def test_all_padding_row_is_zeroed_like_pytorch():
    """A row with no token to attend to gives zeros from attention (PyTorch twin), not NaN or an average."""
    pt, fx, _ = twins("RobertaModel")
    ids, mask = batch("right")
    mask[2] = 0
    with torch.no_grad():
        want = pt(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state
    got = fx(ids, attention_mask=mask).last_hidden_state
    assert np.isfinite(np.asarray(got)).all()
    assert_close(got, want)


def test_causal_cache_steps_equal_pytorch_cache_and_full_forward():
    pt, fx, _ = twins("RobertaForCausalLM", DECODER)
    ids, mask = batch("left", T=8)  # left padding: the prompt ends at the same column in every row
    B, T = ids.shape
    max_length = T + 2
    with torch.no_grad():
        full = pt(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
        out = pt(input_ids=torch.tensor(ids[:, :5]), attention_mask=torch.tensor(mask[:, :5]), use_cache=True)
        pt_steps, past = [out.logits], out.past_key_values
        for t in range(5, T):
            out = pt(input_ids=torch.tensor(ids[:, t:t + 1]), attention_mask=torch.tensor(mask[:, :t + 1]),
                     past_key_values=past, use_cache=True)
            pt_steps.append(out.logits)
            past = out.past_key_values
    long_mask = np.concatenate([mask, np.ones((B, max_length - T), mask.dtype)], axis=1)  # (B, max_length)
    cache = fx.init_cache(B, max_length)
    out = fx(ids[:, :5], attention_mask=long_mask, past_key_values=cache)
    steps = [out.logits]
    for t in range(5, T):
        out = fx(ids[:, t:t + 1], attention_mask=long_mask, past_key_values=out.past_key_values)
        steps.append(out.logits)
    assert int(out.past_key_values["roberta"]["encoder"]["layer"]["0"]["attention"]["self"]["cache_index"]) == T
    assert_close(jnp.concatenate(steps, axis=1), torch.cat(pt_steps, 1))
    # row 0 has no padding: step by step equals one full forward (padded rows count cached pads as positions,
    # in PyTorch too, so only the row without padding is compared to the full run)
    assert_close(jnp.concatenate(steps, axis=1)[0], full[0])
    assert fx._forward._cache_size() >= 2
    before = fx._forward._cache_size()
    fx(ids[:, 5:6], attention_mask=long_mask, past_key_values=out.past_key_values)  # same shapes: no new compile
    assert fx._forward._cache_size() == before


def test_cross_attention_decoder_matches_pytorch():
    extra = (("is_decoder", True), ("add_cross_attention", True))
    pt, fx, _ = twins("RobertaForCausalLM", extra)
    ids, mask = batch("right")
    rng = np.random.default_rng(1)
    enc = rng.standard_normal((ids.shape[0], 5, 32)).astype(np.float32)
    enc_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    with torch.no_grad():
        want = pt(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), encoder_hidden_states=torch.tensor(enc),
                  encoder_attention_mask=torch.tensor(enc_mask), output_attentions=True)
    got = fx(ids, attention_mask=mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask, output_attentions=True)
    assert_close(got.logits, want.logits)
    assert_close(got.cross_attentions, want.cross_attentions)


def test_same_shapes_compile_once():
    _, fx, _ = twins("RobertaForSequenceClassification")
    fresh = type(fx)(fx.config)  # its own jit cache
    ids, mask = batch("right")
    first = fresh(ids, attention_mask=mask).logits
    assert fresh._forward._cache_size() == 1
    ids2, mask2 = batch("left", seed=3)  # other values, same shapes and dtypes
    fresh(ids2, attention_mask=mask2)
    fresh(jnp.asarray(ids2), attention_mask=jnp.asarray(mask2))  # device arrays too
    fresh(ids2.astype(np.int32), attention_mask=mask2.astype(np.int32))
    assert fresh._forward._cache_size() == 1
    fresh(ids[:, :5], attention_mask=mask[:, :5])  # a new shape compiles once more
    assert fresh._forward._cache_size() == 2
    np.testing.assert_array_equal(np.asarray(fresh(ids, attention_mask=mask).logits), np.asarray(first))


def test_bfloat16_compute():
    pt, fx32, folder = twins("RobertaForMaskedLM")
    fx16 = roberta.FlaxRobertaForMaskedLM.from_pretrained(folder, dtype=jnp.bfloat16)
    ids, mask = batch("right")
    logits = fx16(ids, attention_mask=mask).logits
    assert logits.dtype == jnp.bfloat16
    assert jax.tree_util.tree_leaves(fx16.params)[0].dtype == jnp.float32  # params stay fp32; compute is bf16
    ref = np.asarray(fx32(ids, attention_mask=mask).logits)
    err = np.abs(np.asarray(logits, dtype=np.float32) - ref).max()
    assert 0 < err < 0.05 * np.abs(ref).max()  # bf16 rounding, not garbage
    assert fx16.to_bf16(fx16.params)["lm_head"]["bias"].dtype == jnp.bfloat16


def test_outputs_give_attribute_key_and_tuple_access():
    _, fx, _ = twins("RobertaForQuestionAnswering")
    ids, mask = batch("right")
    out = fx(ids, attention_mask=mask)
    assert out.keys() == ["start_logits", "end_logits"] and out[0] is out.start_logits
    assert out["end_logits"] is out.end_logits and out.hidden_states is None
    as_tuple = fx(ids, attention_mask=mask, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
    np.testing.assert_array_equal(np.asarray(as_tuple[1]), np.asarray(out.end_logits))
    jitted = jax.jit(lambda p, i: fx(i, params=p))(fx.params, ids)  # inside a user's jit; outputs are pytrees
    np.testing.assert_allclose(np.asarray(jitted.start_logits), np.asarray(fx(ids).start_logits), atol=1e-6)


def test_input_errors_are_clear():
    _, fx, _ = twins("RobertaModel")
    ids, mask = batch("right")
    with pytest.raises(ValueError, match="token_type_ids contains 1.*type_vocab_size=1.*</s></s>"):
        fx(ids, token_type_ids=np.ones_like(ids))
    with pytest.raises(ValueError, match="input_ids contains 99, outside the embedding table"):
        fx(np.full_like(ids, 99))
    with pytest.raises(ValueError, match="longer than this model's maximum of 62 tokens"):
        fx(np.full((1, 63), 5))
    with pytest.raises(ValueError, match=r"input_ids must be 2-D \(batch, tokens\)"):
        fx(ids[0])
    with pytest.raises(ValueError, match=r"attention_mask has shape \(3, 4\) but \(batch, keys\) = \(3, 9\)"):
        fx(ids, attention_mask=mask[:, :4])
    with pytest.raises(ValueError, match="init_cache needs|has no cache: build it with config.is_decoder=True"):
        fx.init_cache(1, 8)
    with pytest.raises(ValueError, match="train=True applies dropout, which needs dropout_rng"):
        fx(ids, train=True)
    with pytest.raises(NotImplementedError, match="position_embedding_type='relative_key' is not supported"):
        roberta.FlaxRobertaModel(config(position_embedding_type="relative_key"))


def test_dropout_with_rng_is_random_and_reproducible():
    _, fx, _ = twins("RobertaModel")
    ids, mask = batch("right")
    a = fx(ids, attention_mask=mask, train=True, dropout_rng=jax.random.PRNGKey(0)).last_hidden_state
    b = fx(ids, attention_mask=mask, train=True, dropout_rng=jax.random.PRNGKey(0)).last_hidden_state
    c = fx(ids, attention_mask=mask, train=True, dropout_rng=jax.random.PRNGKey(1)).last_hidden_state
    plain = fx(ids, attention_mask=mask).last_hidden_state
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c)) and not np.allclose(np.asarray(a), np.asarray(plain))


def test_import_roberta_does_not_import_jax_and_missing_jax_names_the_extra():
    from _lazy_extras import missing_extra_message

    out = missing_extra_message("roberta.FlaxRobertaModel", ["jax", "flax"], "jax", before="roberta.RobertaConfig")
    assert "pip install 'roberta[flax]'" in out
