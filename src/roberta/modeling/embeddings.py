"""Embeddings: word + position + token type, then LayerNorm and dropout.

RoBERTa's traps, all kept for checkpoint parity (fairseq lineage):
* positions start at padding_idx + 1 (2 for roberta-base), and padding tokens get position padding_idx,
  whose embedding row is zero. Positions count only non-pad tokens, so left padding works.
* hence 514 position rows give 512 usable tokens.
* type_vocab_size is 1: token_type_ids must be all 0.
Inputs are checked here, before any lookup, so mistakes give a clear error instead of an IndexError.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .fused import tracing

Tensor = torch.Tensor


def create_position_ids_from_input_ids(input_ids: Tensor, padding_idx: int, past_key_values_length: int = 0) -> Tensor:
    """(B, T) ids -> (B, T) positions: padding_idx + 1, +2, ... over non-pad tokens; pads get padding_idx."""
    mask = input_ids.ne(padding_idx).int()
    incremental = (torch.cumsum(mask, dim=1).type_as(mask) + past_key_values_length) * mask
    return incremental.long() + padding_idx


def _checking() -> bool:
    """Value checks read tensor data (a host sync); skip them under any tracer or compiler."""
    return not tracing()


class RobertaEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.padding_idx = config.pad_token_id
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=self.padding_idx)
        # Built twice, as transformers does (without, then with padding_idx), only so that a seeded build draws
        # the same random numbers and gives the same initial weights as transformers.
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # capital L: state-dict name
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size,
                                                padding_idx=self.padding_idx)
        self.position_embedding_type = getattr(config, "position_embedding_type", "absolute") or "absolute"
        # Non-persistent like transformers' (not in the state dict); recreated by `_init_buffers` after a meta build.
        self.register_buffer("position_ids", torch.arange(config.max_position_embeddings).expand((1, -1)),
                             persistent=False)
        self.register_buffer("token_type_ids", torch.zeros(self.position_ids.size(), dtype=torch.long),
                             persistent=False)

    @property
    def max_tokens(self) -> int:
        """Longest sequence (including past) the position table can hold: 512 for roberta-base."""
        offset = (self.padding_idx + 1) if self.padding_idx is not None else 0
        return self.position_embeddings.num_embeddings - offset

    def check_inputs(self, input_ids: Optional[Tensor], token_type_ids: Optional[Tensor],
                     position_ids: Optional[Tensor], seq_length: int, past_key_values_length: int) -> None:
        """Raise a ValueError naming the problem for ids the tables cannot look up."""
        total = seq_length + past_key_values_length
        if position_ids is None and self.position_embedding_type == "absolute" and total > self.max_tokens:
            what = f"{seq_length} tokens" + (f" plus {past_key_values_length} cached" if past_key_values_length else "")
            raise ValueError(
                f"Input of {what} is longer than this model's maximum of {self.max_tokens} tokens "
                f"(max_position_embeddings={self.position_embeddings.num_embeddings}, and RoBERTa positions start "
                f"at padding_idx+1={self.padding_idx + 1}). "
                f"Truncate the input, e.g. tokenizer(..., truncation=True, max_length={self.max_tokens}).")
        if self.position_embedding_type != "absolute" and total > self.position_embeddings.num_embeddings:
            raise ValueError(f"Input of {total} tokens is longer than max_position_embeddings="
                             f"{self.position_embeddings.num_embeddings}, the longest distance the relative position "
                             f"table covers. Truncate the input (truncation=True, max_length=...).")
        if not _checking():
            return
        if input_ids is not None and input_ids.numel():
            if input_ids.is_floating_point():
                raise ValueError(f"input_ids must be integer token ids, got dtype {input_ids.dtype}")
            lo, hi = torch.aminmax(input_ids)
            vocab = self.word_embeddings.num_embeddings
            if int(lo) < 0 or int(hi) >= vocab:
                bad = int(lo) if int(lo) < 0 else int(hi)
                raise ValueError(
                    f"input_ids contains id {bad}, outside the embedding table (vocab_size={vocab}, valid ids "
                    f"0..{vocab - 1}). If you added tokens to the tokenizer, call "
                    f"model.resize_token_embeddings(len(tokenizer)).")
        if token_type_ids is not None and token_type_ids.numel():
            lo, hi = torch.aminmax(token_type_ids)
            n = self.token_type_embeddings.num_embeddings
            if int(lo) < 0 or int(hi) >= n:
                bad = int(hi) if int(hi) >= n else int(lo)
                if n == 1:
                    raise ValueError(f"token_type_ids contains {bad}, but RoBERTa has type_vocab_size=1; token_type_ids "
                                     "must be 0 everywhere (or simply not passed). Sentence pairs are marked with "
                                     "</s></s>, not segment ids.")
                raise ValueError(f"token_type_ids contains {bad}, but this model has type_vocab_size={n}; valid "
                                 f"values are 0..{n - 1}.")
        if position_ids is not None and position_ids.numel():
            lo, hi = torch.aminmax(position_ids)
            n = self.position_embeddings.num_embeddings
            if int(lo) < 0 or int(hi) >= n:
                raise ValueError(f"position_ids contains {int(hi) if int(hi) >= n else int(lo)}, outside 0..{n - 1} "
                                 f"(max_position_embeddings={n}). Note RoBERTa's positions start at padding_idx+1.")

    def forward(self, input_ids: Optional[Tensor] = None, token_type_ids: Optional[Tensor] = None,
                position_ids: Optional[Tensor] = None, inputs_embeds: Optional[Tensor] = None,
                past_key_values_length: int = 0) -> Tensor:
        """(B, T) ids or (B, T, C) embeddings -> (B, T, C)."""
        if position_ids is None:
            if input_ids is not None:
                position_ids = create_position_ids_from_input_ids(input_ids, self.padding_idx, past_key_values_length)
            else:
                position_ids = self.create_position_ids_from_inputs_embeds(inputs_embeds)
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if token_type_ids is None:
            # all zeros: add row 0 by broadcasting instead of a (B, T) gather
            embeddings = inputs_embeds + self.token_type_embeddings.weight[0]
        else:
            embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        if self.position_embedding_type == "absolute":
            embeddings = embeddings + self.position_embeddings(position_ids)
        embeddings = self.LayerNorm(embeddings)
        if self.training:
            embeddings = self.dropout(embeddings)
        return embeddings

    def create_position_ids_from_inputs_embeds(self, inputs_embeds: Tensor) -> Tensor:
        """Embeddings cannot show padding, so positions are sequential from padding_idx + 1 (B, T)."""
        B, T = inputs_embeds.shape[:2]
        ids = torch.arange(self.padding_idx + 1, T + self.padding_idx + 1, dtype=torch.long,
                           device=inputs_embeds.device)
        return ids.unsqueeze(0).expand(B, T)
