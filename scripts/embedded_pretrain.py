"""Pretrain the embedded model with roberta.training.pretrain on a wall-clock budget.

RoBERTa's recipe (fairseq examples/roberta, base.yaml) at small scale, all from roberta.training:
  * MLM only, no NSP, no token types (type_vocab_size 1);
  * dynamic masking: a fresh 15% mask (80% <mask> / 10% random / 10% kept) each time a block is drawn;
  * full-sentence packing: every paragraph ends with </s>, the stream is cut into `<s> ... </s>` blocks that
    cross document boundaries;
  * AdamW betas (0.9, 0.98), eps 1e-6, weight decay 0.01 (not on biases/LayerNorm), dropout 0.1, clip 1.0.

The budget is in seconds, not steps: this machine's cores are shared, so the step rate drifts. The
WallClockBudget callback replaces the trainer's step-based schedule with linear warmup over
--warmup-steps, then linear decay over the *time* left, reaching 0 when the budget is spent, and stops
training there; so the run ends on schedule with a fully decayed model. Every --snapshot-every seconds it
also writes an HF-format snapshot (OUT/snapshot) so an intermediate model can ship if needed.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

log = logging.getLogger("embedded_pretrain")


class WallClockBudget:
    """Trainer callback: time-based LR decay, periodic snapshots, stop when the budget is spent."""

    def __init__(self, budget_s: float, peak_lr: float, warmup_steps: int, snapshot_dir: Path, snapshot_every: float):
        self.budget, self.peak, self.warmup = budget_s, peak_lr, warmup_steps
        self.snapshot_dir, self.snapshot_every = snapshot_dir, snapshot_every
        self.start = time.time()
        self.warm_t = None
        self.last_snapshot = self.start
        self.installed = False

    def lr_factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        elapsed = time.time() - self.start
        if self.warm_t is None:
            self.warm_t = elapsed  # decay spans the time left after warmup
        return max(0.0, 1 - (elapsed - self.warm_t) / max(1e-9, self.budget - self.warm_t))

    def __call__(self, trainer) -> None:
        from roberta.training.trainer import StopTraining

        if not self.installed:  # LambdaLR calls lr_lambdas[i](step) on every scheduler.step()
            trainer.scheduler.lr_lambdas = [self.lr_factor for _ in trainer.scheduler.lr_lambdas]
            self.installed = True
        now = time.time()
        if now - self.last_snapshot >= self.snapshot_every:
            trainer.save_model(self.snapshot_dir)
            self.last_snapshot = now
            log.info("snapshot at step %d -> %s", trainer.state["global_step"], self.snapshot_dir)
        if now - self.start >= self.budget:
            raise StopTraining


class AdaptiveThreads:
    """Trainer callback: 1 intra-op thread while the machine is oversubscribed, `max_threads` when it is not.

    On a 2-core machine shared with other jobs (load average 5-9), two OpenMP threads spend their time
    waiting for each other at every barrier: a step measured 10 s with 2 threads and 3-5 s with 1.
    """

    def __init__(self, max_threads: int, every: int = 10):
        self.max_threads, self.every, self.calls = max_threads, every, 0

    def __call__(self, trainer) -> None:
        self.calls += 1
        if self.calls % self.every:
            return
        busy = os.getloadavg()[0] > (os.cpu_count() or 1) + 0.5
        want = 1 if busy else self.max_threads
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)
            log.info("load %.1f: %d intra-op thread(s)", os.getloadavg()[0], want)


class TrimHeap:
    """Trainer callback: hand freed heap memory back to the OS every `every` steps (glibc only).

    The sparse MLM logits have a different row count every step, and glibc's malloc keeps the freed
    chunks of those varying-size buffers in the heap: the process grew by ~2.5 MB/s (3.5 GB of [heap] after
    8 minutes, 2.7 GB of it free); malloc_trim(0) gives it back.
    """

    def __init__(self, every: int = 50):
        self.every, self.calls = every, 0
        try:
            self.trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            self.trim = None

    def __call__(self, trainer) -> None:
        self.calls += 1
        if self.trim is not None and self.calls % self.every == 0:
            self.trim(0)


def load_tokenizer(folder: str, max_len: int):
    try:
        from roberta.tokenization import RobertaTokenizerFast
    except ImportError:  # ours not installed yet: transformers' gives the same ids from the same files
        from transformers import RobertaTokenizerFast
    return RobertaTokenizerFast.from_pretrained(folder, model_max_length=max_len)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True, nargs="+")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True, type=Path, help="output folder (final HF model, checkpoints, log)")
    ap.add_argument("--cache-dir", default=None, help="tokenized-corpus cache")
    ap.add_argument("--budget-s", type=float, default=35 * 60)
    ap.add_argument("--snapshot-every", type=float, default=600.0, help="seconds")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--warmup-steps", type=int, default=150)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (its effect on "
                    "the step rate: scripts/embedded_recipe_check.sh)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (a GPU trains this model ~100x faster)")
    ap.add_argument("--dropout", type=float, default=0.1,
                    help="hidden and attention dropout (also applied to an --init-from model's config)")
    ap.add_argument("--mask-replace-prob", type=float, default=0.8, help="share of selected tokens made <mask>")
    ap.add_argument("--random-replace-prob", type=float, default=0.1, help="share made a random token")
    ap.add_argument("--packing", choices=("full-sentences", "lines"), default="full-sentences")
    ap.add_argument("--group-by-length", action="store_true", help="batches of sentences of similar length")
    ap.add_argument("--eval", nargs="*", default=None, help="held-out text for the order probe")
    ap.add_argument("--probe-steps", type=int, default=None, help="log held-out accuracy and order gain every N steps")
    ap.add_argument("--init-from", default=None,
                    help="continue pretraining from this HF folder's weights (fresh optimizer and schedule)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    torch.set_num_threads(args.threads if os.getloadavg()[0] <= (os.cpu_count() or 1) else 1)

    from roberta.config import RobertaConfig
    from roberta.training import pretrain

    tokenizer = load_tokenizer(args.tokenizer, args.block_size)
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, intermediate_size=args.intermediate,
        max_position_embeddings=args.block_size + tokenizer.pad_token_id + 1,  # positions start at pad + 1
        type_vocab_size=1, layer_norm_eps=1e-5,
        hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout,
        architectures=["RobertaForMaskedLM"],
    )
    init = args.init_from
    if init is not None:
        from roberta.modeling import RobertaForMaskedLM

        init = RobertaForMaskedLM.from_pretrained(
            init, hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout)
    budget = WallClockBudget(args.budget_s, args.lr, args.warmup_steps, args.out / "snapshot", args.snapshot_every)
    metrics = pretrain(
        [Path(f) for f in args.train], tokenizer, args.out, config=config, model=init,
        max_seq_len=args.block_size,
        batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps, max_steps=10**7,
        weight_decay=0.01, max_grad_norm=1.0, seed=args.seed, bf16=args.bf16, compile=args.compile, log_every=25,
        cache_dir=args.cache_dir, device=args.device, show_progress=False,
        mask_replace_prob=args.mask_replace_prob, random_replace_prob=args.random_replace_prob,
        packing=args.packing, group_by_length=args.group_by_length, probe_steps=args.probe_steps,
        eval_files=[Path(f) for f in args.eval] if args.eval else None,
        callbacks=[budget, AdaptiveThreads(args.threads), TrimHeap()],
    )
    seconds = time.time() - budget.start
    from roberta.training.data import tokenize_corpus  # cached: returns the folder pretrain() just used

    corpus = tokenize_corpus([Path(f) for f in args.train], tokenizer, cache_dir=args.cache_dir, show_progress=False)
    train_tokens = json.loads((corpus / "meta.json").read_text())["num_tokens"]
    steps = metrics["global_step"]
    phase = {"steps": steps, "train_seconds": round(seconds), "peak_lr": args.lr, "warmup_steps": args.warmup_steps,
             "dropout": args.dropout, "seed": args.seed, "packing": args.packing,
             "mask_replace_prob": args.mask_replace_prob, "random_replace_prob": args.random_replace_prob,
             "batch_size": args.batch_size, "block_size": args.block_size, "group_by_length": args.group_by_length,
             "note": "weights of the previous phase, fresh AdamW state, new data order and masks"
             if args.init_from else "from scratch"}
    previous = Path(args.init_from or "") / "training_state.json"
    phases = [phase]
    if args.init_from and previous.is_file():  # continue the record of the run this one started from
        before = json.loads(previous.read_text())
        phases = before.get("phases") or [{k: before.get(k) for k in ("steps", "train_seconds", "peak_lr",
                                                                       "warmup_steps", "seed")}]
        phases = phases + [phase]
    total_steps = sum(p["steps"] for p in phases)
    # a phase record without batch/block sizes (an older run's) is taken to have used this run's
    tokens_seen = sum(p["steps"] * p.get("batch_size", args.batch_size) * p.get("block_size", args.block_size)
                      for p in phases)
    state = {"steps": total_steps, "tokens_seen": tokens_seen,
             "train_seconds": sum(p["train_seconds"] for p in phases), "train_tokens": train_tokens,
             "final_train_loss": metrics.get("train_loss"),
             "batch_size": args.batch_size, "block_size": args.block_size, "peak_lr": args.lr,
             "warmup_steps": args.warmup_steps, "budget_s": args.budget_s, "bf16": args.bf16,
             "threads": args.threads, "seed": args.seed, "init_from": args.init_from, "tokenizer_class": type(tokenizer).__module__,
             "parameters": sum(t.numel() for t in load_file(str(args.out / "model.safetensors")).values()),
             "phases": phases}
    (args.out / "training_state.json").write_text(json.dumps(state, indent=2) + "\n")
    log.info("done: %s", json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
