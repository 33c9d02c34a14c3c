"""TFRoberta*: Keras 3 (TensorFlow backend) twins of the PyTorch classes, on the same RobertaConfig,
tokenizers and weights. Needs the optional extra: pip install 'roberta[tf]'.

modeling (layers, data-flow order) -> models (TFRobertaModel + six heads) ; base (Keras calling, fit,
predict, serving) ; weights (tf_model.h5 both ways, PyTorch checkpoints in).
"""
import os

try:
    import tensorflow  # noqa: F401
except ImportError:
    raise ImportError("The TFRoberta* classes need TensorFlow: pip install 'roberta[tf]'") from None

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"The TFRoberta* classes are Keras models on the TensorFlow backend, but Keras was started with "
                      f"the {keras.backend.backend()!r} backend (KERAS_BACKEND). Set KERAS_BACKEND=tensorflow.")

from .base import TFRobertaPreTrainedModel  # noqa: E402
from .models import (TFRobertaForCausalLM, TFRobertaForMaskedLM, TFRobertaForMultipleChoice,  # noqa: E402
                     TFRobertaForQuestionAnswering, TFRobertaForSequenceClassification,
                     TFRobertaForTokenClassification, TFRobertaModel)

__all__ = ["TFRobertaPreTrainedModel", "TFRobertaModel", "TFRobertaForMaskedLM", "TFRobertaForCausalLM",
           "TFRobertaForSequenceClassification", "TFRobertaForMultipleChoice", "TFRobertaForTokenClassification",
           "TFRobertaForQuestionAnswering"]
