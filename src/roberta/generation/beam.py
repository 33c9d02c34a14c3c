"""Beam search (and beam sampling): K running hypotheses per prompt, the best K finished ones kept aside.

Shapes: B prompts, K = num_beams, V vocabulary, L = max_length; C = max(2, 1 + number of EOS ids) * K candidates
per step (enough that K of them can keep running even when the best ones all end). All bookkeeping is in
fixed-size tensors, the same algorithm and float operations as transformers 4.57's vectorised beam search, so
the chosen tokens, sequence scores and beam indices are equal:

* each step, running log-probabilities + the step's processed log-softmax give (B, K*V) candidate scores; the
  top C (or C drawn without replacement, when sampling) are the candidates;
* candidates that hit a stopping criterion (EOS, max length) cannot run on; the best K others do;
* among the top K candidates, those that just finished compete with the finished ones, scored
  sum(log p) / (new tokens ** length_penalty);
* it stops when no running beam can still beat the worst finished one (early_stopping=False: judged at the
  current length; "never": at max_length when length_penalty > 0), when every prompt holds K finished
  hypotheses and early_stopping=True, or when every candidate hit a stopping criterion.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch

from . import processors as P
from .outputs import GenerateBeamDecoderOnlyOutput
from .search import StepRecorder, next_logits
from .stopping import is_done

Tensor = torch.Tensor
NEG = -1.0e9  # "impossible" score, finite so sums stay ordered


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """x (B, K, ...) and index (B, J) -> (B, J, ...): the selected beams of each prompt."""
    while index.dim() < x.dim():
        index = index.unsqueeze(-1)
    return torch.take_along_dim(x, index, dim=1)


def _can_improve(improvable: Tensor, running_scores: Tensor, finished_scores: Tensor, finished: Tensor, cur_len: int,
                 max_length: int, prompt_len: int, early_stopping, length_penalty: float) -> Tensor:
    """(B, 1): whether a running beam of a prompt may still beat its worst finished hypothesis."""
    if early_stopping == "never" and length_penalty > 0.0:
        best_length = max_length - prompt_len  # a longer hypothesis scores better: assume the longest
    else:
        best_length = cur_len - prompt_len
    best_running = running_scores[:, :1] / (best_length ** length_penalty)
    worst_finished = torch.where(finished, torch.min(finished_scores, dim=1, keepdim=True)[0], NEG)
    return improvable & torch.any(best_running > worst_finished, dim=-1, keepdim=True)


def beam_search(model, input_ids: Tensor, state: dict[str, Any], processors: Sequence[Callable],
                criteria: Sequence[Callable], config, pad: Optional[Tensor], eos: Optional[Tensor],
                generator: Optional[torch.Generator] = None):
    """input_ids (B*K, S), each prompt repeated K times -> (B * num_return_sequences, S + new) best hypotheses
    (or GenerateBeamDecoderOnlyOutput with return_dict_in_generate)."""
    K, L = config.num_beams, config.max_length
    early_stopping, length_penalty = config.early_stopping, config.length_penalty
    N, cur_len = input_ids.shape
    B, V, prompt_len = N // K, model.config.vocab_size, cur_len
    C = max(2, 1 + (eos.shape[0] if eos is not None else 0)) * K
    device = input_ids.device
    in_top_k = torch.arange(C, device=device) < K  # (C,) the candidates that may become finished hypotheses
    record = StepRecorder(config)

    # unfilled tail of a shorter hypothesis: pad (eos[0] when pad is unset or 0, as transformers), -1 without EOS
    fill = -1 if eos is None else int(pad) if pad is not None and int(pad) != 0 else int(eos[0])
    running = torch.full((B, K, L), fill, dtype=torch.int64, device=device)  # (B, K, L)
    running[:, :, :cur_len] = input_ids.view(B, K, cur_len)
    running_scores = torch.zeros((B, K), dtype=torch.float, device=device)
    running_scores[:, 1:] = NEG  # all beams start equal: let only the first one expand at step one
    running_beams = torch.full((B, K, L - cur_len), -1, dtype=torch.int32, device=device)  # row each token came from
    best = running.clone()  # finished hypotheses (B, K, L), their scores and beam rows
    best_scores = torch.full((B, K), NEG, dtype=torch.float, device=device)
    best_beams = running_beams.clone()
    finished = torch.zeros((B, K), dtype=torch.bool, device=device)
    improvable = torch.ones((B, 1), dtype=torch.bool, device=device)

    while True:
        flat = running[:, :, :cur_len].reshape(B * K, cur_len)
        logits, outputs = next_logits(model, flat, state)
        log_probs = P.apply(processors, flat, torch.log_softmax(logits, dim=-1))
        record.add(log_probs.clone(), logits.clone(), outputs)
        del outputs
        totals = (log_probs.view(B, K, V) + running_scores[:, :, None]).reshape(B, K * V)

        # the C best continuations over all beams of a prompt
        if config.do_sample:
            picks = torch.multinomial(torch.softmax(totals, dim=-1), num_samples=C, generator=generator)
            cand_scores = torch.gather(totals, 1, picks)
        else:
            cand_scores, picks = torch.topk(totals, k=C)
        from_beam = picks // V  # (B, C)
        cand = _gather(running, from_beam)
        cand[:, :, cur_len] = picks % V
        cand_beams = _gather(running_beams, from_beam)
        cand_beams[:, :, cur_len - prompt_len] = from_beam + torch.arange(B, device=device)[:, None] * K
        ends = is_done(criteria, cand[:, :, :cur_len + 1].reshape(B * C, cur_len + 1), record.scores).view(B, C)

        # the K best candidates that can go on run next step
        alive_scores = cand_scores + ends.to(torch.float32) * NEG
        keep = torch.topk(alive_scores, k=K)[1]
        running, running_scores, running_beams = _gather(cand, keep), _gather(alive_scores, keep), _gather(cand_beams, keep)

        # finished candidates among the top K compete with the finished hypotheses, length-penalised
        just_ended = ends & in_top_k[None, :]
        final = cand_scores / ((cur_len + 1 - prompt_len) ** length_penalty)
        final += (torch.all(finished, dim=-1, keepdim=True) & (early_stopping is True)).to(torch.float32) * NEG
        final += (~improvable).to(torch.float32) * NEG
        final += (~just_ended) * NEG
        top = torch.topk(torch.cat((best_scores, final), dim=1), k=K)[1]
        best = _gather(torch.cat((best, cand), dim=1), top)
        best_scores = _gather(torch.cat((best_scores, final), dim=1), top)
        best_beams = _gather(torch.cat((best_beams, cand_beams), dim=1), top)
        finished = _gather(torch.cat((finished, just_ended), dim=1), top)

        cache = state.get("past_key_values")
        if cache is not None:  # the cache rows follow the beams that run on
            cache.reorder_cache(running_beams[..., cur_len - prompt_len].reshape(-1))
        cur_len += 1
        improvable = _can_improve(improvable, running_scores, best_scores, finished, cur_len, L, prompt_len,
                                  early_stopping, length_penalty)
        all_full = torch.all(finished) & (early_stopping is True)
        if not bool(torch.any(improvable) & ~all_full & ~torch.all(ends)):
            break

    R = config.num_return_sequences
    sequences = best[:, :R].reshape(B * R, L)
    scores, beams = best_scores[:, :R].reshape(B * R), best_beams[:, :R].reshape(B * R, L - prompt_len)
    new_tokens = int((beams + 1).bool().sum(dim=1).max())
    sequences, beams = sequences[:, :prompt_len + new_tokens], beams[:, :new_tokens]
    if not config.return_dict_in_generate:
        return sequences
    fields = record.fields()
    return GenerateBeamDecoderOnlyOutput(
        sequences=sequences, sequences_scores=scores if config.output_scores else None, scores=fields["scores"],
        logits=fields["logits"], beam_indices=beams, attentions=fields["attentions"],
        hidden_states=fields["hidden_states"], past_key_values=cache)
