#!/usr/bin/env bash
# Rebuild the embedded default model (src/roberta/embedded/model/) from nothing.
#
#   1. download five Debian packages with `apt-get download` and unpack them with `dpkg -x` (no install, no root
#      beyond what apt-get download itself needs for its lists; run `apt-get update` first on a fresh machine);
#   2. extract plain English text + a ~1% held-out slice per source, also one sentence per line
#                                                                       (scripts/embedded_corpus.py);
#   3. train an 8192-token byte-level BPE tokenizer                     (roberta.training.tokenizer_training);
#   4. pretrain a 4-layer, 256-wide RoBERTa in phases, each on a wall-clock budget and each continuing from
#      the previous phase's weights with a fresh optimizer (roberta.training.pretrain via
#      scripts/embedded_pretrain.py), in one of two recipes per phase:
#        roberta    RoBERTa's: 128-token blocks packed across lines, 80/10/10 replacement of the 15% selected;
#        sentences  one sentence per example (packing "lines", <= 64 tokens), every selected token made <mask>
#                   (no random/unchanged replacement), the held-out order probe logged every 200 steps;
#        grouped    sentences, in batches of sentences of similar length (--group-by-length: 2.8x the steps);
#   5. export (fp16 weights, model_max_length 128) into the package      (scripts/embedded_export.py);
#   6. evaluate it on the held-out sentences (15% masking, all <mask>, seed 0) with the bidirectional
#      Kneser-Ney trigram baseline                                      (scripts/embedded_eval.py,
#      scripts/embedded_ngram.py), and on 1,250 grammatical minimal pairs (scripts/embedded_grammar.py);
#   7. rewrite src/roberta/embedded/MODEL_CARD.md from the figures       (scripts/embedded_card.py).
#
# Environment: WORK (default /work/embed-build; never inside the repo: the corpus is not committed),
# PYTHON (default: python on PATH), THREADS (default 2), EXTRA_PRETRAIN_ARGS (default "--bf16"), DEVICE
# (default cpu; cuda trains the same recipe ~100x faster, so raise the budgets there),
# PHASES: space-separated BUDGET_S:PEAK_LR:WARMUP_STEPS:DROPOUT:SEED:BATCH:RECIPE, one per phase (default: the
# chain the newest model got, as embedded-runs/README.md and the model card list it: two phases of the
# roberta recipe from scratch, then sentence phases). Takes about the sum of the budgets + 10 minutes on a
# 2-core CPU; the step rate depends on the machine, so a rebuild gets a similar model, not the same bytes.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/work/embed-build}"
PYTHON="${PYTHON:-python}"
PHASES="${PHASES:-1200:8e-4:150:0.1:0:32:roberta 3300:6e-4:50:0.1:1:32:roberta 6300:5e-4:200:0.1:2:64:sentences 7000:5e-4:200:0.0:3:64:sentences 6600:5e-4:200:0.0:4:64:grouped 3200:5e-4:200:0.0:5:64:grouped 6600:5e-4:200:0.0:6:64:grouped}"
DEVICE="${DEVICE:-cpu}"
THREADS="${THREADS:-2}"
EXTRA_PRETRAIN_ARGS="${EXTRA_PRETRAIN_ARGS:---bf16}"
PACKAGES=(r-cran-janeaustenr sword-text-web python3.11-doc sqlite3-doc postgresql-doc-15 wordnet-base)
DEST="$REPO/src/roberta/embedded/model"

case "$WORK" in "$REPO"|"$REPO"/*) echo "WORK must be outside the repository ($WORK)" >&2; exit 2;; esac
mkdir -p "$WORK/debs" "$WORK/root" "$WORK/licenses"
cd "$REPO"

echo "== 1. Debian packages -> $WORK/root"
(cd "$WORK/debs" && apt-get download "${PACKAGES[@]}")
for deb in "$WORK"/debs/*.deb; do dpkg -x "$deb" "$WORK/root"; done
for pkg in "${PACKAGES[@]}"; do cp "$WORK/root/usr/share/doc/$pkg/copyright" "$WORK/licenses/$pkg.copyright"; done

echo "== 2. corpus -> $WORK/corpus"
"$PYTHON" scripts/embedded_corpus.py --root "$WORK/root" --out "$WORK/corpus"

echo "== 3. tokenizer -> $WORK/tokenizer"
"$PYTHON" -c "import sys; from roberta.training.tokenizer_training import train_bpe_tokenizer; \
train_bpe_tokenizer([sys.argv[1]], 8192, sys.argv[2], min_frequency=2, model_max_length=128, show_progress=False)" \
    "$WORK/corpus/train.txt" "$WORK/tokenizer"

echo "== 4. pretraining, phases: $PHASES"
n=0; previous=""
for phase in $PHASES; do
    IFS=: read -r budget lr warmup dropout seed batch recipe <<< "$phase"
    n=$((n + 1)); out="$WORK/phase$n"
    case "${recipe:-sentences}" in
        roberta) recipe_args=(--train "$WORK/corpus/train.txt" --block-size 128 --packing full-sentences
                              --mask-replace-prob 0.8 --random-replace-prob 0.1 --eval "$WORK/corpus/heldout.txt") ;;
        sentences|grouped) recipe_args=(--train "$WORK/corpus/train_sentences.txt" --block-size 64 --packing lines
                                        --mask-replace-prob 1.0 --random-replace-prob 0.0
                                        --eval "$WORK/corpus/heldout_sentences.txt")
                           if [ "$recipe" = grouped ]; then recipe_args+=(--group-by-length); fi ;;
        *) echo "phase $n: unknown recipe '$recipe' (roberta, sentences or grouped)" >&2; exit 2 ;;
    esac
    # shellcheck disable=SC2086
    "$PYTHON" scripts/embedded_pretrain.py "${recipe_args[@]}" --tokenizer "$WORK/tokenizer" \
        --out "$out" --cache-dir "$WORK/cache" --budget-s "$budget" --threads "$THREADS" \
        --batch-size "${batch:-32}" --lr "$lr" --warmup-steps "$warmup" --dropout "$dropout" --seed "$seed" \
        --probe-steps 200 --snapshot-every 300 --device "$DEVICE" ${previous:+--init-from "$previous"} \
        $EXTRA_PRETRAIN_ARGS | tee "$WORK/pretrain$n.log"
    previous="$out"
done
ln -sfn "$previous" "$WORK/checkpoint"

echo "== 5. export -> $DEST"
"$PYTHON" scripts/embedded_export.py "$WORK/checkpoint" "$DEST"

echo "== 6. held-out evaluation of the exported model -> $WORK/eval.json, $WORK/grammar.json"
"$PYTHON" scripts/embedded_eval.py "$DEST" "$WORK"/corpus/heldout_*_sentences.txt --per-file --seed 0 \
    --block-size 64 --packing lines --mask-replace-prob 1.0 --random-replace-prob 0.0 \
    --ngram-train "$WORK/corpus/train_sentences.txt" --cache-dir "$WORK/cache" --json "$WORK/eval.json"
"$PYTHON" scripts/embedded_grammar.py "$DEST" --json "$WORK/grammar.json"
cp "$WORK/checkpoint/training_state.json" "$WORK/training_state.json"

echo "== 7. model card"
"$PYTHON" scripts/embedded_card.py --work "$WORK" --model "$DEST" --out "$REPO/src/roberta/embedded/MODEL_CARD.md"
du -sh "$DEST"
