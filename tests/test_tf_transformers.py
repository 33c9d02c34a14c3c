"""Against transformers 4.57.6's TFRoberta* classes (they run on tf-keras, Keras 2): same outputs on the same
weights, and tf_model.h5 both ways (theirs loads ours, ours loads theirs)."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow is an optional extra: pip install 'roberta[tf]'")
pytest.importorskip("tf_keras", reason="transformers' TF classes need tf-keras (dev.sh installs it with --no-deps)")
import transformers  # noqa: E402

import roberta  # noqa: E402
from test_tf_models import HEADS, cache_off, inputs_for, pt_checkpoints, tensors, tf_models  # noqa: E402,F401

pytestmark = pytest.mark.xdist_group("tf")


def theirs_class(head):
    return getattr(transformers, f"TFRoberta{head}")


def assert_same_outputs(got, want, atol=1e-5, extra=False):
    """`extra`: ours may return more (transformers' TF multiple-choice head passes output_attentions and
    output_hidden_states into the wrong positional slots, so it returns neither)."""
    got, want = tensors(got), tensors(want)
    assert set(want) <= set(got) if extra else sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=atol, rtol=0, err_msg=key)


@pytest.mark.parametrize("head", HEADS)
def test_parity_and_h5_both_ways(pt_checkpoints, tf_models, tmp_path, head):
    """transformers' TF class (from the same PyTorch weights) and ours agree with padding, attentions and
    hidden states; each loads the other's tf_model.h5 and gives the same outputs again."""
    kwargs = {"output_attentions": True, "output_hidden_states": True, **cache_off(head)}
    inputs = {k: tf.constant(v, tf.int32) for k, v in inputs_for(head).items()}
    if head == "ForCausalLM":  # left padding under a causal mask leaves pad queries with no key: transformers
        inputs = {k: v[:2] for k, v in inputs.items()}  # attends to masked keys there, we output zeros
    theirs = theirs_class(head).from_pretrained(pt_checkpoints[head], from_pt=True)
    ours = tf_models(head)
    want = theirs(inputs, **kwargs)
    assert_same_outputs(ours(inputs, **kwargs), want, extra=head == "ForMultipleChoice")

    ours.save_pretrained(tmp_path / "ours")
    reloaded, info = theirs_class(head).from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    assert_same_outputs(reloaded(inputs, **kwargs), want)

    theirs.save_pretrained(tmp_path / "theirs")
    ours_from_theirs, info = getattr(roberta, f"TFRoberta{head}").from_pretrained(tmp_path / "theirs",
                                                                                 output_loading_info=True)
    assert info["missing_keys"] == [] and info["mismatched_keys"] == []
    assert_same_outputs(ours_from_theirs(inputs, **kwargs), want, extra=head == "ForMultipleChoice")


def test_causal_cache_matches_transformers(pt_checkpoints, tf_models):
    folder = pt_checkpoints["ForCausalLM"]
    theirs = transformers.TFRobertaForCausalLM.from_pretrained(folder, from_pt=True)
    ours = tf_models("ForCausalLM")
    ids = tf.constant(inputs_for("ForCausalLM")["input_ids"][:2, :4], tf.int32)
    t_first = theirs(ids[:, :3], use_cache=True)
    o_first = ours(ids[:, :3], use_cache=True)
    t_step = theirs(ids[:, 3:], past_key_values=t_first.past_key_values, use_cache=True)
    o_step = ours(ids[:, 3:], past_key_values=o_first.past_key_values, use_cache=True)
    np.testing.assert_allclose(o_step.logits.numpy(), t_step.logits.numpy(), atol=1e-5)
    for ours_kv, theirs_kv in zip(o_step.past_key_values, t_step.past_key_values):
        for a, b in zip(ours_kv, theirs_kv):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
