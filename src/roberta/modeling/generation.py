"""A small `generate` for RobertaForCausalLM: greedy or sampling (temperature, top-k, top-p), with a KV cache.

Positions are computed from the running attention mask (padding_idx + 1, +2, ... over real tokens), so
left-padded prompts get the same positions in every incremental step as in one full forward pass.
(transformers' generic generate passes 0-based position_ids to RoBERTa, shifting them by padding_idx + 1.)
"""
from __future__ import annotations

import logging
from typing import Optional, Union

import torch

logger = logging.getLogger(__name__)
Tensor = torch.Tensor


def _filter_logits(logits: Tensor, temperature: float, top_k: Optional[int], top_p: Optional[float]) -> Tensor:
    """(B, V) fp32 scores -> scores with filtered-out tokens at -inf (temperature, then top-k, then top-p)."""
    if temperature is not None and temperature != 1.0:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
        logits = logits / temperature
    if top_k is not None and top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative - sorted_logits.softmax(dim=-1) >= top_p  # mass before this token already reaches p
        drop[:, 0] = False  # always keep the best token
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


class GenerationMixin:
    """Mixed into RobertaForCausalLM; needs `forward(..., past_key_values, use_cache, logits_to_keep)`."""

    @torch.no_grad()
    def generate(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None,
                 max_new_tokens: Optional[int] = None, max_length: Optional[int] = None, do_sample: bool = False,
                 temperature: float = 1.0, top_k: Optional[int] = None, top_p: Optional[float] = None,
                 eos_token_id: Optional[Union[int, list[int]]] = None, pad_token_id: Optional[int] = None,
                 generator: Optional[torch.Generator] = None, use_cache: bool = True, **model_kwargs) -> Tensor:
        """input_ids (B, T) -> (B, T + new) token ids.

        max_new_tokens (or max_length = T + new; default max_length 20 like transformers). Sampling draws from
        `generator` (a seeded torch.Generator makes it reproducible). Rows stop at eos_token_id (default
        config.eos_token_id) and are then filled with pad_token_id (default config.pad_token_id). Extra
        keyword arguments (encoder_hidden_states, encoder_attention_mask) go to every forward call.
        """
        config = self.config
        unsupported = set(model_kwargs) - {"encoder_hidden_states", "encoder_attention_mask"}
        if unsupported:
            raise TypeError(f"generate() does not support {sorted(unsupported)}; it offers greedy and sampling "
                            "(do_sample, temperature, top_k, top_p), max_new_tokens/max_length, eos_token_id, "
                            "pad_token_id, attention_mask, generator, use_cache, and encoder_hidden_states / "
                            "encoder_attention_mask for cross-attention")
        if input_ids is None or input_ids.dim() != 2:
            raise ValueError("generate needs input_ids of shape (batch, tokens)")
        B, T = input_ids.shape
        if max_new_tokens is None:
            max_new_tokens = max((max_length if max_length is not None else 20) - T, 0)
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        eos = config.eos_token_id if eos_token_id is None else eos_token_id
        eos_ids = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), device=input_ids.device)
        pad = config.pad_token_id if pad_token_id is None else pad_token_id
        if pad is None:
            pad = int(eos_ids[0]) if eos_ids.numel() else 0
        if attention_mask is None:
            # like transformers: infer padding only when the pad id is distinct from eos
            pad_is_eos = eos_ids.numel() > 0 and bool((eos_ids == pad).any())
            attention_mask = input_ids.ne(pad).long() if not pad_is_eos else torch.ones_like(input_ids)
        attention_mask = attention_mask.to(input_ids.device).long()
        padding_idx = config.pad_token_id if config.pad_token_id is not None else 1
        cached = use_cache and config.is_decoder  # non-decoders have no cache: recompute every step
        if not config.is_decoder:
            logger.warning("generate() on a model with is_decoder=False attends bidirectionally; set "
                           "config.is_decoder=True for left-to-right generation")

        sequences, past = input_ids, None
        finished = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
        for _ in range(max_new_tokens):
            positions = attention_mask.cumsum(dim=1) * attention_mask + padding_idx  # (B, S)
            step_ids = sequences if past is None else sequences[:, -1:]
            out = self(input_ids=step_ids, attention_mask=attention_mask, position_ids=positions[:, -step_ids.shape[1]:],
                       past_key_values=past, use_cache=cached, logits_to_keep=1, return_dict=True, **model_kwargs)
            if cached:
                past = out.past_key_values
            scores = out.logits[:, -1].float()  # (B, V)
            if do_sample:
                scores = _filter_logits(scores, temperature, top_k, top_p)
                next_ids = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
            else:
                next_ids = scores.argmax(dim=-1)
            next_ids = torch.where(finished, torch.full_like(next_ids, pad), next_ids)
            sequences = torch.cat([sequences, next_ids[:, None]], dim=1)
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(B, 1)], dim=1)
            if eos_ids.numel():
                finished |= torch.isin(next_ids, eos_ids)
                if bool(finished.all()):
                    break
        return sequences
