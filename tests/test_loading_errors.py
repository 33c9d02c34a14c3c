"""Bad inputs give clear errors; unsafe pickles never run; an interrupted save leaves the old checkpoint."""
import json
import os

import pytest
import torch

import roberta.loading as loading
from test_loading_utils import Exploit, assert_same_outputs, inputs, ours_cls, theirs

MLM = "RobertaForMaskedLM"


def test_missing_folder(tmp_path):
    with pytest.raises(OSError, match="neither an existing folder nor a valid hub id"):
        ours_cls(MLM).from_pretrained(str(tmp_path / "no" / "such" / "folder"))


def test_folder_without_weights_lists_contents(tmp_path):
    theirs(MLM).config.save_pretrained(tmp_path)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(loading.CheckpointError, match=r"no weights .*model\.safetensors.* in folder .*it holds: config\.json, notes\.txt"):
        ours_cls(MLM).from_pretrained(tmp_path)


def test_use_safetensors_true_refuses_bin_only_folder(tmp_path):
    theirs(MLM).save_pretrained(tmp_path, safe_serialization=False)
    with pytest.raises(loading.CheckpointError, match=r"no weights \(model\.safetensors / model\.safetensors\.index\.json\)"):
        ours_cls(MLM).from_pretrained(tmp_path, use_safetensors=True)


def test_truncated_safetensors_names_the_file(tmp_path):
    theirs(MLM).save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(loading.CheckpointError, match=r"model\.safetensors is truncated"):
        ours_cls(MLM).from_pretrained(tmp_path)
    path.write_bytes(data[:5])
    with pytest.raises(loading.CheckpointError, match=r"model\.safetensors is truncated or not a safetensors file"):
        ours_cls(MLM).from_pretrained(tmp_path)


def test_truncated_bin(tmp_path):
    theirs(MLM).save_pretrained(tmp_path, safe_serialization=False)
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(loading.CheckpointError, match=r"pytorch_model\.bin could not be read as a PyTorch checkpoint"):
        ours_cls(MLM).from_pretrained(tmp_path)


def test_config_not_json(tmp_path):
    theirs(MLM).save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"hidden_size": 32,,}')
    with pytest.raises(ValueError, match=r"config\.json is not a valid JSON file"):
        ours_cls(MLM).from_pretrained(tmp_path)


def test_wrong_model_type(tmp_path):
    theirs(MLM).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert'"):
        ours_cls(MLM).from_pretrained(tmp_path)


def test_malicious_pickle_does_not_run(tmp_path):
    theirs(MLM).config.save_pretrained(tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"roberta.embeddings.word_embeddings.weight": torch.zeros(2), "x": Exploit(str(marker))},
               tmp_path / "pytorch_model.bin")
    with pytest.raises(loading.CheckpointError, match=r"pytorch_model\.bin holds Python objects other than tensors"):
        ours_cls(MLM).from_pretrained(tmp_path)
    assert not marker.exists()


def test_interrupted_save_leaves_old_checkpoint(tmp_path, monkeypatch):
    ref = theirs(MLM)
    model = ours_cls(MLM).from_pretrained(_save(ref, tmp_path / "src"))
    target = tmp_path / "out"
    model.save_pretrained(target, max_shard_size=20_000)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    real_writer = loading._write_safetensors

    def writer_failing_at(n):
        calls = []

        def write(tensors, path):
            calls.append(path)
            if len(calls) == n:
                raise OSError("disk full")
            real_writer(tensors, path)
        return write

    with torch.no_grad():
        model.roberta.embeddings.word_embeddings.weight.add_(1.0)
    monkeypatch.setattr(loading, "_write_safetensors", writer_failing_at(1))
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(target)  # a single-file save would also remove the old shards: must not happen
    monkeypatch.setattr(loading, "_write_safetensors", writer_failing_at(2))
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(target, max_shard_size=20_000)  # dies after writing one new shard
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # unchanged, and no temp folder left
    assert_same_outputs(ours_cls(MLM).from_pretrained(target), ref, inputs(MLM))


def _save(model, path):
    model.save_pretrained(path)
    return path


def test_save_into_a_file_path(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        ours_cls(MLM).from_pretrained(_save(theirs(MLM), tmp_path / "m")).save_pretrained(tmp_path / "f")


def test_bad_shard_size_and_dtype(tmp_path):
    model = ours_cls(MLM).from_pretrained(_save(theirs(MLM), tmp_path / "m"))
    with pytest.raises(ValueError, match="max_shard_size='lots' is not a size"):
        model.save_pretrained(tmp_path / "o", max_shard_size="lots")
    assert loading._parse_size("2GiB") == 2 * 2**30 and loading._parse_size("5GB") == 5 * 10**9
    with pytest.raises(ValueError, match="dtype='float17' is not a torch dtype"):
        ours_cls(MLM).from_pretrained(tmp_path / "m", dtype="float17")
    assert not os.path.exists(tmp_path / "o" / "model.safetensors")


def test_legacy_non_zip_bin_still_loads(tmp_path):
    ref = theirs("RobertaModel")
    ref.config.save_pretrained(tmp_path)
    torch.save(ref.state_dict(), tmp_path / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    assert_same_outputs(ours_cls("RobertaModel").from_pretrained(tmp_path), ref, inputs("RobertaModel"))


def test_save_options_state_dict_and_main_process(tmp_path):
    model = ours_cls(MLM).from_pretrained(_save(theirs(MLM), tmp_path / "m"))
    model.save_pretrained(tmp_path / "skip", is_main_process=False)
    assert not (tmp_path / "skip").exists()
    state = {k: v * 0 for k, v in model.state_dict().items()}
    model.save_pretrained(tmp_path / "zeros", state_dict=state)
    zeros = ours_cls(MLM).from_pretrained(tmp_path / "zeros")
    assert all(torch.count_nonzero(p) == 0 for p in zeros.parameters())
    with pytest.raises(TypeError, match=r"unexpected arguments: \['bogus'\]"):
        model.save_pretrained(tmp_path / "x", bogus=True)
