#!/usr/bin/env bash
# Short proxy runs of the embedded model's sentence recipe (issue 14, item 2), each continuing from a model:
#   speed: the same recipe for SPEED_S seconds in float32, bf16 autocast, and bf16 autocast + torch.compile;
#          the figure is the median tokens/s over the logged steps after the first 100 (compiling, warm-up);
#   peak learning rate: LR_S seconds at each of LRS (warmup 200, linear decay to 0 by wall clock), then the
#          held-out loss and masked accuracy the run logs at its end (the --eval file, all-<mask> masking).
# Usage: scripts/embedded_recipe_check.sh [INIT_MODEL] (default: the shipped model). Environment: WORK (the
# corpus built by build_embedded_model.sh, default /work/embed-build), PYTHON, SPEED_S (default 90), LR_S
# (default 150), COMPILE_S (default 240: compiling takes the first minutes), LRS (default "2.5e-4 5e-4 1e-3"),
# RUNS (default "float32 bf16 bf16-compile lr"). Prints one table row per run; ~17 minutes on 2 cores.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/work/embed-build}"
PYTHON="${PYTHON:-python}"
INIT="${1:-$REPO/src/roberta/embedded/model}"
SPEED_S="${SPEED_S:-90}"; LR_S="${LR_S:-150}"; COMPILE_S="${COMPILE_S:-240}"; LRS="${LRS:-2.5e-4 5e-4 1e-3}"
RUNS="${RUNS:-float32 bf16 bf16-compile lr}"
CORPUS="$WORK/corpus"
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT

run() {  # NAME BUDGET_S LR EXTRA...
    local name="$1" budget="$2" lr="$3"; shift 3
    "$PYTHON" "$REPO/scripts/embedded_pretrain.py" --train "$CORPUS/train_sentences.txt" --block-size 64 \
        --packing lines --mask-replace-prob 1.0 --random-replace-prob 0.0 --group-by-length \
        --eval "$CORPUS/heldout_sentences.txt" --tokenizer "$INIT" --init-from "$INIT" --out "$OUT/$name" \
        --cache-dir "$WORK/cache" --budget-s "$budget" --batch-size 64 --lr "$lr" --warmup-steps 200 \
        --dropout 0.0 --seed 7 --snapshot-every 100000 "$@" > "$OUT/$name.log" 2>&1
    "$PYTHON" - "$name" "$OUT/$name/train_log.jsonl" <<'PY'
import json, statistics, sys
name, log = sys.argv[1], [json.loads(line) for line in open(sys.argv[2])]
rates = [r["tokens_per_second"] for r in log if "tokens_per_second" in r and r["step"] > 100]
end = [r for r in log if "eval_loss" in r][-1]
rate = f"{statistics.median(rates):.0f}" if rates else "none after step 100"
print(f"| {name} | {end['step']} | {rate} | {end['eval_loss']:.3f} | "
      f"{100 * end['eval_accuracy']:.1f}% |", flush=True)
PY
}

echo "| run | steps | median tokens/s | held-out loss | held-out accuracy |"
echo "|---|---|---|---|---|"
for which in $RUNS; do
    case "$which" in
        float32) run float32 "$SPEED_S" 5e-4 ;;
        bf16) run bf16 "$SPEED_S" 5e-4 --bf16 ;;
        bf16-compile) run bf16-compile "$COMPILE_S" 5e-4 --bf16 --compile ;;
        lr) for lr in $LRS; do run "lr-$lr" "$LR_S" "$lr" --bf16; done ;;
        *) echo "unknown run '$which' (float32, bf16, bf16-compile, lr)" >&2; exit 2 ;;
    esac
done
