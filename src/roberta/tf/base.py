"""TFRobertaPreTrainedModel: what every TFRoberta* Keras model shares.

* Calling: on keyword tensors, or on a dict / BatchEncoding as the first argument (what `model.fit` feeds and
  what `tokenizer(..., return_tensors="tf")` returns); numpy and lists are converted.
* Training with Keras: `model.compile(optimizer=...)` without a loss trains on the loss the model computes from
  `labels` (labels may sit in the input dict or be the dataset's `y`), like transformers' TF models.
* `model.predict` returns the output class (`.logits`, ...) with the batches concatenated.
* Serving: `model.serving` is a tf.function with a (input_ids, attention_mask) int32 signature of dynamic
  shape, for `tf.saved_model.save(model, path, signatures=model.serving)`.
* Weights: `from_pretrained` / `save_pretrained` (roberta.tf.weights does the file work).
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from roberta.config import RobertaConfig
from roberta.model_output import ModelOutput

logger = logging.getLogger(__name__)

# The body's arguments, which every head's call takes too (besides its labels).
_BODY_ARGS = ("attention_mask", "token_type_ids", "position_ids", "head_mask", "inputs_embeds", "output_attentions",
              "output_hidden_states", "training")
# What a dataset's `y` becomes when the model takes several label arguments.
_LABEL_NAMES = ("labels", "start_positions", "end_positions")


def _as_tensor(value):
    if value is None or tf.is_tensor(value) or isinstance(value, (bool, tuple)):
        return value
    if isinstance(value, (list, np.ndarray, int, float)):
        array = np.asarray(value)
        return tf.constant(array.astype(np.int32) if array.dtype == np.int64 else array)
    return value


class TFRobertaPreTrainedModel(keras.Model):
    _output_class: type[ModelOutput] = ModelOutput  # what call() returns; `predict` rebuilds it
    config_class = RobertaConfig
    base_model_prefix = "roberta"
    main_input_name = "input_ids"

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(*inputs, **kwargs)
        if not isinstance(config, RobertaConfig):
            raise TypeError(f"{type(self).__name__} needs a RobertaConfig, got {type(config).__name__}")
        self.config = config
        self.serving = tf.function(self._serve, input_signature=[
            tf.TensorSpec((None, None), tf.int32, name="input_ids"),
            tf.TensorSpec((None, None), tf.int32, name="attention_mask")])

    def build(self, *args, **kwargs):  # sublayers build on the first call (see modeling.LazyBuildLayer)
        self.built = True

    # ---- calling -----------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        """A dict (or BatchEncoding) as first argument is spread into keywords; numpy and lists become tensors."""
        if args and isinstance(args[0], Mapping):
            given = dict(args[0])
            clash = sorted(set(given) & set(kwargs))
            if clash:
                raise TypeError(f"{clash} given both in the input dict and as keywords")
            kwargs = {**given, **kwargs}
            args = args[1:]
            if "input_ids" in kwargs and not args:
                args = (kwargs.pop("input_ids"),)
        args = tuple(_as_tensor(a) for a in args)
        kwargs = {k: _as_tensor(v) for k, v in kwargs.items()}
        unknown = sorted(set(kwargs) - self._call_arguments())
        if unknown:
            raise TypeError(f"{type(self).__name__}.call got unexpected arguments {unknown}; it takes "
                            f"{sorted(self._call_arguments())}")
        return super().__call__(*args, **kwargs)

    def _call_arguments(self) -> set[str]:
        return set(inspect.signature(self.call).parameters) - {"self"}

    def encode(self, call_args: dict):
        """Run the body (`self.roberta`) with the body's arguments picked from a head's call arguments
        (`self.encode(locals())`): the heads take the same ones and add their labels."""
        return self.roberta(call_args["input_ids"], **{k: call_args[k] for k in _BODY_ARGS})

    @property
    def dummy_inputs(self) -> dict:
        return {"input_ids": tf.constant([[0, 31414, 232, 2]], tf.int32) % self.config.vocab_size}

    def build_in_name_scope(self) -> None:
        """Create every weight by calling the model once on a tiny input."""
        if not self.built or not self.weights:
            self(self.dummy_inputs, training=False)

    def get_input_embeddings(self):
        return self.roberta.embeddings.word_embeddings

    # ---- Keras training / evaluation / prediction ----------------------------------------------------
    def _labels_into_inputs(self, data):
        """(x, y, sample_weight) -> x with y under the label argument(s), so the model computes its own loss."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported with the model's internal loss; weight the labels "
                             "(e.g. -100 to ignore positions) instead")
        x = dict(x) if isinstance(x, Mapping) else {"input_ids": x}
        if y is not None:
            names = [n for n in _LABEL_NAMES if n in self._call_arguments()]
            if isinstance(y, Mapping):
                x.update(y)
            elif len(names) == 1:
                x[names[0]] = y
            else:
                raise ValueError(f"{type(self).__name__} takes labels {names}: give y as a dict with those keys")
        return (x,)

    def _uses_internal_loss(self) -> bool:
        return getattr(self, "_compile_loss", None) is None  # compile() was given no loss

    def train_step(self, data):
        return super().train_step(self._labels_into_inputs(data) if self._uses_internal_loss() else data)

    def test_step(self, data):
        return super().test_step(self._labels_into_inputs(data) if self._uses_internal_loss() else data)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not self._uses_internal_loss():
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        loss = y_pred.get("loss") if isinstance(y_pred, Mapping) else None
        if loss is None:
            raise ValueError("model.compile() was given no loss, so the model computes it, but the data has no "
                             f"labels: pass ({{'input_ids': ...}}, labels) or a dict with "
                             f"{[n for n in _LABEL_NAMES if n in self._call_arguments()]}")
        loss = tf.reduce_mean(tf.cast(loss, tf.float32))
        if self.losses:
            loss = loss + tf.add_n([tf.cast(extra, tf.float32) for extra in self.losses])
        return loss

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        outputs = self(x, training=False)
        return {k: v for k, v in outputs.items() if tf.is_tensor(v)}  # plain dict: Keras concatenates batches

    def predict(self, *args, **kwargs):
        """Keras predict; the concatenated outputs come back in this model's output class."""
        result = super().predict(*args, **kwargs)
        return self._output_class(**result) if isinstance(result, dict) else result

    # ---- serving -----------------------------------------------------------------------------------
    @property
    def _default_save_signature(self):
        """What tf.saved_model.save exports when given no signatures (Keras' default would trace the model
        on float32 inputs of the build shape): the (input_ids, attention_mask) serving function."""
        return self.serving

    def _serve(self, input_ids, attention_mask):
        outputs = self(input_ids=input_ids, attention_mask=attention_mask, training=False)
        return {k: v for k, v in outputs.items() if tf.is_tensor(v)}

    # ---- weights -----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Folder or hub id -> model: tf_model.h5 (transformers' TF weights, by name), or with `from_pt=True`
        or when the checkpoint has PyTorch weights only, model.safetensors / pytorch_model.bin (read into
        numpy, no torch). Keywords as transformers': config, from_pt, cache_dir, revision, local_files_only,
        token, output_loading_info, plus config overrides (num_labels=3, ...)."""
        from roberta.tf.weights import load_pretrained

        return load_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs)

    def save_pretrained(self, save_directory, saved_model: bool = False, version: int = 1, **kwargs) -> None:
        """Write config.json and tf_model.h5 (transformers' layout and names, so its TFRoberta* classes load it);
        with saved_model=True also a SavedModel in saved_model/<version> with the `serving` signature."""
        from roberta.tf.weights import save_pretrained

        save_pretrained(self, save_directory, saved_model=saved_model, version=version, **kwargs)

