"""`pretrain(...)`: RoBERTa MLM pretraining from text files, from Python or `roberta pretrain`.

Recipe defaults follow fairseq's roberta-base: Adam betas (0.9, 0.98), eps 1e-6, weight decay 0.01,
lr 5e-4 with linear warmup and linear decay, dropout 0.1, FULL-SENTENCES packing into max_seq_len blocks,
dynamic 15% masking (80/10/10).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from roberta._io import find_invalid_utf8

logger = logging.getLogger(__name__)


def load_tokenizer(tokenizer):
    """A tokenizer object is returned as is; a folder/id loads with roberta's RobertaTokenizerFast."""
    if isinstance(tokenizer, (str, os.PathLike)):
        from roberta.tokenization import RobertaTokenizerFast

        return RobertaTokenizerFast.from_pretrained(str(tokenizer))
    if tokenizer is None:
        raise ValueError("a tokenizer (object or folder with vocab.json/merges.txt/tokenizer.json) is required")
    return tokenizer


def build_config(tokenizer, config=None, max_seq_len: int = 512, hidden_size: int = 768, num_layers: int = 12,
                 num_heads: int = 12, intermediate_size: int | None = None, dropout: float = 0.1):
    """A RobertaConfig for `tokenizer`: from `config` (object, dict or config.json path) or the size flags."""
    from roberta.config import RobertaConfig

    ids = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
           "eos_token_id": tokenizer.eos_token_id}
    if config is None:
        # RoBERTa positions start at pad_token_id + 1, so max_seq_len usable tokens need that many more rows.
        return RobertaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers,
                             num_attention_heads=num_heads, intermediate_size=intermediate_size or 4 * hidden_size,
                             max_position_embeddings=max_seq_len + tokenizer.pad_token_id + 1, type_vocab_size=1,
                             hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, **ids)
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a JSON config file ({err})") from None
        if not isinstance(config, dict):
            raise ValueError(f"{path} must hold a JSON object of config fields, not a {type(config).__name__}")
    if isinstance(config, dict):
        config = RobertaConfig.from_dict({**config})
    if config.vocab_size < len(tokenizer):
        raise ValueError(f"config vocab_size {config.vocab_size} is smaller than the tokenizer's {len(tokenizer)} tokens")
    for key, value in ids.items():
        setattr(config, key, value)
    return config


def usable_positions(config) -> int:
    return config.max_position_embeddings - config.pad_token_id - 1


def pretrain(train_files, tokenizer, output_dir, *, config=None, model=None, eval_files=None,
             max_seq_len: int = 512, hidden_size: int = 768, num_layers: int = 12, num_heads: int = 12,
             intermediate_size: int | None = None, dropout: float = 0.1, batch_size: int = 8, grad_accum: int = 1,
             lr: float = 5e-4, warmup_steps: int = 0, warmup_ratio: float = 0.06, max_steps: int = -1,
             epochs: float = 1.0, weight_decay: float = 0.01, max_grad_norm: float | None = 1.0, seed: int = 42,
             bf16: bool = False, fp16: bool = False, compile: bool = False, eval_steps: int | None = None,
             save_steps: int | None = None, save_total_limit: int | None = None, resume=False,
             overwrite: bool = False, log_every: int = 50, num_workers: int = 0, mlm_probability: float = 0.15,
             mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1, packing: str = "full-sentences",
             group_by_length: bool = False,
             probe_steps: int | None = None, cache_dir=None, text_column: str = "text", device: str | None = None,
             show_progress: bool = True, callbacks=None) -> dict:
    """Pretrain a RobertaForMaskedLM with dynamic masking and save it (HF layout) to `output_dir`.

    train_files / eval_files: text file path(s) (one document per non-empty line) or a datasets-like object
    with a "text" column. tokenizer: a tokenizer object or folder. config: RobertaConfig, dict or
    config.json path (default: built from the size flags). model: a folder to continue pretraining from.
    resume: True (newest readable checkpoint in output_dir) or a checkpoint folder. overwrite: start afresh
    in an output_dir holding an earlier run (otherwise refused, see training/runs.py). mask_replace_prob /
    random_replace_prob: of the selected tokens, the share made `<mask>` / a random token (RoBERTa 0.8 / 0.1;
    1.0 / 0.0 never rewards copying the visible token). packing: "full-sentences" (blocks across documents,
    RoBERTa) or "lines" (one example per line, for a sentence-per-line corpus). group_by_length: batches of
    examples of similar length (with "lines", padding otherwise wastes most of a batch of sentences). probe_steps: every N steps,
    log masked accuracy and order gain on the first 256 eval examples (needs eval_files; see mlm_eval).
    Returns the final metrics.
    """
    from roberta.modeling import RobertaForMaskedLM
    from roberta.training.collator import DataCollatorForLanguageModeling
    from roberta.training.data import build_pretraining_dataset
    from roberta.training.distributed import barrier, init_distributed
    from roberta.training.runs import check_output_dir
    from roberta.training.trainer import Trainer, TrainingArguments

    check_output_dir(output_dir, resume, overwrite)  # before minutes of tokenizing (the Trainer checks again)
    info = init_distributed(device)
    tokenizer = load_tokenizer(tokenizer)
    if model is not None:
        model = RobertaForMaskedLM.from_pretrained(str(model)) if isinstance(model, (str, os.PathLike)) else model
    else:
        torch.manual_seed(seed)  # the same initial weights on every rank and every rerun
        model = RobertaForMaskedLM(build_config(tokenizer, config, max_seq_len, hidden_size, num_layers, num_heads,
                                                intermediate_size, dropout))
    if max_seq_len > usable_positions(model.config):
        raise ValueError(f"max_seq_len {max_seq_len} exceeds the model's {usable_positions(model.config)} usable "
                         "positions (max_position_embeddings - pad_token_id - 1)")

    def dataset(source):
        try:
            return build_pretraining_dataset(source, tokenizer, block_size=max_seq_len, cache_dir=cache_dir,
                                             text_column=text_column, show_progress=show_progress and info.is_main,
                                             packing=packing)
        except UnicodeDecodeError:  # name the file and line, not a byte offset in some buffer
            files = [source] if isinstance(source, (str, os.PathLike)) else source
            paths = isinstance(files, (list, tuple)) and all(isinstance(f, (str, os.PathLike)) for f in files)
            bad = find_invalid_utf8(files) if paths else None
            if bad is None:
                raise
            raise ValueError(bad) from None

    # Rank 0 tokenizes (once, cached); the others wait and then memory-map the same cache.
    if info.is_main:
        train_dataset = dataset(train_files)
        eval_dataset = dataset(eval_files) if eval_files is not None else None
    barrier()
    if not info.is_main:
        train_dataset = dataset(train_files)
        eval_dataset = dataset(eval_files) if eval_files is not None else None

    args = TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum, learning_rate=lr, weight_decay=weight_decay, adam_beta1=0.9,
        adam_beta2=0.98, adam_epsilon=1e-6, max_grad_norm=max_grad_norm, num_train_epochs=epochs,
        max_steps=max_steps, warmup_steps=warmup_steps, warmup_ratio=0.0 if warmup_steps else warmup_ratio,
        logging_steps=log_every, eval_steps=eval_steps, save_steps=save_steps, save_total_limit=save_total_limit,
        seed=seed, bf16=bf16, fp16=fp16, torch_compile=compile, dataloader_num_workers=num_workers,
        group_by_length=group_by_length,
        disable_tqdm=not show_progress, device=device, overwrite_output_dir=overwrite,
        extra={"task": "mlm", "max_seq_len": max_seq_len, "mlm_probability": mlm_probability,
               "mask_replace_prob": mask_replace_prob, "random_replace_prob": random_replace_prob, "packing": packing,
               "group_by_length": group_by_length},
    )
    masking = dict(mlm_probability=mlm_probability, mask_replace_prob=mask_replace_prob,
                   random_replace_prob=random_replace_prob)
    collator = DataCollatorForLanguageModeling(tokenizer, seed=seed, **masking)
    callbacks = list(callbacks or [])
    if probe_steps:
        if eval_dataset is None:
            raise ValueError("probe_steps needs eval_files: the order probe runs on held-out text")
        from roberta.training.mlm_eval import OrderProbe

        callbacks.append(OrderProbe(eval_dataset, DataCollatorForLanguageModeling(tokenizer, seed=0, **masking),
                                    every=probe_steps))
    trainer = Trainer(model, args, train_dataset=train_dataset, eval_dataset=eval_dataset, data_collator=collator,
                      tokenizer=tokenizer, task="mlm", callbacks=callbacks)
    metrics = trainer.train(resume_from_checkpoint=resume or None)
    trainer.save_model()
    logger.info("pretraining done: %s", metrics)
    return {**metrics, "output_dir": str(output_dir), "global_step": trainer.state["global_step"]}
