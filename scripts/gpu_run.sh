#!/usr/bin/env bash
# On a lent GPU machine (device tool: carry [".gpu"], timeout 600): the teacher on all the training data,
# then the real search at GPU budgets; its figures go to $OUT (gpu-figures.md, teacher metrics, pareto.json)
# for docs/results.md. `--smoke` runs the same steps at toy scale, on a CPU too, to check the script.
#
#   bash scripts/gpu_prepare.sh                       # here, once: wheels and gzipped data into .gpu/
#   device run: bash scripts/gpu_run.sh               # there: about 8 minutes on an H200
#   bash scripts/gpu_run.sh --smoke                   # here: a few minutes on the CPU
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
if [ -d .gpu/whl ] && ! python3 -c "import optuna" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PARETODISTILL_CACHE=${PARETODISTILL_CACHE:-/tmp/pd-cache}
PY=${PYTHON:-python3}
first_existing() {  # the carried copy (.gpu/data) on the GPU machine, else the shared data beside the checkout
  for path in "$@"; do [ -f "$path" ] && { echo "$path"; return; }; done
  echo "none of $* exists" >&2; exit 2
}
DEV=$(first_existing .gpu/data/dev-v2.0.json.gz ../shared/data/squad2/dev-v2.0.json)
TRAIN10=$(first_existing .gpu/data/train-v2.0-first10articles.json.gz ../shared/data/squad2/train-v2.0-first10articles.json)
SQUAD1=$(first_existing .gpu/data/train-v1.1.explorer-rebuilt.json.gz ../shared/data/squad1/train-v1.1.explorer-rebuilt.json.gz)

if [ "${1:-}" = "--smoke" ]; then
  TEACHER_SCALE=(--max-steps 4 --max-train-questions 200 --max-eval-articles 1 --max-seq-length 128 --doc-stride 48 --max-extra-articles 3)
  SEARCH_SCALE=(--set search.flash.n_trials=2 --set search.regular.top_k=1 --set 'search.flash.budget={"training.max_steps"=4}'
                --set training.max_steps=6 --set data.max_train_questions=200 --set data.max_eval_articles=1
                --set data.features.max_seq_length=128 --set data.features.doc_stride=48 --set data.max_extra_articles=2
                --set search.n_startup_trials=2 --set latency.repeats=3 --set latency.warmup=1)
  WORKERS=1
else
  TEACHER_SCALE=(--epochs 2 --batch-size 64 --eval-batch-size 256 --eval-every-steps 1000 --max-extra-articles 380)
  SEARCH_SCALE=()
  WORKERS=4
fi

started=$(date +%s)
# 1. The teacher on (nearly) all the training data: the split's train articles twice, the 10 SQuAD 2.0 train
#    articles and 370 of the 442 SQuAD 1.1 train articles with synthetic unanswerable questions, continued from
#    the shipped teacher (the packaged MiniLM is too large to carry to the GPU machine). The other 72 articles
#    are the students' transfer set, which the teacher never saw.
$PY -m paretodistill.cli teacher --base teachers/minilm-l6-squad2 --data "$DEV" --train "$TRAIN10" --train "$SQUAD1" \
  --synthetic-unanswerable-fraction 0.5 --split-train-repeats 2 --lr 5e-5 --warmup-steps 200 \
  "${TEACHER_SCALE[@]}" --out "$OUT/teacher-gpu" 2>&1 | tee "$OUT/teacher.log" | grep -v "^step " || true
teacher_done=$(date +%s)
# 2. The real search at GPU budgets, on that teacher (its train_titles.json keeps the transfer set unseen).
$PY -m paretodistill.cli search --config configs/search-gpu.toml --teacher "$OUT/teacher-gpu" --data "$DEV" \
  --set "data.extra_train_files=[\"$SQUAD1\"]" --study "$OUT/search-gpu" --workers $WORKERS "${SEARCH_SCALE[@]}" \
  2>&1 | tee "$OUT/search.log" | grep -E "^\[|wrote" || true
search_done=$(date +%s)
# 3. The figures, for docs/results.md.
$PY - "$OUT" $((teacher_done - started)) $((search_done - teacher_done)) <<'PYTHON'
import json, sys
from pathlib import Path
out, teacher_s, search_s = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
teacher = json.loads((out / "teacher-gpu" / "metrics.json").read_text())
pareto = json.loads((out / "search-gpu" / "pareto.json").read_text())
lines = [f"## GPU run ({teacher['device']}, torch {teacher['torch']})", "",
         f"Teacher ({teacher_s} s): test F1 {teacher['test']['f1']:.2f}, exact {teacher['test']['exact']:.2f}, "
         f"{teacher['test_f1_above_no_answer_baseline']:+.2f} over the no-answer floor "
         f"({teacher['test_all_no_answer_baseline_f1']:.2f}); {teacher['data']['train']}", "",
         f"Search ({search_s} s): frontier ({pareto.get('frontier_stage')} stage), "
         f"flash/regular Spearman {pareto.get('flash_regular_spearman')}", "",
         "```", json.dumps(pareto.get("frontier", []), indent=1)[:6000], "```"]
(out / "gpu-figures.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines[:5]))
PYTHON
