"""Our pipelines against transformers 4.57.6's own pipelines, on the same tiny random models and tokenizers.

Each model folder is saved by transformers; ours loads it through roberta.auto. Both tokenizers are tested:
one trained here (always) and the real roberta-base one (skipped when ../shared is absent).
"""
from __future__ import annotations

import logging

import pytest
import torch

from test_pipeline_models import save_tiny_model, tokenizer_dir, trained_tokenizer_dir  # noqa: F401 (fixtures)

transformers = pytest.importorskip("transformers")
from roberta.pipelines import pipeline  # noqa: E402

ATOL = 1e-4
POSITIONS = 66  # 64 usable tokens: long-input paths are cheap to reach


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads; on a shared machine extra threads only spin. Restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dirs(tokenizer_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    dirs = {task: save_tiny_model(task, tokenizer_dir, root / task, max_positions=POSITIONS,
                                  num_labels=2 if task == "question-answering" else 5)
            for task in ("fill-mask", "text-classification", "token-classification", "question-answering",
                         "feature-extraction")}
    dirs["regression"] = save_tiny_model("text-classification", tokenizer_dir, root / "regression",
                                         max_positions=POSITIONS, num_labels=1, problem_type="regression")
    dirs["one-label"] = save_tiny_model("text-classification", tokenizer_dir, root / "one-label",
                                        max_positions=POSITIONS, num_labels=1)
    # one tokenizer object per side, shared by every pipeline (loading a 50k vocabulary is the slow part)
    from roberta.auto import AutoTokenizer

    _tokenizers[str(root)] = (transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir)),
                              AutoTokenizer.from_pretrained(str(tokenizer_dir)))
    return dirs


_cache: dict = {}
_tokenizers: dict = {}


def both(task, path):
    """(transformers pipeline, our pipeline) on the same folder, CPU, float32."""
    key = (task, str(path))
    if key not in _cache:
        ref_task = "text-classification" if task in ("regression", "one-label") else task
        ref_tok, our_tok = _tokenizers[str(path.parent)]
        _cache[key] = (transformers.pipeline(ref_task, model=str(path), tokenizer=ref_tok, device=-1),
                       pipeline(ref_task, model=str(path), tokenizer=our_tok, device=-1))
    return _cache[key]


def assert_same(ours, ref, *, ignore=()):
    """Recursive equality; floats to ATOL, keys in `ignore` skipped."""
    if isinstance(ref, dict):
        assert set(ours) == set(ref), (ours, ref)
        for key in ref:
            if key not in ignore:
                assert_same(ours[key], ref[key], ignore=ignore)
    elif isinstance(ref, (list, tuple)):
        assert isinstance(ours, (list, tuple)) and len(ours) == len(ref), (ours, ref)
        for a, b in zip(ours, ref):
            assert_same(a, b, ignore=ignore)
    elif isinstance(ref, float) or hasattr(ref, "dtype"):
        assert abs(float(ours) - float(ref)) <= ATOL, (ours, ref)
    else:
        assert ours == ref, (ours, ref)


# ----------------------------------------------------------------------------------------------- fill-mask
FILL_TEXTS = ["The capital of France is <mask>.", "Mozart lived in <mask> with his family",
              "<mask> is a robustly optimized approach.", "Tokenizers split <mask>"]


def test_fill_mask_top_k_and_batches(model_dirs):
    ref, ours = both("fill-mask", model_dirs["fill-mask"])
    for text in FILL_TEXTS:
        assert_same(ours(text), ref(text))
        assert_same(ours(text, top_k=2), ref(text, top_k=2))
    expected = ref(FILL_TEXTS, top_k=3)
    assert_same(ours(FILL_TEXTS, top_k=3, batch_size=3), expected)  # padded, length-sorted batches
    lazy = ours(iter(FILL_TEXTS), top_k=3, batch_size=2)
    assert not isinstance(lazy, list)
    assert_same(list(lazy), expected)
    assert_same(ours(FILL_TEXTS[:1]), ref(FILL_TEXTS[:1]))  # a list of one text: that text's result


def test_length_batches_cut_where_padding_costs_more_than_a_forward_pass():
    from roberta.pipelines.base import length_batches

    # equal lengths: plain slices of batch_size, the full ones first
    assert length_batches([5] * 10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert length_batches([], 4) == [] and length_batches([7], 4) == [(0, 1)]
    # one batch costs 96 + 8 x 100 = 896 token rows; cut in two 96 + 4 x 10 + 96 + 4 x 100 = 632
    assert length_batches([10] * 4 + [100] * 4, 8, overhead=96) == [(0, 4), (4, 8)]
    # together 96 + 2 x 11 = 118; apart 96 + 10 + 96 + 11 = 213: not worth another pass
    assert length_batches([10, 11], 8, overhead=96) == [(0, 2)]
    # no overhead: every distinct length its own batch (never more than batch_size)
    assert length_batches([1, 1, 2, 3, 3, 3], 2, overhead=0) == [(0, 2), (2, 3), (3, 5), (5, 6)]


def test_pipelines_pack_weights_on_cpu_float32_by_default(model_dirs):
    """Every pipeline in this file runs on packed weights (the default on CPU in float32) and matches
    transformers; pack_weights=False keeps none and gives the same results."""
    from roberta.modeling.fused import is_packed, packing_available

    ref, ours = both("fill-mask", model_dirs["fill-mask"])
    packed = [name for name, m in ours.model.named_modules() if is_packed(m)]
    assert len(packed) == (2 * 6 if packing_available() else 0)
    assert all(".encoder.layer." in f".{name}" for name in packed)
    plain = pipeline("fill-mask", model=str(model_dirs["fill-mask"]), device=-1, pack_weights=False)
    assert not any(is_packed(m) for m in plain.model.modules())
    for text in FILL_TEXTS:
        assert_same(plain(text), ref(text))


def test_fill_mask_targets_in_vocabulary(model_dirs):
    ref, ours = both("fill-mask", model_dirs["fill-mask"])
    tok = ref.tokenizer
    targets = tok.convert_ids_to_tokens([tok(w, add_special_tokens=False)["input_ids"][0] for w in (" the", " capital", "s")])
    for text in FILL_TEXTS[:2]:
        assert_same(ours(text, targets=targets), ref(text, targets=targets))
        assert_same(ours(text, targets=targets, top_k=2), ref(text, targets=targets, top_k=2))


def test_fill_mask_target_outside_vocabulary_uses_spaced_form(model_dirs, caplog):
    ref, ours = both("fill-mask", model_dirs["fill-mask"])
    tok = ref.tokenizer
    word = "Salzburgerlandish"
    assert word not in tok.get_vocab()
    ref_id = tok(word, add_special_tokens=False)["input_ids"][0]  # transformers: first piece of "Salz..." unspaced
    spaced = tok(" " + word, add_special_tokens=False)["input_ids"]
    assert len(spaced) > 1
    with caplog.at_level(logging.WARNING):
        out = ours(FILL_TEXTS[1], targets=[word])
    assert [r["token"] for r in out] == [spaced[0]]  # ours: first piece of " Salz..." (a word after a space)
    assert "scored by its first token" in caplog.text
    assert [r["token"] for r in ref(FILL_TEXTS[1], targets=[word])] == [ref_id]  # the difference, shown
    full = ref(FILL_TEXTS[1], top_k=len(tok))
    by_token = {r["token"]: r["score"] for r in full}
    assert abs(out[0]["score"] - by_token[spaced[0]]) <= ATOL  # a full-vocabulary probability, not renormalised


def test_fill_mask_several_masks(model_dirs):
    ref, ours = both("fill-mask", model_dirs["fill-mask"])
    text = "Paris <mask> the capital of <mask>."
    got, expected = ours(text, top_k=3), ref(text, top_k=3)
    assert_same(got, expected, ignore=("sequence",))  # same tokens and scores for each mask
    for m, row in enumerate(got):
        for r in row:
            parts = text.split(" <mask>")
            filled = r["token_str"] if r["token"] not in ref.tokenizer.all_special_ids else ""
            want = parts[0] + (filled if m == 0 else " <mask>") + parts[1] + (filled if m == 1 else " <mask>") + parts[2]
            assert r["sequence"] == want
    # transformers keeps <s></s> and loses the space before the mask it did not fill
    assert expected[0][0]["sequence"].startswith("<s>") and "of<mask>" in expected[0][0]["sequence"]


def test_fill_mask_errors_and_long_inputs(model_dirs, caplog):
    _, ours = both("fill-mask", model_dirs["fill-mask"])
    with pytest.raises(ValueError, match="<mask>"):
        ours("no mask here")
    with pytest.raises(ValueError, match="limit"):
        ours("word " * 100 + "<mask>")
    short = "The capital of France is <mask>."
    with caplog.at_level(logging.WARNING):
        got = ours(short + " word" * 100 + " <mask>")
    assert "mask(s) 2 of 2" in caplog.text
    assert isinstance(got, list) and len(got) == 5 and isinstance(got[0], dict)  # one mask left: one list


def test_top_k_beyond_what_exists_and_bad_top_k(model_dirs, caplog):
    """fill-mask top_k past the vocabulary: the whole vocabulary ranked, one warning naming both numbers
    (transformers: a raw RuntimeError from torch.topk); text-classification and question-answering give what
    exists, as transformers does (less its zero-score filler answers). A top_k that is not an int >= 1 is a ValueError naming top_k everywhere."""
    ref, ours = both("fill-mask", model_dirs["fill-mask"])
    vocab = ref.model.config.vocab_size
    with pytest.raises(RuntimeError, match="out of range"):  # what we are better than
        ref(FILL_TEXTS[0], top_k=vocab + 50)
    with caplog.at_level(logging.WARNING):
        got = ours(FILL_TEXTS[:2], top_k=vocab + 50, batch_size=2)
    for text, predictions in zip(FILL_TEXTS[:2], got):  # (the far tail's near-ties may order differently)
        assert sorted(p["token"] for p in predictions) == list(range(vocab))
        assert_same(predictions[:5], ref(text, top_k=5))
        assert abs(sum(p["score"] for p in predictions) - 1) < 1e-4
    assert caplog.text.count(f"top_k={vocab + 50} is more than the vocabulary ({vocab} tokens)") == 1
    assert_same(ours(FILL_TEXTS[0], top_k=vocab + 50, targets=["a", "b"]), ref(FILL_TEXTS[0], targets=["a", "b"]))
    ref_tc, ours_tc = both("text-classification", model_dirs["text-classification"])
    assert_same(ours_tc("Mozart lived", top_k=9), ref_tc("Mozart lived", top_k=9))  # 5 labels
    ref_qa, ours_qa = both("question-answering", model_dirs["question-answering"])
    assert_same(ours_qa(question=QUESTION, context=CONTEXT, top_k=10_000),  # zero-score padding dropped on purpose
                _nonzero(ref_qa(question=QUESTION, context=CONTEXT, top_k=10_000)))
    calls = [lambda k: ours(FILL_TEXTS[0], top_k=k), lambda k: ours_tc("Mozart lived", top_k=k),
             lambda k: ours_qa(question=QUESTION, context=CONTEXT, top_k=k)]
    for call in calls:
        for bad in (0, -1, 2.5, True, "3"):
            with pytest.raises(ValueError, match=f"top_k must be an integer >= 1, got {bad!r}"):
                call(bad)


# ------------------------------------------------------------------------------------ text-classification
def test_text_classification_matches(model_dirs):
    ref, ours = both("text-classification", model_dirs["text-classification"])
    texts = ["Mozart lived in Vienna", "The weather today is sunny, warm and pleasant.", "RoBERTa"]
    assert_same(ours(texts[0]), ref(texts[0]))  # legacy: [{"label", "score"}]
    assert_same(ours(texts, batch_size=2), ref(texts))
    for kwargs in ({"top_k": None}, {"top_k": 2}, {"top_k": 1}, {"function_to_apply": "sigmoid", "top_k": None},
                   {"function_to_apply": "none", "top_k": 3}, {"function_to_apply": "SOFTMAX"}):
        assert_same(ours(texts[1], **kwargs), ref(texts[1], **kwargs))
        assert_same(ours(texts, **kwargs), ref(texts, **kwargs))
    pair = {"text": "Where did Mozart live?", "text_pair": "Mozart lived in Vienna."}
    assert_same(ours(pair), ref(pair))
    assert_same(ours([pair, pair], top_k=None), ref([pair, pair], top_k=None))
    assert_same(ours([[pair["text"], pair["text_pair"]]]), ref(pair))  # transformers' legacy spelling of one pair


@pytest.mark.parametrize("name", ["regression", "one-label"])
def test_text_classification_default_function(model_dirs, name):
    ref, ours = both(name, model_dirs[name])
    assert_same(ours("Mozart lived in Vienna", top_k=None), ref("Mozart lived in Vienna", top_k=None))


def test_text_classification_truncates_long_input_with_warning(model_dirs, caplog):
    ref, ours = both("text-classification", model_dirs["text-classification"])
    text = "Mozart lived in Vienna " * 40
    with caplog.at_level(logging.WARNING):
        got = ours(text, top_k=None)
    assert "truncated" in caplog.text
    assert_same(got, ref(text, top_k=None, truncation=True, max_length=POSITIONS - 2))


# ----------------------------------------------------------------------------------- token-classification
# Words of several tokens, each word preceded by a space: transformers' subword heuristic and the tokenizer's
# word ids agree here, so every strategy must give the same entities.
NER_TEXT = "Wolfgang Mozartian lived in Salzburgers with Viennaland and Mozartians"


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_matches(model_dirs, strategy):
    ref, ours = both("token-classification", model_dirs["token-classification"])
    enc = ref.tokenizer(NER_TEXT, add_special_tokens=False, return_offsets_mapping=True)
    tokens = ref.tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert any(w == enc.word_ids()[i - 1] for i, w in enumerate(enc.word_ids()) if i)  # multi-token words exist
    assert "Ġ" not in tokens  # no bare-space token: the heuristic's precondition
    for ignore in (None, []):
        kwargs = {"aggregation_strategy": strategy, **({} if ignore is None else {"ignore_labels": ignore})}
        got, expected = ours(NER_TEXT, **kwargs), ref(NER_TEXT, **kwargs)
        if strategy == "none":
            assert_same(got, expected)
        else:  # our `word` is the text itself; transformers' carries the token's leading space
            assert_same(got, expected, ignore=("word",))
            assert [g["word"] for g in got] == [NER_TEXT[g["start"]:g["end"]] for g in got]
            assert [g["word"] for g in got] == [e["word"].strip() for e in expected]
    assert_same(ours([NER_TEXT, NER_TEXT[:39]], aggregation_strategy=strategy, batch_size=2),
                ref([NER_TEXT, NER_TEXT[:39]], aggregation_strategy=strategy), ignore=("word",))


def test_token_classification_words_come_from_the_tokenizer(tokenizer_dir, tmp_path):
    """'(Paris': transformers' heuristic makes "Paris" a subword of "(" (no space before it), so under
    aggregation_strategy="first" Paris gets the label predicted for "("; ours labels Paris by its own first token."""
    text = "They met in (Paris) today"
    paris = text.index("Paris")
    ref_tok = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    for seed in range(12):
        path = save_tiny_model("token-classification", tokenizer_dir, tmp_path / str(seed), max_positions=POSITIONS,
                               seed=seed, tokenizer=ref_tok)
        ref = transformers.pipeline("token-classification", model=str(path), tokenizer=ref_tok, device=-1)
        tokens = ref(text, ignore_labels=[])
        paren = next(t for t in tokens if t["end"] == paris)
        first_of_paris = next(t for t in tokens if t["start"] == paris)
        if paren["entity"].split("-")[-1] != first_of_paris["entity"].split("-")[-1]:
            break
    else:
        pytest.skip("no seed gave '(' and 'Paris' different labels")
    ours = pipeline("token-classification", model=str(path), device=-1)
    kwargs = {"aggregation_strategy": "first", "ignore_labels": []}
    theirs = next(e for e in ref(text, **kwargs) if e["start"] <= paris < e["end"])
    mine = next(e for e in ours(text, **kwargs) if e["start"] <= paris < e["end"])
    assert theirs["entity_group"] == paren["entity"].split("-")[-1]
    assert mine["entity_group"] == first_of_paris["entity"].split("-")[-1]
    assert abs(mine["score"] - float(first_of_paris["score"])) <= ATOL or mine["end"] - mine["start"] > 5


def test_token_classification_long_text_is_covered_by_windows(model_dirs):
    ref, ours = both("token-classification", model_dirs["token-classification"])
    text = " ".join([NER_TEXT] * 12)
    n_tokens = len(ref.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert n_tokens > 3 * (POSITIONS - 2)
    got = ours(text, ignore_labels=[])
    assert len(got) == n_tokens and got[-1]["end"] == len(text)  # every token labelled, none truncated
    # The first window holds tokens [0, 62); tokens before the second window's start (31) are labelled from it,
    # so they must match transformers run on exactly that first window's text.
    offsets = ref.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    first_window = ref(text[: offsets[POSITIONS - 5][1]], ignore_labels=[])
    assert_same(got[:30], first_window[:30])

# ------------------------------------------------------------------------------------- question-answering
CONTEXT = "Mozart was born in Salzburg and lived in Vienna with his family."
QUESTION = "Where was Mozart born?"


def _nonzero(answers):
    answers = answers if isinstance(answers, list) else [answers]
    return [a for a in answers if a["score"] > 0]


def test_question_answering_short_context(model_dirs):
    ref, ours = both("question-answering", model_dirs["question-answering"])
    assert_same(ours(question=QUESTION, context=CONTEXT), ref(question=QUESTION, context=CONTEXT))
    assert_same(ours({"question": QUESTION, "context": CONTEXT}), ref({"question": QUESTION, "context": CONTEXT}))
    for kwargs in ({"top_k": 3}, {"top_k": 4, "max_answer_len": 3}, {"top_k": 2, "handle_impossible_answer": True}):
        assert_same(_nonzero(ours(question=QUESTION, context=CONTEXT, **kwargs)),
                    _nonzero(ref(question=QUESTION, context=CONTEXT, **kwargs)))
    questions = [QUESTION, "Who lived in Vienna?"]
    assert_same(ours(question=questions, context=CONTEXT, batch_size=2), ref(question=questions, context=[CONTEXT] * 2))


@pytest.mark.parametrize("seq_len,stride", [(40, 10), (48, 0), (60, 20)])
def test_question_answering_long_context_windows(model_dirs, seq_len, stride):
    ref, ours = both("question-answering", model_dirs["question-answering"])
    context = " ".join([CONTEXT] * 8)
    kwargs = {"max_seq_len": seq_len, "doc_stride": stride}
    assert len(ours.preprocess({"question": QUESTION, "context": context}, kwargs)) > 2  # several windows
    for extra in ({}, {"top_k": 5}, {"top_k": 3, "handle_impossible_answer": True}):
        got = ours(question=QUESTION, context=context, batch_size=4, **kwargs, **extra)
        expected = ref(question=QUESTION, context=context, **kwargs, **extra)
        assert_same(_nonzero(got), _nonzero(expected))
        for a in _nonzero(got):
            assert context[a["start"]:a["end"]] == a["answer"]


def test_question_answering_bad_inputs(model_dirs):
    _, ours = both("question-answering", model_dirs["question-answering"])
    with pytest.raises(ValueError, match="empty"):
        ours(question="", context=CONTEXT)
    with pytest.raises(KeyError):
        ours({"question": QUESTION})
    with pytest.raises(ValueError, match="doc_stride"):
        ours(question=QUESTION, context=CONTEXT, max_seq_len=20, doc_stride=30)


# ------------------------------------------------------------------------------------- feature-extraction
def test_feature_extraction_values_and_pooling(model_dirs):
    ref, ours = both("feature-extraction", model_dirs["feature-extraction"])
    texts = ["Mozart lived in Vienna", "The weather today is sunny, warm and pleasant for a long walk."]
    for text in texts:
        expected = torch.tensor(ref(text))
        got = ours(text)
        assert torch.allclose(torch.tensor(got), expected, atol=1e-5)
        assert torch.allclose(ours(text, return_tensors=True), expected, atol=1e-5)
        assert torch.allclose(torch.tensor(ours(text, pooling="mean")), expected[0].mean(0), atol=1e-5)
        assert torch.allclose(torch.tensor(ours(text, pooling="cls")), expected[0, 0], atol=1e-5)
    batched = ours(texts, batch_size=2)
    assert [len(b[0]) for b in batched] == [len(ref.tokenizer(t)["input_ids"]) for t in texts]  # no padding rows
    for text, b in zip(texts, batched):
        assert torch.allclose(torch.tensor(b), torch.tensor(ref(text)), atol=1e-5)


# ---------------------------------------------------------------------------------- construction options
def test_device_dtype_and_max_length_options(trained_tokenizer_dir, tmp_path):
    path = str(save_tiny_model("fill-mask", trained_tokenizer_dir, tmp_path, max_positions=POSITIONS))
    for device in (-1, "cpu", torch.device("cpu"), "-1"):
        assert pipeline("fill-mask", model=path, device=device).device == torch.device("cpu")
    pipe = pipeline("fill-mask", model=path, device="cpu", dtype="bfloat16")
    assert pipe.model.dtype == pipe.model.roberta.encoder.layer[0].output.dense.weight.dtype == torch.bfloat16
    assert len(pipe("Mozart lived in <mask>.")) == 5
    with pytest.warns(FutureWarning):
        legacy = pipeline("fill-mask", model=path, device=-1, torch_dtype=torch.float16)
    assert next(legacy.model.parameters()).dtype == torch.float16
    assert pipe.max_length == POSITIONS - 2  # tokenizer without a limit: taken from the config
    with pytest.raises(ValueError, match="dtype"):
        pipeline("fill-mask", model=path, dtype="float13")
    with pytest.raises(KeyError, match="Unknown task"):
        pipeline("summarization", model=path)
    defaults = pipeline("fill-mask", model=path, device=-1, top_k=2)
    assert len(defaults("Mozart lived in <mask>.")) == 2
    with pytest.raises(TypeError):
        defaults("Mozart lived in <mask>.", not_an_option=1)
