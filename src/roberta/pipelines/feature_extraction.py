"""feature-extraction: the encoder's last hidden states, per token or pooled into one sentence vector.

    pipe(text)                        -> [1][T][C] nested lists (transformers' format, specials included)
    pipe(text, return_tensors=True)   -> a (1, T, C) tensor
    pipe(text, pooling="mean")        -> [C]: mean over the text's tokens (<s> and </s> included, padding not)
    pipe(text, pooling="cls")         -> [C]: the <s> vector
Unlike transformers, batched results never include padding positions (T is always the input's own length).
Inputs longer than the model's limit are truncated with a logged warning.
"""
from __future__ import annotations

from .base import Pipeline

POOLINGS = ("mean", "cls")


class FeatureExtractionPipeline(Pipeline):
    task = "feature-extraction"

    def _sanitize_parameters(self, truncation=None, tokenize_kwargs=None, return_tensors=None, pooling=None):
        params = {}
        tokenize_kwargs = dict(tokenize_kwargs or {})
        if truncation is not None:
            if "truncation" in tokenize_kwargs:
                raise ValueError("truncation parameter defined twice (given as keyword argument as well as in tokenize_kwargs)")
            tokenize_kwargs["truncation"] = truncation
        if tokenize_kwargs:
            params["tokenize_kwargs"] = tokenize_kwargs
        if return_tensors is not None:
            params["return_tensors"] = bool(return_tensors)
        if pooling is not None:
            if pooling not in POOLINGS:
                raise ValueError(f"pooling must be one of {POOLINGS} (or None for per-token vectors), got {pooling!r}")
            params["pooling"] = pooling
        return params

    def preprocess(self, item, params):
        return [{"input_ids": self._encode_within_limit(self._require_text(item), None, params.get("tokenize_kwargs"))}]

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
