"""Per-step model inputs: what the next forward pass gets, and how the running state grows after it.

The running state is a dict of model keyword arguments: attention_mask (N, P + new) over every position so far
(P = prompt tokens or prompt embeddings), past_key_values (the model's KeyValueCache once it returned one),
encoder_hidden_states / encoder_attention_mask (cross-attention, fixed), token_type_ids, inputs_embeds (the
prompt, fed on the first step only), use_cache and output flags.

Positions. The model's own forward numbers real tokens padding_idx + 1, + 2, ... . transformers'
`RobertaForCausalLM.generate` instead feeds 0-based positions (cumsum(mask) - 1, pads at 1), so its tokens differ
from greedy decoding with its own forward. We feed the same 0-based positions by default, so outputs equal
transformers' token for token; `roberta_positions=True` feeds the forward's positions instead (what the model
was trained with; transformers' EncoderDecoderModel decodes a RoBERTa decoder that way too). Both come from the
attention mask, so a left-padded row gets the positions it would get alone.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

Tensor = torch.Tensor

# model inputs generate() accepts and forwards (besides input_ids / inputs_embeds, which are the prompt)
MODEL_INPUTS = ("attention_mask", "token_type_ids", "encoder_hidden_states", "encoder_attention_mask",
                "use_cache", "output_attentions", "output_hidden_states", "logits_to_keep")


def positions(attention_mask: Tensor, padding_idx: int, roberta_positions: bool) -> Tensor:
    """(N, S) 0/1 mask -> (N, S) position ids (see the module docstring)."""
    mask = attention_mask.long()
    if roberta_positions:
        return mask.cumsum(-1) * mask + padding_idx
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)


def prepare_inputs(model, input_ids: Tensor, past_key_values=None, attention_mask: Optional[Tensor] = None,
                   inputs_embeds: Optional[Tensor] = None, token_type_ids: Optional[Tensor] = None,
                   roberta_positions: bool = False, **kwargs) -> dict[str, Any]:
    """input_ids (N, S) generated so far -> keyword arguments of the next forward: only the positions the cache
    has not seen (all of them without a cache), the prompt embeddings on the first step."""
    cached = past_key_values.get_seq_length() if past_key_values is not None else 0
    total = attention_mask.shape[1] if attention_mask is not None else input_ids.shape[1]
    new = total - cached  # positions the model has not processed yet
    inputs: dict[str, Any] = dict(kwargs, past_key_values=past_key_values, attention_mask=attention_mask)
    if inputs_embeds is not None and cached == 0:
        inputs.update(input_ids=None, inputs_embeds=inputs_embeds)
    else:
        inputs.update(input_ids=input_ids[:, -new:], inputs_embeds=None)
    if attention_mask is not None:
        padding_idx = model.config.pad_token_id if model.config.pad_token_id is not None else 1
        inputs["position_ids"] = positions(attention_mask, padding_idx, roberta_positions)[:, -new:]
    if token_type_ids is not None:
        inputs["token_type_ids"] = token_type_ids[:, -new:]
    return inputs


def update_state(state: dict[str, Any], outputs) -> dict[str, Any]:
    """After a forward pass that added one token per row: keep its cache, grow the mask and token types."""
    if state.get("use_cache", True) and getattr(outputs, "past_key_values", None) is not None:
        state["past_key_values"] = outputs.past_key_values
    mask = state.get("attention_mask")
    if mask is not None:
        state["attention_mask"] = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
    types = state.get("token_type_ids")
    if types is not None:
        state["token_type_ids"] = torch.cat([types, types[:, -1:]], dim=-1)
    return state


def expand(input_ids: Tensor, state: dict[str, Any], times: int) -> tuple[Tensor, dict[str, Any]]:
    """Repeat every row `times` times in place (beams, or several samples per prompt): (B, ...) -> (B*times, ...)."""
    if times == 1:
        return input_ids, state
    state = {k: v.repeat_interleave(times, dim=0) if torch.is_tensor(v) else v for k, v in state.items()}
    return input_ids.repeat_interleave(times, dim=0), state
