"""Write src/roberta/embedded/MODEL_CARD.md from the build's measured figures.

Inputs (all written by scripts/build_embedded_model.sh under WORK): corpus/stats.json (sources, sizes,
licenses), training_state.json (the phases: steps, tokens, time, recipe), eval.json (held-out figures, the
n-gram baseline, fill-mask top-5s), grammar.json (minimal pairs by phenomenon, if present) and debs/*.deb
(package versions). The model folder gives the architecture and file sizes.

Usage: embedded_card.py --work WORK --model MODEL_DIR --out MODEL_CARD.md [--machine TEXT] [--note TEXT]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _recipe(phase: dict) -> str:
    """One phase's data and masking recipe, in words (a record without them is RoBERTa's, the first phases')."""
    batch, block = phase.get("batch_size", 32), phase.get("block_size", 128)
    if phase.get("packing") == "lines":
        masking = ("every selected token `<mask>`" if phase.get("mask_replace_prob") == 1.0 else
                   f"{phase.get('mask_replace_prob')}/{phase.get('random_replace_prob')} mask/random")
        grouped = ", batches of sentences of similar length" if phase.get("group_by_length") else ""
        return f"one sentence per example (<= {block} tokens), {masking}, batch {batch}{grouped}"
    return f"RoBERTa's: {block}-token blocks packed across lines, 80/10/10 masking, batch {batch}"


def _grammar_rows(work: Path) -> str:
    """The minimal-pairs table (scripts/embedded_grammar.py), or a line saying it was not run."""
    path = work / "grammar.json"
    if not path.is_file():
        return "Not run for this build."
    figures = json.loads(path.read_text())
    rows = "\n".join(f"| {name.replace('_', ' ')} | {r['pairs']} | {_pct(r['accuracy'])} |" for name, r in figures.items())
    return "| phenomenon | pairs | right |\n|---|---|---|\n" + rows


def _ngram_line(ev: dict) -> str:
    ng = ev.get("ngram")
    if not ng:
        return ""
    return (f"\nBidirectional Kneser-Ney trigram baseline (`scripts/embedded_ngram.py`, trained on the same training text,"
            f" scored on the same {ng['masked_tokens']} masked positions of the whole held-out slice): left context"
            f" {_pct(ng['left']['accuracy'])}, right context {_pct(ng['right']['accuracy'])}, both"
            f" {_pct(ng['both']['accuracy'])} (loss {ng['both']['loss']:.2f} nats).\n")


def render(work: Path, model: Path, machine: str, note: str) -> str:
    stats = json.loads((work / "corpus" / "stats.json").read_text())
    state = json.loads((work / "training_state.json").read_text())
    ev = json.loads((work / "eval.json").read_text())
    cfg = json.loads((model / "config.json").read_text())
    versions = {p.name.split("_")[0]: p.name.split("_")[1] for p in (work / "debs").glob("*.deb")}
    size = sum(f.stat().st_size for f in model.iterdir())
    a = ev["all"]
    train_mb = sum(s["train_bytes"] for s in stats.values()) / 1e6
    held_kb = sum(s["heldout_bytes"] for s in stats.values()) / 1e3
    hours = state["train_seconds"] / 3600

    src_rows = "\n".join(
        f"| {name} | `{s['package']}` {versions.get(s['package'], '')} | {s['license']} | {s['documents']} | "
        f"{s['train_bytes'] / 1e6:.2f} MB | {s['heldout_documents']} docs, {s['heldout_bytes'] / 1e3:.1f} kB |"
        for name, s in stats.items())
    eval_rows = "\n".join(
        f"| {name} | {r['masked_tokens']} | {_pct(r['accuracy'])} | {_pct(r['top5'])} | {r['perplexity']:.1f} | "
        f"{_pct(r['unigram_accuracy'])} | {r['unigram_perplexity']:.0f} | "
        + (f"{r['order_gain']:+.3f} |" if "order_gain" in r else "n/a |")
        for name, r in ev.items() if isinstance(r, dict) and "accuracy" in r)
    schedule = (f"* Schedule: peak lr {state['peak_lr']}, linear warmup over {state['warmup_steps']} steps, then linear "
                f"decay to 0 over the wall-clock time left in a {state['budget_s'] / 60:.0f}-minute budget (the step "
                "rate of a shared CPU drifts; decaying by time makes the run end on schedule, fully decayed).")
    if state.get("phases"):  # a run continued from an earlier one's weights
        schedule = "* Schedule, in {} phases (linear warmup, then linear decay by wall-clock time):\n".format(
            len(state["phases"])) + "\n".join(
            f"  {i + 1}. {ph['steps']} steps in {ph['train_seconds'] / 60:.0f} min, peak lr {ph['peak_lr']}, warmup "
            f"{ph['warmup_steps']} steps, dropout {ph.get('dropout', 0.1)}, seed {ph['seed']}; {_recipe(ph)}"
            + (f"; {ph['note']}" if ph.get("note") else "")
            for i, ph in enumerate(state["phases"]))
    fill_rows = "\n".join(f"| {i + 1} | `{tok!r}` | {p:.4f} |" for i, (tok, p) in enumerate(ev["fill_mask"]))
    everyday = "\n".join(f"| {text} | {', '.join(repr(tok) for tok, _ in top)} |"
                          for text, top in ev.get("fill_mask_everyday", {}).items())
    return f"""# Embedded default model: `roberta-embedded-mini`

A small RoBERTa pretrained from scratch by this project, shipped inside the package so that
`pipeline("fill-mask")` and `roberta run --task fill-mask` work offline with no model named
(`roberta.embedded.default_model_path()`). It is a demonstration and test model: it has seen
{state['tokens_seen'] / 1e6:.1f}M tokens (roberta-base saw ~2T): it knows common English words and some of
their order, not the world. Do not use it for anything that matters.

{note}

## Model

| | |
|---|---|
| architecture | `RobertaForMaskedLM` (transformers-compatible: same keys, same files) |
| layers / hidden / heads / FFN | {cfg['num_hidden_layers']} / {cfg['hidden_size']} / {cfg['num_attention_heads']} / {cfg['intermediate_size']} |
| vocabulary | {cfg['vocab_size']} byte-level BPE tokens (`<s>`=0 `<pad>`=1 `</s>`=2 `<unk>`=3, `<mask>` last) |
| positions | max_position_embeddings {cfg['max_position_embeddings']} = 128 usable tokens + padding_idx + 1 |
| type_vocab_size / layer_norm_eps | {cfg['type_vocab_size']} / {cfg['layer_norm_eps']} |
| parameters | {state['parameters'] / 1e6:.2f}M (decoder tied to the word embeddings) |
| files | weights stored in fp16 (`config.json` says float32: `from_pretrained` upcasts for CPU); folder {size / 1e6:.1f} MB |

## Data

Freely licensed English text from Debian bookworm packages (`apt-get download` + `dpkg -x`), extracted
to plain text by `scripts/embedded_corpus.py` with the standard library only: R's serialized
lazy-load database (Austen), the SWORD zText module's OSIS XML with footnotes and headings dropped
(Bible), and the HTML manuals via `html.parser` with navigation, code blocks and lines that are not prose
(fewer than 4 words or under 75% letters) dropped. One paragraph per line. A document is a chapter (Austen,
Bible) or an HTML page (manuals); the held-out slice is ~1% of the documents of each source (smallest SHA-1
of the document id), never seen by the tokenizer trainer or the model. Licenses are from each package's
`/usr/share/doc/PKG/copyright`.

| source | package | license | documents | train text | held out |
|---|---|---|---|---|---|
{src_rows}

Total: {train_mb:.1f} MB of training text, {held_kb:.0f} kB held out.

## Recipe

* Tokenizer: byte-level BPE, {cfg['vocab_size']} tokens, min frequency 2, trained on the training split
  (`roberta.training.tokenizer_training.train_bpe_tokenizer`).
* Objective: masked LM only (no NSP, no token types); dynamic masking, a fresh mask each time an example is
  drawn, 15% of tokens selected (`DataCollatorForLanguageModeling`). Two recipes, per phase below:
  RoBERTa's (FULL-SENTENCES packing: `<s> … </s>` blocks cut across paragraphs, `PackedDataset`; 80% of the
  selected made `<mask>`, 10% random, 10% unchanged), and BabyBERTa's (one sentence per example, `packing="lines"`,
  `LineDataset`; every selected token made `<mask>`, so copying a visible token is never rewarded).
* Optimizer: AdamW, betas (0.9, 0.98), eps 1e-6, weight decay 0.01 (not on biases/LayerNorm), gradient
  clipping 1.0; dropout (hidden and attention) as each phase below says.
{schedule}
* {state['steps']} steps, {state['tokens_seen'] / 1e6:.1f}M token slots (padding included) over the
  {state['train_tokens'] / 1e6:.2f}M-token training text; {'bf16 autocast' if state['bf16'] else 'fp32'} on CPU.
* Trainer: `roberta.training.pretrain` (our Trainer, our `RobertaForMaskedLM` with sparse MLM logits).
* Time and machine: {hours:.2f} h on {machine}.

## Held-out evaluation

`scripts/embedded_eval.py` on the held-out slice, with the exported (fp16-stored, fp32-loaded) model,
one sentence per example, every selected token made `<mask>`, 15% selected with seed 0 (so every run and
every model sees the same masks).
Accuracy and top-5 are over the masked positions; perplexity = exp(mean cross-entropy at those positions).
The unigram baseline predicts the held-out text's own token frequencies (add-one smoothed; it knows the
held-out distribution, so it is optimistic); its accuracy is that of always guessing the most frequent token.
Order gain = loss with each block's unmasked tokens shuffled among their positions minus the loss as is: how
many nats the model gets from word order (near 0: it uses which words are around, not where they are).

| slice | masked tokens | accuracy | top-5 | perplexity | unigram accuracy | unigram perplexity | order gain (nats) |
|---|---|---|---|---|---|---|---|
{eval_rows}
{_ngram_line(ev)}
## Grammar: minimal pairs

`scripts/embedded_grammar.py`: pairs of sentences generated from templates that differ in one grammatical
point; the model is right when it gives the grammatical one the higher pseudo-log-likelihood.

{_grammar_rows(work)}

## Fill-mask

Top-5 for `{ev.get('fill_mask_text', 'I love using <mask> for NLP tasks!')}`:

| rank | token | probability |
|---|---|---|
{fill_rows}

Top-5 for everyday sentences:

| sentence | top-5 |
|---|---|
{everyday}

## Rebuild

`WORK=/tmp/embed PYTHON=.venv/bin/python scripts/build_embedded_model.sh` downloads the packages, extracts
the text, trains the tokenizer, pretrains in the phases listed above (PHASES, each
`BUDGET_S:PEAK_LR:WARMUP:DROPOUT:SEED:BATCH:RECIPE`, each continuing from the previous phase's weights), exports into
`src/roberta/embedded/model/`, evaluates and rewrites this card. It takes the sum of the budgets plus about
5 minutes; results differ run to run with the machine's load (the budgets are time, not steps).
`DEVICE=cuda` runs the same recipe on a GPU, where the same budgets buy ~100x more steps.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--machine", default=f"a {os.cpu_count()}-core CPU shared with other jobs (no GPU)")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    text = render(args.work, args.model, args.machine, args.note)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
