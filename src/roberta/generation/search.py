"""Greedy search and multinomial sampling: one token per row per step.

Each step: forward on the new positions, fp32 copy of the last logits, processors, then argmax or a draw from
softmax(scores). A draw uses `generator` when given, else torch's global RNG, exactly as transformers does
(one `torch.multinomial(probs, 1)` per step), so `torch.manual_seed(s)` before either library gives the
same tokens. Rows that finished get `pad` from then on; the loop ends when every row finished.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch

from . import processors as P
from .inputs import update_state
from .outputs import GenerateDecoderOnlyOutput
from .stopping import is_done

Tensor = torch.Tensor


class StepRecorder:
    """Collects what return_dict_in_generate asks for, one entry per step."""

    def __init__(self, config):
        wanted = config.return_dict_in_generate
        self.scores = () if wanted and config.output_scores else None
        self.logits = () if wanted and config.output_logits else None
        self.attentions = () if wanted and config.output_attentions else None
        self.hidden_states = () if wanted and config.output_hidden_states else None

    def add(self, scores: Tensor, logits: Tensor, outputs) -> None:
        if self.scores is not None:
            self.scores += (scores,)
        if self.logits is not None:
            self.logits += (logits,)
        if self.attentions is not None:
            self.attentions += (outputs.attentions,)
        if self.hidden_states is not None:
            self.hidden_states += (outputs.hidden_states,)

    def fields(self) -> dict[str, Any]:
        return dict(scores=self.scores, logits=self.logits, attentions=self.attentions,
                    hidden_states=self.hidden_states)


def next_logits(model, input_ids: Tensor, state: dict[str, Any]) -> tuple[Tensor, Any]:
    """One forward pass on the positions not seen yet -> (fp32 copy of the last logits (N, V), outputs)."""
    outputs = model(**model.prepare_inputs_for_generation(input_ids, **state), return_dict=True)
    update_state(state, outputs)
    return outputs.logits[:, -1, :].to(dtype=torch.float32, copy=True), outputs


def sample_or_greedy(model, input_ids: Tensor, state: dict[str, Any], processors: Sequence[Callable],
                     criteria: Sequence[Callable], config, pad: Optional[Tensor],
                     generator: Optional[torch.Generator] = None):
    """input_ids (N, S) -> (N, S + new), or GenerateDecoderOnlyOutput with return_dict_in_generate."""
    record = StepRecorder(config)
    pads_finished = any(hasattr(c, "eos") or hasattr(c, "eos_token_id") for c in criteria)
    unfinished = torch.ones(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    while True:
        logits, outputs = next_logits(model, input_ids, state)
        scores = P.apply(processors, input_ids, logits)
        record.add(scores, logits, outputs)
        del outputs
        if config.do_sample:
            next_ids = torch.multinomial(scores.softmax(dim=-1), num_samples=1, generator=generator).squeeze(1)
        else:
            next_ids = scores.argmax(dim=-1)
        if pads_finished:
            next_ids = next_ids * unfinished + pad * (1 - unfinished)
        input_ids = torch.cat([input_ids, next_ids[:, None]], dim=-1)
        unfinished = unfinished & ~is_done(criteria, input_ids, record.scores)
        if unfinished.max() == 0:
            break
    if not config.return_dict_in_generate:
        return input_ids
    return GenerateDecoderOnlyOutput(sequences=input_ids, past_key_values=state.get("past_key_values"),
                                     **record.fields())
