"""Pretrain the embedded model on a wall-clock budget (RoBERTa recipe, small scale).

RoBERTa's recipe (fairseq examples/roberta, base.yaml) at small scale:
  * MLM only, no NSP, no token types (type_vocab_size 1);
  * dynamic masking: a fresh 15% mask (80% <mask> / 10% random / 10% kept) every time a block is drawn
    (roberta.training.collator.DataCollatorForLanguageModeling);
  * full-sentence packing: every paragraph ends with </s>, the stream is cut into `<s> ... </s>` blocks that
    cross document boundaries (roberta.training.data.PackedDataset);
  * Adam(W) betas (0.9, 0.98), eps 1e-6, weight decay 0.01, linear warmup then linear decay to 0, dropout 0.1.

The budget is in seconds, not steps: this machine's cores are shared, so the step rate drifts. After the
warmup steps, the learning rate decays linearly in *elapsed time*, reaching 0 when the budget is spent, so
the run always ends on schedule with a fully decayed model. A checkpoint (HF folder: config, safetensors,
tokenizer files) is written every --checkpoint-every seconds and at the end, atomically.

Model and tokenizer classes are ours (roberta.modeling / roberta.tokenization); --reference uses
transformers' classes instead (same state-dict keys and files), a fallback while ours are unavailable.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
from pathlib import Path

import torch

from embedded_export import replace_dir  # scripts/ is on sys.path when this file is run

log = logging.getLogger("embedded_pretrain")


def build(tokenizer_dir: str, args, reference: bool):
    if reference:
        from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast
    else:
        from roberta.config import RobertaConfig
        from roberta.modeling import RobertaForMaskedLM
        from roberta.tokenization import RobertaTokenizerFast
    tokenizer = RobertaTokenizerFast.from_pretrained(tokenizer_dir, model_max_length=args.block_size)
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, intermediate_size=args.intermediate,
        max_position_embeddings=args.block_size + 2,  # positions start at padding_idx + 1 = 2
        type_vocab_size=1, layer_norm_eps=1e-5, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, architectures=["RobertaForMaskedLM"],
    )
    torch.manual_seed(args.seed)
    return tokenizer, RobertaForMaskedLM(config)


def save(model, tokenizer, out: Path, meta: dict) -> None:
    """Write an HF folder atomically (tmp sibling, then rename over the old one)."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "training_state.json").write_text(json.dumps(meta, indent=2) + "\n")
    replace_dir(tmp, out)


def param_groups(model, weight_decay: float):
    """No weight decay on biases and LayerNorm weights (as fairseq and HF's Trainer)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def mlm_loss(model, batch):
    """MLM loss with vocabulary logits only at the masked positions (~15% of tokens).

    The 8192-way decoder costs about as much as the whole 4-layer encoder per token, so computing it only
    where labels exist (as ModernBERT's head and our `sparse_logits=True`) saves ~35% of a step. Written
    against the module names both implementations share (`roberta`, `lm_head`).
    """
    labels = batch["labels"]
    hidden = model.roberta(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]  # (B, T, C)
    where = labels != -100
    logits = model.lm_head(hidden[where])  # (N, V)
    return torch.nn.functional.cross_entropy(logits.float(), labels[where])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True, nargs="+")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True, type=Path, help="checkpoint folder (HF format)")
    ap.add_argument("--cache-dir", default=None, help="tokenized-corpus cache")
    ap.add_argument("--budget-s", type=float, default=35 * 60)
    ap.add_argument("--max-steps", type=int, default=10**9)
    ap.add_argument("--checkpoint-every", type=float, default=300.0, help="seconds")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=7e-4)
    ap.add_argument("--warmup-steps", type=int, default=150)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast on CPU")
    ap.add_argument("--reference", action="store_true", help="transformers' model/tokenizer classes")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    torch.set_num_threads(args.threads)

    from roberta.training.collator import DataCollatorForLanguageModeling
    from roberta.training.data import build_pretraining_dataset

    tokenizer, model = build(args.tokenizer, args, args.reference)
    data = build_pretraining_dataset([Path(f) for f in args.train], tokenizer, block_size=args.block_size,
                                     cache_dir=args.cache_dir, show_progress=False)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %.2fM parameters, %d blocks of %d tokens (%.1fM tokens)", n_params / 1e6, len(data),
             args.block_size, len(data) * args.block_size / 1e6)

    opt = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed))
    model.train()
    start = last_ckpt = time.time()
    step, cursor, epoch, tokens, smooth, warm_t = 0, 0, 0, 0, None, 0.0
    meta = {}
    while step < args.max_steps:
        elapsed = time.time() - start
        if elapsed >= args.budget_s:
            break
        # Linear warmup by steps, then linear decay over the wall-clock time left after warmup, to 0 at the budget.
        if step < args.warmup_steps:
            lr = args.lr * (step + 1) / args.warmup_steps
        else:
            lr = args.lr * max(0.0, 1 - (elapsed - warm_t) / max(1e-9, args.budget_s - warm_t))
        for g in opt.param_groups:
            g["lr"] = lr
        if cursor + args.batch_size > len(order):
            epoch += 1
            order = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed + epoch))
            cursor = 0
        batch = collator([data[int(i)] for i in order[cursor:cursor + args.batch_size]])
        cursor += args.batch_size
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = mlm_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step == args.warmup_steps:
            warm_t = time.time() - start
        tokens += batch["input_ids"].numel()
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        if step % 20 == 0 or step == 1:
            el = time.time() - start
            log.info("step %d epoch %d loss %.4f (smoothed %.4f) lr %.2e  %.2f s/step  %.0f tok/s  elapsed %.0fs",
                     step, epoch, loss.item(), smooth, lr, el / step, tokens / el, el)
        meta = {"steps": step, "tokens_seen": tokens, "epochs_started": epoch + 1, "train_seconds": time.time() - start,
                "smoothed_loss": smooth, "batch_size": args.batch_size, "block_size": args.block_size,
                "peak_lr": args.lr, "warmup_steps": args.warmup_steps, "budget_s": args.budget_s,
                "parameters": n_params, "bf16": args.bf16, "threads": args.threads, "seed": args.seed,
                "train_blocks": len(data), "reference_classes": args.reference}
        if time.time() - last_ckpt >= args.checkpoint_every:
            model.eval()
            save(model, tokenizer, args.out, meta)
            model.train()
            last_ckpt = time.time()
            log.info("checkpoint at step %d -> %s", step, args.out)
    model.eval()
    save(model, tokenizer, args.out, meta)
    log.info("done: %s", json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
