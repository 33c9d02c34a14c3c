"""accelerate (bf16 autocast) and datasets + DataCollatorWithPadding driving our models and tokenizer, each compared
with the same pipeline over transformers' model and tokenizer."""
import pytest
import torch

from test_modeling_helpers import assert_close, batch, transformers, twins

accelerate = pytest.importorskip("accelerate", reason="needs accelerate: pip install 'roberta[clients]'")

import roberta  # noqa: E402
import roberta.modeling as ours_mod  # noqa: E402


def test_accelerate_bf16_step_and_save_like_transformers(tmp_path):
    ids, mask = batch()
    labels = ids.clone()
    runs = []
    for side, model in enumerate(twins("RobertaForMaskedLM", hidden_dropout_prob=0.0,
                                       attention_probs_dropout_prob=0.0)):
        accelerator = accelerate.Accelerator(mixed_precision="bf16", cpu=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model, optimizer = accelerator.prepare(model.train(), optimizer)
        out = model(input_ids=ids, attention_mask=mask, labels=labels)  # crashed: type(out)(dict) in the wrapper
        assert out.logits.dtype == torch.float32  # accelerate's convert_outputs_to_fp32 rebuilt our output
        accelerator.backward(out.loss)
        optimizer.step()
        runs.append(out.loss.item())
        if side == 0:  # accelerate's documented save for a model with save_pretrained
            accelerator.unwrap_model(model).save_pretrained(tmp_path, save_function=accelerator.save,
                                                            state_dict=accelerator.get_state_dict(model))
            trained = {k: v.clone() for k, v in accelerator.unwrap_model(model).state_dict().items()}
    assert runs[0] == pytest.approx(runs[1], rel=1e-2)
    reloaded = [cls.from_pretrained(tmp_path).eval() for cls in
                (ours_mod.RobertaForMaskedLM, transformers.RobertaForMaskedLM)]
    for key, value in reloaded[0].state_dict().items():
        assert torch.equal(value, trained[key]), key
    assert_close(*(m(input_ids=ids, attention_mask=mask).logits for m in reloaded))


def test_accelerate_save_model_writes_tied_weights_once(tmp_path):
    from safetensors import safe_open

    ours, theirs = twins("RobertaForMaskedLM")
    accelerate.Accelerator(cpu=True).save_model(ours, tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "roberta.embeddings.word_embeddings.weight" in keys and "lm_head.decoder.weight" not in keys
    again = ours_mod.RobertaForMaskedLM.from_pretrained(tmp_path, config=ours.config).eval()
    ids, mask = batch()
    assert_close(again(input_ids=ids, attention_mask=mask).logits, theirs(input_ids=ids, attention_mask=mask).logits)


def test_datasets_map_and_padding_collator_like_transformers(roberta_base_dir):
    datasets = pytest.importorskip("datasets", reason="needs datasets: pip install 'roberta[clients]'")
    texts = {"text": ["Hello world!", "A longer sentence that will need some padding.", "x", "Two words"],
             "label": [0, 1, 0, 1]}
    ours, theirs = twins("RobertaForSequenceClassification", vocab_size=50265, max_position_embeddings=514)
    batches = []
    for tokenizer_cls, collator_cls, model in (
            (roberta.RobertaTokenizerFast, roberta.DataCollatorWithPadding, ours),
            (roberta.RobertaTokenizerFast, transformers.DataCollatorWithPadding, ours),
            (transformers.RobertaTokenizerFast, transformers.DataCollatorWithPadding, theirs)):
        tokenizer = tokenizer_cls.from_pretrained(roberta_base_dir)
        dataset = datasets.Dataset.from_dict(texts).map(lambda b: tokenizer(b["text"], truncation=True),
                                                        batched=True, remove_columns=["text"])
        features = [dataset[i] for i in range(len(dataset))]
        collated = collator_cls(tokenizer=tokenizer, pad_to_multiple_of=8)(features)
        batches.append((collated, model(**{k: v for k, v in collated.items() if k != "labels"}).logits))
    reference, reference_logits = batches[-1]
    for collated, logits in batches[:-1]:
        assert sorted(collated) == sorted(reference)
        for key in reference:
            assert torch.equal(collated[key], reference[key]), key
        assert_close(logits, reference_logits)
