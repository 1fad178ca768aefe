"""The int8 table: every frontier student of a study exported with ``--int8``, float against int8.

Each student goes through ``export_trial(..., int8=True)``, so the figures are the export's own
(model card and export.json): test exact/F1 of ``model.onnx`` and ``model.int8.onnx`` on the split's
test part at the recorded no-answer threshold, file sizes, batch-1 latency in ONNX Runtime. Beside
them, the exported checkpoint's batch-1 latency in PyTorch, timed here with the same settings and
threads (the search's own latency was taken beside other trials, so it does not compare). Exports
go to ``OUT/<stage>-<trial>/`` and the rows to ``OUT/int8_table.json``; ``OUT`` lies outside the
study (export never writes into what it reads), by default beside it as ``<study>-int8/``, which is
where the report looks for the table (``report.int8_table`` reads it).

An export that already holds int8 figures of the same trial is read back, not redone (its PyTorch
latency from the earlier table), so a killed run resumes. Test figures are reported only: the
students were chosen on validation figures.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Callable

from paretodistill.export.students import ExportError, export_trial
from paretodistill.export.variants import timing_settings
from paretodistill.hardware.latency import measure_latency
from paretodistill.models.loading import load_qa_model
from paretodistill.outputs import EXPORT_FILE, OutputKind, check_output
from paretodistill.report.frontier import FRONTIER, SIZE, ReportError, StudyData, TrialRecord, load_study_dir
from paretodistill.report.int8_table import TABLE_FILE, default_out, measured_how
from paretodistill.report.paths import relative_name

VARIANTS = ("float32", "int8")


def _is_int8_table(folder: Path) -> bool:
    try:
        return isinstance(json.loads((folder / TABLE_FILE).read_text()).get("rows"), list)
    except (OSError, ValueError, AttributeError):
        return False


INT8_TABLE = OutputKind("int8 table", folder=True, what="an int8 table", marker=f"holds {TABLE_FILE}", ours=_is_int8_table,
                        files=(TABLE_FILE,))  # the exports in it are judged one by one (``_is_export_of``)


def trial_name(record: TrialRecord) -> str:
    """The export folder of a trial, named as the search names its trial folder."""
    return f"{record.stage}-{record.number}"


def frontier_students(data: StudyData) -> list[TrialRecord]:
    """The frontier of the stage whose results count (as the report draws it), smallest first."""
    stage = data.final_stage
    front = [r for r in data.records(stage) if r.category == FRONTIER] if stage else []
    return sorted(front, key=lambda r: (r.metric(SIZE) or 0.0, r.number))


def layers_by_heads(architecture: dict) -> str | None:
    """``"6 x 6"``; a student pruned unevenly shows its heads per layer: ``"3 x 12/8/6"``."""
    layers = architecture.get("num_hidden_layers")
    heads = architecture.get("heads_per_layer") or architecture.get("num_attention_heads")
    if layers is None or heads is None:
        return None
    if isinstance(heads, (list, tuple)):
        heads = str(heads[0]) if len(set(heads)) == 1 else "/".join(map(str, heads))
    return f"{layers} x {heads}"


def _read_export(folder: Path) -> dict | None:
    try:
        return json.loads((folder / EXPORT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _is_export_of(info: dict | None, data: StudyData, record: TrialRecord) -> bool:
    return bool(info) and (info.get("study"), info.get("stage"), info.get("trial"), info.get("params")) == (
        data.name, record.stage, record.number, json.loads(json.dumps(record.params)))


def _has_int8(info: dict | None) -> bool:
    return bool(info) and "int8" in (info.get("variants") or {})


def torch_latency(folder: Path, info: dict, threads: int | None) -> dict:
    """Batch-1 latency of the exported checkpoint in PyTorch (bf16 where the CPU has it natively, as the
    search times students), with the ONNX files' settings, so the three latencies compare."""
    settings = timing_settings(info.get("latency_settings"), threads)
    measured = measure_latency(load_qa_model(folder), batch_size=1, runtime="torch", **settings)
    return {"latency_ms": measured["median_ms"],
            "latency": {k: measured[k] for k in ("median_ms", "p10_ms", "p90_ms", "sequence_length", "threads", "device", "dtype")}}


def _earlier_torch(out: Path) -> dict[tuple, dict]:
    """PyTorch latencies of an earlier table in ``out``, by (stage, trial, parameters)."""
    try:
        rows = json.loads((out / TABLE_FILE).read_text())["rows"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return {}
    return {_row_key(r["stage"], r["trial"], r.get("params")): r["torch"] for r in rows if r.get("torch")}


def _row_key(stage: str, trial: int, params: dict | None) -> tuple:
    return stage, trial, json.dumps(params, sort_keys=True)


def row_from_export(record: TrialRecord, info: dict, folder: str) -> dict:
    """One table row from an export's export.json (the figures its model card shows)."""
    variants = info.get("variants") or {}
    test = info.get("test") or {}
    row = {
        "stage": record.stage, "trial": record.number, "label": record.label, "export": folder,
        "architecture": layers_by_heads(info.get("architecture") or {}),
        "params": info.get("params"),
        "num_parameters": info.get("num_parameters"),
        "validation_exact": (info.get("validation") or {}).get("exact"),
        "search_test": {k: test[k] for k in ("exact", "f1") if k in test} or None,
        "na_threshold": info.get("na_threshold"),
    }
    for name in VARIANTS:
        figures = variants.get(name) or {}
        row[name] = {k: figures.get(k) for k in ("file", "size_mb", "exact", "f1", "latency_ms", "questions")}
        row[name]["latency"] = figures.get("latency")
    row["error"] = None
    return row


def build_int8_table(study: str | Path, out: str | Path | None = None, data_file: str | None = None,
                     threads: int | None = 1, name: str | None = None, force: bool = False,
                     log: Callable[[str], None] = print) -> dict:
    """Export every frontier student with ``int8=True`` into ``out`` (resumable) and write ``out/int8_table.json``.

    ``threads`` sets the latency's thread count (None: the study's latency settings); ``force``
    measures again what an earlier run exported. A student that cannot be exported (no checkpoint)
    gets a row with its error, so the table has one row per frontier student.
    """
    study = Path(study)
    out = Path(out) if out is not None else default_out(study)
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None  # timings need an idle machine
    check_output(out, INT8_TABLE, {"the study": study, "the data file": data_file})
    data = load_study_dir(study, name)
    students = frontier_students(data)
    if not students:
        raise ReportError(f"{study}: no frontier student in the {data.final_stage} stage: nothing to export")
    earlier_torch = {} if force else _earlier_torch(out)
    rows = []
    for index, record in enumerate(students, start=1):
        folder = out / trial_name(record)
        info = _read_export(folder)
        if info is not None and not _is_export_of(info, data, record):
            raise ExportError(f"{folder} holds an export of another trial or study ({info.get('study')}, "
                              f"{info.get('stage')} trial {info.get('trial')}); choose another --out")
        if _has_int8(info) and not force:
            log(f"[{index}/{len(students)}] {record.label}: kept the earlier export in {folder}")
        else:
            log(f"[{index}/{len(students)}] {record.label}: exporting to {folder} (float and int8 ONNX, test part, latency)")
            try:
                info = export_trial(study, record.number, folder, stage=record.stage, name=data.name, int8=True,
                                    data_file=data_file, overwrite=True, threads=threads)
            except ExportError as error:
                rows.append({"stage": record.stage, "trial": record.number, "label": record.label, "export": folder.name,
                             "params": record.params, "num_parameters": record.metric(SIZE), "error": str(error)})
                log(f"  not exported: {error}")
                continue
        row = row_from_export(record, info, folder.name)
        row["torch"] = earlier_torch.get(_row_key(record.stage, record.number, row["params"])) or torch_latency(
            folder, info, threads)
        rows.append(row)
    table = {
        "study": data.name,
        "study_directory": relative_name(study, out.parent),
        "stage": data.final_stage,
        "data": Path(data_file).name if data_file else "the split's source file",
        "threads": threads,
        "load_average_at_start": load,
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    temporary = out / f".{TABLE_FILE}.tmp"
    temporary.write_text(json.dumps(table, indent=1))
    os.replace(temporary, out / TABLE_FILE)
    return table


def _pair(figures: dict | None, key_a: str, key_b: str) -> str:
    figures = figures or {}
    a, b = figures.get(key_a), figures.get(key_b)
    return "–" if a is None else f"{a:.2f} / {b:.2f}" if b is not None else f"{a:.2f}"


def _cell(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown_table(table: dict) -> str:
    """The rows as a markdown table, with how they were measured underneath."""
    lines = ["| trial | layers x heads | parameters | float MB | int8 MB | test exact / F1 float (model.onnx) | "
             "test exact / F1 int8 | search's test exact / F1 (PyTorch) | latency ms PyTorch | latency ms float | "
             "latency ms int8 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in table["rows"]:
        size = row.get("num_parameters")
        size_text = "–" if size is None else f"{size / 1e6:.2f}M"
        if row.get("error"):
            lines.append(f"| {row['label']} | – | {size_text} | not exported: {row['error']} |" + " |" * 7)
            continue
        low, high = row["float32"], row["int8"]
        lines.append(
            f"| {row['label']} | {row.get('architecture') or '–'} | {size_text} | {_cell(low['size_mb'], '.1f')} | "
            f"{_cell(high['size_mb'], '.1f')} | {_pair(low, 'exact', 'f1')} | {_pair(high, 'exact', 'f1')} | "
            f"{_pair(row.get('search_test'), 'exact', 'f1')} | {_cell((row.get('torch') or {}).get('latency_ms'), '.2f')} | "
            f"{_cell(low['latency_ms'], '.2f')} | "
            f"{_cell(high['latency_ms'], '.2f')} |")
    how = measured_how(table)
    return "\n".join(lines + (["", how] if how else []))
