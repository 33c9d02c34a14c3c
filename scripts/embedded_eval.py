"""Held-out evaluation of a masked-LM folder: masked-token accuracy, perplexity, and a unigram baseline.

The text is packed exactly as for pretraining (roberta.training.data: every line a document ended by
`</s>`, blocks `<s> ... </s>` of --block-size tokens) and masked by our DataCollatorForLanguageModeling
at --mlm-probability with a fixed --seed, so two runs (or two models) see the same masks.

Figures (over the masked positions only):
  accuracy      top-1 prediction equals the original token
  top5          original token among the 5 best
  loss          mean cross-entropy (nats); perplexity = exp(loss)
  unigram_*     the same for a model that always predicts the held-out text's own token frequencies
                (an optimistic unigram: it knows the held-out distribution), the floor a trained model must beat
  shuffled_loss the loss when every block's unmasked tokens are shuffled among their positions (the masked
                positions stay); order_gain = shuffled_loss - loss, in nats: how much the model uses word
                order (0 for a model that only knows which words are in the block)

Usage: embedded_eval.py MODEL_DIR HELDOUT.txt [MORE.txt ...] [--json OUT] [--reference]
With --reference the model and tokenizer are loaded with transformers instead (a cross-check).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

import torch


def load(model_dir: str, reference: bool = False):
    """(tokenizer, model in fp32 eval mode)."""
    if reference:
        from transformers import RobertaForMaskedLM, RobertaTokenizerFast
    else:
        from roberta.modeling import RobertaForMaskedLM
        from roberta.tokenization import RobertaTokenizerFast
    tokenizer = RobertaTokenizerFast.from_pretrained(model_dir)
    model = RobertaForMaskedLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return tokenizer, model


def masked_batches(files, tokenizer, block_size: int, mlm_probability: float, seed: int, batch_size: int,
                   packing: str = "full-sentences", mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1):
    """Collated (masked) batches over the held-out text, packed as for pretraining; deterministic for a seed."""
    from roberta.training.collator import DataCollatorForLanguageModeling
    from roberta.training.data import build_pretraining_dataset

    with tempfile.TemporaryDirectory() as cache:
        data = build_pretraining_dataset([Path(f) for f in files], tokenizer, block_size=block_size,
                                         cache_dir=cache, drop_remainder=False, show_progress=False, packing=packing)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=seed,
                                                   mask_replace_prob=mask_replace_prob,
                                                   random_replace_prob=random_replace_prob)
        return [collator([data[i] for i in range(start, min(start + batch_size, len(data)))])
                for start in range(0, len(data), batch_size)]


def unigram_baseline(batches, tokenizer) -> dict:
    """An optimistic unigram model: the held-out text's own token frequencies (add-one smoothed)."""
    specials = set(tokenizer.all_special_ids)
    counts: Counter = Counter()
    targets = []
    for batch in batches:
        where = batch["labels"] != -100
        original = torch.where(where, batch["labels"], batch["input_ids"])
        counts.update(t for t in original[batch["attention_mask"].bool()].tolist() if t not in specials)
        targets += batch["labels"][where].tolist()
    total, vocab = sum(counts.values()), len(tokenizer)
    most_common = counts.most_common(1)[0][0]
    nll = -sum(math.log((counts[t] + 1) / (total + vocab)) for t in targets) / len(targets)
    return {"unigram_accuracy": sum(t == most_common for t in targets) / len(targets),
            "unigram_perplexity": math.exp(nll), "unigram_top_token": tokenizer.convert_ids_to_tokens(most_common)}


def evaluate(model, tokenizer, files, block_size: int = 128, mlm_probability: float = 0.15, seed: int = 0,
             batch_size: int = 32, packing: str = "full-sentences", mask_replace_prob: float = 0.8,
             random_replace_prob: float = 0.1) -> dict:
    """Masked-token figures of `model` on `files` plus the unigram baseline (see module doc)."""
    from roberta.training.mlm_eval import masked_lm_figures

    batches = masked_batches(files, tokenizer, block_size, mlm_probability, seed, batch_size, packing,
                             mask_replace_prob, random_replace_prob)
    figures = masked_lm_figures(model, batches, seed=seed + 1)
    return {**figures, "perplexity": math.exp(figures["loss"]), **unigram_baseline(batches, tokenizer)}


EVERYDAY_SENTENCES = ["She was very <mask> to see her sister again.", "The <mask> is on the table.",
                      "He opened the <mask> and walked in.", "They <mask> to the city last year.",
                      "I have two brothers and one <mask>."]


def fill_mask_top5(model, tokenizer, text: str = "I love using <mask> for NLP tasks!") -> list[tuple[str, float]]:
    """(decoded token, probability) for the 5 best fillers of the single <mask> in `text`."""
    enc = tokenizer(text, return_tensors="pt")
    pos = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
    with torch.no_grad():
        probs = model(**enc).logits[0, pos].softmax(-1)
    p, ids = probs.topk(5)
    return [(tokenizer.decode([i]), round(float(q), 4)) for i, q in zip(ids.tolist(), p.tolist())]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("heldout", nargs="+", help="held-out text files (one paragraph per line)")
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--mlm-probability", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--per-file", action="store_true", help="also report each file separately")
    ap.add_argument("--packing", choices=("full-sentences", "lines"), default="full-sentences")
    ap.add_argument("--mask-replace-prob", type=float, default=0.8)
    ap.add_argument("--random-replace-prob", type=float, default=0.1)
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--reference", action="store_true", help="load with transformers (cross-check)")
    ap.add_argument("--ngram-train", nargs="+", default=None,
                    help="also score a bidirectional Kneser-Ney trigram baseline trained on these files")
    ap.add_argument("--cache-dir", default=None, help="tokenized-corpus cache for --ngram-train")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    tokenizer, model = load(args.model_dir, args.reference)
    kw = dict(block_size=args.block_size, mlm_probability=args.mlm_probability, seed=args.seed,
              batch_size=args.batch_size, packing=args.packing, mask_replace_prob=args.mask_replace_prob,
              random_replace_prob=args.random_replace_prob)
    result = {"all": evaluate(model, tokenizer, args.heldout, **kw)}
    if args.per_file:
        for f in args.heldout:
            result[Path(f).stem] = evaluate(model, tokenizer, [f], **kw)
    if args.ngram_train:
        import embedded_ngram

        left, right = embedded_ngram.fit([Path(f) for f in args.ngram_train], tokenizer, args.cache_dir)
        batches = masked_batches(args.heldout, tokenizer, args.block_size, args.mlm_probability, args.seed,
                                 args.batch_size, args.packing, args.mask_replace_prob, args.random_replace_prob)
        result["ngram"] = embedded_ngram.evaluate(left, right, batches)
    result["fill_mask"] = fill_mask_top5(model, tokenizer)
    result["fill_mask_everyday"] = {text: fill_mask_top5(model, tokenizer, text) for text in EVERYDAY_SENTENCES}
    result["settings"] = {**kw, "files": [Path(f).name for f in args.heldout],
                          "parameters": sum(p.numel() for p in model.parameters())}
    return report(result, args.json)


def report(result: dict, json_path: Path | None) -> int:
    """Print the figures as JSON (and write them to `json_path`); the scripts' exit status."""
    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        json_path.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
