"""Model outputs: ordered, dict-like dataclasses with attribute, key and tuple access; no framework imported.

Same semantics as transformers' `ModelOutput` so code written against it keeps working:
`out.logits`, `out["logits"]` and `out[0]` all work; fields that are None are absent from `keys()`,
`to_tuple()` and integer indexing (so `out[0]` is the loss when labels were given, else the logits).
The PyTorch and TensorFlow classes return these same classes (fields hold that framework's tensors);
roberta.modeling.outputs registers them as torch pytree nodes.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Optional

Tensor = Any  # a torch.Tensor or a tf.Tensor


class ModelOutput(OrderedDict):
    """Base class; subclasses are @dataclass with every field defaulting to None."""

    # Called with each subclass as it is defined: the PyTorch side registers them as pytree nodes here
    # (roberta.modeling.outputs), without this module importing any framework.
    _subclass_hooks: list = []

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for hook in ModelOutput._subclass_hooks:
            hook(cls)

    def __post_init__(self):
        if not is_dataclass(self):
            raise TypeError(f"{type(self).__name__} must be a dataclass")
        first, *rest = fields(self)
        given = getattr(self, first.name)
        if isinstance(given, Mapping) and all(getattr(self, f.name) is None for f in rest):
            # built from one dict, as transformers allows: accelerate's autocast wrapper and other tools rebuild
            # an output with `type(out)({key: converted value})`
            unknown = set(given) - {f.name for f in fields(self)}
            if unknown:
                raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
            object.__setattr__(self, first.name, None)
            for key, value in given.items():
                object.__setattr__(self, key, value)
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                OrderedDict.__setitem__(self, f.name, value)

    # A ModelOutput's keys mirror its fields, so the dict-mutating methods that would desync them raise.
    def __delitem__(self, *args, **kwargs):
        raise Exception(f"You cannot use ``__delitem__`` on a {type(self).__name__} instance.")

    def setdefault(self, *args, **kwargs):
        raise Exception(f"You cannot use ``setdefault`` on a {type(self).__name__} instance.")

    def pop(self, *args, **kwargs):
        raise Exception(f"You cannot use ``pop`` on a {type(self).__name__} instance.")

    def update(self, *args, **kwargs):
        raise Exception(f"You cannot use ``update`` on a {type(self).__name__} instance.")

    def __getitem__(self, k):
        if isinstance(k, str):
            return OrderedDict.__getitem__(self, k)
        return self.to_tuple()[k]

    def __setattr__(self, name, value):
        # like transformers: only fields that are already keys (non-None at construction) track assignment
        if value is not None and name in self.keys():
            OrderedDict.__setitem__(self, name, value)
        super().__setattr__(name, value)

    def __setitem__(self, key, value):
        OrderedDict.__setitem__(self, key, value)
        super().__setattr__(key, value)

    def __reduce__(self):
        if not is_dataclass(self):
            return super().__reduce__()
        callable_, _args, *rest = super().__reduce__()
        return (callable_, tuple(getattr(self, f.name) for f in fields(self)), *rest)

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(OrderedDict.__getitem__(self, k) for k in self.keys())


@dataclass
class BaseModelOutputWithPastAndCrossAttentions(ModelOutput):
    last_hidden_state: Optional[Tensor] = None
    past_key_values: Optional[Any] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None


@dataclass
class BaseModelOutputWithPoolingAndCrossAttentions(ModelOutput):
    last_hidden_state: Optional[Tensor] = None
    pooler_output: Optional[Tensor] = None
    past_key_values: Optional[Any] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None


@dataclass
class MaskedLMOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None


@dataclass
class CausalLMOutputWithCrossAttentions(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    past_key_values: Optional[Any] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None


@dataclass
class MultipleChoiceModelOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    loss: Optional[Tensor] = None
    start_logits: Optional[Tensor] = None
    end_logits: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None
