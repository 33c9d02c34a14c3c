"""roberta: a from-scratch RoBERTa with the transformers v4.57 public surface.

Names are imported lazily so `import roberta` stays cheap (the CLI and the tokenizers do not pay for
torch model code they never touch).
"""
from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "RobertaConfig": "roberta.config",
    "PretrainedConfig": "roberta.config",
    "RobertaTokenizer": "roberta.tokenization.slow",
    "RobertaTokenizerFast": "roberta.tokenization.fast",
    "BatchEncoding": "roberta.tokenization.base",
    "AddedToken": "roberta.tokenization.base",
    "RobertaPreTrainedModel": "roberta.modeling",
    "RobertaModel": "roberta.modeling",
    "RobertaForCausalLM": "roberta.modeling",
    "RobertaForMaskedLM": "roberta.modeling",
    "RobertaForSequenceClassification": "roberta.modeling",
    "RobertaForMultipleChoice": "roberta.modeling",
    "RobertaForTokenClassification": "roberta.modeling",
    "RobertaForQuestionAnswering": "roberta.modeling",
    "AutoConfig": "roberta.auto",
    "AutoTokenizer": "roberta.auto",
    "AutoModel": "roberta.auto",
    "AutoModelForMaskedLM": "roberta.auto",
    "AutoModelForCausalLM": "roberta.auto",
    "AutoModelForSequenceClassification": "roberta.auto",
    "AutoModelForTokenClassification": "roberta.auto",
    "AutoModelForQuestionAnswering": "roberta.auto",
    "AutoModelForMultipleChoice": "roberta.auto",
    "pipeline": "roberta.pipelines",
    "DataCollatorForLanguageModeling": "roberta.training.collator",
    "DataCollatorWithPadding": "roberta.training.collator",
    "DataCollatorForTokenClassification": "roberta.training.collator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'roberta' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
