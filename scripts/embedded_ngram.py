"""Bidirectional n-gram baseline for masked-token prediction, on the same tokens and masked positions.

Two interpolated Kneser-Ney trigram models over the training text's BPE tokens (the embedded model's own
tokenizer, one `<s> line </s>` per line as the model is trained): one reads left to right, one right to left.
A masked token is predicted from its two left neighbours (left model), its two right neighbours (right
model), or both (the product of the two conditionals divided by the continuation unigram, so the prior is
counted once). A neighbour that is itself masked is unknown: the model backs off to the shorter context.
The figure reported is the best of the three (`best`), scored on the batches embedded_eval.py masks.

Counts are kept as sorted int64 keys (context * V + token) with np.unique, so the 9M-token corpus fits in a
few hundred MB and a context's row is two binary searches.
"""
from __future__ import annotations

import math

import numpy as np

DISCOUNT = 0.75


class KneserNeyTrigram:
    """P(w | a, b) by interpolated Kneser-Ney over a token stream; None stands for an unknown neighbour."""

    def __init__(self, stream: np.ndarray, vocab: int):
        self.V = V = vocab
        s = stream.astype(np.int64)
        self.tri_keys, self.tri_counts = np.unique((s[:-2] * V + s[1:-1]) * V + s[2:], return_counts=True)
        self.bi_keys, self.bi_counts = np.unique(s[:-1] * V + s[1:], return_counts=True)
        # continuation counts: in how many distinct contexts a token (bigram: a pair) follows something
        self.cont_uni = np.bincount(self.bi_keys % V, minlength=V).astype(np.float64)
        self.p_cont = (self.cont_uni + 1e-3) / (self.cont_uni + 1e-3).sum()
        pair_cont_keys, pair_cont = np.unique(self.tri_keys % (V * V), return_counts=True)  # N1+(. b w)
        self.pair_cont_keys, self.pair_cont = pair_cont_keys, pair_cont.astype(np.float64)

    def _row(self, keys, counts, context: int):
        lo, hi = np.searchsorted(keys, [context * self.V, (context + 1) * self.V])
        return keys[lo:hi] % self.V, counts[lo:hi].astype(np.float64)

    def _bigram(self, b: int) -> np.ndarray:
        """KN P(. | b), using continuation counts N1+(. b w) as the middle order does."""
        lo, hi = np.searchsorted(self.pair_cont_keys, [b * self.V, (b + 1) * self.V])
        words, counts = self.pair_cont_keys[lo:hi] % self.V, self.pair_cont[lo:hi]
        if counts.sum() == 0:
            return self.p_cont
        p = np.full(self.V, 0.0)
        p[words] = np.maximum(counts - DISCOUNT, 0) / counts.sum()
        return p + DISCOUNT * len(words) / counts.sum() * self.p_cont

    def probs(self, a, b) -> np.ndarray:
        """(V,) distribution of the next token after (a, b)."""
        if b is None:
            return self.p_cont
        lower = self._bigram(b)
        if a is None:
            return lower
        words, counts = self._row(self.tri_keys, self.tri_counts, a * self.V + b)
        if counts.sum() == 0:
            return lower
        p = np.full(self.V, 0.0)
        p[words] = np.maximum(counts - DISCOUNT, 0) / counts.sum()
        return p + DISCOUNT * len(words) / counts.sum() * lower


def training_stream(cache_folder, bos: int) -> np.ndarray:
    """The tokenized corpus (every line ended by `</s>`) with `<s>` before each line: `<s> line </s> <s> ...`."""
    from pathlib import Path

    from roberta.training.data import LineDataset

    data = LineDataset(Path(cache_folder), 3, bos, 0)  # reads the memory-mapped cache
    offsets = np.load(Path(cache_folder) / "offsets.npy")
    return np.insert(np.asarray(data.tokens, dtype=np.int64), offsets[:-1], bos)


def evaluate(left: KneserNeyTrigram, right: KneserNeyTrigram, batches) -> dict:
    """Accuracy and loss of left / right / both on the masked positions of `batches` (see module doc)."""
    hits = {"left": 0, "right": 0, "both": 0}
    nll = {"left": 0.0, "right": 0.0, "both": 0.0}
    n = 0
    for batch in batches:
        ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
        for row, col in (labels != -100).nonzero().tolist():
            length = int(mask[row].sum())
            seq = ids[row, :length].tolist()
            known = [None if t == -1 else t for t in (x if labels[row, j] == -100 else -1 for j, x in enumerate(seq))]
            a = known[col - 2] if col >= 2 else None
            b = known[col - 1] if col >= 1 else None
            c = known[col + 1] if col + 1 < length else None
            d = known[col + 2] if col + 2 < length else None
            p_left = left.probs(a if b is not None else None, b)
            p_right = right.probs(d if c is not None else None, c)
            both = p_left * p_right / left.p_cont
            both = both / both.sum()
            target = int(labels[row, col])
            for name, p in (("left", p_left), ("right", p_right), ("both", both)):
                hits[name] += int(np.argmax(p) == target)
                nll[name] -= math.log(max(p[target], 1e-12))
            n += 1
    out = {name: {"accuracy": hits[name] / n, "loss": nll[name] / n} for name in hits}
    best = max(out, key=lambda k: out[k]["accuracy"])
    out["best"] = {"variant": best, **out[best]}
    out["masked_tokens"] = n
    return out


def fit(train_files, tokenizer, cache_dir):
    """(left, right) trigram models on the training text, tokenized and split into lines as for pretraining."""
    from roberta.training.data import tokenize_corpus

    folder = tokenize_corpus(train_files, tokenizer, cache_dir=cache_dir, show_progress=False)
    stream = training_stream(folder, tokenizer.bos_token_id)
    return KneserNeyTrigram(stream, len(tokenizer)), KneserNeyTrigram(stream[::-1].copy(), len(tokenizer))

