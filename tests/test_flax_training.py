"""Flax training: every head's loss equals the PyTorch head's loss on the same weights and labels and goes
down under optax; fine-tuning learns a synthetic task (held-out accuracy); MLM pretraining fed by the
dynamic-masking collator; a 2-device data-parallel step equals the 1-device step."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from test_flax_helpers import DECODER, HEADS, batch, config, twins

import jax  # noqa: E402,F401  (test_flax_helpers skips the module without it)
import optax  # noqa: E402
import torch  # noqa: E402

import roberta  # noqa: E402
from roberta.flax.training import collated_batches, loss_fn_for, pretrain_mlm, train  # noqa: E402


def _labelled(name, seed=0):
    """A batch with labels of the head's kind (numpy), from the padded test batch."""
    ids, mask = batch("right", seed=seed)
    rng = np.random.default_rng(seed)
    B, T = ids.shape
    out = {"input_ids": ids, "attention_mask": mask}
    if name in ("RobertaForMaskedLM", "RobertaForCausalLM"):
        labels = np.where(mask == 1, ids, -100)
        if name == "RobertaForMaskedLM":
            labels[:, ::2] = -100
        out["labels"] = labels
    elif name == "RobertaForSequenceClassification":
        out["labels"] = rng.integers(0, 3, B)
    elif name == "RobertaForTokenClassification":
        out["labels"] = np.where(mask == 1, rng.integers(0, 3, (B, T)), -100)
    elif name == "RobertaForMultipleChoice":
        out = {"input_ids": np.stack([ids, ids[::-1]]), "attention_mask": np.stack([mask, mask[::-1]]),
               "labels": np.array([0, 2])}
    elif name == "RobertaForQuestionAnswering":
        out["start_positions"], out["end_positions"] = np.array([1, 2, 20]), np.array([3, 4, 5])  # 20: outside
    return out


@pytest.mark.parametrize("name", [h for h in HEADS if h != "RobertaModel"])
def test_every_head_loss_matches_pytorch_and_training_lowers_it(name):
    extra = DECODER if name == "RobertaForCausalLM" else ()
    pt, fx, _ = twins(name, extra)
    data = _labelled(name)
    with torch.no_grad():
        want = float(pt(**{k: torch.tensor(v) for k, v in data.items()}).loss)
    got = float(loss_fn_for(fx)(fx(data["input_ids"], attention_mask=data["attention_mask"]), data))
    assert abs(got - want) < 1e-5
    model = type(fx)(fx.config, _do_init=False)  # a copy to train (train() replaces its params)
    model.params = fx.params
    losses = train(model, [data] * 4, optax.adamw(3e-3), mesh=None)
    after = float(loss_fn_for(model)(model(data["input_ids"], attention_mask=data["attention_mask"]), data))
    assert len(losses) == 4 and after < got  # judged without dropout: the training losses are noisy


def test_regression_and_multi_label_losses_match_pytorch():
    for extra, labels in (({"num_labels": 1}, np.array([0.5, -1.0, 2.0], dtype=np.float32)),
                          ({"problem_type": "multi_label_classification"},
                           np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0]], dtype=np.float32))):
        torch.manual_seed(0)
        pt = roberta.RobertaForSequenceClassification(config(**extra)).eval()
        fx = roberta.FlaxRobertaForSequenceClassification(pt.config)
        fx.params = roberta.FlaxRobertaForSequenceClassification.from_pretrained(_save(pt)).params
        ids, mask = batch("right")
        with torch.no_grad():
            want = float(pt(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), labels=torch.tensor(labels)).loss)
        got = float(loss_fn_for(fx)(fx(ids, attention_mask=mask), {"labels": labels}))
        assert abs(got - want) < 1e-5


def _save(pt):
    import tempfile

    folder = tempfile.mkdtemp(prefix="flax-loss-")
    pt.save_pretrained(folder)
    return folder


def _task(n, seed):
    """Label 1 when token 7 occurs in the sentence (anywhere): needs attention across positions."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(8, 99, size=(n, 10))
    labels = rng.integers(0, 2, n)
    where = rng.integers(1, 9, n)
    ids[labels == 1, where[labels == 1]] = 7
    ids[:, 0], ids[:, -1] = 0, 2
    return ids, labels


def test_fine_tuning_learns_a_synthetic_task():
    model = roberta.FlaxRobertaForSequenceClassification(config(num_labels=2, hidden_dropout_prob=0.0,
                                                                attention_probs_dropout_prob=0.0), seed=0)
    train_ids, train_labels = _task(512, seed=1)
    test_ids, test_labels = _task(256, seed=2)
    before = float((np.asarray(model(test_ids).logits).argmax(-1) == test_labels).mean())

    def batches():
        for epoch in range(20):
            order = np.random.default_rng(epoch).permutation(len(train_ids))
            for start in range(0, len(order), 32):
                rows = order[start:start + 32]
                yield {"input_ids": train_ids[rows], "attention_mask": np.ones_like(train_ids[rows]),
                       "labels": train_labels[rows]}

    losses = train(model, batches(), optax.adamw(3e-3), num_steps=240, mesh=None)
    accuracy = float((np.asarray(model(test_ids).logits).argmax(-1) == test_labels).mean())
    assert before < 0.65 and accuracy > 0.95, (before, accuracy, losses[-5:])


def test_mlm_pretraining_with_the_dynamic_masking_collator():
    from test_training_helpers import load_tokenizer

    from roberta.training.collator import DataCollatorForLanguageModeling

    tok = load_tokenizer()
    texts = ["the quick brown fox jumps over a lazy dog", "seven happy cats sleep near old red barn"] * 16
    examples = [{"input_ids": ids} for ids in tok(texts)["input_ids"]]
    collator = DataCollatorForLanguageModeling(tok, seed=0, return_tensors="np", pad_to_multiple_of=16)
    first = next(collated_batches(examples, collator, 8))
    assert first["input_ids"].shape == (8, 16) and isinstance(first["labels"], np.ndarray)
    assert (first["labels"] != -100).any() and (first["input_ids"] == tok.mask_token_id).any()
    model = roberta.FlaxRobertaForMaskedLM(config(vocab_size=len(tok)), seed=0)
    losses = pretrain_mlm(model, examples, collator, optax.adamw(3e-3), batch_size=8, num_steps=60, mesh=None)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5]), (losses[:5], losses[-10:])
    with pytest.raises(ValueError, match="return_tensors='np'"):
        next(collated_batches(examples, DataCollatorForLanguageModeling(tok), 8))


SHARDED = r"""
import json, sys
import jax, numpy as np, optax
import roberta
from roberta.flax.training import data_mesh, train
assert jax.device_count() == 2, jax.devices()
config = roberta.RobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=37, max_position_embeddings=64, type_vocab_size=1, num_labels=3)
rng = np.random.default_rng(0)
ids = rng.integers(3, 99, (4, 9)); ids[:, 0] = 0
batches = [{"input_ids": ids, "attention_mask": np.ones_like(ids), "labels": rng.integers(0, 3, 4)}] * 2
results = {}
for name, mesh in (("one", None), ("two", data_mesh())):
    model = roberta.FlaxRobertaForSequenceClassification(config, seed=0)
    losses = train(model, batches, optax.adamw(1e-2), mesh=mesh, seed=0)
    leaves = jax.tree_util.tree_leaves(model.params)
    results[name] = {"losses": losses, "params": [np.asarray(x).ravel()[:50].tolist() for x in leaves],
                     "devices": len(leaves[0].sharding.device_set)}
try:
    train(roberta.FlaxRobertaForSequenceClassification(config), [dict(batches[0], input_ids=ids[:3],
          attention_mask=np.ones_like(ids[:3]), labels=np.zeros(3, int))], optax.sgd(0.1), mesh=data_mesh())
except ValueError as err:
    results["error"] = str(err)
print(json.dumps(results))
"""


@pytest.mark.slow  # a fresh process importing jax with 2 host devices, and two compiles
def test_two_device_data_parallel_step_equals_one_device_step():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["one"]["devices"] == 1 and out["two"]["devices"] == 2  # params replicated over both devices
    np.testing.assert_allclose(out["two"]["losses"], out["one"]["losses"], atol=1e-5)
    for a, b in zip(out["two"]["params"], out["one"]["params"]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert out["one"]["losses"][1] != out["one"]["losses"][0]  # the first step changed the weights
    assert "batch size [3] is not divisible by the 2 devices" in out["error"]
