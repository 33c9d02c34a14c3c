"""Export: torch.export with dynamic batch and sequence dims gives one program valid at every size (issue 13.5),
and `roberta.export` writes ONNX models that onnxruntime runs equal to eager on a padded batch."""
from __future__ import annotations

import pytest
import torch

from roberta.config import RobertaConfig
from roberta.modeling import RobertaModel


def _tiny(cls=RobertaModel, seed=0, **kw):
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=90, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=140, type_vocab_size=1, **kw)
    return cls(config).eval()


def _batch(batch, tokens, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 90, (batch, tokens), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, max(1, tokens // 2):] = 0  # the first text padded
    ids[mask == 0] = 1
    return ids, mask


@pytest.mark.parametrize("packed", [False, True])
def test_torch_export_dynamic_batch_and_sequence(packed):
    """Exported at 3x9 (one row padded) with packed weights or not, the program runs at 2x7 and 64x128 (more token
    rows than a sequence block: the block decision must not be baked in as a guard) and equals eager."""
    model = _tiny()
    if packed:
        model.pack_weights()
    batch, seq = torch.export.Dim("batch", min=1, max=1024), torch.export.Dim("seq", min=2, max=130)
    ids, mask = _batch(3, 9)
    with torch.no_grad():
        program = torch.export.export(model, (), {"input_ids": ids, "attention_mask": mask},
                                      dynamic_shapes={"input_ids": {0: batch, 1: seq},
                                                      "attention_mask": {0: batch, 1: seq}})
    for size in [(2, 7), (64, 128)]:
        ids, mask = _batch(*size, seed=size[0])
        with torch.no_grad():
            got = program.module()(input_ids=ids, attention_mask=mask)[0]
            want = model(input_ids=ids, attention_mask=mask).last_hidden_state
        assert got.shape == (*size, 32)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
