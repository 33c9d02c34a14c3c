"""Evaluation metrics per task, as sums that add up across batches and ranks.

Each accumulator keeps a dict of float64 tensors (`stats`) that the trainer all-reduces (sum) before
`compute()`, so distributed evaluation needs no gathering of predictions.

Tasks: "mlm" (loss, perplexity, masked-token accuracy), "causal-lm" (loss, perplexity),
"sequence-classification" (accuracy, macro F1; MSE for regression), "multiple-choice" (accuracy),
"token-classification" (token accuracy, token-level micro F1 over non-"O" labels),
"question-answering" (exact match and F1 of the predicted token span against the gold span).
"""
from __future__ import annotations

import math

import torch

TASK_BY_CLASS_SUFFIX = {
    "ForMaskedLM": "mlm",
    "ForCausalLM": "causal-lm",
    "ForSequenceClassification": "sequence-classification",
    "ForTokenClassification": "token-classification",
    "ForQuestionAnswering": "question-answering",
    "ForMultipleChoice": "multiple-choice",
}


def task_of(model) -> str:
    """The task a model class trains for, from its class name (RobertaForMaskedLM -> "mlm")."""
    name = type(model).__name__
    for suffix, task in TASK_BY_CLASS_SUFFIX.items():
        if name.endswith(suffix):
            return task
    raise ValueError(f"cannot tell the task of a {name}; pass task= explicitly "
                     f"(one of {sorted(set(TASK_BY_CLASS_SUFFIX.values()))})")


class Metric:
    def __init__(self):
        self.stats: dict[str, torch.Tensor] = {}

    def add(self, **values) -> None:
        for key, value in values.items():
            value = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
            self.stats[key] = self.stats[key] + value if key in self.stats else value.clone()

    def update(self, batch: dict, outputs) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        raise NotImplementedError

    def _loss(self, batch, outputs, items: int) -> None:
        if getattr(outputs, "loss", None) is not None and items:
            self.add(loss_sum=outputs.loss.float() * items, loss_items=items)

    def _mean_loss(self) -> dict[str, float]:
        n = float(self.stats.get("loss_items", 0))
        return {"loss": float(self.stats["loss_sum"]) / n} if n else {}


class LanguageModelingMetric(Metric):
    def __init__(self, causal: bool = False):
        super().__init__()
        self.causal = causal

    def update(self, batch, outputs) -> None:
        labels = batch["labels"]
        if self.causal:
            items = int((labels[:, 1:] != -100).sum())
            self._loss(batch, outputs, items)
            return
        targets = labels[labels != -100]
        logits = outputs.logits
        if logits.dim() == 3:  # full (B, T, V) logits: keep the labelled positions -> (N, V)
            logits = logits[labels != -100]
        self._loss(batch, outputs, targets.numel())
        self.add(correct=(logits.argmax(-1) == targets).sum(), tokens=targets.numel())

    def compute(self) -> dict[str, float]:
        out = self._mean_loss()
        if "loss" in out:
            out["perplexity"] = math.exp(min(out["loss"], 700.0))
        if float(self.stats.get("tokens", 0)):
            out["accuracy"] = float(self.stats["correct"] / self.stats["tokens"])
        return out


def _class_counts(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, torch.Tensor]:
    """Per-class true positives, false positives and false negatives, as float64 vectors (C,)."""
    onehot_p = torch.nn.functional.one_hot(preds, num_classes).bool()
    onehot_l = torch.nn.functional.one_hot(labels, num_classes).bool()
    return {"tp": (onehot_p & onehot_l).sum(0), "fp": (onehot_p & ~onehot_l).sum(0),
            "fn": (~onehot_p & onehot_l).sum(0)}


class ClassificationMetric(Metric):
    """Sequence classification and multiple choice (argmax over the last dim of logits)."""

    def __init__(self, num_classes: int, macro_f1: bool = True):
        super().__init__()
        self.num_classes, self.macro_f1 = num_classes, macro_f1

    def update(self, batch, outputs) -> None:
        labels = batch["labels"]
        logits = outputs.logits.float()
        self._loss(batch, outputs, labels.shape[0])
        if labels.is_floating_point() or logits.shape[-1] == 1:  # regression / multi-label: loss and MSE only
            if logits.shape == labels.shape or logits.squeeze(-1).shape == labels.shape:
                self.add(sq_err=((logits.reshape(labels.shape) - labels.float()) ** 2).sum(), n=labels.numel())
            return
        preds = logits.argmax(-1)
        self.add(correct=(preds == labels).sum(), n=labels.numel())
        if self.macro_f1:
            self.add(**_class_counts(preds, labels, self.num_classes))

    def compute(self) -> dict[str, float]:
        out = self._mean_loss()
        n = float(self.stats.get("n", 0))
        if "sq_err" in self.stats and n:
            out["mse"] = float(self.stats["sq_err"]) / n
        if "correct" in self.stats and n:
            out["accuracy"] = float(self.stats["correct"]) / n
        if "tp" in self.stats:
            tp, fp, fn = self.stats["tp"], self.stats["fp"], self.stats["fn"]
            present = (tp + fn) > 0  # classes that occur in the labels
            f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
            out["f1"] = float(f1[present].mean()) if present.any() else 0.0
        return out


class TokenClassificationMetric(Metric):
    def __init__(self, outside_label: int | None = None):
        super().__init__()
        self.outside = outside_label  # the "O" class id; None: every class counts as an entity class

    def update(self, batch, outputs) -> None:
        labels = batch["labels"]
        keep = labels != -100
        preds = outputs.logits.argmax(-1)[keep]
        gold = labels[keep]
        self._loss(batch, outputs, gold.numel())
        pos_p = preds != self.outside if self.outside is not None else torch.ones_like(preds, dtype=torch.bool)
        pos_g = gold != self.outside if self.outside is not None else torch.ones_like(gold, dtype=torch.bool)
        self.add(correct=(preds == gold).sum(), n=gold.numel(), tp=((preds == gold) & pos_p).sum(),
                 pred_pos=pos_p.sum(), gold_pos=pos_g.sum())

    def compute(self) -> dict[str, float]:
        out = self._mean_loss()
        s = {k: float(v) for k, v in self.stats.items()}
        if s.get("n"):
            out["accuracy"] = s["correct"] / s["n"]
            precision = s["tp"] / s["pred_pos"] if s["pred_pos"] else 0.0
            recall = s["tp"] / s["gold_pos"] if s["gold_pos"] else 0.0
            out.update(precision=precision, recall=recall,
                       f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        return out


def best_spans(start_logits: torch.Tensor, end_logits: torch.Tensor, max_answer_tokens: int = 30):
    """(B, T) start/end logits -> (B,) start and end indices maximising start+end with start <= end."""
    scores = start_logits.float().unsqueeze(2) + end_logits.float().unsqueeze(1)  # (B, T, T)
    T = scores.shape[-1]
    i = torch.arange(T, device=scores.device)
    allowed = (i[None, :] >= i[:, None]) & (i[None, :] - i[:, None] < max_answer_tokens)
    scores = scores.masked_fill(~allowed, float("-inf")).flatten(1)
    best = scores.argmax(-1)
    return best // T, best % T


class SpanMetric(Metric):
    """Question answering: exact match and token-overlap F1 of the predicted span vs the gold token span."""

    def update(self, batch, outputs) -> None:
        start, end = batch["start_positions"], batch["end_positions"]
        self._loss(batch, outputs, start.shape[0])
        ps, pe = best_spans(outputs.start_logits, outputs.end_logits)
        overlap = (torch.minimum(pe, end) - torch.maximum(ps, start) + 1).clamp(min=0).double()
        p_len, g_len = (pe - ps + 1).double(), (end - start + 1).double()
        f1 = torch.where(overlap > 0, 2 * overlap / (p_len + g_len), torch.zeros_like(overlap))
        self.add(exact=((ps == start) & (pe == end)).sum(), f1_sum=f1.sum(), n=start.shape[0])

    def compute(self) -> dict[str, float]:
        out = self._mean_loss()
        n = float(self.stats.get("n", 0))
        if n:
            out.update(exact_match=float(self.stats["exact"]) / n, f1=float(self.stats["f1_sum"]) / n)
        return out


def metric_for(task: str, model=None) -> Metric:
    config = getattr(model, "config", None)
    if task == "mlm":
        return LanguageModelingMetric()
    if task == "causal-lm":
        return LanguageModelingMetric(causal=True)
    if task == "sequence-classification":
        return ClassificationMetric(getattr(config, "num_labels", 2))
    if task == "multiple-choice":
        return ClassificationMetric(1, macro_f1=False)
    if task == "token-classification":
        label2id = getattr(config, "label2id", None) or {}
        return TokenClassificationMetric(label2id.get("O"))
    if task == "question-answering":
        return SpanMetric()
    raise ValueError(f"unknown task {task!r}")
