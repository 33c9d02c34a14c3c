"""Hub ids resolve through the huggingface_hub cache, offline (HF_HUB_OFFLINE=1 / local_files_only=True).

The cache is laid out by the test exactly as huggingface_hub writes it:
<cache>/models--org--name/{refs/main, snapshots/<commit>/<files>}.
"""
import shutil

import pytest

from roberta.auto import AutoConfig
from roberta.config import RobertaConfig
from test_loading_utils import assert_same_outputs, inputs, ours_cls, theirs

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "test-org/tiny-roberta"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json")


@pytest.fixture()
def hub_cache(tmp_path):
    ref = theirs("RobertaForMaskedLM")
    repo = tmp_path / "cache" / ("models--" + REPO.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    ref.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return tmp_path / "cache", snapshot, ref


@pytest.mark.parametrize("offline", ["env", "local_files_only"])
def test_config_and_model_from_cache(hub_cache, monkeypatch, offline):
    cache, _, ref = hub_cache
    kwargs = {"cache_dir": cache}
    if offline == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        kwargs["local_files_only"] = True
    config = RobertaConfig.from_pretrained(REPO, **kwargs)
    assert config.hidden_size == 32 and config._name_or_path == ""  # as transformers' RobertaConfig
    assert AutoConfig.from_pretrained(REPO, **kwargs)._name_or_path == REPO
    model = ours_cls("RobertaForMaskedLM").from_pretrained(REPO, **kwargs)
    assert model.config._name_or_path == REPO
    assert_same_outputs(model, ref, inputs("RobertaForMaskedLM"))
    # a revision given as the commit hash resolves too
    assert ours_cls("RobertaModel").from_pretrained(REPO, revision=COMMIT, **kwargs).config.hidden_size == 32


def test_not_cached_offline_is_a_clear_error(hub_cache, monkeypatch):
    cache, _, _ = hub_cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="not in the local hub cache and offline mode is on"):
        ours_cls("RobertaModel").from_pretrained("test-org/absent", cache_dir=cache)


def test_cached_repo_without_weights(hub_cache, monkeypatch):
    cache, snapshot, _ = hub_cache
    (snapshot / "model.safetensors").unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match=f"no weights .* found for '{REPO}'"):
        ours_cls("RobertaModel").from_pretrained(REPO, cache_dir=cache)


def test_sharded_checkpoint_in_cache(hub_cache, monkeypatch):
    cache, snapshot, ref = hub_cache
    (snapshot / "model.safetensors").unlink()
    ref.save_pretrained(snapshot, max_shard_size=20_000)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_same_outputs(ours_cls("RobertaForMaskedLM").from_pretrained(REPO, cache_dir=cache), ref, inputs("RobertaForMaskedLM"))


def test_tokenizer_from_cache(hub_cache, monkeypatch, roberta_base_dir):
    fast = pytest.importorskip("roberta.tokenization.fast", reason="tokenizer (agent TOK) not available yet")
    cache, snapshot, _ = hub_cache
    for name in TOKENIZER_FILES:
        shutil.copy(roberta_base_dir / name, snapshot / name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = fast.RobertaTokenizerFast.from_pretrained(REPO, cache_dir=cache)
    assert tok("Hello world")["input_ids"] == [0, 31414, 232, 2]
