"""The Keras models: TFRobertaModel and its six heads, each wrapping TFRobertaMainLayer as `roberta`.

Arguments are RobertaModel.forward's (documented once, in roberta.modeling.model) plus `training` (dropout)
and the head's labels. Losses follow transformers' TF classes, computed in float32: language-model and
token-classification losses are one masked mean of shape (1,) (-100 ignored); sequence classification,
multiple choice and question answering return one loss per example, shape (B,).

Shape legend: B batch, N choices, T tokens, C hidden, V vocabulary, L labels.
"""
from __future__ import annotations

import logging

import keras
import tensorflow as tf

from roberta.model_output import (BaseModelOutputWithPoolingAndCrossAttentions, CausalLMOutputWithCrossAttentions,
                                  MaskedLMOutput, MultipleChoiceModelOutput, QuestionAnsweringModelOutput,
                                  SequenceClassifierOutput, TokenClassifierOutput)

from .base import TFRobertaPreTrainedModel
from .modeling import LazyBuildLayer, TFRobertaMainLayer, get_activation, initializer

logger = logging.getLogger(__name__)


def _classifier_dropout(config) -> float:
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob


def _xent(labels, logits):
    """Per-position cross-entropy in float32; labels < 0 give 0 (callers mask them out)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(tf.nn.relu(tf.cast(labels, tf.int32)),
                                                          tf.cast(logits, tf.float32))


def masked_mean_loss(labels, logits):
    """(B, T) labels (-100 = ignored), (B, T, V) logits -> (1,) mean over the labelled positions."""
    keep = tf.cast(labels >= 0, tf.float32)
    return tf.reshape(tf.reduce_sum(_xent(labels, logits) * keep) / tf.reduce_sum(keep), (1,))


class TFRobertaModel(TFRobertaPreTrainedModel):
    _output_class = BaseModelOutputWithPoolingAndCrossAttentions

    def __init__(self, config, *inputs, add_pooling_layer: bool = True, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.roberta = TFRobertaMainLayer(config, add_pooling_layer=add_pooling_layer, name="roberta")

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, past_key_values=None, use_cache=None, output_attentions=None,
             output_hidden_states=None, training=False):
        return self.roberta(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                            past_key_values=past_key_values, use_cache=use_cache, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, training=training)


class TFRobertaLMHead(keras.layers.Layer):
    """dense -> gelu -> layer_norm -> x @ word_embeddings^T + bias (the decoder is tied to the embeddings)."""

    def __init__(self, config, input_embeddings, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = config.vocab_size
        self.dense = keras.layers.Dense(config.hidden_size, kernel_initializer=initializer(config), name="dense")
        self.layer_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="layer_norm")
        self.act = get_activation("gelu")
        self.decoder = input_embeddings  # TFRobertaEmbeddingTable: shared, not a second weight

    def build(self, input_shape=None):
        self.bias = self.add_weight(name="bias", shape=(self.vocab_size,), initializer="zeros")

    def call(self, hidden_states):  # (B, T, C) -> (B, T, V)
        x = self.layer_norm(self.act(self.dense(hidden_states)))
        weight = tf.cast(self.decoder.weight, x.dtype)
        return tf.einsum("btc,vc->btv", x, weight) + tf.cast(self.bias, x.dtype)


class TFRobertaForMaskedLM(TFRobertaPreTrainedModel):
    _output_class = MaskedLMOutput

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.roberta = TFRobertaMainLayer(config, add_pooling_layer=False, name="roberta")
        self.lm_head = TFRobertaLMHead(config, self.roberta.embeddings.word_embeddings, name="lm_head")

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, labels=None, training=False):
        """labels (B, T): token ids to predict, -100 = ignored."""
        outputs = self.encode(locals())
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None if labels is None else masked_mean_loss(labels, logits)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                              attentions=outputs.attentions)


class TFRobertaForCausalLM(TFRobertaPreTrainedModel):
    """A decoder (config.is_decoder=True): causal attention, and past_key_values for step-by-step decoding."""

    _output_class = CausalLMOutputWithCrossAttentions

    def __init__(self, config, *inputs, **kwargs):
        if not config.is_decoder:
            logger.warning("If you want to use `TFRobertaForCausalLM` as a standalone, add "
                                                "`is_decoder=True.`")
        super().__init__(config, *inputs, **kwargs)
        self.roberta = TFRobertaMainLayer(config, add_pooling_layer=False, name="roberta")
        self.lm_head = TFRobertaLMHead(config, self.roberta.embeddings.word_embeddings, name="lm_head")

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, past_key_values=None, use_cache=None, output_attentions=None,
             output_hidden_states=None, labels=None, training=False):
        """labels (B, T): the loss predicts token t+1 from tokens <= t (shifted inside), -100 = ignored.
        past_key_values: per-layer (k, v) (B, H, S_past, D) from the previous call's output."""
        outputs = self.roberta(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                               past_key_values=past_key_values, use_cache=use_cache,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               training=training)
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None if labels is None else masked_mean_loss(labels[:, 1:], logits[:, :-1])
        return CausalLMOutputWithCrossAttentions(loss=loss, logits=logits, past_key_values=outputs.past_key_values,
                                                 hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class TFRobertaClassificationHead(LazyBuildLayer):
    """<s> token -> dropout -> dense -> tanh -> dropout -> out_proj (fairseq's head; not the pooler)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(config.hidden_size, kernel_initializer=initializer(config),
                                        activation="tanh", name="dense")
        self.dropout = keras.layers.Dropout(_classifier_dropout(config))
        self.out_proj = keras.layers.Dense(config.num_labels, kernel_initializer=initializer(config), name="out_proj")

    def call(self, features, training=False):  # (B, T, C) -> (B, L)
        x = self.dense(self.dropout(features[:, 0], training=training))
        return self.out_proj(self.dropout(x, training=training))


def sequence_classification_loss(config, labels, logits):
    """-> (B,) per example. num_labels == 1: regression (MSE); integer labels: cross-entropy; float (B, L)
    labels: multi-label (binary cross-entropy, mean over labels). Records the choice in config.problem_type."""
    if config.problem_type is None:
        config.problem_type = ("regression" if config.num_labels == 1 else "single_label_classification"
                               if labels.dtype.is_integer else "multi_label_classification")
    logits = tf.cast(logits, tf.float32)
    if config.problem_type == "regression":
        labels = tf.reshape(tf.cast(labels, tf.float32), (tf.shape(logits)[0], -1))
        return tf.reduce_mean(tf.square(logits - labels), axis=-1)
    if config.problem_type == "single_label_classification":
        return _xent(labels, logits)
    if config.problem_type == "multi_label_classification":
        per_label = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(labels, tf.float32), logits)
        return tf.reduce_mean(per_label, axis=-1)
    raise ValueError(f"Unknown problem_type {config.problem_type!r}; expected 'regression', "
                     "'single_label_classification' or 'multi_label_classification'")


class TFRobertaForSequenceClassification(TFRobertaPreTrainedModel):
    _output_class = SequenceClassifierOutput

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.roberta = TFRobertaMainLayer(config, add_pooling_layer=False, name="roberta")
        self.classifier = TFRobertaClassificationHead(config, name="classifier")

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, labels=None, training=False):
        """labels (B,): class ids, floats (regression) or (B, L) 0/1 floats (multi-label)."""
        outputs = self.encode(locals())
        logits = self.classifier(outputs.last_hidden_state, training=training)
        loss = None if labels is None else sequence_classification_loss(self.config, labels, logits)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)


class TFRobertaForMultipleChoice(TFRobertaPreTrainedModel):
    """Inputs (B, N, T) are flattened to (B * N, T); one score per choice from the pooler."""

    _output_class = MultipleChoiceModelOutput

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.roberta = TFRobertaMainLayer(config, name="roberta")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.classifier = keras.layers.Dense(1, kernel_initializer=initializer(config), name="classifier")

    @property
    def dummy_inputs(self) -> dict:
        return {"input_ids": tf.constant([[[0, 2], [0, 2]]], tf.int32)}

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, labels=None, training=False):
        """input_ids (B, N, T); labels (B,): index of the right choice."""
        source = input_ids if input_ids is not None else inputs_embeds
        if source is None:
            raise ValueError("You have to specify either input_ids or inputs_embeds")
        num_choices = tf.shape(source)[1]

        def flat(x, keep: int):  # (B, N, ...) -> (B * N, ...)
            return None if x is None else tf.reshape(x, tf.concat([[-1], tf.shape(x)[-keep:]], axis=0))

        outputs = self.roberta(flat(input_ids, 1), attention_mask=flat(attention_mask, 1),
                               token_type_ids=flat(token_type_ids, 1), position_ids=flat(position_ids, 1),
                               head_mask=head_mask, inputs_embeds=flat(inputs_embeds, 2),
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               training=training)
        pooled = self.dropout(outputs.pooler_output, training=training)
        logits = tf.reshape(self.classifier(pooled), (-1, num_choices))  # (B, N)
        loss = None if labels is None else _xent(labels, logits)
        return MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                         attentions=outputs.attentions)


class TFRobertaForTokenClassification(TFRobertaPreTrainedModel):
    _output_class = TokenClassifierOutput

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.roberta = TFRobertaMainLayer(config, add_pooling_layer=False, name="roberta")
        self.dropout = keras.layers.Dropout(_classifier_dropout(config))
        self.classifier = keras.layers.Dense(config.num_labels, kernel_initializer=initializer(config),
                                             name="classifier")

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, labels=None, training=False):
        """labels (B, T): class per token, -100 = ignored."""
        outputs = self.encode(locals())
        logits = self.classifier(self.dropout(outputs.last_hidden_state, training=training))  # (B, T, L)
        loss = None if labels is None else masked_mean_loss(labels, logits)
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                     attentions=outputs.attentions)


class TFRobertaForQuestionAnswering(TFRobertaPreTrainedModel):
    _output_class = QuestionAnsweringModelOutput

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        if config.num_labels != 2:
            raise ValueError(f"TFRobertaForQuestionAnswering needs num_labels=2 (start and end); got "
                             f"{config.num_labels}")
        self.roberta = TFRobertaMainLayer(config, add_pooling_layer=False, name="roberta")
        self.qa_outputs = keras.layers.Dense(config.num_labels, kernel_initializer=initializer(config),
                                             name="qa_outputs")

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, start_positions=None,
             end_positions=None, training=False):
        """start_positions / end_positions (B,): token indices of the answer span; the loss is per example,
        (start + end) / 2."""
        outputs = self.encode(locals())
        logits = self.qa_outputs(outputs.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (_xent(tf.reshape(start_positions, (-1,)), start_logits)
                    + _xent(tf.reshape(end_positions, (-1,)), end_logits)) / 2
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                            hidden_states=outputs.hidden_states, attentions=outputs.attentions)
