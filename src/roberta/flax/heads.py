"""Flax heads, in the PyTorch twin's order: LM head (masked and causal LM), classification head, then
sequence classification, multiple choice, token classification and question answering.

Each wraps FlaxRobertaModule as `roberta` (no pooler, except MultipleChoice which uses it); parameter names
are transformers' (`lm_head/dense`, `lm_head/layer_norm`, `lm_head/bias`, `classifier/out_proj`, `qa_outputs`).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from .base import FlaxRobertaPreTrainedModel
from .modeling import FlaxRobertaModule, _dense, _layer_norm, get_activation
from .outputs import (FlaxCausalLMOutputWithCrossAttentions, FlaxMaskedLMOutput, FlaxMultipleChoiceModelOutput,
                      FlaxQuestionAnsweringModelOutput, FlaxSequenceClassifierOutput, FlaxTokenClassifierOutput)


def _classifier_dropout(config) -> float:
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob


class FlaxRobertaLMHead(nn.Module):
    """dense -> gelu -> layer_norm -> vocabulary projection (+ bias). The projection is the word embedding
    matrix (tie_word_embeddings, the default: no `decoder` params then) or its own `decoder/kernel`."""
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.dense = _dense(c, c.hidden_size, self.dtype)
        self.layer_norm = _layer_norm(c, self.dtype)
        self.decoder = _dense(c, c.vocab_size, self.dtype, use_bias=False)
        self.bias = self.param("bias", jax.nn.initializers.zeros, (c.vocab_size,))

    def __call__(self, hidden_states, shared_embedding=None):  # (B, T, C) -> (B, T, V)
        x = self.layer_norm(get_activation("gelu")(self.dense(hidden_states)))
        if shared_embedding is not None:
            x = x @ jnp.asarray(shared_embedding, self.dtype).T
        else:
            x = self.decoder(x)
        return x + jnp.asarray(self.bias, self.dtype)


class _LMModule(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        self.roberta = FlaxRobertaModule(self.config, dtype=self.dtype, add_pooling_layer=False,
                                         gradient_checkpointing=self.gradient_checkpointing)
        self.lm_head = FlaxRobertaLMHead(self.config, dtype=self.dtype)

    def _logits(self, hidden):
        shared = None
        if self.config.tie_word_embeddings:
            shared = self.roberta.variables["params"]["embeddings"]["word_embeddings"]["embedding"]
        return self.lm_head(hidden, shared_embedding=shared)


class FlaxRobertaForMaskedLMModule(_LMModule):
    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 deterministic=True, output_attentions=False, output_hidden_states=False, return_dict=True):
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                           deterministic=deterministic, output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, return_dict=True)
        logits = self._logits(out.last_hidden_state)
        result = FlaxMaskedLMOutput(logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)
        return result if return_dict else result.to_tuple()


class FlaxRobertaForCausalLMModule(_LMModule):
    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache=False, deterministic=True,
                 output_attentions=False, output_hidden_states=False, return_dict=True):
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                           encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
                           init_cache=init_cache, deterministic=deterministic, output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, return_dict=True)
        result = FlaxCausalLMOutputWithCrossAttentions(
            logits=self._logits(out.last_hidden_state), hidden_states=out.hidden_states, attentions=out.attentions,
            cross_attentions=out.cross_attentions)
        return result if return_dict else result.to_tuple()


class FlaxRobertaClassificationHead(nn.Module):
    """<s> token -> dropout -> dense -> tanh -> dropout -> out_proj (fairseq's head; not the pooler)."""
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.dense = _dense(self.config, self.config.hidden_size, self.dtype)
        self.dropout = nn.Dropout(rate=_classifier_dropout(self.config))
        self.out_proj = _dense(self.config, self.config.num_labels, self.dtype)

    def __call__(self, hidden_states, deterministic=True):  # (B, T, C) -> (B, num_labels)
        x = self.dropout(hidden_states[:, 0, :], deterministic=deterministic)
        x = self.dropout(nn.tanh(self.dense(x)), deterministic=deterministic)
        return self.out_proj(x)


class _EncoderHeadModule(nn.Module):
    """An encoder run shared by the classification-style heads; `_head` maps its output to logits."""
    config: object
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    add_pooling_layer = False
    flatten_choices = False

    def setup(self):
        self.roberta = FlaxRobertaModule(self.config, dtype=self.dtype, add_pooling_layer=self.add_pooling_layer,
                                         gradient_checkpointing=self.gradient_checkpointing)
        self.setup_head()

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 deterministic=True, output_attentions=False, output_hidden_states=False, return_dict=True):
        shape = input_ids.shape
        if self.flatten_choices:  # (B, N, T) -> (B*N, T)
            input_ids, attention_mask, token_type_ids, position_ids = [
                None if x is None else x.reshape(-1, x.shape[-1])
                for x in (input_ids, attention_mask, token_type_ids, position_ids)]
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                           deterministic=deterministic, output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, return_dict=True)
        result = self.head(out, deterministic, shape)
        result = result.replace(hidden_states=out.hidden_states, attentions=out.attentions)
        return result if return_dict else result.to_tuple()


class FlaxRobertaForSequenceClassificationModule(_EncoderHeadModule):
    def setup_head(self):
        self.classifier = FlaxRobertaClassificationHead(self.config, dtype=self.dtype)

    def head(self, out, deterministic, shape):
        return FlaxSequenceClassifierOutput(logits=self.classifier(out.last_hidden_state, deterministic))


class FlaxRobertaForMultipleChoiceModule(_EncoderHeadModule):
    """Inputs (B, N, T) for N choices, run as B*N sequences; the pooled <s> of each scores its choice."""
    add_pooling_layer = True
    flatten_choices = True

    def setup_head(self):
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout_prob)
        self.classifier = _dense(self.config, 1, self.dtype)

    def head(self, out, deterministic, shape):
        logits = self.classifier(self.dropout(out.pooler_output, deterministic=deterministic))
        return FlaxMultipleChoiceModelOutput(logits=logits.reshape(shape[:2]))  # (B, N)


class FlaxRobertaForTokenClassificationModule(_EncoderHeadModule):
    def setup_head(self):
        self.dropout = nn.Dropout(rate=_classifier_dropout(self.config))
        self.classifier = _dense(self.config, self.config.num_labels, self.dtype)

    def head(self, out, deterministic, shape):  # (B, T, C) -> (B, T, num_labels)
        logits = self.classifier(self.dropout(out.last_hidden_state, deterministic=deterministic))
        return FlaxTokenClassifierOutput(logits=logits)


class FlaxRobertaForQuestionAnsweringModule(_EncoderHeadModule):
    def setup_head(self):
        self.qa_outputs = _dense(self.config, self.config.num_labels, self.dtype)

    def head(self, out, deterministic, shape):  # (B, T, C) -> (B, T) start and end scores
        logits = self.qa_outputs(out.last_hidden_state)
        start, end = jnp.split(logits, 2, axis=-1)
        return FlaxQuestionAnsweringModelOutput(start_logits=start.squeeze(-1), end_logits=end.squeeze(-1))


class FlaxRobertaForMaskedLM(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForMaskedLMModule


class FlaxRobertaForCausalLM(FlaxRobertaPreTrainedModel):
    """A decoder (build it with config.is_decoder=True). Incremental decoding: `cache = model.init_cache(B,
    max_length)`, then `out = model(ids, attention_mask=(B, max_length) mask, past_key_values=cache)` and
    `out.past_key_values` is the cache for the next call; every step of the same shape reuses one compile."""
    module_class = FlaxRobertaForCausalLMModule


class FlaxRobertaForSequenceClassification(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForSequenceClassificationModule


class FlaxRobertaForMultipleChoice(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForMultipleChoiceModule
    input_rank = 3


class FlaxRobertaForTokenClassification(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForTokenClassificationModule


class FlaxRobertaForQuestionAnswering(FlaxRobertaPreTrainedModel):
    module_class = FlaxRobertaForQuestionAnsweringModule
