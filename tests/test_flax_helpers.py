"""Shared pieces of the Flax tests: skip without jax, tiny configs, PyTorch twins and their Flax loads.

Flax models are cached per (class, config) for the whole session, so each compiled forward is reused
across tests (jit compile time, not the math, is what costs on a tiny model)."""
from __future__ import annotations

import functools
import tempfile

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="jax is not installed: pip install 'roberta[flax]' (bash dev.sh test does)")
pytest.importorskip("flax", reason="flax is not installed: pip install 'roberta[flax]' (bash dev.sh test does)")
import torch  # noqa: E402

import roberta  # noqa: E402
from roberta import RobertaConfig  # noqa: E402

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
HEADS = ["RobertaModel", "RobertaForMaskedLM", "RobertaForCausalLM", "RobertaForSequenceClassification",
         "RobertaForMultipleChoice", "RobertaForTokenClassification", "RobertaForQuestionAnswering"]
DECODER = (("is_decoder", True),)


def config(**extra) -> RobertaConfig:
    return RobertaConfig(**{**TINY, "num_labels": 3, **extra})


@functools.lru_cache(maxsize=None)
def twins(name: str, extra: tuple = ()):
    """(PyTorch model in eval mode, Flax model loaded from its saved folder) on one seeded set of weights."""
    torch.manual_seed(sum(map(ord, name)))
    labels = {"num_labels": 2} if name == "RobertaForQuestionAnswering" else {}  # start and end
    pt = getattr(roberta, name)(config(**labels, **dict(extra))).eval()
    folder = tempfile.mkdtemp(prefix="flax-twins-")
    pt.save_pretrained(folder)
    return pt, getattr(roberta, "Flax" + name).from_pretrained(folder), folder


def batch(padding: str | None = "right", B: int = 3, T: int = 9, seed: int = 0):
    """(B, T) ids with <s> ... </s> and padding on one side (rows of different lengths) and the mask."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, TINY["vocab_size"], size=(B, T))
    lengths = [T, T - 3, T - 5][:B] if padding else [T] * B
    mask = np.zeros((B, T), dtype=np.int64)
    for row, n in enumerate(lengths):
        span = slice(0, n) if padding != "left" else slice(T - n, T)
        mask[row, span] = 1
        start, end = span.start, span.stop - 1
        ids[row, start], ids[row, end] = 0, 2
    ids[mask == 0] = TINY["pad_token_id"]
    return ids, mask


def to_np(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


def assert_close(flax_value, pt_value, atol=1e-5):
    """Equal within atol, over nested tuples (hidden states, attentions)."""
    if isinstance(pt_value, (tuple, list)):
        assert len(flax_value) == len(pt_value)
        for a, b in zip(flax_value, pt_value):
            assert_close(a, b, atol)
        return
    a, b = to_np(flax_value), to_np(pt_value)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, atol=atol, rtol=0)
