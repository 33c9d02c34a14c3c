"""Model configuration: `PretrainedConfig` (the generic part) and `RobertaConfig`.

A config is a bag of typed attributes that round-trips through `config.json` with the same keys and the
same defaults as transformers v4.57, so a folder saved by either library loads in the other. Keys we do not
know are kept as attributes and written back, so nothing a user put in config.json is lost.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from roberta._io import atomic_write_text, make_save_directory

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"

# Activation names the model understands (agent MODEL maps each to a function). Kept here so a bad name is
# rejected when the config is made, not deep inside the first forward pass. "gelu" is the exact erf GELU.
ACTIVATIONS = (
    "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_python", "gelu_accurate", "quick_gelu",
    "relu", "relu6", "silu", "swish", "tanh", "sigmoid", "mish", "linear",
)

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
POSITION_EMBEDDING_TYPES = ("absolute", "relative_key", "relative_key_query")
# Sizes no RoBERTa comes near (the deepest is ~48 layers, the longest ~32k positions): a config beyond them
# is corrupt, and building it would hang (a million layers) or allocate gigabytes (a billion positions).
SIZE_LIMITS = {"num_hidden_layers": 1_000, "max_position_embeddings": 1 << 20}

# Legacy generation settings transformers v4 still keeps on every config (and in to_dict). We keep them so
# to_dict matches and configs with them round-trip; they belong in a GenerationConfig nowadays.
_GENERATION_DEFAULTS = {
    "max_length": 20, "min_length": 0, "do_sample": False, "early_stopping": False, "num_beams": 1,
    "temperature": 1.0, "top_k": 50, "top_p": 1.0, "typical_p": 1.0, "repetition_penalty": 1.0,
    "length_penalty": 1.0, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None,
    "num_return_sequences": 1, "output_scores": False, "return_dict_in_generate": False,
    "forced_bos_token_id": None, "forced_eos_token_id": None, "remove_invalid_values": False,
    "exponential_decay_length_penalty": None, "suppress_tokens": None, "begin_suppress_tokens": None,
    "num_beam_groups": 1, "diversity_penalty": 0.0,
}

# Attributes held in __dict__ that are runtime state, never written to config.json.
_NOT_SERIALIZED = ("_attn_implementation", "_commit_hash", "transformers_version")


# torch's dtype names (torch 2.13), so a config can check and store `dtype` without importing torch: a Flax or
# TF user who loads a config.json with "dtype": "float32" must not pay for (or need) torch. Aliases map to the
# name torch prints (torch.float is torch.float32), which is what transformers' to_dict writes.
_TORCH_DTYPE_NAMES = frozenset((
    "bool bfloat16 float16 float32 float64 float8_e4m3fn float8_e4m3fnuz float8_e5m2 float8_e5m2fnuz "
    "float8_e8m0fnu float4_e2m1fn_x2 complex32 complex64 complex128 int1 int2 int3 int4 int5 int6 int7 int8 "
    "int16 int32 int64 uint1 uint2 uint3 uint4 uint5 uint6 uint7 uint8 uint16 uint32 uint64 qint8 qint32 "
    "quint8 quint4x2 quint2x4 bits1x8 bits2x4 bits4x2 bits8 bits16"
).split())
_TORCH_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "int": "int32", "long": "int64",
                        "short": "int16", "cfloat": "complex64", "cdouble": "complex128", "chalf": "complex32",
                        "bit": "uint1"}


def dtype_name(value) -> str | None:
    """'float16' / 'torch.float16' / torch.float16 / 'half' -> 'float16' (None stays None), without importing
    torch; anything else raises ValueError."""
    if value is None:
        return None
    if type(value).__module__ == "torch" and type(value).__name__ == "dtype":
        value = str(value)  # "torch.float16"
    if not isinstance(value, str):
        raise ValueError(f"dtype must be a torch dtype or its name (e.g. 'float32', 'bfloat16'), got {value!r}")
    name = value.removeprefix("torch.")
    name = _TORCH_DTYPE_ALIASES.get(name, name)
    if name not in _TORCH_DTYPE_NAMES:
        raise ValueError(f"dtype {value!r} is not a torch dtype name (use e.g. 'float32', 'float16', 'bfloat16')")
    return name


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_json_file(path: str | os.PathLike) -> dict:
    """Parse a JSON object from `path`; a file that is not JSON raises ValueError naming file and error."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{os.fspath(path)} is not a valid JSON file: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{os.fspath(path)} must hold a JSON object, got {type(data).__name__}")
    return data


def lookup_activation(table: dict, name):
    """`config.hidden_act` -> a function from one framework's `table`; a callable is used as is."""
    if callable(name):
        return name
    if name not in table:
        raise ValueError(f"Unknown hidden_act {name!r}; supported: {', '.join(sorted(table))}")
    return table[name]


def _layer_index(key):
    """A pruned_heads key from JSON ("0", "-1") as the int it was; other keys as given."""
    try:
        return int(key) if isinstance(key, str) else key
    except ValueError:
        return key


class PretrainedConfig:
    """Settings shared by every model: output switches, labels, special token ids, dtype, attention backend.

    `num_labels` is derived from `id2label` (setting it rebuilds `id2label`/`label2id` as LABEL_i).
    `use_return_dict` is `return_dict and not torchscript`. `_attn_implementation` is None (the model
    then uses "sdpa"), "sdpa" or "eager"; pass it as the `attn_implementation` keyword.
    """

    model_type: str = ""
    _commit_hash = None  # the hub revision a config came from; transformers.pipeline reads it from any config
    attribute_map: dict[str, str] = {}
    sub_configs: dict[str, type] = {}  # nested configs of composite models (e.g. a vision tower); none here
    has_no_defaults_at_init: bool = False  # every setting has a default (composite configs of other models do not)

    def __init__(
        self,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        return_dict: bool = True,
        torchscript: bool = False,
        dtype=None,
        pruned_heads: dict | None = None,
        tie_word_embeddings: bool = True,
        chunk_size_feed_forward: int = 0,
        is_encoder_decoder: bool = False,
        is_decoder: bool = False,
        cross_attention_hidden_size: int | None = None,
        add_cross_attention: bool = False,
        tie_encoder_decoder: bool = False,
        architectures: list[str] | None = None,
        finetuning_task: str | None = None,
        id2label: dict | None = None,
        label2id: dict | None = None,
        num_labels: int | None = None,
        task_specific_params: dict | None = None,
        problem_type: str | None = None,
        tokenizer_class: str | None = None,
        prefix: str | None = None,
        bos_token_id: int | None = None,
        pad_token_id: int | None = None,
        eos_token_id: int | None = None,
        sep_token_id: int | None = None,
        decoder_start_token_id: int | None = None,
        **kwargs,
    ):
        if id2label is not None and not isinstance(id2label, dict):
            raise ValueError(f"id2label must be a dict like {{0: 'NEG', 1: 'POS'}}, got {type(id2label).__name__}")
        if label2id is not None and not isinstance(label2id, dict):
            raise ValueError(f"label2id must be a dict like {{'NEG': 0, 'POS': 1}}, got {type(label2id).__name__}")
        if num_labels is not None and id2label is not None and len(id2label) != num_labels:
            logger.warning("num_labels=%d does not match the id2label map of length %d; id2label wins", num_labels, len(id2label))
        if problem_type is not None and problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type {problem_type!r} is not one of {PROBLEM_TYPES} (or None)")
        legacy_dtype = kwargs.pop("torch_dtype", None)  # configs written before transformers 4.56 use torch_dtype
        if dtype is None:
            dtype = legacy_dtype

        self.return_dict = return_dict
        self.output_hidden_states = output_hidden_states
        self.torchscript = torchscript
        self.dtype = dtype  # stored as its name; see the dtype property
        self._output_attentions = output_attentions
        # {layer: [head, ...]}: JSON object keys are strings, and a set would not serialize.
        # JSON turns layer indices into strings; like transformers, anything else is kept as given (the model
        # raises when it applies the pruning)
        self.pruned_heads = {_layer_index(k): sorted(v) if isinstance(v, (list, tuple, set)) else v
                             for k, v in (pruned_heads or {}).items()}
        self.tie_word_embeddings = tie_word_embeddings
        self.chunk_size_feed_forward = chunk_size_feed_forward
        self.is_encoder_decoder = is_encoder_decoder
        self.is_decoder = is_decoder
        self.cross_attention_hidden_size = cross_attention_hidden_size
        self.add_cross_attention = add_cross_attention
        self.tie_encoder_decoder = tie_encoder_decoder
        self.architectures = architectures
        self.finetuning_task = finetuning_task
        self.task_specific_params = task_specific_params
        self.problem_type = problem_type
        if id2label is None:
            self._create_id_label_maps(num_labels if num_labels is not None else 2)
        else:
            # JSON object keys are strings; ids are ints.
            try:
                self.id2label = {int(k): v for k, v in id2label.items()}
            except (TypeError, ValueError):
                bad = next(k for k in id2label if not str(k).strip().lstrip("+-").isdigit())
                raise ValueError(f"id2label keys must be class ids (0, 1, ...), got {bad!r}") from None
            # transformers leaves label2id None here; deriving it is what every caller wants.
            self.label2id = dict(label2id) if label2id is not None else {v: k for k, v in self.id2label.items()}
        self.tokenizer_class = tokenizer_class
        self.prefix = prefix
        self.bos_token_id = bos_token_id
        self.pad_token_id = pad_token_id
        self.eos_token_id = eos_token_id
        self.sep_token_id = sep_token_id
        self.decoder_start_token_id = decoder_start_token_id
        for name, default in _GENERATION_DEFAULTS.items():
            setattr(self, name, kwargs.pop(name, default))
        self._name_or_path = str(kwargs.pop("name_or_path", kwargs.pop("_name_or_path", "")))
        self._attn_implementation = kwargs.pop("attn_implementation", None)
        kwargs.pop("_attn_implementation", None)  # never serialized; tolerate it in hand-made dicts
        kwargs.pop("transformers_version", None)
        kwargs.pop("_commit_hash", None)
        if kwargs.get("gradient_checkpointing"):  # legacy key: kept (and saved) so older configs round-trip
            logger.warning("gradient_checkpointing in a config is deprecated; call model.gradient_checkpointing_enable()")
        self.tf_legacy_loss = kwargs.pop("tf_legacy_loss", False)
        self.use_bfloat16 = kwargs.pop("use_bfloat16", False)
        if "model_type" in kwargs and kwargs["model_type"] == self.model_type:
            kwargs.pop("model_type")
        for key, value in kwargs.items():  # unknown keys are kept and written back
            setattr(self, key, value)

    # ---- derived / guarded attributes -------------------------------------------------------------------
    def _create_id_label_maps(self, num_labels: int) -> None:
        self.id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
        self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, value: int) -> None:
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"num_labels must be a non-negative int, got {value!r}")
        if self.id2label is None or len(self.id2label) != value:
            self._create_id_label_maps(value)

    @property
    def output_attentions(self) -> bool:
        return self._output_attentions

    @output_attentions.setter
    def output_attentions(self, value: bool) -> None:
        # Attention weights only exist on the eager path; pick it if no backend was chosen yet.
        if value and self._attn_implementation is None:
            self._attn_implementation = "eager"
        if value and self._attn_implementation != "eager":
            raise ValueError(
                f"output_attentions=True needs attn_implementation='eager', but it is {self._attn_implementation!r}; "
                "set config._attn_implementation = 'eager' (or load with attn_implementation='eager')"
            )
        self._output_attentions = value

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict and not self.torchscript

    @property
    def name_or_path(self) -> str:
        return self._name_or_path

    @name_or_path.setter
    def name_or_path(self, value) -> None:
        self._name_or_path = str(value)

    @property
    def dtype(self):
        """The dtype the weights were saved in, as a torch.dtype (what transformers 4.57's config gives when torch
        is installed; the name, e.g. "bfloat16", when it is not). The config holds only the name, in
        `__dict__["dtype"]` (the form config.json and to_dict have), and imports torch when this is read: so
        loading a config, and the Flax and TF classes, which never read it, do not import torch."""
        name = self.__dict__["dtype"]
        if name is None:
            return None
        try:
            import torch
        except ImportError:
            return name
        value = getattr(torch, name, None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"dtype {name!r} is not a dtype of the installed torch {torch.__version__}")
        return value

    @dtype.setter
    def dtype(self, value) -> None:
        self.__dict__["dtype"] = dtype_name(value)

    @property
    def torch_dtype(self):
        """Legacy alias of `dtype`."""
        return self.dtype

    @torch_dtype.setter
    def torch_dtype(self, value) -> None:
        self.dtype = value

    def validate(self) -> None:
        """Hook for subclasses; raises ValueError on settings the model cannot be built with."""

    def get_text_config(self, decoder=None, encoder=None) -> "PretrainedConfig":
        """The config of the text model: for a text-only model like RoBERTa, the config itself."""
        return self

    # ---- serialization ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every attribute (the form transformers' to_dict gives, without transformers_version)."""
        out = copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in _NOT_SERIALIZED})
        out["output_attentions"] = out.pop("_output_attentions")
        out["model_type"] = self.model_type
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        """Only the values that differ from a bare PretrainedConfig() or from this class's own defaults."""
        base_defaults = PretrainedConfig().to_dict()
        class_defaults = type(self)().to_dict()
        diff = {}
        for key, value in self.to_dict().items():
            if key not in base_defaults or value != base_defaults[key] or value != class_defaults.get(key, value):
                diff[key] = value
        diff.pop("_name_or_path", None)
        return diff

    def to_json_string(self, use_diff: bool = True) -> str:
        data = self.to_diff_dict() if use_diff else self.to_dict()
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike, use_diff: bool = True) -> None:
        atomic_write_text(json_file_path, self.to_json_string(use_diff=use_diff))

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Write `config.json` (diff form, like transformers) into `save_directory`, creating it if needed."""
        path = os.path.join(make_save_directory(save_directory), CONFIG_NAME)
        self.to_json_file(path)
        logger.info("Configuration saved in %s", path)

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs):
        """Build from a dict (e.g. parsed config.json); keyword arguments that name attributes override it."""
        return_unused_kwargs = kwargs.pop("return_unused_kwargs", False)
        if "torch_dtype" in kwargs:
            kwargs.setdefault("dtype", kwargs.pop("torch_dtype"))
        if "num_labels" in kwargs and "id2label" in kwargs:
            id2label = kwargs["id2label"] or {}
            if len(id2label) != kwargs["num_labels"]:
                raise ValueError(
                    f"num_labels={kwargs['num_labels']} does not match id2label with {len(id2label)} entries "
                    f"({kwargs['id2label']}); pass only one of them"
                )
        if not isinstance(config_dict, Mapping):
            raise ValueError(f"a config must be a JSON object / dict of settings, got {type(config_dict).__name__}: "
                             f"{config_dict!r:.80}")
        config_dict = dict(config_dict)
        config_dict["attn_implementation"] = kwargs.pop("attn_implementation", config_dict.get("attn_implementation"))
        config = cls(**config_dict)
        unused = {}
        for key, value in kwargs.items():
            if hasattr(config, key):
                if key in ("id2label",) and value is not None:
                    value = {int(k): v for k, v in value.items()}
                    config.label2id = {v: k for k, v in value.items()}
                setattr(config, key, value)
            else:
                unused[key] = value
        if config.problem_type is not None and config.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type {config.problem_type!r} is not one of {PROBLEM_TYPES} (or None)")
        return (config, unused) if return_unused_kwargs else config

    @classmethod
    def from_json_file(cls, json_file: str | os.PathLike):
        return cls(**read_json_file(json_file))

    @classmethod
    def get_config_dict(cls, path_or_id, *, cache_dir=None, revision=None, local_files_only=False, token=None,
                        subfolder=""):
        """Resolve and parse config.json of a folder (or its `subfolder`), hub id or direct .json path;
        returns (dict, file path)."""
        if os.path.isfile(os.fspath(path_or_id)):
            path = os.fspath(path_or_id)
        else:
            from roberta.hub import resolve_file

            path = resolve_file(path_or_id, CONFIG_NAME, cache_dir=cache_dir, revision=revision,
                                local_files_only=local_files_only, token=token, subfolder=subfolder or "")
        return read_json_file(path), path

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, cache_dir=None, revision=None,
                        local_files_only=False, token=None, return_unused_kwargs=False, subfolder="", **kwargs):
        """Load config.json from a folder, a hub id (through the huggingface_hub cache) or a .json path.

        Keyword arguments that name config attributes override the file (`num_labels=3`, `is_decoder=True`,
        `attn_implementation="eager"`); others come back when `return_unused_kwargs=True`.
        """
        for ignored in ("force_download", "resume_download", "proxies", "trust_remote_code",
                        "_from_auto", "_from_pipeline"):
            kwargs.pop(ignored, None)
        config_dict, path = cls.get_config_dict(pretrained_model_name_or_path, cache_dir=cache_dir, revision=revision,
                                                local_files_only=local_files_only, token=token, subfolder=subfolder)
        found = config_dict.get("model_type")
        if cls.model_type and found is not None and found != cls.model_type:
            raise ValueError(
                f"{path} is a config for model_type {found!r}, but {cls.__name__} expects {cls.model_type!r}; "
                f"this package only implements RoBERTa"
            )
        config_dict.pop("model_type", None)
        # like transformers, the config alone keeps name_or_path "" (so to_dict() round-trips through a folder);
        # AutoConfig.from_pretrained and the models' from_pretrained record where it came from
        try:
            return cls.from_dict(config_dict, return_unused_kwargs=return_unused_kwargs, **kwargs)
        except ValueError as err:  # a bad value (id2label, problem_type): say which file holds it
            raise ValueError(f"{path}: {err}") from None

    # ---- python protocol --------------------------------------------------------------------------------
    def update(self, config_dict: dict[str, Any]) -> None:
        for key, value in config_dict.items():
            setattr(self, key, value)

    def __eq__(self, other) -> bool:
        return isinstance(other, PretrainedConfig) and self.__dict__ == other.__dict__

    def __iter__(self):
        yield from self.__dict__

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


class RobertaConfig(PretrainedConfig):
    """Configuration of a RoBERTa model. Defaults are transformers' RobertaConfig defaults, i.e. BERT's.

    Beware: the class defaults are NOT roberta-base's values. The roberta-base checkpoint's config.json sets
    `max_position_embeddings=514` (positions start at padding_idx + 1 = 2, so 514 positions mean 512 usable
    tokens including <s> and </s>), `type_vocab_size=1` (RoBERTa has no segment embeddings beyond row 0)
    and `layer_norm_eps=1e-5`. Defaults stay BERT's because `to_diff_dict` compares against them.

    Any values are accepted at construction, as in transformers (only `problem_type` is checked there);
    `validate()` raises a clear ValueError for settings a model cannot be built with, and model loading and
    building call it.
    """

    model_type = "roberta"

    def __init__(
        self,
        vocab_size: int = 50265,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        pad_token_id: int = 1,
        bos_token_id: int = 0,
        eos_token_id: int = 2,
        position_embedding_type: str = "absolute",
        use_cache: bool = True,
        classifier_dropout: float | None = None,
        **kwargs,
    ):
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.hidden_act = hidden_act
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.position_embedding_type = position_embedding_type
        self.use_cache = use_cache
        self.classifier_dropout = classifier_dropout

    def validate(self) -> None:
        """Raise ValueError on settings a model cannot be built with (or would build into NaN, a hang or
        gigabytes of buffers). Called when a model is built or loaded, not when the config is made: like
        transformers, a config holds any values until then (its common tests build e.g. hidden_size=0)."""
        for name in ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not _is_int(self.num_hidden_layers) or self.num_hidden_layers < 0:
            raise ValueError(f"num_hidden_layers must be a non-negative integer, got {self.num_hidden_layers!r}")
        for name, limit in SIZE_LIMITS.items():
            if getattr(self, name) > limit:
                raise ValueError(f"{name}={getattr(self, name)} is beyond any real RoBERTa (limit {limit:,}); building "
                                 f"it would take hours or all memory. Is the value (or its config.json) corrupt?")
        self.validate_for_attention()
        eps = self.layer_norm_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < float("inf"):
            raise ValueError(f"layer_norm_eps must be a positive number (RoBERTa uses 1e-5), got {eps!r}; zero or "
                             f"negative values turn LayerNorm outputs into NaN")
        pad = self.pad_token_id
        if pad is not None and (not _is_int(pad) or not 0 <= pad < self.vocab_size):
            raise ValueError(f"pad_token_id={pad!r} is not a token of the vocabulary (ids 0..{self.vocab_size - 1}); "
                             f"set pad_token_id to the tokenizer's pad id (1 for roberta-base) or None")
        if isinstance(self.hidden_act, str) and self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; choose one of {ACTIVATIONS}")
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"position_embedding_type {self.position_embedding_type!r} is not one of {POSITION_EMBEDDING_TYPES}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.classifier_dropout is not None and not 0.0 <= self.classifier_dropout <= 1.0:
            raise ValueError(f"classifier_dropout must be in [0, 1] or None, got {self.classifier_dropout!r}")

    def validate_for_attention(self) -> None:
        """The check transformers makes when it builds self-attention: heads split hidden_size evenly.
        Models with a factorised embedding (an `embedding_size` attribute) are exempt, as there."""
        if self.hidden_size % self.num_attention_heads != 0 and not hasattr(self, "embedding_size"):
            raise ValueError(
                f"The hidden size ({self.hidden_size}) is not a multiple of the number of attention heads "
                f"({self.num_attention_heads})"
            )

def prepare_config(config_class, path_or_id, config, hub: dict, overrides: dict):
    """The config a model's from_pretrained builds with: read from `path_or_id` (or from `config` when that is a
    path or hub id), or a copy of a given config object; keyword overrides that name attributes are applied,
    then the whole is validated (a bad value read from a file is reported with that file's path).
    Returns (config, overrides that are not config attributes)."""
    if config is None or isinstance(config, (str, os.PathLike)):
        source = os.fspath(path_or_id if config is None else config)
        config, unused = config_class.from_pretrained(source, return_unused_kwargs=True, **hub, **overrides)
        try:
            config.validate()
        except ValueError as err:
            subfolder = hub.get("subfolder") or ""
            folder = os.path.join(source, subfolder)
            where = (source if os.path.isfile(source) else os.path.join(folder, CONFIG_NAME) if os.path.isdir(folder)
                     else f"{os.path.join(subfolder, CONFIG_NAME)} of {source}")
            raise ValueError(f"{where}: {err}") from None
        return config, unused
    if not isinstance(config, PretrainedConfig):
        raise TypeError(f"config must be a PretrainedConfig, a path or a hub id; got {type(config).__name__}")
    config, unused = copy.deepcopy(config), {}
    for key, value in overrides.items():
        if hasattr(config, key):
            setattr(config, key, value)
        else:
            unused[key] = value
    config.validate()
    return config, unused
