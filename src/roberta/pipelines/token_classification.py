"""token-classification (alias ner): a label per token, optionally grouped into entities.

Output format and aggregation strategies follow transformers 4.57. Differences on purpose:
* words are the tokenizer's own words (`word_ids()` of the byte-level pre-tokenizer), not transformers'
  fallback for RoBERTa ("a token is a subword unless a space precedes it"), which glues a word to the
  punctuation before it ("(Paris" is one word there, so "Paris" takes the label of "(" under first/max/average);
* grouped entities' `word` is the original text between `start` and `end` (no leading space);
* a text longer than the model's limit is covered by overlapping windows (`stride=` tokens of overlap); each
  token is labelled from the window where it has the most context. transformers truncates unless given stride=.
"""
from __future__ import annotations

import logging

import torch

from .base import Pipeline, check_int
from .windows import best_window_per_token, split_windows

logger = logging.getLogger(__name__)

STRATEGIES = ("none", "simple", "first", "average", "max")


class TokenClassificationPipeline(Pipeline):
    task = "token-classification"

    def _sanitize_parameters(self, aggregation_strategy=None, ignore_labels=None, stride=None,
                             grouped_entities=None, ignore_subwords=None):
        params = {}
        if grouped_entities is not None or ignore_subwords is not None:
            logger.warning("`grouped_entities`/`ignore_subwords` are deprecated; use aggregation_strategy=...")
            if aggregation_strategy is None:
                aggregation_strategy = "first" if ignore_subwords else ("simple" if grouped_entities else "none")
        if aggregation_strategy is not None:
            name = str(getattr(aggregation_strategy, "value", aggregation_strategy)).lower()
            if name not in STRATEGIES:
                raise ValueError(f"Invalid aggregation_strategy {aggregation_strategy!r}; choose from {STRATEGIES}")
            params["aggregation_strategy"] = name
        if ignore_labels is not None:
            params["ignore_labels"] = list(ignore_labels)
        if stride is not None:
            params["stride"] = check_int("stride", stride, 0)
        return params

    def preprocess(self, item, params):
        self._require_text(item)
        enc = self.tokenizer(item, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        doc = {"text": item, "ids": ids, "offsets": [tuple(o) for o in enc["offset_mapping"]], "word_ids": enc.word_ids()}
        width = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False)
        stride = params.get("stride", min(128, width // 2))
        windows = split_windows(len(ids), width, stride)
        if len(windows) > 1:
            logger.info("token-classification: %d tokens, %d overlapping windows", len(ids), len(windows))
        doc["windows"] = windows
        return [{"input_ids": self.tokenizer.build_inputs_with_special_tokens(ids[start:stop]), "doc": doc,
                 "window": (start, stop)} for start, stop in windows]

    def _forward(self, input_ids, attention_mask, features, params):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, labels)
        probs = torch.softmax(logits.float(), dim=-1).cpu()
        first = 1 if self.tokenizer.cls_token_id is not None else 0  # text tokens start after <s>
        return [probs[row, first : first + stop - start] for row, (start, stop) in
                enumerate(f["window"] for f in features)]

    def postprocess(self, item, features, outputs, params):
        doc = features[0]["doc"]
        n = len(doc["ids"])
        picks = best_window_per_token(doc["windows"], n)
        scores = torch.stack([outputs[w][pos] for w, pos in picks]) if n else torch.zeros((0, 1))
        strategy = params.get("aggregation_strategy", "none")
        ignore = params.get("ignore_labels", ["O"])
        special = set(self.tokenizer.all_special_ids)
        tokens = [i for i in range(n) if doc["ids"][i] not in special]
        if strategy == "none":
            entities = [self._token_entity(doc, scores, i) for i in tokens]
            return [e for e in entities if e["entity"] not in ignore]
        if strategy == "simple":
            pieces = [self._token_entity(doc, scores, i) for i in tokens]
        else:
            pieces = [self._word_entity(doc, scores, group, strategy) for group in _words(doc["word_ids"], tokens)]
        groups = [self._group(doc["text"], g) for g in _entity_runs(pieces)]
        return [g for g in groups if g["entity_group"] not in ignore]

    def _token_entity(self, doc, scores, i):
        row = scores[i]
        label = int(row.argmax())
        start, end = doc["offsets"][i]
        return {"entity": self._label(label), "score": float(row[label]), "index": i + 1,
                "word": self.tokenizer.convert_ids_to_tokens(doc["ids"][i]), "start": start, "end": end}

    def _word_entity(self, doc, scores, group, strategy):
        """One word (token indices `group`) -> one labelled piece, as transformers' aggregate_word."""
        rows = scores[group]  # (tokens in word, labels)
        if strategy == "first":
            row = rows[0]
        elif strategy == "max":
            row = rows[int(rows.max(dim=-1).values.argmax())]
        else:  # average
            row = rows.mean(dim=0)
        label = int(row.argmax())
        return {"entity": self._label(label), "score": float(row[label]),
                "start": doc["offsets"][group[0]][0], "end": doc["offsets"][group[-1]][1]}

    def _group(self, text, run):
        tag = _tag(run[0]["entity"])[1]
        start, end = run[0]["start"], run[-1]["end"]
        return {"entity_group": tag, "score": sum(p["score"] for p in run) / len(run),
                "word": text[start:end], "start": start, "end": end}


def _words(word_ids, tokens):
    """Split token indices into words: consecutive tokens sharing the tokenizer's word id."""
    groups = []
    for i in tokens:
        if groups and word_ids[i] is not None and word_ids[groups[-1][-1]] == word_ids[i]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _tag(label: str) -> tuple[str, str]:
    """B-PER -> (B, PER); I-PER -> (I, PER); a label without prefix counts as I- (continues a run)."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _entity_runs(pieces):
    """Consecutive pieces with the same tag form one entity; a B- label always starts a new one."""
    runs = []
    for piece in pieces:
        bi, tag = _tag(piece["entity"])
        if runs and bi != "B" and _tag(runs[-1][-1]["entity"])[1] == tag:
            runs[-1].append(piece)
        else:
            runs.append([piece])
    return runs
