"""int8 quantization of a loaded model, applied from outside the model (like the oneDNN packing in
modeling/fused.py): every nn.Linear of the encoder layers becomes an `Int8Linear` (but `modules_to_not_convert`:
with "dynamic", the first layer's FFN down-projection stays float by default, see DYNAMIC_MODULES_TO_NOT_CONVERT).

Two kinds, chosen by `Int8Config(activations=...)`:
- "dynamic" (default): int8 weights (symmetric, one scale per output channel) and activations quantized per call
  (one scale for the whole input), multiplied in int8 by torch's own quantized CPU kernels (oneDNN on a CPU with
  VNNI, see int8_engine(); else fbgemm, AVX2), output in float32. ~3-4x a float32 matmul of roberta-base shapes on
  one core.
- "none" (weight-only): int8 storage (a quarter of float32's memory), weights dequantized per call and multiplied
  in the input's float dtype: float32's speed, float32's activations.
Heads (LM head, classifier, pooler) keep float weights: they are small, and the LM head's vocabulary projection
is tied to the word embeddings; with "dynamic" that projection multiplies in int8 at inference from a copy made
on first use (Int8VocabProjection; nothing of it is saved).

Saved format (model.safetensors + config.json, read back without re-quantizing): for each quantized layer
`<name>.weight` int8 (out, in), `<name>.weight_scale` float32 (out,) and `<name>.bias` float32 (out,), with
weight ~= weight_int8 * weight_scale[:, None]; config.json gets `"quantization_config": {"quant_method":
"roberta_int8", "activations": "dynamic"|"none"}`, and from_pretrained rebuilds the same layers from it.

Inference only: Int8Linear has no gradient (Int8VocabProjection computes in float where autograd is on).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor
QUANT_METHOD = "roberta_int8"
ACTIVATIONS = ("dynamic", "none")
# accepted shorthands: ours, and transformers' TorchAoConfig quant_type names for the same two schemes
_ALIASES = {"int8": "dynamic", "int8_dynamic": "dynamic", "int8_dynamic_activation_int8_weight": "dynamic",
            "int8_weight_only": "none"}


# With activations quantized per call (one scale per input), the first layer's FFN down-projection is where top-1
# flips come from: its GELU outputs carry a few large values that squeeze every other value into a few int8 steps.
# On the embedded model's held-out masks (tests/test_quantization.py) keeping it float lifts top-1 agreement from
# 94.7% to 97.0%; another layer's FFN down-projection kept float leaves it at 94.8-95.4%, and every layer's
# attention output or FFN up-projection kept float at 94.2-95.0%. It is 1/12 of a 4-layer
# encoder's matmul work (1/36 of roberta-base's).
DYNAMIC_MODULES_TO_NOT_CONVERT = ("encoder.layer.0.output.dense",)


@dataclass
class Int8Config:
    """`quantization_config=` for from_pretrained / pipeline: int8 weights for every encoder Linear;
    activations "dynamic" (int8 matmuls) or "none" (weight-only int8, float matmuls).

    modules_to_not_convert (transformers' name): encoder Linears left float, matched as a suffix of the module's
    name ("encoder.layer.0.output.dense" matches "roberta.encoder.layer.0.output.dense"). None: the scheme's
    default, DYNAMIC_MODULES_TO_NOT_CONVERT for "dynamic", none for weight-only."""

    activations: str = "dynamic"
    quant_method: str = QUANT_METHOD
    modules_to_not_convert: list[str] | None = None

    def __post_init__(self):
        if self.activations not in ACTIVATIONS:
            raise ValueError(f"Int8Config(activations={self.activations!r}): expected one of {ACTIVATIONS}")
        if self.quant_method != QUANT_METHOD:
            raise ValueError(f"quant_method {self.quant_method!r} is not supported; roberta quantizes with "
                             f"{QUANT_METHOD!r} (Int8Config)")
        if self.modules_to_not_convert is None:
            self.modules_to_not_convert = DYNAMIC_MODULES_TO_NOT_CONVERT if self.activations == "dynamic" else ()
        if isinstance(self.modules_to_not_convert, str) or not all(
                isinstance(m, str) for m in self.modules_to_not_convert):
            raise TypeError(f"modules_to_not_convert must be a list of module names, got {self.modules_to_not_convert!r}")
        self.modules_to_not_convert = list(self.modules_to_not_convert)

    def to_dict(self) -> dict:
        return {"quant_method": self.quant_method, "activations": self.activations,
                "modules_to_not_convert": self.modules_to_not_convert.copy()}

    @classmethod
    def from_any(cls, value) -> "Int8Config":
        """An Int8Config from itself, its dict (config.json), or a name: "int8" / "int8_dynamic" /
        "int8_weight_only" (and TorchAoConfig's "int8_dynamic_activation_int8_weight")."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            if value not in _ALIASES:
                raise ValueError(f"quantization_config={value!r} is not supported; use one of {sorted(_ALIASES)} "
                                 "or roberta.Int8Config(...)")
            return cls(activations=_ALIASES[value])
        if isinstance(value, dict):
            extra = set(value) - {"quant_method", "activations", "modules_to_not_convert"}
            if extra:
                raise ValueError(f"quantization_config has unknown keys {sorted(extra)}; expected quant_method, "
                                 "activations and modules_to_not_convert")
            # A config.json written before modules_to_not_convert existed holds a fully quantized encoder.
            return cls(**{"modules_to_not_convert": [], **value})
        quant_type = getattr(value, "quant_type", None)  # a transformers TorchAoConfig naming an int8 scheme
        if isinstance(quant_type, str) and quant_type in _ALIASES:
            return cls(activations=_ALIASES[quant_type])
        raise TypeError(f"quantization_config must be an Int8Config, a dict or a name like 'int8'; got "
                        f"{type(value).__name__}")


def _has_vnni() -> bool:
    probe = getattr(torch.cpu, "_is_vnni_supported", None) or getattr(torch.cpu, "_is_avx512_vnni_supported", None)
    return bool(probe and probe())


# fbgemm's AVX2 kernel sums pairs of u8*s8 products in int16, which can saturate; 7-bit activations keep the sums
# in range (torch's default dynamic qconfig does the same). VNNI accumulates in int32: all 8 bits are safe.
REDUCE_RANGE = not _has_vnni()


def int8_engine() -> str:
    """The torch quantized engine that packs (and so runs) our int8 matmuls: "onednn" on a CPU with VNNI, else
    torch's default ("x86", which picks fbgemm). Measured on an AMD EPYC Zen 4 (AVX-512 VNNI), one thread, the
    encoder's matmul shapes: onednn 340-376 GOP/s at 1536-4096 token rows, x86 / fbgemm 180-330 (the 768 -> 3072
    FFN matmul 254 vs 177-203 at 4096 rows); the int8 fill-mask pipeline at batch 32 (4 layers) 2.4x float32
    with onednn, 1.9x with x86. The numbers are the same to ~1e-6 (the same quantization, another summation
    order). Without VNNI oneDNN's int8 matmuls can saturate like fbgemm's (7-bit activations, REDUCE_RANGE) and
    were not measured faster, so the default stays."""
    engines = torch.backends.quantized.supported_engines
    return "onednn" if _has_vnni() and "onednn" in engines else torch.backends.quantized.engine


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric int8, one scale per output row (max |w| -> 127). (out, in) -> ((out, in) int8, (out,) float32)."""
    weight = weight.detach().float()
    scale = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
    return torch.round(weight / scale[:, None]).clamp_(-127, 127).to(torch.int8), scale


def prepack(weight: Tensor, scale: Tensor, bias: Tensor | None):
    """The packed int8 weight that torch.ops.quantized.linear_dynamic multiplies by, packed by int8_engine()
    (the engine chosen at packing time is the one that runs it; the process-wide setting is put back at once)."""
    engine = torch.backends.quantized.engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices; the kernels stay in torch
        qweight = torch._make_per_channel_quantized_tensor(weight.cpu(), scale.double().cpu(),
                                                           torch.zeros(weight.shape[0], dtype=torch.long), 0)
        torch.backends.quantized.engine = int8_engine()
        try:
            return torch.ops.quantized.linear_prepack(qweight, None if bias is None else bias.float().cpu())
        finally:
            torch.backends.quantized.engine = engine


def int8_matmul(x: Tensor, packed, out_features: int) -> Tensor:
    """x @ W.T + b with activations quantized per call (one scale for all of x). (..., in) -> (..., out) float32."""
    out = torch.ops.quantized.linear_dynamic(x.reshape(-1, x.shape[-1]).contiguous(), packed, REDUCE_RANGE)
    return out.view(*x.shape[:-1], out_features)


def int8_matmul_available(x: Tensor) -> bool:
    return x.dtype == torch.float32 and x.device.type == "cpu" and "fbgemm" in torch.backends.quantized.supported_engines


class Int8Linear(nn.Module):
    """y = x @ (weight_int8 * weight_scale[:, None]).T + bias; int8 x int8 matmuls where activations="dynamic"
    and the input is float32 on CPU, else the dequantized weight in the input's dtype. (..., in) -> (..., out)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activations: str = "dynamic",
                 device=None):
        super().__init__()
        self.in_features, self.out_features, self.activations = in_features, out_features, activations
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("weight_scale", torch.ones(out_features, dtype=torch.float32, device=device))
        self.register_buffer("bias", torch.zeros(out_features, device=device) if bias else None)
        self._prepacked = None  # (packed params, versions and storages they were packed from)

    @classmethod
    def from_linear(cls, linear: nn.Linear, activations: str = "dynamic") -> "Int8Linear":
        """Quantize a float nn.Linear: symmetric int8, one scale per output channel (max |w| -> 127)."""
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, activations,
                    device=linear.weight.device)
        layer.weight, layer.weight_scale = quantize_rows(linear.weight)
        if linear.bias is not None:
            layer.bias = linear.bias.detach().float().clone()
        return layer

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"activations={self.activations!r}")

    def dequantized_weight(self, dtype=torch.float32) -> Tensor:
        return (self.weight.to(torch.float32) * self.weight_scale.float()[:, None]).to(dtype)  # (out, in)

    def _packed(self):
        """The int8 weight prepacked by int8_engine(), rebuilt whenever the buffers changed (load_state_dict,
        .to())."""
        key = tuple((t._version, t.data_ptr()) for t in (self.weight, self.weight_scale, self.bias) if t is not None)
        if self._prepacked is None or self._prepacked[1] != key:
            self._prepacked = (prepack(self.weight, self.weight_scale, self.bias), key)
        return self._prepacked[0]

    def forward(self, x: Tensor) -> Tensor:
        if self.activations == "dynamic" and int8_matmul_available(x):
            return int8_matmul(x, self._packed(), self.out_features)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.dequantized_weight(x.dtype), bias)

    def __getstate__(self):  # deepcopy / pickle: the packed weight is rebuilt on first use
        state = dict(super().__getstate__())
        state["_prepacked"] = None
        return state


class Int8VocabProjection(nn.Linear):
    """The LM head's vocabulary projection (C -> V, tied to the word embeddings) with an int8 copy for inference.

    Its float weight stays the model's parameter: tied, saved as float, trainable. Where autograd is off and the
    input is float32 on CPU, the layer multiplies in int8 instead (activations quantized per call) by a copy of
    the weight quantized per row on first use and again whenever the weight changes. fill-mask runs it on the
    mask rows only; there it was 70 -> 10 ms per batch of 32 masks at roberta-base size (50265 x 768, one thread,
    Zen 4; the encoder's int8 layers take ~1 s for that batch at 4 layers). quantize(model, "int8") turns the
    LM head's nn.Linear into this class in place, so parameters, state-dict keys and tying stay as they were;
    weight-only int8 leaves it float (a second copy would cost memory, the point of weight-only)."""

    def forward(self, x: Tensor) -> Tensor:  # (..., C) -> (..., V)
        from roberta.modeling.fused import fast_inference

        if not (int8_matmul_available(x) and self.weight.device.type == "cpu" and fast_inference(x)):
            return super().forward(x)
        key = tuple((t._version, t.data_ptr()) for t in (self.weight, self.bias) if t is not None)
        cached = self.__dict__.get("_int8")
        if cached is None or cached[1] != key:
            cached = self.__dict__["_int8"] = (prepack(*quantize_rows(self.weight), self.bias), key)
        return int8_matmul(x, cached[0], self.out_features)

    def __getstate__(self):  # deepcopy / pickle: the int8 copy is rebuilt on first use
        state = dict(super().__getstate__())
        state.pop("_int8", None)
        return state


def _int8_vocab_projection(model: nn.Module, config: "Int8Config") -> None:
    decoder = getattr(getattr(model, "lm_head", None), "decoder", None)
    if type(decoder) is nn.Linear and config.activations == "dynamic":
        decoder.__class__ = Int8VocabProjection


def _targets(model: nn.Module, config: "Int8Config") -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, module) of every Linear inside the encoder layers, but config.modules_to_not_convert."""
    found = []
    for name, parent in model.named_modules():
        if ".encoder.layer." not in f".{name}.":
            continue
        for attr, child in parent.named_children():
            full = f".{name}.{attr}"
            if type(child) is nn.Linear and not any(full.endswith(f".{m}") for m in config.modules_to_not_convert):
                found.append((parent, attr, child))
    return found


def quantize(model: nn.Module, quantization_config="int8") -> nn.Module:
    """Quantize `model` in place (see the module docstring); records the config in model.config. -> model."""
    config = Int8Config.from_any(quantization_config)
    if getattr(getattr(model, "config", None), "quantization_config", None):
        raise ValueError("this model is already quantized (config.quantization_config is set)")
    targets = _targets(model, config)
    if not targets:
        raise ValueError(f"{type(model).__name__} has no encoder Linear layers to quantize")
    for parent, attr, linear in targets:
        if linear.weight.device.type == "meta":
            raise ValueError("cannot quantize weights on the meta device; load the model first")
        setattr(parent, attr, Int8Linear.from_linear(linear, config.activations))
    _int8_vocab_projection(model, config)
    if hasattr(model, "config"):
        model.config.quantization_config = config.to_dict()
    return model


def prepare_quantized_load(model: nn.Module, saved) -> None:
    """Before loading a quantized checkpoint: swap the encoder Linears of a freshly built (meta) model for empty
    Int8Linear layers, so the saved int8 weights and scales load as they are, with no re-quantizing."""
    config = Int8Config.from_any(saved)
    for parent, attr, linear in _targets(model, config):
        setattr(parent, attr, Int8Linear(linear.in_features, linear.out_features, linear.bias is not None,
                                         config.activations, device=linear.weight.device))
    _int8_vocab_projection(model, config)


def fastest_cpu_dtype() -> torch.dtype:
    """The fastest float dtype on this CPU within the accuracy gates (tests/test_bf16.py): bfloat16 where the CPU
    multiplies bf16 natively (AVX512-BF16, AMX), else float32. (`roberta run --dtype auto` on CPU.)"""
    from roberta.modeling.fused import native_bf16

    return torch.bfloat16 if native_bf16() else torch.float32


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, Int8Linear) for m in model.modules())
