"""Flax weight files: transformers 4.57.6's FlaxRoberta* classes load what we save and we load what they
save (flax_model.msgpack), our name table equals transformers' own PyTorch->Flax converter, PyTorch files
(safetensors, pytorch_model.bin, bf16) load without torch, base <-> head prefixes, and clear errors."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from test_flax_helpers import DECODER, HEADS, assert_close, batch, config, twins

import jax  # noqa: E402
import torch  # noqa: E402
from flax.traverse_util import flatten_dict  # noqa: E402

import roberta  # noqa: E402
from roberta.flax.weights import pt_to_flax  # noqa: E402
from roberta.weight_files import CheckpointError  # noqa: E402

transformers = pytest.importorskip("transformers")


def _only(folder, tmp_path, *names):
    """A copy of `folder` holding only `names` (e.g. forcing transformers onto the msgpack file)."""
    out = tmp_path / "only"
    out.mkdir()
    for name in names:
        shutil.copy(os.path.join(folder, name), out / name)
    return out


def _inputs(name):
    ids, mask = batch("right")
    if name == "RobertaForMultipleChoice":
        return np.stack([ids, ids[::-1]]), np.stack([mask, mask[::-1]])
    return ids, mask


def _fields(name):
    return {"RobertaModel": ["last_hidden_state", "pooler_output"],
            "RobertaForQuestionAnswering": ["start_logits", "end_logits"]}.get(name, ["logits"])


# transformers' Flax models run op by op (slow to call): the base model, a tied LM head, the pooled multiple-choice
# head and QA cover every naming case (no prefix, prefix, no decoder kernel, pooler, choices axis)
@pytest.mark.parametrize("name", ["RobertaModel", "RobertaForMaskedLM", "RobertaForMultipleChoice",
                                  "RobertaForQuestionAnswering"])
def test_transformers_flax_loads_our_msgpack_and_we_load_theirs(name, tmp_path):
    extra = DECODER if name == "RobertaForCausalLM" else ()
    _, ours, _ = twins(name, extra)
    ids, mask = _inputs(name)
    want = ours(ids, attention_mask=mask)
    ours.save_pretrained(tmp_path / "ours")
    assert {"flax_model.msgpack", "config.json", "model.safetensors"} <= set(os.listdir(tmp_path / "ours"))
    theirs = getattr(transformers, "Flax" + name).from_pretrained(_only(tmp_path / "ours", tmp_path, "flax_model.msgpack",
                                                                        "config.json"))
    got = theirs(ids, attention_mask=mask)
    for field in _fields(name):
        assert_close(got[field], want[field])
    theirs.save_pretrained(tmp_path / "theirs")
    back = getattr(roberta, "Flax" + name).from_pretrained(tmp_path / "theirs")
    assert jax.tree_util.tree_structure(back.params) == jax.tree_util.tree_structure(ours.params)
    for field in _fields(name):
        assert_close(back(ids, attention_mask=mask)[field], want[field])


@pytest.mark.parametrize("name", ["RobertaForMaskedLM", "RobertaForSequenceClassification"])
def test_pytorch_classes_load_the_safetensors_we_save(name, tmp_path):
    pt, fx, _ = twins(name)
    fx.save_pretrained(tmp_path)
    ids, mask = batch("right")
    ours_pt = getattr(roberta, name).from_pretrained(tmp_path)
    theirs_pt = getattr(transformers, name).from_pretrained(tmp_path)
    with torch.no_grad():
        a = ours_pt(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
        b = theirs_pt(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    assert_close(fx(ids, attention_mask=mask).logits, a)
    assert_close(fx(ids, attention_mask=mask).logits, b)


def test_name_table_equals_transformers_converter():
    from transformers.modeling_flax_pytorch_utils import convert_pytorch_state_dict_to_flax

    for name in HEADS:  # every class's names (building their Flax model runs no forward: cheap)
        pt, fx, _ = twins(name, DECODER if name == "RobertaForCausalLM" else ())
        ours = pt_to_flax({k: v.numpy() for k, v in pt.state_dict().items()}, pt.config)
        theirs = flatten_dict(convert_pytorch_state_dict_to_flax(dict(pt.state_dict()),  # (it converts in place)
                                                                 getattr(transformers, "Flax" + name)(pt.config)))
        used = set(flatten_dict(fx.params))  # their converter also emits the tied lm_head.decoder, which loading drops
        assert set(ours) == used and used <= set(theirs), name
        for key in ours:
            np.testing.assert_array_equal(ours[key], np.asarray(theirs[key]))


def test_pytorch_bin_and_bf16_load_and_the_reader_needs_no_torch(tmp_path):
    pt, fx, _ = twins("RobertaForTokenClassification")
    pt.save_pretrained(tmp_path / "bin", safe_serialization=False)
    pt.to(torch.bfloat16).save_pretrained(tmp_path / "bf16", safe_serialization=False)
    pt.to(torch.float32)
    ids, mask = batch("right")
    assert_close(roberta.FlaxRobertaForTokenClassification.from_pretrained(tmp_path / "bin")(ids, attention_mask=mask).logits,
                 fx(ids, attention_mask=mask).logits)
    bf16 = roberta.FlaxRobertaForTokenClassification.from_pretrained(tmp_path / "bf16")
    kernel = bf16.params["classifier"]["kernel"]
    assert kernel.dtype == jax.numpy.float32  # loaded as float32 params (trainable with Adam), bf16 values
    np.testing.assert_array_equal(np.asarray(kernel), pt.classifier.weight.detach().to(torch.bfloat16).float().numpy().T)
    # the reader itself (weight_files) rebuilds the tensors with numpy alone; a checkpoint naming other code is refused
    code = ("import sys; from roberta.weight_files import read_torch_bin_numpy as r\n"
            f"a = r({str(tmp_path / 'bin' / 'pytorch_model.bin')!r}); b = r({str(tmp_path / 'bf16' / 'pytorch_model.bin')!r})\n"
            "assert 'torch' not in sys.modules and 'jax' not in sys.modules\n"
            "print(a['classifier.weight'].dtype, b['classifier.weight'].dtype, a['classifier.weight'].shape)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["float32", "bfloat16", "(3,", "32)"]

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"w": torch.zeros(2), "x": Exploit()}, tmp_path / "evil.bin")
    from roberta.weight_files import read_torch_bin_numpy
    with pytest.raises(CheckpointError, match="not unpickled.*global posix.system is not allowed"):
        read_torch_bin_numpy(str(tmp_path / "evil.bin"))


def test_from_pt_prefers_pytorch_weights_and_msgpack_is_default(tmp_path):
    _, mlm, _ = twins("RobertaForMaskedLM")
    mlm.save_pretrained(tmp_path)  # msgpack and safetensors of the same weights ...
    other = roberta.FlaxRobertaForMaskedLM(mlm.config, seed=5)
    other.save_pretrained(tmp_path, pytorch_weights=False)  # ... then a msgpack of other weights
    ids, _ = batch(None)
    default = roberta.FlaxRobertaForMaskedLM.from_pretrained(tmp_path)(ids).logits
    from_pt = roberta.FlaxRobertaForMaskedLM.from_pretrained(tmp_path, from_pt=True)(ids).logits
    assert_close(default, other(ids).logits)
    assert_close(from_pt, mlm(ids).logits)


def test_base_checkpoint_into_head_and_back(tmp_path, caplog):
    _, base, _ = twins("RobertaModel")
    base.save_pretrained(tmp_path / "base")
    with caplog.at_level(logging.WARNING, logger="roberta.flax.weights"):
        head = roberta.FlaxRobertaForSequenceClassification.from_pretrained(tmp_path / "base")
    assert "newly initialized" in caplog.text and "classifier/out_proj/kernel" in caplog.text
    np.testing.assert_array_equal(np.asarray(head.params["roberta"]["encoder"]["layer"]["1"]["output"]["dense"]["kernel"]),
                                  np.asarray(base.params["encoder"]["layer"]["1"]["output"]["dense"]["kernel"]))
    head.save_pretrained(tmp_path / "head")
    again = roberta.FlaxRobertaModel.from_pretrained(tmp_path / "head", add_pooling_layer=False)
    assert "pooler" not in again.params and "roberta" not in again.params
    ids, mask = batch("right")
    assert_close(again(ids, attention_mask=mask).last_hidden_state, base(ids, attention_mask=mask).last_hidden_state)


def test_loading_errors_are_clear(tmp_path):
    _, seq, folder = twins("RobertaForSequenceClassification")
    (tmp_path / "empty").mkdir()
    config().save_pretrained(tmp_path / "empty")
    with pytest.raises(CheckpointError, match=r"no weights \(flax_model\.msgpack, model\.safetensors or "
                                              r"pytorch_model\.bin\) in folder .*it holds: config\.json"):
        roberta.FlaxRobertaModel.from_pretrained(tmp_path / "empty")
    bad = _only(folder, tmp_path, "config.json")
    (bad / "flax_model.msgpack").write_bytes(b"\x00\x01 not msgpack")
    with pytest.raises(CheckpointError, match="flax_model.msgpack could not be read as a Flax msgpack checkpoint"):
        roberta.FlaxRobertaModel.from_pretrained(bad)
    with pytest.raises(ValueError, match=r"size mismatch for classifier/out_proj/bias: the checkpoint has shape \(3,\), "
                                         r"the model expects \(5,\).*ignore_mismatched_sizes=True"):
        roberta.FlaxRobertaForSequenceClassification.from_pretrained(folder, num_labels=5)
    five = roberta.FlaxRobertaForSequenceClassification.from_pretrained(folder, num_labels=5, ignore_mismatched_sizes=True)
    assert five(batch(None)[0]).logits.shape == (3, 5)
    with pytest.raises(TypeError, match="neither loading options nor config attributes: \\['not_an_option'\\]"):
        roberta.FlaxRobertaModel.from_pretrained(folder, not_an_option=1)


def test_do_init_false_returns_params():
    _, _, folder = twins("RobertaForMaskedLM")
    model, params = roberta.FlaxRobertaForMaskedLM.from_pretrained(folder, _do_init=False)
    with pytest.raises(ValueError, match="built with _do_init=False"):
        model.params
    ids, _ = batch(None)
    assert model(ids, params=params).logits.shape == ids.shape + (99,)
    # transformers' recipe for the weights a checkpoint lacks: init_weights(key, input_shape, params) fills only them
    _, base, base_folder = twins("RobertaModel")
    head, params = roberta.FlaxRobertaForSequenceClassification.from_pretrained(base_folder, _do_init=False)
    assert "classifier" not in params
    params = head.init_weights(head.key, head.input_shape, params)
    assert set(flatten_dict(params)) == set(flatten_dict(head.params_shape_tree))
    np.testing.assert_array_equal(np.asarray(params["roberta"]["embeddings"]["word_embeddings"]["embedding"]),
                                  np.asarray(base.params["embeddings"]["word_embeddings"]["embedding"]))
    assert float(np.abs(np.asarray(params["classifier"]["dense"]["kernel"])).max()) > 0  # random, not zeros


def test_hub_id_loads_through_the_hub_cache(tmp_path, monkeypatch):
    """A hub id resolves through huggingface_hub's cache like the PyTorch loader: the msgpack by default, the
    PyTorch weights with from_pt=True (the cache laid out as huggingface_hub writes it; offline)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    _, mlm, _ = twins("RobertaForMaskedLM")
    repo = tmp_path / "models--test-org--tiny-flax"
    mlm.save_pretrained(repo / "snapshots" / commit)  # msgpack and safetensors of the same weights ...
    roberta.FlaxRobertaForMaskedLM(mlm.config, seed=5).save_pretrained(repo / "snapshots" / commit,
                                                                       pytorch_weights=False)  # ... other msgpack
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ids, _ = batch(None)
    from_hub = roberta.FlaxRobertaForMaskedLM.from_pretrained("test-org/tiny-flax", cache_dir=tmp_path)
    assert_close(from_hub(ids).logits, roberta.FlaxRobertaForMaskedLM(mlm.config, seed=5)(ids).logits)
    from_pt = roberta.FlaxRobertaForMaskedLM.from_pretrained("test-org/tiny-flax", cache_dir=tmp_path, from_pt=True)
    assert_close(from_pt(ids).logits, mlm(ids).logits)
    assert from_pt.config.name_or_path == "test-org/tiny-flax"
    with pytest.raises(OSError, match="not in the local hub cache and offline mode is on"):
        roberta.FlaxRobertaModel.from_pretrained("test-org/absent", cache_dir=tmp_path)
