"""FlaxRobertaPreTrainedModel: transformers' Flax calling convention around a linen module, and
FlaxRobertaModel.

`model(input_ids, attention_mask=None, ..., params=None, dropout_rng=None, train=False, ...)` runs one
jax.jit-compiled function per model: the flags are static arguments and the arrays keep fixed dtypes, so
calls with the same shapes and flags reuse one compilation (and calling the model inside your own jit just
inlines it). `model.params` is the parameter pytree with transformers' key names.
Loading and saving live in roberta.flax.weights; this class only forwards to it.
"""
from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from roberta.config import RobertaConfig

from .modeling import FlaxRobertaModule

logger = logging.getLogger(__name__)

_STATIC = ("train", "output_attentions", "output_hidden_states", "return_dict")


def _flag(value, default):
    return default if value is None else value


def _ints(x):
    return None if x is None else jnp.asarray(x, dtype=jnp.int32)


class FlaxRobertaPreTrainedModel:
    config_class = RobertaConfig
    base_model_prefix = "roberta"
    main_input_name = "input_ids"
    module_class = None
    input_rank = 2  # (B, T); multiple choice takes (B, N, T)

    def __init__(self, config, input_shape: tuple | None = None, seed: int = 0, dtype=jnp.float32,
                 _do_init: bool = True, gradient_checkpointing: bool = False, **module_kwargs):
        self.config = config
        self.dtype = dtype
        self.input_shape = tuple(input_shape or (1,) * self.input_rank)
        self.module = self.module_class(config=config, dtype=dtype, gradient_checkpointing=gradient_checkpointing,
                                        **module_kwargs)
        self.key = jax.random.PRNGKey(seed)
        self._missing_keys: set = set()
        self._params = self.init_weights(self.key, self.input_shape) if _do_init else None
        self._forward = jax.jit(self._apply, static_argnames=_STATIC)

    # ---- parameters -----------------------------------------------------------------------------------
    def _dummy_inputs(self, input_shape) -> dict:
        input_ids = jnp.zeros(input_shape, dtype=jnp.int32)
        inputs = {"input_ids": input_ids, "attention_mask": jnp.ones_like(input_ids)}
        if self.config.add_cross_attention:
            inputs["encoder_hidden_states"] = jnp.zeros(input_shape[:2] + (self.config.hidden_size,), self.dtype)
            inputs["encoder_attention_mask"] = inputs["attention_mask"]
        return inputs

    def init_weights(self, rng, input_shape: tuple, params: dict | None = None) -> dict:
        """Random parameters (the module's initializers); with `params`, only the keys in `_missing_keys`
        are taken from the random ones."""
        params_rng, dropout_rng = jax.random.split(rng)
        inputs = self._dummy_inputs(input_shape)
        init = jax.jit(lambda rngs: self.module.init(rngs, **inputs, return_dict=False)["params"])
        random_params = init({"params": params_rng, "dropout": dropout_rng})
        if params is None:
            return random_params
        random_flat, flat = flatten_dict(random_params), flatten_dict(params)
        for key in self._missing_keys:
            flat[key] = random_flat[key]
        self._missing_keys = set()
        return unflatten_dict(flat)

    @property
    def params_shape_tree(self) -> dict:
        inputs = self._dummy_inputs(self.input_shape)
        return jax.eval_shape(lambda: self.module.init(jax.random.PRNGKey(0), **inputs, return_dict=False))["params"]

    @property
    def params(self) -> dict:
        if self._params is None:
            raise ValueError("This model was built with _do_init=False, so it holds no params; pass params= to "
                             "each call (from_pretrained(..., _do_init=False) returns them with the model)")
        return self._params

    @params.setter
    def params(self, params: dict) -> None:
        expected = set(flatten_dict(self.params_shape_tree))
        given = set(flatten_dict(params))
        if given != expected:
            missing = sorted("/".join(k) for k in expected - given)[:5]
            extra = sorted("/".join(k) for k in given - expected)[:5]
            raise ValueError(f"params do not fit {type(self).__name__}: missing {missing}, unexpected {extra}")
        self._params = params

    def _cast(self, params, dtype, mask=None):
        def cast(x, keep=True):
            return x.astype(dtype) if keep and jnp.issubdtype(x.dtype, jnp.floating) else x
        if mask is None:
            return jax.tree_util.tree_map(cast, params)
        return jax.tree_util.tree_map(cast, params, mask)

    def to_bf16(self, params, mask=None):
        return self._cast(params, jnp.bfloat16, mask)

    def to_fp16(self, params, mask=None):
        return self._cast(params, jnp.float16, mask)

    def to_fp32(self, params, mask=None):
        return self._cast(params, jnp.float32, mask)

    def init_cache(self, batch_size: int, max_length: int) -> dict:
        """Zeroed key/value cache for incremental decoding of up to `max_length` tokens (decoders only)."""
        if not self.config.is_decoder:
            raise ValueError(f"{type(self).__name__} has no cache: build it with config.is_decoder=True")
        inputs = self._dummy_inputs((batch_size, max_length))
        shapes = jax.eval_shape(lambda: self.module.init(jax.random.PRNGKey(0), **inputs, init_cache=True,
                                                         return_dict=False)["cache"])
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    # ---- forward ---------------------------------------------------------------------------------------
    def _check_inputs(self, input_ids, token_type_ids, position_ids, cached: bool) -> None:
        """Clear errors for inputs the tables cannot look up. Shapes always; values only for concrete
        (non-traced) arrays, since a value test inside jit would need a host sync."""
        c = self.config
        if input_ids is None or np.ndim(input_ids) != self.input_rank:
            raise ValueError(f"input_ids must be {self.input_rank}-D {'(batch, choices, tokens)' if self.input_rank == 3 else '(batch, tokens)'}"
                             f"; got {None if input_ids is None else np.shape(input_ids)}")
        limit = c.max_position_embeddings - c.pad_token_id - 1
        if position_ids is None and not cached and np.shape(input_ids)[-1] > limit:
            raise ValueError(f"Input of {np.shape(input_ids)[-1]} tokens is longer than this model's maximum of "
                             f"{limit} tokens (max_position_embeddings={c.max_position_embeddings}, and RoBERTa "
                             f"positions start at padding_idx+1={c.pad_token_id + 1}). Truncate the input, e.g. "
                             f"tokenizer(..., truncation=True, max_length={limit}).")
        for name, x, size in (("input_ids", input_ids, c.vocab_size), ("token_type_ids", token_type_ids, c.type_vocab_size),
                              ("position_ids", position_ids, c.max_position_embeddings)):
            if x is None or isinstance(x, jax.core.Tracer) or np.size(x) == 0:
                continue
            lo, hi = int(np.min(x)), int(np.max(x))
            if lo < 0 or hi >= size:
                bad = lo if lo < 0 else hi
                hint = (" RoBERTa has type_vocab_size=1: token_type_ids must be 0 everywhere (pairs are marked with "
                        "</s></s>)." if name == "token_type_ids" and size == 1 else "")
                raise ValueError(f"{name} contains {bad}, outside the embedding table (valid 0..{size - 1}).{hint}")

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, params: dict | None = None,
                 dropout_rng=None, train: bool = False, output_attentions: bool | None = None,
                 output_hidden_states: bool | None = None, return_dict: bool | None = None,
                 past_key_values: dict | None = None):
        """Run the model (shapes for the encoder; multiple choice adds a choices axis after B).

        input_ids (B, T) token ids. attention_mask (B, S): 1 = token, 0 = padding (with past_key_values S is the
        cache's max_length; decoders add the causal mask). token_type_ids (B, T): all 0 for RoBERTa.
        position_ids (B, T): default padding_idx+1, +2, ... over non-pad tokens (continuing after the cached
        ones). head_mask (H,) or (L, H): 1 keeps a head. encoder_hidden_states (B, S_enc, C) and
        encoder_attention_mask (B, S_enc): cross-attention input (decoders with add_cross_attention).
        params: a params pytree to use instead of model.params. dropout_rng + train=True: dropout on.
        past_key_values: a cache from init_cache or a previous output (decoders only).
        """
        c = self.config
        if past_key_values is not None and not c.is_decoder:
            raise ValueError("past_key_values is only used by decoders (config.is_decoder=True)")
        self._check_inputs(input_ids, token_type_ids, position_ids, past_key_values is not None)
        if train and dropout_rng is None and max(c.hidden_dropout_prob, c.attention_probs_dropout_prob) > 0:
            raise ValueError("train=True applies dropout, which needs dropout_rng=jax.random.PRNGKey(...)")
        inputs = {"input_ids": _ints(input_ids), "attention_mask": _ints(attention_mask),
                  "token_type_ids": _ints(token_type_ids), "position_ids": _ints(position_ids),
                  "head_mask": None if head_mask is None else jnp.asarray(head_mask, jnp.float32)}
        if encoder_hidden_states is not None:
            inputs["encoder_hidden_states"] = jnp.asarray(encoder_hidden_states)
            inputs["encoder_attention_mask"] = _ints(encoder_attention_mask)
        return self._forward(params if params is not None else self.params, past_key_values, dropout_rng, inputs,
                             train=bool(train), output_attentions=bool(_flag(output_attentions, c.output_attentions)),
                             output_hidden_states=bool(_flag(output_hidden_states, c.output_hidden_states)),
                             return_dict=bool(_flag(return_dict, c.use_return_dict)))

    def _apply(self, params, cache, dropout_rng, inputs, *, train, output_attentions, output_hidden_states,
               return_dict):
        """The jit-compiled body: module.apply, with the cache collection mutable when one is given."""
        variables = {"params": params} if cache is None else {"params": params, "cache": cache}
        out = self.module.apply(variables, **inputs, deterministic=not train, output_attentions=output_attentions,
                                output_hidden_states=output_hidden_states, return_dict=True,
                                rngs={} if dropout_rng is None else {"dropout": dropout_rng},
                                mutable=["cache"] if cache is not None else False)
        if cache is not None:
            out, updated = out
            out = out.replace(past_key_values=updated["cache"])
        return out if return_dict else out.to_tuple()

    # ---- files -----------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """Build from a folder or hub id: flax_model.msgpack, or PyTorch weights (model.safetensors /
        pytorch_model.bin) when from_pt=True or when there is no msgpack. See roberta.flax.weights."""
        from .weights import load_flax_model

        return load_flax_model(cls, pretrained_model_name_or_path, *args, **kwargs)

    def save_pretrained(self, save_directory, params: dict | None = None, **kwargs) -> None:
        """Write config.json, flax_model.msgpack and model.safetensors (PyTorch names, for the PyTorch classes)."""
        from .weights import save_flax_model

        save_flax_model(self, save_directory, params=params, **kwargs)


class FlaxRobertaModel(FlaxRobertaPreTrainedModel):
    """The bare encoder; `add_pooling_layer=False` drops the pooler."""
    module_class = FlaxRobertaModule
