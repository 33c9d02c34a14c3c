"""Export a model to ONNX with dynamic batch and sequence axes, then verify it against eager on a padded batch.

    from roberta.export import export_onnx
    result = export_onnx("path/to/model", "exported/", task="fill-mask")   # quantize="int8" for an int8 model
    print(result.max_abs_diff)

The folder gets model.onnx, config.json and the tokenizer files. The exported graph takes `input_ids` and
`attention_mask` (B, T), int64, and returns the task's outputs (fill-mask / token / sequence classification:
`logits`; question-answering: `start_logits`, `end_logits`; feature-extraction: `last_hidden_state`). The check
runs onnxruntime on a batch of another size than the export example, with padded rows, and compares with our
eager forward: float32 must match within `atol` (1e-4), or the export fails and nothing is written. With
quantize="int8" the float32 graph is quantized by onnxruntime's own dynamic int8 quantizer (int8 weights,
activations quantized per call, as `Int8Config("dynamic")` does in our runtime); its check compares with the
float32 eager output by cosine similarity (>= 0.99 per row) and reports the max abs diff.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from dataclasses import dataclass

from ._io import held_temp_dir, move_into_place, publish_modes, sweep_abandoned_temp_dirs

logger = logging.getLogger(__name__)

MIN_OPSET = 18  # the oldest opset torch's dynamo ONNX exporter writes
_TEMP_RE = re.compile(r"^\.tmp-export-[a-z0-9_]{8}$")

# task -> the output fields the exported graph returns, in order
TASK_OUTPUTS = {
    "fill-mask": ("logits",),
    "text-classification": ("logits",),
    "token-classification": ("logits",),
    "question-answering": ("start_logits", "end_logits"),
    "feature-extraction": ("last_hidden_state",),
}
FORMATS = ("onnx",)
INT8_MIN_COSINE = 0.99


class ExportError(RuntimeError):
    """The exported model does not give our eager model's numbers (nothing was written)."""


@dataclass
class ExportResult:
    path: str               # the .onnx file
    max_abs_diff: float     # onnxruntime vs eager on the check batch
    output_names: tuple
    quantize: str | None


def _outputs_module(model, names: tuple):
    """A module (input_ids, attention_mask) -> the task's output tensors as a tuple: the graph's signature.
    (Defined here so that `import roberta.export`, and the CLI's parser, do not import torch.)"""
    from torch import nn

    class Outputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
            return tuple(out[name] for name in names)

    return Outputs().eval()


def _require(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise ImportError(f"exporting to ONNX needs {module}: pip install 'roberta[onnx]'") from err


def _load(model, task: str, tokenizer):
    """(model in eval mode, tokenizer or None) from objects or a folder / hub id."""
    from roberta.pipelines import _TASKS, normalize_task

    if isinstance(model, (str, os.PathLike)):
        from importlib import import_module

        auto_class = getattr(import_module("roberta.auto"), _TASKS[normalize_task(task)][2])
        source = os.fspath(model)
        model = auto_class.from_pretrained(source)
        if tokenizer is None:
            tokenizer = source
    if isinstance(tokenizer, (str, os.PathLike)):
        from roberta.auto import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(os.fspath(tokenizer))
    return model.eval(), tokenizer


def check_batch(config, batch: int, tokens: int, seed: int = 0):
    """Random (batch, tokens) ids `<s> ... </s>` and their mask (int64 tensors), every row but the first padded."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    pad, bos, eos = config.pad_token_id, config.bos_token_id or 0, config.eos_token_id or 2
    ids = torch.randint(max(pad, bos, eos) + 1, config.vocab_size, (batch, tokens), generator=gen)
    mask = torch.ones_like(ids)
    for row in range(1, batch):
        length = max(2, tokens - row * tokens // (batch + 1))
        mask[row, length:] = 0
        ids[row, length - 1] = eos
    ids[0, -1] = eos
    ids[:, 0] = bos
    ids[mask == 0] = pad
    return ids, mask


def export_onnx(model, output_dir, task: str = "fill-mask", tokenizer=None, quantize: str | None = None,
                opset: int = 18, atol: float = 1e-4) -> ExportResult:
    """Export `model` (object, folder or hub id) for `task` into `output_dir` and verify it (module docstring).
    Raises ExportError when onnxruntime's output is off, ValueError on a bad task / quantize value."""
    if task not in TASK_OUTPUTS:
        from roberta.pipelines import normalize_task

        task = normalize_task(task)  # aliases (ner, sentiment-analysis); KeyError names the tasks
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize={quantize!r}: only 'int8' (onnxruntime dynamic int8) is supported")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an integer >= {MIN_OPSET} (torch's ONNX exporter writes opset {MIN_OPSET} "
                         f"and newer; an older one is silently written as {MIN_OPSET}), got {opset!r}")
    if not (isinstance(atol, (int, float)) and math.isfinite(atol) and atol >= 0):
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):  # found before the export, not after
        raise NotADirectoryError(f"output folder {os.fspath(output_dir)} is a file")
    _require("onnx")
    ort = _require("onnxruntime")
    model, tokenizer = _load(model, task, tokenizer)
    from roberta.quantization import is_quantized

    if is_quantized(model):
        raise ValueError("this model holds roberta int8 layers, which ONNX cannot express; export the float "
                         "model with quantize='int8' instead")
    import torch

    names = TASK_OUTPUTS[task]
    wrapper = _outputs_module(model, names)
    limit = min(model.config.max_position_embeddings - model.config.pad_token_id - 1, 512)
    example = check_batch(model.config, 2, min(16, limit), seed=0)
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    sweep_abandoned_temp_dirs(output_dir, _TEMP_RE)  # left by an export killed here
    with held_temp_dir(".tmp-export-", output_dir) as tmp:
        path = os.path.join(tmp, "model.onnx")
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=limit)
        with torch.no_grad():
            torch.onnx.export(wrapper, example, path, dynamo=True, opset_version=opset, external_data=False,
                              input_names=["input_ids", "attention_mask"], output_names=list(names),
                              dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}), verbose=False)
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            fp32_path, path = path, os.path.join(tmp, "model_int8.onnx")
            quantize_dynamic(fp32_path, path, weight_type=QuantType.QInt8)
        diff = _verify(ort, path, wrapper, model.config, names, quantize, atol, limit)
        final = os.path.join(output_dir, "model.onnx")
        publish_modes(tmp)
        move_into_place(path, final)
        model.config.to_json_file(os.path.join(output_dir, "config.json"))
        if tokenizer is not None:
            tokenizer.save_pretrained(output_dir)
    logger.info("Exported %s (%s) to %s; onnxruntime vs eager max abs diff %.3g", task, quantize or "float32",
                final, diff)
    return ExportResult(final, diff, names, quantize)


def _verify(ort, path, wrapper, config, names, quantize, atol, limit) -> float:
    """onnxruntime on a padded batch of another shape than the export example vs eager. -> max abs diff."""
    import torch

    ids, mask = check_batch(config, 3, min(11, limit), seed=1)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(list(names), {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    with torch.no_grad():
        want = wrapper(ids, mask)
    diff = 0.0
    for name, g, w in zip(names, got, want):
        g, w = torch.from_numpy(g), w.float()
        if g.shape != w.shape:
            raise ExportError(f"onnxruntime's {name} has shape {tuple(g.shape)}, eager's {tuple(w.shape)}")
        if quantize is None:
            rows = mask.bool() if g.dim() > 2 or (g.dim() == 2 and g.shape == mask.shape) else slice(None)
            diff = max(diff, (g - w)[rows].abs().max().item())
            continue
        diff = max(diff, (g - w).abs().max().item())
        cosine = torch.nn.functional.cosine_similarity(g.flatten(1), w.flatten(1), dim=-1).min().item()
        if cosine < INT8_MIN_COSINE:
            raise ExportError(f"the int8 ONNX model's {name} is too far from float32 eager: cosine {cosine:.4f} "
                              f"< {INT8_MIN_COSINE}")
    if quantize is None and diff > atol:
        raise ExportError(f"onnxruntime output differs from eager by {diff:.3g} (> atol {atol}) on a padded batch")
    return diff


# ---- `roberta export` -------------------------------------------------------------------------------------
def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export", help="export a model to ONNX (dynamic batch and sequence axes), verified against eager",
        description="Export a model to ONNX with dynamic batch and sequence axes, write the tokenizer and config "
                    "beside it, and check onnxruntime against our eager forward on a padded batch (max abs diff "
                    "printed; float32 must be within --atol).",
        epilog="example: roberta export --model ./my-model --task fill-mask --format onnx --output exported/")
    parser.add_argument("--model", default=None, metavar="PATH_OR_ID",
                        help="model folder or hub id (default for fill-mask: the embedded model)")
    parser.add_argument("--task", default="fill-mask", metavar="TASK",
                        help=f"one of: {', '.join(TASK_OUTPUTS)} (default fill-mask)")
    parser.add_argument("--format", default="onnx", choices=FORMATS, help="onnx (the only format for now)")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder to write model.onnx and the tokenizer into")
    parser.add_argument("--quantize", default=None, choices=["int8"], help="int8: onnxruntime dynamic int8 model")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    parser.add_argument("--atol", type=float, default=1e-4, help="float32 check tolerance (default 1e-4)")
    parser.set_defaults(func=export_command)
    return parser


def export_command(args) -> int:
    model = args.model
    if model is None:
        if args.task != "fill-mask":
            raise ValueError(f"--model is required for --task {args.task} (only fill-mask has a default model)")
        from roberta.embedded import default_model_path

        model = default_model_path()
    try:
        result = export_onnx(model, args.output, task=args.task, quantize=args.quantize, opset=args.opset,
                             atol=args.atol)
    except ExportError as err:
        print(f"roberta export: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {result.path} ({args.quantize or 'float32'}); onnxruntime vs eager on a padded batch: "
          f"max abs diff {result.max_abs_diff:.3g}")
    return 0
