"""``paretodistill analyze``: the error analysis of a checkpoint (run here) or of a predictions file.

A recipe: it runs the model (:func:`recipes.evaluate.evaluate_checkpoint`), hands the answers to
the data-only analysis (:mod:`paretodistill.report.analysis`) and writes its page
(:func:`paretodistill.report.html.write_analysis`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from paretodistill.data.splits import load_part
from paretodistill.errors import ConfigError
from paretodistill.recipes.evaluate import evaluate_checkpoint
from paretodistill.report.analysis import analyze_predictions
from paretodistill.report.html import write_analysis


def analyze(
    data_file: str,
    *,
    model_dir: str | None = None,
    predictions_file: str | None = None,
    part: str = "all",
    split_file: str | None = None,
    threshold: float | None = None,
    out_dir: str | Path | None = None,
    batch_size: int = 64,
    cache_dir: str | None = None,
    examples_per_category: int = 6,
    log=print,
    device: str = "auto",
) -> dict:
    """Analyse a model (run through ``evaluate_checkpoint``) or a predictions file; write analysis.json/.html to ``out_dir``."""
    if (model_dir is None) == (predictions_file is None):
        raise ConfigError("give exactly one of --model and --predictions")
    if predictions_file is not None and threshold is not None:
        raise ConfigError("--threshold applies to --model only: a predictions file is already thresholded")
    data = load_part(data_file, part, split_file, model_dir)
    metrics = None
    if model_dir is not None:
        prediction_dir = Path(out_dir) / "predictions" if out_dir else None
        if prediction_dir is None:
            prediction_dir = Path(tempfile.mkdtemp(prefix="paretodistill-analysis-"))
        metrics = evaluate_checkpoint(model_dir=model_dir, data_file=data_file, part=part, split_file=split_file,
                                      threshold=threshold, out_dir=str(prediction_dir), batch_size=batch_size,
                                      cache_dir=cache_dir, log=log, guard_out=False, device=device)
        predictions_file = str(prediction_dir / "predictions.json")
    predictions = json.loads(Path(predictions_file).read_text())
    if not isinstance(predictions, dict):
        raise ConfigError(f"{predictions_file}: expected a JSON object of question id -> answer text")
    analysis = analyze_predictions(data, predictions, examples_per_category)
    analysis = {
        "model": model_dir,
        "predictions": predictions_file,
        "data": data.source,
        "part": part,
        "threshold": None if metrics is None else metrics.get("na_threshold"),
        "metrics": metrics,
        **analysis,
    }
    if out_dir is not None:
        write_analysis(analysis, out_dir)
    return analysis

