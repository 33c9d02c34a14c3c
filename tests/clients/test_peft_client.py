"""PEFT (LoRA) on our models: adapters saved from ours reload onto transformers' model (AutoPeftModel, which reads
base_model_name_or_path) and onto ours, adapters saved from transformers' model reload onto ours, and the merged
model equals the unmerged one."""
import json

import pytest
import torch

from test_modeling_helpers import assert_close, batch, transformers, twins

peft = pytest.importorskip("peft", reason="PEFT tests need peft: pip install 'roberta[clients]'")

import roberta.modeling as ours_mod  # noqa: E402

NAME = "RobertaForSequenceClassification"


def lora():
    # init_lora_weights=False: random adapters, so a reload that dropped them would show in the logits
    return peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=["query", "value"],
                           lora_dropout=0.0, init_lora_weights=False)


@pytest.fixture
def base_folder(tmp_path):
    ours, _ = twins(NAME, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ours.save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def logits(model):
    ids, mask = batch()
    return model(input_ids=ids, attention_mask=mask).logits


def test_lora_trains_saves_and_reloads_both_ways_and_merges(base_folder, tmp_path):
    torch.manual_seed(0)
    model = peft.get_peft_model(getattr(ours_mod, NAME).from_pretrained(base_folder), lora())
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(".query.lora_A." in n for n in trainable) and any(".value.lora_B." in n for n in trainable)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    ids, mask = batch()
    model.train()
    model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 2])).loss.backward()
    optimizer.step()
    model.eval()
    expected = logits(model)
    model.save_pretrained(tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == str(base_folder)  # was null: name_or_path must be an attribute

    theirs = peft.AutoPeftModelForSequenceClassification.from_pretrained(tmp_path / "adapter").eval()
    assert isinstance(theirs.get_base_model(), transformers.RobertaForSequenceClassification)
    assert_close(logits(theirs), expected)
    again = peft.PeftModel.from_pretrained(getattr(ours_mod, NAME).from_pretrained(base_folder),
                                           tmp_path / "adapter").eval()
    assert_close(logits(again), expected)
    merged = again.merge_and_unload()
    assert isinstance(merged, ours_mod.RobertaForSequenceClassification)
    assert_close(logits(merged), expected)


def test_adapter_trained_on_transformers_loads_onto_ours(base_folder, tmp_path):
    torch.manual_seed(0)
    theirs = peft.get_peft_model(getattr(transformers, NAME).from_pretrained(base_folder), lora()).eval()
    theirs.save_pretrained(tmp_path / "adapter")
    ours = peft.PeftModel.from_pretrained(getattr(ours_mod, NAME).from_pretrained(base_folder),
                                          tmp_path / "adapter").eval()
    assert_close(logits(ours), logits(theirs))
