"""`finetune(...)`: train a RoBERTa head on CSV / JSON-lines data, from Python or `roberta finetune`.

Fields per task (CSV columns or JSON keys):
  sequence-classification  text [, text_pair], label          (label: name, int, or float for regression)
  token-classification     tokens, tags                       (lists; in CSV space-separated or JSON lists)
  question-answering       question, context, answer_start, answer_text   (answer_start in characters)
  multiple-choice          [question,] choices, label          (choices: list; label: index of the right one)

Token classification labels the first sub-token of each word and sets -100 on the rest and on specials
(words are encoded with a leading space, as transformers' add_prefix_space=True). Question answering
truncates the context to max_length; an answer cut off by truncation points at `<s>` (index 0).
"""
from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

MODEL_CLASS = {
    "sequence-classification": "RobertaForSequenceClassification",
    "token-classification": "RobertaForTokenClassification",
    "question-answering": "RobertaForQuestionAnswering",
    "multiple-choice": "RobertaForMultipleChoice",
}


def load_records(source) -> list[dict]:
    """A .csv / .json (list of records) / .jsonl file, or a list of dicts as is."""
    if not isinstance(source, (str, os.PathLike)):
        return [dict(r) for r in source]
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    with open(path, encoding="utf-8") as f:
        if suffix == ".csv":
            return list(csv.DictReader(f))
        if suffix == ".json":
            text = f.read()
            try:
                data = json.loads(text)
                return data if isinstance(data, list) else data["data"]
            except json.JSONDecodeError:
                return [json.loads(line) for line in text.splitlines() if line.strip()]
        if suffix == ".jsonl":
            return [json.loads(line) for line in f if line.strip()]
    raise ValueError(f"unsupported data file {path}: use .csv, .json or .jsonl")


def _field(record: dict, name: str, index: int):
    if name not in record:
        raise KeyError(f"record {index} has no {name!r} field (fields: {sorted(record)})")
    return record[name]


def _as_list(value) -> list:
    if isinstance(value, str):
        value = value.strip()
        return json.loads(value) if value.startswith("[") else value.split()
    return list(value)


def _label_value(value):
    """CSV gives strings: turn numeric ones into numbers so '1' and 1 are the same label."""
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                pass
    return value


def label_names(task: str, records: list[dict]) -> list | None:
    """Label names in id order, from the training records (None for QA, multiple choice and regression)."""
    if task == "sequence-classification":
        values = {_label_value(_field(r, "label", i)) for i, r in enumerate(records)}
        if all(isinstance(v, (int, float)) for v in values):
            if any(isinstance(v, float) and not float(v).is_integer() for v in values):
                return None  # regression
            return list(range(int(max(values)) + 1))
        return sorted(str(v) for v in values)
    if task == "token-classification":
        values = {_label_value(t) for i, r in enumerate(records) for t in _as_list(_field(r, "tags", i))}
        if all(isinstance(v, int) for v in values):
            return list(range(max(values) + 1))
        return sorted(str(v) for v in values)
    return None


def _label_id(value, label2id: dict | None):
    value = _label_value(value)
    if label2id is None:
        return float(value)
    key = value if isinstance(value, int) and value in label2id else str(value)
    if key not in label2id:
        raise ValueError(f"unknown label {value!r}; known labels: {sorted(map(str, label2id))}")
    return label2id[key]


def load_task_dataset(task: str, records, tokenizer, max_length: int = 256, label2id: dict | None = None) -> list[dict]:
    """Records -> list of model-input dicts (input_ids, attention_mask and the task's label keys)."""
    records = load_records(records)
    if not records:
        raise ValueError("no records in the data")
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    out = []
    if task == "sequence-classification":
        texts = [str(_field(r, "text", i)) for i, r in enumerate(records)]
        pairs = [str(r["text_pair"]) for r in records] if all(r.get("text_pair") not in (None, "") for r in records) else None
        enc = tokenizer(texts, pairs, truncation=True, max_length=max_length) if pairs else \
            tokenizer(texts, truncation=True, max_length=max_length)
        for i, r in enumerate(records):
            out.append({"input_ids": enc["input_ids"][i], "labels": _label_id(_field(r, "label", i), label2id)})
    elif task == "token-classification":
        for i, r in enumerate(records):
            words, tags = _as_list(_field(r, "tokens", i)), _as_list(_field(r, "tags", i))
            if len(words) != len(tags):
                raise ValueError(f"record {i}: {len(words)} tokens but {len(tags)} tags")
            pieces = tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"] if words else []
            ids, labels = [bos], [-100]
            for piece, tag in zip(pieces, tags):
                ids += piece
                labels += [_label_id(tag, label2id)] + [-100] * (len(piece) - 1)
            ids, labels = ids[: max_length - 1] + [eos], labels[: max_length - 1] + [-100]
            out.append({"input_ids": ids, "labels": labels})
    elif task == "question-answering":
        for i, r in enumerate(records):
            out.append(_qa_features(r, i, tokenizer, max_length))
    elif task == "multiple-choice":
        for i, r in enumerate(records):
            choices = [str(c) for c in _as_list(_field(r, "choices", i))] if not isinstance(r.get("choices"), str) \
                else json.loads(r["choices"])
            first = r.get("question", r.get("context"))
            enc = tokenizer([str(first)] * len(choices), choices, truncation=True, max_length=max_length) \
                if first not in (None, "") else tokenizer(choices, truncation=True, max_length=max_length)
            label = int(_label_value(_field(r, "label", i)))
            if not 0 <= label < len(choices):
                raise ValueError(f"record {i}: label {label} is not a valid choice index (0..{len(choices) - 1})")
            out.append({"input_ids": enc["input_ids"], "labels": label})
    else:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(MODEL_CLASS)}")
    for item in out:
        if task != "multiple-choice":
            item["attention_mask"] = [1] * len(item["input_ids"])
    return out


def _qa_features(record: dict, index: int, tokenizer, max_length: int) -> dict:
    question, context = str(_field(record, "question", index)), str(_field(record, "context", index))
    start_char = int(_label_value(_field(record, "answer_start", index)))
    answer = str(_field(record, "answer_text", index))
    if context[start_char:start_char + len(answer)] != answer:
        raise ValueError(f"record {index}: answer_text {answer!r} is not at answer_start {start_char} of the context")
    q_ids = tokenizer(question, add_special_tokens=False)["input_ids"]
    c = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    room = max_length - len(q_ids) - 4  # <s> q </s></s> c </s>
    if room < 1:
        raise ValueError(f"record {index}: the question alone is longer than max_length={max_length}")
    c_ids, offsets = c["input_ids"][:room], c["offset_mapping"][:room]
    first = len(q_ids) + 3
    end_char = start_char + len(answer)
    start_tok = next((j for j, (s, e) in enumerate(offsets) if e > start_char), None)
    end_tok = next((j for j in range(len(offsets) - 1, -1, -1) if offsets[j][0] < end_char), None)
    if start_tok is None or end_tok is None or offsets[-1][1] < end_char or end_tok < start_tok:
        start_pos = end_pos = 0  # answer truncated away: point at <s>, as transformers does
    else:
        start_pos, end_pos = first + start_tok, first + end_tok
    ids = [bos] + q_ids + [eos, eos] + c_ids + [eos]
    return {"input_ids": ids, "start_positions": start_pos, "end_positions": end_pos}


def finetune(task: str, model, train_file, output_dir, *, eval_file=None, tokenizer=None, max_length: int = 256,
             labels: list | None = None, batch_size: int = 16, grad_accum: int = 1, lr: float = 2e-5,
             warmup_steps: int = 0, warmup_ratio: float = 0.06, max_steps: int = -1, epochs: float = 3.0,
             weight_decay: float = 0.01, max_grad_norm: float | None = 1.0, seed: int = 42, bf16: bool = False,
             fp16: bool = False, compile: bool = False, eval_steps: int | None = None, save_steps: int | None = None,
             save_total_limit: int | None = None, resume=False, overwrite: bool = False, log_every: int = 50,
             num_workers: int = 0, device: str | None = None, show_progress: bool = True, callbacks=None) -> dict:
    """Fine-tune `model` (folder/hub id, or a model object with `tokenizer=`) for `task`; save to output_dir.

    train_file / eval_file: .csv / .json / .jsonl path or a list of dict records. Returns the final metrics
    (eval accuracy/F1, exact match... when eval_file is given). resume / overwrite: as in `pretrain`.
    """
    import torch

    import roberta.modeling as modeling
    from roberta.training.collator import DataCollatorForMultipleChoice, DataCollatorForTokenClassification, \
        DataCollatorWithPadding
    from roberta.training.pretraining import load_tokenizer
    from roberta.training.runs import check_output_dir
    from roberta.training.trainer import Trainer, TrainingArguments

    if task not in MODEL_CLASS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(MODEL_CLASS)}")
    check_output_dir(output_dir, resume, overwrite)  # before loading and validating data
    if tokenizer is None and not isinstance(model, (str, os.PathLike)):
        raise ValueError("pass tokenizer= when model is a model object")
    tokenizer = load_tokenizer(tokenizer if tokenizer is not None else model)
    train_records = load_records(train_file)
    names = labels if labels is not None else label_names(task, train_records)
    label2id = {name if isinstance(name, int) else str(name): i for i, name in enumerate(names)} if names else None
    train_dataset = load_task_dataset(task, train_records, tokenizer, max_length, label2id)
    eval_dataset = load_task_dataset(task, eval_file, tokenizer, max_length, label2id) if eval_file is not None else None
    if isinstance(model, (str, os.PathLike)):
        overrides = {}
        if task in ("sequence-classification", "token-classification"):
            n = len(names) if names else 1
            overrides = {"num_labels": n, "id2label": {i: str(v) for i, v in enumerate(names)} if names else {0: "LABEL_0"},
                         "label2id": {str(v): i for i, v in enumerate(names)} if names else {"LABEL_0": 0}}
            if names is None:
                overrides["problem_type"] = "regression"
        torch.manual_seed(seed)  # reproducible head init
        model = getattr(modeling, MODEL_CLASS[task]).from_pretrained(str(model), **overrides)
    collator = {"token-classification": DataCollatorForTokenClassification,
                "multiple-choice": DataCollatorForMultipleChoice}.get(task, DataCollatorWithPadding)(tokenizer)
    args = TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum, learning_rate=lr, weight_decay=weight_decay,
        max_grad_norm=max_grad_norm, num_train_epochs=epochs, max_steps=max_steps, warmup_steps=warmup_steps,
        warmup_ratio=0.0 if warmup_steps else warmup_ratio, logging_steps=log_every, eval_steps=eval_steps,
        save_steps=save_steps, save_total_limit=save_total_limit,
        overwrite_output_dir=overwrite, seed=seed, bf16=bf16, fp16=fp16,
        torch_compile=compile, dataloader_num_workers=num_workers, disable_tqdm=not show_progress, device=device,
        extra={"task": task, "max_length": max_length},
    )
    trainer = Trainer(model, args, train_dataset=train_dataset, eval_dataset=eval_dataset, data_collator=collator,
                      tokenizer=tokenizer, task=task, callbacks=callbacks)
    metrics = trainer.train(resume_from_checkpoint=resume or None)
    trainer.save_model()
    return {**metrics, "output_dir": str(output_dir), "global_step": trainer.state["global_step"]}
