"""int8 quantization: torch's own quantize_dynamic sees every encoder Linear (issue 13.6), and roberta.quantization
(weight-only and dynamic-activation int8) stays within the accuracy gates of issue 15, saves and loads."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from roberta.config import RobertaConfig
from roberta.modeling import RobertaForMaskedLM


def _tiny_mlm(seed=0):
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=90, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=40, type_vocab_size=1)
    return RobertaForMaskedLM(config).eval()


@pytest.mark.parametrize("packed", [False, True])
def test_torch_quantize_dynamic_quantizes_every_encoder_linear(packed):
    """The encoder's matmuls are plain nn.Linear modules (the exact type quantize_dynamic's mapping looks up), and
    the fused residual path calls a swapped-in module as it is: 6 per layer + the LM head's 2, logits close."""
    model = _tiny_mlm()
    if packed:
        model.pack_weights()
    ids = torch.randint(3, 90, (4, 20), generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    swapped = [name for name, m in quantized.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert sorted(swapped) == sorted(name for name, m in model.named_modules() if isinstance(m, nn.Linear))
    assert len([n for n in swapped if ".encoder.layer." in f".{n}"]) == 2 * 6
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            want, got = model(input_ids=ids).logits, quantized(input_ids=ids).logits
        assert F.cosine_similarity(got.flatten(1), want.flatten(1), dim=-1).min() >= 0.99
