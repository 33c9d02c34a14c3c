"""The inference shortcuts of roberta.modeling.fused give the plain modules' numbers and touch no input."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from roberta.config import RobertaConfig
from roberta.modeling import RobertaForMaskedLM
from roberta.modeling import fused
from roberta.modeling.fused import dense_add_residual, dense_gelu, fast_inference, gelu_inplace, linear

needs_packing = pytest.mark.skipif(not fused.packing_available(),
                                   reason="this torch build has no oneDNN packed linear (torch.ops.mkldnn)")


def _tiny_mlm(seed=0):
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=90, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=40, type_vocab_size=1)
    return RobertaForMaskedLM(config).eval()


def test_dense_add_residual_equals_linear_plus_residual():
    torch.manual_seed(0)
    dense = torch.nn.Linear(24, 16)
    x, residual = torch.randn(3, 5, 24), torch.randn(3, 5, 16)
    kept = residual.clone()
    expected = dense(x) + residual
    with torch.no_grad():
        assert fast_inference(x)
        got = dense_add_residual(dense, x, residual)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert torch.equal(residual, kept)  # the caller's residual is not written to
    assert got.data_ptr() != residual.data_ptr()


def test_gelu_inplace_only_without_autograd():
    x = torch.randn(4, 8)
    expected = F.gelu(x)
    y = x.clone().requires_grad_()
    out = gelu_inplace(y * 1)  # autograd on: the out-of-place op, so backward works
    out.sum().backward()
    torch.testing.assert_close(out.detach(), expected, rtol=0, atol=0)
    buffer = x.clone()
    with torch.inference_mode():
        result = gelu_inplace(buffer)
    assert result.data_ptr() == buffer.data_ptr()
    assert torch.equal(result, expected)


def test_not_under_autocast():
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fast_inference(torch.randn(2))


def test_model_outputs_same_with_and_without_the_shortcuts():
    """The same model, inputs with padding: no_grad (shortcuts) vs grad enabled (plain modules), fp32 and
    under bf16 autocast (shortcuts off there), hidden states and logits."""
    model = _tiny_mlm()
    config = model.config
    ids = torch.randint(3, 90, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    ids[1, 8:] = config.pad_token_id
    plain = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    with torch.no_grad():
        fused = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    torch.testing.assert_close(fused.logits, plain.logits.detach(), rtol=0, atol=1e-5)
    # every layer's output, read after the whole forward: no later in-place step wrote into an earlier one
    for a, b in zip(fused.hidden_states, plain.hidden_states):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=1e-5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(low.float(), plain.logits.detach(), rtol=0, atol=0.1)


@needs_packing
@pytest.mark.parametrize("rows", [1, 7, 200, fused.PACKED_ROWS + 3, 3 * fused.PACKED_ROWS])  # > PACKED_ROWS: blocks
def test_packed_linear_gives_linear_numbers(rows):
    torch.manual_seed(rows)
    layer = torch.nn.Linear(48, 40)
    assert fused.pack(layer)
    x, residual = torch.randn(rows, 48), torch.randn(rows, 40)
    expected = F.linear(x, layer.weight, layer.bias)
    with torch.inference_mode():
        assert fused.packed_weight(layer, x) is not None
        torch.testing.assert_close(linear(layer, x), expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(linear(layer, x.view(1, rows, 48)), expected[None], rtol=0, atol=1e-5)
        torch.testing.assert_close(dense_gelu(layer, x), F.gelu(expected), rtol=0, atol=1e-5)
        torch.testing.assert_close(dense_add_residual(layer, x, residual), expected + residual, rtol=0, atol=1e-5)


@needs_packing
def test_packed_copy_is_never_served_stale():
    """A weight changed after packing (in place, by load_state_dict, by a dtype move) gives the new numbers."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 8)
    x = torch.randn(5, 16)
    assert fused.pack(layer)
    with torch.no_grad():
        layer.weight.mul_(-2.0)
    with torch.inference_mode():
        torch.testing.assert_close(linear(layer, x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=1e-5)
    assert not fused.is_packed(layer)  # the stale copy was dropped
    assert fused.pack(layer)
    fresh = torch.nn.Linear(16, 8)
    layer.load_state_dict(fresh.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(linear(layer, x), fresh(x), rtol=0, atol=1e-5)
    assert fused.pack(layer)
    layer.weight = torch.nn.Parameter(torch.randn(8, 16))  # a new weight tensor, same shape
    with torch.inference_mode():
        torch.testing.assert_close(linear(layer, x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=1e-5)
    assert fused.pack(layer)
    layer.double()
    with torch.inference_mode():
        torch.testing.assert_close(linear(layer, x.double()), F.linear(x.double(), layer.weight, layer.bias))
    assert not fused.is_packed(layer)  # dropped at the first call that found it stale
    assert not fused.pack(layer)  # only float32 is packed


@needs_packing
def test_pack_weights_keeps_state_dict_numbers_training_and_copies():
    model = _tiny_mlm()
    ids = torch.randint(3, 90, (2, 11))
    keys = list(model.state_dict())
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    assert model.pack_weights() == 2 * 6  # query, key, value, attention output, FFN in and out per layer
    assert list(model.state_dict()) == keys
    with torch.inference_mode():
        torch.testing.assert_close(model(input_ids=ids).logits, plain, rtol=0, atol=1e-5)
    # autograd on: the plain path, gradients as usual
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert model.roberta.encoder.layer[0].attention.self.query.weight.grad is not None
    twin = copy.deepcopy(model)  # the opaque packed copies are left behind, not copied
    assert not any(fused.is_packed(m) for m in twin.modules())
    with torch.inference_mode():
        torch.testing.assert_close(twin(input_ids=ids).logits, plain, rtol=0, atol=1e-5)
    assert model.pack_weights(False) == 0
    assert not any(fused.is_packed(m) for m in model.modules())


def _padded_batch(batch=5, tokens=13, seed=1):
    """ids and attention mask of `batch` texts of different lengths (the shortest padded by 7)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 90, (batch, tokens), generator=gen)
    mask = torch.ones_like(ids)
    for row in range(batch):
        mask[row, tokens - (row * 7) // max(batch - 1, 1):] = 0
    ids[mask == 0] = 1  # pad_token_id
    return ids, mask


@needs_packing
@pytest.mark.parametrize("block_rows", [40, 13, 8])  # 3 texts per block; one per block; a text > a block
def test_layers_in_sequence_blocks_give_the_whole_batch_numbers(monkeypatch, block_rows):
    """Packed inference over more rows than a block runs each layer a few texts at a time (and reuses a spent
    layer's buffer): hidden states, only-some-rows logits, and several calls in a row all match the plain model."""
    from roberta.modeling.encoder import RobertaLayer

    model = _tiny_mlm()
    ids, mask = _padded_batch()
    with torch.inference_mode():
        plain = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        where = ids == ids[0, 3]
        where[:, 2] = True
        plain_rows = model(input_ids=ids, attention_mask=mask, logits_mask=where).logits
    calls = []
    original = RobertaLayer._forward_in_sequence_blocks
    monkeypatch.setattr(RobertaLayer, "_forward_in_sequence_blocks",
                        lambda self, *args, **kw: calls.append(args[0].shape) or original(self, *args, **kw))
    monkeypatch.setattr(fused, "PACKED_ROWS", block_rows)
    model.pack_weights()
    with torch.inference_mode():
        first = model(input_ids=ids, attention_mask=mask)
        kept = first.logits.clone()
        assert len(calls) == 2  # both layers took the block path
        got_rows = model(input_ids=ids, attention_mask=mask, logits_mask=where).logits
        second = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    torch.testing.assert_close(first.logits, plain.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_rows, plain_rows, rtol=0, atol=1e-5)
    assert torch.equal(first.logits, kept)  # later calls did not write into an earlier call's result
    assert len({t.data_ptr() for t in second.hidden_states}) == len(second.hidden_states)  # no layer shares a buffer
    for a, b in zip(second.hidden_states, plain.hidden_states):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@needs_packing
def test_sequence_blocks_only_where_the_whole_batch_is_not_needed(monkeypatch):
    """Attention probs, a head mask or autograd need the plain whole-batch layer; it gives the same numbers."""
    model = _tiny_mlm()
    ids, mask = _padded_batch()
    with torch.inference_mode():
        plain = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    monkeypatch.setattr(fused, "PACKED_ROWS", 16)
    model.pack_weights()
    layer = model.roberta.encoder.layer[0]
    hidden = torch.randn(5, 13, 32)
    with torch.inference_mode():
        assert layer._in_sequence_blocks(hidden, None, None, None, False)
        assert not layer._in_sequence_blocks(hidden, torch.ones(4), None, None, False)
        assert not layer._in_sequence_blocks(hidden, None, None, None, True)
        assert not layer._in_sequence_blocks(hidden[:1, :10], None, None, None, False)  # fits one block
        got = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert not layer._in_sequence_blocks(hidden, None, None, None, False)  # autograd on
    torch.testing.assert_close(got.logits, plain.logits, rtol=0, atol=1e-5)
    for a, b in zip(got.attentions, plain.attentions):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
