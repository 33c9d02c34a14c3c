"""Shared test data for the tokenizer tests: a deterministic generator of awkward lines, and a small
byte-level BPE vocabulary trained here with `tokenizers` so the suite means something without ../shared."""
import random

import pytest

WORDS = ("the quick brown fox jumps over lazy dog RoBERTa tokenizer model training data hello world "
         "AllenNLP transformers naïve café résumé Zürich São Paulo Ελληνικά русский язык 東京 日本語 "
         "中文 한국어 مرحبا بالعالم עברית हिन्दी ไทย emoji 😀 👍🏽 🇫🇷 👨‍👩‍👧 ﬁ Å Å e\u0301").split()
PIECES = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "n't", "3.14", "1,000,000", "42", "2024-01-01", "-7",
          "½", "Ⅻ", "٣", "<s>", "</s>", "<mask>", "<pad>", "<unk>", "<mask", "mask>", "<<s>>", "</ s>",
          "def f(x):\n    return x ** 2", "if (a && b) { c++; }", "http://example.com/a?b=c&d=e", "foo_bar.baz()",
          "#include <stdio.h>", "$HOME/.config", "C:\\path\\file.txt", "\t", "\n", "\r\n", "  ", "   ", "\u3000",
          "\xa0", "\u200b", "\u200d", "\x00", "\x1f", "...", "!!!", "?!", "—", "–", "“quoted”", "«guillemets»", "…"]


def make_lines(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        kind = i % 10
        if kind == 0 and i % 50 == 0:
            lines.append("")
            continue
        parts = []
        for _ in range(rng.randint(1, 25)):
            r = rng.random()
            if r < 0.55:
                parts.append(rng.choice(WORDS))
            elif r < 0.85:
                parts.append(rng.choice(PIECES))
            elif r < 0.9:
                parts.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyzé") for _ in range(rng.randint(30, 120))))
            else:
                parts.append("".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(1, 6))))
        seps = [" ", " ", " ", "", "  ", "\t", "\n", "   "]
        line = parts[0]
        for p in parts[1:]:
            line += rng.choice(seps) + p
        if kind == 1:
            line = " " + line
        elif kind == 2:
            line = line + " "
        elif kind == 3:
            line = line.upper()
        lines.append(line)
    return lines


@pytest.fixture(scope="session")
def small_vocab_dir(tmp_path_factory):
    """vocab.json + merges.txt of a ~1000-token byte-level BPE trained on generated lines."""
    from tokenizers import ByteLevelBPETokenizer

    out = tmp_path_factory.mktemp("small_bpe")
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(make_lines(600, seed=123), vocab_size=1000, min_frequency=2,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    trainer.save_model(str(out))
    return out


def hf_pair(directory, **kwargs):
    """transformers' slow and fast tokenizers on the same files, with roberta-base's 512 limit."""
    from transformers import RobertaTokenizer, RobertaTokenizerFast

    kwargs.setdefault("model_max_length", 512)
    return (RobertaTokenizer.from_pretrained(str(directory), **kwargs),
            RobertaTokenizerFast.from_pretrained(str(directory), **kwargs))


def our_pair(directory, **kwargs):
    from roberta.tokenization import RobertaTokenizer, RobertaTokenizerFast

    return RobertaTokenizer.from_pretrained(directory, **kwargs), RobertaTokenizerFast.from_pretrained(directory, **kwargs)
