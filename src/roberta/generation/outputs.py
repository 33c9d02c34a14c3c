"""What generate(return_dict_in_generate=True) returns: transformers' output classes, same fields.

scores / logits are tuples with one (N, V) tensor per generated token (N = batch x num_return_sequences, or
batch x num_beams during beam search); attentions / hidden_states one tuple of per-layer tensors per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from roberta.modeling.outputs import ModelOutput

Tensor = torch.Tensor


@dataclass
class GenerateDecoderOnlyOutput(ModelOutput):
    sequences: Optional[Tensor] = None  # (N, S)
    scores: Optional[tuple[Tensor, ...]] = None  # processed scores, as the token was chosen from
    logits: Optional[tuple[Tensor, ...]] = None  # raw model logits
    attentions: Optional[tuple[Any, ...]] = None
    hidden_states: Optional[tuple[Any, ...]] = None
    past_key_values: Optional[Any] = None


@dataclass
class GenerateBeamDecoderOnlyOutput(ModelOutput):
    sequences: Optional[Tensor] = None  # (B * num_return_sequences, S)
    sequences_scores: Optional[Tensor] = None  # (B * num_return_sequences,) length-penalised log-probability
    scores: Optional[tuple[Tensor, ...]] = None  # per step (B * num_beams, V) processed log-probabilities
    logits: Optional[tuple[Tensor, ...]] = None
    beam_indices: Optional[Tensor] = None  # (B * num_return_sequences, new tokens): beam row of each step, -1 after
    attentions: Optional[tuple[Any, ...]] = None
    hidden_states: Optional[tuple[Any, ...]] = None
    past_key_values: Optional[Any] = None


# transformers' older names for the same classes
GreedySearchDecoderOnlyOutput = SampleDecoderOnlyOutput = GenerateDecoderOnlyOutput
BeamSearchDecoderOnlyOutput = BeamSampleDecoderOnlyOutput = GenerateBeamDecoderOnlyOutput
