"""Helpers shared by the test_modeling_* files: tiny configs and twin models (ours and transformers' with
identical weights). No tests here."""
import pytest
import torch

transformers = pytest.importorskip("transformers")

import roberta.modeling as ours_mod  # noqa: E402
from roberta.config import RobertaConfig  # noqa: E402

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)

CLASSES = ["RobertaModel", "RobertaForMaskedLM", "RobertaForCausalLM", "RobertaForSequenceClassification",
           "RobertaForMultipleChoice", "RobertaForTokenClassification", "RobertaForQuestionAnswering"]


def configs(**overrides):
    """(ours, transformers') configs with the same values."""
    kw = {**TINY, **overrides}
    impl = kw.pop("attn_implementation", None)
    ours_cfg, theirs_cfg = RobertaConfig(**kw), transformers.RobertaConfig(**kw)
    if impl is not None:
        ours_cfg._attn_implementation = impl
        theirs_cfg._attn_implementation = impl
    return ours_cfg, theirs_cfg


def twins(name="RobertaModel", seed=0, **overrides):
    """(ours, theirs) of class `name`, eval mode, ours holding a copy of theirs' random weights."""
    ours_cfg, theirs_cfg = configs(**overrides)
    torch.manual_seed(seed)
    theirs = getattr(transformers, name)(theirs_cfg).eval()
    ours = getattr(ours_mod, name)(ours_cfg).eval()
    result = ours.load_state_dict(theirs.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    return ours, theirs


def batch(seed=0, B=3, T=9, padding="right"):
    """Random ids (3.. vocab) with row 1 padded (pad id 1) on the given side, and the attention mask."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, TINY["vocab_size"], (B, T), generator=g)
    ids[:, 0] = 0
    mask = torch.ones(B, T, dtype=torch.long)
    if padding == "right":
        ids[1, T - 3:] = 1
        mask[1, T - 3:] = 0
    elif padding == "left":
        ids[1, :3] = 1
        mask[1, :3] = 0
    return ids, mask


def assert_close(a, b, atol=1e-5, rtol=1e-4):
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_close(x, y, atol, rtol)
        return
    torch.testing.assert_close(a, b, atol=atol, rtol=rtol)
