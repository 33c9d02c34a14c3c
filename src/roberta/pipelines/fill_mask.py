"""fill-mask: predict the token behind each `<mask>` (transformers' FillMaskPipeline output format).

Three things differ from transformers on purpose:
* a top_k larger than the vocabulary returns the whole vocabulary, ranked, with a warning (transformers: torch's
  RuntimeError "selected index k out of range"), as targets and the other pipelines' top_k already cap it;
* vocabulary logits are computed only at the mask positions ((N, V) instead of (B, T, V));
* `sequence` is the user's own text with the mask replaced. RoBERTa's `<mask>` has lstrip=True, so it eats the
  space before it; the predicted token carries its own leading space (`Ġ`), so the mask and the space it ate are
  replaced together. With one mask this equals transformers' decoded sequence; with several masks
  transformers keeps `<s>`/`</s>` and loses the spaces before the other masks, we keep the text as written.
"""
from __future__ import annotations

import inspect
import logging

import torch

from .base import Pipeline, PipelineException, check_int, softmax32

logger = logging.getLogger(__name__)


class FillMaskPipeline(Pipeline):
    task = "fill-mask"

    def __init__(self, model, tokenizer, **kwargs):
        self._vocab = None
        self._top_k_warned = None
        super().__init__(model, tokenizer, **kwargs)
        forward = getattr(model, "forward", None)
        self._has_logits_mask = forward is not None and "logits_mask" in inspect.signature(forward).parameters

    # ------------------------------------------------------------------ parameters
    def _sanitize_parameters(self, top_k=None, targets=None, tokenizer_kwargs=None):
        if self.tokenizer.mask_token_id is None:
            raise PipelineException(self.task, "roberta", "The tokenizer does not define a `mask_token`.")
        params = {}
        if top_k is not None:
            params["top_k"] = check_int("top_k", top_k)
        if targets is not None:
            params["target_ids"] = self.get_target_ids(targets)
        if tokenizer_kwargs is not None:
            params["tokenizer_kwargs"] = dict(tokenizer_kwargs)
        return params

    def get_target_ids(self, targets) -> torch.Tensor:
        """Vocabulary ids for `targets`, in the order given, without duplicates.

        A target is looked up in the vocabulary as written (as transformers does). If it is not a token, its
        space-prefixed form is tried (`pizza` -> `Ġpizza`, what a word in mid-sentence is). If that is still
        several tokens, the target is scored by its first token, with a warning saying so (transformers
        silently-ish uses the first piece of the *unprefixed* form, `pizza` -> `p`).
        """
        if isinstance(targets, str):
            targets = [targets]
        if self._vocab is None:
            self._vocab = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            token_id = self._vocab.get(target)
            if not target:  # "" is no token (its space-prefixed form would be a bare space): as transformers
                logger.warning("The target `` gives no token at all; ignoring it.")
                continue
            if token_id is None:
                spaced = target if target[:1].isspace() else " " + target
                pieces = self.tokenizer(spaced, add_special_tokens=False)["input_ids"]
                if not pieces:
                    logger.warning("The target `%s` gives no token at all; ignoring it.", target)
                    continue
                token_id = pieces[0]
                names = self.tokenizer.convert_ids_to_tokens(pieces)
                if len(pieces) == 1:
                    logger.info("The target `%s` is not in the vocabulary; using `%s`.", target, names[0])
                else:
                    logger.warning(
                        "The target `%s` is not a single token (%s); it is scored by its first token `%s` only, "
                        "as transformers does.", target, names, names[0])
            ids.append(int(token_id))
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise ValueError("At least one target must be provided when passed.")
        return torch.tensor(ids, dtype=torch.long)

    # ------------------------------------------------------------------ steps
    def preprocess(self, item, params):
        self._require_text(item)
        mask_id = self.tokenizer.mask_token_id
        ids = list(self.tokenizer(item, **params.get("tokenizer_kwargs", {}))["input_ids"])
        masks = [i for i, token in enumerate(ids) if token == mask_id]
        if not masks:
            raise PipelineException(self.task, "roberta", f"No mask_token ({self.tokenizer.mask_token}) found on the input")
        if len(ids) > self.max_length:
            total = len(ids)
            ids = ids[: self.max_length - 1] + ids[-1:]  # keep the closing </s>
            kept = [i for i in masks if i < self.max_length - 1]
            if not kept:
                raise ValueError(
                    f"fill-mask: every <mask> of this input lies beyond the {self.max_length}-token limit "
                    f"(the text is {total} tokens); shorten the text before the mask")
            logger.warning(
                "fill-mask: the input is %d tokens, longer than the %d-token limit, and was truncated; "
                "mask(s) %s of %d were cut off and are not predicted", total, self.max_length,
                ", ".join(str(n) for n in range(len(kept) + 1, len(masks) + 1)), len(masks))
            masks = kept
        return [{"input_ids": ids, "mask_positions": masks}]

    def _forward(self, input_ids, attention_mask, features, params):
        where = input_ids == self.tokenizer.mask_token_id  # (B, T)
        logits = self._mask_logits(input_ids, attention_mask, where)  # (N, V)
        probs = softmax32(logits)
        target_ids = params.get("target_ids")
        top_k = params.get("top_k", 5)
        if target_ids is not None:
            target_ids = target_ids.to(probs.device)
            probs = probs[:, target_ids]
            top_k = min(top_k, len(target_ids))
        elif top_k > probs.shape[-1]:  # transformers: torch's "selected index k out of range"
            self._warn_top_k(top_k, probs.shape[-1])
            top_k = probs.shape[-1]
        values, indices = probs.topk(top_k, dim=-1)  # (N, k)
        if target_ids is not None:
            indices = target_ids[indices]
        counts = where.sum(dim=1).tolist()
        return list(zip(values.cpu().split(counts), indices.cpu().split(counts)))

    def _warn_top_k(self, top_k: int, vocab_size: int) -> None:
        if self._top_k_warned != top_k:  # once, not per batch
            self._top_k_warned = top_k
            logger.warning("top_k=%d is more than the vocabulary (%d tokens): returning all %d predictions per mask",
                           top_k, vocab_size, vocab_size)

    def _mask_logits(self, input_ids, attention_mask, where):
        """Vocabulary logits at the mask positions only. -> (N, V), N = masks in the batch, row-major order."""
        model = self.model
        if self._has_logits_mask:
            return model(input_ids=input_ids, attention_mask=attention_mask, logits_mask=where).logits
        head = getattr(model, "lm_head", None)
        base = getattr(model, getattr(model, "base_model_prefix", "roberta"), None)
        if head is None or base is None:  # an unfamiliar masked-LM: full logits, then gather
            return model(input_ids=input_ids, attention_mask=attention_mask).logits[where]
        hidden = base(input_ids=input_ids, attention_mask=attention_mask)[0]  # (B, T, C)
        return head(hidden[where])

    def postprocess(self, item, features, outputs, params):
        values, indices = outputs[0]
        spans = self._mask_spans(item, len(values))
        special = set(self.tokenizer.all_special_ids)
        result = []
        for m, (vals, ids) in enumerate(zip(values.tolist(), indices.tolist())):
            row = []
            for score, token in zip(vals, ids):
                token_str = self.tokenizer.decode([token])
                filled = "" if token in special else token_str
                if spans is not None:
                    start, end = spans[m]
                    sequence = item[:start] + filled + item[end:]
                else:
                    sequence = self._decoded_sequence(features[0]["input_ids"], features[0]["mask_positions"][m], token, len(values) == 1)
                row.append({"score": score, "token": token, "token_str": token_str, "sequence": sequence})
            result.append(row)
        return result[0] if len(result) == 1 else result

    def _mask_spans(self, text: str, n_masks: int):
        """Character span of each predicted mask in `text`, widened left over the whitespace the mask absorbed."""
        mask = self.tokenizer.mask_token
        spans, start = [], text.find(mask)
        while start >= 0:
            spans.append((len(text[:start].rstrip()), start + len(mask)))
            start = text.find(mask, start + len(mask))
        return spans[:n_masks] if len(spans) >= n_masks else None

    def _decoded_sequence(self, ids, position, token, single):
        """transformers' way, used only when the masks cannot be found in the text (custom tokenizer_kwargs)."""
        ids = list(ids)
        ids[position] = token
        return self.tokenizer.decode(ids, skip_special_tokens=single)

    def __call__(self, inputs, *args, **kwargs):
        result = super().__call__(inputs, *args, **kwargs)
        if isinstance(inputs, list) and len(inputs) == 1:
            return result[0]  # transformers' special case: a list of one text gives that text's result
        return result
