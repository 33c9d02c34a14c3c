"""Training toolkit: tokenizer training, packed MLM data, dynamic-masking collators, a trainer (DDP-ready).

Names load lazily so `import roberta.training` (and the CLI's parser) does not import torch model code.
"""
from roberta._lazy import lazy_exports

_EXPORTS = {
    "DataCollatorForLanguageModeling": "roberta.training.collator",
    "DataCollatorWithPadding": "roberta.training.collator",
    "DataCollatorForTokenClassification": "roberta.training.collator",
    "DataCollatorForMultipleChoice": "roberta.training.collator",
    "PackedDataset": "roberta.training.data",
    "LineDataset": "roberta.training.data",
    "build_pretraining_dataset": "roberta.training.data",
    "tokenize_corpus": "roberta.training.data",
    "train_bpe_tokenizer": "roberta.training.tokenizer_training",
    "Trainer": "roberta.training.trainer",
    "TrainingArguments": "roberta.training.trainer",
    "StopTraining": "roberta.training.trainer",
    "pretrain": "roberta.training.pretraining",
    "finetune": "roberta.training.finetuning",
    "load_task_dataset": "roberta.training.finetuning",
    "init_distributed": "roberta.training.distributed",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports('roberta.training', _EXPORTS, globals())
