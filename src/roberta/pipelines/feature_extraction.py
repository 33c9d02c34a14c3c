"""feature-extraction: the encoder's last hidden states, per token or pooled into one sentence vector.

    pipe(text)                        -> [1][T][C] nested lists (transformers' format, specials included)
    pipe(text, return_tensors=True)   -> a (1, T, C) tensor
    pipe(text, pooling="mean")        -> [C]: mean over the text's tokens (<s> and </s> included, padding not)
    pipe(text, pooling="cls")         -> [C]: the <s> vector
Unlike transformers, batched results never include padding positions (T is always the input's own length).
Inputs longer than the model's limit are truncated with a logged warning.
"""
from __future__ import annotations

import logging

from .base import Pipeline

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")


class FeatureExtractionPipeline(Pipeline):
    task = "feature-extraction"

    def _sanitize_parameters(self, truncation=None, tokenize_kwargs=None, return_tensors=None, pooling=None):
        params = {"tokenize_kwargs": dict(tokenize_kwargs or {})}
        if truncation is not None:
            if "truncation" in params["tokenize_kwargs"]:
                raise ValueError("truncation parameter defined twice (given as keyword argument as well as in tokenize_kwargs)")
            params["tokenize_kwargs"]["truncation"] = truncation
        if return_tensors is not None:
            params["return_tensors"] = bool(return_tensors)
        if pooling is not None:
            if pooling not in POOLINGS:
                raise ValueError(f"pooling must be one of {POOLINGS} (or None for per-token vectors), got {pooling!r}")
            params["pooling"] = pooling
        return params

    def _is_single(self, inputs) -> bool:
        return isinstance(inputs, str)

    def preprocess(self, item, params):
        if not isinstance(item, str):
            raise ValueError(f"feature-extraction expects text (str), got {type(item).__name__}")
        kwargs = params.get("tokenize_kwargs", {})
        ids = self.tokenizer(item, **kwargs)["input_ids"]
        if len(ids) > self.max_length and "truncation" not in kwargs:
            logger.warning("feature-extraction: an input of %d tokens is longer than the %d-token limit; truncated",
                           len(ids), self.max_length)
            ids = self.tokenizer(item, truncation=True, max_length=self.max_length, **kwargs)["input_ids"]
        return [{"input_ids": list(ids)}]

    def _forward(self, input_ids, attention_mask, features, params):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]  # (B, T, C)
        pooling = params.get("pooling")
        rows = []
        for row, feature in enumerate(features):
            states = hidden[row, : len(feature["input_ids"])]  # (T, C) without padding
            if pooling == "mean":
                states = states.float().mean(dim=0).to(states.dtype)
            elif pooling == "cls":
                states = states[0]
            rows.append(states.cpu())
        return rows

    def postprocess(self, item, features, outputs, params):
        states = outputs[0]
        if params.get("pooling") is None:
            states = states.unsqueeze(0)  # (1, T, C) like transformers
        return states if params.get("return_tensors") else states.tolist()
