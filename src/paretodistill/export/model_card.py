"""The model card of an export (README.md) and the data it is written from (export.json).

A checkpoint separated from its numbers is how wrong claims are made, so the card repeats what
the search measured (validation and test, size, latency), the split it was measured on, the
teacher, how to load the folder and how to ask it a question; paths are the study's name or
relative to it (``export.students`` makes them public before writing).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from paretodistill.export.card_metadata import (
    STUDENT_TAGS,
    dataset_id,
    eval_results,
    front_matter,
    license_note,
    recorded_license,
)
from paretodistill.export.runtime import ANSWER_SCRIPT, INT8_ONNX_FILE
from paretodistill.models.saving import model_code
from paretodistill.report.frontier import ACCURACY, LATENCY, SIZE, StudyData, TrialRecord, describe_split
from paretodistill.report.paths import relative_name

METRIC_ROWS = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")


def export_info(data: StudyData, record: TrialRecord, source: Path, config: dict, saved: dict, onnx_check: dict | None) -> dict:
    """Everything the model card says, as data (export.json); the study by name, the checkpoint relative to it."""
    teacher = data.config.get("teacher") if isinstance(data.config.get("teacher"), dict) else {}
    teacher_path = (teacher or {}).get("path") or saved.get("teacher")
    student = data.config.get("student") if isinstance(data.config.get("student"), dict) else {}
    validation = {k: v for k, v in record.metrics.items()}
    threshold = validation.get("na_threshold", saved.get("na_threshold"))
    return {
        "base_model": student.get("init_from") or teacher_path,  # the checkpoint the student's weights come from
        "license": recorded_license(_local_folder(teacher_path)),
        "study": data.name,
        "study_directory": Path(data.directory).resolve().name,
        "stage": record.stage,
        "trial": record.number,
        "category": record.category,
        "source_checkpoint": relative_name(source, data.directory),
        "params": record.params,
        "validation": validation,
        "test": record.test_metrics or saved.get("test"),
        "na_threshold": threshold,
        "num_parameters": record.metric(SIZE),
        "latency_ms": record.metric(LATENCY),
        "latency_settings": data.config.get("latency"),
        "split": data.split,
        "teacher": teacher_path,
        "baseline": None if data.baseline is None else {"validation": data.baseline.validation, "test": data.baseline.test},
        "objectives": [f"{o.metric}:{o.direction}" for o in data.objectives],
        "thresholds": data.thresholds,
        "remote_code": "auto_map" in config or model_code(config.get("model_type")) is not None,
        "architecture": {k: config.get(k) for k in ("model_type", "num_hidden_layers", "hidden_size", "num_attention_heads",
                                                    "intermediate_size", "heads_per_layer", "intermediate_sizes") if k in config},
        "onnx": onnx_check,
    }


def _local_folder(checkpoint: str | None) -> str | None:
    """The folder of a checkpoint path or cached hub id, or None where it cannot be found here."""
    from paretodistill.errors import ParetodistillError
    from paretodistill.models.loading import resolve_model_path

    if not checkpoint:
        return None
    try:
        return str(resolve_model_path(checkpoint))
    except (ParetodistillError, OSError, ValueError):
        return None


def card_front_matter(info: dict) -> str:
    """The hub's front matter of an export: licence and base model from the study, figures of the trial."""
    split = info.get("split") if isinstance(info.get("split"), dict) else {}
    split_file = split.get("split_file") or split.get("source") or "not recorded"
    datasets = [dataset_id(f)[0] for f in (split_file, *(split.get("extra_train_files") or ()))]
    results = eval_results(split_file, info.get("validation") or {}, info.get("test") or {},
                           split.get("split_seed", split.get("seed")))
    return front_matter(f"{info['study']}-{info['stage']}-{info['trial']}", info.get("base_model"),
                        info.get("license") or {}, datasets, results, tags=STUDENT_TAGS)


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def model_card(info: dict) -> str:
    """README.md of the export: what it is, what it measured where, and how to load it."""
    validation, test = info.get("validation") or {}, info.get("test") or {}
    baseline = info.get("baseline") or {}
    rows = ["| metric | validation | test |", "|---|---:|---:|"]
    for key in METRIC_ROWS:
        if key in validation or key in test:
            rows.append(f"| {key} | {_number(validation.get(key))} | {_number(test.get(key))} |")
    size = info.get("num_parameters")
    note = license_note(info.get("license") or {})
    lines = [
        card_front_matter(info),
        f"# {info['study']} — {info['stage']} trial {info['trial']}",
        "",
        f"A distilled BERT-style extractive QA student (SQuAD 2.0), chosen from the `{info['study']}` search "
        f"(stage `{info['stage']}`, trial {info['trial']}, {str(info.get('category') or '').replace('_', ' ')}). "
        "Exported by `paretodistill export`.",
        "",
        *([note, ""] if note else []),
        "## Measured results",
        "",
        "Official SQuAD 2.0 metrics on held-out articles (validation chose the no-answer threshold and the "
        "student; test was never used to choose).",
        "",
        *rows,
        "",
        f"- parameters: {int(size):,}" if size is not None else "- parameters: not recorded",
        f"- latency: {_number(info.get('latency_ms'))} ms" + (
            f" ({', '.join(f'{k}={v}' for k, v in (info.get('latency_settings') or {}).items())})" if info.get("latency_settings") else ""),
        f"- no-answer threshold: {_number(info.get('na_threshold'))} (answer \"\" when the null score minus the best span "
        "score is above it)",
    ]
    if baseline.get("validation"):
        base = baseline["validation"]
        size_text = f"{int(base[SIZE]):,}" if isinstance(base.get(SIZE), (int, float)) else "–"
        lines.append(f"- baseline student: exact {_number(base.get(ACCURACY))} (validation), {size_text} parameters")
    lines += ["", "## Data split", "", *[f"- {line}" for line in describe_split(info.get("split"))], "", "## Teacher", "",
              f"- {info.get('teacher') or 'not recorded'}", "", "## Parameters of the trial", "",
              "| parameter | value |", "|---|---|",
              *[f"| {k} | {v} |" for k, v in sorted((info.get("params") or {}).items())], ""]
    if info.get("architecture"):
        lines += ["Architecture: " + ", ".join(f"{k}={v}" for k, v in info["architecture"].items()), ""]
    remote = info.get("remote_code")
    name = info.get("name") or "PATH"
    python_name, shell_name = json.dumps(name), shlex.quote(name)  # a folder's name is text, never code: quoted for each language
    lines += [
        "## How to load", "",
        *[line for w in info.get("warnings", []) for line in (f"Warning: {w}.", "")],
        "```python",
        "from transformers import AutoModelForQuestionAnswering, AutoTokenizer",
        "",
        f'model = AutoModelForQuestionAnswering.from_pretrained({python_name}{", trust_remote_code=True" if remote else ""})'
        + "  # the folder's path or hub id",
        f'tokenizer = AutoTokenizer.from_pretrained({python_name})',
        "```",
        "",
    ]
    if remote:
        code_file = model_code(info["architecture"].get("model_type"))
        lines += ["This student keeps a different number of heads or FFN neurons per layer, which its family's stock "
                  f"class cannot describe; the model code is in `{code_file[0].name if code_file else 'the .py file'}` "
                  "next to the weights (torch and transformers only), hence `trust_remote_code=True`: read that file "
                  "first. With paretodistill installed, `import paretodistill` registers the same classes and the "
                  "folder loads without `trust_remote_code`.", ""]
    lines += ["## How to ask it a question", "",
              "With paretodistill installed (`pip install 'paretodistill[onnx]'` for the ONNX files); the answer is \"\" "
              "when the no-answer score is above the threshold recorded here:", "",
              "```bash",
              f'paretodistill predict --model {shell_name} --question "Who was the Norse leader?" --context "..."'
              + ("  # --runtime onnx [--int8]" if info.get("onnx") else ""),
              "```", "", "```python", "from paretodistill.export.predict import answer", "",
              f'print(answer({python_name}, "Who was the Norse leader?", context))  # Prediction(text=..., score=..., no_answer=...)',
              "```", ""]
    onnx = info.get("onnx")
    if onnx:
        lines += ["## ONNX", "", f"`model.onnx` (opset {onnx['opset']}, inputs {', '.join(onnx['inputs'])}; dynamic "
                  f"batch and sequence axes). Checked against the PyTorch logits on a batch of shape "
                  f"{onnx['checked_shape']}: largest absolute difference {onnx['max_abs_diff']:.2e} (tolerance "
                  f"{onnx['atol']:g}).", "",
                  f"Without torch or paretodistill: `{ANSWER_SCRIPT}` answers from `model.onnx` with onnxruntime, numpy "
                  "and tokenizers only (`pip install onnxruntime tokenizers`). It builds the same doc-stride windows "
                  "and picks the span as `paretodistill predict` does, with the no-answer threshold and window lengths "
                  "stored in the ONNX file's metadata:", "",
                  "```bash",
                  f'python {shlex.quote(f"{name}/{ANSWER_SCRIPT}")} --question "Who was the Norse leader?" --context "..."'
                  + ("  # --int8" if info.get("variants") else ""),
                  "```", "", "```python",
                  f'import sys; sys.path.insert(0, {python_name})  # the folder holding {ANSWER_SCRIPT}',
                  "from answer import answer", "",
                  f'print(answer({python_name}, "Who was the Norse leader?", context))  # {{"text": ..., "no_answer": ...}}',
                  "```", ""]
    if info.get("variants"):
        lines += variants_table(info["variants"], info.get("na_threshold"))
    lines += ["## Provenance", "", f"- study directory: `{info['study_directory']}`",
              f"- source checkpoint: `{info['source_checkpoint']}`",
              f"- objectives: {', '.join(info.get('objectives') or [])}; thresholds: {json.dumps(info.get('thresholds') or {})}", ""]
    return "\n".join(lines)


def variants_table(variants: dict, threshold: float | None) -> list[str]:
    """The float-against-int8 table of the model card, with how it was measured."""
    rows = ["## int8 variant", "",
            f"`{INT8_ONNX_FILE}`: `model.onnx` dynamically quantized to int8 weights (onnxruntime `quantize_dynamic`). "
            "Both files measured the same way in ONNX Runtime on the CPU:", "",
            "| variant | file | size (MB) | test exact | test F1 | latency (ms, batch 1) |", "|---|---|---:|---:|---:|---:|"]
    for name, row in variants.items():
        rows.append(f"| {name} | `{row['file']}` | {row['size_mb']:.1f} | {_number(row.get('exact'))} | "
                    f"{_number(row.get('f1'))} | {_number(row.get('latency_ms'))} |")
    first = next(iter(variants.values()))
    latency = first.get("latency", {})
    questions = first.get("questions")
    rows += ["", (f"Test exact/F1: {questions} questions of the split's test part at the recorded no-answer threshold "
                  f"{_number(threshold)}. " if questions else "Test exact/F1: not measured (see the warnings). ")
             + f"Latency: median of the timed calls, sequence length {latency.get('sequence_length')}, "
             f"{latency.get('threads')} thread(s), {latency.get('device')}.", ""]
    return rows
