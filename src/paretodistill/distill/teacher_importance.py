"""The teacher's head and neuron scores for importance pruning, measured once per teacher and data.

Every trial of a search that prunes by importance needs the same scores (same teacher, same
training windows, same sample): measuring them costs a forward and backward pass of the teacher
over ``student.importance_windows`` windows, as much as a short flash trial's training. So they
are cached beside the teacher logits, keyed by the teacher's weights, the windows, the sample size,
the sample's seed and the batch size; the file is written to a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from paretodistill.config import StudentSettings
from paretodistill.data.features import Features, default_cache_dir
from paretodistill.distill.teacher_cache import features_fingerprint, weights_fingerprint
from paretodistill.models.importance import UnitImportance, measure_importance
from paretodistill.models.inputs import select_inputs
from paretodistill.training.batching import collate

CACHE_FORMAT = 1


def teacher_importance(teacher, features: Features, settings: StudentSettings, batch_size: int, *,
                       teacher_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> UnitImportance:
    """Scores on ``settings.importance_windows`` training windows drawn with ``pruning_seed`` (so that
    seed still names the student), in batches of ``batch_size``; cached when ``teacher_dir`` is given."""
    rng = np.random.default_rng(settings.pruning_seed)
    chosen = rng.permutation(len(features))[: settings.importance_windows]
    path = None
    if teacher_dir is not None:
        material = json.dumps({"teacher": weights_fingerprint(teacher_dir), "features": features_fingerprint(features),
                               "windows": chosen.tolist(), "batch_size": batch_size, "format": CACHE_FORMAT})
        key = hashlib.sha256(material.encode()).hexdigest()[:24]
        path = Path(cache_dir or default_cache_dir()) / "importance" / f"{key}.json"
        if path.exists():
            stored = json.loads(path.read_text())
            return UnitImportance(heads=tuple(map(tuple, stored["heads"])), neurons=tuple(map(tuple, stored["neurons"])))
    pad = teacher.config.pad_token_id or 0

    def batches():
        for start in range(0, len(chosen), batch_size):
            batch = collate(features, chosen[start : start + batch_size], pad)
            yield {**select_inputs(teacher, batch.model_inputs()),
                   "start_positions": batch.start_positions, "end_positions": batch.end_positions}

    scores = measure_importance(teacher, batches())
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"heads": scores.heads, "neurons": scores.neurons}))
        os.replace(temporary, path)
    return scores
