"""optuna-dashboard draws a trial's learning curve: a small search (fake learning trials, the real
search loop), then the dashboard's own WSGI app, called in-process as a browser would, returns each
flash trial's intermediate values at the training steps of its curve, with the curve's figures."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: search_fakes
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_search import _search_config  # noqa: E402

import search_fakes  # noqa: E402,F401  (the trial_function path below resolves)
from paretodistill.search.stages import run_search  # noqa: E402


def _get(app, path: str) -> dict:
    """One GET through the WSGI app, as the dashboard's page asks for its data."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status[0].startswith("200"), (status, body[:300])
    return json.loads(body)


def test_the_dashboard_shows_each_trial_s_learning_curve(tmp_path):
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    config = _search_config(tmp_path, trial_function="search_fakes:learning_trial", flash={"n_trials": 3},
                            regular={"top_k": 1}, baseline=None, thresholds={})
    run_search(config, tmp_path / "s", log=lambda m: None)
    app = optuna_dashboard.wsgi(f"sqlite:///{tmp_path / 's' / 'study.db'}")
    studies = {s["study_name"]: s["study_id"] for s in _get(app, "/api/studies")["study_summaries"]}
    assert set(studies) == {"t-flash", "t-regular"}
    for name, trials_wanted in (("t-flash", 3), ("t-regular", 1)):
        trials = _get(app, f"/api/studies/{studies[name]}")["trials"]
        assert len(trials) == trials_wanted
        for trial in trials:
            final = trial["values"][0]  # exact, the first objective
            steps = [point["step"] for point in trial["intermediate_values"]]
            values = [point["value"] for point in trial["intermediate_values"]]
            assert steps == [1, 2, 3, 4]  # learning_trial's evaluation points, by training step
            assert values == pytest.approx([final - 0.3, final - 0.2, final - 0.1, final])  # its exact at each
