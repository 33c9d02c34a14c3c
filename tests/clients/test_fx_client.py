"""torch.fx graphs of our models, traced from an unpadded example and run on a padded batch of another shape:
equal to transformers' eager model on the same weights. The value shortcuts (all-ones mask, rows that see no
key) must not be baked into the graph.

transformers' FX tracer (`HFTracer`) resolves shape-dependent Python (`batch, T = ids.shape`, shape checks) on
meta tensors, which plain `torch.fx.symbolic_trace` cannot do for any transformer model (transformers' own
RoBERTa included). Its `symbolic_trace` helper makes dummy inputs only for transformers' own base class, so
for ours the caller passes them (`dummy_inputs=`)."""
import inspect

import pytest
import torch
from torch.testing import assert_close

from test_modeling_helpers import CLASSES, TINY, twins

fx = pytest.importorskip("transformers.utils.fx", reason="the FX tracer tests need transformers: pip install 'roberta[test]'")


def example_and_padded_batch(name):
    """An unpadded example (2, 7) with an all-ones mask, and a batch (3, 9) whose second row has 4 padding
    tokens on the left (so that they change every row of the causal LM too, were they not masked);
    (B, 3 choices, T) for the multiple-choice head."""
    g = torch.Generator().manual_seed(1)
    example = torch.randint(3, TINY["vocab_size"], (2, 7), generator=g)
    ids = torch.randint(3, TINY["vocab_size"], (3, 9), generator=g)
    mask = torch.ones_like(ids)
    ids[1, :4], mask[1, :4] = 1, 0
    if name == "RobertaForMultipleChoice":  # three different choices per row, padded alike
        example, ids = (torch.stack([shifted(t, 11 * c) for c in range(3)], dim=1) for t in (example, ids))
        mask = mask[:, None].repeat(1, 3, 1)
    return example, ids, mask


def shifted(ids, k):
    """Other real tokens (3..vocab) in the same places, padding (id 1) kept."""
    return torch.where(ids == 1, ids, (ids - 3 + k) % (TINY["vocab_size"] - 3) + 3)


def label_inputs(name, ids):
    """The loss inputs of head `name` for input ids `ids` (-> {} for the bare model)."""
    g = torch.Generator().manual_seed(2)
    B = ids.shape[0]
    if name in ("RobertaForMaskedLM", "RobertaForCausalLM", "RobertaForTokenClassification"):
        high = TINY["vocab_size"] if name.endswith("LM") else 2
        ignored = ids == 1
        if name == "RobertaForCausalLM":  # nor the label predicted from a padding position (it sees no key)
            ignored = ignored | torch.nn.functional.pad(ignored, (1, 0))[:, :-1]
        return {"labels": torch.randint(high, ids.shape, generator=g).masked_fill(ignored, -100)}
    if name == "RobertaForQuestionAnswering":
        return {"start_positions": torch.randint(ids.shape[1], (B,), generator=g),
                "end_positions": torch.randint(ids.shape[1], (B,), generator=g)}
    if name in ("RobertaForSequenceClassification", "RobertaForMultipleChoice"):
        return {"labels": torch.randint(2, (B,), generator=g)}
    return {}


def hf_trace(model, dummy_inputs):
    """transformers' HFTracer over `model` with the given inputs traced; every other argument of forward is
    a constant at its default (`**kwargs` empty)."""
    params = inspect.signature(model.forward).parameters.values()
    concrete = {p.name: {} if p.kind is p.VAR_KEYWORD else p.default for p in params if p.name not in dummy_inputs}
    graph = fx.HFTracer().trace(model, concrete_args=concrete, dummy_inputs=dummy_inputs,
                                complete_concrete_args_with_inputs_not_in_dummy_inputs=False)
    return torch.fx.GraphModule(model, graph)


@pytest.mark.parametrize("with_loss", [False, True], ids=["outputs", "loss"])
@pytest.mark.parametrize("name", CLASSES)
def test_hf_tracer_graph_from_unpadded_example_masks_padding(name, with_loss):
    if with_loss and name == "RobertaModel":
        pytest.skip("the bare model has no loss")
    decoder = name == "RobertaForCausalLM"  # (a graph returns tensors, not a cache: as transformers' tracer does)
    ours, theirs = twins(name, is_decoder=decoder, use_cache=not decoder, return_dict=False, initializer_range=0.3)
    example, ids, mask = example_and_padded_batch(name)
    labels, example_labels = (label_inputs(name, ids), label_inputs(name, example)) if with_loss else ({}, {})
    traced = hf_trace(ours, {"input_ids": example, "attention_mask": torch.ones_like(example), **example_labels})
    with torch.no_grad():
        got = traced(input_ids=ids, attention_mask=mask, **labels)[0]
        expected = theirs(input_ids=ids, attention_mask=mask, **labels)[0]
        unmasked = theirs(input_ids=ids, **labels)[0]
    assert got.shape == expected.shape
    assert (unmasked - expected).abs().max() > 0.01  # were the padding not masked, the check below would fail
    # the causal LM's padding positions see no key at all: ours gives zeros there, transformers an average (README)
    if decoder and not with_loss:
        got, expected = got[mask.bool()], expected[mask.bool()]
    assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_make_fx_graph_from_unpadded_example_masks_padding():
    """torch's own FX tracing on real tensors (make_fx): it records the ops one call runs, so a shortcut taken
    on the example's values would be replayed for every later input."""
    from torch.fx.experimental.proxy_tensor import make_fx

    ours, theirs = twins("RobertaForSequenceClassification", return_dict=False, initializer_range=0.3)
    example, ids, mask = example_and_padded_batch("RobertaForSequenceClassification")
    ids, mask = ids[:2, :7], mask[:2, :7]  # make_fx graphs are specialised to the example's shape
    graph = make_fx(lambda i, m: ours(input_ids=i, attention_mask=m)[0])(example, torch.ones_like(example))
    with torch.no_grad():
        expected = theirs(input_ids=ids, attention_mask=mask)[0]
        assert (theirs(input_ids=ids)[0] - expected).abs().max() > 0.01
        assert_close(graph(ids, mask), expected, atol=1e-5, rtol=1e-5)


def test_transformers_symbolic_trace_makes_dummy_inputs_only_for_its_own_base_class():
    """The reason transformers' test_torch_fx fails on ours (README, differences from transformers)."""
    ours, _ = twins("RobertaModel")
    with pytest.raises(RuntimeError, match="because root is not a transformers.PreTrainedModel"):
        fx.symbolic_trace(ours, ["input_ids", "attention_mask"])
