"""transformers.pipeline(task, model=<our model>) gives what it gives over transformers' model (same weights, the
real roberta-base tokenizer)."""
import pytest

from test_modeling_helpers import transformers, twins

CASES = [
    ("fill-mask", "RobertaForMaskedLM", {}, ("Hello <mask> world.",), {"top_k": 3}),
    ("text-classification", "RobertaForSequenceClassification", {"num_labels": 3}, ("I love this.",), {}),
    ("token-classification", "RobertaForTokenClassification", {"num_labels": 3}, ("Paris is in France.",), {}),
    ("question-answering", "RobertaForQuestionAnswering", {}, (),
     {"question": "Where is Paris?", "context": "Paris is in France."}),
]


@pytest.mark.parametrize("task, name, overrides, args, kwargs", CASES, ids=[c[0] for c in CASES])
def test_transformers_pipeline_runs_our_model(roberta_base_dir, task, name, overrides, args, kwargs):
    ours, theirs = twins(name, vocab_size=50265, max_position_embeddings=514, **overrides)
    tokenizer = transformers.AutoTokenizer.from_pretrained(roberta_base_dir)
    # config._commit_hash was missing: transformers.pipeline read it and raised AttributeError
    got = transformers.pipeline(task, model=ours, tokenizer=tokenizer, device="cpu")(*args, **kwargs)
    expected = transformers.pipeline(task, model=theirs, tokenizer=tokenizer, device="cpu")(*args, **kwargs)
    assert str(got) == str(expected)
