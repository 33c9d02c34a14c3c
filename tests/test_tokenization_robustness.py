"""Tokenizers on hostile input and on every `tokenizers` release the pyproject allows (>=0.19).

- The slow tokenizer's BPE is near-linear in a word's length: measured by counting pair look-ups, not time.
- tokenizers 0.23 renamed RobertaProcessing's `cls` keyword to `cls_token`; `roberta train-tokenizer` and a
  vocab.json + merges.txt folder must work with both spellings (checked here by substituting processors that
  accept only one of them), and under the newest release itself when dev.sh has put it beside the venv.
"""
import json
import os
import random
import string
import subprocess
import sys
from pathlib import Path

import pytest
import tokenizers
from tokenizers import processors

from roberta import RobertaTokenizer, RobertaTokenizerFast
from test_robustness_files import MERGES, VOCAB

REPO = Path(__file__).resolve().parents[1]


# ---- BPE work grows near-linearly with the word ------------------------------------------------------------
class CountingRanks(dict):
    calls = 0

    def get(self, key, default=None):
        CountingRanks.calls += 1
        return super().get(key, default)


def lookups(bpe, word: str) -> int:
    CountingRanks.calls = 0
    symbols = bpe.merge(word)
    assert "".join(symbols) == word
    return CountingRanks.calls


def test_long_unbroken_word_is_near_linear(roberta_base_dir):
    """100,000 random letters are one pre-token. GPT-2's loop rescans every pair after each merge (thousands
    of merges x 100,000 pairs: over a minute); the heap merge looks each new pair up a bounded number of times."""
    tok = RobertaTokenizer.from_pretrained(roberta_base_dir)
    bpe = tok._bpe
    bpe.ranks = CountingRanks(bpe.ranks)
    rng = random.Random(0)
    word = "".join(rng.choice(string.ascii_letters) for _ in range(100_000))
    small, large = lookups(bpe, word[:25_000]), lookups(bpe, word)
    # Each merge removes a symbol and looks up at most 3 pairs (its own, and the 2 it creates).
    assert large <= 4 * len(word)
    assert large / small < 4.5  # 4x the letters, about 4x the work (quadratic would be 16x)


def test_long_word_ids_equal_the_rust_tokenizer(roberta_base_dir):
    rng = random.Random(1)
    text = "".join(rng.choice(string.ascii_letters + "äß日本") for _ in range(20_000))
    slow = RobertaTokenizer.from_pretrained(roberta_base_dir)
    fast = RobertaTokenizerFast.from_pretrained(roberta_base_dir)
    assert slow(text, return_offsets_mapping=True).data == fast(text, return_offsets_mapping=True).data


# ---- RobertaProcessing under both keyword spellings -------------------------------------------------------
_REAL = processors.RobertaProcessing


def processing_0_23(sep, cls_token, trim_offsets=True, add_prefix_space=True):
    """tokenizers >= 0.23: `cls` became `cls_token` (sep unchanged)."""
    return _REAL(sep, cls_token, trim_offsets=trim_offsets, add_prefix_space=add_prefix_space)


def processing_0_22(sep, cls, trim_offsets=True, add_prefix_space=True):
    return _REAL(sep, cls, trim_offsets=trim_offsets, add_prefix_space=add_prefix_space)




@pytest.mark.parametrize("processing", [processing_0_22, processing_0_23], ids=["tokenizers<0.23", "tokenizers>=0.23"])
def test_vocab_and_merges_folder_and_training_with_either_keyword(tmp_path, monkeypatch, processing):
    monkeypatch.setattr(processors, "RobertaProcessing", processing)
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    fast = RobertaTokenizerFast.from_pretrained(tmp_path)  # no tokenizer.json: the backend is built here
    assert fast("lower", " lower")["input_ids"] == [0, 4, 5, 6, 14, 2, 2, 13, 14, 2]
    post = json.loads(fast.backend_tokenizer.post_processor.__getstate__())
    assert post["sep"] == ["</s>", 2] and post["cls"] == ["<s>", 0]

    from roberta.training.tokenizer_training import train_bpe_tokenizer

    out = train_bpe_tokenizer(iter(["lower newer lowest wider"] * 20), 280, tmp_path / "trained", min_frequency=1,
                              show_progress=False)
    trained = json.loads((out / "tokenizer.json").read_text())["post_processor"]
    assert trained["type"] == "RobertaProcessing" and trained["cls"] == ["<s>", 0] and trained["sep"] == ["</s>", 2]


# ---- the newest tokenizers release, when dev.sh installed it beside the venv ------------------------------
NEWEST = Path(os.environ.get("ROBERTA_NEWEST_TOKENIZERS", REPO / ".venv" / "newest-tokenizers"))

SCRIPT = """
import json, sys, tempfile, os
import tokenizers
from roberta import RobertaTokenizer, RobertaTokenizerFast
from roberta.training.tokenizer_training import train_bpe_tokenizer
base, texts = sys.argv[1], json.loads(sys.argv[2])
d = tempfile.mkdtemp()
for name in ("vocab.json", "merges.txt"):
    with open(os.path.join(base, name), "rb") as src, open(os.path.join(d, name), "wb") as dst:
        dst.write(src.read())
out = {"version": tokenizers.__version__,
       "vocab_merges": RobertaTokenizerFast.from_pretrained(d)(texts, texts[::-1])["input_ids"],
       "tokenizer_json": RobertaTokenizerFast.from_pretrained(base)(texts)["input_ids"],
       "slow": RobertaTokenizer.from_pretrained(d)(texts)["input_ids"]}
trained = train_bpe_tokenizer(iter(texts * 20), 300, os.path.join(d, "trained"), min_frequency=1, show_progress=False)
out["trained"] = RobertaTokenizerFast.from_pretrained(trained)(texts)["input_ids"]
print(json.dumps(out))
"""


@pytest.mark.skipif(not (NEWEST / "tokenizers").is_dir(),
                    reason=f"the newest tokenizers release is not installed at {NEWEST} (bash dev.sh test puts it there)")
def test_under_the_newest_tokenizers_release(roberta_base_dir):
    """Our tokenizers, run in a subprocess that imports the newest `tokenizers` (transformers 4.57 pins an older
    one, so the test venv cannot hold it), give transformers' ids from this process."""
    from transformers import RobertaTokenizerFast as HFFast

    texts = ["Hello world!", "A <mask> sentence, with   spaces", "naïve café 東京 😀", ""]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(NEWEST), str(REPO / "src")])}
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(roberta_base_dir), json.dumps(texts)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["version"] != tokenizers.__version__, "the subprocess did not pick up the newest release"
    hf = HFFast.from_pretrained(roberta_base_dir)
    assert got["vocab_merges"] == hf(texts, texts[::-1])["input_ids"]
    assert got["tokenizer_json"] == got["slow"] == hf(texts)["input_ids"]
    assert all(ids[0] == 0 and ids[-1] == 2 for ids in got["trained"])
