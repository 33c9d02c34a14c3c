"""One training loop for MLM pretraining and for fine-tuning every head.

AdamW (no weight decay on biases and LayerNorm weights), linear warmup then linear decay, gradient
accumulation, clipping, bf16 autocast, fp16 autocast with a GradScaler (meant for GPUs, also runs on CPU),
optional torch.compile, DDP under torchrun, per-task evaluation, JSON-lines logs, atomic HF-format checkpoints
and exact resume.

Exact resume rests on three things: the data order is a function of (seed, epoch) only (ShardedSampler),
the position inside the epoch is saved, and every RNG that training draws from (torch's for dropout, the
collator's masking generator) is saved and restored. MLM masking runs in the main process (workers only pad),
so the masking generator state is the one the trainer saves.

Loss scaling: every micro-batch's mean loss is weighted by its share of the items (label tokens, or examples)
in the whole accumulation window across all ranks, so an update is the exact mean over the global batch,
whatever the split into micro-batches and processes.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from roberta.training import checkpoint as ckpt
from roberta.training import runs
from roberta.training.distributed import DistInfo, ShardedSampler, all_reduce_sum, barrier, gather_objects, init_distributed
from roberta.training.metrics import metric_for, task_of

logger = logging.getLogger(__name__)


@dataclass
class TrainingArguments:
    """Training settings (names follow transformers' TrainingArguments where one exists)."""

    output_dir: str
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float | None = 1.0
    num_train_epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides num_train_epochs
    warmup_steps: int = 0
    warmup_ratio: float = 0.0  # used when warmup_steps is 0
    logging_steps: int = 50
    eval_steps: int | None = None  # None: evaluate once at the end (when there is an eval set)
    save_steps: int | None = None  # None: no intermediate checkpoints
    save_total_limit: int | None = None  # prunes only this run's checkpoints (see training/runs.py)
    overwrite_output_dir: bool = False  # start afresh in a folder holding an earlier run (deletes its checkpoints)
    seed: int = 42
    bf16: bool = False
    fp16: bool = False
    torch_compile: bool = False
    group_by_length: bool = False  # batches of similar lengths (less padding); the dataset's `lengths` if it has them
    dataloader_num_workers: int = 0
    disable_tqdm: bool = False
    device: str | None = None  # default: cuda:LOCAL_RANK when available, else cpu
    extra: dict = field(default_factory=dict)  # recorded in trainer_state.json

    def __post_init__(self):
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("batch size and gradient_accumulation_steps must be >= 1")
        if self.bf16 and self.fp16:
            raise ValueError("choose one of bf16 and fp16")
        if not 0 <= self.warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        if self.logging_steps < 1:
            raise ValueError(f"logging_steps must be >= 1, got {self.logging_steps}")
        for name in ("save_steps", "eval_steps", "save_total_limit"):  # 0 would silently mean "never"
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 (or None for none), got {value}")
        for name in ("warmup_steps", "learning_rate", "weight_decay", "dataloader_num_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm",
                     "num_train_epochs"):  # NaN passes every comparison below; inf epochs never end
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.max_grad_norm is not None and self.max_grad_norm < 0:
            raise ValueError(f"max_grad_norm must be >= 0 (0 or None: no clipping), got {self.max_grad_norm}")
        if self.per_device_eval_batch_size < 1:
            raise ValueError(f"per_device_eval_batch_size must be >= 1, got {self.per_device_eval_batch_size}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError("set max_steps > 0 or num_train_epochs > 0")


class StopTraining(Exception):
    """Raise from a callback to stop training cleanly after the current step."""


def linear_schedule(warmup: int, total: int):
    """LR multiplier: 0 -> 1 over `warmup` steps, then 1 -> 0 at `total` (transformers' linear schedule)."""
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: biases and LayerNorm weights (all 1-D parameters) are not decayed."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _adamw(groups, **kwargs) -> torch.optim.AdamW:
    """Fused AdamW (one kernel over all parameters: ~4x faster steps than foreach on CPU) where available."""
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device/dtype without a fused kernel
        return torch.optim.AdamW(groups, **kwargs)


def _example_lengths(dataset) -> list[int]:
    """Token counts for group_by_length: the dataset's own `lengths` when it has them (LineDataset), else
    len(input_ids) of every item (one pass over the data, as transformers' LengthGroupedSampler does)."""
    lengths = getattr(dataset, "lengths", None)
    if lengths is None:
        try:
            lengths = [len(dataset[i]["input_ids"]) for i in range(len(dataset))]
        except (KeyError, TypeError) as e:
            raise ValueError("group_by_length needs items with input_ids (or a dataset with a `lengths` "
                             f"attribute): {e!r}") from None
    return lengths


def _count_items(batch: dict) -> int:
    """Items a batch's mean loss averages over: labelled tokens, or examples."""
    labels = batch.get("labels")
    if labels is not None and labels.dim() >= 2 and not labels.is_floating_point():
        return int((labels != -100).sum())
    for key in ("labels", "start_positions", "input_ids"):
        if batch.get(key) is not None:
            return int(batch[key].shape[0])
    raise ValueError(f"cannot size a batch with keys {sorted(batch)}")


class Trainer:
    def __init__(self, model, args: TrainingArguments, train_dataset=None, eval_dataset=None, data_collator=None,
                 tokenizer=None, task: str | None = None, metric_factory=None, callbacks=None):
        self.model = model
        self.args = args
        self.train_dataset, self.eval_dataset = train_dataset, eval_dataset
        if data_collator is None:
            from roberta.training.collator import DataCollatorWithPadding
            if tokenizer is None:
                raise ValueError("pass a data_collator or a tokenizer")
            data_collator = DataCollatorWithPadding(tokenizer)
        self.collator = data_collator
        self.tokenizer = tokenizer
        self.task = task or task_of(model)
        self.metric_factory = metric_factory or (lambda: metric_for(self.task, self.model))
        self.callbacks = list(callbacks or [])
        self.dist: DistInfo = init_distributed(args.device)
        self.device = self.dist.device
        self.state = {"global_step": 0, "epoch": 0, "micro_step": 0, "log_history": []}
        forward_params = inspect.signature(model.forward).parameters
        # Our RobertaForMaskedLM computes vocabulary logits only at labelled positions when asked.
        self._sparse = self.task == "mlm" and "sparse_logits" in forward_params
        self.model.to(self.device)
        self._train_model = None
        self._last_eval_step = -1
        self._saved_step = -1

    # -- data -------------------------------------------------------------------------------------------
    def _loader(self, dataset, sampler, batch_size):
        split = hasattr(self.collator, "pad") and hasattr(self.collator, "mask")
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=sampler,
            collate_fn=self.collator.pad if split else self.collator,
            num_workers=self.args.dataloader_num_workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator(),  # keeps the DataLoader off the global RNG (dropout's), for exact resume
        )

    def _prepare(self, batch: dict) -> dict:
        if hasattr(self.collator, "pad") and hasattr(self.collator, "mask"):
            batch = self.collator.mask(batch)  # random masking here, in the main process (see module doc)
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _autocast(self):
        if self.args.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if self.args.fp16:
            return torch.autocast(self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def _forward(self, model, batch):
        extra = {"sparse_logits": True} if self._sparse and "labels" in batch else {}
        with self._autocast():
            return model(**batch, **extra)

    # -- setup ------------------------------------------------------------------------------------------
    def _setup(self, total_steps: int):
        args = self.args
        if args.fp16 and self.device.type not in ("cuda", "cpu"):
            raise ValueError(f"fp16 training needs a CUDA device (or the CPU, slowly); got {self.device}")
        self.optimizer = _adamw(param_groups(self.model, args.weight_decay), lr=args.learning_rate,
                                betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
        warmup = args.warmup_steps or math.ceil(args.warmup_ratio * total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, linear_schedule(warmup, total_steps))
        # fp16 on CPU runs (torch's CPU GradScaler) but is slow without fp16 matrix units: bf16 is the CPU choice
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=args.fp16)
        model = torch.compile(self.model) if args.torch_compile else self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self._train_model = model
        gen = getattr(self.collator, "generator", "absent")
        if gen != "absent":  # a masking collator: one independent, seeded stream per rank
            base = getattr(self.collator, "seed", None)
            base = args.seed if base is None else base
            self.collator.generator = torch.Generator().manual_seed(base + 1_000_003 * self.dist.rank)

    def _start_run(self, resume) -> None:
        """Claim the output folder (refusing one holding another run, see runs.py), sweep a killed save's
        debris, and restore the checkpoint to resume from: the newest readable one for `resume=True`."""
        out = self.args.output_dir
        fresh = runs.check_output_dir(out, resume, self.args.overwrite_output_dir)
        if self.dist.is_main:
            runs.sweep_debris(out)
            if fresh:
                runs.clear_previous_run(out)
        barrier()
        if fresh:
            self.state["run_id"] = runs.new_run_id()
            return
        if resume is True:
            checkpoint, parts = ckpt.newest_readable(out)
        else:
            checkpoint, parts = Path(resume), ckpt.read_checkpoint(resume)
        state, rng = ckpt.apply_checkpoint(parts, checkpoint, self.model, self.optimizer, self.scheduler, self.scaler)
        for key in ("world_size", "per_device_train_batch_size", "gradient_accumulation_steps"):
            now = self.dist.world_size if key == "world_size" else getattr(self.args, key)
            if state.get(key, now) != now:
                raise ValueError(f"checkpoint {checkpoint} was written with {key}={state[key]}, this run has {now}: "
                                 "resume with the same setting so the data position stays meaningful")
        state.setdefault("run_id", None)  # checkpoints from before run ids: they are this run's
        self.state = state
        if self.dist.rank < len(rng):
            ckpt.restore_rng_state(rng[self.dist.rank], getattr(self.collator, "generator", None))
        if self.dist.is_main:
            runs.truncate_log(Path(out) / runs.LOG_NAME, state["global_step"])  # steps after it are redone
        logger.info("resumed from %s at step %d", checkpoint, state["global_step"])

    def _stop_signal(self, stopper: runs.GracefulStop) -> int | None:
        """The signal that asked training to stop, agreed on by every rank (one rank's signal stops all)."""
        signum = stopper.signum or 0
        if self.dist.enabled:
            anyone = float(all_reduce_sum(torch.tensor(float(signum > 0), device=self.device))) > 0
            signum = signum or (int(signal.SIGTERM) if anyone else 0)
        return signum or None

    # -- training ---------------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint=None) -> dict:
        """Train to max_steps (or num_train_epochs); return the final metrics (train loss, eval metrics)."""
        args, info = self.args, self.dist
        if self.train_dataset is None:
            raise ValueError("Trainer.train needs a train_dataset")
        bs, accum = args.per_device_train_batch_size, args.gradient_accumulation_steps
        lengths = _example_lengths(self.train_dataset) if args.group_by_length else None
        sampler = ShardedSampler(len(self.train_dataset), info.rank, info.world_size, shuffle=True, seed=args.seed,
                                 lengths=lengths, batch_size=bs)
        micro_per_epoch = math.ceil(sampler.per_rank / bs)
        steps_per_epoch = math.ceil(micro_per_epoch / accum)
        total = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * steps_per_epoch)
        torch.manual_seed(args.seed)  # dropout stream (restored from the checkpoint on resume)
        self._setup(total)
        self._start_run(resume_from_checkpoint or False)
        self.state.update(max_steps=total, world_size=info.world_size, per_device_train_batch_size=bs,
                          gradient_accumulation_steps=accum, seed=args.seed, extra=args.extra)
        model = self._train_model
        model.train()
        log_path = Path(args.output_dir) / "train_log.jsonl"
        if info.is_main:
            Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=total, initial=self.state["global_step"], desc="training", unit="step",
                   disable=args.disable_tqdm or not info.is_main)
        loss_sum, loss_items, tokens, t0 = torch.zeros((), dtype=torch.float64), 0, 0, time.perf_counter()
        final: dict = {}
        stop = self.state["global_step"] >= total
        with runs.GracefulStop() as stopper, contextlib.closing(bar):
            while not stop:
                epoch, start = self.state["epoch"], self.state["micro_step"]
                if start < micro_per_epoch:
                    sampler.set_epoch(epoch, start=start * bs)
                    batches = iter(self._loader(self.train_dataset, sampler, bs))
                for micro in range(start, micro_per_epoch, accum):
                    window = [self._prepare(next(batches)) for _ in range(min(accum, micro_per_epoch - micro))]
                    counts = [_count_items(b) for b in window]
                    total_items = float(all_reduce_sum(torch.tensor(float(sum(counts)), device=self.device)))
                    for i, batch in enumerate(window):
                        last = i == len(window) - 1
                        sync = contextlib.nullcontext() if last or not info.enabled else model.no_sync()
                        with sync:
                            out = self._forward(model, batch)
                            share = counts[i] * info.world_size / max(total_items, 1.0)
                            loss = out.loss * share if counts[i] else out.loss.nan_to_num() * 0.0
                            self.scaler.scale(loss).backward()
                        if counts[i]:
                            loss_sum += out.loss.detach().double().cpu() * counts[i]
                            loss_items += counts[i]
                        tokens += int(batch["input_ids"].numel())
                    self.scaler.unscale_(self.optimizer)
                    grad_norm = None
                    if args.max_grad_norm:
                        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    self.state["global_step"] += 1
                    self.state["micro_step"] = micro + len(window)
                    step = self.state["global_step"]
                    bar.update(1)
                    if step % args.logging_steps == 0 or step == total:
                        final["train_loss"] = self._log_train(log_path, loss_sum, loss_items, tokens,
                                                              time.perf_counter() - t0, grad_norm, bar)
                        loss_sum, loss_items, tokens, t0 = torch.zeros((), dtype=torch.float64), 0, 0, \
                            time.perf_counter()
                    if self.eval_dataset is not None and args.eval_steps and step % args.eval_steps == 0:
                        final.update(self._log_eval(log_path))
                    if args.save_steps and step % args.save_steps == 0 and step < total:
                        self.save_checkpoint()
                    stop = step >= total
                    try:
                        for callback in self.callbacks:
                            callback(self)
                    except StopTraining:
                        stop = True
                    signum = None if stop else self._stop_signal(stopper)
                    if signum:  # SIGINT/SIGTERM: keep the work done so far, then stop
                        saved = self._saved_step == step and Path(args.output_dir, f"checkpoint-{step}")
                        raise runs.TrainingInterrupted(signum, step, saved or self.save_checkpoint())
                    if stop:
                        break
                if self.state["micro_step"] >= micro_per_epoch:
                    self.state["epoch"], self.state["micro_step"] = epoch + 1, 0
        if self.eval_dataset is not None and self._last_eval_step != self.state["global_step"]:
            final.update(self._log_eval(log_path))
        return final

    def _log_eval(self, log_path) -> dict:
        metrics = {f"eval_{k}": v for k, v in self.evaluate().items()}
        self._last_eval_step = self.state["global_step"]
        self._log(log_path, {"step": self.state["global_step"], **metrics})
        return metrics

    def _log_train(self, log_path, loss_sum, loss_items, tokens, seconds, grad_norm, bar) -> float:
        stats = all_reduce_sum(torch.tensor([float(loss_sum), loss_items, tokens], dtype=torch.float64,
                                            device=self.device)).tolist()
        loss = stats[0] / max(stats[1], 1.0)
        entry = {"step": self.state["global_step"], "epoch": self.state["epoch"], "loss": loss,
                 "learning_rate": self.scheduler.get_last_lr()[0],
                 "grad_norm": float(grad_norm) if grad_norm is not None else None,
                 "tokens_per_second": stats[2] / max(seconds, 1e-9)}
        self._log(log_path, entry)
        bar.set_postfix(loss=f"{loss:.4f}")
        return loss

    def _log(self, log_path: Path, entry: dict) -> None:
        self.state["log_history"].append(entry)
        if self.dist.is_main:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
            logger.info("%s", entry)

    # -- evaluation -------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, eval_dataset=None) -> dict[str, float]:
        """Metrics for the task over `eval_dataset` (default: the trainer's), summed across ranks."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("no eval_dataset to evaluate on")
        model = self.model  # unwrapped: no DDP hooks, no compile recompiles for eval shapes
        was_training = model.training
        model.eval()
        # Fixed eval masks (comparable across evaluations) without disturbing the training mask stream.
        saved = getattr(self.collator, "generator", None)
        if saved is not None:
            self.collator.generator = torch.Generator().manual_seed(self.args.seed)
        metric = self.metric_factory()
        try:
            indices = list(range(len(dataset)))[self.dist.rank::self.dist.world_size]  # no padding duplicates
            loader = self._loader(dataset, indices, self.args.per_device_eval_batch_size)
            for batch in tqdm(loader, desc="evaluating", leave=False,
                              disable=self.args.disable_tqdm or not self.dist.is_main):
                batch = self._prepare(batch)
                metric.update(batch, self._forward(model, batch))
        finally:
            if saved is not None:
                self.collator.generator = saved
            model.train(was_training)
        for key in sorted(metric.stats):
            metric.stats[key] = all_reduce_sum(metric.stats[key].to(self.device)).cpu()
        return metric.compute()

    # -- saving -----------------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path | None:
        """Write checkpoint-<step> (rank 0 writes; every rank contributes its RNG state)."""
        rng = gather_objects(ckpt.capture_rng_state(getattr(self.collator, "generator", None)))
        path = None
        if self.dist.is_main:
            state = {**self.state, "training_args": _jsonable(asdict(self.args))}
            path = ckpt.save_checkpoint(self.args.output_dir, self.state["global_step"], self.model, self.optimizer,
                                        self.scheduler, self.scaler, state, rng, self.tokenizer,
                                        self.args.save_total_limit)
        barrier()
        self._saved_step = self.state["global_step"]
        return path

    def save_model(self, output_dir=None) -> None:
        """Save the model (and tokenizer) in the HF layout into `output_dir` (default args.output_dir)."""
        if self.dist.is_main:
            ckpt.save_pretrained_atomic(self.model, self.tokenizer, output_dir or self.args.output_dir)
        barrier()


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
