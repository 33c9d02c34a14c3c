"""TFRoberta* as Keras models: compile + fit on tf.data with the internal loss, evaluate, predict, and a
SavedModel with a dynamic-shape serving signature loaded in a fresh process."""
import json
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow is an optional extra: pip install 'roberta[tf]'")
import keras  # noqa: E402

import roberta  # noqa: E402
from test_tf_models import IDS, MASK, tiny_config  # noqa: E402

pytestmark = pytest.mark.xdist_group("tf")


def synthetic_task(n=96, length=8, seed=0):
    """Label 1 when the sequence holds token 7: one token decides, so a tiny model learns it in a few epochs."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(8, 99, size=(n, length)).astype(np.int32)
    labels = rng.integers(0, 2, size=n).astype(np.int32)
    where = rng.integers(1, length - 1, size=n)
    ids[labels == 1, where[labels == 1]] = 7
    ids[:, 0], ids[:, -1] = 0, 2
    return ids, labels


@pytest.mark.slow
def test_fit_learns_with_internal_loss():
    keras.utils.set_random_seed(0)
    model = roberta.TFRobertaForSequenceClassification(tiny_config(num_labels=2, hidden_dropout_prob=0.0,
                                                                   attention_probs_dropout_prob=0.0))
    ids, labels = synthetic_task()
    train = tf.data.Dataset.from_tensor_slices(({"input_ids": ids, "attention_mask": np.ones_like(ids)}, labels))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))  # no loss: the model's own, from the labels
    history = model.fit(train.shuffle(96, seed=0).batch(16), epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    preds = model.predict(tf.data.Dataset.from_tensor_slices({"input_ids": ids}).batch(32), verbose=0)
    assert preds.logits.shape == (96, 2)  # predict gives the output class, batches concatenated
    assert (preds.logits.argmax(-1) == labels).mean() > 0.9
    # labels inside the input dict work too, for evaluate as for fit
    in_dict = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": labels}).batch(32)
    assert model.evaluate(in_dict, verbose=0) == pytest.approx(float(tf.reduce_mean(model(ids, labels=labels).loss)),
                                                               rel=1e-4)


def test_fit_without_labels_names_the_fix():
    model = roberta.TFRobertaForSequenceClassification(tiny_config())
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="no labels"):
        model.fit(tf.data.Dataset.from_tensor_slices({"input_ids": IDS}).batch(3), epochs=1, verbose=0)


@pytest.mark.slow
def test_saved_model_round_trip_in_fresh_process(tmp_path):
    model = roberta.TFRobertaForMaskedLM(tiny_config())
    model.build_in_name_scope()
    model.save_pretrained(tmp_path / "m", saved_model=True)
    export = tmp_path / "m" / "saved_model" / "1"
    cases = {"padded": (IDS, MASK), "longer": (np.tile(IDS, (2, 2))[:5, :9], np.ones((5, 9), np.int64))}
    want = {name: model(ids, attention_mask=mask).logits.numpy() for name, (ids, mask) in cases.items()}
    np.savez(tmp_path / "inputs.npz", **{f"{name}_ids": ids for name, (ids, _) in cases.items()},
             **{f"{name}_mask": mask for name, (_, mask) in cases.items()})
    script = f"""
import json, numpy as np, tensorflow as tf
served = tf.saved_model.load({str(export)!r}).signatures["serving_default"]
data = np.load({str(tmp_path / "inputs.npz")!r})
out = {{}}
for name in {sorted(cases)!r}:
    result = served(input_ids=tf.constant(data[name + "_ids"], tf.int32),
                    attention_mask=tf.constant(data[name + "_mask"], tf.int32))
    np.save({str(tmp_path)!r} + "/" + name + ".npy", result["logits"].numpy())
    out[name] = sorted(result)
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"longer": ["logits"], "padded": ["logits"]}
    for name in cases:
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), want[name], atol=1e-5)
