"""ONNX export of our model with an unpadded example input (both exporters), run in onnxruntime on a padded batch
of another shape: equal to eager. The value shortcuts (all-ones mask, rows that see no key) must not be baked
into the graph."""
import pytest
import torch

from test_modeling_helpers import TINY, twins

ort = pytest.importorskip("onnxruntime", reason="ONNX tests need onnxruntime: pip install 'roberta[clients]'")
pytest.importorskip("onnx", reason="ONNX tests need onnx: pip install 'roberta[clients]'")


class Logits(torch.nn.Module):
    """(input_ids, attention_mask) -> logits: the two named inputs and one output an ONNX graph takes."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_onnx_export_from_unpadded_example_masks_padding(tmp_path, dynamo):
    if dynamo:
        pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript: pip install 'roberta[clients]'")
    ours, _ = twins("RobertaForMaskedLM")
    g = torch.Generator().manual_seed(1)
    example = torch.randint(3, TINY["vocab_size"], (2, 7), generator=g)  # no padding, mask all ones
    ids = torch.randint(3, TINY["vocab_size"], (3, 9), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 5:], mask[1, 5:] = 1, 0
    names = ["input_ids", "attention_mask"]
    if dynamo:
        dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("tokens")}
        shapes = dict(dynamic_shapes={name: dims for name in names})
    else:
        shapes = dict(dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names})
    path = str(tmp_path / "model.onnx")
    torch.onnx.export(Logits(ours).eval(), (example, torch.ones_like(example)), path, input_names=names,
                      output_names=["logits"], dynamo=dynamo, **shapes)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    with torch.no_grad():
        expected = ours(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(torch.from_numpy(got), expected, atol=1e-4, rtol=1e-4)
