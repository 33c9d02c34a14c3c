"""transformers' Trainer driving our models (tiny random configs, CPU): fp32 and bf16 training, checkpoints,
load_best_model_at_end, resuming, evaluate/predict, gradient checkpointing, total_flos; each compared with the
same run on transformers' model from identical weights."""
import os

import pytest
import torch

from test_modeling_helpers import assert_close, batch, transformers, twins

from transformers import Trainer, TrainingArguments

import roberta.modeling as ours_mod

NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


class Toy(torch.utils.data.Dataset):
    """16 random sequences of 9 tokens; labels per task."""

    def __init__(self, task="cls", n=16):
        self.task, self.n = task, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        ids = torch.randint(3, 99, (9,), generator=torch.Generator().manual_seed(i))
        ids[0] = 0
        labels = {"mlm": ids.clone(), "tokens": ids % 3}.get(self.task, torch.tensor(i % 3))
        return {"input_ids": ids, "attention_mask": torch.ones(9, dtype=torch.long), "labels": labels}


def args(out, **kw):
    base = dict(per_device_train_batch_size=4, per_device_eval_batch_size=8, max_steps=4, learning_rate=1e-3,
                use_cpu=True, report_to=[], disable_tqdm=True, save_strategy="no", seed=0, data_seed=0)
    return TrainingArguments(str(out), **{**base, **kw})


def run(model, out, task="cls", resume=None, **kw):
    trainer = Trainer(model=model, args=args(out, **kw), train_dataset=Toy(task), eval_dataset=Toy(task))
    result = trainer.train(resume_from_checkpoint=resume)
    return trainer, result


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_trainer_trains_like_transformers_and_the_result_loads_in_both(tmp_path, bf16):
    ours, theirs = twins("RobertaForSequenceClassification", num_labels=3, **NO_DROPOUT)
    mine, result = run(ours, tmp_path / "ours", bf16=bf16)  # bf16 crashed: accelerate rebuilds type(out)(dict)
    other, reference = run(theirs, tmp_path / "theirs", bf16=bf16)
    assert result.training_loss == pytest.approx(reference.training_loss, rel=1e-3 if bf16 else 1e-5)
    assert mine.state.total_flos == other.state.total_flos > 0  # floating_point_ops, was 0
    atol = 2e-2 if bf16 else 1e-5
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(a, b, atol=atol, rtol=atol)
    folder = tmp_path / "saved"
    mine.model.save_pretrained(folder)  # the complete folder: config.json + weights (see README)
    ids, mask = batch()
    logits = []
    for cls in (ours_mod.RobertaForSequenceClassification, transformers.RobertaForSequenceClassification):
        reloaded = cls.from_pretrained(folder).eval()
        for a, b in zip(reloaded.parameters(), ours.parameters()):
            assert torch.equal(a, b)
        logits.append(reloaded(input_ids=ids, attention_mask=mask).logits)
    assert_close(*logits)  # (the trained model itself still runs under the Trainer's bf16 autocast wrapper)


def test_trainer_checkpoints_best_model_and_resume_like_transformers(tmp_path):
    """Trainer saves our model's state dict in checkpoints (it calls save_pretrained only on its own base class);
    load_best_model_at_end and resume_from_checkpoint read them back through load_state_dict. The masked LM's
    tied weights need save_safetensors=False there (see README)."""
    kw = dict(save_strategy="steps", save_steps=2, eval_strategy="steps", eval_steps=2, load_best_model_at_end=True,
              save_safetensors=False)
    finals = []
    for side in (0, 1):
        model = twins("RobertaForMaskedLM", **NO_DROPOUT)[side]
        run(model, tmp_path / str(side), task="mlm", **kw)
        assert sorted(os.listdir(tmp_path / str(side))) == ["checkpoint-2", "checkpoint-4"]
        fresh = twins("RobertaForMaskedLM", seed=1, **NO_DROPOUT)[side]
        trainer, result = run(fresh, tmp_path / f"resumed{side}", task="mlm",
                              resume=str(tmp_path / str(side) / "checkpoint-2"), **kw)
        assert trainer.state.global_step == 4
        finals.append(fresh)
    ours, theirs = finals
    assert ours.lm_head.decoder.weight is ours.roberta.embeddings.word_embeddings.weight  # still tied
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert_close(a, b)


def test_trainer_evaluate_and_predict_like_transformers(tmp_path):
    ours, theirs = twins("RobertaForTokenClassification", num_labels=3, **NO_DROPOUT)
    results = []
    for model in (ours, theirs):
        trainer = Trainer(model=model, args=args(tmp_path), eval_dataset=Toy("tokens"))
        metrics = trainer.evaluate()
        prediction = trainer.predict(Toy("tokens"))
        results.append((metrics["eval_loss"], prediction.predictions))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    assert_close(torch.as_tensor(results[0][1]), torch.as_tensor(results[1][1]))


def test_gradient_checkpointing_under_trainer_gives_the_same_training(tmp_path):
    plain, _ = twins("RobertaForSequenceClassification", num_labels=3, **NO_DROPOUT)
    checkpointed, _ = twins("RobertaForSequenceClassification", num_labels=3, **NO_DROPOUT)
    _, a = run(plain, tmp_path / "plain")
    _, b = run(checkpointed, tmp_path / "ckpt", gradient_checkpointing=True)
    assert checkpointed.is_gradient_checkpointing and not plain.is_gradient_checkpointing
    assert a.training_loss == pytest.approx(b.training_loss, rel=1e-6)
    for x, y in zip(plain.parameters(), checkpointed.parameters()):
        assert_close(x, y)
