"""Helpers shared by the test_loading_* files (no tests here): tiny configs and paired models."""
import torch
import transformers

import roberta.modeling as ours

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=40, type_vocab_size=1, layer_norm_eps=1e-5)

CLASS_NAMES = ["RobertaModel", "RobertaForMaskedLM", "RobertaForCausalLM", "RobertaForSequenceClassification",
               "RobertaForTokenClassification", "RobertaForQuestionAnswering", "RobertaForMultipleChoice"]


def tiny_kwargs(class_name, **extra):
    kw = dict(TINY, num_labels=2 if class_name == "RobertaForQuestionAnswering" else 3, **extra)
    if class_name == "RobertaForCausalLM":
        kw["is_decoder"] = True
    return kw


def theirs(class_name, seed=0, **extra):
    """A transformers model with seeded random weights (eval mode)."""
    torch.manual_seed(seed)
    return getattr(transformers, class_name)(transformers.RobertaConfig(**tiny_kwargs(class_name, **extra))).eval()


def ours_cls(class_name):
    return getattr(ours, class_name)


def inputs(class_name, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (2, 3, 7) if class_name == "RobertaForMultipleChoice" else (2, 7)
    ids = torch.randint(3, TINY["vocab_size"], shape, generator=g)
    mask = torch.ones_like(ids)
    mask[..., -2:] = 0
    ids[..., -2:] = 1  # pad
    return {"input_ids": ids, "attention_mask": mask}


def outputs(model, batch):
    """Every tensor output, by name (ModelOutput is a dict in both libraries)."""
    with torch.no_grad():
        out = model(**batch)
    return {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}


def assert_same_outputs(a, b, batch, atol=1e-5):
    oa, ob = outputs(a, batch), outputs(b, batch)
    assert oa.keys() & ob.keys(), (oa.keys(), ob.keys())
    for key in oa.keys() & ob.keys():
        torch.testing.assert_close(oa[key], ob[key], atol=atol, rtol=1e-4, msg=key)


class Exploit:
    """A pickle payload: unpickling it creates the file `target`, the proof that checkpoint code ran."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))
