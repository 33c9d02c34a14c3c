"""Padding and truncation: option parsing and the window arithmetic, shared by the slow and fast tokenizers.

Truncation follows the Rust `tokenizers` rules (what transformers' fast tokenizer does): for a pair under
`longest_first` the room is split evenly, the odd token going to the second sequence, and overflow windows
(`stride` tokens of overlap) are returned as extra rows for both tokenizers.
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

PADDING = {True: "longest", "longest": "longest", "max_length": "max_length", False: "do_not_pad",
           "do_not_pad": "do_not_pad", None: "do_not_pad"}
TRUNCATION = {True: "longest_first", "longest_first": "longest_first", "only_first": "only_first",
              "only_second": "only_second", False: "do_not_truncate", "do_not_truncate": "do_not_truncate"}


def resolve_strategies(padding, truncation, max_length, pad_to_multiple_of, model_max_length: int, verbose=True):
    """-> (padding strategy, truncation strategy, max_length) with transformers' defaulting rules."""
    padding = getattr(padding, "value", padding)
    truncation = getattr(truncation, "value", truncation)
    if padding not in PADDING:
        raise ValueError(f"padding={padding!r} is not one of True, False, 'longest', 'max_length', 'do_not_pad'")
    if truncation is not None and truncation not in TRUNCATION:
        raise ValueError(f"truncation={truncation!r} is not one of True, False, 'longest_first', 'only_first', "
                         f"'only_second', 'do_not_truncate'")
    if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 0):
        raise ValueError(f"max_length must be a non-negative int, got {max_length!r}")
    pad = PADDING[padding]
    if truncation is None:
        if max_length is not None and pad == "do_not_pad":
            if verbose:
                logger.warning("max_length was given without truncation: truncating with 'longest_first' "
                               "(pass truncation=True to silence this).")
            trunc = "longest_first"
        else:
            trunc = "do_not_truncate"
    else:
        trunc = TRUNCATION[truncation]
    if max_length is None:
        if pad == "max_length" or trunc != "do_not_truncate":
            max_length = model_max_length
    elif pad == "longest" and trunc == "do_not_truncate" and verbose:
        logger.warning("max_length is ignored when padding=True/'longest' without truncation.")
    if (pad != "do_not_pad" and trunc != "do_not_truncate" and pad_to_multiple_of and max_length is not None
            and max_length % pad_to_multiple_of):
        raise ValueError(f"Truncation and padding are both on but max_length={max_length} is not a multiple of "
                         f"pad_to_multiple_of={pad_to_multiple_of}.")
    return pad, trunc, max_length


def windows(n: int, keep: int, stride: int, side: str) -> list[tuple[int, int]]:
    """Split n tokens into windows of `keep` with `stride` overlap; the first is the kept part."""
    if keep >= n:
        return [(0, n)]
    if stride >= keep:
        raise ValueError(f"stride={stride} must be smaller than the {keep} tokens a truncated sequence keeps "
                         f"(lower stride or raise max_length)")
    step, out = keep - stride, []
    if side == "right":
        start = 0
        while True:
            stop = min(start + keep, n)
            out.append((start, stop))
            if stop == n:
                return out
            start += step
    stop = n
    while True:
        start = max(stop - keep, 0)
        out.append((start, stop))
        if start == 0:
            return out
        stop -= step


def truncate(len_a: int, len_b: int | None, strategy: str, room: int, stride: int, side: str, overflow: bool):
    """Row plans [(a_span, b_span_or_None)] for one sample; the first row is the truncated one, the rest the
    overflow (only when `overflow`), ordered like the Rust Encoding.merge_with cross product."""
    total = len_a + (len_b or 0)
    if strategy == "do_not_truncate" or total <= room:
        return [((0, len_a), None if len_b is None else (0, len_b))]
    if room <= 0:
        raise ValueError(f"max_length leaves no room for text after the special tokens ({total} text tokens to fit)")
    to_remove = total - room
    wa, wb = [(0, len_a)], None if len_b is None else [(0, len_b)]
    if strategy == "longest_first":
        if len_b is None:
            wa = windows(len_a, room, stride, side)
        else:
            n1, n2 = len_a, len_b
            swap = n1 > n2
            if swap:
                n1, n2 = n2, n1
            n2 = n1 if n1 > room else max(n1, room - n1)
            if n1 + n2 > room:
                n1 = room // 2
                n2 = n1 + room % 2
            if swap:
                n1, n2 = n2, n1
            wa, wb = windows(len_a, n1, stride, side), windows(len_b, n2, stride, side)
    elif strategy == "only_first":
        if len_a <= to_remove:
            raise ValueError(f"truncation='only_first' cannot fit max_length: the first sequence has {len_a} tokens "
                             f"but {to_remove} must go (the second has {len_b or 0}). Use 'longest_first' or a larger max_length.")
        wa = windows(len_a, len_a - to_remove, stride, side)
    elif strategy == "only_second":
        if len_b is None:
            raise ValueError("truncation='only_second' needs a pair of sequences (text_pair); this input is single")
        if len_b <= to_remove:
            raise ValueError(f"truncation='only_second' cannot fit max_length: the second sequence has {len_b} tokens "
                             f"but {to_remove} must go (the first has {len_a}). Use 'longest_first' or a larger max_length.")
        wb = windows(len_b, len_b - to_remove, stride, side)
    b0 = None if wb is None else wb[0]
    rows = [(wa[0], b0)]
    if overflow:
        for a in wa[1:]:
            rows.append((a, b0))
            rows.extend((a, b) for b in (wb or [])[1:])
        rows.extend((wa[0], b) for b in (wb or [])[1:])
    return rows


def padded_length(lengths: list[int], strategy: str, max_length: int | None, multiple: int | None) -> int | None:
    """Target row length for a batch, or None when nothing is padded."""
    if strategy == "do_not_pad" or not lengths:
        return None
    target = max(lengths) if strategy == "longest" else max_length
    if multiple and target % multiple:
        target = (target // multiple + 1) * multiple
    return target
