"""TFRobertaModel's body as Keras 3 layers, in data-flow order: embeddings -> attention -> layer -> encoder
-> pooler -> main layer. The twin of roberta.modeling (same class names with a TF prefix, same math).

Shape legend: B batch, T query tokens, S key tokens (past + T), H heads, D head dim, C hidden, I intermediate.

Layer names (the Keras `name=`) are transformers' TF names, so every variable's path is the name it has in
transformers' tf_model.h5 (`roberta/encoder/layer_._0/attention/self/query/kernel`); roberta.tf.weights maps
those names onto the PyTorch state-dict names. Python attributes follow the PyTorch modules where Keras
allows it (`output` is a read-only Keras property, hence `dense_output` / `bert_output`, as in transformers).
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from roberta.config import lookup_activation
from roberta.model_output import BaseModelOutputWithPoolingAndCrossAttentions


def initializer(config) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def _gelu_fast(x):
    return 0.5 * x * (1.0 + tf.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


ACTIVATIONS = {
    "gelu": lambda x: tf.nn.gelu(x, approximate=False), "gelu_python": lambda x: tf.nn.gelu(x, approximate=False),
    "gelu_new": lambda x: tf.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: tf.nn.gelu(x, approximate=True),
    "gelu_accurate": lambda x: tf.nn.gelu(x, approximate=True), "gelu_fast": _gelu_fast,
    "quick_gelu": lambda x: x * tf.sigmoid(1.702 * x), "relu": tf.nn.relu, "relu6": tf.nn.relu6, "silu": tf.nn.silu,
    "swish": tf.nn.silu, "tanh": tf.tanh, "sigmoid": tf.sigmoid, "mish": lambda x: x * tf.tanh(tf.nn.softplus(x)),
    "linear": lambda x: x,
}


def get_activation(name):
    return lookup_activation(ACTIVATIONS, name)


def create_position_ids_from_input_ids(input_ids, padding_idx: int, past_key_values_length=0):
    """(B, T) ids -> (B, T) positions: padding_idx + 1, +2, ... over non-pad tokens; pads get padding_idx."""
    mask = tf.cast(tf.not_equal(input_ids, padding_idx), tf.int32)
    return (tf.cumsum(mask, axis=1) + past_key_values_length) * mask + padding_idx


def _eager() -> bool:
    """Value checks read tensor data; they run eagerly only (a traced graph records no Python branch)."""
    return tf.executing_eagerly()


class LazyBuildLayer(keras.layers.Layer):
    """A layer whose sublayers build themselves on their first call. Without a build() of its own, Keras 3
    traces the whole call symbolically once just to create the weights (seconds, even for a tiny model)."""

    def build(self, *args, **kwargs):
        self.built = True


class TFRobertaEmbeddingTable(keras.layers.Layer):
    """One lookup table. Its variable name is transformers' (`weight` for words, `embeddings` otherwise)."""

    def __init__(self, rows: int, dim: int, config, variable_name: str, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.dim, self.variable_name, self.config = rows, dim, variable_name, config

    def build(self, input_shape=None):
        self.weight = self.add_weight(name=self.variable_name, shape=(self.rows, self.dim),
                                      initializer=initializer(self.config))

    def call(self, ids):  # (B, T) -> (B, T, C)
        return tf.gather(tf.cast(self.weight, self.compute_dtype), ids)


class TFRobertaEmbeddings(LazyBuildLayer):
    """word + position + token type, LayerNorm, dropout. Positions start at padding_idx + 1 (fairseq), so 514
    rows hold 512 tokens; type_vocab_size is 1, so token_type_ids must be 0."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.max_position_embeddings = config.max_position_embeddings
        self.type_vocab_size = config.type_vocab_size
        self.word_embeddings = TFRobertaEmbeddingTable(config.vocab_size, config.hidden_size, config, "weight",
                                                       name="word_embeddings")
        self.token_type_embeddings = TFRobertaEmbeddingTable(config.type_vocab_size, config.hidden_size, config,
                                                             "embeddings", name="token_type_embeddings")
        self.position_embeddings = TFRobertaEmbeddingTable(config.max_position_embeddings, config.hidden_size,
                                                           config, "embeddings", name="position_embeddings")
        self.LayerNorm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="LayerNorm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    @property
    def max_tokens(self) -> int:
        """Longest sequence (including past) the position table holds: 512 for roberta-base."""
        return self.max_position_embeddings - (self.padding_idx + 1)

    def check_inputs(self, input_ids, token_type_ids, position_ids, seq_length, past_length) -> None:
        """Raise a ValueError naming the problem for ids the tables cannot look up (eager calls read values;
        the length check also runs under tracing when the length is static)."""
        if position_ids is None and isinstance(seq_length, int) and isinstance(past_length, int) \
                and seq_length + past_length > self.max_tokens:
            what = f"{seq_length} tokens" + (f" plus {past_length} cached" if past_length else "")
            raise ValueError(f"Input of {what} is longer than this model's maximum of {self.max_tokens} tokens "
                             f"(max_position_embeddings={self.max_position_embeddings}, and RoBERTa positions start "
                             f"at padding_idx+1={self.padding_idx + 1}). Truncate the input, e.g. "
                             f"tokenizer(..., truncation=True, max_length={self.max_tokens}).")
        if not _eager():
            return
        checks = ((input_ids, self.vocab_size, "input_ids", "If you added tokens to the tokenizer, resize the "
                   "embeddings in the PyTorch model and convert again."),
                  (token_type_ids, self.type_vocab_size, "token_type_ids", "RoBERTa marks sentence pairs with "
                   "</s></s>, not segment ids: pass zeros or nothing." if self.type_vocab_size == 1 else ""),
                  (position_ids, self.max_position_embeddings, "position_ids", "RoBERTa's positions start at "
                   "padding_idx+1."))
        for ids, size, name, hint in checks:
            if ids is None:
                continue
            if ids.dtype.is_floating:
                raise ValueError(f"{name} must be integer ids, got dtype {ids.dtype.name}")
            values = ids.numpy()  # eager tensors live in host memory: one view, no device round trips
            if values.size == 0:
                continue
            lo, hi = int(values.min()), int(values.max())
            if lo < 0 or hi >= size:
                raise ValueError(f"{name} contains {lo if lo < 0 else hi}, outside 0..{size - 1} (the table has "
                                 f"{size} rows). {hint}".rstrip())

    def call(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
             past_key_values_length=0, training=False):
        """(B, T) ids or (B, T, C) embeddings -> (B, T, C)."""
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if position_ids is None:
            if input_ids is not None:
                position_ids = create_position_ids_from_input_ids(input_ids, self.padding_idx, past_key_values_length)
            else:  # embeddings cannot show padding: sequential from padding_idx + 1
                T = tf.shape(inputs_embeds)[1]
                position_ids = tf.range(self.padding_idx + 1, T + self.padding_idx + 1)[None]
        if token_type_ids is None:
            token_type_ids = tf.zeros(tf.shape(inputs_embeds)[:2], tf.int32)
        embeddings = inputs_embeds + self.position_embeddings(position_ids) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(embeddings), training=training)


def build_attention_mask(attention_mask, batch, query_len, key_len, dtype, causal: bool):
    """-> (bias (B|1, 1, T|1, S) additive, 0 or dtype.min; row_keep (B|1, 1, T|1, 1) 0/1, or None).

    attention_mask: None, (B, S) 1 = token / 0 = padding, or (B, T, S). Decoders add the causal mask (queries
    are the last T of the S positions). row_keep zeroes query rows that may attend to no key at all (an
    all-padding row), as the PyTorch model does, instead of averaging every value.
    """
    keep = None
    if attention_mask is not None:
        rank = attention_mask.shape.rank
        if rank == 2:
            keep = tf.not_equal(attention_mask, 0)[:, None, None, :]
        elif rank == 3:
            keep = tf.not_equal(attention_mask, 0)[:, None]
        else:
            raise ValueError(f"attention_mask must be 2-D (batch, keys) or 3-D (batch, queries, keys); got shape "
                             f"{attention_mask.shape}")
    if causal:
        positions = tf.range(key_len)
        causal_keep = positions[None, :] <= positions[key_len - query_len:][:, None]  # (T, S)
        keep = causal_keep[None, None] if keep is None else tf.logical_and(keep, causal_keep[None, None])
    if keep is None:
        return None, None
    bias = tf.where(keep, tf.zeros((), dtype), tf.constant(dtype.min, dtype))
    row_keep = tf.cast(tf.reduce_any(keep, axis=-1, keepdims=True), dtype)
    return bias, row_keep


def attention(q, k, v, bias, row_keep, dropout: keras.layers.Dropout, training, head_mask=None):
    """q (B, H, T, D), k/v (B, H, S, D) -> context (B, T, H*D), probs (B, H, T, S). Softmax runs in float32
    so bfloat16 stays safe."""
    H, D = q.shape[1], q.shape[-1]  # static: the reshape below keeps C known while tracing
    scores = tf.matmul(q, k, transpose_b=True) / tf.cast(math.sqrt(D), q.dtype)  # (B, H, T, S)
    if bias is not None:
        scores = scores + bias
    probs = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), q.dtype)
    probs = dropout(probs, training=training)
    if head_mask is not None:
        probs = probs * tf.cast(head_mask, probs.dtype)
    out = tf.matmul(probs, v)  # (B, H, T, D)
    if row_keep is not None:
        out = out * row_keep
    out = tf.transpose(out, (0, 2, 1, 3))  # (B, T, H, D)
    return tf.reshape(out, (tf.shape(out)[0], tf.shape(out)[1], H * D)), probs


class TFRobertaSelfAttention(LazyBuildLayer):
    """query/key/value projections around `attention()`; decoders append to and return the layer's K/V."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        if config.hidden_size % config.num_attention_heads != 0:
            raise ValueError(f"The hidden size ({config.hidden_size}) is not a multiple of the number of attention "
                             f"heads ({config.num_attention_heads})")
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.is_decoder = config.is_decoder
        init = initializer(config)
        self.query = keras.layers.Dense(config.hidden_size, kernel_initializer=init, name="query")
        self.key = keras.layers.Dense(config.hidden_size, kernel_initializer=init, name="key")
        self.value = keras.layers.Dense(config.hidden_size, kernel_initializer=init, name="value")
        self.dropout = keras.layers.Dropout(config.attention_probs_dropout_prob)

    def _heads(self, x):  # (B, T, C) -> (B, H, T, D)
        x = tf.reshape(x, (tf.shape(x)[0], tf.shape(x)[1], self.num_attention_heads, self.attention_head_size))
        return tf.transpose(x, (0, 2, 1, 3))

    def call(self, hidden_states, bias, row_keep, head_mask=None, past_key_value=None, training=False):
        q = self._heads(self.query(hidden_states))
        k = self._heads(self.key(hidden_states))
        v = self._heads(self.value(hidden_states))
        if past_key_value is not None:
            k = tf.concat([tf.cast(past_key_value[0], k.dtype), k], axis=2)  # (B, H, S, D)
            v = tf.concat([tf.cast(past_key_value[1], v.dtype), v], axis=2)
        context, probs = attention(q, k, v, bias, row_keep, self.dropout, training, head_mask)
        return context, probs, ((k, v) if self.is_decoder else None)


class TFRobertaSelfOutput(LazyBuildLayer):
    """dense -> dropout -> LayerNorm(x + residual): the post-LN residual block."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(config.hidden_size, kernel_initializer=initializer(config), name="dense")
        self.LayerNorm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="LayerNorm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def call(self, hidden_states, input_tensor, training=False):
        return self.LayerNorm(self.dropout(self.dense(hidden_states), training=training) + input_tensor)


class TFRobertaAttention(LazyBuildLayer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.self_attention = TFRobertaSelfAttention(config, name="self")
        self.dense_output = TFRobertaSelfOutput(config, name="output")

    def call(self, hidden_states, bias, row_keep, head_mask=None, past_key_value=None, training=False):
        context, probs, present = self.self_attention(hidden_states, bias=bias, row_keep=row_keep,
                                                      head_mask=head_mask, past_key_value=past_key_value,
                                                      training=training)
        return self.dense_output(context, input_tensor=hidden_states, training=training), probs, present


class TFRobertaIntermediate(LazyBuildLayer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(config.intermediate_size, kernel_initializer=initializer(config), name="dense")
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def call(self, hidden_states):  # (B, T, C) -> (B, T, I)
        return self.intermediate_act_fn(self.dense(hidden_states))


class TFRobertaOutput(TFRobertaSelfOutput):
    """The feed-forward's residual block: the same computation as TFRobertaSelfOutput, from I to C."""


class TFRobertaLayer(LazyBuildLayer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.attention = TFRobertaAttention(config, name="attention")
        self.intermediate = TFRobertaIntermediate(config, name="intermediate")
        self.bert_output = TFRobertaOutput(config, name="output")

    def call(self, hidden_states, bias, row_keep, head_mask=None, past_key_value=None, training=False):
        """(B, T, C) -> (B, T, C), self-attention probs, this layer's K/V (decoders) or None."""
        attention_output, probs, present = self.attention(hidden_states, bias=bias, row_keep=row_keep,
                                                          head_mask=head_mask, past_key_value=past_key_value,
                                                          training=training)
        out = self.bert_output(self.intermediate(attention_output), input_tensor=attention_output, training=training)
        return out, probs, present


class TFRobertaEncoder(LazyBuildLayer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.layer = [TFRobertaLayer(config, name=f"layer_._{i}") for i in range(config.num_hidden_layers)]

    def call(self, hidden_states, bias, row_keep, head_mask=None, past_key_values=None,
             output_attentions=False, output_hidden_states=False, training=False):
        """-> (hidden (B, T, C), all hidden states or None, attention probs or None, per-layer K/V or None)."""
        all_hidden = () if output_hidden_states else None
        all_probs = () if output_attentions else None
        presents = ()
        for i, layer in enumerate(self.layer):
            if output_hidden_states:
                all_hidden += (hidden_states,)
            hidden_states, probs, present = layer(
                hidden_states, bias=bias, row_keep=row_keep, head_mask=None if head_mask is None else head_mask[i],
                past_key_value=None if past_key_values is None else past_key_values[i], training=training)
            if output_attentions:
                all_probs += (probs,)
            presents += (present,)
        if output_hidden_states:
            all_hidden += (hidden_states,)
        return hidden_states, all_hidden, all_probs, (presents if presents and presents[0] is not None else None)


class TFRobertaPooler(LazyBuildLayer):
    """dense + tanh on the first token (<s>)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(config.hidden_size, kernel_initializer=initializer(config),
                                        activation="tanh", name="dense")

    def call(self, hidden_states):  # (B, T, C) -> (B, C)
        return self.dense(hidden_states[:, 0])


def _head_mask(head_mask, num_layers: int):
    """(H,) or (L, H) 1 = keep -> per layer (1, H, 1, 1), or None."""
    if head_mask is None:
        return None
    head_mask = tf.convert_to_tensor(head_mask)
    if head_mask.shape.rank == 1:
        head_mask = tf.tile(head_mask[None], (num_layers, 1))
    return head_mask[:, None, :, None, None]  # (L, 1, H, 1, 1)


class TFRobertaMainLayer(LazyBuildLayer):
    """embeddings -> encoder -> optional pooler: TFRobertaModel's body, `roberta` inside every head."""

    def __init__(self, config, add_pooling_layer: bool = True, **kwargs):
        super().__init__(**kwargs)
        if getattr(config, "add_cross_attention", False):
            raise NotImplementedError("TFRoberta* have no cross-attention (add_cross_attention=True); use the "
                                      "PyTorch classes for encoder-decoder models")
        if (getattr(config, "position_embedding_type", None) or "absolute") != "absolute":
            raise NotImplementedError(f"TFRoberta* support position_embedding_type='absolute' only (as transformers' "
                                      f"TF classes); got {config.position_embedding_type!r}")
        self.config = config
        self.embeddings = TFRobertaEmbeddings(config, name="embeddings")
        self.encoder = TFRobertaEncoder(config, name="encoder")
        self.pooler = TFRobertaPooler(config, name="pooler") if add_pooling_layer else None

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, past_key_values=None, use_cache=None, output_attentions=None,
             output_hidden_states=None, training=False):
        """Arguments as RobertaModel.forward (roberta.modeling.model); past_key_values is a tuple of per-layer
        (k, v) (B, H, S_past, D), and use_cache (decoders) returns the grown tuple."""
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        use_cache = (config.use_cache if use_cache is None else use_cache) and config.is_decoder
        if input_ids is not None and inputs_embeds is not None:
            raise ValueError("You cannot specify both input_ids and inputs_embeds at the same time")
        if input_ids is None and inputs_embeds is None:
            raise ValueError("You have to specify either input_ids or inputs_embeds")
        source = input_ids if input_ids is not None else inputs_embeds
        if source.shape.rank != (2 if input_ids is not None else 3):
            raise ValueError(f"input_ids must be 2-D (batch, tokens) and inputs_embeds 3-D; got shape {source.shape}. "
                             "Add a batch dimension with x[None].")
        B, T = _dim(source, 0), _dim(source, 1)
        past_len = 0 if past_key_values is None else _dim(past_key_values[0][0], 2)
        self.embeddings.check_inputs(input_ids, token_type_ids, position_ids, T, past_len)
        hidden = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids,
                                 inputs_embeds=inputs_embeds, past_key_values_length=past_len, training=training)
        if attention_mask is not None and attention_mask.shape.rank == 2 and _eager() \
                and tuple(attention_mask.shape) != (B, T + past_len):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)} but (batch, keys) = "
                             f"({B}, {T + past_len}) was expected")
        bias, row_keep = build_attention_mask(attention_mask, B, T, T + past_len, hidden.dtype, config.is_decoder)
        hidden, all_hidden, all_probs, presents = self.encoder(
            hidden, bias=bias, row_keep=row_keep, head_mask=_head_mask(head_mask, config.num_hidden_layers),
            past_key_values=past_key_values, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, training=training)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=hidden, pooler_output=pooled, past_key_values=presents if use_cache else None,
            hidden_states=all_hidden, attentions=all_probs)


def _dim(x, axis: int):
    """A static dimension as an int when known (eager, or traced with a fixed shape), else a scalar tensor."""
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]
