"""question-answering: the span of `context` that answers `question` (transformers 4.57's QA pipeline, which
transformers v5 removed).

Scoring as transformers: in each window, logits outside the context (question, specials, padding) are set to
-10000 except `<s>`; start and end are softmaxed separately; the no-answer score is start[<s>] * end[<s>];
span scores are the outer product start x end restricted to end >= start and length <= max_answer_len; a span
is widened to whole words (align_to_words) and mapped to characters of the original context; equal answers
(compared lowercase) from different windows add their scores.
Difference on purpose: zero-score candidates (impossible spans that only fill up the top-k list) are dropped.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import Pipeline, check_int
from .windows import split_windows


class QuestionAnsweringPipeline(Pipeline):
    task = "question-answering"

    def _sanitize_parameters(self, top_k=None, doc_stride=None, max_answer_len=None, max_seq_len=None,
                             max_question_len=None, handle_impossible_answer=None, align_to_words=None, padding=None):
        params = {}
        for name, value, minimum in (("top_k", top_k, 1), ("max_answer_len", max_answer_len, 1),
                                     ("doc_stride", doc_stride, 0), ("max_seq_len", max_seq_len, 1)):
            if value is not None:
                params[name] = check_int(name, value, minimum)
        if handle_impossible_answer is not None:
            params["handle_impossible_answer"] = bool(handle_impossible_answer)
        if align_to_words is not None:
            params["align_to_words"] = bool(align_to_words)
        return params  # max_question_len and padding are accepted for compatibility; the fast path ignores them

    # ------------------------------------------------------------------ inputs
    def _is_single(self, inputs) -> bool:
        return isinstance(inputs, dict)

    def __call__(self, *args, question=None, context=None, **kwargs):
        if question is not None or context is not None:
            if args:
                raise ValueError("give either question=/context= or positional inputs, not both")
            if isinstance(question, (list, tuple)) or isinstance(context, (list, tuple)):
                questions = [question] * len(context) if isinstance(question, str) else list(question)
                contexts = [context] * len(questions) if isinstance(context, str) else list(context)
                if len(questions) != len(contexts):
                    raise ValueError("Questions and contexts don't have the same lengths")
                inputs = [{"question": q, "context": c} for q, c in zip(questions, contexts)]
            else:
                inputs = {"question": question, "context": context}
        elif len(args) == 1:
            inputs = args[0]
        elif len(args) == 2 and all(isinstance(a, str) for a in args):
            inputs = {"question": args[0], "context": args[1]}
        else:
            raise ValueError("question-answering takes question= and context=, a {question, context} dict, or a list of them")
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]  # transformers: a list of one example gives that example's result
        return super().__call__(inputs, **kwargs)

    def preprocess(self, item, params):
        question, context = _normalize(item)
        max_seq_len = params.get("max_seq_len", min(self.max_length, 384))
        doc_stride = params.get("doc_stride", min(max_seq_len // 2, 128))
        if doc_stride > max_seq_len:
            raise ValueError(f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})")
        q_ids = list(self.tokenizer(question, add_special_tokens=False)["input_ids"])
        enc = self.tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
        c_ids = list(enc["input_ids"])
        doc = {"context": context, "offsets": [tuple(o) for o in enc["offset_mapping"]], "word_ids": enc.word_ids()}
        width = max_seq_len - len(q_ids) - self.tokenizer.num_special_tokens_to_add(pair=True)
        if width <= 0:
            raise ValueError(f"the question is {len(q_ids)} tokens: no room is left for the context in max_seq_len={max_seq_len}")
        features = []
        for start, stop in split_windows(len(c_ids), width, min(doc_stride, width - 1)):
            ids = self.tokenizer.build_inputs_with_special_tokens(q_ids, c_ids[start:stop])
            first = len(ids) - (stop - start) - 1  # <s> q </s></s> context </s>: context ends one token early
            features.append({"input_ids": ids, "doc": doc, "window": (start, stop), "first": first})
        return features

    # ------------------------------------------------------------------ model
    def _forward(self, input_ids, attention_mask, features, params):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        start, end = out.start_logits.float().cpu(), out.end_logits.float().cpu()  # (B, T)
        return [(start[row, : len(f["input_ids"])], end[row, : len(f["input_ids"])]) for row, f in enumerate(features)]

    # ------------------------------------------------------------------ answers
    def postprocess(self, item, features, outputs, params):
        top_k = params.get("top_k", 1)
        max_answer_len = params.get("max_answer_len", 15)
        align = params.get("align_to_words", True)
        impossible = params.get("handle_impossible_answer", False)
        context = features[0]["doc"]["context"]
        answers: list[dict] = []
        null_score = 1_000_000.0
        for feature, (start_logits, end_logits) in zip(features, outputs):
            allowed = torch.zeros(len(start_logits), dtype=torch.bool)  # context tokens and <s>
            w_start, w_stop = feature["window"]
            first = feature["first"]
            allowed[first : first + w_stop - w_start] = True
            cls_id = self.tokenizer.cls_token_id
            if cls_id is not None:
                allowed |= torch.tensor(feature["input_ids"]) == cls_id
            start = _masked_softmax(start_logits, allowed)
            end = _masked_softmax(end_logits, allowed)
            null_score = min(null_score, float(start[0] * end[0]))
            start[0] = end[0] = 0.0
            for s, e, score in _best_spans(start, end, allowed, top_k * 2 + 10 if align else top_k, max_answer_len):
                char_start, char_end = self._chars(feature, s, e, align)
                text = context[char_start:char_end]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += score
                else:
                    answers.append({"score": score, "start": char_start, "end": char_end, "answer": text})
        if impossible:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers

    def _chars(self, feature, s, e, align):
        """Token positions s..e of a window -> [start, end) characters of the context.

        With align_to_words the span widens to whole words, but (as transformers) only over tokens inside this
        window: a word cut by the window edge is answered by its visible part, which keeps scores identical.
        """
        doc, first, (w_start, w_stop) = feature["doc"], feature["first"], feature["window"]
        i, j = s - first + w_start, e - first + w_start  # indices into the context's tokens
        if not (w_start <= i < w_stop and w_start <= j < w_stop):
            return 0, 0  # <s>
        word_ids = doc["word_ids"]
        if align and word_ids[i] is not None and word_ids[j] is not None:
            while i > w_start and word_ids[i - 1] == word_ids[i]:
                i -= 1
            while j + 1 < w_stop and word_ids[j + 1] == word_ids[j]:
                j += 1
        return doc["offsets"][i][0], doc["offsets"][j][1]


def _normalize(item) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise ValueError(f"question-answering expects a {{'question': ..., 'context': ...}} dict, got {type(item).__name__}")
    for key in ("question", "context"):
        if key not in item:
            raise KeyError("You need to provide a dictionary with keys {question:..., context:...}")
        if item[key] is None:
            raise ValueError(f"`{key}` cannot be None")
        if not isinstance(item[key], str):
            raise ValueError(f"`{key}` must be a string, got {type(item[key]).__name__}")
        if not item[key]:
            raise ValueError(f"`{key}` cannot be empty")
    return item["question"], item["context"]


def _masked_softmax(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Softmax with disallowed positions set to -10000 (as transformers, so scores match it)."""
    return torch.softmax(torch.where(allowed, logits, torch.tensor(-10000.0)).double(), dim=-1).float()


def _best_spans(start, end, allowed, k, max_answer_len):
    """Top-k (start, end, score) with start <= end < start + max_answer_len, both ends allowed, score > 0."""
    scores = np.triu(np.outer(start.numpy(), end.numpy()))  # (T, T): end >= start
    scores = np.tril(scores, max_answer_len - 1)  # end - start < max_answer_len
    ok = allowed.numpy()
    scores[~ok, :] = 0.0
    scores[:, ~ok] = 0.0
    flat = scores.ravel()
    order = np.argsort(-flat, kind="stable")[:k]
    return [(int(i // scores.shape[1]), int(i % scores.shape[1]), float(flat[i])) for i in order if flat[i] > 0]
