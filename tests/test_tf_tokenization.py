"""return_tensors="tf" in both tokenizers (and pad() of TF tensors), against transformers' tokenizers."""
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow is an optional extra: pip install 'roberta[tf]'")
import transformers  # noqa: E402

import roberta  # noqa: E402

TEXTS = ["Hello world, this is RoBERTa.", "A <mask> here", "short"]


@pytest.mark.parametrize("name", ["RobertaTokenizer", "RobertaTokenizerFast"])
def test_return_tensors_tf_matches_transformers(roberta_base_dir, name):
    ours = getattr(roberta, name).from_pretrained(roberta_base_dir)
    theirs = getattr(transformers, name).from_pretrained(roberta_base_dir)
    for kwargs in ({"padding": True}, {"text_pair": ["pair one", "b", "c"], "padding": "max_length", "max_length": 24}):
        got = ours(TEXTS, return_tensors="tf", **kwargs)
        want = theirs(TEXTS, return_tensors="tf", **kwargs)
        assert sorted(got) == sorted(want)
        for key in want:
            assert tf.is_tensor(got[key]) and got[key].dtype == want[key].dtype, key
            assert got[key].numpy().tolist() == want[key].numpy().tolist(), key
    single = ours("one text", return_tensors="tf")
    assert single["input_ids"].shape == (1, 4)


@pytest.mark.parametrize("name", ["RobertaTokenizer", "RobertaTokenizerFast"])
def test_pad_keeps_tf_tensors(roberta_base_dir, name):
    tok = getattr(roberta, name).from_pretrained(roberta_base_dir)
    padded = tok.pad({"input_ids": [tf.constant([0, 713, 2]), tf.constant([0, 2])]})
    assert tf.is_tensor(padded["input_ids"])  # tensors in, tensors of the same framework out
    assert padded["input_ids"].numpy().tolist() == [[0, 713, 2], [0, 2, 1]]
    assert padded["attention_mask"].numpy().tolist() == [[1, 1, 1], [1, 1, 0]]


def test_ragged_tf_batch_names_the_fix(roberta_base_dir):
    tok = roberta.RobertaTokenizerFast.from_pretrained(roberta_base_dir)
    with pytest.raises(ValueError, match="padding=True"):
        tok(["a", "b c d"], return_tensors="tf")
