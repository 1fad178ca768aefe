"""benchmarks/sampler_replay.py on a small complete table with hand-checked hypervolumes."""

import importlib.util
import itertools
import re
import shlex
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "sampler_replay.py"
_spec = importlib.util.spec_from_file_location("sampler_replay", _PATH)
replay_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(replay_module)

SPACE = {"layers": CategoricalDistribution([1, 2, 3]), "soft": CategoricalDistribution([0.0, 1.0]),
         "hard": CategoricalDistribution([0.0, 1.0])}


def _table_study(drop=(), storage=None, name=None):
    """12 points: soft = hard = 0 fails; exact = 50 + 5 * layers (+1 with both losses); size = layers."""
    study = optuna.create_study(directions=["maximize", "minimize"], storage=storage, study_name=name)
    study.set_user_attr("objectives", ["exact:maximize", "num_parameters:minimize"])
    study.set_user_attr("thresholds", {"exact": ">= 50"})
    for layers, soft, hard in itertools.product([1, 2, 3], [0.0, 1.0], [0.0, 1.0]):
        params = {"layers": layers, "soft": soft, "hard": hard}
        if params in drop:
            continue
        if soft == hard == 0.0:
            trial = optuna.trial.create_trial(params=params, distributions=SPACE, state=TrialState.FAIL,
                                              user_attrs={"failure_kind": "error", "failure_reason": "empty loss"})
        else:
            metrics = {"exact": 50.0 + 5 * layers + (soft * hard), "num_parameters": float(layers)}
            trial = optuna.trial.create_trial(params=params, distributions=SPACE, values=list(metrics.values()),
                                              user_attrs={"metrics": metrics})
        study.add_trials([trial])
    return study


def _table(study):
    objectives = replay_module.ObjectiveSet.from_search({"objectives": study.user_attrs["objectives"],
                                                         "thresholds": study.user_attrs["thresholds"]})
    return replay_module.Table(study.get_trials(), dict(SPACE), objectives)


def test_a_complete_table_answers_every_proposal_exactly_and_the_whole_grid_scores_100(tmp_path):
    table = _table(_table_study())
    assert table.grid_size() == 12 and len(table.rows) == 12
    points = table.feasible_points()
    ref = replay_module.reference_point(points, table.objectives)
    assert ref == pytest.approx([55.0 - 0.11, 3.0 + 0.02])  # worst exact 55, worst size 3, 1 % of each range
    best = replay_module.hypervolume(points, ref, table.objectives)
    # front: (56, 1), (61, 2), (66, 3) -> rectangles against (54.89, 3.02)
    assert best == pytest.approx((56 - 54.89) * 2.02 + (61 - 56) * 1.02 + (66 - 61) * 0.02)
    run = replay_module.replay(table, "random", seed=0, budget=12, startup=4, ref=ref)
    assert run["misses"] == 0 and run["failures"] == 3  # the 3 soft = hard = 0 points, each once (no repeats)
    assert run["curve"] == sorted(run["curve"]) and run["curve"][-1] == pytest.approx(best)
    text = replay_module.markdown({"random": [run]}, 12, best, [10, 12])
    to90 = next(i + 1 for i, hv in enumerate(run["curve"]) if hv >= 0.9 * best)
    assert f"| random | {100 * run['curve'][9] / best:.1f} | 100.0 | {to90} (1/1 seeds) | 3.0 | {run['moved']:.1f} |" in text
    replay_module.write_plot({"random": [run]}, best, str(tmp_path / "hv.html"), title="t")
    assert "hypervolume (% of the whole table)" in (tmp_path / "hv.html").read_text()


def test_a_missing_point_gets_its_nearest_neighbour():
    table = _table(_table_study(drop=[{"layers": 3, "soft": 1.0, "hard": 1.0}]))
    result, exact = table.lookup({"layers": 3, "soft": 1.0, "hard": 0.0})
    assert exact and result.metrics["exact"] == 65.0
    result, exact = table.lookup({"layers": 3, "soft": 1.0, "hard": 1.0})
    assert not exact and result.metrics["exact"] == 61.0  # (2, 1, 1): half a layer-range away; a loss weight is a whole one


def test_ordinal_space_is_the_same_grid_in_order_and_still_answers_exactly():
    space = replay_module.as_ordinal({**SPACE, "label": CategoricalDistribution(["a", "b"]),
                                      "uneven": CategoricalDistribution([1, 2, 4])})
    assert space["layers"] == replay_module.IntDistribution(1, 3, step=1)
    assert space["soft"] == replay_module.FloatDistribution(0.0, 1.0, step=1.0)
    assert isinstance(space["label"], CategoricalDistribution) and isinstance(space["uneven"], CategoricalDistribution)
    study = _table_study()
    objectives = replay_module.ObjectiveSet.from_search({"objectives": study.user_attrs["objectives"],
                                                         "thresholds": study.user_attrs["thresholds"]})
    table = replay_module.Table(study.get_trials(), replay_module.as_ordinal(dict(SPACE)), objectives)
    assert table.grid_size() == 12
    ref = replay_module.reference_point(table.feasible_points(), objectives)
    run = replay_module.replay(table, "tpe", seed=1, budget=12, startup=4, ref=ref)
    assert run["misses"] == 0 and run["failures"] == 3


def test_log_uneven_makes_uneven_numbers_a_log_range_answered_by_the_nearest_point_in_log_scale():
    widths = {"width": CategoricalDistribution([64, 128, 384])}
    space = replay_module.as_ordinal(widths, log_uneven=True)
    assert space["width"] == replay_module.IntDistribution(64, 384, log=True)
    objectives = replay_module.ObjectiveSet.from_search({"objectives": ["exact:maximize", "num_parameters:minimize"],
                                                         "thresholds": {}})
    study = optuna.create_study(directions=["maximize", "minimize"])
    for width in (64, 128, 384):
        metrics = {"exact": 50.0 + width / 64, "num_parameters": float(width)}
        study.add_trial(optuna.trial.create_trial(params={"width": width}, distributions=widths,
                                                  values=list(metrics.values()), user_attrs={"metrics": metrics}))
    table = replay_module.Table(study.get_trials(), space, objectives)
    assert table.grid_size() is None  # no longer a grid
    result, exact = table.lookup({"width": 250})  # nearer 128 in linear scale, nearer 384 in log scale
    assert result.params == {"width": 384} and not exact
    assert table.lookup({"width": 128})[1] is True
    with pytest.raises(SystemExit):
        replay_module.main(["--synthetic", "--log-uneven"])


def test_the_median_failure_experiment_changes_only_what_failed_trials_show():
    from paretodistill.search.samplers import sampler_view_of

    study = _table_study()
    objectives = replay_module.ObjectiveSet.from_search({"objectives": study.user_attrs["objectives"],
                                                         "thresholds": study.user_attrs["thresholds"]})
    worst = {t.number: t for t in sampler_view_of(study.get_trials(), objectives)}
    median = {t.number: t for t in replay_module._MedianFailureView(study, objectives).get_trials()}
    failed = [t.number for t in study.get_trials() if t.state == TrialState.FAIL]
    assert len(failed) == 3
    for number in failed:
        assert worst[number].values == [55.0, 3.0]  # the worst exact and the largest size seen
        assert median[number].values == [60.0, 2.0]  # the 5th of 55, 55, 56, 60, 60, 61, 65, 65, 66; sizes 1-3
        assert median[number].constraints == worst[number].constraints  # still infeasible: "failed" violated
    assert all(median[n].values == worst[n].values for n in worst if n not in failed)


def test_better_than_the_baseline_means_strictly_better_on_every_objective():
    directions = ["maximize", "minimize"]
    assert replay_module.better_in_every([61.0, 2.0], [57.0, 2.5], directions)
    assert not replay_module.better_in_every([61.0, 2.5], [57.0, 2.5], directions)  # as large: dominates, not better
    assert not replay_module.better_in_every([56.0, 1.0], [57.0, 2.5], directions)
    assert replay_module.better_in_every([56.0, 1.0], [57.0, 2.5], ["minimize", "minimize"])


def test_trials_to_three_students_better_than_the_baseline():
    table = _table(_table_study())
    ref = replay_module.reference_point(table.feasible_points(), table.objectives)
    baseline, where = replay_module.baseline_point("exact=57,num_parameters=2.5", {}, table.objectives)
    assert baseline == [57.0, 2.5] and where == "--baseline"
    run = replay_module.replay(table, "random", seed=0, budget=12, startup=4, ref=ref, baseline=baseline)
    # better: 2 layers (size 2 < 2.5) with exact 60 or 61 > 57: (soft, hard) = (1, 0), (0, 1), (1, 1); the whole grid is asked
    assert len(run["better_at"]) == 3 and run["better_at"] == sorted(run["better_at"])
    text = replay_module.markdown({"random": [run]}, 12, 1.0, [12], better_count=3)
    assert "| trials to 3 better than baseline |" in text and f"| {run['better_at'][2]} (1/1 seeds) |" in text
    assert "| > 12 (0/1 seeds) |" in replay_module.markdown({"random": [run]}, 12, 1.0, [12], better_count=4)


def test_tpe_multivariate_is_the_search_s_tpe():
    from paretodistill.search.samplers import make_sampler

    sampler = make_sampler(replay_module.SAMPLER_ALIASES["tpe-multivariate"], seed=0).inner
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._multivariate
    univariate = replay_module.replay_sampler("tpe-univariate", seed=0, startup=4, gp_after=20)
    assert isinstance(univariate.inner, optuna.samplers.TPESampler) and not univariate.inner._multivariate
    staged = replay_module.replay_sampler("tpe-gp", seed=0, startup=4, gp_after=7).inner
    assert staged.switch_after == 7 and isinstance(staged.then, optuna.samplers.GPSampler)


def test_univariate_tpe_replays_a_table():
    table = _table(_table_study())
    ref = replay_module.reference_point(table.feasible_points(), table.objectives)
    run = replay_module.replay(table, "tpe-univariate", seed=0, budget=12, startup=4, ref=ref)
    assert run["misses"] == 0 and run["failures"] == 3 and run["curve"][-1] > 0  # the whole grid, each point once


def test_nsga2_with_a_smaller_population_is_a_replay_sampler_that_replays_a_table():
    """The search's NSGA-II keeps Optuna's population of 50, one random generation within these budgets;
    ``nsga2-N`` is the comparison with N individuals per generation."""
    sampler = replay_module.replay_sampler("nsga2-4", seed=0, startup=4, gp_after=20).inner
    assert isinstance(sampler, optuna.samplers.NSGAIISampler) and sampler._population_size == 4
    table = _table(_table_study())
    ref = replay_module.reference_point(table.feasible_points(), table.objectives)
    run = replay_module.replay(table, "nsga2-4", seed=0, budget=12, startup=4, ref=ref)
    assert run["misses"] == 0 and run["failures"] == 3 and run["curve"][-1] > 0
    with pytest.raises(replay_module.ConfigError, match="nsga2-N needs a population"):
        replay_module.replay_sampler("nsga2-one", seed=0, startup=4, gp_after=20)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_the_replay_counts_the_proposals_moved_off_a_repeat(monkeypatch):
    """A sampler that always proposes the same point has every proposal after its first moved, and the
    wrapper's moves still visit the whole 12-point grid once."""
    from paretodistill.search.samplers import FailureAwareSampler

    always = {"layers": 3, "soft": 1.0, "hard": 1.0}
    monkeypatch.setattr(replay_module, "replay_sampler", lambda kind, seed, startup, gp_after: FailureAwareSampler(
        optuna.samplers.PartialFixedSampler(always, optuna.samplers.RandomSampler(seed=seed)), seed=seed))
    table = _table(_table_study())
    ref = replay_module.reference_point(table.feasible_points(), table.objectives)
    run = replay_module.replay(table, "always", seed=0, budget=12, startup=4, ref=ref)
    assert run["moved"] == 11 and run["failures"] == 3 and run["misses"] == 0


def test_an_exported_table_file_replays_as_the_study_does(tmp_path):
    url = f"sqlite:///{tmp_path / 'table.db'}"
    _table_study(storage=url, name="grid-flash")
    baseline = optuna.create_study(directions=["maximize", "minimize"], storage=url, study_name="grid-baseline")
    metrics = {"exact": 57.0, "num_parameters": 2.5, "f1": 58.0}
    baseline.add_trial(optuna.trial.create_trial(params={}, distributions={}, values=[57.0, 2.5],
                                                 user_attrs={"metrics": metrics, "checkpoint": "trials/baseline-0/checkpoint"}))
    exported = tmp_path / "tables" / "table.json"  # a folder that does not exist yet
    args = ["--budget", "12", "--seeds", "1", "--startup", "4", "--samplers", "random"]
    assert replay_module.main(["--table", url, "--study", "grid-flash", "--export", str(exported),
                               "--out", str(tmp_path / "study.md"), *args]) == 0
    text = exported.read_text()
    assert "checkpoint" not in text and '"format": "paretodistill-table"' in text
    assert replay_module.main(["--table", str(exported), "--out", str(tmp_path / "file.md"), *args]) == 0
    assert "from the baseline study of grid-flash" in (tmp_path / "file.md").read_text()
    assert "(reference ['54.89', '3.02'])" in (tmp_path / "file.md").read_text()

    from_study, from_file = replay_module.load_source(url, "grid-flash"), replay_module.load_source(str(exported), None)
    assert from_file[1] == from_study[1] and from_file[1]["baseline"] == metrics
    for kind in ("random", "tpe-multivariate"):
        runs = []
        for trials, fields in (from_study, from_file):
            table = replay_module.build_table(trials, fields, None, None)
            ref = replay_module.reference_point(table.feasible_points(), table.objectives)
            baseline_values, _ = replay_module.baseline_point(None, fields, table.objectives)
            run = replay_module.replay(table, kind, seed=3, budget=12, startup=4, ref=ref, baseline=baseline_values)
            runs.append({key: value for key, value in run.items() if key != "seconds"})
        assert runs[0] == runs[1] and len(runs[0]["better_at"]) == 3


def test_a_missing_table_or_study_is_one_line_naming_it(tmp_path):
    with pytest.raises(SystemExit, match="no study database here"):
        replay_module.main(["--table", f"sqlite:///{tmp_path / 'absent.db'}", "--study", "grid-flash"])
    url = f"sqlite:///{tmp_path / 'table.db'}"
    _table_study(storage=url, name="grid-flash")
    with pytest.raises(SystemExit, match=r"no study 'grid' in .* \(it has: grid-flash\)"):
        replay_module.main(["--table", url, "--study", "grid"])


# ---------------------------------------------------------------- the documented figures
_DOCS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
_CHECK = re.compile(r"<!-- replay-check: (?P<args>[^>]*) -->\n+(?P<table>(?:\|.*\|\n)+)")


def _documented_checks() -> list[tuple[list[str], list[str]]]:
    """Each ``<!-- replay-check: ARGS -->`` in docs/benchmarks.md with the markdown table under it."""
    return [(shlex.split(m["args"]), m["table"].strip().splitlines()) for m in _CHECK.finditer(_DOCS.read_text())]


def _without_timing(rows: list[str]) -> list[str]:
    """The rows without their last cell, the seconds per trial, which depend on the machine."""
    return [row.rstrip(" |").rsplit("|", 1)[0] for row in rows]


def test_the_docs_hold_replay_checks_on_every_committed_table():
    tables = sorted(p.name for p in (_DOCS.parents[1] / "benchmarks" / "tables").glob("*.json"))
    checked = {Path(args[args.index("--table") + 1]).name for args, _ in _documented_checks()}
    assert tables and set(tables) <= checked


@pytest.mark.parametrize("args, rows", [pytest.param(args, rows, id=Path(args[args.index("--table") + 1]).stem)
                                        for args, rows in _documented_checks()])
def test_a_committed_table_replays_to_the_documented_figures(args, rows, tmp_path, monkeypatch):
    """One torch thread, as the documented runs used (GP proposes the same with two; one is faster on busy cores)."""
    import torch

    monkeypatch.chdir(_DOCS.parents[1])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        replay_module.main(args + ["--out", str(tmp_path / "replay.md")])
    finally:
        torch.set_num_threads(threads)
    produced = (tmp_path / "replay.md").read_text().strip().splitlines()
    assert _without_timing(produced[-len(rows):]) == _without_timing(rows)
