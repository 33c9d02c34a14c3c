"""Trainer: exact resume, HF-format checkpoints transformers loads, schedule, parameter groups, metrics."""
from __future__ import annotations

import json
import math

import pytest
import torch

from roberta.training.collator import DataCollatorForLanguageModeling
from roberta.training.data import build_pretraining_dataset
from roberta.training.trainer import StopTraining, Trainer, TrainingArguments, linear_schedule, param_groups
from test_training_helpers import single_thread  # noqa: F401  (autouse: one torch thread)
from test_training_helpers import load_tokenizer, tiny_config, write_corpus


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trainer")
    tok = load_tokenizer()
    corpus = write_corpus(folder / "corpus.txt", lines=300, seed=2)
    data = build_pretraining_dataset(corpus, tok, block_size=32, cache_dir=folder / "cache", show_progress=False)
    return tok, torch.utils.data.Subset(data, range(40)), folder


def _mlm_model(tok, seed=0):
    from roberta.modeling import RobertaForMaskedLM

    torch.manual_seed(seed)
    return RobertaForMaskedLM(tiny_config(len(tok), max_len=32))


def _run(tok, data, out, stop_at=None, resume=False, crash_with=StopTraining, **overrides):
    model = _mlm_model(tok)
    kwargs = dict(output_dir=str(out), per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=8,
                  learning_rate=2e-3, warmup_steps=2, weight_decay=0.01, logging_steps=2, save_steps=3,
                  disable_tqdm=True, seed=11)
    kwargs.update(overrides)

    def stop(trainer):
        if stop_at is not None and trainer.state["global_step"] == stop_at:
            raise crash_with

    trainer = Trainer(model, TrainingArguments(**kwargs), train_dataset=data, tokenizer=tok, callbacks=[stop],
                      data_collator=DataCollatorForLanguageModeling(tok, seed=5))
    trainer.train(resume_from_checkpoint=resume or None)
    return model, trainer


def test_resume_matches_uninterrupted_run(setup, tmp_path):
    """Crashed in step 7 (checkpoint at 6, in epoch 1), resumed to 8: same weights as one straight run.

    Dropout is on, masking is random and the 40 blocks make 5 steps an epoch, so this covers the data
    position, the epoch boundary, the masking generator and the dropout RNG."""
    tok, data, _ = setup
    straight, _ = _run(tok, data, tmp_path / "a")
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tok, data, tmp_path / "b", stop_at=7, crash_with=RuntimeError("simulated crash"))
    assert not (tmp_path / "b" / "checkpoint-7").exists()
    assert (tmp_path / "b" / "checkpoint-6").is_dir()
    state = json.loads((tmp_path / "b" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6 and state["epoch"] == 1 and state["micro_step"] == 2
    resumed, trainer = _run(tok, data, tmp_path / "b", resume=True)
    assert trainer.state["global_step"] == 8
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    # a run resumed from the wrong checkpoint differs: the comparison above can fail
    other, _ = _run(tok, data, tmp_path / "b", resume=str(tmp_path / "b" / "checkpoint-3"), seed=12)
    assert not torch.allclose(other.lm_head.dense.weight, straight.lm_head.dense.weight)


def test_checkpoint_layout_and_transformers_loads_it(setup, tmp_path):
    from transformers import RobertaForMaskedLM as HFMaskedLM

    tok, data, _ = setup
    model, trainer = _run(tok, data, tmp_path / "out", max_steps=3)
    ckpt = tmp_path / "out" / "checkpoint-3"
    assert not ckpt.exists(), "no intermediate checkpoint at the final step"
    trainer.save_checkpoint()
    for name in ("config.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pt",
                 "trainer_state.json", "vocab.json", "merges.txt"):
        assert (ckpt / name).is_file(), name
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    hf = HFMaskedLM.from_pretrained(str(ckpt)).eval()
    model.eval()
    ids = torch.tensor([[0, 10, 57, 83, 120, 2, 1, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():
        ours = model(input_ids=ids, attention_mask=mask).logits
        theirs = hf(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    log = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [2, 3] and all(math.isfinite(e["loss"]) for e in log)


def test_linear_schedule_matches_transformers():
    from transformers import get_linear_schedule_with_warmup

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=3, num_training_steps=10)
    ours = linear_schedule(3, 10)
    for step in range(12):
        assert ours(step) == pytest.approx(sched.lr_lambdas[0](step))


def test_no_weight_decay_on_biases_and_layernorm(setup):
    tok = setup[0]
    model = _mlm_model(tok)
    decay, no_decay = param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert "roberta.encoder.layer.0.attention.output.LayerNorm.weight" in no_decay_names
    assert "roberta.encoder.layer.0.attention.self.query.bias" in no_decay_names
    assert all(names[id(p)].endswith(".weight") and p.ndim == 2 for p in decay["params"])
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0


def test_mlm_evaluation_metrics(setup, tmp_path):
    tok, data, _ = setup
    model = _mlm_model(tok)
    trainer = Trainer(model, TrainingArguments(output_dir=str(tmp_path), disable_tqdm=True), eval_dataset=data,
                      data_collator=DataCollatorForLanguageModeling(tok, seed=0), tokenizer=tok)
    metrics = trainer.evaluate()
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    assert 0.0 <= metrics["accuracy"] <= 1.0
    # the reference: full (B, T, V) logits and cross-entropy over the same masked batch
    collator = DataCollatorForLanguageModeling(tok, seed=trainer.args.seed)
    total, count, correct = 0.0, 0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(data), 8):
            batch = collator([data[i] for i in range(start, min(start + 8, len(data)))])
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            sel = batch["labels"] != -100
            total += torch.nn.functional.cross_entropy(logits[sel], batch["labels"][sel], reduction="sum").item()
            count += int(sel.sum())
            correct += int((logits[sel].argmax(-1) == batch["labels"][sel]).sum())
    assert metrics["loss"] == pytest.approx(total / count, rel=1e-5)
    assert metrics["accuracy"] == pytest.approx(correct / count)


def test_bf16_autocast_trains(setup, tmp_path):
    tok, data, _ = setup
    _, trainer = _run(tok, data, tmp_path, max_steps=2, bf16=True, save_steps=None)
    assert math.isfinite(trainer.state["log_history"][-1]["loss"])


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="one of bf16 and fp16"):
        TrainingArguments(output_dir=str(tmp_path), bf16=True, fp16=True)
    with pytest.raises(ValueError, match="max_steps"):
        TrainingArguments(output_dir=str(tmp_path), num_train_epochs=0)


def test_stop_training_from_a_callback(setup, tmp_path):
    tok, data, _ = setup
    _, trainer = _run(tok, data, tmp_path, stop_at=2, save_steps=None)
    assert trainer.state["global_step"] == 2
    assert [e["step"] for e in trainer.state["log_history"]] == [2]


def test_torch_compile_trains_like_eager(setup, tmp_path):
    """torch_compile=True (inductor, on CPU) runs the same training: weights equal eager's after 3 steps.

    Dropout is off because compiled graphs draw dropout masks from their own RNG stream. The masking
    collator, the sparse MLM logits (a graph break on the data-dependent row count) and AdamW all run."""
    from roberta.modeling import RobertaForMaskedLM

    tok, data, _ = setup
    weights, starts = [], []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = RobertaForMaskedLM(tiny_config(len(tok), max_len=32, dropout=0.0))
        starts.append({k: v.clone() for k, v in model.state_dict().items()})
        args = TrainingArguments(output_dir=str(tmp_path / str(compiled)), per_device_train_batch_size=4,
                                 max_steps=3, learning_rate=2e-3, warmup_steps=1, logging_steps=1,
                                 disable_tqdm=True, seed=11, torch_compile=compiled)
        Trainer(model, args, train_dataset=data, tokenizer=tok,
                data_collator=DataCollatorForLanguageModeling(tok, seed=5)).train()
        weights.append(model.state_dict())
    assert all(torch.equal(starts[0][k], starts[1][k]) for k in starts[0])  # both runs start from the same weights
    moved = max((weights[0][k] - starts[0][k]).abs().max().item() for k in starts[0])
    assert moved > 1e-4  # training changed the weights, so the comparison below means something
    for name, eager in weights[0].items():
        torch.testing.assert_close(weights[1][name], eager, rtol=0, atol=1e-5, msg=name)


def test_fp16_loss_scaler_skips_overflowing_steps(setup, tmp_path):
    """fp16 autocast with a GradScaler (on the CPU here; the same code runs on CUDA): a step whose scaled
    gradients overflow is skipped (weights unchanged) and the scale is halved; normal steps train; the scaler's
    state is checkpointed (at step 2, before the overflow: the initial 2**16)."""
    tok, data, _ = setup
    seen = {}

    def probe(trainer):
        step = trainer.state["global_step"]
        if step == 2:
            seen["before"] = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            trainer.scaler.update(2.0 ** 40)  # scaled fp16 gradients will overflow in step 3
        if step == 3:
            seen["after"] = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            seen["scale"] = trainer.scaler.get_scale()

    model = _mlm_model(tok)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=4, learning_rate=2e-3,
                             warmup_steps=1, logging_steps=1, save_steps=2, disable_tqdm=True, seed=11, fp16=True)
    trainer = Trainer(model, args, train_dataset=data, tokenizer=tok, callbacks=[probe],
                      data_collator=DataCollatorForLanguageModeling(tok, seed=5))
    trainer.train()
    assert trainer.scaler.is_enabled()
    assert seen["scale"] == 2.0 ** 39
    for name, value in seen["before"].items():
        assert torch.equal(seen["after"][name], value), name
    assert any(not torch.equal(seen["before"][k], v) for k, v in start.items())  # steps 1-2 trained
    assert torch.load(tmp_path / "checkpoint-2" / "scaler.pt", weights_only=True)["scale"] == 2.0 ** 16
