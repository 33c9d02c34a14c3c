"""RobertaModel: embeddings -> encoder -> optional pooler. Arguments are documented once, here.

Shape legend: B batch, T tokens, S keys (past + T), H heads, C hidden.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .attention import AttentionMask, build_attention_mask, warn_once
from .base import RobertaPreTrainedModel
from .cache import KeyValueCache
from .embeddings import RobertaEmbeddings
from .encoder import RobertaEncoder, RobertaPooler
from . import fused
from .fused import tracing
from .outputs import BaseModelOutputWithPoolingAndCrossAttentions

Tensor = torch.Tensor


def _flag(value, default):
    return default if value is None else value


class RobertaModel(RobertaPreTrainedModel):
    """The bare encoder (or decoder, with config.is_decoder). Heads wrap it as `self.roberta`."""

    def __init__(self, config, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = RobertaEmbeddings(config)
        self.encoder = RobertaEncoder(config)
        self.pooler = RobertaPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def _warn_if_padding_and_no_attention_mask(self, input_ids: Tensor, attention_mask: Optional[Tensor]) -> None:
        """Like transformers: padding at either end with no mask usually means a forgotten attention_mask."""
        pad = self.config.pad_token_id
        if attention_mask is not None or pad is None or input_ids.numel() == 0 or tracing():
            return
        if bool((input_ids[:, [0, -1]] == pad).any()):
            warn_once("We strongly recommend passing in an `attention_mask` since your input_ids may be padded.")

    def forward(
        self,
        input_ids: Optional[Tensor] = None,
        attention_mask: Optional[Tensor] = None,
        token_type_ids: Optional[Tensor] = None,
        position_ids: Optional[Tensor] = None,
        head_mask: Optional[Tensor] = None,
        inputs_embeds: Optional[Tensor] = None,
        encoder_hidden_states: Optional[Tensor] = None,
        encoder_attention_mask: Optional[Tensor] = None,
        past_key_values=None,
        use_cache: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        cache_position: Optional[Tensor] = None,
        last_layer_rows: Optional[Tensor] = None,
    ):
        """Run the model.

        input_ids (B, T) token ids, or inputs_embeds (B, T, C) (exactly one of them).
        attention_mask: (B, S) 1 = token, 0 = padding; or (B, T, S); or 4-D (B, 1, T, S) bool (True = attend)
            or float additive bias. Decoders add the causal mask to 2-D masks.
        token_type_ids (B, T): all 0 for RoBERTa (type_vocab_size=1).
        position_ids (B, T): used as given. Default: padding_idx+1, +2, ... over non-pad tokens (left padding
            works); with inputs_embeds, sequential from padding_idx+1.
        head_mask (H,) or (L, H): 1 keeps, 0 drops a head (forces the eager attention branch).
        encoder_hidden_states (B, S_enc, C) and encoder_attention_mask (B, S_enc): cross-attention input
            (decoders with add_cross_attention).
        past_key_values: legacy tuple of per-layer (k, v[, cross_k, cross_v]) or a KeyValueCache; returned in
            the same format. use_cache (decoders only; default config.use_cache) returns the updated cache.
        output_attentions / output_hidden_states / return_dict: as in transformers (defaults from config).
        cache_position: accepted for compatibility, unused (positions come from the cache length).
        last_layer_rows (B, Q): internal, used by heads that read only a few rows; the last layer computes only
            those query rows and last_hidden_state is (B, Q, C).
        """
        config = self.config
        output_attentions = _flag(output_attentions, config.output_attentions)
        output_hidden_states = _flag(output_hidden_states, config.output_hidden_states)
        return_dict = _flag(return_dict, config.use_return_dict)
        use_cache = _flag(use_cache, getattr(config, "use_cache", True)) if config.is_decoder else False

        if input_ids is not None and inputs_embeds is not None:
            raise ValueError("You cannot specify both input_ids and inputs_embeds at the same time")
        if input_ids is not None:
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must be 2-D (batch, tokens); got shape {tuple(input_ids.shape)}. "
                                 "Add a batch dimension with input_ids[None] (or unsqueeze(0)).")
            batch, seq_len = input_ids.shape
            device = input_ids.device
            self._warn_if_padding_and_no_attention_mask(input_ids, attention_mask)
        elif inputs_embeds is not None:
            if inputs_embeds.dim() != 3:
                raise ValueError(f"inputs_embeds must be 3-D (batch, tokens, hidden); got {tuple(inputs_embeds.shape)}")
            batch, seq_len = inputs_embeds.shape[:2]
            device = inputs_embeds.device
        else:
            raise ValueError("You have to specify either input_ids or inputs_embeds")

        # Cache: keep the caller's format (legacy tuples in -> legacy tuples out; a KeyValueCache is updated in place).
        legacy_cache = isinstance(past_key_values, (tuple, list))
        if self.encoder.gradient_checkpointing and self.training and use_cache:
            warn_once("`use_cache=True` is incompatible with gradient checkpointing. Setting `use_cache=False`.")
            use_cache = False
        cache = None
        if past_key_values is not None:
            cache = past_key_values if isinstance(past_key_values, KeyValueCache) else \
                KeyValueCache.from_legacy_cache(past_key_values)
        elif use_cache:
            cache = KeyValueCache(config.num_hidden_layers)
        past_len = cache.get_seq_length() if cache is not None else 0

        self.embeddings.check_inputs(input_ids, token_type_ids, position_ids, seq_len, past_len)
        embedding_output = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids,
                                           position_ids=position_ids, inputs_embeds=inputs_embeds,
                                           past_key_values_length=past_len)
        # The encoder's activations: in the model's dtype (embeddings kept float32 under bf16 loading hand over in
        # bf16, see _keep_in_fp32_modules_bf16), or float32 where bf16 weights are packed as float32 copies (no
        # native bf16: float32 compute from bf16 weights throughout; outputs in the model's dtype all the same).
        model_dtype = dtype = self.dtype
        if dtype != torch.float32 and fused.float32_compute(
                [m for m in self.encoder.modules() if type(m) is nn.Linear], embedding_output):
            dtype = torch.float32
            if encoder_hidden_states is not None:
                encoder_hidden_states = encoder_hidden_states.to(dtype)
        embedding_output = embedding_output.to(dtype)

        impl = getattr(config, "_attn_implementation", None) or "sdpa"
        eager = impl == "eager" or output_attentions or head_mask is not None
        if eager and impl != "eager":
            warn_once("SDPA attention cannot return attention weights or apply head_mask; using the eager "
                      "attention for these calls (load with attn_implementation='eager' to silence this).")
        mask = build_attention_mask(attention_mask, batch, seq_len, past_len, dtype, device,
                                    causal=config.is_decoder)
        encoder_mask = None
        if config.is_decoder and encoder_hidden_states is not None:
            encoder_mask = build_attention_mask(encoder_attention_mask, batch, seq_len, 0, dtype, device,
                                                causal=False, name="encoder_attention_mask",
                                                key_len=encoder_hidden_states.shape[1])
        head_mask = self.get_head_mask(head_mask, config.num_hidden_layers)

        sequence_output, all_hidden, all_self, all_cross = self.encoder(
            embedding_output, mask, head_mask, encoder_hidden_states, encoder_mask, cache, eager,
            output_attentions, output_hidden_states, last_layer_rows)
        if dtype != model_dtype:
            sequence_output = sequence_output.to(model_dtype)
            all_hidden = all_hidden and tuple(h.to(model_dtype) for h in all_hidden)
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None

        past_out = (cache.to_legacy_cache() if legacy_cache else cache) if use_cache else None
        if not return_dict:  # transformers' order; pooled_output stays in the tuple even when None
            return (sequence_output, pooled_output) + tuple(
                v for v in (past_out, all_hidden, all_self, all_cross) if v is not None)
        return BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=sequence_output, pooler_output=pooled_output, past_key_values=past_out,
            hidden_states=all_hidden, attentions=all_self, cross_attentions=all_cross)
