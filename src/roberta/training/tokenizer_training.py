"""Train a RoBERTa byte-level BPE tokenizer with the `tokenizers` package.

The output folder has the same files and id layout as roberta-base: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3,
the learned byte-level vocabulary, and `<mask>` as the LAST id (lstrip=True, so "a <mask>" eats the space).
It loads with roberta's and transformers' RobertaTokenizer / RobertaTokenizerFast.
"""
from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from roberta._io import find_invalid_utf8, held_temp_dir, sweep_abandoned_temp_dirs

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0..3, as fairseq's dictionary
MASK_TOKEN = "<mask>"
_TEMP_RE = re.compile(r"^\.tokenizer\.[a-z0-9_]{8}$")  # our temp folder in out_dir while the files are written


def train_bpe_tokenizer(files, vocab_size: int, out_dir: str | os.PathLike, min_frequency: int = 2,
                        model_max_length: int = 512, show_progress: bool = True) -> Path:
    """Train a byte-level BPE on text `files` and write it to `out_dir`.

    `files`: a path or a list/tuple of paths; any other iterable (a generator, a datasets column) is read as
    the training text itself.
    `vocab_size` counts everything, specials included (roberta-base: 50265). Writes vocab.json,
    merges.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json; returns `out_dir`.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    from roberta.tokenization.fast import roberta_post_processor

    min_size = len(SPECIAL_TOKENS) + 256 + 1  # specials, the 256 byte symbols, <mask>
    if vocab_size < min_size:
        raise ValueError(f"vocab_size must be at least {min_size} (5 specials + 256 byte symbols), got {vocab_size}")
    for name, value, least in (("min_frequency", min_frequency, 0), ("model_max_length", model_max_length, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():  # found before training, not after
        raise NotADirectoryError(f"output folder {out} is a file")
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    as_paths = isinstance(files, (list, tuple))
    if as_paths and not files:
        raise ValueError("no training files given")
    if as_paths:
        for f in files:
            if not Path(f).is_file():
                raise FileNotFoundError(f"tokenizer training file not found: {f}")

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 1,  # leave the last id for <mask>
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    if as_paths:
        try:
            bpe.train([str(f) for f in files], trainer)
        except Exception as err:  # tokenizers raises a bare Exception naming neither file nor line
            bad = find_invalid_utf8(files) if "UTF-8" in str(err) else None
            if bad is None:
                raise
            raise ValueError(bad) from None
    else:
        bpe.train_from_iterator(_strings(files), trainer)

    vocab = bpe.get_vocab(with_added_tokens=False)
    merges = _merges(bpe)
    if len(vocab) < vocab_size - 1:
        logger.warning("the corpus only supports %d tokens (asked for %d): vocab_size is %d",
                       len(vocab) + 1, vocab_size, len(vocab) + 1)
    vocab[MASK_TOKEN] = len(vocab)  # <mask> last, inside the model vocabulary as in roberta-base

    out.mkdir(parents=True, exist_ok=True)
    sweep_abandoned_temp_dirs(out, _TEMP_RE)  # left by a run killed while writing here
    with held_temp_dir(".tokenizer.", out) as tmp:
        tmp = Path(tmp)
        _write_files(tmp, vocab, merges, model_max_length)
        # Rebuild the full tokenizer from the written files so tokenizer.json and vocab/merges agree exactly.
        full = Tokenizer(models.BPE.from_file(str(tmp / "vocab.json"), str(tmp / "merges.txt")))
        full.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)
        full.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True)
        full.post_processor = roberta_post_processor(("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]))
        full.add_special_tokens([AddedToken(t, normalized=True, special=True) for t in SPECIAL_TOKENS]
                                + [AddedToken(MASK_TOKEN, lstrip=True, normalized=True, special=True)])
        full.save(str(tmp / "tokenizer.json"))
        for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            os.replace(tmp / name, out / name)
    logger.info("wrote a %d-token byte-level BPE tokenizer to %s", len(vocab), out)
    return out


def _strings(items: Iterable) -> Iterable[str]:
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"expected file paths or strings of text, got {type(item).__name__}")
        yield item


def _merges(tokenizer) -> list[str]:
    """Merges as 'a b' lines, read from the trained model's own serialisation."""
    model = json.loads(tokenizer.to_str())["model"]
    return [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]


def _write_files(folder: Path, vocab: dict[str, int], merges: list[str], model_max_length: int) -> None:
    with open(folder / "vocab.json", "w", encoding="utf-8") as f:
        json.dump(dict(sorted(vocab.items(), key=lambda kv: kv[1])), f, ensure_ascii=False)
    with open(folder / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(m + "\n" for m in merges)
    mask = {"content": MASK_TOKEN, "lstrip": True, "normalized": True, "rstrip": False, "single_word": False,
            "special": True}
    added = {str(vocab[t]): {"content": t, "lstrip": False, "normalized": True, "rstrip": False,
                             "single_word": False, "special": True} for t in SPECIAL_TOKENS}
    added[str(vocab[MASK_TOKEN])] = mask
    config = {
        "add_prefix_space": False, "errors": "replace", "model_max_length": model_max_length,
        "tokenizer_class": "RobertaTokenizer", "trim_offsets": True, "clean_up_tokenization_spaces": False,
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "mask_token": MASK_TOKEN, "added_tokens_decoder": added,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    special_map = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                   "unk_token": "<unk>", "pad_token": "<pad>",
                   "mask_token": {k: v for k, v in mask.items() if k != "special"}}
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2))
