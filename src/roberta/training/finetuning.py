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
import math
import os
from pathlib import Path

from roberta._io import find_invalid_utf8

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
        records = [r for r in source]
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                raise TypeError(f"records row {i + 1}: expected a dict of fields, got {type(r).__name__}")
        return [dict(r) for r in records]
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json", ".jsonl"):
        raise ValueError(f"unsupported data file {path}: use .csv, .json or .jsonl")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(find_invalid_utf8([path])) from None
    if suffix == ".csv":
        return list(csv.DictReader(text.splitlines(keepends=True)))
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # JSON lines in a .json file
        if data is not None:
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                data = data["data"]
            if not isinstance(data, list):
                raise ValueError(f"{path}: expected a list of records (or {{\"data\": [...]}}), got {type(data).__name__}")
            return _dict_rows(data, path, "row")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {number}: not valid JSON ({err.msg})") from None
    for number, row in rows:
        if not isinstance(row, dict):
            raise ValueError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
    return [row for _, row in rows]


def _dict_rows(rows: list, path, unit: str) -> list[dict]:
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{path}, {unit} {i + 1}: expected a JSON object, got {type(row).__name__}")
    return rows


def _where(source, index: int, column: str) -> str:
    """How an error names a cell: file (or "records"), row counted from 1 (a CSV header is not a row), column."""
    return f"{source or 'records'}, row {index + 1}, column {column!r}"


def _field(record: dict, name: str, index: int, source=None):
    if name not in record:
        raise KeyError(f"{_where(source, index, name)} is missing (the row has: {', '.join(sorted(record))})")
    value = record[name]
    if value is None:
        raise ValueError(f"{_where(source, index, name)} is empty (null)")
    return value


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


def _checked_label(value, where: str):
    """A label as a number or name; empty, NaN and infinite labels are errors (they would train silently)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{where} is empty: every row needs a label")
    value = _label_value(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}: labels must be finite numbers or names")
    if not isinstance(value, (str, int, float)):
        raise ValueError(f"{where}: a label must be a name or a number, got {type(value).__name__}")
    return value


def _labels_of(task: str, records: list[dict], source) -> dict:
    """Each distinct label -> (row, column) of its first occurrence."""
    seen: dict = {}
    for i, r in enumerate(records):
        if task == "sequence-classification":
            values, column = [_field(r, "label", i, source)], "label"
        else:
            values, column = _as_list(_field(r, "tags", i, source)), "tags"
        for value in values:
            value = _checked_label(value, _where(source, i, column))
            seen.setdefault(value, (i, column))
    return seen


def label_names(task: str, records: list[dict], source=None) -> list | None:
    """Label names in id order, from the training records (None for QA, multiple choice and regression).

    Integer labels are class ids 0..N-1. Ids far beyond the number of distinct labels (1e9 in a column of
    0s and 1s) are an error rather than a model with a billion outputs.
    """
    if task not in ("sequence-classification", "token-classification"):
        return None
    seen = _labels_of(task, records, source)
    values = set(seen)
    if not all(isinstance(v, (int, float)) for v in values):
        return sorted({str(v) for v in values})
    if task == "sequence-classification" and any(isinstance(v, float) and not v.is_integer() for v in values):
        return None  # regression
    for value in values:
        if not (isinstance(value, int) or float(value).is_integer()):
            raise ValueError(f"{_where(source, *seen[value])}: class id {value} is not a whole number")
    low, high = min(values), max(values)
    limit = max(_MAX_CLASSES_FREE, 10 * len(values))
    if low < 0 or high >= limit:
        bad = low if low < 0 else high
        raise ValueError(f"{_where(source, *seen[bad])}: class id {bad} for {len(values)} distinct labels; class ids "
                         f"count from 0 (0..N-1), or use label names (--labels to fix their order)")
    return list(range(int(high) + 1))


_MAX_CLASSES_FREE = 1024  # integer class ids up to this need no justification


def _label_id(value, label2id: dict | None, where: str):
    value = _checked_label(value, where)
    if label2id is None:
        if not isinstance(value, (int, float)):
            raise ValueError(f"{where}: {value!r} is not a number (the training labels are regression targets)")
        return float(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    key = value if isinstance(value, int) and value in label2id else str(value)
    if key not in label2id:
        raise ValueError(f"{where}: unknown label {value!r}; known labels: {sorted(map(str, label2id))}")
    return label2id[key]


def load_task_dataset(task: str, records, tokenizer, max_length: int = 256, label2id: dict | None = None,
                      source=None) -> list[dict]:
    """Records -> list of model-input dicts (input_ids, attention_mask and the task's label keys).

    Every row is checked first; an error names the file (`source`, or the path given), row and column.
    """
    if source is None and isinstance(records, (str, os.PathLike)):
        source = os.fspath(records)
    records = load_records(records)
    if not records:
        raise ValueError(f"no records in {source or 'the data'}")
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    out = []
    if task == "sequence-classification":
        texts = [_text(_field(r, "text", i, source)) for i, r in enumerate(records)]
        has_pair = [r.get("text_pair") not in (None, "") for r in records]
        if any(has_pair) and not all(has_pair):
            missing, present = has_pair.index(False), has_pair.index(True)
            raise ValueError(f"{_where(source, missing, 'text_pair')} is empty, but row {present + 1} has one: "
                             "give every row a text_pair, or none")
        labels = [_label_id(_field(r, "label", i, source), label2id, _where(source, i, "label"))
                  for i, r in enumerate(records)]
        pairs = [_text(r["text_pair"]) for r in records] if all(has_pair) else None
        enc = tokenizer(texts, pairs, truncation=True, max_length=max_length) if pairs else \
            tokenizer(texts, truncation=True, max_length=max_length)
        out = [{"input_ids": ids, "labels": label} for ids, label in zip(enc["input_ids"], labels)]
    elif task == "token-classification":
        for i, r in enumerate(records):
            words, tags = _as_list(_field(r, "tokens", i, source)), _as_list(_field(r, "tags", i, source))
            if len(words) != len(tags):
                raise ValueError(f"{_where(source, i, 'tags')}: {len(words)} tokens but {len(tags)} tags")
            tag_ids = [_label_id(tag, label2id, _where(source, i, "tags")) for tag in tags]
            pieces = tokenizer([" " + _text(w) for w in words], add_special_tokens=False)["input_ids"] if words else []
            ids, labels = [bos], [-100]
            for piece, tag in zip(pieces, tag_ids):
                ids += piece
                labels += [tag] + [-100] * (len(piece) - 1)
            ids, labels = ids[: max_length - 1] + [eos], labels[: max_length - 1] + [-100]
            out.append({"input_ids": ids, "labels": labels})
    elif task == "question-answering":
        for i, r in enumerate(records):
            out.append(_qa_features(r, i, tokenizer, max_length, source))
    elif task == "multiple-choice":
        for i, r in enumerate(records):
            raw = _field(r, "choices", i, source)
            choices = [_text(c) for c in (json.loads(raw) if isinstance(raw, str) else _as_list(raw))]
            if not choices:
                raise ValueError(f"{_where(source, i, 'choices')} is empty")
            first = r.get("question", r.get("context"))
            enc = tokenizer([_text(first)] * len(choices), choices, truncation=True, max_length=max_length) \
                if first not in (None, "") else tokenizer(choices, truncation=True, max_length=max_length)
            label = _checked_label(_field(r, "label", i, source), _where(source, i, "label"))
            if not (isinstance(label, (int, float)) and float(label).is_integer() and 0 <= label < len(choices)):
                raise ValueError(f"{_where(source, i, 'label')}: {label!r} is not a choice index (0..{len(choices) - 1})")
            out.append({"input_ids": enc["input_ids"], "labels": int(label)})
    else:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(MODEL_CLASS)}")
    for item in out:
        if task != "multiple-choice":
            item["attention_mask"] = [1] * len(item["input_ids"])
    return out


def _check_lengths(config, max_length: int, *datasets) -> None:
    """Refuse inputs longer than the model's positions (they would fail mid-training), naming the limit."""
    usable = config.max_position_embeddings - (config.pad_token_id or 0) - 1
    lengths = [len(row) for data in datasets if data for item in data
               for row in (item["input_ids"] if isinstance(item["input_ids"][0], list) else [item["input_ids"]])]
    longest = max(lengths, default=0)
    if longest > usable:
        raise ValueError(f"some inputs are {longest} tokens, the model has {usable} positions: pass --max-length "
                         f"{usable} or less (now {max_length})")


def _text(value) -> str:
    return value if isinstance(value, str) else str(value)


def _qa_features(record: dict, index: int, tokenizer, max_length: int, source=None) -> dict:
    question = _text(_field(record, "question", index, source))
    context = _text(_field(record, "context", index, source))
    start_char = _label_value(_field(record, "answer_start", index, source))
    if isinstance(start_char, float) and start_char.is_integer():
        start_char = int(start_char)
    if not isinstance(start_char, int) or isinstance(start_char, bool) or not 0 <= start_char <= len(context):
        raise ValueError(f"{_where(source, index, 'answer_start')}: {start_char!r} is not a character offset into "
                         f"the context (0..{len(context)})")
    answer = _text(_field(record, "answer_text", index, source))
    if context[start_char:start_char + len(answer)] != answer:
        raise ValueError(f"{_where(source, index, 'answer_text')}: {answer!r} is not at answer_start {start_char} "
                         "of the context")
    q_ids = tokenizer(question, add_special_tokens=False)["input_ids"]
    c = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    room = max_length - len(q_ids) - 4  # <s> q </s></s> c </s>
    if room < 1:
        raise ValueError(f"{_where(source, index, 'question')}: the question alone is longer than "
                         f"max_length={max_length}")
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
    if labels is not None and len(set(map(str, labels))) != len(labels):
        dupes = sorted({str(x) for x in labels if list(map(str, labels)).count(str(x)) > 1})
        raise ValueError(f"--labels names {', '.join(dupes)} more than once")
    train_records = load_records(train_file)
    train_source = os.fspath(train_file) if isinstance(train_file, (str, os.PathLike)) else "train records"
    if not train_records:  # (label inference below would fail on it with "min() arg is an empty sequence")
        raise ValueError(f"no records in {train_source}")
    names = labels if labels is not None else label_names(task, train_records, train_source)
    label2id = {name if isinstance(name, int) else str(name): i for i, name in enumerate(names)} if names else None
    train_dataset = load_task_dataset(task, train_records, tokenizer, max_length, label2id, source=train_source)
    eval_dataset = load_task_dataset(task, eval_file, tokenizer, max_length, label2id,
                                     source=None if isinstance(eval_file, (str, os.PathLike)) else "eval records") \
        if eval_file is not None else None
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
    _check_lengths(model.config, max_length, train_dataset, eval_dataset)
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
