#!/usr/bin/env bash
# Students seeded from a separate DistilBERT-format checkpoint against students seeded from the
# teacher, at equal windows, 2 seeds each, on the default split (dev set split by article, seed 13).
# Each run is a `paretodistill distill` folder under $PARETODISTILL_CACHE/seed-comparison; a finished
# one (metrics.json) is skipped, so the script resumes. Prints one line per run: validation and
# test figures. STEPS (default 600, batch 16: 9,600 windows) and LAYERS (default 3) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PARETODISTILL_CACHE:?set PARETODISTILL_CACHE}"
STEPS=${STEPS:-600}
LAYERS=${LAYERS:-3}
PD=${PD:-.venv/bin/paretodistill}
SEED_DIR=$PARETODISTILL_CACHE/minilm-distilbert
OUT=$PARETODISTILL_CACHE/seed-comparison/l${LAYERS}-s${STEPS}
[ -f "$SEED_DIR/convert.json" ] || $PD convert --model minilm --family distilbert --out "$SEED_DIR"
for seed in 1 2; do
  for source in teacher distilbert; do
    run=$OUT/$source-seed$seed
    [ -f "$run/metrics.json" ] && continue
    extra=()
    [ "$source" = distilbert ] && extra=(--set "student.init_from=\"$SEED_DIR\"")
    $PD distill --teacher teachers/minilm-l6-squad2 --data ../shared/data/squad2/dev-v2.0.json --out "$run" --test \
      --set student.num_layers=$LAYERS --set training.max_steps=$STEPS --set training.eval_every_steps=$((STEPS / 2)) \
      --set training.seed=$seed --set student.pruning_seed=$seed "${extra[@]}"
  done
done
for run in "$OUT"/*/metrics.json; do
  python3 - "$run" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
floor = m["test"]["NoAns_total"] / m["test"]["total"] * 100 if "NoAns_total" in m["test"] else float("nan")
print(f"{sys.argv[1].split('/')[-2]:22s} {m['config']['student']['init_from'] or 'teacher'} "
      f"model_type={m['teacher'].get('model_type')} params={int(m['num_parameters'])} "
      f"val_f1={m['f1']:.2f} test_f1={m['test']['f1']:.2f} test_floor={floor:.2f} over_floor={m['test']['f1'] - floor:+.2f} "
      f"train_s={m['train_seconds']:.0f}")
PY
done
