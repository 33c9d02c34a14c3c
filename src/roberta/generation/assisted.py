"""Assisted decoding: a candidate source proposes tokens, one forward pass of the main model checks them all.

Each round (batch of one row, as in transformers): candidates (1, S + L) from roberta.generation.candidates; the
main model scores the L + 1 positions it has not seen; the longest prefix of candidates equal to what the main
model would choose is kept, plus the main model's own next token; the key/value cache is cropped to the kept
tokens. Greedy gives the tokens greedy search gives. Sampling with an assistant follows speculative sampling
(Leviathan et al. 2023, algorithm 1: accept candidate i with probability min(1, p_i / q_i), else draw from
max(p - q, 0)); with prompt lookup (no candidate scores) it samples every position and keeps the agreeing prefix.
Draws use `generator` or torch's global RNG in transformers' order, so a seed gives both libraries the same tokens.

scores / logits / attentions / hidden_states hold one entry per generated token, as greedy search records them.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch

from . import processors as P
from .candidates import AssistantCandidates, PromptLookupCandidates, fit_length
from .outputs import GenerateDecoderOnlyOutput
from .stopping import is_done

Tensor = torch.Tensor


def candidate_source(model, config, state: dict[str, Any], processors: Sequence[Callable], eos: Optional[Tensor],
                     pad: Optional[Tensor], assistant_model, generator: Optional[torch.Generator]):
    if config.prompt_lookup_num_tokens is not None:
        return PromptLookupCandidates(config.prompt_lookup_num_tokens, config.max_matching_ngram_size or 2,
                                      config.max_length, eos, processors, model.config.vocab_size)
    if assistant_model.config.vocab_size != model.config.vocab_size:
        raise NotImplementedError(
            f"the assistant's vocabulary ({assistant_model.config.vocab_size} tokens) differs from the model's "
            f"({model.config.vocab_size}); assisted decoding across tokenizers is not supported")
    return AssistantCandidates(assistant_model, config, state, processors, eos, pad, generator)


def check_assisted(config, input_ids: Tensor, state: dict[str, Any]) -> None:
    """transformers' limits on assisted decoding, with its messages."""
    if config.num_return_sequences > 1:
        raise ValueError("num_return_sequences has to be 1 when doing assisted generate, "
                         f"but is {config.num_return_sequences}.")
    if not state.get("use_cache"):
        raise ValueError("assisted generate requires `use_cache=True`")
    if input_ids.shape[0] > 1:
        raise ValueError("assisted generate is only supported for batch_size = 1")
    if state.get("inputs_embeds") is not None:
        raise NotImplementedError("assisted generate needs an input_ids prompt (not inputs_embeds)")


def _accept(new_scores: Tensor, candidates: Tensor, candidate_scores: Optional[Tensor], length: int,
            do_sample: bool, last_is_done: bool, generator) -> tuple[Tensor, int]:
    """new_scores (1, L + 1, V) of the main model, candidates (1, L) -> (kept tokens (1, n + 1), n matches)."""
    if do_sample and candidate_scores is not None:  # speculative sampling
        q = candidate_scores.softmax(dim=-1)  # (1, L, V)
        p = new_scores.softmax(dim=-1)  # (1, L + 1, V)
        steps = torch.arange(length, device=p.device)
        ratio = p[0, steps, candidates[0]] / q[0, steps, candidates[0]]  # (L,)
        accepted = torch.rand(ratio.shape, generator=generator, device=ratio.device, dtype=ratio.dtype) <= ratio
        n = int((~accepted).cumsum(dim=-1).lt(1).sum())
        if last_is_done and n == length:  # the last candidate ends the sequence: no token after it
            return candidates[:, :n], n - 1
        residual = p[:, n, :]
        if n < q.shape[1]:  # a rejection: draw from where the main model puts more mass than the assistant
            residual = torch.clamp(residual - q[:, n, :], min=0)
            residual.div_(residual.sum())
        drawn = torch.multinomial(residual, num_samples=1, generator=generator).squeeze(1)[None, :]
        return torch.cat([candidates[:, :n], drawn], dim=-1), n
    if do_sample:
        chosen = torch.multinomial(new_scores[0].softmax(dim=-1), num_samples=1, generator=generator).squeeze(1)[None, :]
    else:
        chosen = new_scores.argmax(dim=-1)  # (1, L + 1)
    n = int((~(candidates == chosen[:, :-1])).cumsum(dim=-1).lt(1).sum())
    if last_is_done and n == length:
        n -= 1
    return chosen[:, :n + 1], n


def _per_token(layers: tuple[Tensor, ...], first: int, count: int, cached: int, first_round: bool,
               attention: bool) -> tuple[tuple[Tensor, ...], ...]:
    """Split one forward's per-layer outputs into the entries greedy search would have recorded: rows `first`..
    `first + count - 1` produced the kept tokens (on the first round the entry of the first token holds every
    prompt row); an attention row at absolute position p keeps keys 0..p."""
    entries = []
    for i in range(count):
        start = 0 if (first_round and i == 0) else first + i
        stop = first + i + 1
        entries.append(tuple(layer[..., start:stop, :cached + stop] if attention else layer[..., start:stop, :]
                             for layer in layers))
    return tuple(entries)


def assisted_search(model, input_ids: Tensor, state: dict[str, Any], processors: Sequence[Callable],
                    criteria: Sequence[Callable], config, source, generator: Optional[torch.Generator] = None):
    """input_ids (1, S) -> (1, S + new), or GenerateDecoderOnlyOutput with return_dict_in_generate."""
    wanted = config.return_dict_in_generate
    scores = () if wanted and config.output_scores else None
    raw = () if wanted and config.output_logits else None
    attentions = () if wanted and config.output_attentions else None
    hidden = () if wanted and config.output_hidden_states else None
    first_round = True
    while True:
        length = input_ids.shape[1]
        with_candidates, candidate_scores = source.get(input_ids)
        with_candidates = with_candidates.to(input_ids.device)
        if candidate_scores is not None:
            candidate_scores = candidate_scores.to(input_ids.device)
        n_candidates = with_candidates.shape[1] - length
        last_is_done = bool(is_done(criteria, with_candidates, None).any())

        # one forward over the positions the cache has not seen, logits for the last n_candidates + 1 of them
        fit_length(state, with_candidates.shape[1])
        cache = state.get("past_key_values")
        cached = cache.get_seq_length() if cache is not None else 0
        inputs = model.prepare_inputs_for_generation(with_candidates, **dict(state, logits_to_keep=n_candidates + 1))
        outputs = model(**inputs, return_dict=True)
        logits = outputs.logits[:, -n_candidates - 1:].to(dtype=torch.float32, copy=True)  # (1, L + 1, V)
        new_scores = logits.clone()
        for i in range(n_candidates + 1):
            new_scores[:, i, :] = P.apply(processors, with_candidates[:, :length + i], new_scores[:, i, :])

        kept, n = _accept(new_scores, with_candidates[:, length:], candidate_scores, n_candidates,
                          config.do_sample, last_is_done, generator)
        input_ids = torch.cat([input_ids, kept], dim=-1)
        state["past_key_values"] = outputs.past_key_values
        state["past_key_values"].crop(input_ids.shape[1] - 1)  # drop the rejected candidates (and the last token)
        fit_length(state, input_ids.shape[1])
        source.update(input_ids, new_scores, n)

        if scores is not None:
            scores += tuple(new_scores[:, i, :] for i in range(n + 1))
        if raw is not None:
            raw += tuple(logits[:, i, :] for i in range(n + 1))
        fed = with_candidates.shape[1] - cached
        first_row = fed - n_candidates - 1  # the row whose logits chose the first kept token
        if attentions is not None:
            attentions += _per_token(outputs.attentions, first_row, n + 1, cached, first_round, attention=True)
        if hidden is not None:
            hidden += _per_token(outputs.hidden_states, first_row, n + 1, cached, first_round, attention=False)
        del outputs
        first_round = False
        if bool(is_done(criteria, input_ids, scores).all()):
            break
    source.finish()
    if not wanted:
        return input_ids
    return GenerateDecoderOnlyOutput(sequences=input_ids, scores=scores, logits=raw, attentions=attentions,
                                     hidden_states=hidden, past_key_values=state.get("past_key_values"))
