"""Pipelines accept what transformers' accept: fill-mask targets="" raises like transformers, QA and
token-classification run on the slow tokenizer (ours gives offsets and word ids) with the fast one's results, and
transformers' keywords for other modalities are accepted as None."""
import pytest

from test_modeling_helpers import transformers, twins

import roberta
from roberta.pipelines import pipeline


@pytest.fixture(scope="module")
def tokenizers(roberta_base_dir):
    return (roberta.RobertaTokenizer.from_pretrained(roberta_base_dir),
            roberta.RobertaTokenizerFast.from_pretrained(roberta_base_dir))


def tiny(name, **overrides):
    return twins(name, vocab_size=50265, max_position_embeddings=514, **overrides)


def test_fill_mask_empty_target_raises_like_transformers(tokenizers, roberta_base_dir):
    ours, theirs = tiny("RobertaForMaskedLM")
    reference = transformers.pipeline("fill-mask", model=theirs, device="cpu",
                                      tokenizer=transformers.AutoTokenizer.from_pretrained(roberta_base_dir))
    with pytest.raises(ValueError, match="At least one target must be provided"):
        reference("Hello <mask>.", targets="")
    fill = pipeline("fill-mask", model=ours, tokenizer=tokenizers[1], device="cpu")
    for targets in ("", [""], []):
        with pytest.raises(ValueError, match="At least one target must be provided"):
            fill("Hello <mask>.", targets=targets)


@pytest.mark.parametrize("task, name, call", [
    ("question-answering", "RobertaForQuestionAnswering",
     dict(question="Where is Paris?", context="Paris is the capital of France, and big.")),
    ("token-classification", "RobertaForTokenClassification",
     dict(inputs="Paris is the capital of France (and big).", aggregation_strategy="first")),
])
def test_slow_tokenizer_gives_the_fast_tokenizers_results(tokenizers, task, name, call):
    ours, _ = tiny(name, num_labels=3) if task == "token-classification" else tiny(name)
    slow, fast = tokenizers
    results = [pipeline(task, model=ours, tokenizer=tok, device="cpu")(**call) for tok in (slow, fast)]
    assert results[0] == results[1] and results[0]


def test_other_modality_keywords_accepted_as_none(tokenizers):
    ours, _ = tiny("RobertaForSequenceClassification")
    classify = pipeline("text-classification", model=ours, tokenizer=tokenizers[1], device="cpu",
                        feature_extractor=None, image_processor=None, processor=None, framework="pt",
                        trust_remote_code=False)
    assert classify("fine")[0]["label"].startswith("LABEL_")
    with pytest.raises(ValueError, match="text-only and take a tokenizer; got image_processor"):
        pipeline("text-classification", model=ours, tokenizer=tokenizers[1], image_processor=object())
    with pytest.raises(ValueError, match="framework='tf'.*PyTorch models only"):
        pipeline("text-classification", model=ours, tokenizer=tokenizers[1], framework="tf")
