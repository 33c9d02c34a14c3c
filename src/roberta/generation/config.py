"""GenerationConfig: the settings of one `generate()` call, saved as generation_config.json.

Same attribute names, defaults and JSON form as transformers' GenerationConfig (4.57), so files load both ways:
the file holds only the values that differ from `GenerationConfig()`. Unknown keys are kept and written back
(transformers ignores them; `roberta_positions` is one of ours, see `generate`). A model's default config is
made from its model config (`from_model_config`: bos/eos/pad ids and any legacy generation keys there).
"""
from __future__ import annotations

import copy
import json
import logging
import os
from typing import Any, Optional

from roberta._io import atomic_write_text, make_save_directory

logger = logging.getLogger(__name__)

GENERATION_CONFIG_NAME = "generation_config.json"

# transformers 4.57's attributes and defaults. Most only need to round-trip; `generate` rejects the non-default
# ones it does not implement (see UNSUPPORTED) instead of silently ignoring them.
DEFAULTS: dict[str, Any] = {
    # length
    "max_length": 20, "max_new_tokens": None, "min_length": 0, "min_new_tokens": None, "early_stopping": False,
    "max_time": None, "stop_strings": None,
    # strategy
    "do_sample": False, "num_beams": 1,
    # cache
    "use_cache": True, "cache_implementation": None, "cache_config": None, "return_legacy_cache": None,
    "prefill_chunk_size": None,
    # logits manipulation
    "temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None, "typical_p": 1.0, "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0, "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "length_penalty": 1.0,
    "no_repeat_ngram_size": 0, "bad_words_ids": None, "renormalize_logits": False, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "remove_invalid_values": False, "exponential_decay_length_penalty": None,
    "suppress_tokens": None, "begin_suppress_tokens": None, "sequence_bias": None, "token_healing": False,
    "guidance_scale": None, "watermarking_config": None,
    # outputs
    "num_return_sequences": 1, "output_attentions": False, "output_hidden_states": False, "output_scores": False,
    "output_logits": None, "return_dict_in_generate": False,
    # special tokens
    "pad_token_id": None, "bos_token_id": None, "eos_token_id": None,
    "encoder_no_repeat_ngram_size": 0, "decoder_start_token_id": None,
    # assisted generation, performance, deprecated strategies (round-trip only)
    "is_assistant": False, "num_assistant_tokens": 20, "num_assistant_tokens_schedule": "constant",
    "assistant_confidence_threshold": 0.4, "prompt_lookup_num_tokens": None, "max_matching_ngram_size": None,
    "assistant_early_exit": None, "assistant_lookbehind": 10, "target_lookbehind": 10, "compile_config": None,
    "disable_compile": False, "low_memory": None, "penalty_alpha": None, "dola_layers": None,
    "diversity_penalty": 0.0, "num_beam_groups": 1, "constraints": None, "force_words_ids": None,
    # ours (transformers keeps it as an unknown key and ignores it): feed the positions the model's forward
    # uses (padding_idx + 1 + i) instead of transformers' 0-based generate positions; see generate()
    "roberta_positions": False,
}

# Settings whose non-default values `generate` does not implement: it raises rather than ignore them.
UNSUPPORTED = (
    "max_time", "stop_strings", "cache_implementation", "prefill_chunk_size", "min_p", "typical_p", "epsilon_cutoff",
    "eta_cutoff", "encoder_repetition_penalty", "renormalize_logits", "forced_bos_token_id", "forced_eos_token_id",
    "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens",
    "sequence_bias", "token_healing", "guidance_scale", "watermarking_config", "encoder_no_repeat_ngram_size",
    "assistant_early_exit", "low_memory", "penalty_alpha", "dola_layers",
    "num_beam_groups", "constraints", "force_words_ids",
)

# Arguments of generate() itself; a config holding one of them is a mistake (transformers raises too).
_GENERATE_ARGUMENTS = ("logits_processor", "stopping_criteria", "prefix_allowed_tokens_fn", "synced_gpus",
                       "assistant_model", "streamer", "negative_prompt_ids", "negative_prompt_attention_mask",
                       "use_model_defaults")
_METADATA = ("_from_model_config", "_commit_hash", "_original_object_hash", "transformers_version")
_EXTRA_OUTPUTS = ("output_attentions", "output_hidden_states", "output_scores", "output_logits")


class GenerationConfig:
    """Attributes as in transformers (see DEFAULTS); keyword arguments override them, unknown ones are kept."""

    def __init__(self, **kwargs):
        from_model_config = kwargs.pop("_from_model_config", False)
        kwargs.pop("_commit_hash", None)
        kwargs.pop("transformers_version", None)  # we do not claim a transformers version when writing
        for name, default in DEFAULTS.items():
            setattr(self, name, copy.deepcopy(kwargs.pop(name, default)))
        self._from_model_config = from_model_config
        if not from_model_config:  # a model config's other keys are not generation settings
            for name, value in kwargs.items():
                setattr(self, name, value)
        self.validate()

    # ---- validation -------------------------------------------------------------------------------------
    def validate(self, strict: bool = False) -> None:
        """Raise ValueError on settings no generation can run with; log (or with strict=True raise on) settings
        that will be ignored, like sampling knobs without do_sample."""
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        if self.max_new_tokens is not None and (not isinstance(self.max_new_tokens, int) or self.max_new_tokens <= 0):
            raise ValueError(f"max_new_tokens must be a positive int, got {self.max_new_tokens!r}")
        if not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise ValueError(f"num_beams must be an int >= 1, got {self.num_beams!r}")
        if not isinstance(self.num_return_sequences, int) or self.num_return_sequences < 1:
            raise ValueError(f"num_return_sequences must be an int >= 1, got {self.num_return_sequences!r}")
        if self.num_return_sequences != 1:
            if self.num_beams == 1 and not self.do_sample:
                raise ValueError(f"num_return_sequences={self.num_return_sequences} needs beam search (num_beams >= "
                                 "num_return_sequences) or sampling (do_sample=True); greedy search returns one "
                                 "sequence per prompt")
            if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
                raise ValueError(f"num_return_sequences ({self.num_return_sequences}) must be <= num_beams "
                                 f"({self.num_beams}): beam search returns its best num_beams hypotheses at most")
        for arg in _GENERATE_ARGUMENTS:
            if arg in self.__dict__:
                raise ValueError(f"{arg!r} is an argument of generate(), not a GenerationConfig setting; pass it "
                                 "to generate() directly")
        ignored = []
        if not self.do_sample:
            ignored += [k for k in ("temperature", "top_p", "top_k") if getattr(self, k) not in (None, DEFAULTS[k])]
        if self.num_beams == 1:
            ignored += [k for k in ("early_stopping", "length_penalty") if getattr(self, k) not in (None, DEFAULTS[k])]
        if self.return_dict_in_generate is not True:
            ignored += [k for k in _EXTRA_OUTPUTS if getattr(self, k) is True]
        if ignored:
            message = (f"generation settings {ignored} have no effect here: sampling knobs need do_sample=True, "
                       "beam knobs num_beams > 1, output_* flags return_dict_in_generate=True")
            if strict:
                raise ValueError(message)
            logger.warning(message)

    # ---- serialization ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in _METADATA or k == "_from_model_config"})

    def to_diff_dict(self) -> dict[str, Any]:
        """Only the values that differ from GenerationConfig() (the form generation_config.json holds)."""
        return {k: v for k, v in self.to_dict().items() if k not in DEFAULTS or v != DEFAULTS[k]
                if not (k == "_from_model_config" and v is False)}

    def to_json_string(self, use_diff: bool = True) -> str:
        data = self.to_diff_dict() if use_diff else self.to_dict()
        if isinstance(data.get("sequence_bias"), dict):  # tuple keys are not JSON
            data["sequence_bias"] = [[list(k), v] for k, v in data["sequence_bias"].items()]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike, use_diff: bool = True) -> None:
        atomic_write_text(json_file_path, self.to_json_string(use_diff=use_diff))

    def save_pretrained(self, save_directory: str | os.PathLike, config_file_name: Optional[str] = None,
                        **kwargs) -> None:
        """Write generation_config.json into `save_directory` (created if needed). Like transformers, a config
        whose settings would be ignored (e.g. temperature without do_sample) is refused."""
        if kwargs.pop("push_to_hub", False):
            raise NotImplementedError("push_to_hub is not supported; upload the saved folder with huggingface_hub")
        try:
            self.validate(strict=True)
        except ValueError as exc:
            raise ValueError(f"{exc}. Fix these settings to save the generation config.") from None
        save_directory = make_save_directory(save_directory)
        self.to_json_file(os.path.join(save_directory, config_file_name or GENERATION_CONFIG_NAME))

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs) -> "GenerationConfig":
        return_unused = kwargs.pop("return_unused_kwargs", False)
        config = cls(**{**config_dict, **kwargs})
        unused = config.update(**kwargs)
        return (config, unused) if return_unused else config

    @classmethod
    def from_pretrained(cls, pretrained_model_name, config_file_name: Optional[str] = None, *, cache_dir=None,
                        revision=None, local_files_only=False, token=None, subfolder: str = "", **kwargs):
        """Read generation_config.json from a folder, a hub id or a .json path. Raises OSError when absent."""
        from roberta.config import read_json_file
        from roberta.hub import resolve_file

        for ignored in ("force_download", "resume_download", "proxies", "_from_auto", "_from_pipeline",
                        "trust_remote_code"):
            kwargs.pop(ignored, None)
        path = os.fspath(pretrained_model_name)
        if os.path.isfile(path):
            file = path
        else:
            name = config_file_name or GENERATION_CONFIG_NAME
            file = resolve_file(path, f"{subfolder}/{name}" if subfolder else name, cache_dir=cache_dir,
                                revision=revision, local_files_only=local_files_only, token=token)
        data = read_json_file(file)
        if isinstance(data.get("sequence_bias"), list):
            data["sequence_bias"] = {tuple(k): v for k, v in data["sequence_bias"]}
        return cls.from_dict(data, **kwargs)

    @classmethod
    def from_model_config(cls, model_config) -> "GenerationConfig":
        """The default of a model: its config's special token ids and generation keys (None values skipped)."""
        values = {k: v for k, v in model_config.to_dict().items() if v is not None and k != "_from_model_config"}
        config = cls(**values, _from_model_config=True)
        if not config.return_dict_in_generate and any(getattr(config, k, False) for k in _EXTRA_OUTPUTS):
            config.return_dict_in_generate = True
        return config

    def update(self, **kwargs) -> dict[str, Any]:
        """Set the attributes that exist; return the other keyword arguments (model inputs, for generate)."""
        used = {k: v for k, v in kwargs.items() if hasattr(self, k)}
        for key, value in used.items():
            setattr(self, key, value)
        self.validate()
        return {k: v for k, v in kwargs.items() if k not in used}

    # ---- python protocol --------------------------------------------------------------------------------
    def __eq__(self, other) -> bool:
        if not isinstance(other, GenerationConfig):
            return False
        strip = lambda c: {k: v for k, v in c.to_dict().items() if k not in _METADATA}  # noqa: E731
        return strip(self) == strip(other)

    def __hash__(self) -> int:
        return hash(self.to_json_string())

    def __repr__(self) -> str:
        return f"GenerationConfig {self.to_json_string()}"
