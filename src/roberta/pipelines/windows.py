"""Overlapping token windows for texts longer than the model's limit (token-classification, question-answering).

The windows are the ones the `tokenizers` library makes for `return_overflowing_tokens=True, stride=s`:
starts at 0, w - s, 2(w - s), ... each w tokens long, the last one ending at the text's end. Computing them
here (instead of asking the tokenizer to overflow) keeps one tokenization of the whole text, whose offsets and
word ids every window shares.
"""
from __future__ import annotations


def split_windows(n_tokens: int, width: int, stride: int) -> list[tuple[int, int]]:
    """[(start, stop)] token ranges of width `width` overlapping by `stride` tokens, covering range(n_tokens)."""
    if width < 1:
        raise ValueError(f"no room left for text tokens in a window (width {width}); shorten the question or raise max_seq_len")
    if not 0 <= stride < width:
        raise ValueError(f"the stride ({stride}) must be at least 0 and smaller than the window's text width ({width})")
    windows, start = [], 0
    while True:
        stop = min(start + width, n_tokens)
        windows.append((start, stop))
        if stop >= n_tokens:
            return windows
        start += width - stride


def best_window_per_token(windows: list[tuple[int, int]], n_tokens: int) -> list[tuple[int, int]]:
    """For each token, (window index, position in window) of the window where it sits furthest from an edge.

    A token near a window's edge has seen little context on one side, so where windows overlap the
    prediction comes from the window that centres it best.
    """
    best: list[tuple[int, int]] = [(-1, -1)] * n_tokens
    margin = [-1] * n_tokens
    for w, (start, stop) in enumerate(windows):
        for i in range(start, stop):
            room = min(i - start, stop - 1 - i)
            if room > margin[i]:
                margin[i] = room
                best[i] = (w, i - start)
    return best
