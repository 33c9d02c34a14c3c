"""Inference-only shortcuts that skip whole memory passes, with the same math as the plain modules.

Post-LN blocks end in `LayerNorm(dense(x) + residual)`. `nn.Linear` first copies its bias into a fresh output
(one pass), multiplies into it, and the residual add is another pass. `dense_add_residual` starts from
`residual + bias` (one pass) and lets the matrix multiply accumulate into that buffer in place (`addmm_`):
one pass fewer per block, ~8% faster on the attention output block and 2-5% on the FFN output block on CPU.
The sums are the same numbers added in another order (~5e-7 per block in fp32, ~4e-6 after 12 layers).

`gelu_inplace` applies exact GELU in place on the FFN's fresh (B, T, 4C) buffer: bit-identical, and it saves
allocating (and page-faulting) another buffer of that size in every layer.

Both apply only where autograd is off (no tensor needs these intermediates for a backward), no autocast is
active (its dtype casts do not cover in-place ops) and nothing is being compiled (the compiler fuses by itself).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def fast_inference(x: Tensor) -> bool:
    """True where the in-place shortcuts are safe for `x` (see the module docstring)."""
    return (not torch.is_grad_enabled() and not torch.compiler.is_compiling()
            and not _autocast_on(x.device.type))


def dense_add_residual(dense: nn.Linear, x: Tensor, residual: Tensor) -> Tensor:
    """dense(x) + residual, (..., Cin), (..., C) -> (..., C); one memory pass fewer where fast_inference(x)."""
    weight, bias = dense.weight, dense.bias
    if not (fast_inference(x) and bias is not None and x.dtype == weight.dtype == residual.dtype
            and residual.shape[:-1] == x.shape[:-1]):
        return dense(x) + residual
    out = torch.add(residual, bias)  # a fresh buffer: the caller's residual is untouched
    out.view(-1, out.shape[-1]).addmm_(x.reshape(-1, x.shape[-1]), weight.t())
    return out


def gelu_inplace(x: Tensor) -> Tensor:
    """Exact GELU; in place where fast_inference(x) (x must be a buffer nobody else reads)."""
    return torch.ops.aten.gelu_(x) if fast_inference(x) else F.gelu(x)
