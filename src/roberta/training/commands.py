"""`roberta train-tokenizer | pretrain | finetune`: flags mapped one-to-one onto the library functions.

Each command prints its result as one JSON object on stdout and returns exit code 0.
Under `torchrun --nproc_per_node=N -m roberta.cli pretrain ...` the same flags train with DDP.
"""
from __future__ import annotations

import argparse
import json
import logging
import os

TASKS = ["sequence-classification", "token-classification", "question-answering", "multiple-choice"]


def add_parsers(subparsers) -> None:
    _add_train_tokenizer(subparsers)
    _add_pretrain(subparsers)
    _add_finetune(subparsers)


def _setup_logging(args) -> None:
    logging.basicConfig(level=logging.INFO if not getattr(args, "quiet", False) else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _print(result) -> int:
    """The result as JSON on stdout, once (rank 0) under torchrun."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result, indent=2, default=str))
    return 0


# -- train-tokenizer --------------------------------------------------------------------------------------
def _add_train_tokenizer(sub) -> None:
    p = sub.add_parser("train-tokenizer", help="train a RoBERTa byte-level BPE tokenizer on text files",
                       description="Train a byte-level BPE with RoBERTa's special tokens (<s>=0, <pad>=1, </s>=2, "
                                   "<unk>=3, <mask>=last) and write vocab.json, merges.txt, tokenizer.json, "
                                   "tokenizer_config.json and special_tokens_map.json.")
    p.add_argument("--files", nargs="+", required=True, help="plain text files to learn the merges from")
    p.add_argument("--vocab-size", type=int, required=True, help="total vocabulary size, specials included (roberta-base: 50265)")
    p.add_argument("--out", required=True, help="output folder for the tokenizer files")
    p.add_argument("--min-frequency", type=int, default=2, help="minimum pair count for a merge (default 2)")
    p.add_argument("--model-max-length", type=int, default=512, help="model_max_length written to tokenizer_config.json")
    p.add_argument("--quiet", action="store_true", help="less logging, no progress bar")
    p.set_defaults(func=_run_train_tokenizer)


def _run_train_tokenizer(args) -> int:
    from roberta.training.tokenizer_training import train_bpe_tokenizer

    _setup_logging(args)
    out = train_bpe_tokenizer(args.files, args.vocab_size, args.out, min_frequency=args.min_frequency,
                              model_max_length=args.model_max_length, show_progress=not args.quiet)
    with open(out / "vocab.json", encoding="utf-8") as f:
        size = len(json.load(f))
    return _print({"output_dir": str(out), "vocab_size": size})


# -- shared trainer flags ---------------------------------------------------------------------------------
def _add_trainer_flags(p, lr: float, batch_size: int, weight_decay: float, warmup_ratio: float, epochs: float) -> None:
    p.add_argument("--output-dir", required=True, help="where checkpoints, train_log.jsonl and the final model go")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"per-device micro-batch size (default {batch_size})")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (default 1)")
    p.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr})")
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warmup steps (overrides --warmup-ratio)")
    p.add_argument("--warmup-ratio", type=float, default=warmup_ratio, help=f"warmup as a fraction of all steps (default {warmup_ratio})")
    p.add_argument("--max-steps", type=int, default=-1, help="optimizer steps to train (overrides --epochs)")
    p.add_argument("--epochs", type=float, default=epochs, help=f"passes over the training data (default {epochs})")
    p.add_argument("--weight-decay", type=float, default=weight_decay, help=f"AdamW weight decay, not on biases/LayerNorm (default {weight_decay})")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping norm, 0 disables (default 1.0)")
    p.add_argument("--seed", type=int, default=42, help="seed for init, data order, masking and dropout (default 42)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU or GPU)")
    p.add_argument("--fp16", action="store_true",
                   help="float16 autocast with a GradScaler (for GPUs; runs on CPU too, slowly: use --bf16 there)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--eval-steps", type=int, default=None, help="evaluate every N steps (default: only at the end)")
    p.add_argument("--save-steps", type=int, default=None, help="write checkpoint-<step> every N steps")
    p.add_argument("--save-total-limit", type=int, default=None, help="keep only the newest N checkpoints")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="resume from CHECKPOINT, or from the newest readable checkpoint in --output-dir when no path "
                        "is given (starts afresh if the folder holds no run yet)")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --output-dir that holds an earlier one (its checkpoints and log are "
                        "deleted); without it or --resume a non-empty --output-dir is refused")
    p.add_argument("--log-every", type=int, default=50, help="log train loss every N steps (default 50)")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda:LOCAL_RANK when available)")
    p.add_argument("--quiet", action="store_true", help="less logging, no progress bars")


def _trainer_kwargs(args) -> dict:
    return dict(batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr, warmup_steps=args.warmup_steps,
                warmup_ratio=args.warmup_ratio, max_steps=args.max_steps, epochs=args.epochs,
                weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm or None, seed=args.seed,
                bf16=args.bf16, fp16=args.fp16, compile=args.compile, eval_steps=args.eval_steps,
                save_steps=args.save_steps, save_total_limit=args.save_total_limit, resume=args.resume,
                overwrite=args.overwrite, log_every=args.log_every, num_workers=args.num_workers, device=args.device,
                show_progress=not args.quiet)


# -- pretrain ---------------------------------------------------------------------------------------------
def _add_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="pretrain a RoBERTa masked language model on text files",
                       description="MLM pretraining with dynamic masking and FULL-SENTENCES packing. "
                                   "Run under torchrun for multi-GPU / multi-node DDP.")
    p.add_argument("--train-files", nargs="+", required=True, help="text files, one document per non-empty line")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder (e.g. from `roberta train-tokenizer`)")
    p.add_argument("--eval-files", nargs="+", default=None, help="held-out text files for MLM loss/perplexity/accuracy")
    p.add_argument("--config-json", default=None, help="model config.json (otherwise built from the size flags)")
    p.add_argument("--model", default=None, help="continue pretraining from this model folder instead of a fresh init")
    p.add_argument("--hidden-size", type=int, default=768, help="hidden size (default 768)")
    p.add_argument("--num-layers", type=int, default=12, help="transformer layers (default 12)")
    p.add_argument("--num-heads", type=int, default=12, help="attention heads (default 12)")
    p.add_argument("--intermediate-size", type=int, default=None, help="feed-forward size (default 4 x hidden)")
    p.add_argument("--max-seq-len", type=int, default=512, help="tokens per packed block, <s> and </s> included (default 512)")
    p.add_argument("--dropout", type=float, default=0.1, help="hidden and attention dropout (default 0.1)")
    p.add_argument("--mlm-probability", type=float, default=0.15, help="share of tokens selected for masking (default 0.15)")
    p.add_argument("--mask-replace-prob", type=float, default=0.8,
                   help="share of selected tokens made <mask> (default 0.8; 1.0 = always <mask>, as BabyBERTa)")
    p.add_argument("--random-replace-prob", type=float, default=0.1,
                   help="share of selected tokens made a random token (default 0.1); the rest stay unchanged")
    p.add_argument("--packing", choices=("full-sentences", "lines"), default="full-sentences",
                   help="full-sentences: blocks cross documents (RoBERTa); lines: one example per line, no packing")
    p.add_argument("--group-by-length", action="store_true",
                   help="batches of examples of similar length (less padding; useful with --packing lines)")
    p.add_argument("--probe-steps", type=int, default=None,
                   help="every N steps log held-out masked accuracy and order gain (needs --eval-files)")
    p.add_argument("--cache-dir", default=None, help="tokenized-corpus cache (default ~/.cache/roberta/tokenized or $ROBERTA_CACHE)")
    _add_trainer_flags(p, lr=5e-4, batch_size=8, weight_decay=0.01, warmup_ratio=0.06, epochs=1.0)
    p.set_defaults(func=_run_pretrain)


def _run_pretrain(args) -> int:
    from roberta.training.distributed import cleanup
    from roberta.training.pretraining import pretrain

    _setup_logging(args)
    result = pretrain(
        args.train_files, args.tokenizer, args.output_dir, config=args.config_json, model=args.model,
        eval_files=args.eval_files, max_seq_len=args.max_seq_len, hidden_size=args.hidden_size,
        num_layers=args.num_layers, num_heads=args.num_heads, intermediate_size=args.intermediate_size,
        dropout=args.dropout, mlm_probability=args.mlm_probability, mask_replace_prob=args.mask_replace_prob,
        random_replace_prob=args.random_replace_prob, packing=args.packing, group_by_length=args.group_by_length,
        probe_steps=args.probe_steps,
        cache_dir=args.cache_dir, **_trainer_kwargs(args))
    cleanup()
    return _print(result)


# -- finetune ---------------------------------------------------------------------------------------------
def _add_finetune(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a RoBERTa model on a classification, NER, QA or multiple-choice task",
                       description="Data files are CSV or JSON lines. Fields per task: sequence-classification "
                                   "text[,text_pair],label; token-classification tokens,tags (lists); "
                                   "question-answering question,context,answer_start,answer_text; "
                                   "multiple-choice [question,]choices,label.")
    p.add_argument("--task", required=True, choices=TASKS, help="which head to train")
    p.add_argument("--model", required=True, help="pretrained model folder or hub id (its tokenizer is used unless --tokenizer)")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: --model)")
    p.add_argument("--train-file", required=True, help="training data (.csv, .json or .jsonl)")
    p.add_argument("--eval-file", default=None, help="evaluation data in the same format")
    p.add_argument("--max-length", type=int, default=256, help="truncate inputs to this many tokens (default 256)")
    p.add_argument("--labels", nargs="+", default=None, help="label names in id order (default: sorted from the training data)")
    _add_trainer_flags(p, lr=2e-5, batch_size=16, weight_decay=0.01, warmup_ratio=0.06, epochs=3.0)
    p.set_defaults(func=_run_finetune)


def _run_finetune(args) -> int:
    from roberta.training.distributed import cleanup
    from roberta.training.finetuning import finetune

    _setup_logging(args)
    result = finetune(args.task, args.model, args.train_file, args.output_dir, eval_file=args.eval_file,
                      tokenizer=args.tokenizer, max_length=args.max_length, labels=args.labels,
                      **_trainer_kwargs(args))
    cleanup()
    return _print(result)


def build_parser() -> argparse.ArgumentParser:
    """A standalone parser with just the training commands (handy for tests and `python -m`)."""
    parser = argparse.ArgumentParser(prog="roberta")
    add_parsers(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return parser
