"""A whole search: a flash stage, a regular stage, an optional baseline, then ``pareto.json``.

*Flash*: ``flash.n_trials`` trials proposed by the sampler on a short budget (``flash.budget``:
config overrides such as ``{"training.max_steps" = 200}``). Cheap trials map the frontier roughly.
With ``search.warm_start`` the first of them are an earlier study's best students (:mod:`search.warm_start`).
A stage whose every trial failed for one reason stops the search before the next (``StageFailure``).
With ``flash.early_stop`` a flash trial that can no longer reach the front is stopped at an
evaluation point (:mod:`search.early_stop`): PRUNED, counted, never a candidate.

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
in one storage (default ``STUDY_DIR/study.db``); trial folders are ``STUDY_DIR/trials/<stage>-<n>/``,
recorded relative to the study folder. Running the same command again continues where it stopped;
with other settings it is refused (``search.identity``), and one search at a time holds a study
folder (``search.lock``) and, on a PostgreSQL server, the search itself (``search.database_lock``).
"""


from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial
from sqlalchemy.exc import OperationalError

from paretodistill.config import DEFAULT_TRIAL_FUNCTION, ExperimentConfig, build_section
from paretodistill.distill.engine import check_data, check_inputs, prepare, teacher_latency
from paretodistill.errors import EnvironmentFailure, StageFailure
from paretodistill.redaction import redact_config, redact_text, redact_url
from paretodistill.search.database_lock import DatabaseLock
from paretodistill.search.domain import (
    BASELINE,
    FLASH,
    REGULAR,
    SEARCH_META,
    path_in_study,
    resolve_in_study,
    search_meta,
    storage_url,
)
from paretodistill.search.early_stop import CompletedCurve, StopEvidence, StopRule, curve_key, progress_points
from paretodistill.search.identity import IDENTITY_ATTR, check_identity, study_identity
from paretodistill.search.lock import StudyLock
from paretodistill.search.objectives import ObjectiveSet
from paretodistill.search.optuna_adapter import contains
from paretodistill.search.pareto import build_pareto
from paretodistill.search.plan import SearchPlan, apply_budget, command_line_settings, plan_search
from paretodistill.search.preflight import check_metrics_computable
from paretodistill.search.results import (
    Attr,
    StoredTrial,
    common_failure,
    feasible_trials,
    is_finished,
    ranked,
    stored_trials,
)
from paretodistill.search.runner import Progress, drive, make_backend
from paretodistill.search.samplers import make_sampler
from paretodistill.search.storage import close_storage, open_checked_storage, refuse_live_coordinators
from paretodistill.search.study import load_stage, open_study
from paretodistill.search.tracking import trackers
from paretodistill.search.warm_start import WarmStart, enqueue_warm_start, read_warm_start
from paretodistill.search.worker import WorkerSpec


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
    """Run (or continue) the flash, regular and baseline stages; write and return ``pareto.json``.

    Before the first trial, in this order: the data, whether the metrics the search reads can be
    computed on it (``search.preflight``: in seconds, before torch is imported), the teacher (read
    once: a teacher that is not there is named before the space that needs its shape), the plan
    (config), the warm start's old study (``search.warm_start``), the study folder's lock (one
    coordinator per study), the storage and, on a database server, its lock on the search, the
    study's identity. Each refuses with one line; none spends a trial. A stage whose every trial
    failed for one reason stops the search before the next stage (``StageFailure``).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("paretodistill.search").setLevel(logging.WARNING)
    settings = command_line_settings(config.search, workers=workers, backend=backend, address=address, n_trials=n_trials)
    data = check_data(config)
    check_metrics_computable(config, data.validation)
    inputs = check_inputs(config, data)
    plan = plan_search(config, settings, log, teacher_folder=inputs.students_folder)
    study_dir = Path(study_dir)
    warm = None if settings.warm_start is None else read_warm_start(
        settings.warm_start, study_dir, plan.space.distributions(), settings.n_startup_trials, settings.flash.n_trials)
    token = uuid.uuid4().hex
    with StudyLock.acquire(study_dir, token, log):
        identity = study_identity(config, plan, inputs)
        stages = StageRunner.open(config, plan, study_dir, token, log)
        try:
            check_identity(stages.storage, settings.name, identity, stages.where, log, study_dir)
            stages.progress.search_started(stages.trial_config)
            if not stages.exclusive:
                refuse_live_coordinators(stages.storage, settings.name, token, stages.where)
            flash, split = run_flash_stage(stages, identity, warm)
            stop_if_every_trial_failed(flash, FLASH, plan.flash_objectives, REGULAR, study_dir)
            candidates = select_candidates(flash.get_trials(deepcopy=False), plan.flash_objectives, settings.regular.top_k)
            regular = run_regular_stage(stages, candidates, split, identity)
            if regular is not None and plan.baseline is not None:
                stop_if_every_trial_failed(regular, REGULAR, plan.objectives, BASELINE, study_dir)
            run_baseline_stage(stages, split, identity)
            return write_pareto(stages, candidates, split)
        except OperationalError as error:  # the database's disk is full, gone or locked: the machine, not the input
            reason = redact_text(" ".join(str(error.orig or error).split()), stages.url)[:300]
            raise EnvironmentFailure(f"the study database {stages.where} failed: {reason}; what ran is kept: "
                                     "fix that and run the same command again") from error
        finally:
            stages.close()
            stages.progress.search_ended()


@dataclass
class StageRunner:
    """What the stages share: the plan, the storage, the backend, the trial folders, the progress lines."""

    plan: SearchPlan
    study_dir: Path
    url: str
    storage: Any
    backend: Any
    trial_config: dict  # the config every trial gets, before its stage's budget (secrets redacted)
    threads: int | None
    config_threads: bool  # the user fixed the threads per trial (else: the cores shared by the trials at once)
    token: str  # this run's mark on the trials it owns (see study.recover_interrupted)
    exclusive: bool  # in the locked folder, or locked on its server: no other coordinator can run it
    database_lock: DatabaseLock | None  # the server's lock on the search (PostgreSQL), held until close
    progress: Progress
    log: Callable[[str], None]

    @property
    def where(self) -> str:
        return redact_url(self.url)

    @property
    def shared_url(self) -> str | None:
        """The database URL named by ``search.storage``; None for the study folder's own study.db."""
        return None if self.plan.settings.storage is None else self.url

    @classmethod
    def open(cls, config: ExperimentConfig, plan: SearchPlan, study_dir: Path, token: str,
             log: Callable[[str], None]) -> "StageRunner":
        settings = plan.settings
        url = storage_url(study_dir, settings.storage)
        storage = open_checked_storage(url, settings.heartbeat_interval, settings.grace_period)
        database_lock = None
        try:
            database_lock = DatabaseLock.acquire(url, settings.name, token, os.getpid())
            (study_dir / "trials").mkdir(parents=True, exist_ok=True)
            (study_dir / SEARCH_META).write_text(json.dumps(search_meta(settings.name, settings.storage), indent=1) + "\n")
            backend = make_backend(settings.backend, settings.workers, address=settings.address, device=config.device,
                                   ray_options=settings.ray.options(), devices=settings.devices)
            threads = config.threads or backend.threads_per_trial()
            trial_config = redact_config({**config.to_dict(), "threads": threads})
            progress = Progress(log, trackers(settings.mlflow_uri, settings.name, log))
        except BaseException:
            if database_lock is not None:
                database_lock.release()
            close_storage(storage)
            raise
        exclusive = settings.storage is None or database_lock is not None
        return cls(plan, study_dir, url, storage, backend, trial_config, threads, bool(config.threads), token,
                   exclusive, database_lock, progress, log)

    def close(self) -> None:
        """Stop the backend, then give the search's lock on its server back and close the database."""
        try:
            self.backend.close()
        finally:
            try:
                if self.database_lock is not None:
                    self.database_lock.release()
            finally:
                close_storage(self.storage)

    def stage_config(self, budget: dict, where: str) -> dict:
        return apply_budget(self.trial_config, budget, where)

    def stored_path(self, path: str | None) -> str | None:
        return path_in_study(self.study_dir, path)

    def trial_threads(self, remaining: int) -> int | None:
        """The threads each trial of a stage gets while ``remaining`` trials are still to finish."""
        return self.threads if self.config_threads else self.backend.threads_per_trial(at_once=remaining)

    def run(self, study: optuna.Study, stage: str, *, n_target: int, objectives: ObjectiveSet, values: dict,
            evaluate_test: bool, distributions: dict, only_enqueued: bool = False,
            early_stop: StopRule | None = None) -> None:
        """Run trials of one stage until ``n_target`` have finished; with ``early_stop``, each trial
        is judged against the stage's completed trials as they are when it starts."""
        remaining = n_target - sum(1 for t in study.get_trials(deepcopy=False) if is_finished(t))
        threads = self.trial_threads(remaining)

        def make_spec(trial) -> WorkerSpec:
            evidence = None if early_stop is None else stop_evidence(study.get_trials(deepcopy=False), objectives, early_stop)
            return WorkerSpec(
                stage=stage, number=trial.number, params=dict(trial.params), config={**values, "threads": threads},
                trial_dir=str((self.study_dir / "trials" / f"{stage}-{trial.number}").resolve()),
                evaluate_test=evaluate_test, trial_function=self.plan.settings.trial_function,
                threads=threads, sys_path=tuple(sys.path), early_stop=evidence,
            )

        drive(study, stage=stage, n_target=n_target, distributions=distributions, make_spec=make_spec,
              backend=self.backend, objectives=objectives, token=self.token, progress=self.progress,
              heartbeat_interval=self.plan.settings.heartbeat_interval, only_enqueued=only_enqueued,
              exclusive=self.exclusive, stored_path=self.stored_path, log=self.log)


# ---------------------------------------------------------------- the stages
def run_flash_stage(stages: StageRunner, identity: dict, warm: WarmStart | None = None) -> tuple[optuna.Study, dict]:
    """The sampler's trials on the short budget, after the warm start's (``search.warm_start``);
    returns the study and the split with its article titles."""
    plan, settings = stages.plan, stages.plan.settings
    values = stages.stage_config(plan.flash_budget, "search.flash.budget")
    # seeded by how far the study got, so that a resumed run draws new random points
    # instead of replaying the first run's (which dedupe would then have to move)
    earlier = load_stage(stages.storage, settings.name, FLASH)
    already = 0 if earlier is None else len(earlier.get_trials(deepcopy=False))
    sampler = make_sampler(settings.sampler, settings.seed + already, settings.n_startup_trials, dedupe=settings.dedupe,
                           gp_after=settings.gp_after, gp_window=settings.gp_window)
    flash = open_study(stages.storage, settings.name, FLASH, plan.flash_objectives, sampler=sampler,
                       space=plan.space.to_dict(), distributions=plan.space.distributions(),
                       attrs={"config": values, "split": plan.split, "budget": plan.flash_budget,
                              IDENTITY_ATTR: identity})
    enqueue_warm_start(flash, warm, stages.log)
    done = sum(1 for t in flash.get_trials(deepcopy=False) if is_finished(t))
    stages.log(f"[flash] {settings.flash.n_trials} trials wanted, {done} finished already; sampler {settings.sampler}, "
               f"backend {stages.backend.name} x{stages.backend.capacity}, {stages.threads or 'default'} thread(s) per trial")
    if plan.early_stop is not None:
        stages.log(f"[flash] early stopping on {plan.flash_objectives.metric_names[0]}: {plan.early_stop}")
    if done < settings.flash.n_trials:
        label_windows_first(stages, values)
        record_teacher_latency(stages, flash, {**values, "threads": stages.trial_threads(settings.flash.n_trials - done)})
    stages.run(flash, FLASH, n_target=settings.flash.n_trials, objectives=plan.flash_objectives, values=values,
               evaluate_test=settings.flash.evaluate_test, distributions=plan.space.distributions(),
               early_stop=plan.early_stop)
    split = plan.split
    found = found_split(flash.get_trials(deepcopy=False), stages.study_dir)
    if found:
        split = {**split, "articles": found}
        flash.set_user_attr("split", split)
    return flash, split


def label_windows_first(stages: StageRunner, values: dict) -> None:
    """The teacher's logits, once, on every core of this machine, before the first trials read them.

    Only for the built-in trial on this machine's workers: a Ray cluster's workers have their own
    caches, and a user's trial function may have no teacher at all.
    """
    if stages.backend.name not in ("inline", "local") or stages.plan.settings.trial_function != DEFAULT_TRIAL_FUNCTION:
        return
    prepare(build_section(ExperimentConfig, {**values, "threads": None}), teacher_logits=True, log=stages.log)


def record_teacher_latency(stages: StageRunner, flash: optuna.Study, values: dict) -> None:
    """The teacher's latency, once per study, on the flash study (``Attr.TEACHER_LATENCY``): timed
    with the students' ``[latency]`` settings on a flash trial's threads (``values``), so the report
    shows each student's latency as a fraction of it. Only where the trials run on this machine
    (a Ray cluster's workers are other machines) and for the built-in trial; a resumed study keeps
    its first figure."""
    if (Attr.TEACHER_LATENCY in flash.user_attrs or stages.backend.name not in ("inline", "local")
            or stages.plan.settings.trial_function != DEFAULT_TRIAL_FUNCTION):
        return
    measured = teacher_latency(build_section(ExperimentConfig, values), log=stages.log)
    if measured is not None:
        flash.set_user_attr(Attr.TEACHER_LATENCY, measured)


def stop_evidence(trials: list[FrozenTrial], objectives: ObjectiveSet, rule: StopRule, *,
                  learning: str | None = None, key: str | None = None) -> StopEvidence:
    """What a flash trial starting now is judged against (:mod:`search.early_stop`): the objective
    values of the completed feasible trials and the learning objective's curves of all completed ones.

    ``learning`` (default: the first objective) and its curve ``key`` (default: ``best_<metric>``
    when the curves record it) are chosen by ``benchmarks/early_stop_replay.py``'s flags."""
    complete = [t for t in stored_trials(trials, objectives) if t.complete]
    learning = learning or objectives.metric_names[0]
    key = key or curve_key(complete, learning)
    position = objectives.metric_names.index(learning)
    curves = tuple(CompletedCurve(tuple(points), t.objective_values[position])
                   for t in complete if (points := progress_points(t, key)))
    completed = tuple(t.objective_values for t in feasible_trials(complete, objectives))
    return StopEvidence(objectives, learning, key, rule, completed, curves)


def select_candidates(trials: list[FrozenTrial], objectives: ObjectiveSet, k: int) -> list[StoredTrial]:
    """The k flash trials to run with the full budget (see the module docstring); a stopped
    (PRUNED) trial never is one. Feasible is what :func:`search.results.classify` says."""
    if k <= 0:
        return []
    complete = [t for t in stored_trials(trials, objectives) if t.complete]
    feasible = feasible_trials(complete, objectives)
    chosen = [t for _, t in ranked(feasible, objectives)][:k]
    if len(chosen) < k:
        ids = {t.number for t in chosen}
        rest = [t for t in complete if t.number not in ids]

        def shortfall(t: StoredTrial) -> float:
            constraints = objectives.constraints(t.metrics)
            return sum(max(0.0, v) for v in constraints.values())

        order = {t.number: i for i, (_, t) in enumerate(ranked(rest, objectives))}
        chosen += sorted(rest, key=lambda t: (shortfall(t), order[t.number]))[: k - len(chosen)]
    return chosen


def run_regular_stage(stages: StageRunner, candidates: list[StoredTrial], split: dict,
                      identity: dict) -> optuna.Study | None:
    """The candidates again on the full budget (enqueued: the sampler is never asked); None when top_k is 0."""
    plan, settings = stages.plan, stages.plan.settings
    if settings.regular.top_k <= 0:
        return None
    values = stages.stage_config(plan.regular_budget, "search.regular.budget")
    regular = open_study(stages.storage, settings.name, REGULAR, plan.objectives,
                         sampler=optuna.samplers.RandomSampler(seed=settings.seed), space=plan.space.to_dict(),
                         attrs={"config": values, "split": split, "budget": plan.regular_budget,
                                IDENTITY_ATTR: identity})
    n_target = enqueue_candidates(regular, candidates)
    stages.log(f"[regular] {len(candidates)} flash candidate(s) {[t.number for t in candidates]} with the full budget")
    stages.run(regular, REGULAR, n_target=n_target, objectives=plan.objectives, values=values, evaluate_test=True,
               distributions=plan.space.distributions(), only_enqueued=True)
    return regular


def stop_if_every_trial_failed(study: optuna.Study, stage: str, objectives: ObjectiveSet, next_stage: str,
                               study_dir: Path) -> None:
    """Stop the search (``StageFailure``) when every finished trial of ``stage`` failed for one
    reason (``search.results.common_failure``): the next stage would spend its budget on the same."""
    common = common_failure(stored_trials(study.get_trials(deepcopy=False), objectives), objectives)
    if common is None:
        return
    count, failure = common
    reason = " ".join(((failure.reason or "").splitlines() or [""])[0].split())[:240]
    raise StageFailure(f"every {stage} trial failed ({failure.kind} {count}), all for one reason: {reason}; the "
                       f"search stopped before the {next_stage} stage (the trials are kept: paretodistill status --study {study_dir})")


def run_baseline_stage(stages: StageRunner, split: dict, identity: dict) -> None:
    """The reference student, once, on the regular budget."""
    plan, settings, baseline = stages.plan, stages.plan.settings, stages.plan.baseline
    if baseline is None:
        return
    values = stages.stage_config(plan.regular_budget, "search.regular.budget")
    study = open_study(stages.storage, settings.name, BASELINE, plan.objectives,
                       sampler=optuna.samplers.RandomSampler(seed=settings.seed),
                       attrs={"config": values, "split": split, "baseline": baseline.name,
                              "baseline_params": baseline.params, IDENTITY_ATTR: identity})
    if not any(is_finished(t) or not t.state.is_finished() for t in study.get_trials(deepcopy=False)):
        study.enqueue_trial(baseline.params, user_attrs={Attr.BASELINE: baseline.name})
    stages.log(f"[baseline] {baseline.name}: {baseline.params or '(the config as it is)'}")
    stages.run(study, BASELINE, n_target=1, objectives=plan.objectives, values=values, evaluate_test=True,
               distributions=baseline_distributions(baseline.params, plan.space.distributions()), only_enqueued=True)


def write_pareto(stages: StageRunner, candidates: list[StoredTrial], split: dict) -> dict:
    plan = stages.plan
    pareto = build_pareto(stages.storage, plan.settings.name, plan.objectives, plan.flash_objectives, candidates,
                          split, stages.shared_url, early_stop=plan.early_stop)
    path = stages.study_dir / "pareto.json"
    path.write_text(json.dumps(pareto, indent=1, default=str) + "\n")
    stages.progress.pareto_written(path)
    stages.log(f"wrote {path}: frontier of {len(pareto['frontier'])} ({pareto['frontier_stage']} stage), "
               f"flash/regular Spearman {pareto['flash_regular_spearman']}")
    return pareto


# ---------------------------------------------------------------- helpers of the stages
def found_split(trials: list[FrozenTrial], study_dir: Path) -> dict | None:
    """The ``split.json`` a trial wrote (its trial folder or checkpoint), if any."""
    for t in trials:
        for recorded in (t.user_attrs.get(Attr.TRIAL_DIR), t.user_attrs.get(Attr.CHECKPOINT)):
            folder = resolve_in_study(study_dir, recorded)
            if folder and (folder / "split.json").is_file():
                try:
                    return json.loads((folder / "split.json").read_text())
                except (OSError, ValueError) as error:
                    logging.getLogger("paretodistill.search").warning("%s/split.json unreadable: %s", folder, error)
                    continue
    return None


def baseline_distributions(params: dict, space_distributions: dict[str, BaseDistribution]) -> dict:
    """The space's distribution where it holds the baseline's value, else a one-value categorical."""
    result = {}
    for name, value in params.items():
        dist = space_distributions.get(name)
        result[name] = dist if dist is not None and contains(dist, value) else CategoricalDistribution([value])
    return result


def enqueue_candidates(regular: optuna.Study, candidates: list[StoredTrial]) -> int:
    """Enqueue candidates not yet run (or whose run was interrupted); the number of trials to finish."""
    present, finished_ids = set(), set()
    for t in stored_trials(regular.get_trials(deepcopy=False)):
        if t.finished:
            finished_ids.add(t.flash_trial)
            present.add(t.flash_trial)
        elif not t.state.is_finished():  # RUNNING (another coordinator) or WAITING
            present.add(t.flash_trial)
    for t in candidates:
        if t.number not in present:
            regular.enqueue_trial(dict(t.params), user_attrs={Attr.FLASH_TRIAL: t.number, Attr.FLASH_METRICS: t.metrics})
    return len(finished_ids | {t.number for t in candidates})
