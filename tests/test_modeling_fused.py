"""The inference shortcuts of roberta.modeling.fused give the plain modules' numbers and touch no input."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from roberta.config import RobertaConfig
from roberta.modeling import RobertaForMaskedLM
from roberta.modeling.fused import dense_add_residual, fast_inference, gelu_inplace


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
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=90, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=40, type_vocab_size=1)
    model = RobertaForMaskedLM(config).eval()
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
