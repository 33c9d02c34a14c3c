"""TFRoberta*: parity with our PyTorch classes on the same weights (padding, attentions, hidden states, causal
cache, losses), weights both ways with transformers 4.57's TF classes, Keras fit / predict, XLA, bfloat16."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow is an optional extra: pip install 'roberta[tf]'")
import torch  # noqa: E402

import roberta  # noqa: E402

pytestmark = pytest.mark.xdist_group("tf")  # one worker pays TensorFlow's import

HEADS = ["Model", "ForMaskedLM", "ForCausalLM", "ForSequenceClassification", "ForMultipleChoice",
         "ForTokenClassification", "ForQuestionAnswering"]
IDS = np.array([[0, 31, 52, 7, 9, 2], [0, 44, 2, 1, 1, 1], [1, 1, 0, 17, 88, 2]])  # right and left padding
MASK = (IDS != 1).astype(np.int64)


def tiny_config(**overrides):
    base = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                max_position_embeddings=40, type_vocab_size=1, num_labels=3, hidden_act="gelu")
    return roberta.RobertaConfig(**{**base, **overrides})


def config_for(head):
    return tiny_config(is_decoder=head == "ForCausalLM", num_labels=2 if head == "ForQuestionAnswering" else 3)


@pytest.fixture(scope="module")
def pt_checkpoints(tmp_path_factory):
    """head -> folder with our PyTorch model's safetensors (seeded random weights)."""
    out = {}
    for i, head in enumerate(HEADS):
        torch.manual_seed(i)
        model = getattr(roberta, f"Roberta{head}")(config_for(head)).eval()
        with torch.no_grad():  # non-zero LM bias and LayerNorm params, so a dropped weight shows
            for name, p in model.named_parameters():
                if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name:
                    p.add_(0.1 * torch.randn_like(p))
        out[head] = tmp_path_factory.mktemp(head)
        model.save_pretrained(out[head])
    return out


@pytest.fixture(scope="module")
def tf_models(pt_checkpoints):
    """head -> our TF model loaded from that checkpoint, loaded once per module (building a Keras model eagerly
    costs seconds)."""
    cache = {}

    def load(head):
        if head not in cache:
            cache[head] = getattr(roberta, f"TFRoberta{head}").from_pretrained(pt_checkpoints[head])
        return cache[head]
    return load


def inputs_for(head):
    if head == "ForMultipleChoice":
        return {"input_ids": np.stack([IDS[:2], IDS[1:]]), "attention_mask": np.stack([MASK[:2], MASK[1:]])}
    return {"input_ids": IDS, "attention_mask": MASK}


def tensors(output):
    """Every tensor of an output, by name (tuples of hidden states / attentions flattened)."""
    flat = {}
    for key, value in output.items():
        if isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                if isinstance(v, (tuple, list)):
                    flat.update({f"{key}.{i}.{j}": np.asarray(x) for j, x in enumerate(v)})
                else:
                    flat[f"{key}.{i}"] = np.asarray(v)
        elif value is not None:
            flat[key] = np.asarray(value)
    return flat


def assert_close(got, want, atol=1e-5):
    got, want = tensors(got), tensors(want)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=atol, rtol=0, err_msg=key)


@pytest.mark.parametrize("head", HEADS)
def test_parity_with_our_pytorch_class(pt_checkpoints, tf_models, head):
    pt = getattr(roberta, f"Roberta{head}").from_pretrained(pt_checkpoints[head], attn_implementation="eager")
    ours = tf_models(head)
    inputs = inputs_for(head)
    with torch.no_grad():
        want = pt(**{k: torch.tensor(v) for k, v in inputs.items()}, output_attentions=True, output_hidden_states=True)
    got = ours(inputs, output_attentions=True, output_hidden_states=True, **cache_off(head))
    assert_close(got, {k: v.numpy() if torch.is_tensor(v) else tuple(x.numpy() for x in v) for k, v in want.items()
                       if k != "past_key_values"})


def cache_off(head):
    return {"use_cache": False} if head in ("Model", "ForCausalLM") else {}


LABELS = {
    "ForMaskedLM": {"labels": np.where(MASK == 1, IDS, -100)},
    "ForCausalLM": {"labels": np.where(MASK == 1, IDS, -100)},
    "ForSequenceClassification": {"labels": np.array([0, 2, 1])},
    "ForMultipleChoice": {"labels": np.array([1, 0])},
    "ForTokenClassification": {"labels": np.where(MASK == 1, IDS % 3, -100)},
    "ForQuestionAnswering": {"start_positions": np.array([1, 2, 3]), "end_positions": np.array([3, 2, 4])},
}


@pytest.mark.parametrize("head", sorted(LABELS))
def test_loss_matches_pytorch(pt_checkpoints, tf_models, head):
    """Per-example losses (B,) average to the PyTorch mean; masked-mean losses have transformers' TF shape (1,)."""
    pt = getattr(roberta, f"Roberta{head}").from_pretrained(pt_checkpoints[head])
    ours = tf_models(head)
    inputs = {**inputs_for(head), **LABELS[head]}
    with torch.no_grad():
        want = float(pt(**{k: torch.tensor(v) for k, v in inputs.items()}).loss)
    loss = ours(inputs).loss
    per_example = head in ("ForSequenceClassification", "ForMultipleChoice", "ForQuestionAnswering")
    assert loss.shape == ((len(inputs["input_ids"]),) if per_example else (1,))
    assert float(tf.reduce_mean(loss)) == pytest.approx(want, abs=1e-5)


def test_causal_cache_matches_full_pass(pt_checkpoints, tf_models):
    """Decoding step by step with past_key_values gives the full pass's logits, and our PyTorch cache's."""
    folder = pt_checkpoints["ForCausalLM"]
    ours = tf_models("ForCausalLM")
    pt = roberta.RobertaForCausalLM.from_pretrained(folder)
    ids = IDS[:2, :4]
    full = ours(ids, use_cache=True)
    first = ours(ids[:, :3], use_cache=True)
    assert len(first.past_key_values) == 2 and first.past_key_values[0][0].shape == (2, 4, 3, 8)  # (B, H, S, D)
    step = ours(ids[:, 3:], past_key_values=first.past_key_values, use_cache=True)
    np.testing.assert_allclose(step.logits.numpy(), full.logits.numpy()[:, 3:], atol=1e-5)
    assert step.past_key_values[0][0].shape == (2, 4, 4, 8)
    with torch.no_grad():
        pt_first = pt(torch.tensor(ids[:, :3]), use_cache=True)
        pt_step = pt(torch.tensor(ids[:, 3:]), past_key_values=pt_first.past_key_values, use_cache=True)
    np.testing.assert_allclose(step.logits.numpy(), pt_step.logits.numpy(), atol=1e-5)
    for (k, v), (pk, pv) in zip(step.past_key_values, pt_step.past_key_values):
        np.testing.assert_allclose(k.numpy(), pk.numpy(), atol=1e-5)
        np.testing.assert_allclose(v.numpy(), pv.numpy(), atol=1e-5)


def test_training_flag_turns_dropout_on(pt_checkpoints):
    model = roberta.TFRobertaForSequenceClassification.from_pretrained(pt_checkpoints["ForSequenceClassification"],
                                                                       hidden_dropout_prob=0.5)
    inputs = inputs_for("ForSequenceClassification")
    eval_a, eval_b = model(inputs).logits, model(inputs, training=False).logits
    np.testing.assert_array_equal(eval_a.numpy(), eval_b.numpy())
    train = model(inputs, training=True).logits
    assert np.abs(train.numpy() - eval_a.numpy()).max() > 1e-3


def test_dict_keyword_and_batch_encoding_calls_agree(tf_models):
    """transformers' TF calling styles: a dict (or BatchEncoding) first argument, or keyword tensors."""
    from roberta import BatchEncoding

    model = tf_models("ForSequenceClassification")
    want = model({"input_ids": IDS, "attention_mask": MASK}).logits.numpy()
    np.testing.assert_array_equal(model(input_ids=IDS, attention_mask=MASK).logits.numpy(), want)
    np.testing.assert_array_equal(model(BatchEncoding({"input_ids": IDS, "attention_mask": MASK})).logits.numpy(), want)
    np.testing.assert_array_equal(model(tf.constant(IDS), attention_mask=tf.constant(MASK)).logits.numpy(), want)


def test_xla_forward_matches_eager(tf_models):
    model = tf_models("ForMaskedLM")
    xla = tf.function(lambda ids, mask: model(ids, attention_mask=mask).logits, jit_compile=True)
    got = xla(tf.constant(IDS, tf.int32), tf.constant(MASK, tf.int32))
    np.testing.assert_allclose(got.numpy(), model(IDS, attention_mask=MASK).logits.numpy(), atol=1e-5)


def test_mixed_bfloat16_policy(pt_checkpoints, tf_models):
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = roberta.TFRobertaForSequenceClassification.from_pretrained(pt_checkpoints["ForSequenceClassification"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    full = tf_models("ForSequenceClassification")
    out = model({**inputs_for("ForSequenceClassification"), "labels": np.array([0, 1, 2])})
    assert out.logits.dtype == tf.bfloat16 and out.loss.dtype == tf.float32  # compute bf16, loss in float32
    assert all(v.dtype == "float32" for v in model.weights)  # variables stay float32
    np.testing.assert_allclose(out.logits.numpy().astype(np.float32),
                               full(inputs_for("ForSequenceClassification")).logits.numpy(), atol=0.05)


def test_bad_inputs_raise_clear_errors(tf_models):
    model = tf_models("Model")
    with pytest.raises(ValueError, match="input_ids contains 99, outside 0..98"):
        model(np.array([[0, 99, 2]]))
    with pytest.raises(ValueError, match="token_type_ids contains 1.*</s></s>"):
        model(IDS, token_type_ids=np.ones_like(IDS))
    with pytest.raises(ValueError, match="longer than this model's maximum of 38 tokens"):
        model(np.zeros((1, 39), np.int32))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(3, 5\)"):
        model(IDS, attention_mask=MASK[:, :5])
    with pytest.raises(TypeError, match=r"unexpected arguments \['labels'\]"):
        model(IDS, labels=IDS)


def test_import_roberta_does_not_import_tensorflow_and_missing_tf_names_the_extra():
    from _lazy_extras import missing_extra_message

    out = missing_extra_message("roberta.TFRobertaModel", ["tensorflow", "keras"], "tensorflow",
                                before="roberta.RobertaConfig")
    assert out == "The TFRoberta* classes need TensorFlow: pip install 'roberta[tf]'"


def test_tf_package_never_imports_torch():
    """src/roberta/tf reads PyTorch checkpoints through numpy; it must not import torch."""
    import pathlib

    for path in pathlib.Path(roberta.__file__).parent.joinpath("tf").glob("*.py"):
        text = path.read_text()
        assert "import torch" not in text and "from torch" not in text, path


def test_weight_files_both_ways(pt_checkpoints, tf_models, tmp_path):
    """pytorch_model.bin (read without torch), our own tf_model.h5, a base checkpoint into a head, and the
    error when from_pt=True finds no PyTorch weights."""
    want = tf_models("ForMaskedLM")(IDS, attention_mask=MASK).logits.numpy()
    roberta.RobertaForMaskedLM.from_pretrained(pt_checkpoints["ForMaskedLM"]).save_pretrained(
        tmp_path / "bin", safe_serialization=False)
    from_bin = roberta.TFRobertaForMaskedLM.from_pretrained(tmp_path / "bin")
    np.testing.assert_allclose(from_bin(IDS, attention_mask=MASK).logits.numpy(), want, atol=1e-6)
    from_bin.save_pretrained(tmp_path / "h5")
    assert sorted(p.name for p in (tmp_path / "h5").iterdir()) == ["config.json", "tf_model.h5"]
    from_h5 = roberta.TFRobertaForMaskedLM.from_pretrained(tmp_path / "h5")
    np.testing.assert_array_equal(from_h5(IDS, attention_mask=MASK).logits.numpy(), want)
    with pytest.raises(OSError, match="no PyTorch weights"):
        roberta.TFRobertaForMaskedLM.from_pretrained(tmp_path / "h5", from_pt=True)

    head, info = roberta.TFRobertaForSequenceClassification.from_pretrained(pt_checkpoints["Model"],
                                                                            output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier/dense/bias", "classifier/dense/kernel",
                                            "classifier/out_proj/bias", "classifier/out_proj/kernel"]
    body = tf_models("Model")
    got = head.roberta(tf.constant(IDS), attention_mask=tf.constant(MASK)).last_hidden_state
    np.testing.assert_array_equal(got.numpy(), body(IDS, attention_mask=MASK).last_hidden_state.numpy())
