"""The model API that ecosystem tools read by duck typing: head pruning, attention switch, FLOP counts, building
from a config and a state dict, push_to_hub, outputs rebuilt from a dict, tracer safety. Each against transformers
on identical weights, or against a hand-computed value."""
import pytest
import torch

from test_modeling_helpers import CLASSES, TINY, assert_close, batch, configs, transformers, twins

import roberta.modeling as ours_mod
from roberta.modeling.outputs import MaskedLMOutput


def test_output_rebuilt_from_one_dict_like_accelerate_does():
    out = MaskedLMOutput(loss=torch.tensor(1.0), logits=torch.ones(2))
    again = type(out)({k: v * 2 for k, v in out.items()})  # accelerate's convert_to_fp32 / recursively_apply
    assert list(again.keys()) == ["loss", "logits"] and again[0] == 2 and torch.equal(again.logits, 2 * torch.ones(2))
    assert again.hidden_states is None
    with pytest.raises(TypeError, match=r"no field\(s\) \['lossy'\]"):
        MaskedLMOutput({"lossy": 1})


@pytest.mark.parametrize("name", ["RobertaModel", "RobertaForMaskedLM", "RobertaForSequenceClassification"])
def test_prune_heads_equals_transformers_and_survives_save_load(name, tmp_path):
    ours, theirs = twins(name, attn_implementation="eager")
    plan = {0: [1, 3], 1: [0]}
    ours.prune_heads(plan)
    theirs.prune_heads(plan)
    ours.prune_heads({0: [3, 2]})  # 3 again is a no-op; 2 is new (an index in the unpruned layer)
    theirs.prune_heads({0: [3, 2]})
    assert ours.config.pruned_heads == {0: [1, 2, 3], 1: [0]}
    ids, mask = batch()
    out = ours(input_ids=ids, attention_mask=mask, output_attentions=True)
    ref = theirs(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert out.attentions[0].shape[1] == 1 and out.attentions[1].shape[1] == 3
    assert_close(out[0], ref[0])
    ours.save_pretrained(tmp_path)
    for cls in (getattr(ours_mod, name), getattr(transformers, name)):
        again = cls.from_pretrained(tmp_path).eval()
        assert_close(again(input_ids=ids, attention_mask=mask)[0], ref[0])


def test_set_attn_implementation_switches_and_rejects_unknown():
    ours, _ = twins("RobertaModel")
    ours.set_attn_implementation("eager")
    assert ours.config._attn_implementation == "eager"
    with pytest.raises(ValueError, match="flash_attention_2.*'sdpa' or 'eager'"):
        ours.set_attn_implementation("flash_attention_2")


@pytest.mark.parametrize("name", CLASSES)
def test_floating_point_ops_and_class_attributes_match_transformers(name):
    ours, theirs = twins(name)
    ids, mask = batch()
    inputs = {"input_ids": ids, "attention_mask": mask}
    assert ours.floating_point_ops(inputs) == theirs.floating_point_ops(inputs) == \
        6 * ids.numel() * ours.num_parameters(exclude_embeddings=True)
    assert ours.floating_point_ops(inputs, exclude_embeddings=False) == \
        theirs.floating_point_ops(inputs, exclude_embeddings=False)
    assert ours.estimate_tokens({"attention_mask": mask}) == 0  # transformers warns and counts 0 too
    for attr in ("_supports_sdpa", "supports_gradient_checkpointing", "main_input_name", "base_model_prefix",
                 "_keys_to_ignore_on_save", "_is_stateful", "is_parallelizable"):
        assert getattr(type(ours), attr) == getattr(type(theirs), attr), attr
    assert set(type(ours)._tied_weights_keys or []) == set(type(theirs)._tied_weights_keys or [])


def test_name_or_path_is_an_instance_attribute(tmp_path):
    ours, _ = twins("RobertaForSequenceClassification")
    assert ours.__dict__["name_or_path"] == ""  # PEFT reads model.__dict__.get("name_or_path")
    ours.save_pretrained(tmp_path)
    again = ours_mod.RobertaForSequenceClassification.from_pretrained(tmp_path)
    assert again.__dict__["name_or_path"] == str(tmp_path) == again.config.name_or_path


@pytest.mark.parametrize("name", ["RobertaForMaskedLM", "RobertaForTokenClassification"])
def test_from_pretrained_none_with_config_and_state_dict(name):
    ours, theirs = twins(name)
    built, info = getattr(ours_mod, name).from_pretrained(None, config=ours.config, state_dict=theirs.state_dict(),
                                                          output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    ids, mask = batch()
    assert_close(built(input_ids=ids, attention_mask=mask)[0], theirs(input_ids=ids, attention_mask=mask)[0])
    assert built.config is not ours.config  # like transformers' _from_config: a copy
    with pytest.raises(ValueError, match="needs config="):
        getattr(ours_mod, name).from_pretrained(None)


def test_legacy_gradient_checkpointing_config_flag():
    ours_cfg, _ = configs()
    ours_cfg.gradient_checkpointing = True
    model = ours_mod.RobertaModel(ours_cfg)
    assert model.is_gradient_checkpointing and not hasattr(model.config, "gradient_checkpointing")


def test_push_to_hub_goes_through_huggingface_hub(monkeypatch, tmp_path):
    import huggingface_hub

    calls = []

    class RepoUrl:
        repo_id = "me/tiny"

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs["private"], kwargs["exist_ok"]))
        return RepoUrl()

    def upload_folder(self, *, repo_id, folder_path, commit_message, **kwargs):
        import os
        calls.append(("upload_folder", repo_id, commit_message, sorted(os.listdir(folder_path))))
        return "commit-info"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    ours, _ = twins("RobertaForMaskedLM")
    assert ours.push_to_hub("tiny", private=True, commit_message="first") == "commit-info"
    assert calls == [("create_repo", "tiny", True, True),
                     ("upload_folder", "me/tiny", "first", ["config.json", "model.safetensors"])]
    calls.clear()
    ours.save_pretrained(tmp_path / "tiny-model", push_to_hub=True)
    assert calls[0][:2] == ("create_repo", "tiny-model") and calls[1][0] == "upload_folder"


def padded_pair():
    """An unpadded example (2, 7) and a padded batch (2, 9) whose second row has 4 padding tokens."""
    g = torch.Generator().manual_seed(1)
    example = torch.randint(3, TINY["vocab_size"], (2, 7), generator=g)
    ids = torch.randint(3, TINY["vocab_size"], (2, 9), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 5:], mask[1, 5:] = 1, 0
    return example, ids, mask


@pytest.mark.parametrize("grad", [True, False])
def test_jit_trace_with_unpadded_example_keeps_the_mask(grad):
    ours, theirs = twins("RobertaForMaskedLM", torchscript=True)
    example, ids, mask = padded_pair()
    with torch.set_grad_enabled(grad):
        traced = torch.jit.trace(ours, (example, torch.ones_like(example)))
        got = traced(ids, mask)[0]
    assert_close(got, theirs(input_ids=ids, attention_mask=mask)[0])


def test_from_pretrained_under_meta_device_raises_clearly(tmp_path):
    ours, _ = twins("RobertaModel")
    ours.save_pretrained(tmp_path)
    with torch.device("meta"):
        with pytest.raises(RuntimeError, match="with a meta device context manager"):
            ours_mod.RobertaModel.from_pretrained(tmp_path)


def test_resize_sets_vocab_size_and_rejects_a_non_integer_multiple():
    ours, theirs = twins("RobertaForMaskedLM")
    ours.resize_token_embeddings(110, pad_to_multiple_of=64)
    theirs.resize_token_embeddings(110, pad_to_multiple_of=64)
    assert ours.vocab_size == theirs.vocab_size == ours.config.vocab_size == 128
    for model in (ours, theirs):
        with pytest.raises(ValueError, match="multiple of `1.3`, which is not and integer"):
            model.resize_token_embeddings(110, pad_to_multiple_of=1.3)
