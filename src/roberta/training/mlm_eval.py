"""Masked-LM figures that tell whether a model uses word order: accuracy, loss and the order gain.

order_gain = (loss with every sequence's unmasked tokens shuffled among their positions) - loss, in nats per
masked token. A model that only knows which words a sequence holds (the bag-of-words plateau masked-LM
training sits on before attention learns to use positions) scores ~0; a model that reads word order scores
well above it. `OrderProbe` logs these figures every N training steps, so a plateau shows early.

Shape legend: B batch, T tokens, N masked positions, V vocabulary.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F


def shuffle_context(ids: torch.Tensor, attention_mask: torch.Tensor, masked: torch.Tensor,
                    generator: torch.Generator) -> torch.Tensor:
    """(B, T) ids with each row's unmasked real tokens permuted among those positions; the rest unchanged."""
    out = ids.clone()
    for row in range(ids.shape[0]):
        where = ((attention_mask[row] == 1) & ~masked[row]).nonzero().squeeze(-1)
        out[row, where] = ids[row, where[torch.randperm(len(where), generator=generator)]]
    return out


@torch.no_grad()
def masked_lm_figures(model, batches, seed: int = 0) -> dict[str, float]:
    """accuracy, top5, loss and order_gain of `model` over masked `batches` (dicts with input_ids,
    attention_mask and labels, -100 where not masked). The model is put in eval mode and restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    n = correct = top5 = 0
    nll = shuffled_nll = 0.0
    try:
        for batch in batches:
            labels, mask = batch["labels"], batch["attention_mask"]
            where = labels != -100
            if not where.any():
                continue
            target = labels[where].to(device)
            logits = model(input_ids=batch["input_ids"].to(device), attention_mask=mask.to(device)).logits[where]
            shuffled = shuffle_context(batch["input_ids"], mask, where, generator)
            shuffled_logits = model(input_ids=shuffled.to(device), attention_mask=mask.to(device)).logits[where]
            nll += F.cross_entropy(logits.float(), target, reduction="sum").item()
            shuffled_nll += F.cross_entropy(shuffled_logits.float(), target, reduction="sum").item()
            best = logits.topk(min(5, logits.shape[-1]), dim=-1).indices  # (N, 5)
            correct += (best[:, 0] == target).sum().item()
            top5 += (best == target[:, None]).any(-1).sum().item()
            n += target.numel()
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("no masked tokens to evaluate: the evaluation text is empty")
    return {"masked_tokens": n, "accuracy": correct / n, "top5": top5 / n, "loss": nll / n,
            "shuffled_loss": shuffled_nll / n, "order_gain": (shuffled_nll - nll) / n}


class OrderProbe:
    """Trainer callback: every `every` steps, log masked-LM figures (order gain included) on a fixed sample.

    The sample (the first `max_examples` of `dataset`) is masked once, here, by `collator` (give the probe its
    own seeded collator, not the training one), so every probe sees the same masks and figures are comparable
    across steps and runs. Figures go to the trainer's log (train_log.jsonl) as `probe_*`.
    """

    def __init__(self, dataset, collator, every: int, max_examples: int = 256, batch_size: int = 32, seed: int = 0):
        if every <= 0:
            raise ValueError(f"the probe interval must be a positive number of steps, got {every}")
        rows = [dataset[i] for i in range(min(max_examples, len(dataset)))]
        self.batches = [collator(rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]
        self.every, self.seed = every, seed

    def __call__(self, trainer) -> None:
        step = trainer.state["global_step"]
        if step % self.every:
            return
        figures = masked_lm_figures(trainer.model, self.batches, seed=self.seed)
        log_path = Path(trainer.args.output_dir) / "train_log.jsonl"
        trainer._log(log_path, {"step": step, **{f"probe_{k}": v for k, v in figures.items()}})
