"""Tokenizer API that transformers' own tests and users rely on, each checked against transformers 4.57.6:
chat templates, the additional_special_tokens setters, init_kwargs, train_new_from_iterator,
prepare_seq2seq_batch, pad() with renamed model inputs, add_tokens(""), tokenizer_file=."""
import json

import pytest
import transformers

from roberta import RobertaTokenizer, RobertaTokenizerFast
from test_robustness_files import MERGES, VOCAB

PAIRS = [(RobertaTokenizer, transformers.RobertaTokenizer), (RobertaTokenizerFast, transformers.RobertaTokenizerFast)]
IDS = ["slow", "fast"]
CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "lower"},
        {"role": "assistant", "content": "newer "}]
TEMPLATE = ("{%- for m in messages %}{{ '<s>' + m['role'] + ': ' + m['content'] | trim + '</s>' }}{% if loop.last and "
            "add_generation_prompt %}{{ '<s>assistant: ' }}{% endif %}{%- endfor %}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok")
    (path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    return path


@pytest.mark.parametrize("ours_cls, theirs_cls", PAIRS, ids=IDS)
def test_chat_template_matches_transformers(folder, ours_cls, theirs_cls, tmp_path):
    ours, theirs = ours_cls.from_pretrained(folder), theirs_cls.from_pretrained(folder)
    for tok in (ours, theirs):
        tok.chat_template = TEMPLATE
    for kwargs in ({"tokenize": False}, {"tokenize": False, "add_generation_prompt": True},
                   {"tokenize": False, "continue_final_message": True}, {}, {"return_dict": True}):
        got, want = ours.apply_chat_template(CHAT, **kwargs), theirs.apply_chat_template(CHAT, **kwargs)
        assert (dict(got) if kwargs.get("return_dict") else got) == (dict(want) if kwargs.get("return_dict") else want)
    assert ours.apply_chat_template([CHAT, CHAT[:2]], tokenize=False) == theirs.apply_chat_template([CHAT, CHAT[:2]], tokenize=False)
    assert ours.apply_chat_template(CHAT, tokenize=False, continue_final_message=True).endswith("assistant: newer")
    with pytest.raises(ValueError, match="continue_final_message and add_generation_prompt"):
        ours.apply_chat_template(CHAT, continue_final_message=True, add_generation_prompt=True)

    # files: one template as chat_template.jinja, several as additional_chat_templates/, or in the config
    ours.chat_template = {"default": TEMPLATE, "short": "{{ messages[0]['content'] }}"}
    ours.save_pretrained(tmp_path / "a")
    assert (tmp_path / "a" / "chat_template.jinja").read_text() == TEMPLATE
    back = theirs_cls.from_pretrained(tmp_path / "a")
    assert back.chat_template == ours.chat_template == ours_cls.from_pretrained(tmp_path / "a").chat_template
    assert back.apply_chat_template(CHAT, chat_template="short", tokenize=False) == "be brief"
    ours.save_pretrained(tmp_path / "b", save_jinja_files=False)
    config = json.loads((tmp_path / "b" / "tokenizer_config.json").read_text())
    assert config["chat_template"][1] == {"name": "short", "template": "{{ messages[0]['content'] }}"}
    assert theirs_cls.from_pretrained(tmp_path / "b").chat_template == ours.chat_template


def test_chat_template_sandbox_and_helpers(folder):
    tok = RobertaTokenizerFast.from_pretrained(folder)
    assert len(tok.apply_chat_template(CHAT, chat_template="{{ strftime_now('%Y-%m-%d') }}", tokenize=False)) == 10
    with pytest.raises(Exception, match="no system"):
        tok.apply_chat_template(CHAT, chat_template="{{ raise_exception('no system') }}", tokenize=False)
    with pytest.raises(Exception, match="unsafe|not safely|access"):  # the sandbox refuses Python internals
        tok.apply_chat_template(CHAT, chat_template="{{ messages.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}",
                                tokenize=False)
    with pytest.raises(ValueError, match="no chat template"):
        tok.apply_chat_template(CHAT)


@pytest.mark.parametrize("ours_cls, theirs_cls", PAIRS, ids=IDS)
def test_special_token_setters_and_init_kwargs(folder, ours_cls, theirs_cls):
    ours, theirs = ours_cls.from_pretrained(folder), theirs_cls.from_pretrained(folder)
    for tok in (ours, theirs):
        tok.additional_special_tokens_ids = [4, 5]
    assert ours.additional_special_tokens == theirs.additional_special_tokens == ["l", "o"]
    for tok in (ours, theirs):
        tok.additional_special_tokens = None
        tok.mask_token = None
    assert ours.additional_special_tokens is theirs.additional_special_tokens is None
    assert ours.mask_token is theirs.mask_token is None
    for key in ("errors", "add_prefix_space", "bos_token", "mask_token"):
        assert key in ours.init_kwargs and key in theirs.init_kwargs
    assert ours.init_inputs == ()


@pytest.mark.parametrize("ours_cls, theirs_cls", PAIRS, ids=IDS)
def test_pad_with_renamed_inputs_and_empty_added_token(folder, ours_cls, theirs_cls):
    ours, theirs = ours_cls.from_pretrained(folder), theirs_cls.from_pretrained(folder)
    batch = [{"ids": [0, 4, 2]}, {"ids": [0, 2]}]
    for tok in (ours, theirs):
        tok.model_input_names = ["ids", "attention_mask"]
    assert dict(ours.pad(batch)) == dict(theirs.pad(batch)) == {"ids": [[0, 4, 2], [0, 2, 1]],
                                                                "attention_mask": [[1, 1, 1], [1, 1, 0]]}
    assert ours.add_tokens("") == theirs.add_tokens("") == 0
    assert ours.add_tokens(["", "zz"]) == theirs.add_tokens(["", "zz"]) == 1


@pytest.mark.parametrize("ours_cls, theirs_cls", PAIRS, ids=IDS)
def test_prepare_seq2seq_batch(folder, ours_cls, theirs_cls):
    ours, theirs = ours_cls.from_pretrained(folder), theirs_cls.from_pretrained(folder)
    kwargs = dict(src_texts=["lower newer", "low"], tgt_texts=["newer lower lower"], max_length=4, max_target_length=6)
    assert dict(ours.prepare_seq2seq_batch(**kwargs)) == dict(theirs.prepare_seq2seq_batch(**kwargs))


def test_train_new_from_iterator_like_transformers(folder):
    corpus = ["This is the first sentence", "This sentence is different", "lower newer wider"] * 30
    ours = RobertaTokenizerFast.from_pretrained(folder).train_new_from_iterator(iter(corpus), 300,
                                                                               special_tokens_map={"<s>": "<cls>"})
    theirs = transformers.RobertaTokenizerFast.from_pretrained(folder).train_new_from_iterator(
        iter(corpus), 300, special_tokens_map={"<s>": "<cls>"})
    assert ours.get_vocab() == theirs.get_vocab()
    texts = ["This is the first sentence", "a different sentence 🤗"]
    assert ours(texts, texts[::-1])["input_ids"] == theirs(texts, texts[::-1])["input_ids"]
    assert ours.cls_token == theirs.cls_token == "<cls>" and ours.cls_token_id == theirs.cls_token_id
    assert ours.special_tokens_map == theirs.special_tokens_map


def test_tokenizer_file_keyword(roberta_base_dir, tmp_path):
    """transformers' own tests pass tokenizer_file= next to a folder (it was a duplicate-keyword TypeError)."""
    (tmp_path / "tokenizer_config.json").write_text("{}")
    tok = RobertaTokenizerFast.from_pretrained(tmp_path, tokenizer_file=str(roberta_base_dir / "tokenizer.json"))
    assert tok("Hello world")["input_ids"] == [0, 31414, 232, 2]
