"""Key/value cache for decoder use (RobertaForCausalLM, cross-attention decoders).

Shapes: keys/values are (B, H, S, D). Per layer we keep the self-attention K/V (grown by each call) and,
for cross-attention, the encoder K/V (computed once, then reused).

Two formats are accepted as `past_key_values`:
* transformers' legacy tuple-of-tuples, one tuple per layer: (k, v) or (k, v, cross_k, cross_v).
  The model then returns the same legacy format.
* `KeyValueCache` (ours), or any object with `to_legacy_cache()`; the model returns a `KeyValueCache`,
  updated in place, like transformers returns its Cache object.
The legacy format comes back as a `LegacyCache`: a plain tuple of per-layer tuples that also answers
`get_seq_length()`. generate() returns its final cache that way (transformers' `return_legacy_cache=True` form):
generation is over, so a read-only snapshot in the layout every transformers model accepts is what it hands back.
"""
from __future__ import annotations

from typing import Optional

import torch

Tensor = torch.Tensor


class LegacyCache(tuple):
    """transformers' legacy cache layout: one (k, v) or (k, v, cross_k, cross_v) tuple per layer, each (B, H, S, D)."""

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self[layer_idx][0].shape[-2] if layer_idx < len(self) else 0

    def to_legacy_cache(self) -> "LegacyCache":
        return self


class KeyValueCache:
    """Per-layer self-attention and cross-attention K/V. Indexing and iteration give legacy tuples."""

    def __init__(self, num_layers: int = 0):
        self.self_kv: list[Optional[tuple[Tensor, Tensor]]] = [None] * num_layers
        self.cross_kv: list[Optional[tuple[Tensor, Tensor]]] = [None] * num_layers

    # --- construction / conversion -------------------------------------------------------------
    @classmethod
    def from_legacy_cache(cls, past) -> "KeyValueCache":
        if hasattr(past, "to_legacy_cache"):  # a transformers Cache object, or ours
            past = past.to_legacy_cache()
        cache = cls(len(past))
        for i, layer in enumerate(past):
            if len(layer) not in (2, 4):
                raise ValueError(f"past_key_values[{i}] has {len(layer)} tensors; expected (key, value) or "
                                 "(key, value, cross_key, cross_value)")
            cache.self_kv[i] = (layer[0], layer[1])
            if len(layer) == 4:
                cache.cross_kv[i] = (layer[2], layer[3])
        return cache

    def to_legacy_cache(self) -> LegacyCache:
        return LegacyCache(self[i] for i in range(len(self)) if self.self_kv[i] is not None)

    # --- what the attention layers call ----------------------------------------------------------
    def _ensure(self, layer_idx: int) -> None:
        while len(self.self_kv) <= layer_idx:
            self.self_kv.append(None)
            self.cross_kv.append(None)

    def update(self, key: Tensor, value: Tensor, layer_idx: int) -> tuple[Tensor, Tensor]:
        """Append this step's self-attention K/V (B, H, T, D); return the full K/V (B, H, S, D)."""
        self._ensure(layer_idx)
        past = self.self_kv[layer_idx]
        if past is not None:
            key = torch.cat([past[0], key], dim=-2)
            value = torch.cat([past[1], value], dim=-2)
        self.self_kv[layer_idx] = (key, value)
        return key, value

    def get_cross(self, layer_idx: int) -> Optional[tuple[Tensor, Tensor]]:
        return self.cross_kv[layer_idx] if layer_idx < len(self.cross_kv) else None

    def set_cross(self, key: Tensor, value: Tensor, layer_idx: int) -> None:
        self._ensure(layer_idx)
        self.cross_kv[layer_idx] = (key, value)

    # --- transformers-compatible conveniences ----------------------------------------------------
    def get_seq_length(self, layer_idx: int = 0) -> int:
        if layer_idx >= len(self.self_kv) or self.self_kv[layer_idx] is None:
            return 0
        return self.self_kv[layer_idx][0].shape[-2]

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Select batch rows (beam search); applies to self and cross K/V."""
        for store in (self.self_kv, self.cross_kv):
            for i, kv in enumerate(store):
                if kv is not None:
                    store[i] = (kv[0].index_select(0, beam_idx.to(kv[0].device)),
                                kv[1].index_select(0, beam_idx.to(kv[1].device)))

    def crop(self, max_length: int) -> None:
        """Keep only the first `max_length` cached positions of the self-attention K/V."""
        for i, kv in enumerate(self.self_kv):
            if kv is not None:
                self.self_kv[i] = (kv[0][..., :max_length, :], kv[1][..., :max_length, :])

    def __len__(self) -> int:
        return sum(kv is not None for kv in self.self_kv)

    def __getitem__(self, layer_idx: int) -> tuple[Tensor, ...]:
        if layer_idx >= len(self.self_kv) or self.self_kv[layer_idx] is None:
            raise KeyError(f"Cache only has {len(self)} layers, attempted to access layer with index {layer_idx}")
        cross = self.cross_kv[layer_idx]
        return self.self_kv[layer_idx] + (cross if cross is not None else ())

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"KeyValueCache(layers={len(self)}, seq_length={self.get_seq_length()})"
