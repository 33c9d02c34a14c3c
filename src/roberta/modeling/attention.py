"""Attention: the mask (built once per forward), one attention function, and the attention sublayer.

Shape legend: B batch, T query tokens, S key tokens (past + current), H heads, D head dim, C hidden.

The mask is an additive bias (0 where a key may be attended, finfo.min where not), the same numbers
transformers uses, so eager and SDPA agree with it bit for bit where it matters. Building it once in
the model (not per layer) and returning None when nothing is masked keeps SDPA on its fastest path.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .fused import dense_add_norm, linear, tracing

logger = logging.getLogger(__name__)
Tensor = torch.Tensor

ATTN_IMPLEMENTATIONS = ("sdpa", "eager")
_warned: set[str] = set()


def warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


@dataclass
class AttentionMask:
    """What every layer needs to mask attention, computed once per forward.

    bias: additive float (B|1, 1|H, T|1, S) in the compute dtype, or None (nothing masked).
    is_causal: True when bias is None but the attention is causal (lets SDPA use its causal kernel).
    row_keep: (B, 1, T, 1) 0/1 in the compute dtype, or None; zeroes query rows that may attend to no key
        at all (e.g. an all-padding row), which would otherwise average garbage or, with -inf masks, give NaN.
    """

    bias: Optional[Tensor] = None
    is_causal: bool = False
    row_keep: Optional[Tensor] = None


def _causal_keep(T: int, S: int, device) -> Tensor:
    """(T, S) bool: query i (at absolute position S - T + i) may see keys 0 .. S - T + i."""
    q = torch.arange(S - T, S, device=device)[:, None]
    return torch.arange(S, device=device)[None, :] <= q


def _from_keep(keep: Tensor, dtype: torch.dtype) -> AttentionMask:
    bias = torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill_(~keep, torch.finfo(dtype).min)
    return AttentionMask(bias=bias, row_keep=_row_keep(keep.any(dim=-1, keepdim=True), dtype))


def _row_keep(rows: Tensor, dtype: torch.dtype) -> Optional[Tensor]:
    """(..., T, 1) bool "this query row sees some key" -> the 0/1 multiplier, or None when every row does.
    Under a tracer the multiplier is always kept: a graph records one branch, and the next input may have
    a fully masked row where the example had none."""
    if tracing() or not bool(rows.all()):
        return rows.to(dtype)
    return None


def build_attention_mask(mask: Optional[Tensor], batch: int, query_len: int, past_len: int, dtype: torch.dtype,
                         device, causal: bool, name: str = "attention_mask", key_len: Optional[int] = None
                         ) -> AttentionMask:
    """Turn a user mask into an AttentionMask.

    mask: None; (B, S) with 1 = attend, 0 = padding; (B, T, S) the same per query; (B, 1|H, T, S) either
    bool (True = attend), integer 0/1, or a float additive bias used as given (-inf is clamped to
    finfo.min so a fully masked row cannot produce NaN). `causal` adds the decoder's causal mask to 2-D
    masks (as transformers does; 3-D and 4-D masks are taken as complete).
    """
    S = key_len if key_len is not None else past_len + query_len
    if mask is not None and mask.dim() == 2:
        if mask.shape != (batch, S):  # (a torch.Size compares with a tuple; tuple() of a traced shape fails)
            raise ValueError(f"{name} has shape {tuple(mask.shape)} but (batch, keys) = ({batch}, {S}) was expected"
                             + (f" (past length {past_len} + {query_len} new tokens)" if past_len else ""))
        if _all_ones(mask):
            mask = None  # nothing masked: no bias, so SDPA can use its fastest kernel
    if mask is None:
        if not causal or query_len == 1:
            return AttentionMask()
        if past_len == 0:
            return AttentionMask(is_causal=True)
        return _from_keep(_causal_keep(query_len, S, device)[None, None], dtype)
    if mask.dim() == 2:
        keep = mask.to(device=device) != 0
        keep = keep[:, None, None, :]  # (B, 1, 1, S)
        if causal and query_len > 1:
            keep = keep & _causal_keep(query_len, S, device)[None, None]  # (B, 1, T, S)
        return _from_keep(keep, dtype)
    if mask.dim() == 3:
        if mask.shape[0] != batch or mask.shape[-1] != S:
            raise ValueError(f"3-D {name} has shape {tuple(mask.shape)}; expected (batch={batch}, queries, keys={S})")
        return _from_keep(mask.to(device=device)[:, None] != 0, dtype)
    if mask.dim() == 4:
        if mask.shape[-1] != S or mask.shape[0] not in (1, batch):
            raise ValueError(f"4-D {name} has shape {tuple(mask.shape)}; expected (batch={batch}, 1 or heads, "
                             f"queries, keys={S})")
        mask = mask.to(device=device)
        if mask.is_floating_point():
            minimum = torch.finfo(dtype).min
            bias = mask.to(dtype).clamp(min=minimum)
            rows = (bias > minimum / 2).any(dim=-1, keepdim=True)
            return AttentionMask(bias=bias, row_keep=_row_keep(rows, dtype))
        return _from_keep(mask != 0, dtype)
    raise ValueError(f"{name} must be 2-D (batch, keys), 3-D (batch, queries, keys) or 4-D (batch, 1, queries, "
                     f"keys); got a {mask.dim()}-D tensor of shape {tuple(mask.shape)}")


def _all_ones(mask: Tensor) -> bool:
    """A shortcut on the mask's values: off under every tracer (jit, ONNX, torch.export, FX, dynamo), where an
    unpadded example would otherwise drop the mask from the graph for every later (padded) input."""
    return not tracing() and bool(mask.all())


def attention(q: Tensor, k: Tensor, v: Tensor, mask: AttentionMask, *, dropout_p: float = 0.0,
              eager: bool = False, head_mask: Optional[Tensor] = None,
              extra_scores: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
    """q (B, H, T, D), k/v (B, H, S, D) -> context (B, T, H*D) and, on the eager branch, probs (B, H, T, S).

    The fast path is one SDPA call. The eager branch (attention weights wanted, head_mask, or
    attn_implementation="eager") does the same math by hand; softmax runs in float32 so fp16/bf16 stay safe.
    `extra_scores` (B, H, T, S) are added to q.k before scaling (relative position scores); SDPA takes them
    folded into its float mask.
    """
    B, H, T, D = q.shape
    if not eager and head_mask is None:
        bias, causal = mask.bias, mask.is_causal and mask.bias is None
        if extra_scores is not None:
            bias = extra_scores / math.sqrt(D) + (bias if bias is not None else 0)
            if causal:
                bias = bias.masked_fill(~_causal_keep(T, k.shape[-2], q.device), torch.finfo(bias.dtype).min)
                causal = False
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p, is_causal=causal)
        probs = None
    else:
        scores = torch.matmul(q, k.transpose(-1, -2))
        if extra_scores is not None:
            scores = scores + extra_scores
        scores = scores / math.sqrt(D)  # (B, H, T, S)
        if mask.bias is not None:
            scores = scores + mask.bias
        elif mask.is_causal:
            keep = _causal_keep(T, k.shape[-2], q.device)
            scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        if dropout_p > 0.0:
            probs = F.dropout(probs, p=dropout_p, training=True)
        if head_mask is not None:
            probs = probs * head_mask
        out = torch.matmul(probs, v)
    if mask.row_keep is not None:
        out = out * mask.row_keep
    return out.transpose(1, 2).reshape(B, T, H * D), probs


class RobertaSelfAttention(nn.Module):
    """query/key/value projections (state-dict names `query`, `key`, `value`) around `attention()`."""

    def __init__(self, config, layer_idx: int = 0, is_cross_attention: bool = False):
        super().__init__()
        if config.hidden_size % config.num_attention_heads != 0:
            raise ValueError(f"The hidden size ({config.hidden_size}) is not a multiple of the number of attention "
                             f"heads ({config.num_attention_heads})")
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Linear(config.hidden_size, self.all_head_size)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = nn.Linear(config.hidden_size, self.all_head_size)
        self.dropout_prob = config.attention_probs_dropout_prob
        self.layer_idx = layer_idx
        self.is_cross_attention = is_cross_attention
        # relative positions (Shaw et al.; Huang et al.) live in self-attention only, as in transformers
        self.position_embedding_type = "absolute" if is_cross_attention else \
            (getattr(config, "position_embedding_type", "absolute") or "absolute")
        if self.position_embedding_type not in ("absolute", "relative_key", "relative_key_query"):
            raise ValueError(f"Unknown position_embedding_type {self.position_embedding_type!r}; expected 'absolute', "
                             "'relative_key' or 'relative_key_query'")
        if self.position_embedding_type != "absolute":
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = nn.Embedding(2 * config.max_position_embeddings - 1, self.attention_head_size)

    def _heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_attention_heads, self.attention_head_size).transpose(1, 2)  # (B, H, T, D)

    def forward(self, hidden_states: Tensor, mask: AttentionMask, head_mask: Optional[Tensor] = None,
                encoder_hidden_states: Optional[Tensor] = None, cache=None, eager: bool = False,
                kv_states: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
        """hidden_states (B, T, C) -> (B, T, C), probs. `kv_states` (B, S, C) gives keys/values from other rows
        than the queries (used when only some query rows are needed); `cache` is a KeyValueCache."""
        q = self._heads(linear(self.query, hidden_states))
        if self.is_cross_attention:
            cached = cache.get_cross(self.layer_idx) if cache is not None else None
            if cached is not None:
                k, v = cached
            else:
                k = self._heads(linear(self.key, encoder_hidden_states))
                v = self._heads(linear(self.value, encoder_hidden_states))
                if cache is not None:
                    cache.set_cross(k, v, self.layer_idx)
        else:
            source = hidden_states if kv_states is None else kv_states
            k = self._heads(linear(self.key, source))
            v = self._heads(linear(self.value, source))
            if cache is not None:
                k, v = cache.update(k, v, self.layer_idx)
        dropout_p = self.dropout_prob if self.training else 0.0
        extra = self._relative_scores(q, k) if self.position_embedding_type != "absolute" else None
        return attention(q, k, v, mask, dropout_p=dropout_p, eager=eager, head_mask=head_mask, extra_scores=extra)

    def _relative_scores(self, q: Tensor, k: Tensor) -> Tensor:
        """(B, H, T, S) scores from the learned embedding of each query-key distance. Queries are the last T of
        the S positions (with a cache, transformers assumes T == 1; this is the same there and right for T > 1)."""
        T, S = q.shape[-2], k.shape[-2]
        left = torch.arange(S - T, S, device=q.device)[:, None]
        right = torch.arange(S, device=q.device)[None, :]
        table = self.distance_embedding(left - right + self.max_position_embeddings - 1).to(q.dtype)  # (T, S, D)
        scores = torch.einsum("bhld,lrd->bhlr", q, table)
        if self.position_embedding_type == "relative_key_query":
            scores = scores + torch.einsum("bhrd,lrd->bhlr", k, table)
        return scores


class RobertaSelfOutput(nn.Module):
    """dense -> dropout -> LayerNorm(x + residual): the post-LN residual block."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: Tensor, input_tensor: Tensor) -> Tensor:
        return dense_add_norm(self.dense, self.LayerNorm, hidden_states, input_tensor,
                              self.dropout if self.training else None)


class RobertaAttention(nn.Module):
    """`self` (projections + attention) and `output` (residual block); names match the state dict."""

    def __init__(self, config, layer_idx: int = 0, is_cross_attention: bool = False):
        super().__init__()
        self.self = RobertaSelfAttention(config, layer_idx, is_cross_attention)
        self.output = RobertaSelfOutput(config)
        self.pruned_heads: set[int] = set()

    def prune_heads(self, heads) -> None:
        """Remove these heads (indices as in the unpruned layer; ones already gone are skipped): fewer rows in
        query/key/value, fewer input columns in output.dense."""
        attn = self.self
        heads = set(heads) - self.pruned_heads
        if not heads:
            return
        current = {h - sum(p < h for p in self.pruned_heads) for h in heads}  # index among the remaining heads
        keep_heads = [h for h in range(attn.num_attention_heads) if h not in current]
        D = attn.attention_head_size
        index = torch.tensor([h * D + d for h in keep_heads for d in range(D)], dtype=torch.long)
        for name in ("query", "key", "value"):
            setattr(attn, name, _keep_rows(getattr(attn, name), index, dim=0))
        self.output.dense = _keep_rows(self.output.dense, index, dim=1)
        attn.num_attention_heads = len(keep_heads)
        attn.all_head_size = D * len(keep_heads)
        self.pruned_heads |= heads

    def forward(self, hidden_states: Tensor, mask: AttentionMask, head_mask=None, encoder_hidden_states=None,
                cache=None, eager: bool = False, kv_states: Optional[Tensor] = None):
        context, probs = self.self(hidden_states, mask, head_mask, encoder_hidden_states, cache, eager, kv_states)
        return self.output(context, hidden_states), probs


@torch.no_grad()
def _keep_rows(layer: nn.Linear, index: Tensor, dim: int) -> nn.Linear:
    """A new Linear with only the output rows (dim=0) or input columns (dim=1) `index` of `layer`."""
    index = index.to(layer.weight.device)
    weight = layer.weight.index_select(dim, index)
    out_features, in_features = weight.shape
    new = nn.Linear(in_features, out_features, bias=layer.bias is not None, device=weight.device, dtype=weight.dtype)
    new.weight.copy_(weight)
    if layer.bias is not None:
        new.bias.copy_(layer.bias[index] if dim == 0 else layer.bias)
    new.weight.requires_grad_(layer.weight.requires_grad)
    return new
