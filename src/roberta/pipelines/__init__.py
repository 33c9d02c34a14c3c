"""`pipeline(task, model=..., tokenizer=...)`: transformers' pipeline factory for the RoBERTa tasks.

    >>> from roberta.pipelines import pipeline
    >>> fill = pipeline("fill-mask")                      # the embedded default model
    >>> fill("The capital of France is <mask>.", top_k=3)

Tasks: fill-mask, text-classification (alias sentiment-analysis), token-classification (alias ner),
question-answering, feature-extraction.
"""
from __future__ import annotations

import logging
import os
import warnings

logger = logging.getLogger(__name__)

# task -> (module, pipeline class, roberta.auto model class)
_TASKS = {
    "fill-mask": ("fill_mask", "FillMaskPipeline", "AutoModelForMaskedLM"),
    "text-classification": ("text_classification", "TextClassificationPipeline", "AutoModelForSequenceClassification"),
    "token-classification": ("token_classification", "TokenClassificationPipeline", "AutoModelForTokenClassification"),
    "question-answering": ("question_answering", "QuestionAnsweringPipeline", "AutoModelForQuestionAnswering"),
    "feature-extraction": ("feature_extraction", "FeatureExtractionPipeline", "AutoModel"),
}
TASK_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}
SUPPORTED_TASKS = tuple(_TASKS)


def get_supported_tasks() -> list[str]:
    return sorted([*_TASKS, *TASK_ALIASES])


def normalize_task(task: str) -> str:
    name = TASK_ALIASES.get(task, task)
    if name not in _TASKS:
        raise KeyError(f"Unknown task {task!r}; available tasks: {', '.join(get_supported_tasks())}")
    return name


def pipeline_class(task: str):
    from importlib import import_module

    module, cls, _ = _TASKS[normalize_task(task)]
    return getattr(import_module(f"{__name__}.{module}"), cls)


def _check_text_only(task: str, **parts) -> None:
    given = [name for name, value in parts.items() if value is not None]
    if given:
        raise ValueError(f"{task}: RoBERTa pipelines are text-only and take a tokenizer; got {', '.join(given)} "
                         "(pass None or leave it out)")


def pipeline(
    task: str,
    model=None,
    tokenizer=None,
    device=None,
    dtype=None,
    batch_size: int | None = None,
    *,
    config=None,
    revision: str | None = None,
    token=None,
    use_fast: bool = True,
    model_kwargs: dict | None = None,
    device_map=None,
    pack_weights: bool = True,
    quantization_config=None,
    feature_extractor=None,
    image_processor=None,
    processor=None,
    framework: str | None = None,
    trust_remote_code: bool | None = None,
    **kwargs,
) -> "Pipeline":
    """Build a task pipeline. The model is loaded once (roberta.auto) and runs under torch.inference_mode.

    model: a folder, a hub id, or a model object (None: the embedded default model, fill-mask only).
    tokenizer: likewise; by default the model's own folder. device: -1 / "cpu", N / "cuda:N", or a torch.device
    (None: the first GPU if there is one, else CPU). dtype: a torch dtype or "float16" / "bfloat16" / "auto"
    (`torch_dtype=` is accepted too). pack_weights: on CPU in float32, keep oneDNN-packed copies of the encoder's
    matmul weights (faster at small batches, the weights' memory again; see RobertaPreTrainedModel.pack_weights).
    quantization_config: int8 for the encoder (e.g. "int8" or roberta.Int8Config(); see roberta.quantization).
    Other kwargs (top_k, targets, aggregation_strategy, ...) become call defaults. transformers' keywords for other
    modalities (feature_extractor, image_processor, processor) are accepted as None; framework as None or "pt";
    trust_remote_code has nothing to trust here (no remote code is ever run).
    """
    _check_text_only(task, feature_extractor=feature_extractor, image_processor=image_processor,
                     processor=processor)
    if framework not in (None, "pt"):
        raise ValueError(f"framework={framework!r}: roberta pipelines run PyTorch models only; pass framework='pt' or "
                         "leave it out")
    from .base import resolve_device, resolve_dtype

    task = normalize_task(task)
    if "torch_dtype" in kwargs:
        legacy = kwargs.pop("torch_dtype")
        if dtype is not None and legacy is not None:
            raise ValueError("both dtype and torch_dtype were given; use dtype only")
        warnings.warn("`torch_dtype` is deprecated! Use `dtype` instead!", FutureWarning, stacklevel=2)
        dtype = legacy
    dtype = resolve_dtype(dtype)
    if device is not None and device_map is not None:
        logger.warning("Both `device` and `device_map` were given; `device` wins.")
        device_map = None
    torch_device = resolve_device(device) if device is not None else None
    if torch_device is None and device_map is None and isinstance(model, (str, os.PathLike, type(None))):
        torch_device = resolve_device(None)  # a model we load goes to the first GPU if there is one

    if model is None:
        if task != "fill-mask":
            raise ValueError(f"{task}: no default model ships with roberta; pass model= (a folder or hub id)")
        from roberta.embedded import default_model_path

        model = default_model_path()
    if tokenizer is None:
        if not isinstance(model, (str, os.PathLike)):
            source = getattr(getattr(model, "config", None), "_name_or_path", None) or getattr(model, "name_or_path", None)
            if not source:
                raise ValueError(f"{task}: a tokenizer is required when model is an object without a source path")
            tokenizer = source
        else:
            tokenizer = model
    hub = {"revision": revision, "token": token}
    if isinstance(tokenizer, (str, os.PathLike)):
        from roberta.auto import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(os.fspath(tokenizer), use_fast=use_fast, **hub)
    if isinstance(model, (str, os.PathLike)):
        from importlib import import_module

        auto_class = getattr(import_module("roberta.auto"), _TASKS[task][2])
        load_kwargs = dict(model_kwargs or {})
        if dtype is not None:
            load_kwargs["dtype"] = dtype
        if device_map is not None:
            load_kwargs["device_map"] = device_map
        if config is not None:
            load_kwargs["config"] = config
        if quantization_config is not None:
            load_kwargs["quantization_config"] = quantization_config
        model = auto_class.from_pretrained(os.fspath(model), **hub, **load_kwargs)
    else:
        if dtype is not None and dtype != "auto":
            model = model.to(dtype)
        if quantization_config is not None:
            from roberta.quantization import quantize

            model = quantize(model, quantization_config)
    return pipeline_class(task)(model, tokenizer, device=torch_device, batch_size=batch_size,
                                pack_weights=pack_weights, **kwargs)


def __getattr__(name):  # torch is imported only when a pipeline is really built (keeps `roberta --help` fast)
    if name in ("Pipeline", "PipelineException"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["pipeline", "Pipeline", "PipelineException", "SUPPORTED_TASKS", "TASK_ALIASES", "get_supported_tasks"]
