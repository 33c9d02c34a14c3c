"""split_special_tokens (init and call keyword, as in transformers 4.57): special tokens' text is encoded as plain
text, other added tokens still match. Both of ours equal transformers' fast tokenizer on the real roberta-base
vocabulary (transformers' slow one also splits non-special added tokens; see README)."""
import json

import pytest
import transformers

from roberta import RobertaTokenizer, RobertaTokenizerFast

TEXT = "a <mask> b</s> newtok c<s>"


@pytest.fixture(scope="module")
def theirs(roberta_base_dir):
    tok = transformers.RobertaTokenizerFast.from_pretrained(roberta_base_dir)
    tok.add_tokens(["newtok"])
    return tok


@pytest.fixture(scope="module", params=[RobertaTokenizer, RobertaTokenizerFast], ids=["slow", "fast"])
def ours(request, roberta_base_dir):
    tok = request.param.from_pretrained(roberta_base_dir)
    tok.add_tokens(["newtok"])
    return tok


def test_call_keyword_matches_transformers(ours, theirs):
    for split in (False, True):
        got = ours(TEXT, split_special_tokens=split, return_offsets_mapping=True)
        want = theirs(TEXT, split_special_tokens=split, return_offsets_mapping=True)
        assert got.input_ids == want.input_ids
        assert got["offset_mapping"] == want["offset_mapping"]
        assert got.tokens() == want.tokens()
    assert ours(TEXT, split_special_tokens=True).input_ids != ours(TEXT).input_ids  # it really changes
    assert ours.tokenize(TEXT, split_special_tokens=True) == theirs.tokenize(TEXT, split_special_tokens=True)
    assert "<mask>" not in ours.tokenize(TEXT, split_special_tokens=True)
    assert "newtok" in ours.tokenize(TEXT, split_special_tokens=True)  # not a special token: still one token


def test_init_setting_round_trips_through_files_both_ways(ours, theirs, roberta_base_dir, tmp_path):
    cls = type(ours)
    tok = cls.from_pretrained(roberta_base_dir, split_special_tokens=True)
    ref = transformers.RobertaTokenizerFast.from_pretrained(roberta_base_dir, split_special_tokens=True)
    assert tok.split_special_tokens and tok(TEXT).input_ids == ref(TEXT).input_ids
    assert tok(TEXT, split_special_tokens=False).input_ids == ref(TEXT, split_special_tokens=False).input_ids
    assert tok(["x <mask>", "<s>y"]).input_ids == ref(["x <mask>", "<s>y"]).input_ids  # batched too
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["split_special_tokens"] is True
    assert transformers.AutoTokenizer.from_pretrained(tmp_path).split_special_tokens
    assert cls.from_pretrained(tmp_path).split_special_tokens
    plain = cls.from_pretrained(roberta_base_dir)
    plain.save_pretrained(tmp_path / "plain")
    assert "split_special_tokens" not in json.loads((tmp_path / "plain" / "tokenizer_config.json").read_text())
    assert not plain.split_special_tokens
