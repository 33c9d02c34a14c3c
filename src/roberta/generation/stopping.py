"""Stopping criteria: each `(input_ids (N, S), scores) -> done (N,) bool`, one concept each, composed in a list.

A row is finished once any criterion says so. Any callable with this signature (transformers' own criteria
too) can be passed to generate(stopping_criteria=[...]).
"""
from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence

import torch

from .processors import merge

logger = logging.getLogger(__name__)
Tensor = torch.Tensor


class MaxLength:
    """Done when the sequence (prompt included) holds `max_length` tokens."""

    def __init__(self, max_length: int, max_position_embeddings: Optional[int] = None):
        self.max_length, self.max_position_embeddings = max_length, max_position_embeddings

    def __call__(self, input_ids: Tensor, scores=None) -> Tensor:
        length = input_ids.shape[1]
        if self.max_position_embeddings is not None and length >= self.max_position_embeddings and length < self.max_length:
            logger.warning("This is a RoBERTa model with %d position embeddings, and the sequence reached %d tokens: "
                           "expect an error about positions from the next forward pass", self.max_position_embeddings,
                           length)
        return torch.full((input_ids.shape[0],), length >= self.max_length, dtype=torch.bool, device=input_ids.device)


class EosToken:
    """Done when the last token is one of the EOS ids."""

    def __init__(self, eos: Tensor):
        self.eos = eos

    def __call__(self, input_ids: Tensor, scores=None) -> Tensor:
        return torch.isin(input_ids[:, -1], self.eos.to(input_ids.device))


def build_criteria(config, max_position_embeddings: Optional[int], eos: Optional[Tensor],
                   custom: Sequence[Callable] | None = None) -> list[Callable]:
    criteria: list[Callable] = [MaxLength(config.max_length, max_position_embeddings)]
    if eos is not None:
        criteria.append(EosToken(eos))
    return merge(criteria, custom)


def is_done(criteria: Sequence[Callable], input_ids: Tensor, scores) -> Tensor:
    done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    for criterion in criteria:
        result = criterion(input_ids, scores)
        if isinstance(result, bool):  # old-style criteria answer for the whole batch
            result = torch.full_like(done, result)
        done = done | result.to(done.device)
    return done
