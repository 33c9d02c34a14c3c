"""Transformer layers (post-LN, as in BERT/RoBERTa), the encoder stack and the pooler.

Shape legend: B batch, T tokens, C hidden, I intermediate.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from roberta.config import lookup_activation

from .attention import AttentionMask, RobertaAttention
from . import fused
from .fused import dense_add_norm, dense_gelu, linear

Tensor = torch.Tensor


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


def _gelu_fast(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _quick_gelu(x: Tensor) -> Tensor:
    return x * torch.sigmoid(1.702 * x)


def _gelu_python(x: Tensor) -> Tensor:
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu, "gelu_python": _gelu_python, "gelu_new": _gelu_tanh, "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_accurate": _gelu_tanh, "gelu_fast": _gelu_fast, "quick_gelu": _quick_gelu, "relu": F.relu,
    "relu6": F.relu6, "silu": F.silu, "swish": F.silu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    "mish": F.mish, "linear": lambda x: x,
}


def get_activation(name) -> Callable[[Tensor], Tensor]:
    return lookup_activation(ACTIVATIONS, name)


class RobertaIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def forward(self, hidden_states: Tensor) -> Tensor:  # (B, T, C) -> (B, T, I)
        if self.intermediate_act_fn is F.gelu:
            return dense_gelu(self.dense, hidden_states)
        return self.intermediate_act_fn(linear(self.dense, hidden_states))


class RobertaOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: Tensor, input_tensor: Tensor) -> Tensor:  # (B, T, I), (B, T, C) -> (B, T, C)
        return dense_add_norm(self.dense, self.LayerNorm, hidden_states, input_tensor,
                              self.dropout if self.training else None)


class RobertaLayer(nn.Module):
    """Self-attention, optional cross-attention (decoders), feed-forward; each with residual + LayerNorm."""

    def __init__(self, config, layer_idx: int = 0):
        super().__init__()
        self.chunk_size_feed_forward = getattr(config, "chunk_size_feed_forward", 0) or 0
        self.is_decoder = config.is_decoder
        self.add_cross_attention = config.add_cross_attention
        self.attention = RobertaAttention(config, layer_idx)
        if self.add_cross_attention:
            if not self.is_decoder:
                raise ValueError("add_cross_attention=True needs is_decoder=True: cross-attention only exists in a "
                                 "decoder (set config.is_decoder=True)")
            self.crossattention = RobertaAttention(config, layer_idx, is_cross_attention=True)
        self.intermediate = RobertaIntermediate(config)
        self.output = RobertaOutput(config)

    def forward(self, hidden_states: Tensor, mask: AttentionMask, head_mask: Optional[Tensor] = None,
                encoder_hidden_states: Optional[Tensor] = None, encoder_mask: Optional[AttentionMask] = None,
                cache=None, eager: bool = False, kv_states: Optional[Tensor] = None, out: Optional[Tensor] = None):
        """(B, T, C) -> ((B, T, C), self-attention probs or None, cross-attention probs or None). `out`: a spare
        buffer nobody reads any more, which the result may be written into."""
        if self._in_sequence_blocks(hidden_states, head_mask, encoder_hidden_states, cache, eager):
            return self._forward_in_sequence_blocks(hidden_states, mask, kv_states, out), None, None
        attention_output, self_probs = self.attention(hidden_states, mask, head_mask, None, cache, eager, kv_states)
        cross_probs = None
        if self.is_decoder and encoder_hidden_states is not None:
            if not hasattr(self, "crossattention"):
                raise ValueError("encoder_hidden_states were passed, but this model has no cross-attention layers; "
                                 "build it with config.add_cross_attention=True (and is_decoder=True)")
            attention_output, cross_probs = self.crossattention(attention_output, encoder_mask, head_mask,
                                                                encoder_hidden_states, cache, eager)
        return self.feed_forward(attention_output), self_probs, cross_probs

    def _in_sequence_blocks(self, hidden_states: Tensor, head_mask, encoder_hidden_states, cache, eager) -> bool:
        """Whether to run the layer a few sequences at a time: packed CPU inference on more token rows than one
        packed matmul takes, with nothing that needs the whole batch at once (attention probs, head mask,
        cross-attention, a cache). The packed test comes first: it is False under every tracer, so no size
        check on the (possibly symbolic) batch is recorded and an exported program fits every batch size."""
        return (fused.packed_weight(self.intermediate.dense, hidden_states) is not None
                and head_mask is None and encoder_hidden_states is None and cache is None and not eager
                and hidden_states.numel() > fused.PACKED_ROWS * hidden_states.shape[-1])

    def _forward_in_sequence_blocks(self, hidden_states: Tensor, mask: AttentionMask,
                                    kv_states: Optional[Tensor], out: Optional[Tensor] = None) -> Tensor:
        """The whole layer on groups of sequences of at most ~PACKED_ROWS token rows. Each sequence's math is
        unchanged (attention never mixes sequences); every intermediate of a group is a few MB, so it stays in
        cache and its memory is reused from group to group instead of page-faulting fresh batch-sized buffers,
        and every matmul runs on packed weights at a row count where they are fastest. (B, T, C) -> (B, T, C)."""
        keys = hidden_states.shape[1] if kv_states is None else kv_states.shape[1]
        group = max(1, fused.PACKED_ROWS // keys)
        if out is None or out.shape != hidden_states.shape or out.dtype != hidden_states.dtype:
            out = torch.empty_like(hidden_states)
        for start in range(0, hidden_states.shape[0], group):
            rows = slice(start, start + group)
            part = hidden_states[rows]
            context, _ = self.attention.self(part, select_batch_rows(mask, rows), None, None, None, False,
                                             None if kv_states is None else kv_states[rows])
            out[rows] = self.feed_forward_chunk(self.attention.output(context, part))
        return out

    def feed_forward(self, attention_output: Tensor) -> Tensor:
        chunk = self.chunk_size_feed_forward
        if chunk and attention_output.shape[1] > chunk:  # trade speed for memory, same numbers
            return torch.cat([self.feed_forward_chunk(part) for part in attention_output.split(chunk, dim=1)], dim=1)
        return self.feed_forward_chunk(attention_output)

    def feed_forward_chunk(self, attention_output: Tensor) -> Tensor:
        return self.output(self.intermediate(attention_output), attention_output)


def select_query_rows(mask: AttentionMask, index: Tensor) -> AttentionMask:
    """Restrict a mask to the query rows `index` (B, Q) (bias/row_keep with a per-query dim are gathered)."""
    def pick(t: Optional[Tensor]) -> Optional[Tensor]:
        if t is None or t.shape[-2] == 1:
            return t
        t = t.expand(index.shape[0], *t.shape[1:])
        idx = index[:, None, :, None].expand(-1, t.shape[1], -1, t.shape[-1])
        return t.gather(2, idx)
    return AttentionMask(bias=pick(mask.bias), is_causal=False, row_keep=pick(mask.row_keep))


def select_batch_rows(mask: AttentionMask, rows: slice) -> AttentionMask:
    """Restrict a mask to the sequences `rows` of the batch (a broadcast batch dim of 1 stays as it is)."""
    def pick(t: Optional[Tensor]) -> Optional[Tensor]:
        return t if t is None or t.shape[0] == 1 else t[rows]
    return AttentionMask(bias=pick(mask.bias), is_causal=mask.is_causal, row_keep=pick(mask.row_keep))


class RobertaEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList([RobertaLayer(config, layer_idx=i) for i in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False

    def forward(self, hidden_states: Tensor, mask: AttentionMask, head_mask=None, encoder_hidden_states=None,
                encoder_mask: Optional[AttentionMask] = None, cache=None, eager: bool = False,
                output_attentions: bool = False, output_hidden_states: bool = False,
                last_layer_rows: Optional[Tensor] = None):
        """Run the stack. `last_layer_rows` (B, Q) positions: the last layer computes only those query rows
        (keys/values still see every token), so the result is (B, Q, C); used by heads that read few rows.

        Returns (hidden (B, T|Q, C), all hidden states or None, self probs or None, cross probs or None).
        """
        all_hidden = () if output_hidden_states else None
        all_self = () if output_attentions else None
        all_cross = () if output_attentions and self.config.add_cross_attention else None
        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        last = len(self.layer) - 1
        spare = None  # a buffer the next layer may write its output into: an earlier layer's output, now unread
        for i, layer in enumerate(self.layer):
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
            layer_head_mask = head_mask[i] if head_mask is not None else None
            kv_states, layer_mask = None, mask
            if i == last and last_layer_rows is not None:
                kv_states = hidden_states
                layer_mask = select_query_rows(mask, last_layer_rows)
                hidden_states = hidden_states.gather(
                    1, last_layer_rows[..., None].expand(-1, -1, hidden_states.shape[-1]))  # (B, Q, C)
            if checkpointing:
                hidden_states, self_probs, cross_probs = checkpoint(
                    layer, hidden_states, layer_mask, layer_head_mask, encoder_hidden_states, encoder_mask, cache,
                    eager, kv_states, use_reentrant=False)
            else:
                layer_input = hidden_states
                hidden_states, self_probs, cross_probs = layer(
                    hidden_states, layer_mask, layer_head_mask, encoder_hidden_states, encoder_mask, cache, eager,
                    kv_states, out=spare)
                # this layer's input came from the previous layer (not the caller) and nothing keeps it: reuse it
                spare = layer_input if i > 0 and not output_hidden_states and kv_states is None else None
            if output_attentions:
                all_self = all_self + (self_probs,)
                if all_cross is not None:
                    all_cross = all_cross + (cross_probs,)
        if output_hidden_states:
            all_hidden = all_hidden + (hidden_states,)
        return hidden_states, all_hidden, all_self, all_cross


class RobertaPooler(nn.Module):
    """dense + tanh on the first token (<s>)."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: Tensor) -> Tensor:  # (B, T, C) -> (B, C)
        return self.activation(self.dense(hidden_states[:, 0]))
