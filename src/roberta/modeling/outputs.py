"""Model outputs for the PyTorch classes: the framework-neutral classes of roberta.model_output, each
registered as a torch pytree node (DDP with static_graph, torch.compile, export), including subclasses
defined later.
"""
from __future__ import annotations

import torch.utils._pytree as pytree

from roberta.model_output import (  # noqa: F401 (re-exported)
    BaseModelOutputWithPastAndCrossAttentions, BaseModelOutputWithPoolingAndCrossAttentions,
    CausalLMOutputWithCrossAttentions, MaskedLMOutput, ModelOutput, MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput, SequenceClassifierOutput, TokenClassifierOutput)


def _flatten(output):
    return list(output.values()), list(output.keys())


def _register(cls) -> None:
    def unflatten(values, context, _cls=cls):
        return _cls(**dict(zip(context, values)))

    pytree.register_pytree_node(cls, _flatten, unflatten, serialized_type_name=f"{cls.__module__}.{cls.__name__}")


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


for _cls in _all_subclasses(ModelOutput):
    if _cls not in pytree.SUPPORTED_NODES:
        _register(_cls)
if _register not in ModelOutput._subclass_hooks:
    ModelOutput._subclass_hooks.append(_register)
