"""FlaxRoberta* classes (JAX/Flax), on the same RobertaConfig, tokenizers and weight files as the PyTorch
classes. Needs the `flax` extra: pip install 'roberta[flax]'.

Modules: modeling (embeddings -> attention -> encoder -> model), heads, base (the calling convention and
jit), outputs, weights (PyTorch <-> Flax names, from/save_pretrained), training (optax loops, sharding).
"""
try:
    import flax  # noqa: F401
    import jax  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(f"The Flax classes need jax and flax ({err}). Install them with: pip install 'roberta[flax]'") \
        from err

from .base import FlaxRobertaModel, FlaxRobertaPreTrainedModel
from .heads import (FlaxRobertaForCausalLM, FlaxRobertaForMaskedLM, FlaxRobertaForMultipleChoice,
                    FlaxRobertaForQuestionAnswering, FlaxRobertaForSequenceClassification,
                    FlaxRobertaForTokenClassification)

__all__ = [
    "FlaxRobertaPreTrainedModel", "FlaxRobertaModel", "FlaxRobertaForMaskedLM", "FlaxRobertaForCausalLM",
    "FlaxRobertaForSequenceClassification", "FlaxRobertaForMultipleChoice", "FlaxRobertaForTokenClassification",
    "FlaxRobertaForQuestionAnswering",
]
