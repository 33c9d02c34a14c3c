"""Auto classes resolve RoBERTa checkpoints by model_type / architectures and refuse other model types."""
import json

import pytest
import torch

import roberta.auto as auto
from roberta.config import RobertaConfig
from test_loading_utils import TINY, assert_same_outputs, inputs, ours_cls, theirs

PAIRS = [
    ("AutoModel", "RobertaModel"), ("AutoModelForMaskedLM", "RobertaForMaskedLM"),
    ("AutoModelForCausalLM", "RobertaForCausalLM"), ("AutoModelForSequenceClassification", "RobertaForSequenceClassification"),
    ("AutoModelForTokenClassification", "RobertaForTokenClassification"),
    ("AutoModelForQuestionAnswering", "RobertaForQuestionAnswering"), ("AutoModelForMultipleChoice", "RobertaForMultipleChoice"),
    ("AutoModelForPreTraining", "RobertaForMaskedLM"), ("AutoModelWithLMHead", "RobertaForMaskedLM"),
    ("AutoModelForTextEncoding", "RobertaModel"),
]


@pytest.mark.parametrize("auto_name, class_name", PAIRS)
def test_auto_model_from_pretrained_picks_the_class(tmp_path, auto_name, class_name):
    ref = theirs(class_name)
    ref.save_pretrained(tmp_path)
    model = getattr(auto, auto_name).from_pretrained(tmp_path)
    assert type(model) is ours_cls(class_name)
    assert_same_outputs(model, ref, inputs(class_name))


@pytest.mark.parametrize("auto_name, class_name", PAIRS[:7])
def test_from_config(auto_name, class_name):
    config = RobertaConfig(**TINY, is_decoder=class_name == "RobertaForCausalLM")
    model = getattr(auto, auto_name).from_config(config, attn_implementation="eager", dtype=torch.bfloat16)
    assert type(model) is ours_cls(class_name) and model.dtype == torch.bfloat16
    assert model.config._attn_implementation == "eager"


def test_auto_config(tmp_path):
    theirs("RobertaForMaskedLM").save_pretrained(tmp_path)
    config = auto.AutoConfig.from_pretrained(tmp_path, num_labels=4)
    assert type(config) is RobertaConfig and config.num_labels == 4 and config.hidden_size == 32
    assert auto.AutoConfig.for_model("roberta", hidden_size=64, num_attention_heads=4).hidden_size == 64


def test_old_config_without_model_type_uses_architectures(tmp_path):
    theirs("RobertaForMaskedLM").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["model_type"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert type(auto.AutoModelForMaskedLM.from_pretrained(tmp_path)) is ours_cls("RobertaForMaskedLM")
    del config["architectures"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="has no model_type"):
        auto.AutoConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("model_type", ["bert", "xlm-roberta"])
def test_other_model_types_are_refused(tmp_path, model_type):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type, "hidden_size": 32}))
    message = f"model_type '{model_type}' is not supported by roberta; supported: roberta"
    for call in (auto.AutoConfig.from_pretrained, auto.AutoModel.from_pretrained, auto.AutoTokenizer.from_pretrained):
        with pytest.raises(ValueError, match=message):
            call(tmp_path)
    with pytest.raises(ValueError, match=message):
        auto.AutoConfig.for_model(model_type)


def test_auto_classes_are_not_instantiated():
    with pytest.raises(OSError, match="use AutoModel.from_pretrained"):
        auto.AutoModel()
    with pytest.raises(TypeError, match="needs a config object"):
        auto.AutoModel.from_config("FacebookAI/roberta-base")


def test_config_object_passed_through(tmp_path):
    theirs("RobertaForSequenceClassification").save_pretrained(tmp_path)
    config = auto.AutoConfig.from_pretrained(tmp_path, problem_type="regression")
    model = auto.AutoModelForSequenceClassification.from_pretrained(tmp_path, config=config)
    assert model.config.problem_type == "regression"


def test_foreign_tokenizer_class_refused(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    with pytest.raises(ValueError, match="tokenizer_class 'BertTokenizer' .* is not supported by roberta"):
        auto.AutoTokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("use_fast, module, name", [(True, "fast", "RobertaTokenizerFast"), (False, "slow", "RobertaTokenizer")])
def test_auto_tokenizer_fast_and_slow(tmp_path, roberta_base_dir, use_fast, module, name):
    mod = pytest.importorskip(f"roberta.tokenization.{module}", reason="tokenizer (agent TOK) not available yet")
    for f in ("vocab.json", "merges.txt", "tokenizer.json"):
        (tmp_path / f).write_bytes((roberta_base_dir / f).read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer", "model_max_length": 512}))
    tok = auto.AutoTokenizer.from_pretrained(tmp_path, use_fast=use_fast)
    assert type(tok) is getattr(mod, name)
    assert tok("Hello world")["input_ids"] == [0, 31414, 232, 2]
