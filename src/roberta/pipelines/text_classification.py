"""text-classification (alias sentiment-analysis): labels and scores for a text or a text pair.

Output format, `function_to_apply` choice and `top_k` rules follow transformers 4.57. One difference on
purpose: an input longer than the model's limit is truncated with a logged warning instead of crashing in the
position embedding.
"""
from __future__ import annotations

import logging

import torch

from .base import Pipeline, check_int

logger = logging.getLogger(__name__)

_FUNCTIONS = ("sigmoid", "softmax", "none")
_UNSET = object()  # top_k not passed: transformers' legacy single-dict result


class TextClassificationPipeline(Pipeline):
    task = "text-classification"

    def _sanitize_parameters(self, top_k=_UNSET, function_to_apply=None, return_all_scores=None, **tokenizer_kwargs):
        params = {}
        if tokenizer_kwargs:
            params["tokenizer_kwargs"] = tokenizer_kwargs
        if return_all_scores is None:
            return_all_scores = getattr(self.model.config, "return_all_scores", None)
        if top_k is not _UNSET:
            params["top_k"] = None if top_k is None else check_int("top_k", top_k)
        elif return_all_scores is not None:
            logger.warning("`return_all_scores` is deprecated: use top_k=None (all) or top_k=1 instead.")
            params["top_k"] = None if return_all_scores else 1
        if function_to_apply is not None:
            name = getattr(function_to_apply, "value", function_to_apply)
            name = str(name).lower()
            if name not in _FUNCTIONS:
                raise ValueError(f"Unrecognized `function_to_apply` argument: {function_to_apply!r} (use {_FUNCTIONS})")
            params["function_to_apply"] = name
        return params

    def _default_function(self) -> str:
        config = self.model.config
        problem = getattr(config, "problem_type", None)
        if problem == "regression":
            return "none"
        if problem == "multi_label_classification" or config.num_labels == 1:
            return "sigmoid"
        if problem == "single_label_classification" or config.num_labels > 1:
            return "softmax"
        return str(getattr(config, "function_to_apply", "none")).lower()

    def _is_single(self, inputs) -> bool:
        # [[text, pair]] is transformers' legacy spelling of one pair
        return isinstance(inputs, (str, dict)) or _is_legacy_pair(inputs)

    def preprocess(self, item, params):
        kwargs = params.get("tokenizer_kwargs", {})
        if isinstance(item, dict):
            unknown = set(item) - {"text", "text_pair"}
            if "text" not in item or unknown:
                raise ValueError('a text pair is given as {"text": ..., "text_pair": ...}')
            text, pair = item["text"], item.get("text_pair")
        elif _is_legacy_pair(item):
            text, pair = item[0]
        elif isinstance(item, str):
            text, pair = item, None
        else:
            raise ValueError(
                "The pipeline received invalid inputs, if you are trying to send text pairs, you can try to send a"
                ' dictionary `{"text": "My text", "text_pair": "My pair"}` in order to send a text pair.')
        return [{"input_ids": self._encode_within_limit(text, pair, kwargs)}]

    def _forward(self, input_ids, attention_mask, features, params):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, num_labels)
        return list(logits.float().cpu())

    def postprocess(self, item, features, outputs, params):
        logits = outputs[0]
        function = params.get("function_to_apply") or self._default_function()
        if function == "sigmoid":
            scores = torch.sigmoid(logits)
        elif function == "softmax":
            scores = torch.softmax(logits, dim=-1)
        else:
            scores = logits
        scores = scores.tolist()
        if "top_k" not in params:  # legacy: the best label only
            best = max(range(len(scores)), key=scores.__getitem__)
            return {"label": self._label(best), "score": scores[best]}
        ranked = sorted(({"label": self._label(i), "score": s} for i, s in enumerate(scores)),
                        key=lambda d: d["score"], reverse=True)
        top_k = params["top_k"]
        return ranked if top_k is None else ranked[:top_k]

    def __call__(self, inputs, *args, **kwargs):
        result = super().__call__(inputs, *args, **kwargs)
        if isinstance(inputs, str) and "top_k" not in kwargs and "top_k" not in self._defaults:
            return [result]  # transformers: one text without top_k gives a one-element list
        return result


def _is_legacy_pair(item) -> bool:
    return (isinstance(item, list) and len(item) == 1 and isinstance(item[0], (list, tuple)) and len(item[0]) == 2
            and all(isinstance(x, str) for x in item[0]))
