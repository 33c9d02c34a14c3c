"""RobertaConfig: parity with transformers' RobertaConfig (to_dict, diff dict, files both ways) and validation."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import transformers

from roberta.auto import AutoConfig
from roberta.config import ACTIVATIONS, PretrainedConfig, RobertaConfig, dtype_name

# roberta-base's config.json as published (transformers 4.x era), the settings users actually load.
ROBERTA_BASE_JSON = {
    "architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
    "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 514,
    "model_type": "roberta", "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1,
    "type_vocab_size": 1, "vocab_size": 50265, "torch_dtype": "float32", "transformers_version": "4.20.0",
}

CASES = [
    {},
    {"num_labels": 5, "dtype": "float16", "custom_key": [1, 2]},
    {"id2label": {"0": "NEG", "1": "POS"}, "label2id": {"NEG": 0, "POS": 1}, "problem_type": "regression"},
    {"is_decoder": True, "add_cross_attention": True, "attn_implementation": "eager", "output_hidden_states": True},
    {k: v for k, v in ROBERTA_BASE_JSON.items() if k != "model_type"},
    {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
     "hidden_act": "gelu_new", "classifier_dropout": 0.3, "torchscript": True, "tie_word_embeddings": False},
    {"pruned_heads": {0: [1, 2], 3: [0]}, "gradient_checkpointing": True},  # pruned heads; a legacy key
    {"num_beams": 4, "max_length": 64, "do_sample": True, "temperature": 0.7, "top_k": 5, "bad_words_ids": [[5]],
     "no_repeat_ngram_size": 2, "decoder_start_token_id": 0},  # generation settings kept on old configs
]


def _theirs_to_dict(cfg, diff=False):
    d = cfg.to_diff_dict() if diff else cfg.to_dict()
    d.pop("transformers_version", None)
    return d


@pytest.mark.parametrize("kwargs", CASES)
def test_to_dict_and_diff_dict_match_transformers(kwargs):
    ours, theirs = RobertaConfig(**kwargs), transformers.RobertaConfig(**kwargs)
    assert ours.to_dict() == _theirs_to_dict(theirs)
    assert ours.to_diff_dict() == _theirs_to_dict(theirs, diff=True)
    assert ours.use_return_dict == theirs.use_return_dict
    assert ours.num_labels == theirs.num_labels


@pytest.mark.parametrize("kwargs", CASES)
def test_file_round_trip_both_ways(tmp_path, kwargs):
    ours = RobertaConfig(**kwargs)
    ours.save_pretrained(tmp_path / "ours")
    theirs = transformers.RobertaConfig.from_pretrained(tmp_path / "ours")
    assert _theirs_to_dict(theirs) == {**ours.to_dict(), "_name_or_path": theirs._name_or_path}

    transformers.RobertaConfig(**kwargs).save_pretrained(tmp_path / "theirs")
    back = RobertaConfig.from_pretrained(tmp_path / "theirs")
    assert back.to_diff_dict() == ours.to_diff_dict()
    assert back._name_or_path == theirs._name_or_path == ""  # as transformers: only models / AutoConfig record it
    assert AutoConfig.from_pretrained(tmp_path / "theirs")._name_or_path == str(tmp_path / "theirs")
    assert [p.name for p in (tmp_path / "ours").iterdir()] == ["config.json"]  # no temp file left behind


def test_class_defaults_are_berts_not_roberta_base():
    c = RobertaConfig()
    assert (c.max_position_embeddings, c.type_vocab_size, c.layer_norm_eps) == (512, 2, 1e-12)
    assert (c.pad_token_id, c.bos_token_id, c.eos_token_id, c.vocab_size) == (1, 0, 2, 50265)
    assert c._attn_implementation is None and c.dtype is None and c.id2label == {0: "LABEL_0", 1: "LABEL_1"}


def test_roberta_base_json_with_legacy_torch_dtype(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(ROBERTA_BASE_JSON))
    c = RobertaConfig.from_pretrained(tmp_path)
    assert c.dtype is torch.float32 and c.torch_dtype is torch.float32
    assert (c.max_position_embeddings, c.type_vocab_size, c.layer_norm_eps) == (514, 1, 1e-5)
    assert c.architectures == ["RobertaForMaskedLM"]
    assert "transformers_version" not in c.to_dict() and "torch_dtype" not in c.to_dict()
    assert c.to_diff_dict()["dtype"] == "float32"


# Run in a fresh interpreter: loading and saving a config with a dtype must not import torch (Flax and TF
# users never read config.dtype); reading the attribute then does.
DTYPE_WITHOUT_TORCH = """
import json, sys
from roberta import RobertaConfig
for folder in sys.argv[1:]:
    c = RobertaConfig.from_pretrained(folder)
    c.save_pretrained(folder + "/out")
    print(c.to_dict()["dtype"], json.load(open(folder + "/out/config.json"))["dtype"], "torch" in sys.modules)
print(repr(c.dtype), "torch" in sys.modules)
"""


def test_config_dtype_loads_without_torch_and_reads_as_transformers(tmp_path):
    folders = []
    for key in ("dtype", "torch_dtype"):  # torch_dtype: configs saved before transformers 4.56
        folder = tmp_path / key
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"model_type": "roberta", key: "bfloat16"}))
        folders.append(str(folder))
    result = subprocess.run([sys.executable, "-c", DTYPE_WITHOUT_TORCH, *folders], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["bfloat16 bfloat16 False"] * 2 + ["torch.bfloat16 True"]
    for folder in folders:
        theirs = transformers.RobertaConfig.from_pretrained(folder)
        ours = RobertaConfig.from_pretrained(folder)
        assert ours.dtype is theirs.dtype is torch.bfloat16 and ours.torch_dtype is torch.bfloat16
        assert ours.to_dict()["dtype"] == theirs.to_dict()["dtype"] == "bfloat16"


FRAMEWORK_WITHOUT_TORCH = """
import sys, numpy as np, roberta
model_class = getattr(roberta, sys.argv[1] + "RobertaForMaskedLM")
model_class.from_pretrained(sys.argv[2]).save_pretrained(sys.argv[3])  # safetensors in, the framework's own file out
logits = model_class.from_pretrained(sys.argv[3])(np.array([[0, 31, 52, 2, 1]]), attention_mask=np.array([[1, 1, 1, 1, 0]])).logits
assert "torch" not in sys.modules, "torch was imported"
np.save(sys.argv[4], np.asarray(logits))
"""


@pytest.mark.parametrize("framework, package", [("Flax", "flax"), ("TF", "tensorflow")])
def test_flax_and_tf_load_a_dtype_config_without_torch(framework, package, tmp_path):
    """A Flax or TF user loading a PyTorch-saved folder (safetensors, config.json with "dtype": "float32") and
    saving it in the framework's own format imports no torch, and gets our PyTorch model's outputs."""
    pytest.importorskip(package, reason=f"pip install 'roberta[{framework.lower()}]'")
    from roberta import RobertaForMaskedLM

    torch.manual_seed(0)
    pt = RobertaForMaskedLM(RobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                          intermediate_size=37, max_position_embeddings=40, type_vocab_size=1)).eval()
    pt.save_pretrained(tmp_path / "pt")
    assert json.loads((tmp_path / "pt" / "config.json").read_text())["dtype"] == "float32"
    args = [framework, str(tmp_path / "pt"), str(tmp_path / "own"), str(tmp_path / "logits.npy")]
    result = subprocess.run([sys.executable, "-c", FRAMEWORK_WITHOUT_TORCH, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    want = pt(torch.tensor([[0, 31, 52, 2, 1]]), attention_mask=torch.tensor([[1, 1, 1, 1, 0]])).logits.detach().numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), want, atol=1e-5)


@pytest.mark.parametrize("given", ["half", torch.float16, "float"])
def test_dtype_aliases_are_saved_as_transformers_saves_them(given):
    theirs = transformers.RobertaConfig(dtype=given)
    ours = RobertaConfig(dtype=given)
    assert ours.dtype is theirs.dtype
    assert ours.to_dict()["dtype"] == theirs.to_dict()["dtype"] == ("float32" if given == "float" else "float16")
    assert ours == RobertaConfig(dtype=theirs.dtype) == RobertaConfig(dtype=str(theirs.dtype))  # "torch.float16" too


def test_dtype_name_table_knows_every_torch_dtype():
    """config.py checks dtype names against its own table (so it needs no torch): it must cover the installed
    torch's dtypes, aliases included."""
    for name in dir(torch):
        if isinstance(getattr(torch, name), torch.dtype):
            assert dtype_name(name) == str(getattr(torch, name)).removeprefix("torch."), name
    with pytest.raises(ValueError, match="dtype must be a torch dtype or its name"):
        RobertaConfig(dtype=3)


def test_labels_property_and_setter():
    c = RobertaConfig(num_labels=3)
    assert c.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"} and c.label2id["LABEL_2"] == 2
    c.num_labels = 4
    assert c.num_labels == 4 and c.label2id == {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2, "LABEL_3": 3}
    c = RobertaConfig.from_dict({"id2label": {"0": "neg", "1": "pos"}})
    assert c.id2label == {0: "neg", 1: "pos"} and c.label2id == {"neg": 0, "pos": 1}
    with pytest.raises(ValueError, match="id2label must be a dict"):
        RobertaConfig(id2label=["a", "b"])


def test_overrides_and_unused_kwargs(tmp_path):
    RobertaConfig(hidden_size=32, num_attention_heads=4).save_pretrained(tmp_path)
    c, unused = RobertaConfig.from_pretrained(
        tmp_path, num_labels=3, is_decoder=True, problem_type="multi_label_classification",
        attn_implementation="eager", not_a_field=7, return_unused_kwargs=True,
    )
    assert (c.num_labels, c.is_decoder, c.problem_type, c._attn_implementation) == (3, True, "multi_label_classification", "eager")
    assert unused == {"not_a_field": 7}
    with pytest.raises(ValueError, match="num_labels=3 does not match id2label"):
        RobertaConfig.from_pretrained(tmp_path, num_labels=3, id2label={0: "a", 1: "b"})
    c = RobertaConfig.from_pretrained(tmp_path, id2label={"0": "a", "1": "b", "2": "c"})
    assert c.num_labels == 3 and c.label2id == {"a": 0, "b": 1, "c": 2}


@pytest.mark.parametrize("kwargs, message", [
    ({"hidden_size": 30, "num_attention_heads": 4}, r"hidden size \(30\) is not a multiple of the number of attention heads \(4\)"),
    ({"hidden_size": 0}, "hidden_size must be a positive integer"),
    ({"vocab_size": -5}, "vocab_size must be a positive integer"),
    ({"num_hidden_layers": -1}, "num_hidden_layers must be a non-negative"),
    ({"num_hidden_layers": 1e6}, "num_hidden_layers must be a non-negative integer, got 1000000.0"),
    ({"num_hidden_layers": 1_000_000}, r"num_hidden_layers=1000000 is beyond any real RoBERTa \(limit 1,000\)"),
    ({"max_position_embeddings": 10**9}, r"max_position_embeddings=1000000000 is beyond any real RoBERTa"),
    ({"layer_norm_eps": 0.0}, "layer_norm_eps must be a positive number"),
    ({"layer_norm_eps": -1e-5}, "layer_norm_eps must be a positive number"),
    ({"vocab_size": 10, "pad_token_id": 10}, r"pad_token_id=10 is not a token of the vocabulary \(ids 0..9\)"),
    ({"pad_token_id": -1}, "pad_token_id=-1 is not a token of the vocabulary"),
    ({"hidden_act": "gelu_nonexistent"}, "hidden_act 'gelu_nonexistent' is not supported"),
    ({"position_embedding_type": "rotary"}, "position_embedding_type 'rotary'"),
    ({"hidden_dropout_prob": 1.5}, r"hidden_dropout_prob must be in \[0, 1\]"),
])
def test_validation_errors(kwargs, message):
    """Like transformers, the config holds any value; validate() (run when a model is built or loaded) names
    the bad one."""
    config = RobertaConfig(**kwargs)
    with pytest.raises(ValueError, match=message):
        config.validate()


@pytest.mark.parametrize("kwargs, message", [
    ({"problem_type": "ranking"}, "problem_type 'ranking' is not one of"),
    ({"dtype": "float17"}, "dtype 'float17' is not a torch dtype"),
])
def test_construction_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RobertaConfig(**kwargs)


def test_construction_accepts_what_transformers_accepts():
    """transformers' ConfigTester builds RobertaConfig(hidden_size=0) and hidden sizes heads do not divide;
    the heads check belongs to building attention (validate_for_attention), as in transformers."""
    from transformers import RobertaConfig as HFConfig

    for kwargs in ({"hidden_size": 0}, {"hidden_size": 30, "num_attention_heads": 4}, {"layer_norm_eps": 0}):
        assert RobertaConfig(**kwargs).to_dict()["hidden_size"] == HFConfig(**kwargs).to_dict()["hidden_size"]
    with pytest.raises(ValueError, match=r"hidden size \(30\) is not a multiple"):
        RobertaConfig(hidden_size=30, num_attention_heads=4).validate_for_attention()
    RobertaConfig(hidden_size=30, num_attention_heads=4, embedding_size=16).validate_for_attention()  # factorised: exempt


def test_overrides_are_validated_when_the_model_loads(tmp_path):
    from roberta import RobertaModel

    model = RobertaModel(RobertaConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=16, max_position_embeddings=12))
    model.save_pretrained(tmp_path)
    assert RobertaConfig.from_pretrained(tmp_path, hidden_size=101).hidden_size == 101  # a config holds it
    with pytest.raises(ValueError, match=r"config\.json: The hidden size \(101\) is not a multiple"):
        RobertaModel.from_pretrained(tmp_path, hidden_size=101)


def test_all_listed_activations_exist_in_transformers():
    from transformers.activations import ACT2CLS

    assert set(ACTIVATIONS) <= set(ACT2CLS)


def test_not_json_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text("{'hidden_size': 768,}")
    with pytest.raises(ValueError, match=r"config\.json is not a valid JSON file: Expecting property name"):
        RobertaConfig.from_pretrained(tmp_path)


def test_wrong_model_type_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    with pytest.raises(ValueError, match="model_type 'bert'.*RobertaConfig expects 'roberta'"):
        RobertaConfig.from_pretrained(tmp_path)
    assert PretrainedConfig.from_pretrained(tmp_path).hidden_size == 768  # the generic base does not check


def test_missing_folder_and_missing_file(tmp_path):
    with pytest.raises(OSError, match="config.json not found in folder"):
        RobertaConfig.from_pretrained(tmp_path)
    with pytest.raises(OSError, match="neither an existing folder nor a valid hub id"):
        RobertaConfig.from_pretrained(str(tmp_path / "no" / "such" / "dir"))


def test_unknown_keys_round_trip(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta", "my_flag": {"a": 1}, "hidden_size": 64,
                                                      "num_attention_heads": 4}))
    c = RobertaConfig.from_pretrained(tmp_path)
    assert c.my_flag == {"a": 1}
    c.save_pretrained(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "config.json").read_text())["my_flag"] == {"a": 1}


def test_output_attentions_needs_eager():
    c = RobertaConfig()
    c.output_attentions = True  # no backend chosen yet: switches to eager, as transformers does
    assert c._attn_implementation == "eager"
    c = RobertaConfig(attn_implementation="sdpa")
    with pytest.raises(ValueError, match="output_attentions=True needs attn_implementation='eager'"):
        c.output_attentions = True


def test_dtype_forms_eq_repr_update_json_string():
    assert RobertaConfig(dtype=torch.bfloat16).dtype is torch.bfloat16
    assert RobertaConfig(torch_dtype="float16").dtype is torch.float16
    assert RobertaConfig(dtype="bfloat16").to_dict()["dtype"] == "bfloat16"
    a, b = RobertaConfig(hidden_size=64, num_attention_heads=4), RobertaConfig(hidden_size=64, num_attention_heads=4)
    assert a == b
    b.update({"vocab_size": 10})
    assert a != b and b.vocab_size == 10
    assert repr(a).startswith("RobertaConfig {") and '"hidden_size": 64' in repr(a)
    assert a.to_json_string(use_diff=False) == json.dumps(a.to_dict(), indent=2, sort_keys=True) + "\n"
    assert transformers.RobertaConfig(hidden_size=64, num_attention_heads=4).to_json_string().replace(
        '  "transformers_version": "4.57.6",\n', "") == a.to_json_string()


def test_from_json_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(ROBERTA_BASE_JSON))
    assert RobertaConfig.from_json_file(path).max_position_embeddings == 514
    assert RobertaConfig.from_pretrained(path).max_position_embeddings == 514  # a direct .json path works too


def test_subfolder(tmp_path):
    RobertaConfig(hidden_size=48, num_attention_heads=3).save_pretrained(tmp_path / "test")
    assert RobertaConfig.from_pretrained(tmp_path, subfolder="test").hidden_size == 48
    with pytest.raises(OSError, match="subfolder 'nope' not found"):
        RobertaConfig.from_pretrained(tmp_path, subfolder="nope")


def test_text_config_sub_configs_and_pruned_heads_round_trip(tmp_path):
    config = RobertaConfig(pruned_heads={"1": {2, 0}})
    assert config.get_text_config() is config and config.get_text_config(decoder=True) is config
    assert RobertaConfig.sub_configs == transformers.RobertaConfig.sub_configs == {}
    assert config.pruned_heads == {1: [0, 2]}
    config.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["pruned_heads"] == {"1": [0, 2]}
    assert RobertaConfig.from_pretrained(tmp_path).pruned_heads == {1: [0, 2]}
    assert transformers.RobertaConfig.from_pretrained(tmp_path).pruned_heads == {1: [0, 2]}
