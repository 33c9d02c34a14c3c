"""Tokenizer files: from_pretrained (through roberta.hub.resolve_file) and save_pretrained, in the layout
transformers 4.57 reads and writes (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json,
special_tokens_map.json). Every file is written to a temp name and renamed, so a crash leaves no half file.
"""
from __future__ import annotations

import json
import logging
import os

from roberta._io import atomic_write_text

from . import chat
from .added_tokens import AddedToken, as_added_token, token_state

logger = logging.getLogger(__name__)

_HUB_KWARGS = ("cache_dir", "revision", "local_files_only", "token", "subfolder")
_IGNORED_CONFIG_KEYS = {"tokenizer_class", "auto_map", "name_or_path", "added_tokens_decoder", "special_tokens_map_file",
                        "tokenizer_file", "vocab_file", "merges_file", "extra_special_tokens", "processor_class", "chat_template"}
_SPECIALS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _read_json(path: str, what: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} {path!r} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {path!r} is not UTF-8 text ({e.reason})") from None


def _check_json_object(data, path: str, what: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path!r} must hold a JSON object, got {type(data).__name__}")
    return data


def _is_token(value) -> bool:
    return isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("content"), str))


# tokenizer_config.json keys we read -> (what the value must be, test). Checked up front, so a bad value is
# reported with its file and key instead of surfacing as an error deep in the tokenizer.
_CONFIG_CHECKS = {
    "model_max_length": ("an integer or null", lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0)),
    "padding_side": ("'right' or 'left'", lambda v: v in ("right", "left")),
    "truncation_side": ("'right' or 'left'", lambda v: v in ("right", "left")),
    "add_prefix_space": ("true or false", lambda v: isinstance(v, bool)),
    "trim_offsets": ("true or false", lambda v: isinstance(v, bool)),
    "clean_up_tokenization_spaces": ("true or false", lambda v: isinstance(v, bool)),
    "errors": ("a codec error handler name like 'replace'", lambda v: isinstance(v, str)),
    "model_input_names": ("a list of names", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "additional_special_tokens": ("a list of tokens", lambda v: isinstance(v, list) and all(map(_is_token, v))),
    "added_tokens_decoder": ("an object {id: {content: ...}}", lambda v: isinstance(v, dict) and all(
        k.isdigit() and _is_token(t) and isinstance(t, dict) for k, t in v.items())),
    **{k: ("a token string or {content: ...} object (or null)", lambda v: v is None or _is_token(v)) for k in _SPECIALS},
}


def _check_values(data: dict, path: str, what: str) -> None:
    for key, (expected, ok) in _CONFIG_CHECKS.items():
        if key in data and not ok(data[key]):
            raise ValueError(f"{what} {path!r}: {key} must be {expected}, got {data[key]!r:.80}")


def load_pretrained(cls, path_or_id, init_inputs, kwargs):
    from roberta.hub import resolve_file

    hub = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
    kwargs.pop("force_download", None)
    kwargs.pop("use_auth_token", None)
    kwargs.pop("trust_remote_code", None)
    kwargs.pop("_from_auto", None)

    def find(name, required=False):
        return resolve_file(path_or_id, name, required=required, **hub)

    config_file = find("tokenizer_config.json")
    config = {}
    if config_file:
        config = _check_json_object(_read_json(config_file, "tokenizer config"), config_file, "tokenizer config")
        _check_values(config, config_file, "tokenizer config")
    map_file = find("special_tokens_map.json")
    special_map = {}
    if map_file:
        special_map = _check_json_object(_read_json(map_file, "special tokens map"), map_file, "special tokens map")
        _check_values(special_map, map_file, "special tokens map")
    # Files named by the caller (tokenizer_file=..., vocab_file=...) win over the folder's.
    given = {k: kwargs.pop(k) for k in list(cls.vocab_files_names) if k in kwargs}
    files = {}
    tokenizer_json = None
    if "tokenizer_file" in cls.vocab_files_names:
        tokenizer_json = given.get("tokenizer_file") or find("tokenizer.json")
    if tokenizer_json:
        files["tokenizer_file"] = tokenizer_json
    need_vocab = tokenizer_json is None
    files["vocab_file"] = given.get("vocab_file") or find("vocab.json", required=need_vocab)
    files["merges_file"] = given.get("merges_file") or find("merges.txt", required=need_vocab)

    init = {k: v for k, v in config.items() if k not in _IGNORED_CONFIG_KEYS}
    for key, value in (special_map or {}).items():
        if key in _SPECIALS or key == "additional_special_tokens":
            init.setdefault(key, value)
    if init.get("model_max_length") is None or init["model_max_length"] > 1e29:
        init["model_max_length"] = 512  # transformers' "unknown" sentinel; RoBERTa's real limit is 512
    decoder = {int(i): as_added_token(t) for i, t in (config.get("added_tokens_decoder") or {}).items()}
    templates = chat.read_templates(config, find)
    if templates is not None:
        init["chat_template"] = templates
    init.update(kwargs)
    # A special token named by a bare string (in the files or the caller's keywords) is the saved added token of
    # that content, with its flags (e.g. <mask>'s lstrip), as in transformers; the tokenizer converts the rest.
    by_content = {t.content: t for t in decoder.values()}
    for key in _SPECIALS:
        if isinstance(init.get(key), str):
            init[key] = by_content.get(init[key], init[key])
    if isinstance(init.get("additional_special_tokens"), list):
        init["additional_special_tokens"] = [by_content.get(t, t) if isinstance(t, str) else t
                                             for t in init["additional_special_tokens"]]
    init["name_or_path"] = str(path_or_id)
    if files.get("vocab_file") is None:
        files.pop("vocab_file")
        files.pop("merges_file", None)
    added_json = find("added_tokens.json")
    if added_json:  # legacy slow-tokenizer file {content: id}
        added = _check_json_object(_read_json(added_json, "added tokens"), added_json, "added tokens file")
        bad = next(((c, i) for c, i in added.items() if not isinstance(i, int) or isinstance(i, bool) or i < 0), None)
        if bad is not None:
            raise ValueError(f"added tokens file {added_json!r}: token {bad[0]!r} maps to {bad[1]!r}; ids must be "
                             f"non-negative integers")
        for content, tid in added.items():
            if content not in by_content:
                decoder[int(tid)] = AddedToken(content)
    init.setdefault("added_tokens_decoder", decoder)
    return cls(*init_inputs, **files, **init)


def write_vocab_files(directory, prefix, vocab: dict, merges: list) -> tuple[str, str]:
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"save_vocabulary: {directory!r} is not a directory")
    name = (prefix + "-") if prefix else ""
    vocab_path = atomic_write_text(os.path.join(directory, name + "vocab.json"),
                               json.dumps(vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    merges_path = atomic_write_text(os.path.join(directory, name + "merges.txt"), "\n".join(lines) + "\n")
    return vocab_path, merges_path


def tokenizer_json_text(tok) -> str:
    """tokenizer.json for the `tokenizers` library (the RobertaConverter layout)."""
    if tok.is_fast:
        return tok.tokenizer_json()
    vocab, merges = tok._vocab_and_merges()
    prefix = tok.add_prefix_space
    state = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, **token_state(t)} for i, t in tok.added_tokens_decoder.items()],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "RobertaProcessing", "sep": [tok.sep_token, tok.sep_token_id],
                           "cls": [tok.cls_token, tok.cls_token_id], "trim_offsets": tok.trim_offsets,
                           "add_prefix_space": prefix},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [list(m) for m in merges]},
    }
    return json.dumps(state, ensure_ascii=False, indent=2)


def save_pretrained(tok, save_directory, filename_prefix=None, save_jinja_files=True) -> tuple[str, ...]:
    save_directory = os.fspath(save_directory)
    if os.path.isfile(save_directory):
        raise NotADirectoryError(f"save_pretrained: {save_directory!r} is a file, not a directory")
    os.makedirs(save_directory, exist_ok=True)
    name = (filename_prefix + "-") if filename_prefix else ""
    config = {
        "add_prefix_space": tok.add_prefix_space,
        "added_tokens_decoder": {str(i): token_state(t) for i, t in tok.added_tokens_decoder.items()},
        **{k: v for k, v in tok.special_tokens_map.items()},
        "clean_up_tokenization_spaces": tok.clean_up_tokenization_spaces,
        "errors": tok.errors,
        "extra_special_tokens": {},
        "model_max_length": tok.model_max_length,
        "padding_side": tok.padding_side,
        "tokenizer_class": "RobertaTokenizer",
        "trim_offsets": tok.trim_offsets,
        "truncation_side": tok.truncation_side,
    }
    if tok.split_special_tokens:
        config["split_special_tokens"] = True
    template_entries, template_paths = chat.write_templates(tok.chat_template, save_directory, atomic_write_text,
                                                           save_jinja_files)
    config = dict(sorted({**config, **template_entries}.items()))

    def map_entry(t: AddedToken) -> dict:  # "special" is implied in this file, so transformers leaves it out
        return {k: v for k, v in token_state(t).items() if k != "special"}

    special_map = {k: [map_entry(t) for t in v] if isinstance(v, list) else map_entry(v)
                   for k, v in tok.special_tokens_map_extended.items()}
    paths = [
        atomic_write_text(os.path.join(save_directory, name + "tokenizer_config.json"), json.dumps(config, indent=2, ensure_ascii=False) + "\n"),
        atomic_write_text(os.path.join(save_directory, name + "special_tokens_map.json"),
                          json.dumps(special_map, indent=2, ensure_ascii=False) + "\n"),
        *tok.save_vocabulary(save_directory, filename_prefix),
        atomic_write_text(os.path.join(save_directory, name + "tokenizer.json"), tokenizer_json_text(tok)),
        *template_paths,
    ]
    return tuple(paths)
