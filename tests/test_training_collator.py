"""Collators: masking statistics, specials never masked, determinism, padding parity with transformers."""
from __future__ import annotations

import pytest
import torch

from roberta.training.collator import (DataCollatorForLanguageModeling, DataCollatorForMultipleChoice,
                                       DataCollatorForTokenClassification, DataCollatorWithPadding)
from test_training_helpers import single_thread  # noqa: F401  (autouse: one torch thread)
from test_training_helpers import WORDS, hf_tokenizer, load_tokenizer


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def _examples(tok, n=64, seed=0):
    """Sentences of varying length (so batches contain padding), with <s> ... </s>."""
    g = torch.Generator().manual_seed(seed)
    texts = [" ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (int(k),), generator=g))
             for k in torch.randint(5, 60, (n,), generator=g)]
    return [{"input_ids": ids} for ids in tok(texts)["input_ids"]]


def test_masking_statistics(tok):
    collator = DataCollatorForLanguageModeling(tok, seed=0)
    examples = _examples(tok, n=64)
    special = torch.tensor(sorted(set(tok.all_special_ids)))
    real = selected = to_mask = to_random = unchanged = 0
    for _ in range(60):  # ~200k real tokens
        batch = collator(examples)
        original = collator.pad(examples)["input_ids"]
        is_real = ~torch.isin(original, special)
        sel = batch["labels"] != -100
        assert not (sel & ~is_real).any(), "a special or padding token was selected"
        assert torch.equal(batch["labels"][sel], original[sel])
        assert torch.equal(batch["input_ids"][~sel], original[~sel]), "an unselected token changed"
        masked = sel & (batch["input_ids"] == tok.mask_token_id)
        changed = sel & ~masked & (batch["input_ids"] != original)
        assert not torch.isin(batch["input_ids"][changed], special).any(), "a random replacement was special"
        real += int(is_real.sum())
        selected += int(sel.sum())
        to_mask += int(masked.sum())
        to_random += int(changed.sum())
        unchanged += int((sel & ~masked & ~changed).sum())
    assert abs(selected / real - 0.15) < 0.005
    assert abs(to_mask / selected - 0.8) < 0.01
    # a random draw equal to the original (1 / ~379 of them) is indistinguishable from "unchanged"
    assert abs(to_random / selected - 0.1) < 0.01
    assert abs(unchanged / selected - 0.1) < 0.01


def test_random_replacements_cover_real_vocab_only(tok):
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=1.0, mask_replace_prob=0.0,
                                               random_replace_prob=1.0, seed=3)
    batch = collator(_examples(tok, n=64))
    drawn = batch["input_ids"][batch["labels"] != -100]
    assert drawn.numel() > 1000
    assert not torch.isin(drawn, torch.tensor(tok.all_special_ids)).any()
    assert len(drawn.unique()) > 0.9 * (len(tok) - len(set(tok.all_special_ids)))  # the whole real vocab is drawn


def test_same_seed_same_mask_new_mask_each_call(tok):
    examples = _examples(tok, n=16)
    a, b = DataCollatorForLanguageModeling(tok, seed=7), DataCollatorForLanguageModeling(tok, seed=7)
    first_a, first_b = a(examples), b(examples)
    assert torch.equal(first_a["labels"], first_b["labels"]) and torch.equal(first_a["input_ids"], first_b["input_ids"])
    second_a = a(examples)  # the next epoch over the same data: a fresh mask
    assert not torch.equal(first_a["labels"], second_a["labels"])
    other = DataCollatorForLanguageModeling(tok, seed=8)(examples)
    assert not torch.equal(first_a["labels"], other["labels"])


def test_numpy_batches_equal_torch_batches(tok):
    """return_tensors="np" (for JAX training) gives the same masks and padding as "pt", as numpy arrays."""
    import numpy as np

    examples = _examples(tok, n=8)
    pt = DataCollatorForLanguageModeling(tok, seed=3)(examples)
    arrays = DataCollatorForLanguageModeling(tok, seed=3, return_tensors="np")(examples)
    assert sorted(arrays) == sorted(pt) and all(isinstance(v, np.ndarray) for v in arrays.values())
    for key in pt:
        np.testing.assert_array_equal(arrays[key], pt[key].numpy())
    padded = DataCollatorWithPadding(tok, return_tensors="np")([{"input_ids": [0, 5, 2]}, {"input_ids": [0, 2]}])
    np.testing.assert_array_equal(padded["input_ids"], [[0, 5, 2], [0, 2, tok.pad_token_id]])
    with pytest.raises(ValueError, match="return_tensors must be 'pt'.*or 'np'.*got 'tf'"):
        DataCollatorWithPadding(tok, return_tensors="tf")


def test_generator_state_round_trip(tok):
    examples = _examples(tok, n=8)
    c = DataCollatorForLanguageModeling(tok, seed=1)
    c(examples)
    state = c.generator.get_state()
    expected = c(examples)
    c.generator.set_state(state)
    again = c(examples)
    assert torch.equal(expected["labels"], again["labels"])


def test_dataloader_workers_draw_different_masks(tok):
    """As the collate_fn of a 2-worker DataLoader: workers mask the same data differently, reproducibly."""
    examples = _examples(tok, n=8)

    def masks():
        loader = torch.utils.data.DataLoader([examples] * 4, batch_size=None, num_workers=2,
                                             collate_fn=DataCollatorForLanguageModeling(tok, seed=4))
        return [batch["labels"] for batch in loader]  # batches alternate between worker 0 and worker 1

    first, second = masks(), masks()
    assert not torch.equal(first[0], first[1])
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_same_structure_as_transformers_collator(tok):
    from transformers import DataCollatorForLanguageModeling as HFCollator

    hf = hf_tokenizer()
    examples = _examples(tok, n=8)
    ours = DataCollatorForLanguageModeling(tok, seed=0, pad_to_multiple_of=8)(examples)
    theirs = HFCollator(hf, seed=0, pad_to_multiple_of=8)([dict(e) for e in examples])
    assert set(ours) == set(theirs) == {"input_ids", "attention_mask", "labels"}
    for key in ours:
        assert ours[key].shape == theirs[key].shape and ours[key].dtype == theirs[key].dtype
    assert torch.equal(ours["attention_mask"], theirs["attention_mask"])
    assert ours["input_ids"].shape[1] % 8 == 0
    # no masking at all: both collators give identical batches
    ours0 = DataCollatorForLanguageModeling(tok, mlm_probability=0.0)(examples)
    theirs0 = HFCollator(hf, mlm_probability=0.0)([dict(e) for e in examples])
    for key in ours0:
        assert torch.equal(ours0[key], theirs0[key]), key
    # mlm=False: labels are the inputs with padding ignored, exactly as transformers
    ours_clm = DataCollatorForLanguageModeling(tok, mlm=False)(examples)
    theirs_clm = HFCollator(hf, mlm=False)([dict(e) for e in examples])
    assert all(torch.equal(ours_clm[k], theirs_clm[k]) for k in theirs_clm)


def test_accepts_tensors_and_plain_lists(tok):
    examples = _examples(tok, n=4)
    c = DataCollatorForLanguageModeling(tok, seed=0)
    from_lists = c([e["input_ids"] for e in examples])
    c = DataCollatorForLanguageModeling(tok, seed=0)
    from_tensors = c([{"input_ids": torch.tensor(e["input_ids"])} for e in examples])
    assert torch.equal(from_lists["labels"], from_tensors["labels"])


@pytest.mark.parametrize("kwargs, message", [
    ({"mlm_probability": 1.5}, "between 0 and 1"),
    ({"mask_replace_prob": 0.9, "random_replace_prob": 0.2}, "should not exceed 1"),
])
def test_validation(tok, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataCollatorForLanguageModeling(tok, **kwargs)


def test_padding_collators_match_transformers(tok):
    from transformers import DataCollatorForTokenClassification as HFTok
    from transformers import DataCollatorWithPadding as HFPad

    hf = hf_tokenizer()
    enc = tok(["a quick fox", "the lazy dog sleeps under a blue sky", "rain"])
    examples = [{"input_ids": ids, "attention_mask": m, "label": i} for i, (ids, m) in
                enumerate(zip(enc["input_ids"], enc["attention_mask"]))]
    ours, theirs = DataCollatorWithPadding(tok, pad_to_multiple_of=4)(examples), HFPad(hf, pad_to_multiple_of=4)(examples)
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    tagged = [{"input_ids": e["input_ids"], "labels": list(range(len(e["input_ids"])))} for e in examples]
    ours, theirs = DataCollatorForTokenClassification(tok)(tagged), HFTok(hf)(tagged)
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert (ours["labels"][2, len(tagged[2]["labels"]):] == -100).all()


def test_multiple_choice_collator(tok):
    enc = tok(["one", "two words", "three words here"])["input_ids"]
    batch = DataCollatorForMultipleChoice(tok)([{"input_ids": enc, "labels": 2}, {"input_ids": enc[::-1], "labels": 0}])
    assert batch["input_ids"].shape == (2, 3, max(map(len, enc)))
    assert batch["labels"].tolist() == [2, 0]
    assert batch["input_ids"][0, 0, len(enc[0]):].eq(tok.pad_token_id).all()
