"""What a search will do, decided and checked before its first trial runs.

A :class:`SearchPlan` turns the typed ``[search]`` settings into the search's own types: the
objectives of each stage, the space, the stage budgets as dotted config overrides, the baseline's
parameters and the split. Everything that can be wrong with a config is found here, in seconds,
not after an hour of flash trials.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from paretodistill.config import (
    DEFAULT_TRIAL_FUNCTION,
    PARAMETER_TARGETS,
    ExperimentConfig,
    SearchSettings,
    TrainSettings,
    build_section,
)
from paretodistill.distill.engine import TeacherShape, check_searchable, prepare
from paretodistill.distill.presets import sigopt_baseline, sigopt_distilbert
from paretodistill.errors import ConfigError
from paretodistill.search.domain import BUDGET_PARAMS, split_description
from paretodistill.search.early_stop import StopRule
from paretodistill.search.objectives import ObjectiveSet
from paretodistill.search.presets import BASELINES
from paretodistill.search.space import SearchSpace, build_space, resolve_params

SIGOPT_2020 = "sigopt-2020"
SIGOPT_DISTILBERT = "sigopt-2020-distilbert"  # the same settings on the seed checkpoint's whole architecture


@dataclass(frozen=True)
class Baseline:
    """The reference student run once on the regular budget."""

    name: str  # a preset name, "sigopt-2020", or "custom" for a table
    params: dict[str, Any]


@dataclass(frozen=True)
class SearchPlan:
    settings: SearchSettings
    objectives: ObjectiveSet  # regular and baseline stages
    flash_objectives: ObjectiveSet  # search.flash.objectives (else the search's), with the flash stage's thresholds
    space: SearchSpace
    flash_budget: dict[str, Any]  # dotted config overrides
    regular_budget: dict[str, Any]
    baseline: Baseline | None
    split: dict  # how the articles are split (the trials add the article titles)
    early_stop: StopRule | None = None  # search.flash.early_stop (None: flash trials train to their end)


def command_line_settings(settings: SearchSettings, *, workers: int | None = None, backend: str | None = None,
                          address: str | None = None, n_trials: int | None = None) -> SearchSettings:
    """The settings with ``paretodistill search`` flags applied (a flag beats the config)."""
    changes: dict[str, Any] = {}
    if workers is not None:
        if workers < 1:
            raise ConfigError(f"--workers: expected an integer >= 1, got {workers}")
        changes["workers"] = workers
    if backend is not None:
        changes["backend"] = backend
    if address is not None:
        changes["address"] = address
    if n_trials is not None:
        if n_trials < 0:
            raise ConfigError(f"--n-trials: expected an integer >= 0, got {n_trials}")
        changes["flash"] = dataclasses.replace(settings.flash, n_trials=n_trials)
    settings = dataclasses.replace(settings, **changes)
    settings.validate()
    return settings


def plan_search(config: ExperimentConfig, settings: SearchSettings, log: Callable[[str], None] = print,
                teacher_folder: str | None = None) -> SearchPlan:
    """The checked plan of a search (raises ConfigError naming the key that is wrong); the shape the
    space's ``teacher_*`` bounds read comes from ``teacher_folder`` when given (where the inputs check
    found the teacher, or the checkpoint that seeds the students: the students have its shape)."""
    objectives, flash_objectives = plan_objectives(settings)
    for name in sorted(set(objectives.unknown_metrics()) | set(flash_objectives.unknown_metrics())):
        log(f"warning: {name!r} is not a metric the distillation trial is known to report")
    teacher = prepare(config, teacher_folder).shape
    space = build_space(config, teacher)
    check_searchable(teacher_folder, space.names)
    check_pruning_of_a_separate_seed(config, space)
    flash_budget = flatten_budget(settings.flash.budget, "search.flash.budget")
    regular_budget = flatten_budget(settings.regular.budget, "search.regular.budget")
    check_budget_against_space(flash_budget, space.names, "search.flash.budget")
    check_budget_against_space(regular_budget, space.names, "search.regular.budget")
    if not flash_budget:
        log("warning: search.flash.budget is empty: flash trials train as long as regular ones")
    baseline = None if settings.baseline is None else resolve_baseline(settings.baseline, teacher)
    early_stop = plan_early_stop(settings, flash_objectives, log)
    if early_stop is not None:
        warn_if_never_judged(apply_budget(config.to_dict(), flash_budget, "search.flash.budget")["training"], log)
    return SearchPlan(settings, objectives, flash_objectives, space, flash_budget, regular_budget, baseline,
                      split_description(config), early_stop)


def plan_objectives(settings: SearchSettings) -> tuple[ObjectiveSet, ObjectiveSet]:
    """The search's objectives and thresholds (regular and baseline stages), and the flash stage's:
    ``search.flash.objectives`` / ``thresholds`` where given, else the search's."""
    objectives = ObjectiveSet.parse(settings.objectives, settings.thresholds)
    if settings.flash.thresholds is None and settings.flash.objectives is None:
        return objectives, objectives
    # inherited thresholds are spelled out (">= 50") by the search's objectives, whose
    # directions a bare number refers to
    return objectives, ObjectiveSet.parse(
        settings.flash.objectives or settings.objectives,
        objectives.describe_thresholds() if settings.flash.thresholds is None else settings.flash.thresholds,
    )


def check_pruning_of_a_separate_seed(config: ExperimentConfig, space: SearchSpace) -> None:
    """Importance pruning scores the teacher's heads and neurons: a student seeded from a separate
    checkpoint whose heads or FFN width are searched would fail every trial that cuts them."""
    init_from = config.student.init_from
    if not init_from or (Path(init_from) / "pretrain.json").exists():
        return
    if not {"heads_per_layer", "intermediate_size"} & set(space.names):
        return
    pruning = space["pruning"].candidate_values() if "pruning" in space.names else [config.student.pruning]
    if "importance" in pruning:
        raise ConfigError(f"student.pruning = \"importance\" scores the teacher's heads and neurons, but the students "
                          f"are seeded from {init_from}: set student.pruning = \"random\" (or fix it in the space)")


# ---------------------------------------------------------------- early stopping
KNOWN_BEFORE_TRAINING = ("num_parameters",)  # what the built-in trial can tell a stop check (distill/run.py)


def plan_early_stop(settings: SearchSettings, flash_objectives: ObjectiveSet, log: Callable[[str], None]) -> StopRule | None:
    """The rule of ``search.flash.early_stop``, or None when it is off.

    The trial function must take the ``should_stop`` keyword; an objective besides the learning one
    that a trial does not know before it ends keeps every trial (said here, not discovered later).
    """
    chosen = settings.flash.early_stop
    if chosen is None:
        return None
    rule = StopRule.from_settings(chosen, settings.regular.top_k, flash_objectives.metric_names[0])
    function = _importable(settings.trial_function)
    if function is not None and not _takes_keyword(function, "should_stop"):
        raise ConfigError(f"search.flash.early_stop: the trial function {settings.trial_function} takes no "
                          "should_stop keyword, so it cannot be stopped early; remove early_stop or add it")
    unknown = [m for m in flash_objectives.metric_names[1:] if m not in KNOWN_BEFORE_TRAINING]
    if unknown and settings.trial_function == DEFAULT_TRIAL_FUNCTION:
        log(f"warning: search.flash.early_stop: a trial does not know {', '.join(unknown)} before it ends, so no "
            "flash trial will be stopped early")
    return rule


def warn_if_never_judged(training: dict, log: Callable[[str], None]) -> None:
    """A flash trial evaluated only at its end has no point to be stopped at: say so before it runs."""
    # the steps at the config's batch size (a searched batch size varies those of a budget in windows)
    every, steps = training.get("eval_every_steps"), build_section(TrainSettings, training).budget_steps()
    if steps is not None and (every is None or every >= steps):
        log(f"warning: search.flash.early_stop: flash trials of {steps} steps are evaluated every "
            f"{every or 'epoch'}{' steps' if every else ''}, so none has an evaluation point to be stopped at "
            "(unless an epoch ends first); set training.eval_every_steps below that in search.flash.budget")


def _importable(path: str):
    """The trial function, or None where it cannot be imported here (a Ray cluster's own module)."""
    from paretodistill.search.worker import load_trial_function

    try:
        return load_trial_function(path)
    except (ImportError, AttributeError, ValueError):
        return None


def _takes_keyword(function, name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True  # no signature to read (a builtin, a C extension): let the trial tell
    return any(p.name == name or p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters)


# ---------------------------------------------------------------- budgets
def flatten_budget(budget: Any, where: str) -> dict[str, Any]:
    """``{"training.max_steps" = 200}`` or ``{training = {max_steps = 200}}`` -> dotted keys."""
    if not isinstance(budget, dict):
        raise ConfigError(f"{where}: expected a table of config overrides, got {budget!r}")
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                walk(dotted, value)
            else:
                flat[dotted] = value

    walk("", budget)
    return flat


def apply_budget(values: dict, budget: dict[str, Any], where: str) -> dict:
    """Config values with a stage's overrides applied and validated."""
    result = json.loads(json.dumps(values))
    for dotted, value in budget.items():
        node = result
        parts = dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"{where}: {dotted!r} is not a config key (no table {part!r})")
            node = node[part]
        node[parts[-1]] = value
    try:
        build_section(ExperimentConfig, result)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    return result


def check_budget_against_space(budget: dict, names: list[str], where: str) -> None:
    """A budget may not set what the search searches (one of the two would silently lose)."""
    targets = {PARAMETER_TARGETS[n]: n for n in names}
    for dotted in budget:
        if dotted in targets:
            raise ConfigError(f"{where}: {dotted} is set by the budget but {targets[dotted]!r} is searched; drop one")


# ---------------------------------------------------------------- the baseline
def resolve_baseline(spec: str | dict, teacher: TeacherShape | None) -> Baseline:
    """A named baseline (presets.BASELINES or "sigopt-2020") or a table of parameters, resolved
    against the teacher's shape (read from its config.json, no model loaded)."""
    if spec in (SIGOPT_2020, SIGOPT_DISTILBERT):
        if teacher is None:
            raise ConfigError(f'search.baseline = "{spec}" needs the teacher (teacher.path with a config.json)')
        shape = types.SimpleNamespace(num_hidden_layers=teacher.layers, num_attention_heads=teacher.heads)
        recipe = sigopt_baseline if spec == SIGOPT_2020 else sigopt_distilbert
        params = {k: v for k, v in recipe(shape).items() if k not in BUDGET_PARAMS}
        return Baseline(spec, resolve_params(params, teacher, f"search.baseline ({spec})"))
    if isinstance(spec, str):
        if spec not in BASELINES:
            raise ConfigError(f"search.baseline: unknown baseline {spec!r}; known: "
                              f"{sorted([*BASELINES, SIGOPT_2020, SIGOPT_DISTILBERT])} or a table of parameters")
        return Baseline(spec, resolve_params(BASELINES[spec], teacher, f"search.baseline ({spec})"))
    return Baseline("custom", resolve_params(spec, teacher, "search.baseline"))
