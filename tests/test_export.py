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


# ---- ONNX: roberta.export / `roberta export` ----------------------------------------------------------------
def _needs_onnx():
    pytest.importorskip("onnxruntime", reason="ONNX export needs the onnx extra: pip install 'roberta[onnx]'")
    pytest.importorskip("onnxscript", reason="ONNX export needs the onnx extra: pip install 'roberta[onnx]'")


def _ort_run(path, ids, mask, names):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert all(isinstance(d, str) for i in session.get_inputs() for d in i.shape)  # dynamic batch and sequence
    return session.run(list(names), {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})


def test_roberta_export_cli_writes_a_verified_onnx_model_and_the_tokenizer(tmp_path, capsys):
    """`roberta export` on the embedded fill-mask model: model.onnx + config + tokenizer files; onnxruntime on a
    padded batch of a new shape equals eager within 1e-4 (checked here again, independently of the export's check)."""
    _needs_onnx()
    from roberta.cli import main
    from roberta.embedded import default_model_path
    from roberta.modeling import RobertaForMaskedLM
    from roberta.tokenization import RobertaTokenizerFast

    out = tmp_path / "onnx"
    assert main(["export", "--model", default_model_path(), "--task", "fill-mask", "--format", "onnx",
                 "--output", str(out)]) == 0
    assert "max abs diff" in capsys.readouterr().out
    assert {"model.onnx", "config.json", "tokenizer.json", "vocab.json", "merges.txt"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]
    tokenizer = RobertaTokenizerFast.from_pretrained(out)
    batch = tokenizer(["Hello <mask>!", "A much longer sentence, with a <mask> in its middle, padded less."],
                      padding=True, return_tensors="pt")
    model = RobertaForMaskedLM.from_pretrained(default_model_path())
    (logits,) = _ort_run(out / "model.onnx", batch["input_ids"], batch["attention_mask"], ["logits"])
    with torch.no_grad():
        want = model(**batch).logits
    keep = batch["attention_mask"].bool()
    torch.testing.assert_close(torch.from_numpy(logits)[keep], want[keep], rtol=0, atol=1e-4)


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_export_api_question_answering_two_outputs(tmp_path, quantize):
    _needs_onnx()
    from roberta.export import export_onnx
    from roberta.modeling import RobertaForQuestionAnswering

    model = _tiny(RobertaForQuestionAnswering)
    result = export_onnx(model, tmp_path, task="question-answering", quantize=quantize)
    assert result.output_names == ("start_logits", "end_logits") and result.quantize == quantize
    ids, mask = _batch(4, 21, seed=5)
    got = _ort_run(result.path, ids, mask, result.output_names)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    for g, w in zip(got, (out.start_logits, out.end_logits)):
        g = torch.from_numpy(g)
        if quantize is None:
            assert result.max_abs_diff <= 1e-4
            torch.testing.assert_close(g[mask.bool()], w[mask.bool()], rtol=0, atol=1e-4)
        else:  # onnxruntime's int8: close, not equal
            assert torch.nn.functional.cosine_similarity(g, w, dim=-1).min() > 0.99
    if quantize == "int8":  # int8 weights: a smaller file
        import onnx

        graph = onnx.load(result.path).graph
        assert any(node.op_type in ("DynamicQuantizeLinear", "MatMulInteger") for node in graph.node)


def test_export_refuses_bad_requests(tmp_path):
    _needs_onnx()
    from roberta.export import export_onnx
    from roberta.quantization import quantize
    from roberta.modeling import RobertaForMaskedLM

    with pytest.raises(KeyError, match="Unknown task 'summarization'"):
        export_onnx(_tiny(RobertaForMaskedLM), tmp_path, task="summarization")
    with pytest.raises(ValueError, match="quantize='int4'"):
        export_onnx(_tiny(RobertaForMaskedLM), tmp_path, quantize="int4")
    with pytest.raises(ValueError, match="ONNX cannot express"):
        export_onnx(quantize(_tiny(RobertaForMaskedLM), "int8"), tmp_path)
    # refused before any work: an opset torch would silently raise to 18 (after an internal traceback), a
    # negative or NaN tolerance (no export could pass it), an output folder that is a file (was: File exists, after)
    with pytest.raises(ValueError, match="opset must be an integer >= 18 .* got 3"):
        export_onnx(_tiny(RobertaForMaskedLM), tmp_path, opset=3)
    for atol in (-1, float("nan")):
        with pytest.raises(ValueError, match=f"atol must be a finite number >= 0, got {atol}"):
            export_onnx(_tiny(RobertaForMaskedLM), tmp_path, atol=atol)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=f"output folder {tmp_path / 'file'} is a file"):
        export_onnx(_tiny(RobertaForMaskedLM), tmp_path / "file")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_export_sweeps_a_killed_exports_temp_folder(tmp_path):
    _needs_onnx()
    from roberta.export import export_onnx
    from roberta.modeling import RobertaForMaskedLM

    (tmp_path / ".tmp-export-dead1234").mkdir()
    (tmp_path / ".tmp-export-dead1234" / ".writer.lock").write_text("")  # its writer is gone: the lock is free
    export_onnx(_tiny(RobertaForMaskedLM), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.onnx"]
