"""Checkpoints move both ways between transformers and roberta with identical outputs."""
import json
import os

import pytest
import torch
import transformers
from safetensors import safe_open

from test_loading_utils import CLASS_NAMES, assert_same_outputs, inputs, ours_cls, theirs


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_transformers_save_then_ours_load(tmp_path, name):
    ref = theirs(name)
    ref.save_pretrained(tmp_path)
    model, info = ours_cls(name).from_pretrained(tmp_path, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    assert not model.training and model.dtype == torch.float32
    assert model.config._name_or_path == str(tmp_path)
    assert_same_outputs(model, ref, inputs(name))


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_ours_save_then_transformers_load(tmp_path, name):
    ref = theirs(name, seed=3)
    model = ours_cls(name).from_pretrained(_saved(ref, tmp_path / "src"))
    model.save_pretrained(tmp_path / "out")
    back, info = getattr(transformers, name).from_pretrained(tmp_path / "out", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    assert_same_outputs(back.eval(), ref, inputs(name))
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == [name] and config["dtype"] == "float32" and config["model_type"] == "roberta"


def _saved(model, path):
    model.save_pretrained(path)
    return path


def test_tied_weights_written_once_like_transformers(tmp_path):
    ref = theirs("RobertaForMaskedLM")
    ref.save_pretrained(tmp_path / "theirs")
    ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path / "theirs").save_pretrained(tmp_path / "ours")
    with safe_open(tmp_path / "theirs" / "model.safetensors", "pt") as a, safe_open(tmp_path / "ours" / "model.safetensors", "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        assert "lm_head.decoder.weight" not in b.keys() and "lm_head.bias" in b.keys()
        assert b.metadata() == {"format": "pt"}
        for key in a.keys():
            assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key
    model = ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path / "ours")
    assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight
    assert model.lm_head.decoder.bias is model.lm_head.bias


def test_untied_decoder_round_trips(tmp_path):
    ref = theirs("RobertaForMaskedLM", tie_word_embeddings=False)
    model = ours_cls("RobertaForMaskedLM").from_pretrained(_saved(ref, tmp_path / "a"))
    assert model.lm_head.decoder.weight is not model.roberta.embeddings.word_embeddings.weight
    torch.testing.assert_close(model.lm_head.decoder.weight, ref.lm_head.decoder.weight)
    model.save_pretrained(tmp_path / "b")
    assert_same_outputs(transformers.RobertaForMaskedLM.from_pretrained(tmp_path / "b"), ref, inputs("RobertaForMaskedLM"))


@pytest.mark.parametrize("safe", [True, False])
def test_sharded_round_trip_matches_transformers_format(tmp_path, safe):
    ref = theirs("RobertaForMaskedLM")
    model = ours_cls("RobertaForMaskedLM").from_pretrained(_saved(ref, tmp_path / "src"))
    model.save_pretrained(tmp_path / "ours", max_shard_size=20_000, safe_serialization=safe)
    ref.save_pretrained(tmp_path / "theirs", max_shard_size=20_000, safe_serialization=safe)
    index_name = "model.safetensors.index.json" if safe else "pytorch_model.bin.index.json"
    ours_index = json.loads((tmp_path / "ours" / index_name).read_text())
    theirs_index = json.loads((tmp_path / "theirs" / index_name).read_text())
    assert ours_index["metadata"] == theirs_index["metadata"]
    assert ours_index["weight_map"].keys() == theirs_index["weight_map"].keys()
    shards = set(ours_index["weight_map"].values())
    assert len(shards) > 1 and shards == {f for f in os.listdir(tmp_path / "ours") if f.endswith((".safetensors", ".bin"))}
    batch = inputs("RobertaForMaskedLM")
    assert_same_outputs(ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path / "ours"), ref, batch)
    assert_same_outputs(ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path / "theirs"), ref, batch)
    assert_same_outputs(transformers.RobertaForMaskedLM.from_pretrained(tmp_path / "ours"), ref, batch)


def test_bin_round_trip(tmp_path):
    ref = theirs("RobertaForSequenceClassification")
    ref.save_pretrained(tmp_path / "theirs", safe_serialization=False)
    assert (tmp_path / "theirs" / "pytorch_model.bin").is_file()
    model = ours_cls("RobertaForSequenceClassification").from_pretrained(tmp_path / "theirs")
    batch = inputs("RobertaForSequenceClassification")
    assert_same_outputs(model, ref, batch)
    model.save_pretrained(tmp_path / "ours", safe_serialization=False)
    assert sorted(os.listdir(tmp_path / "ours")) == ["config.json", "pytorch_model.bin"]
    assert_same_outputs(transformers.RobertaForSequenceClassification.from_pretrained(tmp_path / "ours"), ref, batch)


def test_resave_replaces_stale_weight_files(tmp_path):
    ref = theirs("RobertaModel")
    model = ours_cls("RobertaModel").from_pretrained(_saved(ref, tmp_path))
    model.save_pretrained(tmp_path, max_shard_size=20_000)  # shards + index; the single file must go
    assert "model.safetensors" not in os.listdir(tmp_path)
    model.save_pretrained(tmp_path, safe_serialization=False)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "pytorch_model.bin"]
    assert_same_outputs(ours_cls("RobertaModel").from_pretrained(tmp_path), ref, inputs("RobertaModel"))


@pytest.mark.parametrize("dtype", [torch.bfloat16, "bfloat16", torch.float16])
def test_dtype_argument(tmp_path, dtype):
    ref = theirs("RobertaForMaskedLM")
    model = ours_cls("RobertaForMaskedLM").from_pretrained(_saved(ref, tmp_path), dtype=dtype)
    want = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    assert model.dtype == model.config.dtype == want
    # bf16 keeps the embeddings, the LayerNorms and the LM head float32 (tests/test_bf16.py); fp16 keeps nothing
    kept = {n for n, _ in model.named_parameters() if want == torch.bfloat16 and (
        ".embeddings." in n or "LayerNorm" in n or n.startswith("lm_head."))}
    assert {n for n, p in model.named_parameters() if p.dtype == torch.float32} == kept
    assert {p.dtype for n, p in model.named_parameters() if n not in kept} == {want}
    assert model.roberta.embeddings.position_ids.dtype == torch.long
    assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight  # still tied after the cast
    word = ref.roberta.embeddings.word_embeddings.weight
    torch.testing.assert_close(model.roberta.embeddings.word_embeddings.weight, word if kept else word.to(want))


def test_dtype_auto_follows_config_then_checkpoint(tmp_path):
    ref = theirs("RobertaForMaskedLM").to(torch.bfloat16)
    ref.save_pretrained(tmp_path)  # config.json says dtype bfloat16
    assert ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path, dtype="auto").dtype == torch.bfloat16
    assert ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path).dtype == torch.float32  # default: float32
    config = json.loads((tmp_path / "config.json").read_text())
    del config["dtype"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path, dtype="auto")
    assert model.dtype == model.roberta.encoder.layer[0].attention.self.query.weight.dtype == torch.bfloat16
    with pytest.warns(FutureWarning, match="torch_dtype is deprecated"):
        assert ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path, torch_dtype=torch.float16).dtype == torch.float16


@pytest.mark.parametrize("device_map", ["cpu", "auto", {"": "cpu"}, {"roberta": "cpu", "lm_head": "cpu"}])
def test_device_map_cpu_forms(tmp_path, device_map):
    ref = theirs("RobertaForMaskedLM")
    model = ours_cls("RobertaForMaskedLM").from_pretrained(_saved(ref, tmp_path), device_map=device_map)
    assert model.device.type == "cpu" and isinstance(model.hf_device_map, dict)
    assert_same_outputs(model, ref, inputs("RobertaForMaskedLM"))


def test_device_map_errors(tmp_path):
    theirs("RobertaForMaskedLM").save_pretrained(tmp_path)
    cls = ours_cls("RobertaForMaskedLM")
    with pytest.raises(ValueError, match="does not place 'lm_head"):
        cls.from_pretrained(tmp_path, device_map={"roberta": "cpu"})
    with pytest.raises(ValueError, match="offloading to disk/meta is not supported"):
        cls.from_pretrained(tmp_path, device_map={"": "disk"})
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            cls.from_pretrained(tmp_path, device_map="cuda:0")


def test_attn_implementation_and_config_overrides(tmp_path):
    theirs("RobertaForSequenceClassification").save_pretrained(tmp_path)
    cls = ours_cls("RobertaForSequenceClassification")
    model = cls.from_pretrained(tmp_path, attn_implementation="eager", problem_type="regression")
    assert model.config._attn_implementation == "eager" and model.config.problem_type == "regression"
    with pytest.raises(ValueError, match="attn_implementation='flash_attention_2' is not supported"):
        cls.from_pretrained(tmp_path, attn_implementation="flash_attention_2")
    with pytest.raises(TypeError, match="neither loading options nor config attributes: \\['bogus'\\]"):
        cls.from_pretrained(tmp_path, bogus=1)
    config = cls.config_class.from_pretrained(tmp_path, num_labels=3)
    assert cls.from_pretrained(tmp_path, config=config).classifier.out_proj.out_features == 3


def test_loaded_weights_are_private_and_resave_in_place_is_safe(tmp_path):
    """Parameters may be views of a copy-on-write map of model.safetensors: writes must not reach the file,
    and saving back into the same folder must not disturb the model that is still using the old file."""
    ref = theirs("RobertaForMaskedLM")
    ref.save_pretrained(tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()
    model = ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    model.save_pretrained(tmp_path)  # same folder the weights are mapped from
    again = ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path)
    batch = inputs("RobertaForMaskedLM")
    assert_same_outputs(again, model, batch)
    with torch.no_grad():  # the first model still reads its (old, now unlinked) mapping fine
        torch.testing.assert_close(model.roberta.embeddings.word_embeddings.weight,
                                   ref.roberta.embeddings.word_embeddings.weight + 1.0)


@pytest.mark.parametrize("shard", [None, 20_000])
def test_variant_names_match_transformers(tmp_path, shard):
    ref = theirs("RobertaForMaskedLM")
    kwargs = {"variant": "fp16"} if shard is None else {"variant": "fp16", "max_shard_size": shard}
    ref.save_pretrained(tmp_path / "theirs", **kwargs)
    model = ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path / "theirs", variant="fp16")
    model.save_pretrained(tmp_path / "ours", **kwargs)
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "theirs"))
    assert_same_outputs(transformers.RobertaForMaskedLM.from_pretrained(tmp_path / "ours", variant="fp16"), ref,
                        inputs("RobertaForMaskedLM"))
    with pytest.raises(OSError, match="no weights"):
        ours_cls("RobertaForMaskedLM").from_pretrained(tmp_path / "ours")  # only the variant is there
    model.save_pretrained(tmp_path / "ours")  # a plain save leaves the variant files alone
    assert "config.json" in os.listdir(tmp_path / "ours") and "model.safetensors" in os.listdir(tmp_path / "ours")
    assert len(os.listdir(tmp_path / "ours")) == len(os.listdir(tmp_path / "theirs")) + 1


def test_subfolder(tmp_path):
    ref = theirs("RobertaModel")
    ref.save_pretrained(tmp_path / "sub")
    model = ours_cls("RobertaModel").from_pretrained(tmp_path, subfolder="sub")
    assert_same_outputs(model, ref, inputs("RobertaModel"))
    with pytest.raises(OSError, match=r"sub/config\.json of 'org/name' is not in the local hub cache"):
        ours_cls("RobertaModel").from_pretrained("org/name", subfolder="sub", local_files_only=True)
