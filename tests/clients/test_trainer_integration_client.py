"""roberta.integrations.Trainer (transformers' Trainer saving our models with save_pretrained) driving the real
transformers 4.57.6 Trainer on a tiny masked LM (tied weights): complete checkpoint folders (config, tokenizer,
tied tensors written once) that load in ours and in transformers with equal logits, load_best_model_at_end and
resume_from_checkpoint giving what transformers' own model gives under transformers' Trainer."""
import json
import os

import pytest
import torch
from safetensors import safe_open

from test_modeling_helpers import assert_close, batch, transformers, twins
from test_trainer_client import NO_DROPOUT, Toy, args

import roberta.modeling as ours_mod
from roberta import RobertaTokenizerFast
from roberta.integrations import Trainer

KW = dict(save_strategy="steps", save_steps=2, eval_strategy="steps", eval_steps=2)


def train(trainer_cls, model, out, resume=None, tokenizer=None, **kw):
    trainer = trainer_cls(model=model, args=args(out, **{**KW, **kw}), train_dataset=Toy("mlm"),
                          eval_dataset=Toy("mlm"), processing_class=tokenizer)
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def logits_of(folder):
    ids, mask = batch()
    return [cls.from_pretrained(folder).eval()(input_ids=ids, attention_mask=mask).logits
            for cls in (ours_mod.RobertaForMaskedLM, transformers.RobertaForMaskedLM)]


def test_checkpoints_and_save_model_are_complete_folders_loading_in_both(tmp_path, roberta_base_dir):
    ours = twins("RobertaForMaskedLM", **NO_DROPOUT)[0]
    tokenizer = RobertaTokenizerFast.from_pretrained(roberta_base_dir)
    trainer = train(Trainer, ours, tmp_path / "run", tokenizer=tokenizer)
    checkpoint = tmp_path / "run" / "checkpoint-2"
    files = set(os.listdir(checkpoint))
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.json", "merges.txt",
            "tokenizer_config.json", "special_tokens_map.json", "training_args.bin", "optimizer.pt",
            "trainer_state.json"} <= files
    with safe_open(checkpoint / "model.safetensors", "pt") as f:
        keys = set(f.keys())
    # the tied tensors once, under transformers' kept names
    assert "lm_head.decoder.weight" not in keys and "lm_head.decoder.bias" not in keys
    assert keys == set(ours.state_dict()) - {"lm_head.decoder.weight", "lm_head.decoder.bias"}
    assert json.loads((checkpoint / "config.json").read_text())["architectures"] == ["RobertaForMaskedLM"]

    trainer.save_model(str(tmp_path / "final"))
    mine, theirs = logits_of(tmp_path / "final")
    assert_close(mine, theirs)
    reloaded = ours_mod.RobertaForMaskedLM.from_pretrained(tmp_path / "final")
    for (name, a), b in zip(reloaded.named_parameters(), ours.parameters()):
        assert torch.equal(a, b), name  # the trained weights (the trained model may still run under autocast)
    assert RobertaTokenizerFast.from_pretrained(tmp_path / "final")("a b").input_ids == tokenizer("a b").input_ids


def test_load_best_model_at_end_like_transformers(tmp_path):
    # "best" = the highest eval loss, so the best checkpoint is an earlier one than the last step
    kw = dict(load_best_model_at_end=True, metric_for_best_model="loss", greater_is_better=True)
    ours, theirs = twins("RobertaForMaskedLM", **NO_DROPOUT)
    mine = train(Trainer, ours, tmp_path / "ours", **kw)
    other = train(transformers.Trainer, theirs, tmp_path / "theirs", **kw)
    assert os.path.basename(mine.state.best_model_checkpoint) == os.path.basename(other.state.best_model_checkpoint)
    assert mine.state.best_model_checkpoint.endswith("checkpoint-2")
    best = ours_mod.RobertaForMaskedLM.from_pretrained(mine.state.best_model_checkpoint)
    for (name, a), b, c in zip(ours.named_parameters(), theirs.parameters(), best.parameters()):
        assert torch.equal(a, c), name  # the model now holds the best checkpoint's weights
        assert_close(a, b)
    assert ours.lm_head.decoder.weight is ours.roberta.embeddings.word_embeddings.weight  # still tied


def test_resume_from_checkpoint_like_an_uninterrupted_run_and_transformers(tmp_path):
    ours, theirs = twins("RobertaForMaskedLM", **NO_DROPOUT)
    train(Trainer, ours, tmp_path / "ours")
    train(transformers.Trainer, theirs, tmp_path / "theirs")
    fresh = twins("RobertaForMaskedLM", seed=1, **NO_DROPOUT)[0]
    resumed = train(Trainer, fresh, tmp_path / "resumed", resume=str(tmp_path / "ours" / "checkpoint-2"))
    assert resumed.state.global_step == 4
    for (name, a), b, c in zip(fresh.named_parameters(), ours.parameters(), theirs.parameters()):
        assert_close(a, b)
        assert_close(a, c)
    assert fresh.lm_head.decoder.weight is fresh.roberta.embeddings.word_embeddings.weight
    mine, other = logits_of(tmp_path / "resumed" / "checkpoint-4")
    assert_close(mine, other)


def test_other_models_keep_transformers_behaviour(tmp_path):
    # a model that is not ours goes through transformers' own _save unchanged
    theirs = twins("RobertaForMaskedLM", **NO_DROPOUT)[1]
    trainer = Trainer(model=theirs, args=args(tmp_path))
    trainer.save_model(str(tmp_path / "saved"))
    assert {"config.json", "model.safetensors"} <= set(os.listdir(tmp_path / "saved"))
    assert_close(*logits_of(tmp_path / "saved"))


def test_import_roberta_does_not_import_it_and_a_missing_transformers_names_the_extra():
    from _lazy_extras import missing_extra_message

    out = missing_extra_message("import roberta.integrations", ["roberta.integrations", "transformers"],
                                "transformers", before="import roberta.modeling")
    assert "pip install 'roberta[trainer]'" in out
