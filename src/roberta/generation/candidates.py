"""Candidate sources for assisted decoding: each proposes the next few tokens, which the main model then checks.

`get(input_ids (1, S)) -> (input_ids + candidates (1, S + L), candidate scores (1, L, V) or None)`, and
`update(input_ids, scores, n_matches)` after the main model has checked them. Two sources, as in transformers 4.57:

AssistantCandidates   a (smaller) model of ours greedy-decodes / samples up to `num_assistant_tokens` tokens with
                      the main call's processors, keeping its own key/value cache between calls; it stops early when
                      its confidence in the last token falls under `assistant_confidence_threshold`.
PromptLookupCandidates  copies what followed the first earlier occurrence of the sequence's last n-gram
                      (n = max_matching_ngram_size down to 1): free candidates for text that repeats its prompt.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Optional, Sequence

import torch

from . import processors as P
from .stopping import EosToken, MaxLength

Tensor = torch.Tensor


def fit_length(state: dict[str, Any], length: int) -> dict[str, Any]:
    """Crop or extend (with ones / the last token type) the attention mask and token types to `length` positions."""
    for key, fill in (("attention_mask", None), ("token_type_ids", None)):
        value = state.get(key)
        if value is None or value.shape[1] == length:
            continue
        if value.shape[1] > length:
            state[key] = value[:, :length]
        else:
            extra = length - value.shape[1]
            tail = value.new_ones((value.shape[0], extra)) if key == "attention_mask" else value[:, -1:].expand(-1, extra)
            state[key] = torch.cat([value, tail], dim=-1)
    return state


class Confidence:
    """Stopping criterion of the assistant: done when the probability it gave its last token is under `threshold`."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def __call__(self, input_ids: Tensor, scores) -> Tensor:
        p = scores[-1].softmax(-1)[0, input_ids[0, -1]]
        return torch.full((input_ids.shape[0],), bool(p < self.threshold), dtype=torch.bool, device=input_ids.device)


class AssistantCandidates:
    def __init__(self, assistant, config, state: dict[str, Any], processors: Sequence[Callable],
                 eos: Optional[Tensor], pad: Optional[Tensor], generator: Optional[torch.Generator]):
        from roberta.modeling.generation import GenerationMixin

        if not isinstance(assistant, GenerationMixin):
            raise TypeError(f"assistant_model must be one of roberta's generation models (e.g. RobertaForCausalLM), "
                            f"got {type(assistant).__name__}")
        self.assistant, self.processors, self.eos, self.pad, self.generator = assistant, processors, eos, pad, generator
        settings = assistant.generation_config
        self.num_tokens = settings.num_assistant_tokens
        self.schedule = settings.num_assistant_tokens_schedule
        self.threshold = settings.assistant_confidence_threshold
        self.main_max_length, self.main_min_length = config.max_length, config.min_length or 0
        # the assistant runs the main call's strategy and outputs, and always records its scores (they are the
        # candidate scores speculative sampling needs, and what its confidence criterion reads)
        self.config = copy.deepcopy(config)
        self.config.return_dict_in_generate = self.config.output_scores = True
        self.config.min_length = 0
        device = assistant.device
        self.state = {k: v.detach().to(device) if torch.is_tensor(v) else copy.deepcopy(v)
                      for k, v in state.items() if k != "past_key_values"}

    def get(self, input_ids: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        from .search import sample_or_greedy

        input_ids = input_ids.to(self.assistant.device)
        length = input_ids.shape[1]
        max_new = min(int(self.num_tokens), self.main_max_length - length - 1)  # leave the main model one token
        if max_new <= 0:
            return input_ids, None
        cache = self.state.get("past_key_values")
        if cache is not None:
            # keep the cache up to the token before the last accepted one (transformers' rule: the last two
            # tokens are fed again, so both libraries run the assistant on the same shapes)
            cache.crop(length - 2)
            fit_length(self.state, length)
        min_new = max(min(max_new, self.main_min_length - length), 0)
        self.config.max_length, self.config.min_new_tokens = length + max_new, min_new
        # the assistant's processors are made as transformers' generate makes them for it: its own settings' defaults
        # with the main call's processors taking their place, then its sampling warpers. The main list holds warpers
        # already, so temperature / top-k / top-p apply twice to the drafts: that only sharpens the draft
        # distribution (speculative sampling still samples the main model's), and keeps the draws identical.
        processors = P.build_processors(self.config, length, self.eos, self.processors)
        criteria = [MaxLength(self.config.max_length, getattr(self.assistant.config, "max_position_embeddings", None))]
        if self.eos is not None:
            criteria.append(EosToken(self.eos))
        if self.threshold:
            criteria.append(Confidence(self.threshold))
        out = sample_or_greedy(self.assistant, input_ids, dict(self.state), processors, criteria, self.config,
                               self.pad, self.generator)
        self.state["past_key_values"] = out.past_key_values
        return out.sequences, torch.stack(out.scores, dim=1)  # (1, L, V)

    def update(self, input_ids: Tensor, scores: Tensor, n_matches: int) -> None:
        if self.schedule in ("heuristic", "heuristic_transient"):
            # every candidate accepted: propose two more next time; else one fewer (at least one)
            self.num_tokens = self.num_tokens + 2.0 if n_matches == scores.shape[1] - 1 else max(1.0, self.num_tokens - 1.0)

    def finish(self) -> None:
        if self.schedule == "heuristic":  # the learned length persists on the assistant, as in transformers
            self.assistant.generation_config.num_assistant_tokens = self.num_tokens


class PromptLookupCandidates:
    def __init__(self, num_tokens: int, max_ngram: int, max_length: int, eos: Optional[Tensor],
                 processors: Sequence[Callable], vocab_size: int):
        if num_tokens <= 0 or max_ngram <= 0:
            raise ValueError(f"prompt_lookup_num_tokens ({num_tokens}) and max_matching_ngram_size ({max_ngram}) must "
                             "be positive")
        self.num_tokens, self.max_ngram, self.max_length = num_tokens, max_ngram, max_length
        self.eos, self.processors, self.vocab_size = eos, processors, vocab_size

    def get(self, input_ids: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        length = input_ids.shape[1]
        if self.max_length == length + 1:
            return input_ids, None
        for n in range(min(self.max_ngram, length - 1), 0, -1):
            windows = input_ids.unfold(1, n, 1)  # (1, S - n + 1, n)
            starts = (windows == input_ids[0, -n:]).all(dim=2).nonzero(as_tuple=True)[1]  # earliest first
            for start in starts.tolist():
                begin, end = start + n, min(start + n + self.num_tokens, length, self.max_length)
                if begin >= end:
                    continue
                chosen = self._allowed_prefix(input_ids, input_ids[0, begin:end])
                if chosen.numel() == 0:
                    continue
                if self.eos is not None:  # never propose an EOS (nor what follows it)
                    at_eos = torch.isin(chosen, self.eos.to(chosen.device)).nonzero()
                    if at_eos.numel():
                        chosen = chosen[:int(at_eos[0])]
                if chosen.numel() == 0:
                    return input_ids, None
                return torch.cat([input_ids, chosen[None]], dim=1), None
        return input_ids, None

    def _allowed_prefix(self, input_ids: Tensor, chosen: Tensor) -> Tensor:
        """The candidates up to the first one a processor forbids (-inf or the dtype's min on flat logits)."""
        flat = torch.ones((input_ids.shape[0], self.vocab_size), device=input_ids.device, dtype=torch.float32)
        sequence = input_ids
        for i, token in enumerate(chosen.tolist()):
            score = P.apply(self.processors, sequence, flat.clone())[0, token]
            if score == -float("inf") or score == torch.finfo(score.dtype).min:
                return chosen[:i]
            sequence = torch.cat([input_ids, chosen[None, :i + 1]], dim=1)
        return chosen

    def update(self, input_ids: Tensor, scores: Tensor, n_matches: int) -> None:
        pass

    def finish(self) -> None:
        pass
