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


def transition_scores(sequences: Tensor, scores: tuple[Tensor, ...], beam_indices: Optional[Tensor] = None,
                      normalize_logits: bool = False) -> Tensor:
    """The score of each generated token: (N, new tokens), 0 after a beam hypothesis ended.

    sequences (N, S) and scores (one (rows, V) tensor per step) from generate(output_scores=True); for beam search
    pass beam_indices (N, new) too, which name the beam row each token came from. normalize_logits applies a
    log-softmax over the vocabulary first (for scores that are not log-probabilities yet)."""
    steps = torch.stack(scores, dim=1)  # (rows, new, V)
    if normalize_logits:
        steps = torch.log_softmax(steps, dim=-1)
    if beam_indices is None:  # one row per sequence, every step
        beam_indices = torch.arange(steps.shape[0], device=steps.device)[:, None].expand(-1, len(scores))
    ended = beam_indices < 0
    length = int((~ended).sum(dim=-1).max())
    rows = beam_indices[:, :length].clamp(min=0).long()  # (N, length)
    tokens = sequences[:, sequences.shape[1] - length:]
    chosen = steps[rows, torch.arange(length, device=steps.device)[None, :], tokens]
    return chosen.masked_fill(ended[:, :length], 0.0)
