"""Logits processors: each one concept, `(input_ids (N, S), scores (N, V)) -> scores (N, V)`.

N is batch x beams (or x num_return_sequences), S the tokens so far, V the vocabulary. They are composed in a
list, in transformers' order (penalties and bans first, then the sampling warpers), so the scores each step
are the same floats as transformers' and seeded sampling draws the same tokens. Any callable with this
signature (transformers' own processors too) can be passed to generate(logits_processor=[...]).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

Tensor = torch.Tensor


def _is_positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _eos_mask(eos: Tensor, vocab_size: int, device) -> Tensor:
    return torch.isin(torch.arange(vocab_size, device=device), eos.to(device))  # (V,)


class RepetitionPenalty:
    """Scores of tokens already in the sequence: divided by `penalty` when positive, multiplied when negative
    (CTRL's penalty; > 1 discourages repeats)."""

    def __init__(self, penalty: float):
        if not _is_positive_number(penalty):
            raise ValueError(f"repetition_penalty must be a number > 0, got {penalty!r}")
        self.penalty = float(penalty)

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        seen = torch.gather(scores, 1, input_ids)
        seen = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return scores.scatter(1, input_ids, seen)


class NoRepeatNGram:
    """Ban every token that would complete an n-gram already present in the sequence."""

    def __init__(self, ngram_size: int):
        if not isinstance(ngram_size, int) or ngram_size <= 0:
            raise ValueError(f"no_repeat_ngram_size must be a positive int, got {ngram_size!r}")
        self.n = ngram_size

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        length = input_ids.shape[1]
        if length + 1 < self.n:
            return scores
        scores = scores.clone()
        for row, tokens in enumerate(input_ids.tolist()):
            prefix = tuple(tokens[length - self.n + 1:]) if self.n > 1 else ()
            banned = {tuple(tokens[i:i + self.n]) for i in range(length - self.n + 1)}
            banned = [gram[-1] for gram in banned if gram[:-1] == prefix]
            if banned:
                scores[row, banned] = float("-inf")
        return scores


class BadWords:
    """Ban token sequences: a single token always; the last token of a longer sequence when the sequence so
    far ends with the rest of it. A ban that is exactly one EOS token is dropped (transformers does the same)."""

    def __init__(self, bad_words_ids: Sequence[Sequence[int]], eos: Tensor | None = None):
        ok = isinstance(bad_words_ids, (list, tuple)) and len(bad_words_ids) > 0 and all(
            isinstance(seq, (list, tuple)) and len(seq) > 0
            and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in seq) for seq in bad_words_ids)
        if not ok:
            raise ValueError(f"bad_words_ids must be a non-empty list of non-empty lists of token ids >= 0, e.g. "
                             f"[[13], [42, 7]]; got {bad_words_ids!r}")
        eos_ids = set(eos.tolist()) if eos is not None else set()
        self.sequences = [list(seq) for seq in bad_words_ids if not (len(seq) == 1 and seq[0] in eos_ids)]

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        vocab = scores.shape[-1]
        too_big = sorted({t for seq in self.sequences for t in seq if t >= vocab})
        if too_big:
            raise ValueError(f"bad_words_ids holds token ids {too_big} outside the vocabulary of {vocab} tokens")
        banned = torch.zeros_like(scores, dtype=torch.bool)  # (N, V)
        for seq in self.sequences:
            *prefix, last = seq
            if not prefix:
                banned[:, last] = True
            elif len(seq) <= input_ids.shape[1]:
                tail = input_ids[:, -len(prefix):]
                banned[:, last] |= (tail == torch.tensor(prefix, device=tail.device)).all(dim=1)
        return scores.masked_fill(banned, float("-inf"))


class MinLength:
    """No EOS while the sequence (prompt included) is shorter than `min_length`."""

    def __init__(self, min_length: int, eos: Tensor):
        if not isinstance(min_length, int) or min_length < 0:
            raise ValueError(f"min_length must be an int >= 0, got {min_length!r}")
        self.min_length, self.eos = min_length, eos

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        if input_ids.shape[1] >= self.min_length:
            return scores
        return torch.where(_eos_mask(self.eos, scores.shape[-1], scores.device), -math.inf, scores)


class MinNewTokens:
    """No EOS before `min_new_tokens` tokens were generated after the prompt."""

    def __init__(self, prompt_length: int, min_new_tokens: int, eos: Tensor):
        if not isinstance(min_new_tokens, int) or min_new_tokens < 0:
            raise ValueError(f"min_new_tokens must be an int >= 0, got {min_new_tokens!r}")
        self.prompt_length, self.min_new_tokens, self.eos = prompt_length, min_new_tokens, eos

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        if input_ids.shape[1] - self.prompt_length >= self.min_new_tokens:
            return scores
        return torch.where(_eos_mask(self.eos, scores.shape[-1], scores.device), -math.inf, scores)


class RemoveInvalidValues:
    """NaN -> 0, +inf -> the largest finite float, -inf -> the smallest, so a broken step cannot crash sampling."""

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        finfo = torch.finfo(scores.dtype)
        fixed = torch.where(scores != scores, 0.0, scores)
        fixed = torch.where(scores == float("inf"), finfo.max, fixed)
        return torch.where(scores == float("-inf"), finfo.min, fixed)


class Temperature:
    """scores / temperature (sampling only): < 1 sharpens the distribution, > 1 flattens it."""

    def __init__(self, temperature: float):
        if not _is_positive_number(temperature):
            hint = " (for greedy decoding set do_sample=False)" if temperature == 0 else ""
            raise ValueError(f"temperature must be a number > 0 when sampling, got {temperature!r}{hint}")
        self.temperature = temperature

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        return scores / self.temperature


class TopK:
    """Keep the k best scores (at least `min_keep`), the rest to -inf."""

    def __init__(self, top_k: int, min_keep: int = 1):
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k <= 0:
            raise ValueError(f"top_k must be a positive int (0 or None turns it off), got {top_k!r}")
        self.k = max(top_k, min_keep)

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        kth = torch.topk(scores, min(self.k, scores.shape[-1]))[0][..., -1:]
        return scores.masked_fill(scores < kth, float("-inf"))


class TopP:
    """Nucleus: keep the smallest set of best tokens whose probability reaches p (at least `min_keep`).

    Computed like transformers (ascending sort, drop while the cumulative mass stays <= 1 - p) so tokens on
    the boundary are kept or dropped identically."""

    def __init__(self, top_p: float, min_keep: int = 1):
        if not isinstance(top_p, (int, float)) or not 0 <= top_p <= 1:
            raise ValueError(f"top_p must be a number in [0, 1], got {top_p!r}")
        self.p, self.min_keep = float(top_p), min_keep

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        ascending, order = torch.sort(scores, descending=False)
        drop = ascending.softmax(dim=-1).cumsum(dim=-1) <= 1 - self.p
        drop[..., -self.min_keep:] = False
        return scores.masked_fill(drop.scatter(1, order, drop), float("-inf"))


def merge(defaults: list, custom: Sequence | None) -> list:
    """Built-in processors (or stopping criteria) plus the user's: a user object of the same type as a built-in
    one takes its place (transformers' rule), the others are appended."""
    custom = list(custom or [])
    merged = [next((c for c in custom if type(c) is type(d)), d) for d in defaults]
    return merged + [c for c in custom if c not in merged]


def build_processors(config, prompt_length: int, eos: Tensor | None,
                     custom: Sequence[Callable] | None = None) -> list[Callable]:
    """The processors `config` asks for, in transformers' order (sampling warpers last, after custom ones)."""
    if config.no_repeat_ngram_size is not None and config.no_repeat_ngram_size < 0:
        raise ValueError(f"no_repeat_ngram_size must be a positive int (0 turns it off), got {config.no_repeat_ngram_size!r}")
    if config.do_sample and config.top_p is not None and not 0 <= config.top_p <= 1:
        raise ValueError(f"top_p must be a number in [0, 1], got {config.top_p!r}")
    procs: list[Callable] = []
    if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
        procs.append(RepetitionPenalty(config.repetition_penalty))
    if config.no_repeat_ngram_size is not None and config.no_repeat_ngram_size > 0:
        procs.append(NoRepeatNGram(config.no_repeat_ngram_size))
    if config.bad_words_ids is not None:
        procs.append(BadWords(config.bad_words_ids, eos))
    if eos is not None and config.min_length is not None and config.min_length > 0:
        procs.append(MinLength(config.min_length, eos))
    if eos is not None and config.min_new_tokens is not None and config.min_new_tokens > 0:
        procs.append(MinNewTokens(prompt_length, config.min_new_tokens, eos))
    if config.remove_invalid_values is True:
        procs.append(RemoveInvalidValues())
    procs = merge(procs, custom)
    if config.do_sample:
        # beam sampling keeps one non-EOS candidate more than there are EOS ids, so beams can continue
        min_keep = (len(eos) + 1 if eos is not None else 2) if config.num_beams > 1 else 1
        if config.temperature is not None and config.temperature != 1.0:
            procs.append(Temperature(config.temperature))
        if config.top_k is not None and config.top_k != 0:
            procs.append(TopK(config.top_k, min_keep))
        if config.top_p is not None and config.top_p < 1.0:
            procs.append(TopP(config.top_p, min_keep))
    return procs


def apply(processors: Sequence[Callable], input_ids: Tensor, scores: Tensor) -> Tensor:
    for process in processors:
        scores = process(input_ids, scores)
    return scores
