"""RoBERTa model classes with transformers' names, signatures and state-dict keys.

Modules, in data-flow order: embeddings -> attention -> encoder -> model -> heads (lm, heads);
outputs (ModelOutput classes), cache (decoder K/V), generation (the generate() mixin; the work is in
roberta.generation), base (shared API).
"""
from .base import RobertaPreTrainedModel
from .cache import KeyValueCache
from .embeddings import RobertaEmbeddings, create_position_ids_from_input_ids
from .heads import (RobertaClassificationHead, RobertaForMultipleChoice, RobertaForQuestionAnswering,
                    RobertaForSequenceClassification, RobertaForTokenClassification)
from .lm import RobertaForCausalLM, RobertaForMaskedLM, RobertaLMHead
from .model import RobertaModel

__all__ = [
    "RobertaPreTrainedModel", "RobertaModel", "RobertaForCausalLM", "RobertaForMaskedLM",
    "RobertaForSequenceClassification", "RobertaForMultipleChoice", "RobertaForTokenClassification",
    "RobertaForQuestionAnswering", "RobertaLMHead", "RobertaClassificationHead", "RobertaEmbeddings",
    "KeyValueCache", "create_position_ids_from_input_ids",
]
