"""Training FlaxRoberta* models with optax: a loss per head, one jit-compiled train step, data parallelism
over the devices with jax.sharding, and MLM pretraining fed by roberta's dynamic-masking collator.

Data parallelism is GSPMD's: the batch is split along its first axis over a 1-D mesh ("data") and the
params and optimizer state are replicated; XLA inserts the gradient all-reduce. One device needs no mesh.
Batches are dicts of numpy arrays: the model inputs plus `labels` (or `start_positions`/`end_positions`).
Every distinct batch shape compiles once; pad to fixed lengths (the collator's pad_to_multiple_of) so a
run compiles once or a few times.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

logger = logging.getLogger(__name__)

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


def cross_entropy(logits, labels, ignore_index: int = -100):
    """Mean token cross-entropy in float32 over labels != ignore_index. logits (..., V), labels (...)."""
    logits = logits.astype(jnp.float32)
    keep = labels != ignore_index
    safe = jnp.where(keep, labels, 0)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, safe)
    return jnp.sum(losses * keep) / jnp.maximum(jnp.sum(keep), 1)


def _sequence_classification_loss(config, logits, labels):
    """As the PyTorch head: num_labels == 1 -> MSE; integer labels -> cross-entropy; else multi-label BCE."""
    logits = logits.astype(jnp.float32)
    problem = config.problem_type or ("regression" if config.num_labels == 1 else
                                      "single_label_classification" if jnp.issubdtype(labels.dtype, jnp.integer)
                                      else "multi_label_classification")
    if problem == "regression":
        predictions = logits.squeeze(-1) if config.num_labels == 1 else logits
        return jnp.mean((predictions - labels.astype(jnp.float32)) ** 2)
    if problem == "single_label_classification":
        return cross_entropy(logits, labels)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32)))


def _question_answering_loss(out, batch):
    """Mean of start and end cross-entropy; positions outside the sequence are clamped to T and ignored."""
    T = out.start_logits.shape[1]
    start = jnp.clip(batch["start_positions"], 0, T)
    end = jnp.clip(batch["end_positions"], 0, T)
    return (cross_entropy(out.start_logits, start, ignore_index=T) + cross_entropy(out.end_logits, end, ignore_index=T)) / 2


def loss_fn_for(model) -> Callable:
    """The training loss of `model`'s head, as a function (outputs, batch) -> scalar; the same losses as the
    PyTorch heads compute from `labels`."""
    name = type(model).__name__
    config = model.config
    if name == "FlaxRobertaForCausalLM":  # predict token t+1 from tokens <= t
        return lambda out, batch: cross_entropy(out.logits[:, :-1], batch["labels"][:, 1:])
    if name == "FlaxRobertaForSequenceClassification":
        return lambda out, batch: _sequence_classification_loss(config, out.logits, batch["labels"])
    if name == "FlaxRobertaForQuestionAnswering":
        return _question_answering_loss
    if name in ("FlaxRobertaForMaskedLM", "FlaxRobertaForTokenClassification", "FlaxRobertaForMultipleChoice"):
        return lambda out, batch: cross_entropy(out.logits, batch["labels"])
    raise ValueError(f"{name} has no training loss of its own; pass loss_fn=(outputs, batch) -> scalar")


def make_train_step(model, optimizer: optax.GradientTransformation, loss_fn: Callable | None = None):
    """A jit-compiled step(params, opt_state, batch, dropout_rng) -> (params, opt_state, loss), dropout on."""
    loss_fn = loss_fn or loss_fn_for(model)

    def step(params, opt_state, batch, dropout_rng):
        def compute(p):
            inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
            out = model.module.apply({"params": p}, **inputs, deterministic=False, rngs={"dropout": dropout_rng})
            return loss_fn(out, batch)

        loss, grads = jax.value_and_grad(compute)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step)


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: all) with the axis "data"."""
    return Mesh(np.array(devices if devices is not None else jax.devices()), ("data",))


def shard_batch(batch: dict, mesh: Mesh) -> dict:
    """Split each array's first (batch) axis over the mesh."""
    n = mesh.devices.size
    sizes = {np.shape(v)[0] for v in batch.values()}
    if any(size % n for size in sizes):
        raise ValueError(f"batch size {sorted(sizes)} is not divisible by the {n} devices of the mesh; use a "
                         f"multiple of {n}")
    return jax.device_put(batch, NamedSharding(mesh, PartitionSpec("data")))


def replicate(tree, mesh: Mesh):
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def train(model, batches: Iterable[dict], optimizer: optax.GradientTransformation, *, num_steps: int | None = None,
          seed: int = 0, mesh: Mesh | str | None = "auto", loss_fn: Callable | None = None,
          log_every: int = 50) -> list[float]:
    """Fine-tune (or pretrain) `model` in place on `batches`; returns the loss of each step.

    mesh: "auto" (data parallel over all devices when there are several), a Mesh, or None (no sharding).
    """
    if mesh == "auto":
        mesh = data_mesh() if jax.device_count() > 1 else None
    params = model.params
    opt_state = optimizer.init(params)
    if mesh is not None:
        params, opt_state = replicate(params, mesh), replicate(opt_state, mesh)
    step = make_train_step(model, optimizer, loss_fn)
    rng = jax.random.PRNGKey(seed)
    losses = []
    for i, batch in enumerate(batches):
        if num_steps is not None and i >= num_steps:
            break
        batch = {k: np.asarray(v) for k, v in batch.items()}
        if mesh is not None:
            batch = shard_batch(batch, mesh)
        rng, dropout_rng = jax.random.split(rng)
        params, opt_state, loss = step(params, opt_state, batch, dropout_rng)
        losses.append(loss)
        if log_every and (i + 1) % log_every == 0:
            logger.info("step %d: loss %.4f", i + 1, float(loss))
    model.params = params
    return [float(x) for x in losses]


def collated_batches(examples: Sequence, collator, batch_size: int, *, seed: int = 0, drop_last: bool = True
                     ) -> Iterator[dict[str, np.ndarray]]:
    """Endless shuffled epochs over `examples`, each batch made by `collator` (a fresh MLM mask every time
    with DataCollatorForLanguageModeling). The collator must return numpy: return_tensors="np"."""
    if getattr(collator, "return_tensors", "np") != "np":
        raise ValueError("the collator must return numpy arrays for JAX: build it with return_tensors='np'")
    if len(examples) < batch_size and drop_last:
        raise ValueError(f"{len(examples)} examples cannot fill one batch of {batch_size}")
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(examples))
        stop = len(order) - len(order) % batch_size if drop_last else len(order)
        for start in range(0, stop, batch_size):
            yield collator([examples[i] for i in order[start:start + batch_size]])


def pretrain_mlm(model, examples: Sequence, collator, optimizer: optax.GradientTransformation, *, batch_size: int,
                 num_steps: int, seed: int = 0, mesh: Mesh | str | None = "auto") -> list[float]:
    """Masked-LM pretraining of a FlaxRobertaForMaskedLM on tokenized `examples` ({"input_ids": [...]} or
    id lists), dynamically masked by `collator` (DataCollatorForLanguageModeling(tok, return_tensors="np",
    pad_to_multiple_of=...)). Returns the loss of each step."""
    batches = collated_batches(examples, collator, batch_size, seed=seed)
    return train(model, batches, optimizer, num_steps=num_steps, seed=seed, mesh=mesh)
