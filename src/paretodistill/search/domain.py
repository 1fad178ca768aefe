"""What a search's results mean, defined once for the search, ``pareto.json``, ``status`` and the report.

The objectives, thresholds, feasibility, dominance and hypervolume live in
:mod:`paretodistill.search.objectives`; this module adds what a *study directory* means: the stage
names, where its storage is, how a trial is identified across stages (its student key), which
stage's frontier is the result, how flash and regular trials are paired and correlated, and how
the article split is described. Everything here is plain Python (no Optuna, no torch), so any
reader of a study directory can import it.

Two questions used to have two answers (the search's and the report's); they are decided here:

* **Which frontier is the result** (:func:`frontier_stage`): the regular stage's once at least one
  regular trial is *feasible*, else the flash stage's. A regular stage whose trials all miss the
  thresholds has no usable student, so its empty frontier must not hide the flash one.
* **Flash against regular** (:func:`pair_flash_regular`): a pair is one student key (budget
  parameters left out) completed in both stages. That is what "the same student on two budgets"
  means, whatever attribute a regular trial carries.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

from paretodistill.config import ExperimentConfig
from paretodistill.errors import StudyError
from paretodistill.redaction import redact_url

STUDY_DB = "study.db"
SEARCH_META = "search.json"
FLASH, REGULAR, BASELINE = "flash", "regular", "baseline"
STAGES = (FLASH, REGULAR, BASELINE)
SEARCH_STAGES = (FLASH, REGULAR)

# Parameters that set a stage's budget, not the student: a flash trial and its regular re-run
# differ in them by design, so they are no part of a trial's student key.
BUDGET_PARAMS = frozenset({"epochs", "max_steps", "max_windows", "eval_every_steps"})

# The metric whose flash and regular values are rank-correlated, when it is an objective.
CORRELATION_METRIC = "exact"

Paired = TypeVar("Paired")


# ---------------------------------------------------------------- names and places
def stage_study_name(name: str, stage: str) -> str:
    """The Optuna study of one stage: ``<name>-<stage>``."""
    return f"{name}-{stage}"


def search_prefixes(study_names: Sequence[str]) -> list[str]:
    """The ``<name>`` of every search whose ``<name>-<stage>`` studies are in ``study_names``."""
    return sorted({n.rsplit("-", 1)[0] for n in study_names if "-" in n and n.rsplit("-", 1)[-1] in STAGES})


def storage_url(study_dir: str | Path, configured: str | None = None) -> str:
    """Where a search stores its studies: ``search.storage`` if set, else ``STUDY_DIR/study.db``."""
    if configured:
        return configured
    return f"sqlite:///{Path(study_dir).resolve() / STUDY_DB}"


def recorded_storage_url(study_dir: str | Path) -> str | None:
    """Where a search stored its studies: ``study.db`` in the directory (wherever the directory
    has been moved or copied to), else the URL ``search.json`` records (a search run on a shared
    database); None when neither is usable (no database, or a URL recorded without its password)."""
    directory = Path(study_dir)
    if (directory / STUDY_DB).exists():
        return storage_url(directory)
    meta = read_search_meta(directory)
    storage = (meta or {}).get("storage")
    if isinstance(storage, str) and "***" not in storage:
        return storage
    return None


def search_meta(name: str, configured_storage: str | None) -> dict:
    """What ``search.json`` holds: the search's name and, for a shared database, its URL without
    the password (``None``: the folder's own study.db). No absolute path, pid or host."""
    return {"name": name, "storage": None if not configured_storage else redact_url(configured_storage)}


def read_search_meta(study_dir: str | Path) -> dict | None:
    """``search.json`` (the search's name and storage URL), or None when the directory has none.

    Raises ``StudyError`` for a file that is not what a search writes."""
    path = Path(study_dir) / SEARCH_META
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StudyError(f"{path}: not readable as the JSON a search writes ({error})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not isinstance(
        meta.get("storage"), (str, type(None))
    ):
        raise StudyError(f"{path}: expected {{\"name\": text, \"storage\": text or null}}, got {meta!r}"[:300])
    return meta


def path_in_study(study_dir: str | Path, path: str | Path | None) -> str | None:
    """How a trial folder or checkpoint is recorded: relative to the study folder when inside it,
    so that a moved or copied study points into its own copy; a path elsewhere as given."""
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(Path(study_dir).resolve()).as_posix()
    except ValueError:
        return str(path)


def resolve_in_study(study_dir: str | Path, recorded: str | Path | None) -> Path | None:
    """A path recorded in a study, on this machine: a relative one is inside the study folder it
    was read from; an absolute one (studies written before paths were relative) as it is."""
    if recorded is None or recorded == "":
        return None
    path = Path(recorded)
    return path if path.is_absolute() else Path(study_dir) / path


# ---------------------------------------------------------------- trials across stages
def student_key(params: Mapping[str, Any]) -> str:
    """A student's identity across stages: its parameters without the budget ones, as text."""
    return json.dumps({k: v for k, v in sorted(params.items()) if k not in BUDGET_PARAMS}, sort_keys=True, default=str)


def frontier_stage(feasible: Mapping[str, int], finished: Mapping[str, int]) -> str:
    """The stage whose frontier is the search's result (see the module docstring).

    ``feasible`` and ``finished`` count each stage's feasible and finished (completed or failed)
    trials. With no feasible trial anywhere, the later stage that finished a trial is named (its
    frontier is empty either way).
    """
    for counts in (feasible, finished):
        for stage in (REGULAR, FLASH):
            if counts.get(stage, 0) > 0:
                return stage
    return FLASH


def pair_flash_regular(flash: Sequence[Paired], regular: Sequence[Paired]) -> list[tuple[Paired, Paired]]:
    """(flash, regular) pairs of *completed* trials (callers pass only those) with one student key.

    Items need ``number`` and ``params``. When a key occurs twice in a stage, its earliest trial
    stands for it. Pairs come in the regular trials' order.
    """
    first_flash: dict[str, Paired] = {}
    for trial in sorted(flash, key=lambda t: t.number):
        first_flash.setdefault(student_key(trial.params), trial)
    pairs, seen = [], set()
    for trial in sorted(regular, key=lambda t: t.number):
        key = student_key(trial.params)
        if key in first_flash and key not in seen:
            seen.add(key)
            pairs.append((first_flash[key], trial))
    return pairs


def correlation_metric(objective_metrics: Sequence[str]) -> str:
    """The metric flash and regular are correlated on: exact when it is an objective (or none is
    named), else the first objective."""
    if CORRELATION_METRIC in objective_metrics or not objective_metrics:
        return CORRELATION_METRIC
    return objective_metrics[0]


# Flash metrics whose rank correlation with the regular stage pareto.json reports, to choose
# search.flash.objectives on evidence: the headline scores and what the threshold hides
# (evaluation/signals.py). teacher_kl is lower-is-better, so a useful one correlates negatively.
FLASH_METRIC_CANDIDATES = ("exact", "f1", "best_f1", "HasAns_f1", "span_f1", "no_answer_auc", "teacher_kl")


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation; None for fewer than 3 pairs (two points always give +-1,
    which says nothing) or a constant side."""
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    from scipy.stats import spearmanr  # scipy is slow to import; only a correlation needs it

    value = float(spearmanr(xs, ys).statistic)
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------- the split
def split_description(config: ExperimentConfig) -> dict:
    """How a search's articles are split, as stored on its studies and in ``pareto.json``."""
    data = config.data
    return {
        "split_file": data.split_file,
        "split_seed": data.split_seed,
        "fractions": dict(zip(("train", "validation", "test"), data.fractions)),
        "use_split_train": data.use_split_train,
        "extra_train_files": list(data.extra_train_files),
        "max_eval_articles": data.max_eval_articles,
        # the user's own parts, only when given: a split file's description stays what it was
        **{f"{part}_files": list(files) for part, files in (("validation", data.validation_files),
                                                            ("test", data.test_files)) if files},
    }
