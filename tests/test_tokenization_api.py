"""Tokenizer API beyond __call__ parity: bad input, files (save/load both ways with transformers),
special/added tokens, BatchEncoding helpers, pad()."""
import json
import shutil

import pytest

from roberta.tokenization import AddedToken, BatchEncoding, RobertaTokenizer, RobertaTokenizerFast
from test_tokenization_helpers import hf_pair, make_lines, our_pair, small_vocab_dir  # noqa: F401

LINES = make_lines(300, seed=7)
BOTH = (RobertaTokenizer, RobertaTokenizerFast)


@pytest.fixture(scope="module")
def small(small_vocab_dir):
    return our_pair(small_vocab_dir)


@pytest.fixture(scope="module")
def hf_small(small_vocab_dir):
    return hf_pair(small_vocab_dir)


# bad input -----------------------------------------------------------------------------------------------
def _copy_vocab(src, dst):
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(src / name, dst / name)


@pytest.mark.parametrize("cls", BOTH)
@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2, 3]", "JSON object mapping token -> id"),
    ('{"a": "zero"}', "ids must be non-negative integers"),
    ('{"a": 1.5}', "ids must be non-negative integers"),
    ("{}", "empty"),
])
def test_malformed_vocab(tmp_path, small_vocab_dir, cls, content, message):
    _copy_vocab(small_vocab_dir, tmp_path)
    (tmp_path / "vocab.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        cls.from_pretrained(tmp_path)


@pytest.mark.parametrize("cls", BOTH)
def test_missing_vocab_names_the_file(tmp_path, small_vocab_dir, cls):
    shutil.copy(small_vocab_dir / "merges.txt", tmp_path / "merges.txt")
    with pytest.raises(OSError, match="vocab.json"):
        cls.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        cls(vocab_file=str(tmp_path / "nope.json"), merges_file=str(tmp_path / "merges.txt"))


@pytest.mark.parametrize("cls", BOTH)
@pytest.mark.parametrize("line, message", [
    ("Ġ t h", "line 3: expected two symbols"),
    ("Ġt", "line 3: expected two symbols"),
    ("zzzq Ġ", "'zzzq'.*not in the vocabulary"),
])
def test_malformed_merges(tmp_path, small_vocab_dir, cls, line, message):
    _copy_vocab(small_vocab_dir, tmp_path)
    lines = (tmp_path / "merges.txt").read_text().split("\n")
    lines.insert(2, line)
    (tmp_path / "merges.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=message):
        cls.from_pretrained(tmp_path)


def test_malformed_tokenizer_json(tmp_path, small_vocab_dir):
    (tmp_path / "tokenizer.json").write_text("{ broken")
    with pytest.raises(ValueError, match="tokenizer file .* not valid JSON"):
        RobertaTokenizerFast.from_pretrained(tmp_path)


@pytest.mark.parametrize("bad", [5, None, [1, 2, 3], [["a"], "b"], 3.5, {"a": 1}])
def test_wrong_text_types(small, bad):
    for tok in small:
        with pytest.raises((TypeError, ValueError), match="text|str"):
            tok(bad)
        with pytest.raises((TypeError, ValueError), match="text|str"):
            tok.encode(bad)
    with pytest.raises(TypeError, match=r"text\[1\]"):
        small[0](["fine", 7])
    with pytest.raises(TypeError, match="word"):
        small[1]("not a list of words", is_split_into_words=True)


@pytest.mark.parametrize("max_length, pair", [(1, False), (0, False), (3, True)])
def test_max_length_below_special_tokens(small, max_length, pair):
    for tok in small:
        args = ("some text here", "and a pair") if pair else ("some text here",)
        with pytest.raises(ValueError, match=f"max_length={max_length} is smaller than the {4 if pair else 2} special tokens"):
            tok(*args, truncation=True, max_length=max_length)


def test_other_clear_errors(small):
    for tok in small:
        with pytest.raises(ValueError, match="only_second.*pair"):
            tok("a b c d e f g h", truncation="only_second", max_length=4)
        with pytest.raises(ValueError, match="stride"):
            tok("a b c d e f g h i j k", truncation=True, max_length=6, stride=4, return_overflowing_tokens=True)
        with pytest.raises(ValueError, match="padding="):
            tok("x", padding="sideways")
        with pytest.raises(ValueError, match="rows have different lengths"):
            tok(["a", "a b c"], return_tensors="pt")
        with pytest.raises(ValueError, match="multiple of pad_to_multiple_of"):
            tok("x", padding=True, truncation=True, max_length=10, pad_to_multiple_of=8)
        with pytest.raises(TypeError, match="batch_decode"):
            tok.decode([[1, 2], [3]])
        with pytest.raises(ValueError, match="special token attribute"):
            tok.add_special_tokens({"weird_token": "[W]"})


# files ---------------------------------------------------------------------------------------------------
def _same_ids(a, b, lines=LINES):
    kw = dict(padding=True, truncation=True, max_length=64)
    assert a(lines, **kw)["input_ids"] == b(lines, **kw)["input_ids"]
    assert a(lines[:50], lines[50:100], **kw)["input_ids"] == b(lines[:50], lines[50:100], **kw)["input_ids"]


def _customise(tok):
    tok.add_tokens(["newword", AddedToken("<x>", lstrip=True, rstrip=True)])
    tok.add_special_tokens({"additional_special_tokens": ["<extra>"]})
    return tok


@pytest.mark.parametrize("cls", BOTH)
def test_ours_saves_transformers_loads(tmp_path, small_vocab_dir, cls):
    from transformers import RobertaTokenizer as HS
    from transformers import RobertaTokenizerFast as HF

    ours = _customise(cls.from_pretrained(small_vocab_dir))
    written = ours.save_pretrained(tmp_path)
    names = {p.split("/")[-1] for p in written}
    assert names == {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}
    lines = LINES + ["a newword <x> b <extra> c", "x<x>y"]
    for theirs_cls in (HS, HF):
        theirs = theirs_cls.from_pretrained(str(tmp_path))
        assert theirs.model_max_length == 512 and theirs.mask_token == "<mask>"
        assert theirs.additional_special_tokens == ["<extra>"]
        enc_t = theirs(lines)["input_ids"]
        enc_o = ours(lines)["input_ids"]
        # transformers' slow Trie drops the stripped spaces the same way; compare all but its known \x1f quirk
        assert sum(a != b for a, b in zip(enc_o, enc_t)) <= (3 if theirs_cls is HS else 0)
    back = cls.from_pretrained(tmp_path)
    _same_ids(back, ours, lines)
    assert back.added_tokens_encoder == ours.added_tokens_encoder
    assert len(back) == len(ours)


@pytest.mark.parametrize("theirs_index", [0, 1])
def test_transformers_saves_ours_loads(tmp_path, small_vocab_dir, theirs_index):
    from tokenizers import AddedToken as RustAddedToken

    theirs = hf_pair(small_vocab_dir)[theirs_index]
    theirs.add_tokens(["newword", RustAddedToken("<x>", lstrip=True, rstrip=True)])
    theirs.add_special_tokens({"additional_special_tokens": ["<extra>"]})
    theirs.save_pretrained(str(tmp_path))
    lines = LINES + ["a newword <x> b <extra> c"]
    for cls in BOTH:
        ours = cls.from_pretrained(tmp_path)
        assert ours.additional_special_tokens == ["<extra>"]
        assert ours.added_tokens_encoder == theirs.added_tokens_encoder
        assert len(ours) == len(theirs)
        if theirs.is_fast:
            _same_ids(ours, theirs, lines)
        else:
            mism = sum(a != b for a, b in zip(ours(lines)["input_ids"], theirs(lines)["input_ids"]))
            assert mism <= 3


def test_real_files_defaults(roberta_base_dir):
    for cls in BOTH:
        tok = cls.from_pretrained(roberta_base_dir)
        assert tok.model_max_length == 512  # not transformers' 1e30 sentinel
        assert tok.vocab_size == 50265 and len(tok) == 50265
        assert (tok.mask_token_id, tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (50264, 1, 0, 2)
        assert tok.all_special_ids == [0, 2, 3, 1, 50264]
        assert tok("Hello")["input_ids"] == [0, 31414, 2] and tok(" Hello")["input_ids"] == [0, 20920, 2]
        assert tok.tokenize("Encode <mask> sequence") == ["En", "code", "<mask>", "Ġsequence"]
        assert tok.padding_side == "right" and tok.get_vocab()["<mask>"] == 50264


def test_save_vocabulary_prefix_and_not_a_dir(tmp_path, small):
    for tok in small:
        paths = tok.save_vocabulary(tmp_path, filename_prefix="p")
        assert [p.split("/")[-1] for p in paths] == ["p-vocab.json", "p-merges.txt"]
        assert json.loads((tmp_path / "p-vocab.json").read_text()) == tok._base_vocab()
        with pytest.raises(NotADirectoryError):
            tok.save_vocabulary(tmp_path / "p-vocab.json")


# special / added tokens, helpers --------------------------------------------------------------------------
def test_special_token_helpers_match_transformers(small, hf_small):
    hs, hf = hf_small
    for tok in small:
        ids0, ids1 = [10, 11, 12], [20, 21]
        for ref in (hs, hf):
            assert tok.build_inputs_with_special_tokens(ids0) == ref.build_inputs_with_special_tokens(ids0)
            assert tok.build_inputs_with_special_tokens(ids0, ids1) == ref.build_inputs_with_special_tokens(ids0, ids1)
            if not ref.is_fast:  # transformers' fast refuses this form
                assert tok.get_special_tokens_mask(ids0, ids1) == ref.get_special_tokens_mask(ids0, ids1)
                assert tok.get_special_tokens_mask(ids0) == ref.get_special_tokens_mask(ids0)
            assert tok.create_token_type_ids_from_sequences(ids0, ids1) == ref.create_token_type_ids_from_sequences(ids0, ids1)
            seq = [0, 10, hs.mask_token_id, hs.unk_token_id, 2, 1]
            assert tok.get_special_tokens_mask(seq, already_has_special_tokens=True) == \
                ref.get_special_tokens_mask(seq, already_has_special_tokens=True)
            assert tok.num_special_tokens_to_add(True) == ref.num_special_tokens_to_add(True)
            assert tok.all_special_tokens == ref.all_special_tokens and tok.all_special_ids == ref.all_special_ids
            assert tok.special_tokens_map == ref.special_tokens_map
        tokens = tok.convert_ids_to_tokens(list(range(40)))
        assert tokens == hs.convert_ids_to_tokens(list(range(40)))
        assert tok.convert_tokens_to_ids(tokens) == list(range(40))
        assert tok.convert_tokens_to_ids("never-seen-token") == tok.unk_token_id
        assert tok.convert_tokens_to_string(tok.tokenize("héllo wörld")) == "héllo wörld"
        assert tok.get_vocab() == hs.get_vocab() and len(tok) == len(hs) and tok.vocab_size == hs.vocab_size
        assert tok.convert_ids_to_tokens([0, 5, 2], skip_special_tokens=True) == hs.convert_ids_to_tokens([0, 5, 2], skip_special_tokens=True)


def test_add_tokens_matches_transformers(small_vocab_dir):
    ours_pair, theirs = our_pair(small_vocab_dir), hf_pair(small_vocab_dir)[1]
    text = ["I like newword and <x>  here, <extra>!", "newwordnewword", "x <x>y"]
    from tokenizers import AddedToken as RustAddedToken

    for tok in (*ours_pair, theirs):
        cls = AddedToken if tok is not theirs else RustAddedToken
        assert tok.add_tokens(["newword", cls("<x>", lstrip=True, rstrip=True)]) == 2
        assert tok.add_special_tokens({"additional_special_tokens": ["<extra>"]}) == 1
        assert tok.add_tokens(["newword"]) == 0
    ref = theirs(text, return_offsets_mapping=True)
    for tok in ours_pair:
        enc = tok(text, return_offsets_mapping=True)
        assert dict(enc) == dict(ref)
        assert tok.decode(enc["input_ids"][0], skip_special_tokens=True) == theirs.decode(ref["input_ids"][0], skip_special_tokens=True)
        assert len(tok) == len(theirs) and tok.additional_special_tokens_ids == theirs.additional_special_tokens_ids


def test_batch_encoding_helpers(small, hf_small):
    hf = hf_small[1]
    a, b = ["Hello world, AllenNLP rocks", "naïve café"], ["second one", "x"]
    ref = hf(a, b, return_offsets_mapping=True)
    for tok in small:
        enc = tok(a, b, return_offsets_mapping=True)
        assert isinstance(enc, BatchEncoding) and isinstance(enc, dict)
        assert enc.input_ids is enc["input_ids"] and enc.n_sequences == 2
        for i in range(2):
            assert enc.sequence_ids(i) == ref.sequence_ids(i)
            for c in range(len(a[i])):
                assert enc.char_to_token(i, c) == ref.char_to_token(i, c)
                assert enc.char_to_token(i, c % len(b[i]), sequence_index=1) == ref.char_to_token(i, c % len(b[i]), sequence_index=1)
                assert enc.char_to_word(i, c) == ref.char_to_word(i, c)
            for t in range(len(enc["input_ids"][i])):
                assert enc.token_to_word(i, t) == ref.token_to_word(i, t)
                assert enc.token_to_sequence(i, t) == ref.token_to_sequence(i, t)
                assert enc.token_to_chars(i, t) == ref.token_to_chars(i, t)
            for w in sorted({x for x in ref.word_ids(i) if x is not None}):
                assert enc.word_to_tokens(i, w) == ref.word_to_tokens(i, w)
                assert enc.word_to_chars(i, w) == ref.word_to_chars(i, w)
        with pytest.raises(AttributeError, match="no key or attribute"):
            enc.not_a_key
        pt = tok(a, padding=True, return_tensors="pt").to("cpu")
        assert pt["input_ids"].tolist() == hf(a, padding=True)["input_ids"] and pt["input_ids"].device.type == "cpu"
        as_np = tok(a, padding=True).convert_to_tensors("np")
        assert as_np["attention_mask"].shape == pt["attention_mask"].shape
        single = tok("Hello world")
        assert single.word_ids() == hf("Hello world").word_ids() and single.tokens() == hf("Hello world").tokens()


def test_pad_like_transformers(small, hf_small):
    import torch

    hf = hf_small[1]
    feats = [hf(x, return_special_tokens_mask=True) for x in LINES[:20]]
    feats_ours = [dict(f) for f in feats]
    for padding, side, multiple in ((True, "right", None), ("max_length", "left", 8), ("longest", "left", 16)):
        kw = dict(padding=padding, padding_side=side, pad_to_multiple_of=multiple, max_length=512 if padding == "max_length" else None)
        ref = hf.pad(feats, return_tensors="pt", **kw)
        for tok in small:
            out = tok.pad(feats_ours, return_tensors="pt", **kw)
            assert set(out) == set(ref)
            for k in ref:
                assert torch.equal(out[k], ref[k]), k
    tensors = [{"input_ids": torch.tensor(f["input_ids"])} for f in feats]
    for tok in small:
        out = tok.pad(tensors)  # tensor inputs -> tensor outputs, attention mask created
        ref = hf.pad(tensors)
        assert torch.equal(out["input_ids"], ref["input_ids"]) and torch.equal(out["attention_mask"], ref["attention_mask"])
        assert tok.pad({"input_ids": [5, 6]}, padding="max_length", max_length=4) == {"input_ids": [5, 6, 1, 1], "attention_mask": [1, 1, 0, 0]}


def test_encode_plus_and_batch_encode_plus(small, hf_small):
    hf = hf_small[1]
    for tok in small:
        assert dict(tok.encode_plus("a b", "c d", return_token_type_ids=True)) == dict(hf.encode_plus("a b", "c d", return_token_type_ids=True))
        pairs = [("a b", "c"), ("hello", "world there")]
        assert dict(tok.batch_encode_plus(pairs, padding=True)) == dict(hf.batch_encode_plus(pairs, padding=True))
        assert dict(tok.batch_encode_plus(["x y", "z"])) == dict(hf.batch_encode_plus(["x y", "z"]))
        assert dict(tok(pairs)) == dict(hf(pairs))
        assert dict(tok("x", text_target="y z")) == dict(hf("x", text_target="y z"))
        assert tok.encode("a b", "c") == hf.encode("a b", "c")
        assert tok.max_len_single_sentence == 510 and tok.max_len_sentences_pair == 508


def test_pickle_tokenizers_and_encodings(small):
    import pickle

    for tok in small:
        enc = tok(["héllo <mask> world", "x"], ["pair", "two"], return_offsets_mapping=True)
        back = pickle.loads(pickle.dumps(enc))
        assert dict(back) == dict(enc)
        assert back.word_ids(0) == enc.word_ids(0) and back.tokens(0) == enc.tokens(0)
        assert len(pickle.dumps(enc)) < 20_000  # the slow tokenizer itself does not travel with its outputs
        clone = pickle.loads(pickle.dumps(tok))
        assert clone(LINES[:50])["input_ids"] == tok(LINES[:50])["input_ids"]


def test_fast_add_prefix_space_setter_reconfigures_backend(small_vocab_dir):
    _, hf_prefix = hf_pair(small_vocab_dir, add_prefix_space=True)
    _, fast = our_pair(small_vocab_dir)
    fast.add_tokens(["newword"])
    hf_prefix.add_tokens(["newword"])
    fast.add_prefix_space = True  # transformers ignores this after construction (issue #11057); we do not
    assert fast.backend_tokenizer.pre_tokenizer.add_prefix_space is True
    text = ["hello newword x", "newword"]
    assert dict(fast(text, return_offsets_mapping=True)) == dict(hf_prefix(text, return_offsets_mapping=True))


def test_model_max_length_default_drives_truncation_and_padding(small, hf_small):
    hf = hf_small[1]  # built with model_max_length=512, what ours uses when tokenizer_config.json lacks it
    long_text = " ".join(["word"] * 700)
    for tok in small:
        assert len(tok(long_text, truncation=True)["input_ids"]) == 512
        assert dict(tok("x", padding="max_length")) == dict(hf("x", padding="max_length"))
        assert dict(tok(long_text, truncation=True)) == dict(hf(long_text, truncation=True))


def test_prepare_for_model_and_row_views(small, hf_small):
    hs, hf = hf_small
    ids_a, ids_b = hf.encode("some words here", add_special_tokens=False), hf.encode("and more", add_special_tokens=False)
    kw = dict(truncation=True, max_length=7, padding="max_length", return_special_tokens_mask=True)
    for tok in small:
        for ref in (hs, hf):
            if ref.is_fast:  # transformers' fast prepare_for_model cannot return the special tokens mask
                kw = {k: v for k, v in kw.items() if k != "return_special_tokens_mask"}
            assert dict(tok.prepare_for_model(ids_a, ids_b, **kw)) == dict(ref.prepare_for_model(ids_a, ids_b, **kw))
            assert dict(tok.prepare_for_model(ids_a)) == dict(ref.prepare_for_model(ids_a))
        enc, ref = tok(["héllo world", "x y"], return_offsets_mapping=True), hf(["héllo world", "x y"], return_offsets_mapping=True)
        for i in range(2):
            for attr in ("ids", "tokens", "offsets", "word_ids", "sequence_ids", "attention_mask", "type_ids"):
                assert getattr(enc[i], attr) == getattr(ref[i], attr) == getattr(enc.encodings[i], attr), attr
    assert small[0].byte_decoder[small[0].byte_encoder[32]] == 32 and small[1]._tokenizer is small[1].backend_tokenizer
    assert small[0].vocab == small[1].vocab == hf.vocab


def test_public_names_resolve():
    import roberta
    import roberta.tokenization as t
    from roberta.tokenization import base

    assert base.BatchEncoding is t.BatchEncoding and base.AddedToken is t.AddedToken
    assert roberta.BatchEncoding is t.BatchEncoding and roberta.RobertaTokenizerFast is t.RobertaTokenizerFast
