"""finetune() learns every head on small synthetic tasks (tiny model from scratch, CPU, seconds each).

The thresholds are far above chance, and each task needs the model to use context:
  sequence classification: does "fox" come before "dog"? (order; the bag of words is the same)
  token classification:    tag animals and colours, but "red" before an animal is an ATTR tag
  question answering:      "which animal?" / "which colour?" -> the span depends on the question
  multiple choice:         which choice names an animal? (a softmax across choices, not per sequence)
"""
from __future__ import annotations

import json
import random

import pytest
import torch

from roberta.training import finetune
from test_training_helpers import single_thread  # noqa: F401  (autouse: one torch thread)
from test_training_helpers import WORDS, load_tokenizer, tiny_config

ANIMALS = ["fox", "dog", "cats"]
COLORS = ["brown", "red", "blue", "green"]
FILLER = [w for w in WORDS if w not in ANIMALS + COLORS]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A randomly initialised small MLM checkpoint with tokenizer files, as finetune() expects."""
    from roberta.modeling import RobertaForMaskedLM

    folder = tmp_path_factory.mktemp("base")
    tok = load_tokenizer()
    torch.manual_seed(0)
    config = tiny_config(len(tok), max_len=64, dropout=0.0)
    config.hidden_size, config.intermediate_size, config.num_attention_heads = 64, 128, 4
    RobertaForMaskedLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder, tok


def _run(base, task, train, test, tmp_path, **kw):
    folder, tok = base
    args = dict(tokenizer=tok, batch_size=16, lr=1e-3, warmup_ratio=0.1, weight_decay=0.0, show_progress=False,
                seed=0, max_length=64)
    args.update(kw)
    metrics = finetune(task, folder, train, tmp_path / "out", eval_file=test, **args)
    print(task, {k: round(v, 3) for k, v in metrics.items() if k.startswith("eval_")})
    return metrics


def _order_record(rng):
    words = [rng.choice(FILLER) for _ in range(rng.randint(4, 12))]
    i, j = sorted(rng.sample(range(len(words) + 2), 2))
    fox_first = rng.random() < 0.5
    words.insert(i, "fox" if fox_first else "dog")
    words.insert(j, "dog" if fox_first else "fox")
    return {"text": " ".join(words), "label": "fox-first" if fox_first else "dog-first"}


def test_sequence_classification_learns_word_order(base, tmp_path):
    rng = random.Random(0)
    train, test = [_order_record(rng) for _ in range(640)], [_order_record(rng) for _ in range(300)]
    metrics = _run(base, "sequence-classification", train, test, tmp_path, epochs=6)
    assert metrics["eval_accuracy"] >= 0.9, metrics
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["id2label"] == {"0": "dog-first", "1": "fox-first"}
    from roberta.modeling import RobertaForSequenceClassification

    assert RobertaForSequenceClassification.from_pretrained(str(tmp_path / "out")).config.num_labels == 2


def _tag_record(rng):
    words, tags = [], []
    for _ in range(rng.randint(4, 12)):
        kind = rng.random()
        if tags and tags[-1] == "COLOR" and kind < 0.25:
            kind = 0.3  # never a plain colour right before an animal: "red <animal>" is always ATTR
        if kind < 0.25:
            animal = rng.choice(ANIMALS)
            if rng.random() < 0.5:  # "red fox": the colour is an attribute of the animal
                words.append("red")
                tags.append("ATTR")
            words.append(animal)
            tags.append("ANIMAL")
        elif kind < 0.45:
            words.append(rng.choice(COLORS))
            tags.append("COLOR")
        else:
            words.append(rng.choice(FILLER))
            tags.append("O")
    return {"tokens": words, "tags": tags}


def test_token_classification_learns_contextual_tags(base, tmp_path):
    rng = random.Random(1)
    train, test = [_tag_record(rng) for _ in range(600)], [_tag_record(rng) for _ in range(200)]
    metrics = _run(base, "token-classification", train, test, tmp_path, epochs=6)
    assert metrics["eval_f1"] >= 0.9, metrics
    assert metrics["eval_accuracy"] >= 0.95, metrics


def _qa_record(rng):
    words = [rng.choice(FILLER) for _ in range(rng.randint(6, 14))]
    for group in (ANIMALS, COLORS):
        words.insert(rng.randrange(len(words) + 1), rng.choice(group))
    kind = rng.choice(["animal", "colour"])
    group = ANIMALS if kind == "animal" else COLORS
    k = next(i for i, w in enumerate(words) if w in group)
    start = len(" ".join(words[:k])) + (1 if k else 0)
    return {"question": f"which {kind}?", "context": " ".join(words), "answer_start": start, "answer_text": words[k]}


def test_question_answering_finds_the_span(base, tmp_path):
    rng = random.Random(2)
    train, test = [_qa_record(rng) for _ in range(800)], [_qa_record(rng) for _ in range(300)]
    metrics = _run(base, "question-answering", train, test, tmp_path, epochs=7)
    assert metrics["eval_exact_match"] >= 0.85, metrics


def _choice_record(rng):
    """Only the right choice names an animal; the others name a colour in the same slot."""
    choices = []
    for _ in range(3):
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 6))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(COLORS))
        choices.append(words)
    label = rng.randrange(3)
    choices[label] = [rng.choice(ANIMALS) if w in COLORS else w for w in choices[label]]
    return {"question": "which one has an animal?", "choices": [" ".join(c) for c in choices], "label": label}


def test_multiple_choice_picks_the_matching_choice(base, tmp_path):
    rng = random.Random(3)
    train, test = [_choice_record(rng) for _ in range(480)], [_choice_record(rng) for _ in range(200)]
    metrics = _run(base, "multiple-choice", train, test, tmp_path, epochs=4)
    assert metrics["eval_accuracy"] >= 0.9, metrics


def test_data_files_and_errors(base, tmp_path):
    from roberta.training.finetuning import load_records, load_task_dataset

    rows = [{"text": "a fox", "label": "yes"}, {"text": "a dog", "label": "no"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "d.csv").write_text("text,label\na fox,yes\na dog,no\n")
    assert load_records(tmp_path / "d.jsonl") == load_records(tmp_path / "d.csv") == rows
    tok = base[1]
    with pytest.raises(KeyError, match="'label'"):
        load_task_dataset("sequence-classification", [{"text": "x"}], tok, label2id={"a": 0})
    with pytest.raises(ValueError, match="unknown label"):
        load_task_dataset("sequence-classification", rows, tok, label2id={"yes": 0})
    bad_qa = [{"question": "q", "context": "abc def", "answer_start": 0, "answer_text": "def"}]
    with pytest.raises(ValueError, match="not at answer_start"):
        load_task_dataset("question-answering", bad_qa, tok)
    qa = load_task_dataset("question-answering", [{**bad_qa[0], "answer_start": 4}], tok)[0]
    answer_ids = qa["input_ids"][qa["start_positions"]:qa["end_positions"] + 1]
    assert tok.decode(answer_ids).strip() == "def"
    # token classification: the first sub-token of a word carries its tag, the rest and the specials -100
    item = load_task_dataset("token-classification", [{"tokens": ["zebra", "fox"], "tags": ["A", "B"]}], tok,
                             label2id={"A": 0, "B": 1})[0]
    pieces = [tok(" zebra", add_special_tokens=False)["input_ids"], tok(" fox", add_special_tokens=False)["input_ids"]]
    assert len(pieces[0]) > 1
    assert item["input_ids"] == [tok.bos_token_id] + pieces[0] + pieces[1] + [tok.eos_token_id]
    assert item["labels"] == [-100, 0] + [-100] * (len(pieces[0]) - 1) + [1] + [-100] * len(pieces[1])


# -- bad data is refused up front, naming file, row and column ---------------------------------------------------
BAD_DATA = [  # (task, file name, content, error type, message)
    ("sequence-classification", "t.csv", "text,label\na fox,yes\na dog,\n", ValueError,
     r"t.csv, row 2, column 'label' is empty"),
    ("sequence-classification", "t.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": null}\n', ValueError,
     r"t.jsonl, row 2, column 'label' is empty \(null\)"),
    ("sequence-classification", "t.jsonl", '{"text": "a", "text_pair": "x", "label": 1}\n{"text": "b", "label": 0}\n',
     ValueError, r"t.jsonl, row 2, column 'text_pair' is empty, but row 1 has one"),
    ("sequence-classification", "t.csv", "text,label\na,0.5\nb,NaN\n", ValueError, r"t.csv, row 2, column 'label' is nan"),
    ("sequence-classification", "t.jsonl", '{"text": "a", "label": 0.5}\n{"text": "b", "label": Infinity}\n',
     ValueError, r"row 2, column 'label' is inf"),
    ("sequence-classification", "t.csv", "text,label\na,0\nb,1\nc,1e9\n", ValueError,
     r"t.csv, row 3, column 'label': class id 1000000000.0 for 3 distinct labels; class ids count from 0"),
    ("sequence-classification", "t.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": -1}\n', ValueError,
     r"row 2, column 'label': class id -1"),
    ("sequence-classification", "t.csv", "text\na\n", KeyError, r"t.csv, row 1, column 'label' is missing"),
    ("token-classification", "t.jsonl", '{"tokens": ["a", "b"], "tags": ["X", ""]}\n', ValueError,
     r"t.jsonl, row 1, column 'tags' is empty"),
    ("question-answering", "t.jsonl", '{"question": "q", "context": "abc", "answer_start": "x", "answer_text": "a"}\n',
     ValueError, r"row 1, column 'answer_start': 'x' is not a character offset"),
    ("multiple-choice", "t.jsonl", '{"choices": ["a", "b"], "label": 2}\n', ValueError,
     r"row 1, column 'label': 2 is not a choice index \(0..1\)"),
    ("sequence-classification", "t.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 0,}\n', ValueError,
     r"t.jsonl, line 2: not valid JSON"),
    ("sequence-classification", "t.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n', ValueError,
     r"t.jsonl, line 2: expected a JSON object, got list"),
    ("sequence-classification", "t.json", '{"rows": []}', ValueError, r"t.json: expected a list of records"),
]


@pytest.mark.parametrize("task, name, content, error, message", BAD_DATA)
def test_bad_training_data_names_file_row_and_column(base, tmp_path, task, name, content, error, message):
    from roberta.training.finetuning import label_names, load_records, load_task_dataset

    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(error, match=message):
        records = load_records(path)
        names = label_names(task, records, str(path))
        label2id = {n if isinstance(n, int) else str(n): i for i, n in enumerate(names)} if names else None
        load_task_dataset(task, path, base[1], label2id=label2id)


def test_finetune_rejects_bad_data_before_training(base, tmp_path):
    """Through finetune(): a NaN regression label and an unknown eval label stop before any training."""
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": 0.5}\n{"text": "b", "label": NaN}\n')
    with pytest.raises(ValueError, match=r"train.jsonl, row 2, column 'label' is nan"):
        _run(base, "sequence-classification", tmp_path / "train.jsonl", None, tmp_path)
    (tmp_path / "train.csv").write_text("text,label\na,yes\nb,no\n")
    (tmp_path / "eval.csv").write_text("text,label\na,yes\nb,maybe\n")
    with pytest.raises(ValueError, match=r"eval.csv, row 2, column 'label': unknown label 'maybe'"):
        _run(base, "sequence-classification", tmp_path / "train.csv", tmp_path / "eval.csv", tmp_path)
    assert not (tmp_path / "out").exists()
    (tmp_path / "bin.csv").write_bytes(b"text,label\na,yes\n\xff\xfe,no\n")
    with pytest.raises(ValueError, match=r"bin.csv, line 3: not UTF-8 text"):
        _run(base, "sequence-classification", tmp_path / "bin.csv", None, tmp_path)
