"""Auto classes: pick the RoBERTa class from a checkpoint's `model_type` (or `architectures`).

`AutoModelForMaskedLM.from_pretrained("FacebookAI/roberta-base")` reads config.json, checks it describes a
RoBERTa model and delegates to `RobertaForMaskedLM.from_pretrained`. This package implements one model
type, so a checkpoint of another (bert, xlm-roberta, ...) is refused with a clear error instead of being
loaded into the wrong architecture.
"""
from __future__ import annotations

import os
from importlib import import_module

from roberta.config import PretrainedConfig, RobertaConfig, read_json_file
from roberta.hub import resolve_file

CONFIG_CLASSES = {"roberta": RobertaConfig}
_HUB_KWARGS = ("cache_dir", "revision", "local_files_only", "token")


def _unsupported(model_type) -> ValueError:
    return ValueError(f"model_type {model_type!r} is not supported by roberta; supported: {', '.join(CONFIG_CLASSES)}")


def model_type_of(config_dict: dict, source="") -> str:
    """model_type of a parsed config.json; old configs without it are recognised by their architectures."""
    model_type = config_dict.get("model_type")
    if model_type is None:
        archs = config_dict.get("architectures") or []
        if archs and all(a.startswith("Roberta") for a in archs):
            return "roberta"
        raise ValueError(f"config.json of {source!r} has no model_type (and no Roberta* architectures); "
                         f"cannot tell which model it describes")
    if model_type not in CONFIG_CLASSES:
        raise _unsupported(model_type)
    return model_type


def _hub_kwargs(kwargs: dict) -> dict:
    return {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}


class AutoConfig:
    """`AutoConfig.from_pretrained(path_or_id, **overrides)` -> RobertaConfig (after checking model_type)."""

    def __init__(self):
        raise OSError("AutoConfig is not instantiated; use AutoConfig.from_pretrained(...) or AutoConfig.for_model(...)")

    @classmethod
    def for_model(cls, model_type: str, *args, **kwargs) -> PretrainedConfig:
        if model_type not in CONFIG_CLASSES:
            raise _unsupported(model_type)
        return CONFIG_CLASSES[model_type](*args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> PretrainedConfig:
        kwargs.pop("trust_remote_code", None)
        config_dict, _ = PretrainedConfig.get_config_dict(pretrained_model_name_or_path, **_hub_kwargs(kwargs))
        config_class = CONFIG_CLASSES[model_type_of(config_dict, pretrained_model_name_or_path)]
        kwargs.setdefault("name_or_path", os.fspath(pretrained_model_name_or_path))  # as transformers' AutoConfig
        return config_class.from_pretrained(pretrained_model_name_or_path, **kwargs)


class _AutoModelBase:
    """Shared from_pretrained / from_config of the AutoModel* classes; `_target` names the RoBERTa class."""

    _target: str = ""

    def __init__(self):
        raise OSError(f"{type(self).__name__} is not instantiated; use {type(self).__name__}.from_pretrained(...) "
                      f"or .from_config(config)")

    @classmethod
    def model_class(cls, model_type: str = "roberta"):
        if model_type not in CONFIG_CLASSES:
            raise _unsupported(model_type)
        return getattr(import_module("roberta.modeling"), cls._target)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Load the checkpoint into the class this Auto class maps to; keywords as RobertaModel.from_pretrained."""
        kwargs.pop("trust_remote_code", None)
        config = kwargs.get("config")
        if isinstance(config, PretrainedConfig):
            model_type = config.model_type
        else:
            source = pretrained_model_name_or_path if config is None else config
            config_dict, _ = PretrainedConfig.get_config_dict(source, **_hub_kwargs(kwargs))
            model_type = model_type_of(config_dict, source)
        return cls.model_class(model_type).from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    @classmethod
    def from_config(cls, config: PretrainedConfig, attn_implementation=None, dtype=None, torch_dtype=None):
        """A randomly initialised model for `config` (no weights are read)."""
        if not isinstance(config, PretrainedConfig):
            raise TypeError(f"from_config needs a config object, got {type(config).__name__}; "
                            f"use from_pretrained for a path or hub id")
        if attn_implementation is not None:
            config._attn_implementation = attn_implementation
        import torch

        model = cls.model_class(config.model_type)(config)
        dtype = dtype if dtype is not None else torch_dtype
        if dtype is not None and dtype != "auto":
            model = model.to(dtype=getattr(torch, dtype) if isinstance(dtype, str) else dtype)
        return model


class AutoModel(_AutoModelBase):
    _target = "RobertaModel"


class AutoModelForTextEncoding(_AutoModelBase):
    _target = "RobertaModel"


class AutoModelForMaskedLM(_AutoModelBase):
    _target = "RobertaForMaskedLM"


class AutoModelForPreTraining(_AutoModelBase):
    _target = "RobertaForMaskedLM"


class AutoModelWithLMHead(_AutoModelBase):  # legacy transformers name
    _target = "RobertaForMaskedLM"


class AutoModelForCausalLM(_AutoModelBase):
    _target = "RobertaForCausalLM"


class AutoModelForSequenceClassification(_AutoModelBase):
    _target = "RobertaForSequenceClassification"


class AutoModelForTokenClassification(_AutoModelBase):
    _target = "RobertaForTokenClassification"


class AutoModelForQuestionAnswering(_AutoModelBase):
    _target = "RobertaForQuestionAnswering"


class AutoModelForMultipleChoice(_AutoModelBase):
    _target = "RobertaForMultipleChoice"


# tokenizer_class names found in tokenizer_config.json that mean "a RoBERTa BPE tokenizer"
_TOKENIZER_CLASSES = {"RobertaTokenizer": "roberta", "RobertaTokenizerFast": "roberta"}


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(path_or_id, use_fast=True)` -> RobertaTokenizerFast (RobertaTokenizer if
    use_fast=False). The kind is read from tokenizer_config.json's tokenizer_class, else config.json's model_type."""

    def __init__(self):
        raise OSError("AutoTokenizer is not instantiated; use AutoTokenizer.from_pretrained(...)")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *inputs, use_fast: bool = True, **kwargs):
        kwargs.pop("trust_remote_code", None)
        hub = _hub_kwargs(kwargs)
        source = os.fspath(pretrained_model_name_or_path)
        tokenizer_config = resolve_file(source, "tokenizer_config.json", required=False, **hub)
        declared = read_json_file(tokenizer_config).get("tokenizer_class") if tokenizer_config else None
        if declared is not None:
            if declared not in _TOKENIZER_CLASSES:
                raise ValueError(f"tokenizer_class {declared!r} in {tokenizer_config} is not supported by roberta; "
                                 f"supported: RobertaTokenizer, RobertaTokenizerFast")
        else:
            config_file = resolve_file(source, "config.json", required=False, **hub)
            if config_file is not None:
                model_type_of(read_json_file(config_file), source)
        if use_fast:
            from roberta.tokenization.fast import RobertaTokenizerFast as tokenizer_class
        else:
            from roberta.tokenization.slow import RobertaTokenizer as tokenizer_class
        return tokenizer_class.from_pretrained(pretrained_model_name_or_path, *inputs, **kwargs)
