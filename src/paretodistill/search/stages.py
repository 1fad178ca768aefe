"""A whole search: a flash stage, a regular stage, an optional baseline, then ``pareto.json``.

*Flash*: ``flash.n_trials`` trials proposed by the sampler on a short budget (``flash.budget``:
config overrides such as ``{"training.max_steps" = 200}``). Cheap trials map the frontier roughly.

*Regular*: the ``regular.top_k`` best flash candidates run again with the full budget
(``regular.budget``, usually empty). Best means: feasible flash trials (thresholds met) ranked by
non-domination, the Pareto front first, then the next fronts; within a front by the first
objective. A short budget underestimates accuracy, so when fewer than k flash trials meet the
thresholds the slots are filled with the ones that miss them by the least. The regular trials are
enqueued with the flash parameters (``study.enqueue_trial``), so the regular study is a plain
Optuna study of the same space, and an interrupted candidate is simply enqueued again.

*Honest numbers*: everything the optimizer sees is measured on the validation articles. Regular
and baseline trials also score the test articles (``evaluate_test=True``); those numbers are
stored (``test_metrics``) and reported, never given to the optimizer or used for selection.
``pareto.json`` carries both, plus the Spearman rank correlation of flash vs regular exact over
the candidates: how far the flash stage can be trusted to rank students.

The three stages are Optuna studies ``<name>-flash``, ``<name>-regular`` and ``<name>-baseline``
in one storage (default ``STUDY_DIR/study.db``); trial folders are ``STUDY_DIR/trials/<stage>-<n>/``.
Running the same command again continues where it stopped.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from paretodistill.config import PARAMETER_TARGETS, ExperimentConfig, build_section
from paretodistill.errors import ConfigError
from paretodistill.search.objectives import ObjectiveSet
from paretodistill.search.runner import DEFAULT_TRIAL_FUNCTION

SEARCH_KEYS = {
    "name", "storage", "sampler", "seed", "n_startup_trials", "dedupe", "trial_function", "workers", "backend",
    "address", "ray", "heartbeat_interval", "grace_period", "flash", "regular", "baseline", "objectives",
    "thresholds", "space_preset", "space", "mlflow_uri",
}
_FLASH_KEYS = {"n_trials", "budget", "thresholds", "evaluate_test"}
_REGULAR_KEYS = {"top_k", "budget"}
_RAY_KEYS = {"num_cpus", "num_gpus"}


# ---------------------------------------------------------------- settings
def _int(search: dict, key: str, default: int, minimum: int, where: str = "search") -> int:
    value = search.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}.{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def _table(search: dict, key: str, keys: set, where: str = "search") -> dict:
    value = search.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}.{key}: expected a table, got {value!r}")
    unknown = set(value) - keys
    if unknown:
        raise ConfigError(f"{where}.{key}: unknown key(s) {sorted(unknown)}; valid: {sorted(keys)}")
    return value


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


@dataclass
class SearchSettings:
    """The ``[search]`` table, checked, with command-line overrides applied."""

    name: str = "study"
    storage: str | None = None
    sampler: str = "gp"
    seed: int = 0
    n_startup_trials: int = 10
    dedupe: bool = True
    trial_function: str = DEFAULT_TRIAL_FUNCTION
    workers: int = 1
    backend: str = "local"
    address: str | None = None
    ray: dict = field(default_factory=dict)
    heartbeat_interval: int = 30
    grace_period: int = 120
    flash_n_trials: int = 20
    flash_budget: dict = field(default_factory=dict)
    flash_thresholds: Any = None
    flash_evaluate_test: bool = False
    top_k: int = 3
    regular_budget: dict = field(default_factory=dict)
    baseline: Any = None

    @classmethod
    def from_config(cls, config: ExperimentConfig, *, workers: int | None = None, backend: str | None = None,
                    address: str | None = None, n_trials: int | None = None) -> "SearchSettings":
        search = config.search
        unknown = set(search) - SEARCH_KEYS
        if unknown:
            raise ConfigError(f"search: unknown key(s) {sorted(unknown)}; valid: {sorted(SEARCH_KEYS)}")
        flash = _table(search, "flash", _FLASH_KEYS)
        regular = _table(search, "regular", _REGULAR_KEYS)
        ray = _table(search, "ray", _RAY_KEYS)
        name = search.get("name", "study")
        if not isinstance(name, str) or not name or "/" in name:
            raise ConfigError(f"search.name: expected a plain name, got {name!r}")
        settings = cls(
            name=name,
            storage=search.get("storage") or None,
            sampler=str(search.get("sampler", "gp")).lower(),
            seed=_int(search, "seed", 0, 0),
            n_startup_trials=_int(search, "n_startup_trials", 10, 1),
            dedupe=bool(search.get("dedupe", True)),
            trial_function=search.get("trial_function", DEFAULT_TRIAL_FUNCTION),
            workers=_int(search, "workers", 1, 1),
            backend=str(search.get("backend", "local")).lower(),
            address=search.get("address") or None,
            ray=ray,
            heartbeat_interval=_int(search, "heartbeat_interval", 30, 1),
            grace_period=_int(search, "grace_period", 120, 1),
            flash_n_trials=_int(flash, "n_trials", 20, 0, "search.flash"),
            flash_budget=flatten_budget(flash.get("budget", {}), "search.flash.budget"),
            flash_thresholds=flash.get("thresholds"),
            flash_evaluate_test=bool(flash.get("evaluate_test", False)),
            top_k=_int(regular, "top_k", 3, 0, "search.regular"),
            regular_budget=flatten_budget(regular.get("budget", {}), "search.regular.budget"),
            baseline=search.get("baseline"),
        )
        if workers is not None:
            settings.workers = max(1, int(workers))
        if backend is not None:
            settings.backend = backend
        if address is not None:
            settings.address = address
        if n_trials is not None:
            settings.flash_n_trials = max(0, int(n_trials))
        from paretodistill.search.study import SAMPLERS

        if settings.sampler not in SAMPLERS:
            raise ConfigError(f"search.sampler: unknown sampler {settings.sampler!r}; expected one of {', '.join(SAMPLERS)}")
        if settings.backend not in ("local", "ray", "inline"):
            raise ConfigError(f"search.backend: unknown backend {settings.backend!r}; expected local, ray or inline")
        if not isinstance(settings.trial_function, str) or ":" not in settings.trial_function:
            raise ConfigError(f"search.trial_function: expected 'module:function', got {settings.trial_function!r}")
        if settings.grace_period <= settings.heartbeat_interval:
            raise ConfigError("search.grace_period must exceed search.heartbeat_interval (a live trial would look dead)")
        return settings


def _check_budget_against_space(budget: dict, names: list[str], where: str) -> None:
    targets = {PARAMETER_TARGETS[n]: n for n in names}
    for dotted in budget:
        if dotted in targets:
            raise ConfigError(f"{where}: {dotted} is set by the budget but {targets[dotted]!r} is searched; drop one")


def describe_split(config: ExperimentConfig) -> dict:
    data = config.data
    return {
        "split_file": data.split_file,
        "split_seed": data.split_seed,
        "fractions": dict(zip(("train", "validation", "test"), data.fractions)),
        "use_split_train": data.use_split_train,
        "extra_train_files": list(data.extra_train_files),
        "max_eval_articles": data.max_eval_articles,
    }


def _found_split(trials) -> dict | None:
    """The ``split.json`` a trial wrote (its trial folder or checkpoint), if any."""
    for t in trials:
        for folder in (t.user_attrs.get("trial_dir"), t.user_attrs.get("checkpoint")):
            if folder and (Path(folder) / "split.json").is_file():
                try:
                    return json.loads((Path(folder) / "split.json").read_text())
                except (OSError, ValueError):
                    continue
    return None


# ---------------------------------------------------------------- candidates
def select_candidates(trials, objectives: ObjectiveSet, k: int) -> list:
    """The k flash trials to run with the full budget (see the module docstring)."""
    from optuna.trial import TrialState

    from paretodistill.search.study import feasible_trials, ranked

    if k <= 0:
        return []
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    feasible = feasible_trials(complete, objectives)
    chosen = [t for _, t in ranked(feasible, objectives)][:k]
    if len(chosen) < k:
        ids = {t.number for t in chosen}
        rest = [t for t in complete if t.number not in ids]

        def shortfall(t) -> float:
            constraints = objectives.constraints(t.user_attrs.get("metrics"))
            return sum(max(0.0, v) for v in constraints.values())

        order = {t.number: i for i, (_, t) in enumerate(ranked(rest, objectives))}
        chosen += sorted(rest, key=lambda t: (shortfall(t), order[t.number]))[: k - len(chosen)]
    return chosen


def spearman(pairs: list[tuple[float, float]]) -> float | None:
    """Rank correlation of (flash, regular) pairs; None for fewer than 3 (two points always give
    +-1, which says nothing) or a constant side."""
    if len(pairs) < 3:
        return None
    from scipy.stats import spearmanr

    value = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return None if value is None or not math.isfinite(float(value)) else round(float(value), 6)


# ---------------------------------------------------------------- the search
def run_search(
    config: ExperimentConfig,
    study_dir: str | Path,
    *,
    workers: int | None = None,
    backend: str | None = None,
    address: str | None = None,
    n_trials: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run (or continue) the flash, regular and baseline stages; write and return ``pareto.json``."""
    import optuna

    from paretodistill.search.runner import Progress, drive, make_backend
    from paretodistill.search.tracking import trackers
    from paretodistill.search.space import build_space, resolve_params, teacher_shape
    from paretodistill.search.study import (
        is_finished,
        make_sampler,
        open_storage,
        open_study,
        storage_url,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("paretodistill.search").setLevel(logging.WARNING)
    settings = SearchSettings.from_config(config, workers=workers, backend=backend, address=address, n_trials=n_trials)
    objectives = ObjectiveSet.from_search(config.search)
    flash_objectives = (
        ObjectiveSet.from_search(config.search, thresholds=settings.flash_thresholds)
        if settings.flash_thresholds is not None else objectives
    )
    for name in objectives.unknown_metrics():
        log(f"warning: {name!r} is not a metric the distillation trial is known to report")
    teacher = teacher_shape(config)
    space = build_space(config, teacher)
    _check_budget_against_space(settings.flash_budget, space.names, "search.flash.budget")
    _check_budget_against_space(settings.regular_budget, space.names, "search.regular.budget")
    baseline_params = None
    if settings.baseline is not None:
        baseline_params, baseline_name = _baseline(settings.baseline, teacher, resolve_params, config)
    if not settings.flash_budget:
        log("warning: search.flash.budget is empty: flash trials train as long as regular ones")

    study_dir = Path(study_dir)
    (study_dir / "trials").mkdir(parents=True, exist_ok=True)
    url = storage_url(study_dir, settings.storage)
    (study_dir / "search.json").write_text(json.dumps({"name": settings.name, "storage": url}, indent=1) + "\n")
    storage = open_storage(url, settings.heartbeat_interval, settings.grace_period)
    token = uuid.uuid4().hex
    split = describe_split(config)
    space_dict = space.to_dict()
    distributions = space.distributions()

    engine = make_backend(
        settings.backend, settings.workers, address=settings.address, device=config.device, ray_options=settings.ray
    )
    threads = config.threads or engine.threads_per_trial()
    base = {**config.to_dict(), "threads": threads}  # what each trial gets, as stored on the studies
    progress = Progress(objectives, log, listeners=trackers(config.search, settings.name, log))

    def spec_factory(stage: str, values: dict, evaluate_test: bool):
        def make_spec(trial) -> dict:
            return {
                "stage": stage,
                "number": trial.number,
                "params": dict(trial.params),
                "config": values,
                "trial_dir": str((study_dir / "trials" / f"{stage}-{trial.number}").resolve()),
                "evaluate_test": evaluate_test,
                "trial_function": settings.trial_function,
                "threads": threads,
                "sys_path": list(sys.path),
            }

        return make_spec

    common = dict(backend=engine, token=token, progress=progress, heartbeat_interval=settings.heartbeat_interval, log=log)
    try:
        # -- flash
        flash_values = apply_budget(base, settings.flash_budget, "search.flash.budget")
        flash = open_study(storage, settings.name, "flash", flash_objectives, space=space_dict,
                           attrs={"config": flash_values, "split": split, "budget": settings.flash_budget})
        # seeded by how far the study got, so that a resumed run draws new random points
        # instead of replaying the first run's (which dedupe would then have to move)
        already = len(flash.get_trials(deepcopy=False))
        flash.sampler = make_sampler(settings.sampler, settings.seed + already, settings.n_startup_trials, dedupe=settings.dedupe)
        flash.sampler.configure(distributions, flash_objectives)
        done = sum(1 for t in flash.get_trials(deepcopy=False) if is_finished(t))
        log(f"[flash] {settings.flash_n_trials} trials wanted, {done} finished already; sampler {settings.sampler}, "
            f"backend {engine.name} x{engine.capacity}, {threads or 'default'} thread(s) per trial")
        drive(flash, stage="flash", n_target=settings.flash_n_trials, distributions=distributions,
              make_spec=spec_factory("flash", flash_values, settings.flash_evaluate_test),
              objectives=flash_objectives, **common)
        found = _found_split(flash.get_trials(deepcopy=False))
        if found:
            split = {**split, "articles": found}
            flash.set_user_attr("split", split)

        # -- regular
        candidates = select_candidates(flash.get_trials(deepcopy=False), flash_objectives, settings.top_k)
        regular = None
        if settings.top_k > 0:
            regular_values = apply_budget(base, settings.regular_budget, "search.regular.budget")
            regular = open_study(storage, settings.name, "regular", objectives, space=space_dict,
                                 attrs={"config": regular_values, "split": split, "budget": settings.regular_budget})
            regular.sampler = optuna.samplers.RandomSampler(seed=settings.seed)  # never asked: all trials are enqueued
            n_target = _enqueue_candidates(regular, candidates)
            log(f"[regular] {len(candidates)} flash candidate(s) {[t.number for t in candidates]} with the full budget")
            drive(regular, stage="regular", n_target=n_target, distributions=distributions,
                  make_spec=spec_factory("regular", regular_values, True), objectives=objectives,
                  only_enqueued=True, **common)

        # -- baseline
        if baseline_params is not None:
            baseline_values = apply_budget(base, settings.regular_budget, "search.regular.budget")
            baseline = open_study(storage, settings.name, "baseline", objectives,
                                  attrs={"config": baseline_values, "split": split, "baseline": baseline_name,
                                         "baseline_params": baseline_params})
            baseline.sampler = optuna.samplers.RandomSampler(seed=settings.seed)
            base_dists = _baseline_distributions(baseline_params, distributions)
            if not any(is_finished(t) or not t.state.is_finished() for t in baseline.get_trials(deepcopy=False)):
                baseline.enqueue_trial(baseline_params, user_attrs={"baseline": baseline_name})
            log(f"[baseline] {baseline_name}: {baseline_params or '(the config as it is)'}")
            drive(baseline, stage="baseline", n_target=1, distributions=base_dists,
                  make_spec=spec_factory("baseline", baseline_values, True), objectives=objectives,
                  only_enqueued=True, **common)
    finally:
        engine.close()

    pareto = build_pareto(storage, settings.name, objectives, flash_objectives, candidates, split, url)
    (study_dir / "pareto.json").write_text(json.dumps(pareto, indent=1, default=str) + "\n")
    log(f"wrote {study_dir / 'pareto.json'}: frontier of {len(pareto['frontier'])} ({pareto['frontier_stage']} stage), "
        f"flash/regular Spearman {pareto['flash_regular_spearman']}")
    return pareto


def _baseline(spec: Any, teacher, resolve_params, config: ExperimentConfig) -> tuple[dict, str]:
    """The baseline's parameters: a named one (presets.BASELINES or "sigopt-2020") or a table."""
    from paretodistill.search.presets import BASELINES, BUDGET_PARAMETERS

    if spec == "sigopt-2020":
        if not config.teacher.path:
            raise ConfigError("search.baseline = \"sigopt-2020\" needs the teacher (teacher.path)")
        from paretodistill.distill.presets import sigopt_baseline
        from paretodistill.models.loading import resolve_model_path

        params = {k: v for k, v in sigopt_baseline(resolve_model_path(config.teacher.path)).items()
                  if k not in BUDGET_PARAMETERS}
        return resolve_params(params, teacher, "search.baseline (sigopt-2020)"), spec
    if isinstance(spec, str):
        if spec not in BASELINES:
            raise ConfigError(f"search.baseline: unknown baseline {spec!r}; known: "
                              f"{sorted([*BASELINES, 'sigopt-2020'])} or a table of parameters")
        return resolve_params(BASELINES[spec], teacher, f"search.baseline ({spec})"), spec
    return resolve_params(spec, teacher, "search.baseline"), "custom"


def _baseline_distributions(params: dict, space_distributions: dict) -> dict:
    from optuna.distributions import CategoricalDistribution

    result = {}
    for name, value in params.items():
        dist = space_distributions.get(name)
        if dist is not None:
            try:
                if dist._contains(dist.to_internal_repr(value)):
                    result[name] = dist
                    continue
            except (ValueError, TypeError):
                pass
        result[name] = CategoricalDistribution([value])
    return result


def _enqueue_candidates(regular, candidates) -> int:
    """Enqueue candidates not yet run (or whose run was interrupted); the number of trials to finish."""
    from paretodistill.search.study import is_finished

    present, finished_ids = set(), set()
    for t in regular.get_trials(deepcopy=False):
        flash_trial = t.user_attrs.get("flash_trial")
        if is_finished(t):
            finished_ids.add(flash_trial)
            present.add(flash_trial)
        elif not t.state.is_finished():  # RUNNING (another coordinator) or WAITING
            present.add(flash_trial)
    for t in candidates:
        if t.number not in present:
            regular.enqueue_trial(
                dict(t.params),
                user_attrs={"flash_trial": t.number, "flash_metrics": t.user_attrs.get("metrics", {})},
            )
    return len(finished_ids | {t.number for t in candidates})


# ---------------------------------------------------------------- pareto.json
def _load(storage, name: str, stage: str):
    import optuna

    from paretodistill.search.study import stage_study_name

    names = {s.study_name for s in storage.get_all_studies()}
    study_name = stage_study_name(name, stage)
    if study_name not in names:
        return None
    return optuna.load_study(study_name=study_name, storage=storage)


def _entry(t, stage: str, objectives: ObjectiveSet) -> dict:
    from paretodistill.search.study import objective_values

    entry = {
        "stage": stage,
        "trial_number": t.number,
        "params": dict(t.params),
        "objective_values": dict(zip(objectives.metric_names, objective_values(t, objectives))),
        "validation": t.user_attrs.get("metrics", {}),
        "test": t.user_attrs.get("test_metrics"),
        "checkpoint": t.user_attrs.get("checkpoint"),
        "trial_dir": t.user_attrs.get("trial_dir"),
    }
    if "flash_trial" in t.user_attrs:
        entry["flash_trial"] = t.user_attrs["flash_trial"]
    return entry


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def build_pareto(storage, name: str, objectives: ObjectiveSet, flash_objectives: ObjectiveSet,
                 candidates: list, split: dict, url: str) -> dict:
    """The ``pareto.json`` document (see the study-directory contract in the package docs)."""
    from optuna.trial import TrialState

    from paretodistill.search.study import counts, frontier

    studies = {stage: _load(storage, name, stage) for stage in ("flash", "regular", "baseline")}
    trials = {stage: (s.get_trials(deepcopy=False) if s is not None else []) for stage, s in studies.items()}
    regular_complete = [t for t in trials["regular"] if t.state == TrialState.COMPLETE]
    if regular_complete:
        frontier_stage, front = "regular", frontier(trials["regular"], objectives)
    else:
        frontier_stage, front = "flash", frontier(trials["flash"], flash_objectives)

    metric = "exact" if "exact" in objectives.metric_names or not objectives.metric_names else objectives.metric_names[0]
    flash_by_number = {t.number: t for t in trials["flash"]}
    pairs, rows = [], []
    candidate_ids = {t.number for t in candidates}
    for t in regular_complete:
        number = t.user_attrs.get("flash_trial")
        source = flash_by_number.get(number)
        if number not in candidate_ids or source is None or source.state != TrialState.COMPLETE:
            continue
        a, b = (source.user_attrs.get("metrics") or {}).get(metric), (t.user_attrs.get("metrics") or {}).get(metric)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            pairs.append((float(a), float(b)))
            rows.append({"flash_trial": number, "regular_trial": t.number, "flash": a, "regular": b})

    baseline = None
    finished_baseline = [t for t in trials["baseline"] if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    if finished_baseline:
        chosen = ([t for t in finished_baseline if t.state == TrialState.COMPLETE] or finished_baseline)[-1]
        baseline = {
            **_entry(chosen, "baseline", objectives),
            "name": chosen.user_attrs.get("baseline"),
            "status": "ok" if chosen.state == TrialState.COMPLETE else "failed",
            "failure_kind": chosen.user_attrs.get("failure_kind"),
            "failure_reason": chosen.user_attrs.get("failure_reason"),
        }
        if chosen.state != TrialState.COMPLETE:
            baseline["objective_values"] = None
    return {
        "study": name,
        "storage": _redact(url),
        "objectives": objectives.describe_objectives(),
        "thresholds": objectives.describe_thresholds(),
        "flash_thresholds": flash_objectives.describe_thresholds(),
        "split": split,
        "frontier_stage": frontier_stage,
        "frontier": [_entry(t, frontier_stage, objectives) for t in front],
        "baseline": baseline,
        "candidates": [t.number for t in candidates],
        "flash_regular_spearman": spearman(pairs),
        "spearman_metric": metric,
        "flash_regular_pairs": rows,
        "counts": {stage: counts(ts) for stage, ts in trials.items() if studies[stage] is not None},
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------- status
def study_status(study_dir: str | Path) -> str:
    """Where a search stands, per stage: counts, failures with reasons, frontier, best trials."""
    import optuna
    from optuna.trial import TrialState

    from paretodistill.search.study import counts, frontier, is_interrupted, open_storage

    study_dir = Path(study_dir)
    meta_file = study_dir / "search.json"
    if not meta_file.is_file():
        raise ConfigError(f"{study_dir}: no search.json here; is this a study directory written by paretodistill search?")
    meta = json.loads(meta_file.read_text())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(meta["storage"])
    lines = [f"search {meta['name']!r} in {study_dir} ({_redact(meta['storage'])})"]
    for stage in ("flash", "regular", "baseline"):
        study = _load(storage, meta["name"], stage)
        if study is None:
            lines.append(f"{stage:9s}not started")
            continue
        objectives = ObjectiveSet.from_search(
            {"objectives": study.user_attrs.get("objectives"), "thresholds": _thresholds_back(study.user_attrs.get("thresholds"))}
        )
        trials = study.get_trials(deepcopy=False)
        c = counts(trials)
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(c["failed_kinds"].items()))
        waiting = f", {c['waiting']} waiting" if c["waiting"] else ""
        lines.append(
            f"{stage:9s}{len(trials)} trials: {c['complete']} complete, {c['running']} running, "
            f"{c['failed']} failed{f' ({kinds})' if kinds else ''}, {c['interrupted']} interrupted{waiting}"
        )
        for t in [t for t in trials if t.state == TrialState.FAIL][-5:]:
            tag = "interrupted" if is_interrupted(t) else (t.user_attrs.get("failure_kind") or "error")
            step = t.user_attrs.get("failure_step")
            reason = (t.user_attrs.get("failure_reason") or "").splitlines()[:1]
            lines.append(f"{'':9s}  #{t.number} {tag}{f' at step {step}' if step is not None else ''}: {reason[0][:140] if reason else ''}")
        front = frontier(trials, objectives)
        lines.append(f"{'':9s}frontier {len(front)} (thresholds {objectives.describe_thresholds() or 'none'})")
        for t in front[:8]:
            shown = ", ".join(f"{m} {_fmt(m, v)}" for m, v in zip(objectives.metric_names, t.values))
            test = t.user_attrs.get("test_metrics") or {}
            extra = f" | test exact {test['exact']:.4g}" if isinstance(test.get("exact"), (int, float)) else ""
            origin = f" (flash #{t.user_attrs['flash_trial']})" if "flash_trial" in t.user_attrs else ""
            lines.append(f"{'':9s}  #{t.number}{origin}: {shown}{extra}")
    pareto = study_dir / "pareto.json"
    if pareto.is_file():
        doc = json.loads(pareto.read_text())
        lines.append(
            f"pareto.json: {len(doc.get('frontier', []))} frontier trial(s) from the {doc.get('frontier_stage')} stage, "
            f"flash/regular Spearman {doc.get('flash_regular_spearman')}, written {doc.get('generated')}"
        )
    else:
        lines.append("pareto.json: not written yet")
    return "\n".join(lines)


def _thresholds_back(described: dict | None) -> dict:
    return {metric: text for metric, text in (described or {}).items()}


def _fmt(metric: str, value: float) -> str:
    return f"{value / 1e6:.2f}M" if metric == "num_parameters" else f"{value:.4g}"
