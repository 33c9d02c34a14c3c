"""transformers' Trainer for our models: swap `from transformers import Trainer` for
`from roberta.integrations import Trainer`.

transformers' Trainer writes a complete model folder (config.json, weights with tied tensors once, the tokenizer)
only for its own `PreTrainedModel` class: for any other model it saves a bare state dict, so the folder cannot
be reloaded by either library, and safetensors refuses the masked LM's tied tensors (the word embeddings /
`lm_head.decoder.weight` and `lm_head.bias` / `lm_head.decoder.bias` are shared). This subclass changes only
how the model is written: our `save_pretrained`, so `save_model`, every checkpoint and hence
`load_best_model_at_end` and `resume_from_checkpoint` work on complete folders, which load in ours and in
transformers alike. Reading checkpoints back stays transformers' own code (our state-dict keys are transformers'),
without its warning about the tied keys a safetensors file leaves out by design.

Imported only when asked for; it needs transformers (and accelerate, which its Trainer uses).
"""
from __future__ import annotations

import logging
import os

import torch

try:
    import transformers
except ImportError as err:  # pragma: no cover - exercised where transformers is absent
    raise ImportError(f"roberta.integrations.Trainer extends transformers' Trainer ({err}). Install it with: "
                      "pip install 'roberta[trainer]'") from err

from roberta.loading import dedupe_tied
from roberta.modeling.base import RobertaPreTrainedModel

logger = logging.getLogger(__name__)

__all__ = ["Trainer"]


class Trainer(transformers.Trainer):
    """transformers.Trainer that saves our models with save_pretrained (see the module docstring)."""

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if not isinstance(model, RobertaPreTrainedModel):
            return super()._save(output_dir, state_dict=state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        logger.info("Saving model checkpoint to %s", output_dir)
        model.save_pretrained(output_dir, state_dict=state_dict, safe_serialization=self.args.save_safetensors)
        # what transformers' _save writes next to the model: the tokenizer (or the collator's) and the arguments
        tokenizer = self.processing_class
        if tokenizer is None and getattr(self.data_collator, "tokenizer", None) is not None:
            tokenizer = self.data_collator.tokenizer
        if tokenizer is not None:
            tokenizer.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, transformers.trainer.TRAINING_ARGS_NAME))

    def _issue_warnings_after_load(self, load_result) -> None:
        # a safetensors checkpoint holds each tied tensor once: the aliases are "missing" by design, and loading
        # their partners filled them
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if isinstance(model, RobertaPreTrainedModel):
            _, alias_of = dedupe_tied(model.state_dict(), set(model._tied_weights_keys or []))
            tied = set(alias_of)
            load_result = type(load_result)([k for k in load_result.missing_keys if k not in tied],
                                            load_result.unexpected_keys)
        super()._issue_warnings_after_load(load_result)

