"""Language-model heads: RobertaLMHead, RobertaForMaskedLM, RobertaForCausalLM.

The decoder weight is the word-embedding matrix (tied) and `lm_head.bias` / `lm_head.decoder.bias` are one
tensor, as in transformers v4, so checkpoints load both ways.

MaskedLM can compute vocabulary logits only where they are needed (ModernBERT's trick): with
`sparse_logits=True` (and labels) only at positions whose label is not -100, or at `logits_mask` positions.
The (N, V) logits are then a small fraction of the (B, T, V) ones, which dominate MLM training cost.
"""
from __future__ import annotations

import logging
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .base import RobertaPreTrainedModel
from .fused import gelu_inplace
from .generation import GenerationMixin
from .model import RobertaModel
from .outputs import CausalLMOutputWithCrossAttentions, MaskedLMOutput

logger = logging.getLogger(__name__)
Tensor = torch.Tensor


class RobertaLMHead(nn.Module):
    """dense -> gelu -> layer_norm -> decoder (C -> V). Attribute `layer_norm` is lower case in checkpoints."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder.bias = self.bias

    def forward(self, features: Tensor, **kwargs) -> Tensor:  # (..., C) -> (..., V)
        # kept in float32 under bf16 loading (see _keep_in_fp32_modules_bf16): bf16 features, float32 logits
        features = features.to(self.layer_norm.weight.dtype)
        x = gelu_inplace(self.dense(features))
        return self.decoder(self.layer_norm(x))

    def _tie_weights(self) -> None:
        # keep bias and decoder.bias one tensor (after a meta build, a resize, or a load with assign=True)
        if self.decoder.bias is None or self.decoder.bias.device.type == "meta":
            self.decoder.bias = self.bias
        else:
            self.bias = self.decoder.bias


def rows_to_index(rows: Tensor) -> tuple[Tensor, Tensor]:
    """(B, T) bool -> index (B, Q) of the selected positions (left-aligned, in order) and valid (B, Q),
    where Q is the largest per-row count; `x.gather(1, index)[valid]` equals `x[rows]` (row-major order)."""
    counts = rows.sum(dim=1)
    q = int(counts.max()) if rows.numel() else 0
    index = torch.argsort((~rows).to(torch.int8), dim=1, stable=True)[:, :q]
    valid = torch.arange(q, device=rows.device)[None, :] < counts[:, None]
    return index, valid


class _LMBase(RobertaPreTrainedModel):
    _tied_weights_keys = ["lm_head.decoder.weight", "lm_head.decoder.bias"]

    def __init__(self, config):
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head.decoder = new_embeddings


class RobertaForMaskedLM(_LMBase):
    def __init__(self, config):
        if config.is_decoder:
            logger.warning("If you want to use `RobertaForMaskedLM` make sure `config.is_decoder=False` for "
                           "bi-directional self-attention.")
        super().__init__(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, *,
                sparse_logits: bool = False, logits_mask: Optional[Tensor] = None,
                logits_positions: Optional[Tensor] = None):
        """labels (B, T): -100 = ignored. Default logits (B, T, V) like transformers.
        sparse_logits=True (needs labels): logits only where labels != -100, shape (N, V), same loss.
        logits_mask (B, T) bool (alias logits_positions): logits only at those positions, shape (N, V)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        rows = logits_mask if logits_mask is not None else logits_positions
        if sparse_logits:
            if labels is None:
                raise ValueError("sparse_logits=True computes logits where labels != -100, so it needs labels; "
                                 "pass logits_mask=<bool (batch, tokens)> to choose positions without labels")
            rows = labels != -100 if rows is None else rows.bool() & (labels != -100)
        if rows is not None:
            rows = rows.to(torch.bool)
            if rows.shape != (input_ids if input_ids is not None else inputs_embeds).shape[:2]:
                raise ValueError(f"logits_mask must be (batch, tokens) bool; got shape {tuple(rows.shape)}")
        outputs, hidden = self._encode(rows, input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                                       inputs_embeds, encoder_hidden_states, encoder_attention_mask,
                                       output_attentions, output_hidden_states)
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            target = labels[rows] if rows is not None else labels.reshape(-1)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1),
                                   ignore_index=-100)
        out = MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                             attentions=outputs.attentions)
        return out if return_dict else out.to_tuple()

    def _encode(self, rows, input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                encoder_hidden_states, encoder_attention_mask, output_attentions, output_hidden_states):
        """Run the encoder; with `rows`, return only their hidden states (N, C), and let the last layer compute
        only those rows when nothing else needs the full last layer."""
        index = valid = None
        if rows is not None and self._can_compute_few_rows(output_attentions, output_hidden_states):
            index, valid = rows_to_index(rows)
            if index.shape[1] == 0:
                index = valid = None
        outputs = self.roberta(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                               encoder_hidden_states=encoder_hidden_states,
                               encoder_attention_mask=encoder_attention_mask, output_attentions=output_attentions,
                               output_hidden_states=output_hidden_states, return_dict=True, last_layer_rows=index)
        hidden = outputs.last_hidden_state
        if index is not None:
            hidden = hidden[valid]
        elif rows is not None:
            hidden = hidden[rows]
        return outputs, hidden


def causal_lm_loss(logits: Tensor, labels: Optional[Tensor], num_items_in_batch=None, ignore_index: int = -100,
                   shift_labels: Optional[Tensor] = None) -> Tensor:
    """Next-token loss: labels shifted left (last position ignored), fp32 cross-entropy, -100 ignored.
    With num_items_in_batch (gradient accumulation) the sum is divided by it instead of taking the mean."""
    if shift_labels is None:
        shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    logits = logits.float().reshape(-1, logits.shape[-1])
    shift_labels = shift_labels.reshape(-1).to(logits.device)
    if num_items_in_batch is None:
        return F.cross_entropy(logits, shift_labels, ignore_index=ignore_index)
    loss = F.cross_entropy(logits, shift_labels, ignore_index=ignore_index, reduction="sum")
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch


def _loss_kwargs(num_items_in_batch=None, shift_labels=None, **_ignored):
    """(num_items_in_batch, shift_labels) from forward's **kwargs. Unpacked with ** rather than read with
    kwargs.get(): FX tracers (transformers' HFTracer) can unpack a traced **kwargs but not call methods on it."""
    return num_items_in_batch, shift_labels


class RobertaForCausalLM(_LMBase, GenerationMixin):
    def __init__(self, config):
        if not config.is_decoder:
            logger.warning("If you want to use `RobertaLMHeadModel` as a standalone, add `is_decoder=True.`")
        super().__init__(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, logits_to_keep: int = 0, **kwargs):
        """labels (B, T): the loss predicts token t+1 from tokens <= t (labels are shifted inside).
        logits_to_keep=k > 0 computes logits for the last k positions only (generation)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if labels is not None:
            use_cache = False
        outputs = self.roberta(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                               encoder_hidden_states=encoder_hidden_states,
                               encoder_attention_mask=encoder_attention_mask, past_key_values=past_key_values,
                               use_cache=use_cache, output_attentions=output_attentions,
                               output_hidden_states=output_hidden_states, return_dict=True)
        hidden = outputs.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            num_items_in_batch, shift_labels = _loss_kwargs(**kwargs)
            loss = causal_lm_loss(logits, labels.to(logits.device), num_items_in_batch, shift_labels=shift_labels)
        out = CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=outputs.past_key_values, hidden_states=outputs.hidden_states,
            attentions=outputs.attentions, cross_attentions=outputs.cross_attentions)
        return out if return_dict else out.to_tuple()
