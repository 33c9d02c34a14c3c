"""roberta: a from-scratch RoBERTa with the transformers v4.57 public surface.

Names are imported lazily so `import roberta` stays cheap (the CLI and the tokenizers do not pay for
torch model code they never touch).
"""
from roberta._lazy import lazy_exports

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
    # JAX/Flax twins (the `flax` extra; importing one imports jax)
    "FlaxRobertaPreTrainedModel": "roberta.flax",
    "FlaxRobertaModel": "roberta.flax",
    "FlaxRobertaForMaskedLM": "roberta.flax",
    "FlaxRobertaForCausalLM": "roberta.flax",
    "FlaxRobertaForSequenceClassification": "roberta.flax",
    "FlaxRobertaForMultipleChoice": "roberta.flax",
    "FlaxRobertaForTokenClassification": "roberta.flax",
    "FlaxRobertaForQuestionAnswering": "roberta.flax",
    # TensorFlow twins (the `tf` extra; importing one imports tensorflow)
    "TFRobertaPreTrainedModel": "roberta.tf",
    "TFRobertaModel": "roberta.tf",
    "TFRobertaForMaskedLM": "roberta.tf",
    "TFRobertaForCausalLM": "roberta.tf",
    "TFRobertaForSequenceClassification": "roberta.tf",
    "TFRobertaForMultipleChoice": "roberta.tf",
    "TFRobertaForTokenClassification": "roberta.tf",
    "TFRobertaForQuestionAnswering": "roberta.tf",
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
    "GenerationConfig": "roberta.generation",
    "DataCollatorForLanguageModeling": "roberta.training.collator",
    "DataCollatorWithPadding": "roberta.training.collator",
    "DataCollatorForTokenClassification": "roberta.training.collator",
    "Trainer": "roberta.training.trainer",
    "TrainingArguments": "roberta.training.trainer",
    "pretrain": "roberta.training.pretraining",
    "finetune": "roberta.training.finetuning",
    "train_bpe_tokenizer": "roberta.training.tokenizer_training",
    "Int8Config": "roberta.quantization",
    "export_onnx": "roberta.export",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports('roberta', _EXPORTS, globals())
