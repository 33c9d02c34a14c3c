"""Inference-only shortcuts that skip whole memory passes, with the same math as the plain modules.

Post-LN blocks end in `LayerNorm(dense(x) + residual)`. `nn.Linear` first copies its bias into a fresh output
(one pass), multiplies into it, and the residual add is another pass. `dense_add_residual` starts from
`residual + bias` (one pass) and lets the matrix multiply accumulate into that buffer in place (`addmm_`):
one pass fewer per block, ~8% faster on the attention output block and 2-5% on the FFN output block on CPU.
The sums are the same numbers added in another order (~5e-7 per block in fp32, ~4e-6 after 12 layers).

`gelu_inplace` applies exact GELU in place on the FFN's fresh (B, T, 4C) buffer: bit-identical, and it saves
allocating (and page-faulting) another buffer of that size in every layer.

`pack(linear)` keeps a oneDNN-packed copy of an `nn.Linear`'s weight (called for every encoder matmul by
`RobertaPreTrainedModel.pack_weights()`, which the pipelines do on CPU in float32). The modules stay plain
`nn.Linear` (same parameters, same state-dict keys, and the exact type that `torch.ao.quantization`,
PEFT and other tools look for); the packed copies live in a table beside them, keyed weakly by module, so a
deepcopy, pickle or `torch.save` of the model never carries them. A plain CPU matmul re-packs the weight into a
blocked layout on every call;
for the short inputs of batch-1 inference that is a large share of the time. Measured on the 72 matmuls of a
roberta-base encoder, weights cold in cache as in a real forward, 1 thread: 8 rows 1.55x, 24-64 rows
1.11-1.16x, 80-400 rows 1.03-1.09x. One packed call on many rows is slower than the plain matmul (1024 rows
0.94x, 4096 rows 0.87x) while weights and activations stream from memory, but the encoder layer runs a large
batch a few sequences at a time (`RobertaLayer._forward_in_sequence_blocks`), so each block's intermediates stay
in cache and are reused from block to block instead of page-faulting fresh batch-sized buffers: the FFN over
4096 rows in blocks of 512 1.22x the plain whole-batch FFN, and batch-32 fill-mask as a whole 1.26x. Blocks of
1536-2048 rows measured best on whole batch-32 fill-mask calls (512: 0.94x of that, 1024: 0.96x, 3072-4096:
0.97-0.98x), hence PACKED_ROWS; a packed matmul given more rows takes them PACKED_ROWS at a time. With a packed
weight the FFN's GELU runs inside the matmul (`dense_gelu`). The packed copy costs the weight's size in memory
again. It is checked against the weight's identity, version counter and storage on every call, so a weight
changed in place (training, load_state_dict, `.to()`) is never served from a stale copy: the layer falls back
to the plain path and the copy is dropped. Outputs differ from the plain path by rounding (~5e-6 per layer).

All of these apply only where autograd is off (no tensor needs these intermediates for a backward), no autocast
is active (its dtype casts do not cover in-place ops) and no tracer or compiler is running (`tracing()`: a
graph records one branch, so value- and size-dependent shortcuts stay out of exported programs, and the compiler
fuses by itself). A module that is not a plain `nn.Linear` (e.g. one swapped in by `quantize_dynamic`) is simply
called.
"""
from __future__ import annotations

import logging
import os
import weakref

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)
Tensor = torch.Tensor


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def tracing() -> bool:
    """True under any tracer or compiler: torch.jit (trace/script), torch.onnx, torch.export, FX, dynamo."""
    if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return True
    is_exporting = getattr(torch.compiler, "is_exporting", None)  # torch >= 2.5
    if is_exporting is not None and is_exporting():
        return True
    from torch.fx import _symbolic_trace as fx
    fx_tracing = getattr(fx, "is_fx_symbolic_tracing", None) or fx.is_fx_tracing  # the first: torch >= 2.7
    return fx_tracing() or torch.onnx.is_in_onnx_export()


def fast_inference(x: Tensor) -> bool:
    """True where the in-place shortcuts are safe for `x` (see the module docstring)."""
    return not torch.is_grad_enabled() and not tracing() and not _autocast_on(x.device.type)


def dense_add_residual(dense: nn.Linear, x: Tensor, residual: Tensor) -> Tensor:
    """dense(x) + residual, (..., Cin), (..., C) -> (..., C); one memory pass fewer where fast_inference(x)."""
    packed = packed_weight(dense, x)
    if packed is not None:  # (oneDNN's fused "add" post-op measured slower than this separate pass)
        return _packed_linear(dense, x, packed).add_(residual)
    if type(dense) is not nn.Linear:  # a quantized or otherwise swapped module: its own forward
        return dense(x) + residual
    weight, bias = dense.weight, dense.bias
    if not (fast_inference(x) and bias is not None and x.dtype == weight.dtype == residual.dtype
            and residual.shape[:-1] == x.shape[:-1]):
        return dense(x) + residual
    out = torch.add(residual, bias)  # a fresh buffer: the caller's residual is untouched
    out.view(-1, out.shape[-1]).addmm_(x.reshape(-1, x.shape[-1]), weight.t())
    return out


def dense_add_norm(dense: nn.Linear, norm: nn.LayerNorm, x: Tensor, residual: Tensor,
                   dropout: nn.Module | None = None) -> Tensor:
    """norm(dropout(dense(x)) + residual), the end of a post-LN block: (..., Cin), (..., C) -> (..., C).

    Where the norm's dtype is not the activations' (bf16 activations with the LayerNorms kept float32 under bf16
    loading, see RobertaPreTrainedModel._keep_in_fp32_modules_bf16; or float32 activations of the no-native-bf16
    kind, see float32_compute, in a model cast to bf16 whole) the sum and the norm are computed in float32 and
    rounded to the activations' dtype once: rounding the sum to bf16 before the norm was the largest activation
    rounding of the bf16 encoder (on the embedded model, rounding only there doubled the KL to float32 that bf16
    weights alone give)."""
    if norm.weight.dtype == residual.dtype:
        if dropout is not None:
            return norm(dropout(dense(x)) + residual)
        return norm(dense_add_residual(dense, x, residual))
    y = linear(dense, x) if dropout is None else dropout(dense(x))
    total = y.float().add_(residual)
    weight, bias = norm.weight.float(), norm.bias.float()  # (no copies when float32 already)
    return F.layer_norm(total, norm.normalized_shape, weight, bias, norm.eps).to(residual.dtype)


def gelu_inplace(x: Tensor) -> Tensor:
    """Exact GELU; in place where fast_inference(x) (x must be a buffer nobody else reads)."""
    return torch.ops.aten.gelu_(x) if fast_inference(x) else F.gelu(x)


_PACKING_WORKS: bool | None = None
PACKED_ROWS = 1536  # a packed matmul takes at most this many rows per call; longer inputs go in row blocks


def packing_available() -> bool:
    """True where this torch has oneDNN's packed linear and it gives F.linear's numbers (checked once per
    process on a probe at several row counts)."""
    global _PACKING_WORKS
    if _PACKING_WORKS is None:
        _PACKING_WORKS = False
        try:
            if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
                gen = torch.Generator().manual_seed(0)
                weight, bias = torch.randn(80, 96, generator=gen), torch.randn(80, generator=gen)
                packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
                with torch.no_grad():
                    _PACKING_WORKS = all(
                        torch.allclose(torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], ""),
                                       F.linear(x, weight, bias), rtol=1e-5, atol=1e-5)
                        for x in (torch.randn(m, 96, generator=gen) for m in (1, 7, 64, 203)))
        except (RuntimeError, AttributeError):  # an op missing or refusing in this build
            _PACKING_WORKS = False
    return _PACKING_WORKS


# module -> (packed tensor, weakref to the weight packed, its version, its data_ptr); weak keys: a module that
# is garbage collected takes its packed copy with it, and copies of a module start without one
_PACKED: "weakref.WeakKeyDictionary[nn.Linear, tuple]" = weakref.WeakKeyDictionary()


# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA, oneDNN's names) that still have bf16 dot-product instructions
_ONEDNN_BF16_ISAS = {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX", "AVX10_1_512_AMX",
                     "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16", "ALL", "DEFAULT", ""}


def no_native_bf16_reason() -> str | None:
    """Why this process has no native bf16 matrix multiply, or None where it has one. Native needs all of: the
    CPU has AVX512-BF16 or AMX (torch.cpu's queries), torch's ATen kernels run at AVX512
    (torch.backends.cpu.get_cpu_capability(); ATEN_CPU_CAPABILITY=avx2 lowers it), oneDNN is not limited below
    AVX512_CORE_BF16 (ONEDNN_MAX_CPU_ISA, or its old name DNNL_MAX_CPU_ISA: with AVX2 oneDNN cannot even pack bf16
    weights and torch's bf16 matmul falls back to a scalar loop), and ROBERTA_CPU_BF16 is not 0/false/no/off. The
    environment limits are how a CPU without native bf16 is emulated on one that has it
    (bench/bench_cpu.py --emulate-cpu avx2)."""
    forced = os.environ.get("ROBERTA_CPU_BF16", "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return f"ROBERTA_CPU_BF16={forced}"
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if not any(p is not None and p() for p in probes):
        return "the CPU has neither AVX512-BF16 nor AMX"
    capability = torch.backends.cpu.get_cpu_capability()
    if not capability.startswith("AVX512"):
        return f"torch's CPU capability is {capability}"
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        isa = os.environ.get(name)
        if isa is not None:
            if isa.strip().upper() not in _ONEDNN_BF16_ISAS:
                return f"{name}={isa} (below AVX512_CORE_BF16)"
            break  # oneDNN reads ONEDNN_ first
    return None


def native_bf16() -> bool:
    """Whether this process multiplies bf16 in hardware (see no_native_bf16_reason), decided once per process."""
    global _NATIVE_BF16
    if _NATIVE_BF16 is None:
        _NATIVE_BF16 = no_native_bf16_reason() is None
    return _NATIVE_BF16


_NATIVE_BF16: bool | None = None
_SAID_BF16_IN_FP32 = False


def pack(linear: nn.Module) -> bool:
    """Keep a packed copy of a plain nn.Linear's weight for CPU inference. -> whether it was packed.

    float32 weights: a float32 copy. bfloat16 weights: a bf16 copy where the CPU multiplies bf16 natively; else a
    float32 copy of the bf16 weights, so bf16 models compute their matmuls in float32 (emulated bf16 matmuls run
    ~2-5x slower than float32 there), at float32's speed: the layer takes and returns bf16, or float32 where the
    whole encoder computes in float32 (float32_compute; RobertaModel returns its outputs in bf16 all the same)."""
    _PACKED.pop(linear, None)
    weight = getattr(linear, "weight", None)
    if (type(linear) is not nn.Linear or weight.device.type != "cpu"
            or weight.dtype not in (torch.float32, torch.bfloat16) or not packing_available()):
        return False
    compute = weight.dtype if weight.dtype == torch.float32 or native_bf16() else torch.float32
    global _SAID_BF16_IN_FP32
    if compute != weight.dtype and not _SAID_BF16_IN_FP32:
        _SAID_BF16_IN_FP32 = True  # once per process
        logger.warning("This CPU has no native bf16 matrix multiply (%s): bfloat16 weights are multiplied in "
                       "float32 (packed float32 copies), which is faster than emulated bf16",
                       no_native_bf16_reason() or "native bf16 turned off in roberta.modeling.fused")
    with torch.no_grad():
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().to(compute).contiguous(), None)
    _PACKED[linear] = (packed, weakref.ref(weight), weight._version, weight.data_ptr(), weight.dtype)
    return True


def unpack(linear: nn.Module) -> None:
    _PACKED.pop(linear, None)


def is_packed(linear: nn.Module) -> bool:
    """Whether `linear` holds a packed copy now (it may still be found stale at its next call)."""
    return linear in _PACKED


def packed_weight(dense: nn.Module, x: Tensor):
    """The packed weight that may serve dense(x) now, else None (and a stale copy is dropped)."""
    entry = _PACKED.get(dense) if _PACKED else None
    if entry is None or not fast_inference(x):  # (tracers stop here, before reading any size or value)
        return None
    weight = dense.weight
    if (entry[1]() is not weight or entry[2] != weight._version or entry[3] != weight.data_ptr()
            or weight.dtype != entry[4]):
        del _PACKED[dense]  # the weight changed since packing
        return None
    # a float32 copy of bf16 weights serves float32 activations too (see float32_compute)
    return entry[0] if x.dtype in (weight.dtype, entry[0].dtype) and x.device.type == "cpu" else None


def float32_compute(linears, x: Tensor) -> bool:
    """Whether an encoder may keep its activations in float32: every one of its matmul layers (`linears`) holds a
    float32 packed copy of bf16 weights that may serve x now (the no-native-bf16 kind, see pack()). Then the bf16
    model computes in float32 from its bf16 weights throughout, instead of casting bf16 activations to float32
    and back around every matmul (~20 casts of a (rows, C) activation per layer, ~3-4% of the forward)."""
    bf16 = False
    for dense in linears:
        packed = packed_weight(dense, x)
        if packed is None or packed.dtype != torch.float32:
            return False
        bf16 = bf16 or dense.weight.dtype != torch.float32
    return bf16


def linear(dense: nn.Module, x: Tensor) -> Tensor:
    """dense(x), on the packed weight where there is one that may serve x."""
    packed = packed_weight(dense, x)
    return dense(x) if packed is None else _packed_linear(dense, x, packed)


def _packed_linear(dense: nn.Linear, x: Tensor, packed: Tensor, gelu: bool = False) -> Tensor:
    """dense(x) (then exact GELU, applied inside the matmul) on the packed weight, PACKED_ROWS rows at a time;
    a fresh buffer in x's dtype (a float32 copy of bf16 weights computes in float32, see pack())."""
    compute = packed.dtype
    bias = dense.bias if dense.bias is None or dense.bias.dtype == compute else dense.bias.to(compute)

    def run(rows: Tensor) -> Tensor:
        rows = rows if rows.dtype == compute else rows.to(compute)
        if gelu:
            out = torch.ops.mkldnn._linear_pointwise(rows, packed, bias, "gelu", [], "none")
        else:
            out = torch.ops.mkldnn._linear_pointwise(rows, packed, bias, "none", [], "")
        return out if out.dtype == x.dtype else out.to(x.dtype)
    if x.numel() <= PACKED_ROWS * x.shape[-1]:
        return run(x)
    flat = x.reshape(-1, x.shape[-1])
    out = flat.new_empty(flat.shape[0], dense.out_features)
    for start in range(0, flat.shape[0], PACKED_ROWS):
        out[start:start + PACKED_ROWS] = run(flat[start:start + PACKED_ROWS])
    return out.view(*x.shape[:-1], dense.out_features)


def dense_gelu(dense: nn.Linear, x: Tensor) -> Tensor:
    """Exact (erf) GELU of dense(x); with a packed weight, oneDNN applies the GELU inside the matmul."""
    packed = packed_weight(dense, x)
    if packed is not None:
        return _packed_linear(dense, x, packed, gelu=True)
    return gelu_inplace(dense(x))
