"""GenerationMixin: what a model class needs for `generate()`; the work is in roberta.generation.

The model provides forward + its key/value cache; this mixin adds `generation_config` (made from the model
config on first use, replaced by generation_config.json when loading), `prepare_inputs_for_generation` (the
per-step inputs) and `generate`, which imports the generation package only when called.
"""
from __future__ import annotations

from typing import Optional

import torch


class GenerationMixin:
    """Mixed into RobertaForCausalLM; needs `forward(..., past_key_values, use_cache, logits_to_keep)`."""

    @property
    def generation_config(self):
        """The model's default GenerationConfig (from generation_config.json, else from the model config)."""
        config = self.__dict__.get("_generation_config")
        if config is None:
            from roberta.generation.config import GenerationConfig
            config = self.__dict__["_generation_config"] = GenerationConfig.from_model_config(self.config)
        return config

    @generation_config.setter
    def generation_config(self, value) -> None:
        self.__dict__["_generation_config"] = value

    def _load_generation_config(self, path, hub: dict, given=None) -> None:
        """Called by from_pretrained: a given generation_config, else the folder's generation_config.json if any."""
        from roberta.generation.config import GenerationConfig
        if given is not None:
            self.generation_config = GenerationConfig.from_dict(given.to_dict())
            return
        try:
            self.generation_config = GenerationConfig.from_pretrained(path, **hub)
        except OSError:  # no generation_config.json: keep the one made from the model config
            pass

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, past_key_values=None,
                                      attention_mask: Optional[torch.Tensor] = None,
                                      inputs_embeds: Optional[torch.Tensor] = None, **kwargs) -> dict:
        """Keyword arguments of the next forward during generation: the positions the cache has not seen yet,
        their position ids, the prompt embeddings on the first step (see roberta.generation.inputs)."""
        from roberta.generation.inputs import prepare_inputs
        return prepare_inputs(self, input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
                              inputs_embeds=inputs_embeds, **kwargs)

    def generate(self, inputs: Optional[torch.Tensor] = None, generation_config=None, logits_processor=None,
                 stopping_criteria=None, use_model_defaults: Optional[bool] = None,
                 generator: Optional[torch.Generator] = None, **kwargs):
        """input_ids (B, T) -> (B * num_return_sequences, T + new) token ids, or a Generate*Output with
        return_dict_in_generate=True (sequences, scores, logits, sequences_scores and beam_indices for beams).

        Settings come from `generation_config` (default `self.generation_config`) overridden by keyword arguments
        named like GenerationConfig attributes: max_new_tokens / max_length (default: 20 new tokens),
        min_new_tokens / min_length, do_sample, temperature, top_k (50 when sampling), top_p, num_beams,
        num_return_sequences, length_penalty, early_stopping (True, False, "never"), repetition_penalty,
        no_repeat_ngram_size, bad_words_ids, eos_token_id (int or list), pad_token_id, use_cache,
        return_dict_in_generate, output_scores, output_logits, output_attentions, output_hidden_states,
        roberta_positions. Other keyword arguments are model inputs: attention_mask (B, T), inputs_embeds
        (B, P, C) instead of input_ids, token_type_ids, encoder_hidden_states (B, S, C) and
        encoder_attention_mask (B, S) for a cross-attention decoder.

        Equal to transformers 4.57's generate token for token, including its 0-based positions (cumsum(mask) - 1);
        roberta_positions=True feeds the positions the forward pass uses (padding_idx + 1 + i) instead, as
        transformers' EncoderDecoderModel does for a RoBERTa decoder. Sampling draws from torch's global RNG like
        transformers (torch.manual_seed makes both draw the same), or from `generator` when given.
        """
        from roberta.generation.generate import generate
        return generate(self, inputs, generation_config=generation_config, logits_processor=logits_processor,
                        stopping_criteria=stopping_criteria, use_model_defaults=use_model_defaults,
                        generator=generator, **kwargs)

    def compute_transition_scores(self, sequences: torch.Tensor, scores, beam_indices=None,
                                  normalize_logits: bool = False) -> torch.Tensor:
        """(N, new tokens) score of each generated token, from generate(output_scores=True)'s sequences, scores
        (and beam_indices for beam search); see roberta.generation.outputs.transition_scores."""
        from roberta.generation.outputs import transition_scores
        return transition_scores(sequences, scores, beam_indices, normalize_logits)
