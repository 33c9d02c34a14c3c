"""Flax model outputs: dataclasses with attribute, key and tuple access, registered as JAX pytrees.

Same behaviour as transformers' FlaxModelOutput (and our PyTorch ModelOutput): `out.logits`, `out["logits"]`
and `out[0]` all work; fields that are None are left out of `keys()`, `to_tuple()` and integer indexing.
Being pytrees, they can be returned from `jax.jit`-compiled functions.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax


class FlaxModelOutput:
    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def values(self) -> list:
        return [getattr(self, k) for k in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def to_tuple(self) -> tuple:
        return tuple(self.values())

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def _output(cls):
    """Make `cls` a dataclass (every field defaulting to None) and a pytree whose children are its fields."""
    cls = dataclasses.dataclass(cls)
    return jax.tree_util.register_dataclass(cls, data_fields=[f.name for f in dataclasses.fields(cls)], meta_fields=[])


@_output
class FlaxBaseModelOutputWithPoolingAndCrossAttentions(FlaxModelOutput):
    last_hidden_state: Any = None
    pooler_output: Any = None
    past_key_values: Any = None
    hidden_states: Any = None
    attentions: Any = None
    cross_attentions: Any = None


@_output
class FlaxMaskedLMOutput(FlaxModelOutput):
    logits: Any = None
    hidden_states: Any = None
    attentions: Any = None


@_output
class FlaxCausalLMOutputWithCrossAttentions(FlaxModelOutput):
    logits: Any = None
    past_key_values: Any = None
    hidden_states: Any = None
    attentions: Any = None
    cross_attentions: Any = None


# same fields as the masked LM's (logits, hidden_states, attentions); separate names, as in transformers
FlaxSequenceClassifierOutput = _output(type("FlaxSequenceClassifierOutput", (FlaxMaskedLMOutput,), {}))
FlaxMultipleChoiceModelOutput = _output(type("FlaxMultipleChoiceModelOutput", (FlaxMaskedLMOutput,), {}))
FlaxTokenClassifierOutput = _output(type("FlaxTokenClassifierOutput", (FlaxMaskedLMOutput,), {}))


@_output
class FlaxQuestionAnsweringModelOutput(FlaxModelOutput):
    start_logits: Any = None
    end_logits: Any = None
    hidden_states: Any = None
    attentions: Any = None
