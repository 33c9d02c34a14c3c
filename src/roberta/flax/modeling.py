"""Flax RoBERTa modules, in data-flow order: embeddings -> attention -> layer -> encoder -> pooler -> model.

The twin of roberta.modeling (same module names and order), written with flax.linen. Parameter names are
transformers' Flax names (`embeddings/word_embeddings/embedding`, `encoder/layer/0/attention/self/query/
kernel`, `LayerNorm/scale`...), so flax_model.msgpack files load both ways.
Shape legend: B batch, T query tokens, S key tokens (past + current, or the cache length), H heads,
D head dim, C hidden, I intermediate.

`dtype` is the computation dtype (parameters stay as stored, usually float32); softmax runs in float32
so bfloat16 stays safe. Decoders keep a static-size key/value cache in the "cache" collection
(`cached_key`/`cached_value` (B, S, H, D) and `cache_index`), so incremental decoding compiles once.
"""
from __future__ import annotations

import math
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from roberta.config import lookup_activation

from .outputs import FlaxBaseModelOutputWithPoolingAndCrossAttentions

ACTIVATIONS = {
    "gelu": partial(nn.gelu, approximate=False), "gelu_python": partial(nn.gelu, approximate=False),
    "gelu_new": partial(nn.gelu, approximate=True), "gelu_pytorch_tanh": partial(nn.gelu, approximate=True),
    "gelu_accurate": partial(nn.gelu, approximate=True), "gelu_fast": partial(nn.gelu, approximate=True),
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x), "relu": nn.relu, "relu6": jax.nn.relu6,
    "silu": nn.swish, "swish": nn.swish, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "mish": jax.nn.mish,
    "linear": lambda x: x,
}


def get_activation(name):
    return lookup_activation(ACTIVATIONS, name)


def _dense(config, features: int, dtype, name=None, use_bias=True) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, use_bias=use_bias, name=name,
                    kernel_init=jax.nn.initializers.normal(config.initializer_range))


def _layer_norm(config, dtype) -> nn.LayerNorm:
    # exact (two-pass) variance, as torch computes it: parity at 1e-5 with the PyTorch twin
    return nn.LayerNorm(epsilon=config.layer_norm_eps, dtype=dtype, use_fast_variance=False)


def create_position_ids_from_input_ids(input_ids, padding_idx: int, past_key_values_length=0):
    """(B, T) ids -> (B, T) positions: padding_idx + 1, +2, ... over non-pad tokens; pads get padding_idx.
    RoBERTa's fairseq trap: positions start at padding_idx + 1, so 514 rows give 512 usable tokens."""
    mask = (input_ids != padding_idx).astype("i4")
    return (jnp.cumsum(mask, axis=1) + past_key_values_length) * mask + padding_idx


def build_attention_bias(attention_mask, batch: int, query_len: int, key_len: int, past_len, causal: bool, dtype):
    """Built once per forward. attention_mask (B, S) 1 = attend, 0 = padding (or None) -> additive bias
    (B, 1, T, S) in `dtype` (0 or finfo.min) and row_keep (B, T, 1): 0 for query rows that may attend to no
    key at all (an all-padding row), whose output is zeroed as in the PyTorch twin instead of averaging
    garbage. Decoders add the causal mask; query i sits at absolute position past_len + i, which also hides
    the cache slots not written yet."""
    if attention_mask is None:
        keep = jnp.ones((batch, 1, 1, key_len), dtype=bool)
    else:
        if attention_mask.ndim != 2 or attention_mask.shape != (batch, key_len):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)} but (batch, keys) = "
                             f"({batch}, {key_len}) was expected (with a cache: its full max_length)")
        keep = (attention_mask != 0)[:, None, None, :]  # (B, 1, 1, S)
    if causal:
        queries = past_len + jnp.arange(query_len)[:, None]
        keep = keep & (jnp.arange(key_len)[None, :] <= queries)[None, None]  # (B, 1, T, S)
    keep = jnp.broadcast_to(keep, (batch, 1, query_len, key_len))
    bias = jnp.where(keep, 0.0, jnp.finfo(dtype).min).astype(dtype)
    row_keep = keep.any(axis=-1)[:, 0, :, None].astype(dtype)  # (B, T, 1)
    return bias, row_keep


class FlaxRobertaEmbeddings(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c, init = self.config, jax.nn.initializers.normal(stddev=self.config.initializer_range)
        self.word_embeddings = nn.Embed(c.vocab_size, c.hidden_size, embedding_init=init, dtype=self.dtype)
        self.position_embeddings = nn.Embed(c.max_position_embeddings, c.hidden_size, embedding_init=init,
                                            dtype=self.dtype)
        self.token_type_embeddings = nn.Embed(c.type_vocab_size, c.hidden_size, embedding_init=init, dtype=self.dtype)
        self.LayerNorm = _layer_norm(c, self.dtype)  # capital L: the parameter name
        self.dropout = nn.Dropout(rate=c.hidden_dropout_prob)

    def __call__(self, input_ids, token_type_ids, position_ids, deterministic: bool = True):
        """(B, T) ids -> (B, T, C)."""
        embeddings = self.word_embeddings(input_ids.astype("i4")) + self.token_type_embeddings(token_type_ids.astype("i4"))
        embeddings = embeddings + self.position_embeddings(position_ids.astype("i4"))
        return self.dropout(self.LayerNorm(embeddings), deterministic=deterministic)


def attention(q, k, v, bias, row_keep, *, dropout_rng=None, dropout_rate: float = 0.0, head_mask=None):
    """q (B, T, H, D), k/v (B, S, H, D) -> context (B, T, H*D), probs (B, H, T, S).
    Scores and softmax in float32; the probabilities go back to the compute dtype for the value product."""
    B, T, H, D = q.shape
    scores = jnp.einsum("bthd,bshd->bhts", q, k).astype(jnp.float32) / math.sqrt(D)
    probs = jax.nn.softmax(scores + bias.astype(jnp.float32), axis=-1).astype(q.dtype)  # (B, H, T, S)
    if dropout_rng is not None and dropout_rate > 0.0:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
        probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0.0).astype(q.dtype)
    if head_mask is not None:
        probs = probs * head_mask.astype(q.dtype)[None, :, None, None]
    context = jnp.einsum("bhts,bshd->bthd", probs, v).reshape(B, T, H * D)
    return context * row_keep, probs


class FlaxRobertaSelfAttention(nn.Module):
    """query/key/value projections around `attention()`; decoders write keys/values into the cache."""
    config: object
    causal: bool = False
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        if c.hidden_size % c.num_attention_heads != 0:
            raise ValueError(f"The hidden size ({c.hidden_size}) is not a multiple of the number of attention "
                             f"heads ({c.num_attention_heads})")
        self.head_dim = c.hidden_size // c.num_attention_heads
        self.query = _dense(c, c.hidden_size, self.dtype)
        self.key = _dense(c, c.hidden_size, self.dtype)
        self.value = _dense(c, c.hidden_size, self.dtype)

    def _heads(self, x):
        return x.reshape(x.shape[:2] + (self.config.num_attention_heads, self.head_dim))  # (B, T, H, D)

    @nn.compact
    def _update_cache(self, k, v):
        """Write this step's k/v (B, T, H, D) at cache_index; return the whole cache (B, S, H, D). On the
        init_cache pass the variables are only created (zeros of the full length)."""
        initialized = self.has_variable("cache", "cached_key")
        cached_key = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
        index = self.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
        if not initialized:
            return k, v
        start = (0, index.value, 0, 0)
        cached_key.value = jax.lax.dynamic_update_slice(cached_key.value, k.astype(cached_key.value.dtype), start)
        cached_value.value = jax.lax.dynamic_update_slice(cached_value.value, v.astype(cached_value.value.dtype), start)
        index.value = index.value + k.shape[1]
        return cached_key.value, cached_value.value

    def __call__(self, hidden_states, bias, row_keep, layer_head_mask=None, key_value_states=None,
                 init_cache: bool = False, deterministic: bool = True):
        """hidden_states (B, T, C) -> context (B, T, C), probs (B, H, T, S)."""
        q = self._heads(self.query(hidden_states))
        source = hidden_states if key_value_states is None else key_value_states
        k, v = self._heads(self.key(source)), self._heads(self.value(source))
        if self.causal and key_value_states is None and (init_cache or self.has_variable("cache", "cached_key")):
            k, v = self._update_cache(k, v)
        rate = self.config.attention_probs_dropout_prob
        rng = self.make_rng("dropout") if not deterministic and rate > 0.0 else None
        return attention(q, k, v, bias, row_keep, dropout_rng=rng, dropout_rate=rate, head_mask=layer_head_mask)


class FlaxRobertaSelfOutput(nn.Module):
    """dense -> dropout -> LayerNorm(x + residual): the post-LN residual block."""
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.dense = _dense(self.config, self.config.hidden_size, self.dtype)
        self.LayerNorm = _layer_norm(self.config, self.dtype)
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout_prob)

    def __call__(self, hidden_states, input_tensor, deterministic: bool = True):
        return self.LayerNorm(self.dropout(self.dense(hidden_states), deterministic=deterministic) + input_tensor)


class FlaxRobertaAttention(nn.Module):
    """`self` (projections + attention) and `output` (residual block); names match the params."""
    config: object
    causal: bool = False
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.self = FlaxRobertaSelfAttention(self.config, causal=self.causal, dtype=self.dtype)
        self.output = FlaxRobertaSelfOutput(self.config, dtype=self.dtype)

    def __call__(self, hidden_states, bias, row_keep, layer_head_mask=None, key_value_states=None,
                 init_cache=False, deterministic=True):
        context, probs = self.self(hidden_states, bias, row_keep, layer_head_mask, key_value_states, init_cache,
                                   deterministic)
        return self.output(context, hidden_states, deterministic=deterministic), probs


class FlaxRobertaIntermediate(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.dense = _dense(self.config, self.config.intermediate_size, self.dtype)
        self.activation = get_activation(self.config.hidden_act)

    def __call__(self, hidden_states):  # (B, T, C) -> (B, T, I)
        return self.activation(self.dense(hidden_states))


class FlaxRobertaOutput(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.dense = _dense(self.config, self.config.hidden_size, self.dtype)
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout_prob)
        self.LayerNorm = _layer_norm(self.config, self.dtype)

    def __call__(self, hidden_states, attention_output, deterministic: bool = True):  # (B, T, I), (B, T, C) -> (B, T, C)
        return self.LayerNorm(self.dropout(self.dense(hidden_states), deterministic=deterministic) + attention_output)


class FlaxRobertaLayer(nn.Module):
    """Self-attention, optional cross-attention (decoders), feed-forward; each with residual + LayerNorm."""
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        if c.add_cross_attention and not c.is_decoder:
            raise ValueError("add_cross_attention=True needs is_decoder=True: cross-attention only exists in a "
                             "decoder (set config.is_decoder=True)")
        self.attention = FlaxRobertaAttention(c, causal=c.is_decoder, dtype=self.dtype)
        if c.add_cross_attention:
            self.crossattention = FlaxRobertaAttention(c, causal=False, dtype=self.dtype)
        self.intermediate = FlaxRobertaIntermediate(c, dtype=self.dtype)
        self.output = FlaxRobertaOutput(c, dtype=self.dtype)

    def __call__(self, hidden_states, bias, row_keep, layer_head_mask=None, encoder_hidden_states=None,
                 encoder_bias=None, encoder_row_keep=None, init_cache: bool = False, deterministic: bool = True):
        """(B, T, C) -> (B, T, C), self-attention probs, cross-attention probs or None."""
        attention_output, self_probs = self.attention(hidden_states, bias, row_keep, layer_head_mask, None,
                                                      init_cache, deterministic)
        cross_probs = None
        if encoder_hidden_states is not None:
            if not self.config.add_cross_attention:
                raise ValueError("encoder_hidden_states were passed, but this model has no cross-attention layers; "
                                 "build it with config.add_cross_attention=True (and is_decoder=True)")
            attention_output, cross_probs = self.crossattention(attention_output, encoder_bias, encoder_row_keep,
                                                                layer_head_mask, encoder_hidden_states, False,
                                                                deterministic)
        hidden_states = self.output(self.intermediate(attention_output), attention_output, deterministic=deterministic)
        return hidden_states, self_probs, cross_probs


class FlaxRobertaLayerCollection(nn.Module):
    """The layers, named "0", "1", ... (PyTorch's `encoder.layer.0`, transformers' `encoder/layer/0`)."""
    config: object
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        # remat recomputes each layer's activations in the backward pass; init_cache and deterministic
        # (argument 7 and 8, not counting self) are static
        layer_class = nn.remat(FlaxRobertaLayer, static_argnums=(7, 8)) if self.gradient_checkpointing \
            else FlaxRobertaLayer
        self.layers = [layer_class(self.config, name=str(i), dtype=self.dtype)
                       for i in range(self.config.num_hidden_layers)]

    def __call__(self, hidden_states, bias, row_keep, head_mask=None, encoder_hidden_states=None, encoder_bias=None,
                 encoder_row_keep=None, init_cache=False, deterministic=True, output_attentions=False,
                 output_hidden_states=False):
        """Returns (hidden (B, T, C), all hidden states or None, self probs or None, cross probs or None)."""
        all_hidden = () if output_hidden_states else None
        all_self = () if output_attentions else None
        all_cross = () if output_attentions and encoder_hidden_states is not None else None
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                all_hidden += (hidden_states,)
            hidden_states, self_probs, cross_probs = layer(
                hidden_states, bias, row_keep, None if head_mask is None else head_mask[i], encoder_hidden_states,
                encoder_bias, encoder_row_keep, init_cache, deterministic)
            if output_attentions:
                all_self += (self_probs,)
                if all_cross is not None:
                    all_cross += (cross_probs,)
        if output_hidden_states:
            all_hidden += (hidden_states,)
        return hidden_states, all_hidden, all_self, all_cross


class FlaxRobertaEncoder(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        self.layer = FlaxRobertaLayerCollection(self.config, dtype=self.dtype,
                                                gradient_checkpointing=self.gradient_checkpointing)

    def __call__(self, hidden_states, bias, row_keep, **kwargs):
        return self.layer(hidden_states, bias, row_keep, **kwargs)


class FlaxRobertaPooler(nn.Module):
    """dense + tanh on the first token (<s>)."""
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.dense = _dense(self.config, self.config.hidden_size, self.dtype)

    def __call__(self, hidden_states):  # (B, T, C) -> (B, C)
        return nn.tanh(self.dense(hidden_states[:, 0]))


def _head_mask(head_mask, layers: int, heads: int):
    """None, (H,) or (L, H) -> None or (L, H)."""
    if head_mask is None:
        return None
    if head_mask.ndim == 1:
        head_mask = jnp.broadcast_to(head_mask, (layers, heads))
    if head_mask.shape != (layers, heads):
        raise ValueError(f"head_mask has shape {tuple(head_mask.shape)}; expected ({heads},) or ({layers}, {heads})")
    return head_mask


class FlaxRobertaModule(nn.Module):
    """The bare encoder (or decoder, with config.is_decoder). Heads wrap it as `roberta`."""
    config: object
    dtype: jnp.dtype = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False

    def setup(self):
        if (getattr(self.config, "position_embedding_type", "absolute") or "absolute") != "absolute":
            raise NotImplementedError(f"position_embedding_type={self.config.position_embedding_type!r} is not "
                                      "supported by the Flax classes (only 'absolute'); use the PyTorch classes")
        self.embeddings = FlaxRobertaEmbeddings(self.config, dtype=self.dtype)
        self.encoder = FlaxRobertaEncoder(self.config, dtype=self.dtype,
                                          gradient_checkpointing=self.gradient_checkpointing)
        if self.add_pooling_layer:
            self.pooler = FlaxRobertaPooler(self.config, dtype=self.dtype)

    def _past_length(self):
        """(cache_index, cache length) when a filled cache is present, else (0, None)."""
        cache = self.variables.get("cache") if self.config.is_decoder else None
        if not cache:
            return 0, None
        first = cache["encoder"]["layer"]["0"]["attention"]["self"]
        return first["cache_index"], first["cached_key"].shape[1]

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache: bool = False,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False,
                 return_dict: bool = True):
        """Arguments as FlaxRobertaPreTrainedModel.__call__ documents them."""
        c = self.config
        B, T = input_ids.shape
        past_len, cache_len = self._past_length()
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        if position_ids is None:
            position_ids = create_position_ids_from_input_ids(input_ids, c.pad_token_id, past_len)
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, deterministic=deterministic)
        bias, row_keep = build_attention_bias(attention_mask, B, T, cache_len or T, past_len, c.is_decoder,
                                              hidden.dtype)
        encoder_bias = encoder_row_keep = None
        if encoder_hidden_states is not None:
            encoder_bias, encoder_row_keep = build_attention_bias(
                encoder_attention_mask, B, T, encoder_hidden_states.shape[1], 0, False, hidden.dtype)
        hidden, all_hidden, all_self, all_cross = self.encoder(
            hidden, bias, row_keep, head_mask=_head_mask(head_mask, c.num_hidden_layers, c.num_attention_heads),
            encoder_hidden_states=encoder_hidden_states, encoder_bias=encoder_bias,
            encoder_row_keep=encoder_row_keep, init_cache=init_cache, deterministic=deterministic,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        pooled = self.pooler(hidden) if self.add_pooling_layer else None
        if not return_dict:
            return tuple(v for v in (hidden, pooled, all_hidden, all_self, all_cross) if v is not None)
        return FlaxBaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden, attentions=all_self,
            cross_attentions=all_cross)
