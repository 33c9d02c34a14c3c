"""Pipeline machinery shared by every task: device, dtype, batching, length sorting, input forms.

A task subclass splits its work in three steps, in data-flow order:
  preprocess(item, params)            -> list of features (one per window; dicts of python lists + metadata)
  _forward(input_ids, attention_mask, features, params) -> list of per-feature outputs (CPU tensors)
  postprocess(item, features, outputs, params) -> the user-facing result for that item

The base class does everything else: it accepts one input, a list, or a lazy iterable; it sorts the
features of a chunk by length and cuts them into batches of at most batch_size where padding would cost more
than another forward pass (length_batches); it pads on the right, runs the model under torch.inference_mode,
and hands results back in input order.
Shapes: B batch, T tokens, C hidden, V vocabulary.
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import torch

logger = logging.getLogger(__name__)

# Above this a tokenizer's model_max_length is "unset" (transformers stores int(1e30) when the config lacks it).
_HUGE_MAX_LENGTH = 1_000_000
# A lazy input is processed this many batches at a time: enough to sort by length, small enough to stream.
_BATCHES_PER_CHUNK = 8
# What one forward pass costs beyond its token rows, in token rows (weights read, per-layer dispatch): a padded
# batch is split where the padding saved is worth more than another pass (length_batches).
_FORWARD_OVERHEAD_TOKENS = 96


class PipelineException(ValueError):
    """An input the task cannot handle (transformers' PipelineException, but a ValueError so callers can catch it)."""

    def __init__(self, task: str, model: str, reason: str):
        super().__init__(f"{task}: {reason}")
        self.task, self.model, self.reason = task, model, reason


def resolve_device(device) -> torch.device:
    """None -> first CUDA device if any, else CPU; -1 or "cpu" -> CPU; N -> cuda:N; strings and torch.device as given."""
    if device is None:
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        return device
    if isinstance(device, bool):
        raise ValueError(f"device must be an int, a string or a torch.device, not {device!r}")
    if isinstance(device, int):
        return torch.device("cpu") if device < 0 else torch.device(f"cuda:{device}")
    if isinstance(device, str):
        text = device.strip()
        if text.lstrip("-").isdigit():
            return resolve_device(int(text))
        try:
            return torch.device(text)
        except RuntimeError as err:
            raise ValueError(f"unknown device {device!r} (expected cpu, cuda, cuda:N, an int, or -1 for cpu)") from err
    raise ValueError(f"device must be an int, a string or a torch.device, not {type(device).__name__}")


_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def resolve_dtype(dtype):
    """torch dtype, a name ("float16", "bf16", "torch.float16"), "auto" (kept for the loader) or None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        name = dtype.strip().lower().removeprefix("torch.")
        if name == "auto":
            return "auto"
        if name in _DTYPES:
            return _DTYPES[name]
    raise ValueError(f"unknown dtype {dtype!r} (expected float32, float16, bfloat16, auto or a torch.dtype)")


def usable_max_length(tokenizer, config) -> int:
    """The tokenizer's model_max_length, or config.max_position_embeddings - pad_token_id - 1 when that is unset.

    RoBERTa positions start at pad_token_id + 1, so 514 position rows hold 512 tokens (specials included).
    """
    limit = getattr(tokenizer, "model_max_length", None)
    from_config = None
    if config is not None and getattr(config, "max_position_embeddings", None):
        from_config = config.max_position_embeddings - (config.pad_token_id or 0) - 1
    if limit is None or limit > _HUGE_MAX_LENGTH:
        return from_config if from_config is not None else 512
    return min(limit, from_config) if from_config is not None else limit


class Pipeline:
    """Base class: see the module docstring. Subclasses set `task` and implement the three steps."""

    task = ""
    # Keys of a feature that travel into the model; everything else in a feature is metadata for postprocess.
    model_input_names = ("input_ids", "attention_mask")

    def __init__(self, model, tokenizer, device=None, batch_size=None, pack_weights: bool = True, **defaults):
        if tokenizer is None:
            raise ValueError(f"{self.task}: a tokenizer is required")
        self.model = model
        self.tokenizer = tokenizer
        self.device = resolve_device(device) if device is not None else _model_device(model)
        if _model_device(model) != self.device:
            self.model = model.to(self.device)
        self.model.eval()
        if pack_weights and self.device.type == "cpu" and hasattr(self.model, "pack_weights"):
            packed = self.model.pack_weights()  # CPU float32 / bf16; see RobertaPreTrainedModel.pack_weights
            logger.info("Packed %d matmul weights for CPU inference", packed)
        self.batch_size = _check_batch_size(batch_size if batch_size is not None else 1)
        self.max_length = usable_max_length(tokenizer, getattr(model, "config", None))
        self._defaults = self._sanitize_parameters(**defaults)
        logger.info("Device set to use %s", self.device)

    # ------------------------------------------------------------------ task hooks
    def _sanitize_parameters(self, **kwargs) -> dict:
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword argument(s): {', '.join(sorted(kwargs))}")
        return {}

    def preprocess(self, item, params: dict) -> list[dict]:
        raise NotImplementedError

    def _forward(self, input_ids, attention_mask, features, params) -> list[Any]:
        raise NotImplementedError

    def postprocess(self, item, features: list[dict], outputs: list[Any], params: dict):
        raise NotImplementedError

    def _is_single(self, inputs) -> bool:
        """True when `inputs` is one input rather than a collection of them."""
        return isinstance(inputs, str)

    # ------------------------------------------------------------------ calling
    def __call__(self, inputs, *args, batch_size: int | None = None, **kwargs):
        if args:
            raise TypeError(f"{self.task} takes one positional input (a string, a list, or an iterable)")
        params = {**self._defaults, **self._sanitize_parameters(**kwargs)}
        batch_size = _check_batch_size(batch_size if batch_size is not None else self.batch_size)
        if self._is_single(inputs):
            return next(self._run([inputs], params, batch_size, chunk=1))
        if isinstance(inputs, (list, tuple)):
            # a whole list is sorted at once: the least padding
            return list(self._run(inputs, params, batch_size, chunk=max(len(inputs), 1)))
        if isinstance(inputs, Iterable):
            return self._run(inputs, params, batch_size, chunk=batch_size * _BATCHES_PER_CHUNK)
        raise TypeError(f"{self.task} expects a string, a list or an iterable of inputs, got {type(inputs).__name__}")

    def _run(self, inputs: Iterable, params: dict, batch_size: int, chunk: int) -> Iterator:
        """Yield one result per input, in input order, pulling `chunk` inputs at a time."""
        iterator = iter(inputs)
        while True:
            items = list(itertools.islice(iterator, chunk))
            if not items:
                return
            owners, features = [], []
            for index, item in enumerate(items):
                for feature in self.preprocess(item, params):
                    owners.append(index)
                    features.append(feature)
            outputs = self._forward_sorted(features, params, batch_size)
            grouped_features = [[] for _ in items]
            grouped_outputs = [[] for _ in items]
            for owner, feature, output in zip(owners, features, outputs):
                grouped_features[owner].append(feature)
                grouped_outputs[owner].append(output)
            for item, feats, outs in zip(items, grouped_features, grouped_outputs):
                yield self.postprocess(item, feats, outs, params)

    def _forward_sorted(self, features: list[dict], params: dict, batch_size: int) -> list:
        """Run all features through the model, batched by similar length; outputs come back in feature order."""
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        outputs: list = [None] * len(features)
        for start, stop in length_batches([len(features[i]["input_ids"]) for i in order], batch_size):
            indices = order[start:stop]
            batch = [features[i] for i in indices]
            input_ids, attention_mask = self._collate(batch)
            with torch.inference_mode():
                results = self._forward(input_ids, attention_mask, batch, params)
            for i, result in zip(indices, results):
                outputs[i] = result
        return outputs

    def _collate(self, batch: list[dict]):
        """Right-pad input_ids with the pad token and the attention mask with 0. -> two (B, T) tensors on device."""
        pad_id = self.tokenizer.pad_token_id
        width = max(len(f["input_ids"]) for f in batch)
        if pad_id is None and any(len(f["input_ids"]) != width for f in batch):
            raise ValueError("Pipeline with tokenizer without pad_token cannot do batching; use batch_size=1")
        ids = torch.full((len(batch), width), pad_id if pad_id is not None else 0, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, feature in enumerate(batch):
            n = len(feature["input_ids"])
            ids[row, :n] = torch.tensor(feature["input_ids"], dtype=torch.long)
            mask[row, :n] = 1
        return ids.to(self.device), mask.to(self.device)

    # ------------------------------------------------------------------ helpers for tasks
    def _require_text(self, item) -> str:
        if not isinstance(item, str):
            raise ValueError(f"{self.task} expects text (str), got {type(item).__name__}")
        return item

    def _encode_within_limit(self, text, pair=None, kwargs=None) -> list[int]:
        """Token ids of text (and pair); past the model's limit they are truncated with a logged warning
        (unless the caller chose truncation= itself), instead of crashing in the position embedding."""
        kwargs = kwargs or {}
        ids = self.tokenizer(text, pair, **kwargs)["input_ids"]
        if len(ids) > self.max_length and "truncation" not in kwargs:
            logger.warning("%s: an input of %d tokens is longer than the model's %d-token limit; it is truncated "
                           "(pass truncation=... to choose how)", self.task, len(ids), self.max_length)
            ids = self.tokenizer(text, pair, truncation=True, max_length=self.max_length, **kwargs)["input_ids"]
        return list(ids)

    def _label(self, index: int) -> str:
        id2label = getattr(self.model.config, "id2label", None) or {}
        return id2label.get(index, id2label.get(str(index), f"LABEL_{index}"))


def length_batches(lengths: list[int], batch_size: int, overhead: int = _FORWARD_OVERHEAD_TOKENS) -> list[tuple[int, int]]:
    """Cut `lengths` (sorted ascending) into batches [start, stop) of at most batch_size that cost the least.

    A batch of n sequences padded to its longest, T, costs n * T token rows plus `overhead` rows for the forward
    pass itself. With equal lengths that gives batches of batch_size, as plainly slicing would; with mixed
    lengths (as a server's requests are) short sequences are not padded up to the longest of the whole chunk.
    Exact minimum by dynamic programming over the cut points: O(len * batch_size), shapes only, deterministic.
    """
    n = len(lengths)
    best = [float("inf")] * n + [0]  # best[i]: the least cost of lengths[i:]
    cut = [n] * (n + 1)  # cut[i]: where the first batch of that best split of lengths[i:] ends
    for start in range(n - 1, -1, -1):
        for stop in range(min(n, start + batch_size), start, -1):  # longest batch first: it wins ties
            cost = overhead + (stop - start) * lengths[stop - 1] + best[stop]
            if cost < best[start]:
                best[start], cut[start] = cost, stop
    batches, start = [], 0
    while start < n:
        batches.append((start, cut[start]))
        start = cut[start]
    return batches


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def check_int(name: str, value, minimum: int = 1) -> int:
    """`value` as an int >= minimum, or a ValueError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_batch_size(batch_size) -> int:
    return check_int("batch_size", batch_size)


def softmax32(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis in float32 (half-precision logits are upcast first)."""
    return torch.softmax(logits.float(), dim=-1)
