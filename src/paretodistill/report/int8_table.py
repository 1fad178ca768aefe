"""Reading an int8 table (``int8_table.json``) into the report: frontier students, float against int8.

``export.int8`` writes the table (``benchmarks/int8_table.py``: every frontier student exported
with ``--int8``); the report only reads it: where it lies by default (``<study>-int8/`` beside
the study), which of its rows belong to the study's trials, and one sentence on how its figures
were measured. Test figures are reported only: the students were chosen on validation figures.
"""

from __future__ import annotations

import json
from pathlib import Path

from paretodistill.report.frontier import ReportError, StudyData, TrialRecord

TABLE_FILE = "int8_table.json"


def default_out(study: str | Path) -> Path:
    """``<study>-int8/`` beside the study folder: outside it, and where the report looks by default."""
    study = Path(study).resolve()
    return study.parent / f"{study.name}-int8"


def default_table(study: str | Path) -> Path:
    return default_out(study) / TABLE_FILE


def measured_how(table: dict) -> str | None:
    """How the table's figures were taken (data, threshold, runtime, latency settings), in one sentence."""
    measured = [r for r in table["rows"] if not r.get("error")]
    if not measured:
        return None
    first = measured[0]["float32"]
    latency = first.get("latency") or {}
    torch_dtype = ((measured[0].get("torch") or {}).get("latency") or {}).get("dtype")
    questions = first.get("questions")
    return ((f"Test exact/F1: {questions} questions of the split's test part ({table.get('data')}), at each student's "
             "recorded no-answer threshold, in ONNX Runtime. " if questions else
             "Test exact/F1: not measured (no test data; see each export's warnings). ")
            + f"Latency: median, batch 1, sequence length {latency.get('sequence_length')}, {latency.get('threads')} "
            f"thread(s), {latency.get('device')}"
            + (f"; PyTorch in {torch_dtype}" if torch_dtype else "")
            + (f", load average {table['load_average_at_start']:g} when the run started (timings need an idle machine)"
               if table.get("load_average_at_start") is not None else "")
            + f". Frontier of the {table.get('stage')} stage of {table.get('study')}, chosen on validation figures.")


def load_int8_table(path: str | Path) -> dict:
    """An ``int8_table.json`` as ``export.int8.build_int8_table`` writes it."""
    path = Path(path)
    try:
        table = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: not a readable int8 table ({error})") from None
    if not isinstance(table, dict) or not isinstance(table.get("rows"), list):
        raise ReportError(f"{path}: not an int8 table (no rows); write one with benchmarks/int8_table.py")
    return table


def matched_rows(data: StudyData, table: dict) -> tuple[list[tuple[TrialRecord, dict]], list[str]]:
    """The table's measured rows with the study's trial they belong to, and notes on rows left out.

    A row counts only if the study has that trial with the same parameters: a table of another
    search (or of an earlier run of the same study folder) is never drawn as this one's.
    """
    notes = []
    if table.get("study") != data.name:
        return [], [f"the int8 table is of the search {table.get('study')!r}, not {data.name!r}: not shown"]
    matched = []
    for row in table["rows"]:
        record = next((r for r in data.records(row.get("stage")) if r.number == row.get("trial")), None)
        label = f"{row.get('stage')} #{row.get('trial')}"
        if row.get("error"):
            notes.append(f"{label} was not exported: {row['error']}")
        elif record is None:
            notes.append(f"{label} of the int8 table is not in this study: left out")
        elif row.get("params") != json.loads(json.dumps(record.params)):
            notes.append(f"{label} of the int8 table has other parameters than the study's trial: left out")
        else:
            matched.append((record, row))
    return matched, notes

