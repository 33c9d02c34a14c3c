"""RobertaPreTrainedModel: what every RoBERTa class shares (init, tying, resizing, loading hooks, helpers).

Loading and saving live in roberta.loading; `from_pretrained` / `save_pretrained` import it lazily so the
model never imports the loader at module import time (one-way data flow).
"""
from __future__ import annotations

import copy
import logging
import os
import tempfile
from typing import Optional

import torch
from torch import nn

from .attention import ATTN_IMPLEMENTATIONS

logger = logging.getLogger(__name__)

try:  # the config module is agent LOAD's; the model only needs attribute names from it
    from roberta.config import RobertaConfig
except ImportError:  # pragma: no cover - during parallel development only
    RobertaConfig = None


class RobertaPreTrainedModel(nn.Module):
    config_class = RobertaConfig
    base_model_prefix = "roberta"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["RobertaEmbeddings", "RobertaLayer"]
    _tied_weights_keys: list[str] = []
    _keys_to_ignore_on_load_unexpected: list[str] = []
    # Class attributes that ecosystem tools (accelerate, PEFT, Trainer, transformers' test mixins) read by duck
    # typing from transformers' PreTrainedModel; the values say what this implementation supports.
    _keys_to_ignore_on_load_missing = None
    _keys_to_ignore_on_save = None
    _keep_in_fp32_modules = None
    # Modules that from_pretrained(dtype=torch.bfloat16) keeps in float32 (module-name components, matched as
    # transformers matches `_keep_in_fp32_modules`; the loader reads them unrounded and save_pretrained writes them
    # as float32). The encoder's matmuls and activations are bf16; the embeddings (sum and LayerNorm) are computed
    # in float32 and handed over in bf16, each post-LN block adds its residual and normalizes in float32
    # (fused.dense_add_norm), and the LM head multiplies its bf16 input in float32: float32 logits. On the embedded
    # model's held-out masks (tests/test_bf16.py) fill-mask top-1 agrees with float32 on 99.45% (KL 2.3e-5 nats)
    # vs 98.7% (1.1e-4) all-bf16 with native bf16 (phase-4 model; phase 5: 99.08%, KL 3.0e-5); rounding the
    # tied (V, C) word matrix, the logits and the residual sums to bf16 flipped near-ties. Cost: ~7% of the native
    # bf16 forward. (Without native bf16 the encoder computes in float32 anyway, fused.float32_compute.)
    # model.to(torch.bfloat16) still casts everything.
    _keep_in_fp32_modules_bf16 = ("embeddings", "lm_head", "LayerNorm")
    _skip_keys_device_placement = None
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    _supports_attention_backend = False
    _can_compile_fullgraph = False  # transformers' value for RoBERTa; its generate() reads it
    _is_stateful = False
    _auto_class = None
    is_parallelizable = False
    model_tags = None

    def __init__(self, config, *args, **kwargs):
        super().__init__()
        getattr(config, "validate", lambda: None)()  # a clear error for values no model can be built with
        impl = getattr(config, "_attn_implementation", None)
        if impl is None:
            try:  # record the default the way transformers does, so config shows what runs
                config._attn_implementation = "sdpa"
            except AttributeError:
                pass
        elif impl not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f"attn_implementation={impl!r} is not supported by RoBERTa; use 'sdpa' (default) or "
                             "'eager'")
        self.config = config
        # an instance attribute, as on transformers' models: PEFT reads it from the instance __dict__
        self.name_or_path = getattr(config, "name_or_path", "") or ""

    # ---- construction --------------------------------------------------------------------------
    def post_init(self) -> None:
        """Initialise every weight (transformers' scheme) and tie the LM head to the word embeddings.

        Modules already initialised (the inner RobertaModel initialises itself when built) are skipped, in the
        same post-order as transformers, so a seeded build gives transformers' exact initial weights."""
        self.apply(self._init_once)
        self.tie_weights()
        if getattr(self.config, "pruned_heads", None):  # a pruned checkpoint's config re-applies its pruning
            self.prune_heads(self.config.pruned_heads)
        if getattr(self.config, "gradient_checkpointing", False):  # legacy config flag, as transformers reads it
            self.gradient_checkpointing_enable()
            del self.config.gradient_checkpointing

    def _init_once(self, module: nn.Module) -> None:
        if not getattr(module, "_is_hf_initialized", False):
            self._init_weights(module)
            module._is_hf_initialized = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(mean=0.0, std=std)
            if module.padding_idx is not None and module.weight.device.type != "meta":
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif type(module).__name__ == "RobertaLMHead":
            module.bias.zero_()

    def init_weights(self) -> None:
        self.post_init()

    def _init_buffers(self, device=None) -> None:
        """Recreate the non-persistent buffers (position ids, token type ids) on `device`, e.g. after a meta build."""
        for module in self.modules():
            if type(module).__name__ == "RobertaEmbeddings":
                dev = device if device is not None else module.word_embeddings.weight.device
                if torch.device(dev).type == "meta":
                    continue
                n = module.position_embeddings.num_embeddings
                module.position_ids = torch.arange(n, device=dev).expand((1, -1))
                module.token_type_ids = torch.zeros((1, n), dtype=torch.long, device=dev)

    def _can_compute_few_rows(self, output_attentions, output_hidden_states) -> bool:
        """Whether a head that reads only some rows may let the last layer compute just those: not when the full
        last layer is returned (hidden states, attentions), not for causal decoders or relative positions, not
        when there is no layer at all (num_hidden_layers=0: the embeddings are the output)."""
        cfg = self.config
        return cfg.num_hidden_layers > 0 and not (output_attentions or cfg.output_attentions or output_hidden_states or cfg.output_hidden_states
                    or cfg.is_decoder or (getattr(cfg, "position_embedding_type", None) or "absolute") != "absolute")

    def pack_weights(self, enable: bool = True) -> int:
        """CPU float32 / bfloat16 inference: keep a oneDNN-packed copy of every encoder matmul weight and run the encoder
        on it in blocks of at most 1536 token rows (a large batch goes a few sequences at a time, each block's
        intermediates staying in cache): the forward over batch-1 fill-mask inputs ~1.08x, batch-32 fill-mask 1.26x,
        at the cost of those weights' memory again (~340 MB for roberta-base). The pipelines call this on CPU in
        float32. Outputs differ from the plain path by rounding only (~1e-6). A weight changed after packing is
        noticed and served unpacked. enable=False drops the copies. bfloat16 weights are packed as bf16 where the CPU
        multiplies bf16 natively, else as float32 copies (float32 compute; see roberta.modeling.fused.pack);
        from_pretrained(dtype=torch.bfloat16) calls this on CPU. -> the number of layers that hold a packed copy
        (0 where this torch has no oneDNN or the weights are not float32/bfloat16 on CPU)."""
        from . import fused

        layers = [m for name, m in self.named_modules() if ".encoder.layer." in f".{name}." and
                  isinstance(m, nn.Linear)]
        if not enable:
            for layer in layers:
                fused.unpack(layer)
            return 0
        return sum(fused.pack(layer) for layer in layers)

    # ---- weights tying ---------------------------------------------------------------------------
    def get_input_embeddings(self) -> nn.Embedding:
        return getattr(self, self.base_model_prefix).get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        getattr(self, self.base_model_prefix).set_input_embeddings(value)

    def get_output_embeddings(self) -> Optional[nn.Module]:
        return None

    def tie_weights(self) -> None:
        """decoder.weight IS word_embeddings.weight (when tie_word_embeddings); the LM bias is kept one tensor."""
        output = self.get_output_embeddings()
        if output is not None and getattr(self.config, "tie_word_embeddings", True):
            inputs = self.get_input_embeddings()
            if getattr(self.config, "torchscript", False):
                output.weight = nn.Parameter(inputs.weight.clone())
            else:
                output.weight = inputs.weight
            if getattr(output, "bias", None) is not None and output.bias.shape[0] != output.weight.shape[0]:
                # vocab grew (resize): new bias entries are zero, like transformers
                grow = output.weight.shape[0] - output.bias.shape[0]
                output.bias.data = nn.functional.pad(output.bias.data, (0, grow), "constant", 0)
            output.out_features = inputs.num_embeddings
        for module in self.modules():
            if hasattr(module, "_tie_weights"):
                module._tie_weights()

    def resize_token_embeddings(self, new_num_tokens: Optional[int] = None, pad_to_multiple_of: Optional[int] = None,
                                mean_resizing: bool = True) -> nn.Embedding:
        """Grow or shrink the vocabulary to `new_num_tokens` (rounded up to `pad_to_multiple_of`).

        Old rows are kept. New rows: with `mean_resizing` (default, as transformers) drawn around the mean of
        the old rows (covariance scaled by 1e-9); else normal(0, initializer_range). Keeps the LM head tied,
        pads its bias with zeros and updates config.vocab_size. Returns the input embedding module.
        """
        old = self.get_input_embeddings()
        if pad_to_multiple_of is not None:
            if not isinstance(pad_to_multiple_of, int):  # transformers' words (typo included), which callers match
                raise ValueError(f"Asking to pad the embedding matrix to a multiple of `{pad_to_multiple_of}`, which "
                                 "is not and integer. Please make sure to pass an integer")
            if pad_to_multiple_of <= 0:
                raise ValueError(f"pad_to_multiple_of must be a positive int, got {pad_to_multiple_of!r}")
            if new_num_tokens is None:
                new_num_tokens = old.weight.shape[0]
            new_num_tokens = -(-new_num_tokens // pad_to_multiple_of) * pad_to_multiple_of
        if new_num_tokens is None:
            return old
        if new_num_tokens <= 0:
            raise ValueError(f"new_num_tokens must be positive, got {new_num_tokens}")
        self._resize_rows(old, new_num_tokens, mean_resizing)
        output = self.get_output_embeddings()
        if output is not None and not getattr(self.config, "tie_word_embeddings", True):
            self._resize_rows(output, new_num_tokens, mean_resizing)
        self.config.vocab_size = new_num_tokens
        self.vocab_size = new_num_tokens  # transformers sets this instance attribute too
        self.tie_weights()
        return self.get_input_embeddings()

    @staticmethod
    def _mean_rows(old_weight: torch.Tensor, added: int) -> torch.Tensor:
        """(added, C) rows around the old rows' mean (covariance scaled by 1e-9), as transformers draws them."""
        w = old_weight.float()
        mean = w.mean(dim=0)
        centered = w - mean
        scaled = 1e-9 * (centered.T @ centered / w.shape[0])
        if bool(torch.linalg.cholesky_ex(scaled).info.eq(0).all()):
            return torch.distributions.MultivariateNormal(mean, covariance_matrix=scaled).sample((added,))
        return mean[None].repeat(added, 1)

    @torch.no_grad()
    def _resize_rows(self, module: nn.Module, n: int, mean_resizing: bool) -> None:
        """Grow or shrink an Embedding (or an untied Linear LM decoder) to n rows, in place; old rows kept."""
        old_w = module.weight
        old_n, dim = old_w.shape
        if n == old_n:
            return
        linear = isinstance(module, nn.Linear)
        has_bias = linear and module.bias is not None
        kw = dict(device=old_w.device, dtype=old_w.dtype)
        # built the way transformers builds it, so a seeded resize draws the same random numbers
        fresh = nn.Linear(dim, n, bias=has_bias, **kw) if linear else nn.Embedding(n, dim, **kw)
        if n > old_n and mean_resizing:
            fresh.weight[old_n:] = self._mean_rows(old_w, n - old_n).to(old_w.dtype)
            if has_bias:
                b = module.bias.float()
                fresh.bias[old_n:].normal_(mean=float(b.mean()), std=1e-9 * float(b.std()))
        elif n > old_n:
            fresh.weight.normal_(mean=0.0, std=self.config.initializer_range)
            if has_bias:
                fresh.bias.zero_()
        keep = min(n, old_n)
        fresh.weight[:keep] = old_w[:keep]
        module.weight.data = fresh.weight.data
        if has_bias:
            fresh.bias[:keep] = module.bias[:keep]
            module.bias.data = fresh.bias.data
        if linear:
            module.out_features = n
        else:
            module.num_embeddings = n
            if module.padding_idx is not None and module.padding_idx >= n:
                module.padding_idx = None

    # ---- helpers -----------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the encoder computes in: the first floating parameter outside the modules kept in float32
        under bf16 loading (`_keep_in_fp32_modules_bf16`), else the first floating parameter."""
        first = None
        for name, p in self.named_parameters():
            if p.is_floating_point():
                if not self._kept_in_float32(name):
                    return p.dtype
                first = first or p.dtype
        return first or torch.get_default_dtype()

    @classmethod
    def _kept_in_float32(cls, name: str) -> bool:
        """Whether parameter or module `name` lies in a module kept in float32 under bf16 loading."""
        return any(part in cls._keep_in_fp32_modules_bf16 for part in name.split("."))

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameter count; a tied tensor is counted once."""
        skip = set()
        if exclude_embeddings:
            skip = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)}
        return sum(p.numel() for p in self.parameters()
                   if id(p) not in skip and (p.requires_grad or not only_trainable))

    def get_memory_footprint(self, return_buffers: bool = True) -> int:
        """Bytes held by parameters (and buffers)."""
        tensors = list(self.parameters()) + (list(self.buffers()) if return_buffers else [])
        return sum(t.numel() * t.element_size() for t in tensors)

    def enable_input_require_grads(self) -> None:
        """Make the embedding output require grad (PEFT adapters + gradient checkpointing need it)."""
        def hook(module, inputs, output):
            output.requires_grad_(True)
        self._require_grads_hook = self.get_input_embeddings().register_forward_hook(hook)

    def disable_input_require_grads(self) -> None:
        handle = getattr(self, "_require_grads_hook", None)
        if handle is not None:
            handle.remove()
            self._require_grads_hook = None

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Optional[dict] = None) -> None:
        """Recompute each layer's activations in backward (training mode only) to save memory."""
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

    def get_head_mask(self, head_mask: Optional[torch.Tensor], num_hidden_layers: int):
        """(H,) or (L, H) of 1 keep / 0 drop -> (L, 1, H, 1, 1) broadcastable onto (B, H, T, S), or None."""
        if head_mask is None:
            return None
        if head_mask.dim() == 1:
            head_mask = head_mask[None].expand(num_hidden_layers, -1)
        elif head_mask.dim() != 2:
            raise ValueError(f"head_mask must be (heads,) or (layers, heads); got shape {tuple(head_mask.shape)}")
        return head_mask[:, None, :, None, None].to(dtype=self.dtype)

    @classmethod
    def can_generate(cls) -> bool:
        return hasattr(cls, "generate")

    # ---- attention implementation, head pruning ---------------------------------------------------------
    def set_attn_implementation(self, attn_implementation: str) -> None:
        """Switch between "sdpa" (default) and "eager" attention; the choice is read at every forward."""
        if attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f"attn_implementation={attn_implementation!r} is not supported by RoBERTa; use 'sdpa' "
                             "or 'eager'")
        self.config._attn_implementation = attn_implementation

    def prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        """Remove attention heads: {layer index: [head indices]}. Recorded in config.pruned_heads (saved with the
        config and re-applied when the model is built from it); pruning a head twice is a no-op."""
        layers = self.base_model.encoder.layer
        for layer, heads in heads_to_prune.items():
            self.config.pruned_heads[layer] = sorted(set(self.config.pruned_heads.get(layer, [])) | set(heads))
            layers[layer].attention.prune_heads(heads)

    # ---- counts that Trainer and tools read ------------------------------------------------------------------
    def estimate_tokens(self, input_dict: dict) -> int:
        """Tokens in a batch (the main input's element count); 0 when the batch has no such input."""
        value = input_dict.get(self.main_input_name) if hasattr(input_dict, "get") else None
        return int(value.numel()) if torch.is_tensor(value) else 0

    def floating_point_ops(self, input_dict: dict, exclude_embeddings: bool = True) -> int:
        """Forward + backward FLOPs of one batch, 6 x tokens x parameters (transformers' estimate, which
        Trainer sums into total_flos)."""
        return 6 * self.estimate_tokens(input_dict) * self.num_parameters(exclude_embeddings=exclude_embeddings)

    # ---- loading / saving (delegated) -----------------------------------------------------------------
    @classmethod
    def _from_config(cls, config, **kwargs):
        """Build with random weights from a copy of `config` (transformers' hook for tools and test mixins);
        `attn_implementation=` and `dtype=` (or `torch_dtype=`) as in from_pretrained."""
        config = copy.deepcopy(config)
        impl = kwargs.pop("attn_implementation", None)
        if impl is not None:
            config._attn_implementation = impl
        dtype = kwargs.pop("dtype", None) or kwargs.pop("torch_dtype", None)
        model = cls(config, **kwargs)
        return model.to(dtype) if dtype is not None else model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        if pretrained_model_name_or_path is None:  # transformers' form for "this config, these tensors"
            return cls._from_config_and_state_dict(kwargs.pop("config", None), kwargs.pop("state_dict", None),
                                                   **kwargs)
        if kwargs.get("device_map") is None and torch.empty(0).device.type == "meta":
            raise RuntimeError("You are using `from_pretrained` with a meta device context manager or "
                               "`torch.set_default_device('meta')`: weights cannot be loaded onto the meta device. "
                               "Load outside it (device_map= places the weights), or build `cls(config)` under it.")
        from roberta.loading import load_model
        loaded = load_model(cls, pretrained_model_name_or_path, *args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        if isinstance(model, nn.Module):  # the config learnt its path while loading; PEFT reads the model's
            model.name_or_path = model.config.name_or_path
        return loaded

    @classmethod
    def _from_config_and_state_dict(cls, config, state_dict, output_loading_info: bool = False, **kwargs):
        if config is None:
            raise ValueError("from_pretrained(None, ...) needs config= (and usually state_dict=): there is no folder "
                             "to read a config from")
        model = cls._from_config(config, **kwargs)
        info = {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
        if state_dict is not None:
            result = model.load_state_dict(state_dict, strict=False)
            tied = set(model._tied_weights_keys or [])
            info["missing_keys"] = [k for k in result.missing_keys if k not in tied]
            info["unexpected_keys"] = list(result.unexpected_keys)
            model.tie_weights()
        model.eval()
        return (model, info) if output_loading_info else model

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs) -> None:
        """Write config.json and the weights (see roberta.loading.save_model); push_to_hub=True then uploads the
        folder (repo_id= or the folder's name, token=, private=, commit_message=)."""
        from roberta.loading import save_model
        hub_kwargs = {k: kwargs.pop(k) for k in ("repo_id", "token", "private", "commit_message", "create_pr",
                                                 "revision") if k in kwargs}
        save_model(self, save_directory, **kwargs)
        if push_to_hub:
            from roberta.hub import upload_folder
            repo_id = hub_kwargs.pop("repo_id", None) or os.path.basename(os.path.abspath(save_directory))
            upload_folder(save_directory, repo_id, **hub_kwargs)

    def push_to_hub(self, repo_id: str, *, commit_message: str = "Upload model", private: Optional[bool] = None,
                    token=None, revision: Optional[str] = None, create_pr: bool = False,
                    max_shard_size="5GB", safe_serialization: bool = True, **kwargs):
        """Save to a temporary folder and upload it to the hub repo `repo_id` (created if needed) through
        huggingface_hub. -> the commit info huggingface_hub returns."""
        from roberta.hub import upload_folder
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, max_shard_size=max_shard_size, safe_serialization=safe_serialization,
                                 **kwargs)
            return upload_folder(folder, repo_id, commit_message=commit_message, private=private, token=token,
                                 revision=revision, create_pr=create_pr)
