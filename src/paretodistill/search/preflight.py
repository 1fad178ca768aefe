"""Before trial 0: can every metric the search reads be computed on this data and config?

A search ranks and filters trials by metrics (the objectives, the thresholds, the flash stage's
own); a metric the validation part cannot define fails every trial that reports it. ``no_answer_auc``
on a validation part without unanswerable questions is NaN in each of them: a whole stage spent on
failures. What each metric needs is one table (``search.objectives.METRIC_NEEDS``); here it is
checked against what :func:`distill.engine.check_data` read (the validation part's question counts)
and the config (latency, the students' seed), right after the data is read: before the teacher is
loaded (torch), the plan is made, or the study folder is touched.
The first metric that cannot be computed is one line (``ConfigError``, exit status 2) naming it,
why, and the fix.

Only the built-in distillation trial is checked: the table describes what it reports, and another
trial function reports what it reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from paretodistill.config import DEFAULT_TRIAL_FUNCTION, ExperimentConfig
from paretodistill.errors import ConfigError
from paretodistill.search.objectives import (
    ANSWERABLE,
    LATENCY,
    METRIC_NEEDS,
    PRETRAINED,
    QUESTIONS,
    UNANSWERABLE,
    ObjectiveSet,
)
from paretodistill.search.plan import plan_objectives

# An accuracy objective whose validation data lacks what it needs is replaced, in the suggested
# fix, by the first of these the data can define.
REPLACEMENTS = ("span_f1", "f1", "exact")


def check_metrics_computable(config: ExperimentConfig, validation: dict[str, int] | None) -> None:
    """Raise ``ConfigError`` for the first metric of the search that this data and config cannot
    define; ``validation``: the validation part's counts (``distill.engine.DataInputs``)."""
    if config.search.trial_function != DEFAULT_TRIAL_FUNCTION:
        return
    available = available_needs(config, validation)
    for where, metric, objectives in metric_uses(*plan_objectives(config.search)):
        missing = [need for need in METRIC_NEEDS.get(metric, ()) if not available.get(need, True)]
        if missing:
            raise ConfigError(f"metric {metric!r} ({where}) cannot be computed: {why(missing[0], validation)}; "
                              f"{fix(where, metric, objectives, available)}{data_fix(missing[0])}")


def available_needs(config: ExperimentConfig, validation: dict[str, int] | None) -> dict[str, bool]:
    """Which needs of ``METRIC_NEEDS`` this run meets (a need left out: not known here, not refused)."""
    found: dict[str, bool] = {
        LATENCY: config.latency.enabled,
        PRETRAINED: bool(config.student.init_from) and (Path(config.student.init_from) / "pretrain.json").is_file(),
    }
    if validation is not None:
        found.update({QUESTIONS: validation["questions"] > 0, ANSWERABLE: validation["answerable"] > 0,
                      UNANSWERABLE: validation["unanswerable"] > 0})
    return found


def metric_uses(search: ObjectiveSet, flash: ObjectiveSet) -> list[tuple[str, str, ObjectiveSet]]:
    """(the setting that names it, metric, the objectives it belongs to), the search's then the flash stage's."""
    uses = []
    for prefix, objectives in (("search", search), ("search.flash", flash)):
        uses += [(f"{prefix}.objectives", metric, objectives) for metric in objectives.metric_names]
        uses += [(f"{prefix}.thresholds", t.metric, objectives) for t in objectives.thresholds]
    return uses


def why(need: str, validation: dict[str, int] | None) -> str:
    counts = validation or {}
    part = (f"the validation part ({counts.get('articles', 0)} article(s), {counts.get('questions', 0)} questions) "
            f"has 0")
    return {
        QUESTIONS: f"{part} questions",
        ANSWERABLE: f"{part} answerable questions",
        UNANSWERABLE: f"{part} unanswerable questions",
        LATENCY: "latency is not measured ([latency] enabled = false)",
        PRETRAINED: "the students are not seeded from a pretrain-distill checkpoint (student.init_from)",
    }[need]


def fix(where: str, metric: str, objectives: ObjectiveSet, available: dict[str, bool]) -> str:
    """The override that leaves the metric out: another objective, or the threshold dropped."""
    if where.endswith(".thresholds"):
        kept = {t.metric: f"{t.operator} {t.value:g}" for t in objectives.thresholds if t.metric != metric}
        table = ", ".join(f"{name} = {json.dumps(text)}" for name, text in kept.items())
        return f"drop that threshold: --set '{where}={{{table}}}'"
    texts = objectives.describe_objectives()
    position = objectives.metric_names.index(metric)
    usable = [name for name in REPLACEMENTS if name not in objectives.metric_names and computable(name, available)]
    if objectives.objectives[position].maximize and usable:
        texts[position] = f"{usable[0]}:maximize"
        return f"choose another metric, e.g. --set '{where}={_toml_list(texts)}'"
    if len(texts) > 1:
        return f"leave it out: --set '{where}={_toml_list(texts[:position] + texts[position + 1:])}'"
    return f"choose another metric in {where} (--set '{where}=[...]')"


def data_fix(need: str) -> str:
    return {
        QUESTIONS: "; or give a validation file with questions (--validation FILE), or a data.split_file with questions "
                   "in its validation articles",
        ANSWERABLE: "; or give a validation file with answerable questions (--validation FILE), or a data.split_file "
                    "whose validation articles have answerable questions "
                    "(data.split_seed, data.fractions and data.max_eval_articles choose those articles)",
        UNANSWERABLE: "; or give a validation file with unanswerable questions (--validation FILE), or a data.split_file "
                    "whose validation articles have unanswerable questions "
                      "(data.split_seed, data.fractions and data.max_eval_articles choose those articles)",
        LATENCY: "; or measure it: --set latency.enabled=true",
        PRETRAINED: "; or seed the students from a paretodistill pretrain-distill folder (student.init_from)",
    }[need]


def computable(metric: str, available: dict[str, bool]) -> bool:
    return all(available.get(need, True) for need in METRIC_NEEDS.get(metric, ()))


def _toml_list(items: list[Any]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"
