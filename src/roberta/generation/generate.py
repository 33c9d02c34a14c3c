"""generate(): settle the settings and the prompt, then run a search strategy.

Order (transformers 4.57's, so lengths, padding and special tokens resolve the same way): merge the model's
GenerationConfig with the call's keyword arguments (the rest are model inputs); take the prompt (input_ids,
inputs_embeds, or a BOS token); special tokens (pad defaults to the first EOS); the attention mask (inferred
from pad ids when not given); lengths (max_new_tokens wins over max_length; 20 tokens by default); repeat each
row num_beams / num_return_sequences times; build processors and stopping criteria; search.
"""
from __future__ import annotations

import copy
import logging
import warnings
from typing import Callable, Optional, Sequence

import torch

from .assisted import assisted_search, candidate_source, check_assisted
from .beam import beam_search
from .config import DEFAULTS, UNSUPPORTED, GenerationConfig
from .inputs import MODEL_INPUTS, expand
from .processors import build_processors
from .search import sample_or_greedy
from .stopping import build_criteria

logger = logging.getLogger(__name__)
Tensor = torch.Tensor

# generate() arguments of transformers that select machinery we do not have
_UNSUPPORTED_ARGUMENTS = ("prefix_allowed_tokens_fn", "synced_gpus", "streamer",
                          "negative_prompt_ids", "negative_prompt_attention_mask", "custom_generate",
                          "assistant_tokenizer", "tokenizer")


# cache_implementation values that name the growing cache the model keeps anyway (a static, offloaded or
# quantized cache would change memory behaviour, so those raise)
_DYNAMIC_CACHES = ("dynamic", "dynamic_full")


def resolve_config(model, generation_config: Optional[GenerationConfig], use_model_defaults: Optional[bool],
                   kwargs: dict) -> tuple[GenerationConfig, dict]:
    """-> (a private GenerationConfig for this call, the keyword arguments that are model inputs).

    Priority: call keyword arguments > the given generation_config > model.generation_config > defaults.
    A given config's default-valued settings take the model's values unless use_model_defaults=False."""
    if generation_config is None:
        config = copy.deepcopy(model.generation_config)
    else:
        config = copy.deepcopy(generation_config)
        if use_model_defaults is not False:
            for key, value in model.generation_config.__dict__.items():
                if not key.startswith("_") and getattr(config, key, None) == DEFAULTS.get(key) != value:
                    setattr(config, key, value)
            if config.temperature == 0.0:
                config.do_sample = False
    model_kwargs = config.update(**kwargs)
    for flag in ("output_attentions", "output_hidden_states"):
        if getattr(config, flag):
            model_kwargs[flag] = True
    return config, model_kwargs


def _check_supported(config: GenerationConfig, model_kwargs: dict, model) -> None:
    chosen = [k for k in UNSUPPORTED if getattr(config, k) != DEFAULTS[k]
              and not (k == "cache_implementation" and getattr(config, k) in _DYNAMIC_CACHES)]
    if chosen:
        raise NotImplementedError(
            f"generate() does not implement {chosen}. It offers greedy search, sampling (temperature, top_k, top_p), "
            "beam search and beam sampling (num_beams, num_return_sequences, length_penalty, early_stopping), "
            "repetition_penalty, no_repeat_ngram_size, bad_words_ids, min_length / min_new_tokens, "
            "max_length / max_new_tokens, eos_token_id lists, and custom logits_processor / stopping_criteria")
    if "position_ids" in model_kwargs:
        raise ValueError("generate() computes position_ids from the attention mask at every step; do not pass them "
                         "(roberta_positions=True picks the positions the model's forward uses)")
    if "past_key_values" in model_kwargs:
        raise NotImplementedError("generate() starts from an empty cache; continuing from past_key_values is not "
                                  "supported (pass the whole prompt)")
    unknown = [k for k in model_kwargs if k not in MODEL_INPUTS and k not in ("input_ids", "inputs_embeds")]
    if unknown:
        raise ValueError(f"The following `model_kwargs` are not used by the model: {unknown} (note: typos in the "
                         f"generate arguments will also show up in this list). {type(model).__name__}.generate "
                         f"accepts generation settings (GenerationConfig attributes) and the model inputs "
                         f"{sorted(MODEL_INPUTS + ('inputs_embeds',))}")
    if model_kwargs.get("encoder_hidden_states") is not None and not getattr(model.config, "add_cross_attention", False):
        raise ValueError("encoder_hidden_states were given, but the model has no cross-attention layers; build it "
                         "with config.add_cross_attention=True (and is_decoder=True)")


def _prompt(model, inputs: Optional[Tensor], model_kwargs: dict, bos: Optional[int]) -> tuple[Tensor, Optional[Tensor]]:
    """-> (input_ids (B, T), inputs_embeds (B, P, C) or None). Without either, one BOS token per row."""
    ids = model_kwargs.pop("input_ids", None)
    if inputs is not None and ids is not None:
        raise ValueError("pass the prompt once: as the first argument or as input_ids=, not both")
    ids = inputs if inputs is not None else ids
    if ids is not None and (not torch.is_tensor(ids) or ids.dim() != 2 or ids.is_floating_point()):
        raise ValueError(f"input_ids must be an integer tensor of shape (batch, tokens); got "
                         f"{tuple(ids.shape) if torch.is_tensor(ids) else type(ids).__name__}")
    embeds = model_kwargs.pop("inputs_embeds", None)
    if embeds is not None:
        if ids is not None and ids.shape != embeds.shape[:2]:
            raise ValueError(f"input_ids {tuple(ids.shape)} and inputs_embeds {tuple(embeds.shape)} must cover the "
                             "same (batch, tokens): the embeddings feed the first step, the ids are the prompt")
        if embeds.dim() != 3:
            raise ValueError(f"inputs_embeds must be (batch, tokens, hidden); got shape {tuple(embeds.shape)}")
        if not model.config.is_decoder:
            raise ValueError("an inputs_embeds prompt needs the key/value cache, which only decoders keep; build "
                             "the model with config.is_decoder=True")
        if ids is None:  # the output holds only the new tokens, as in transformers
            ids = torch.ones((embeds.shape[0], 0), dtype=torch.long, device=embeds.device)
        return ids, embeds
    if ids is None:
        if bos is None:
            raise ValueError("no prompt was given and there is no bos_token_id to start from; pass input_ids")
        batch = next((v.shape[0] for v in model_kwargs.values() if torch.is_tensor(v)), 1)
        return torch.full((batch, 1), bos, dtype=torch.long, device=model.device), None
    return ids, None


def _special_tokens(config: GenerationConfig, device, mask_given: bool) -> tuple[Optional[Tensor], Optional[Tensor]]:
    """-> (eos ids (E,) or None, pad id () or None); pad defaults to the first EOS id."""
    eos = config.eos_token_id
    eos = torch.tensor(eos if isinstance(eos, (list, tuple)) else [eos], device=device) if eos is not None else None
    if eos is not None and (eos.is_floating_point() or eos.dim() != 1 or eos.numel() == 0):
        raise ValueError(f"eos_token_id must be an int or a list of ints, got {config.eos_token_id!r}")
    pad = torch.tensor(config.pad_token_id, device=device) if config.pad_token_id is not None else None
    if pad is None and eos is not None:
        if not mask_given:
            logger.warning("The attention mask and the pad token id were not set; pass attention_mask for reliable "
                           "results with padded prompts")
        pad = eos[0]
        logger.warning("Setting `pad_token_id` to `eos_token_id`:%d for open-end generation.", int(pad))
    return eos, pad


def _attention_mask(ids: Tensor, embeds: Optional[Tensor], eos, pad) -> Tensor:
    """1 for every prompt token, except pad ids when pad is in the prompt and differs from every EOS id."""
    if embeds is not None and ids.shape[1] == 0:
        return torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
    ones = torch.ones_like(ids, dtype=torch.long)
    if pad is None or not bool((ids == pad).any()) or (eos is not None and bool((eos == pad).any())):
        return ones
    return ids.ne(pad).long()


def _lengths(config: GenerationConfig, kwargs: dict, prompt_len: int, embeds_len: Optional[int],
             max_positions: Optional[int]) -> None:
    """Settle config.max_length / min_length as absolute lengths of input_ids (embeddings not counted)."""
    default_max = kwargs.get("max_length") is None
    if config.max_new_tokens is not None:
        if not default_max:
            logger.warning("Both max_new_tokens (=%d) and max_length (=%d) are set; max_new_tokens takes precedence",
                           config.max_new_tokens, config.max_length)
        config.max_length = config.max_new_tokens + prompt_len
    elif embeds_len is not None:
        config.max_length -= embeds_len  # max_length counts the prompt embeddings
    elif default_max and config.max_length == DEFAULTS["max_length"]:
        config.max_length += prompt_len  # the default: 20 new tokens
        if max_positions is not None:
            config.max_length = min(config.max_length, max_positions)
    if config.min_new_tokens is not None:
        config.min_length = config.min_new_tokens + prompt_len
    elif embeds_len is not None:
        config.min_length = max(config.min_length - embeds_len, 0)
    if default_max and config.max_new_tokens is None and config.max_length == DEFAULTS["max_length"]:
        warnings.warn("Using the default max_length (=20) to control the generation length; set max_new_tokens "
                      "instead.", UserWarning, stacklevel=4)
    if prompt_len >= config.max_length:
        raise ValueError(f"Input length of input_ids is {prompt_len}, but `max_length` is set to {config.max_length}. "
                         "This can lead to unexpected behavior. You should consider increasing `max_length` or, "
                         "better yet, setting `max_new_tokens`.")
    if config.min_length is not None and config.min_length > config.max_length:
        warnings.warn(f"min_length ({config.min_length}) is larger than max_length ({config.max_length}): generation "
                      "stops at max_length", UserWarning, stacklevel=4)


@torch.no_grad()
def generate(model, inputs: Optional[Tensor] = None, generation_config: Optional[GenerationConfig] = None,
             logits_processor: Optional[Sequence[Callable]] = None,
             stopping_criteria: Optional[Sequence[Callable]] = None, use_model_defaults: Optional[bool] = None,
             generator: Optional[torch.Generator] = None, **kwargs):
    """See GenerationMixin.generate (roberta.modeling.generation)."""
    for name in _UNSUPPORTED_ARGUMENTS:
        if kwargs.pop(name, None) is not None:
            raise NotImplementedError(f"generate({name}=...) is not supported by roberta's generate()")
    assistant_model = kwargs.pop("assistant_model", None)
    user_kwargs = dict(kwargs)
    config, model_kwargs = resolve_config(model, generation_config, use_model_defaults, kwargs)
    _check_supported(config, model_kwargs, model)
    input_ids, embeds = _prompt(model, inputs, model_kwargs, config.bos_token_id)
    device = input_ids.device
    mask = model_kwargs.get("attention_mask")
    eos, pad = _special_tokens(config, device, mask is not None)
    if input_ids.shape[1] and pad is not None and input_ids.shape[0] > 1 and bool((input_ids[:, -1] == pad).any()):
        logger.warning("A decoder-only architecture is being used, but right-padding was detected! For correct "
                       "generation results, please set `padding_side='left'` when initializing the tokenizer.")
    if mask is None:
        mask = _attention_mask(input_ids, embeds, eos, pad)
    elif mask.dim() != 2:
        raise ValueError("`attention_mask` passed to `generate` must be 2D (batch, tokens).")

    state = dict(model_kwargs, attention_mask=mask.to(device), inputs_embeds=embeds, logits_to_keep=1,
                 use_cache=True if embeds is not None else config.use_cache,
                 roberta_positions=bool(config.roberta_positions))
    input_ids, state = expand(input_ids, state, max(config.num_beams, config.num_return_sequences))
    embeds_only = embeds is not None and input_ids.shape[1] == 0
    _lengths(config, user_kwargs, input_ids.shape[1], embeds.shape[1] if embeds_only else None,
             getattr(model.config, "max_position_embeddings", None))
    processors = build_processors(config, input_ids.shape[1], eos, logits_processor)
    criteria = build_criteria(config, getattr(model.config, "max_position_embeddings", None), eos, stopping_criteria)
    assisted = assistant_model is not None or config.prompt_lookup_num_tokens is not None
    if config.num_beams > 1:
        if assisted:
            logger.warning("assisted generation (assistant_model / prompt_lookup_num_tokens) works with greedy search "
                           "and sampling only; beam search ignores it")
        result = beam_search(model, input_ids, state, processors, criteria, config, pad, eos, generator)
    elif assisted:
        check_assisted(config, input_ids, state)
        source = candidate_source(model, config, state, processors, eos, pad, assistant_model, generator)
        result = assisted_search(model, input_ids, state, processors, criteria, config, source, generator)
    else:
        result = sample_or_greedy(model, input_ids, state, processors, criteria, config, pad, generator)
    if getattr(result, "past_key_values", None) is not None:  # the finished cache, in the legacy layout
        result.past_key_values = result.past_key_values.to_legacy_cache()
    return result
