"""Task heads: sequence classification, multiple choice, token classification, question answering.

Each wraps `RobertaModel` as `self.roberta` (no pooler, except MultipleChoice which uses it) and returns
transformers' output classes (tuples with return_dict=False). Losses run in float32.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .base import RobertaPreTrainedModel
from .model import RobertaModel
from .outputs import (MultipleChoiceModelOutput, QuestionAnsweringModelOutput, SequenceClassifierOutput,
                      TokenClassifierOutput)

Tensor = torch.Tensor


def _classifier_dropout(config) -> float:
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob


def _first_token_only(model, output_attentions, output_hidden_states, batch: int, device) -> Optional[Tensor]:
    """Heads that read only <s> let the last layer compute just that row, unless its full output is returned."""
    if not model._can_compute_few_rows(output_attentions, output_hidden_states):
        return None
    return torch.zeros(batch, 1, dtype=torch.long, device=device)


def _batch_device(input_ids, inputs_embeds):
    x = input_ids if input_ids is not None else inputs_embeds
    return (x.shape[0], x.device) if x is not None else (0, None)


class RobertaClassificationHead(nn.Module):
    """<s> token -> dropout -> dense -> tanh -> dropout -> out_proj (fairseq's head; not the pooler)."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, features: Tensor, **kwargs) -> Tensor:  # (B, T, C) -> (B, num_labels)
        x = self.dropout(features[:, 0, :])
        x = torch.tanh(self.dense(x))
        return self.out_proj(self.dropout(x))


def sequence_classification_loss(config, logits: Tensor, labels: Tensor) -> Tensor:
    """Pick the loss like transformers (and record the choice in config.problem_type):
    num_labels == 1 -> regression (MSE); integer labels -> single-label (CE); else multi-label (BCE)."""
    num_labels = config.num_labels
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif num_labels > 1 and labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    logits = logits.float()
    if config.problem_type == "regression":
        labels = labels.to(logits.dtype)  # int labels with num_labels=1 would fail in MSE; regression wants floats
        if num_labels == 1:
            return F.mse_loss(logits.squeeze(), labels.squeeze())
        return F.mse_loss(logits, labels)
    if config.problem_type == "single_label_classification":
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    if config.problem_type == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    raise ValueError(f"Unknown problem_type {config.problem_type!r}; expected 'regression', "
                     "'single_label_classification' or 'multi_label_classification'")


class RobertaForSequenceClassification(RobertaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        """labels (B,): class ids (single-label), floats (regression, num_labels=1) or (B, num_labels) 0/1 floats
        (multi-label)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        rows = _first_token_only(self, output_attentions, output_hidden_states,
                                 *_batch_device(input_ids, inputs_embeds))
        outputs = self.roberta(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=True, last_layer_rows=rows)
        logits = self.classifier(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = sequence_classification_loss(self.config, logits, labels.to(logits.device))
        out = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                       attentions=outputs.attentions)
        return out if return_dict else out.to_tuple()


class RobertaForMultipleChoice(RobertaPreTrainedModel):
    """Inputs (B, num_choices, T) are flattened to (B * num_choices, T); one score per choice from the pooler."""

    def __init__(self, config):
        super().__init__(config)
        self.roberta = RobertaModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    # note transformers' positional order: token_type_ids before attention_mask
    def forward(self, input_ids=None, token_type_ids=None, attention_mask=None, labels=None, position_ids=None,
                head_mask=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if input_ids is None and inputs_embeds is None:
            raise ValueError("You have to specify either input_ids or inputs_embeds")
        num_choices = input_ids.shape[1] if input_ids is not None else inputs_embeds.shape[1]

        def flat(x, keep):  # (B, num_choices, ...) -> (B * num_choices, ...): every dim before the last `keep` merged
            return x.flatten(0, x.dim() - keep - 1) if x is not None else None

        flat_ids, flat_embeds = flat(input_ids, 1), flat(inputs_embeds, 2)
        mask = attention_mask
        flat_mask = flat(mask, mask.dim() - 2) if mask is not None and mask.dim() > 2 else mask
        rows = _first_token_only(self, output_attentions, output_hidden_states,
                                 *_batch_device(flat_ids, flat_embeds))
        outputs = self.roberta(flat_ids, position_ids=flat(position_ids, 1), token_type_ids=flat(token_type_ids, 1),
                               attention_mask=flat_mask, head_mask=head_mask, inputs_embeds=flat_embeds,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=True, last_layer_rows=rows)
        logits = self.classifier(self.dropout(outputs.pooler_output)).view(-1, num_choices)  # (B, num_choices)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float(), labels.to(logits.device))
        out = MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)
        return out if return_dict else out.to_tuple()


class RobertaForTokenClassification(RobertaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        """labels (B, T): class per token, -100 = ignored."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        outputs = self.roberta(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=True)
        logits = self.classifier(self.dropout(outputs.last_hidden_state))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().view(-1, self.num_labels), labels.to(logits.device).view(-1))
        out = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                    attentions=outputs.attentions)
        return out if return_dict else out.to_tuple()


class RobertaForQuestionAnswering(RobertaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        """start_positions / end_positions (B,): token indices of the answer span. Positions outside the
        sequence are clamped to T and ignored by the loss, as in transformers."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if self.num_labels != 2:
            raise ValueError(f"RobertaForQuestionAnswering needs num_labels=2 (start and end); got {self.num_labels}")
        outputs = self.roberta(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=True)
        logits = self.qa_outputs(outputs.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = logits.split(1, dim=-1)  # unpacked, not iterated: FX tracers can unpack
        start_logits, end_logits = start_logits.squeeze(-1).contiguous(), end_logits.squeeze(-1).contiguous()
        loss = None
        if start_positions is not None and end_positions is not None:
            if start_positions.dim() > 1:
                start_positions = start_positions.squeeze(-1)
            if end_positions.dim() > 1:
                end_positions = end_positions.squeeze(-1)
            ignored_index = start_logits.size(1)
            start_positions = start_positions.to(start_logits.device).clamp(0, ignored_index)
            end_positions = end_positions.to(end_logits.device).clamp(0, ignored_index)
            start_loss = F.cross_entropy(start_logits.float(), start_positions, ignore_index=ignored_index)
            end_loss = F.cross_entropy(end_logits.float(), end_positions, ignore_index=ignored_index)
            loss = (start_loss + end_loss) / 2
        out = QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                           hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return out if return_dict else out.to_tuple()
