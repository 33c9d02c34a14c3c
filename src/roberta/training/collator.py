"""Batch collators: dynamic padding and dynamic MLM masking (transformers-compatible constructors).

Shape legend: B batch, T tokens.

The tokenizer is duck-typed: anything with `pad_token_id`, `mask_token_id`, `all_special_ids`, `len()` and
(optionally) `padding_side` works, ours or transformers'.

Deliberate difference from transformers: the 10% "random token" replacements are drawn from real vocabulary
tokens only (never `<s>`, `<pad>`, `</s>`, `<unk>`, `<mask>` or another special), as fairseq does
(transformers issue #15342 draws from the whole vocabulary).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

# Value a key is padded with when the tokenizer does not decide it (input_ids use pad_token_id).
_PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "special_tokens_mask": 1, "labels": -100}
# Keys that are per-token sequences (padded); every other key is one value per example (stacked).
_SEQUENCE_KEYS = {"input_ids", "attention_mask", "token_type_ids", "special_tokens_mask", "position_ids"}


def _as_list(value: Any) -> list:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    return list(value)


def _target_length(lengths: list[int], padding: bool | str, max_length: int | None, multiple: int | None) -> int:
    if padding == "max_length":
        if max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        length = max_length
    else:
        length = max(lengths) if lengths else 0
    if multiple:
        length = -(-length // multiple) * multiple
    return length


def pad_examples(
    examples: list,
    pad_token_id: int,
    padding_side: str = "right",
    padding: bool | str = True,
    max_length: int | None = None,
    pad_to_multiple_of: int | None = None,
    sequence_keys: set[str] | frozenset = frozenset(),
) -> dict[str, torch.Tensor]:
    """Pad a list of dicts (or of id lists / tensors) into a dict of (B, T) tensors.

    `sequence_keys` adds keys (e.g. "labels" for token classification) that are padded per token with
    `_PAD_VALUES`; other non-sequence keys are stacked as one value per example.
    """
    if not examples:
        raise ValueError("cannot collate an empty list of examples")
    if not isinstance(examples[0], Mapping):
        examples = [{"input_ids": example} for example in examples]
    if "input_ids" not in examples[0]:
        raise KeyError(f"examples need an 'input_ids' key, got keys {sorted(examples[0])}")
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    if pad_token_id is None:
        raise ValueError("the tokenizer has no pad token: set tokenizer.pad_token before padding batches")
    seq_keys = _SEQUENCE_KEYS | set(sequence_keys)
    ids = [_as_list(example["input_ids"]) for example in examples]
    do_pad = padding not in (False, "do_not_pad")
    length = _target_length([len(x) for x in ids], padding, max_length, pad_to_multiple_of) if do_pad else None
    batch: dict[str, torch.Tensor] = {}
    for key in examples[0]:
        values = [example[key] for example in examples]
        if key not in seq_keys:
            batch[key] = torch.as_tensor(values if not isinstance(values[0], torch.Tensor) else torch.stack(values))
            continue
        pad_value = pad_token_id if key == "input_ids" else _PAD_VALUES.get(key, 0)
        rows = [_as_list(v) for v in values]
        target = length if length is not None else len(rows[0])
        if key == "position_ids":
            pad_value = pad_token_id  # RoBERTa positions of padding are padding_idx
        padded = []
        for row in rows:
            if len(row) > target:
                raise ValueError(f"sequence of length {len(row)} is longer than the padded length {target}")
            fill = [pad_value] * (target - len(row))
            padded.append(row + fill if padding_side == "right" else fill + row)
        batch[key] = torch.tensor(padded, dtype=torch.long)
    if do_pad and "attention_mask" not in batch:
        mask = [[1] * len(x) + [0] * (length - len(x)) for x in ids]
        batch["attention_mask"] = torch.tensor([m if padding_side == "right" else m[::-1] for m in mask])
    return batch


class _PaddingCollator:
    """Shared constructor and padding for the collators below."""

    extra_sequence_keys: frozenset = frozenset()

    def __init__(self, tokenizer, padding: bool | str = True, max_length: int | None = None,
                 pad_to_multiple_of: int | None = None, return_tensors: str = "pt"):
        if return_tensors not in ("pt", "np"):
            raise ValueError(f"return_tensors must be 'pt' (torch tensors) or 'np' (numpy arrays, e.g. for JAX), "
                             f"got {return_tensors!r}")
        self.tokenizer = tokenizer
        self.padding = padding
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.return_tensors = return_tensors

    def pad(self, examples: list) -> dict[str, torch.Tensor]:
        examples = [_rename_labels(e) for e in examples] if examples and isinstance(examples[0], Mapping) else examples
        return pad_examples(
            examples,
            pad_token_id=self.tokenizer.pad_token_id,
            padding_side=getattr(self.tokenizer, "padding_side", "right"),
            padding=self.padding,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            sequence_keys=self.extra_sequence_keys,
        )

    def __call__(self, examples: list) -> dict[str, torch.Tensor]:
        return self._as_requested(self.pad(examples))

    def _as_requested(self, batch: dict[str, torch.Tensor]) -> dict:
        """The batch in the `return_tensors` format (the work is done in torch either way)."""
        return {k: v.numpy() for k, v in batch.items()} if self.return_tensors == "np" else batch


def _rename_labels(example: Mapping) -> dict:
    """transformers' collators accept "label" / "label_ids" and hand the model "labels"."""
    example = dict(example)
    for old in ("label", "label_ids"):
        if old in example:
            example["labels"] = example.pop(old)
    return example


class DataCollatorWithPadding(_PaddingCollator):
    """Pad to the longest example in the batch (or `max_length` / a multiple of `pad_to_multiple_of`)."""


class DataCollatorForTokenClassification(_PaddingCollator):
    """Pad inputs and per-token `labels` (labels padded with `label_pad_token_id`, -100 by default)."""

    extra_sequence_keys = frozenset({"labels"})

    def __init__(self, tokenizer, padding: bool | str = True, max_length: int | None = None,
                 pad_to_multiple_of: int | None = None, label_pad_token_id: int = -100, return_tensors: str = "pt"):
        super().__init__(tokenizer, padding, max_length, pad_to_multiple_of, return_tensors)
        self.label_pad_token_id = label_pad_token_id

    def pad(self, examples: list) -> dict[str, torch.Tensor]:
        batch = super().pad(examples)
        if "labels" in batch and self.label_pad_token_id != -100:
            labels = batch["labels"]
            real = batch["attention_mask"].bool() if "attention_mask" in batch else torch.ones_like(labels, dtype=torch.bool)
            batch["labels"] = torch.where(real, labels, torch.full_like(labels, self.label_pad_token_id))
        return batch


class DataCollatorForLanguageModeling(_PaddingCollator):
    """Dynamic masking for MLM: a fresh mask every time a batch is collated.

    Each real token (never a special token or padding) is selected with probability `mlm_probability`;
    selected tokens become `<mask>` with probability `mask_replace_prob`, a random real-vocabulary token with
    probability `random_replace_prob`, and stay unchanged otherwise. `labels` hold the original id at selected
    positions and -100 elsewhere. With `mlm=False`, labels are the inputs with padding set to -100.

    `generator` (a torch.Generator, seeded from `seed`) drives all masking randomness; the trainer saves and
    restores its state so resumed runs mask exactly like uninterrupted ones.
    """

    def __init__(self, tokenizer, mlm: bool = True, mlm_probability: float = 0.15, mask_replace_prob: float = 0.8,
                 random_replace_prob: float = 0.1, pad_to_multiple_of: int | None = None, return_tensors: str = "pt",
                 seed: int | None = None, whole_word_mask: bool = False, tf_experimental_compile: bool = False):
        super().__init__(tokenizer, padding=True, pad_to_multiple_of=pad_to_multiple_of, return_tensors=return_tensors)
        if whole_word_mask:
            raise ValueError("whole_word_mask is not supported by this collator (byte-level BPE has no word pieces)")
        for name, p in (("mlm_probability", mlm_probability), ("mask_replace_prob", mask_replace_prob),
                        ("random_replace_prob", random_replace_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} should be between 0 and 1, got {p}")
        if mask_replace_prob + random_replace_prob > 1:
            raise ValueError("The sum of mask_replace_prob and random_replace_prob should not exceed 1")
        if mlm and getattr(tokenizer, "mask_token_id", None) is None:
            raise ValueError(
                "This tokenizer does not have a mask token which is necessary for masked language modeling. "
                "You should pass `mlm=False` to train on causal language modeling instead."
            )
        self.mlm = mlm
        self.mlm_probability = mlm_probability
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.whole_word_mask = whole_word_mask
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self._worker_id = None  # DataLoader worker this copy reseeded for (see _worker_generator)
        special = {int(i) for i in getattr(tokenizer, "all_special_ids", []) if i is not None}
        special |= {i for i in (tokenizer.pad_token_id, getattr(tokenizer, "mask_token_id", None)) if i is not None}
        self._special_ids = torch.tensor(sorted(special), dtype=torch.long)
        vocab = torch.arange(len(tokenizer))
        self._random_pool = vocab[~torch.isin(vocab, self._special_ids)]  # real tokens only (see module doc)
        if mlm and random_replace_prob > 0 and len(self._random_pool) == 0:
            raise ValueError("the tokenizer has no non-special tokens to draw random replacements from")

    def __call__(self, examples: list) -> dict[str, torch.Tensor]:
        return self._as_requested(self.mask(self.pad(examples)))

    def mask(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Add `labels` to a padded batch and mask its `input_ids` (in a copy)."""
        batch = dict(batch)
        special_tokens_mask = batch.pop("special_tokens_mask", None)
        input_ids = batch["input_ids"]
        if self.mlm:
            batch["input_ids"], batch["labels"] = self.torch_mask_tokens(input_ids, special_tokens_mask)
        else:
            labels = input_ids.clone()
            labels[labels == self.tokenizer.pad_token_id] = -100
            batch["labels"] = labels
        return batch

    def _worker_generator(self) -> torch.Generator | None:
        """Inside DataLoader worker k, a seeded collator draws from seed + k (as transformers), so the
        workers' copies do not all repeat the same masks."""
        info = torch.utils.data.get_worker_info()
        if info is not None and self.seed is not None and self._worker_id != info.id:
            self.generator = torch.Generator().manual_seed(self.seed + info.id)
            self._worker_id = info.id
        return self.generator

    def torch_mask_tokens(self, inputs: torch.Tensor, special_tokens_mask: torch.Tensor | None = None):
        """(B, T) ids -> (masked ids, labels). Never selects specials or padding."""
        inputs = inputs.clone()
        labels = inputs.clone()
        never = torch.isin(inputs, self._special_ids)
        if special_tokens_mask is not None:
            never |= special_tokens_mask.bool()
        g = self._worker_generator()
        probs = torch.full(inputs.shape, self.mlm_probability).masked_fill_(never, 0.0)
        selected = torch.bernoulli(probs, generator=g).bool()
        labels[~selected] = -100
        to_mask = torch.bernoulli(torch.full(inputs.shape, self.mask_replace_prob), generator=g).bool() & selected
        inputs[to_mask] = self.tokenizer.mask_token_id
        remaining = 1.0 - self.mask_replace_prob
        if self.random_replace_prob == 0 or remaining <= 0:
            return inputs, labels
        scaled = min(1.0, self.random_replace_prob / remaining)  # share of the not-<mask> selected tokens
        to_random = torch.bernoulli(torch.full(inputs.shape, scaled), generator=g).bool() & selected & ~to_mask
        picks = torch.randint(len(self._random_pool), inputs.shape, generator=g)
        inputs[to_random] = self._random_pool[picks][to_random]
        return inputs, labels


class DataCollatorForMultipleChoice(_PaddingCollator):
    """Examples with per-choice sequences (`input_ids`: C lists) -> (B, C, T) tensors, padded together."""

    def pad(self, examples: list) -> dict[str, torch.Tensor]:
        examples = [_rename_labels(e) for e in examples]
        num_choices = len(examples[0]["input_ids"])
        if any(len(e["input_ids"]) != num_choices for e in examples):
            raise ValueError("every multiple-choice example in a batch needs the same number of choices")
        seq_keys = [k for k in examples[0] if k != "labels"]
        flat = [{k: e[k][c] for k in seq_keys} for e in examples for c in range(num_choices)]
        batch = super().pad(flat)
        batch = {k: v.view(len(examples), num_choices, -1) for k, v in batch.items()}
        if "labels" in examples[0]:
            batch["labels"] = torch.tensor([int(e["labels"]) for e in examples], dtype=torch.long)
        return batch
