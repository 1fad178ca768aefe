"""What the coordinator itself costs per trial as a study grows to hundreds of trials.

Runs the real search (``run_search``: the flash stage's loop, the inline backend, a SQLite
``study.db``, the ``cpu`` space preset) with a trial function that returns at once with plausible
metrics and a curve (``tests/search_fakes.py:fake_trial``), so everything measured is the
coordinator's: the sampler's suggestion (``ask``), the tell (``record_result``: values, user
attributes, curve), and the rest of each turn (owner and folder attributes, heartbeats, the
tally and frontier of the progress line, the interrupted-trial check). Torch and BLAS run on one
thread, as in a search whose cores go to the trials.

    python benchmarks/coordinator_scale.py --sampler gp --trials 500 --windows 1-50,181-200,481-500 --fill random
    python benchmarks/coordinator_scale.py --sampler gp-window --trials 500 --windows 1-50,181-200,481-500 \
        --fill random --keep runs/coordinator-500

``--fill random``: trials outside the windows are proposed by Optuna's random sampler, unwrapped
(recorded through the same path), so that the GP's cost at 500 trials is measured without spending
hours on the trials before; the GP fits every finished trial either way, so its cost at trial n does
not depend on who proposed the earlier ones. ``--keep DIR`` keeps the study folder (to time
``paretodistill status`` and ``report`` on it). Prints a markdown table: per window, the median and
90th percentile (seconds per trial) of ask, tell, the rest, and their sum, plus the trial function's own time.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from paretodistill.config import load_config  # noqa: E402
from paretodistill.search import runner  # noqa: E402
from paretodistill.search.samplers import SAMPLER_FACTORIES  # noqa: E402
from paretodistill.search.stages import run_search  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # search_fakes

PARTS = ("ask", "tell", "rest", "coordinator", "trial")


class Timings:
    """Per flash trial number: seconds in each part of the coordinator's turn."""

    def __init__(self):
        self.by_trial: dict[int, dict[str, float]] = {}
        self.stage = None
        self.turn_started = None

    def add(self, number: int, part: str, seconds: float) -> None:
        entry = self.by_trial.setdefault(number, dict.fromkeys(PARTS, 0.0))
        entry[part] += seconds


def instrument(timings: Timings, windows: list[range], fill: str | None, seed: int) -> None:
    """Wrap the loop's ask, tell, submit and record so that each turn's time is split into parts."""
    real_ask, real_record_result = runner.ask, runner.record_result
    real_start, real_record, real_execute = runner._Loop.start_trials, runner._Loop.record, runner.execute_spec
    fill_sampler = SAMPLER_FACTORIES[fill](seed, 1, 0, 1) if fill else None  # unwrapped: as cheap as it gets
    state = {"sampler": None, "ask": 0.0, "tell": 0.0, "trial": 0.0}

    def ask(study, distributions):
        number = len(study.get_trials(deepcopy=False)) + 1  # 1-based, as the windows are
        state["sampler"] = state["sampler"] or study.sampler
        measured = any(number in w for w in windows)
        study.sampler = state["sampler"] if measured or fill_sampler is None else fill_sampler
        started = time.perf_counter()
        trial = real_ask(study, distributions)
        state["ask"] = time.perf_counter() - started
        return trial

    def record_result(study, trial, result, objectives, **kwargs):
        started = time.perf_counter()
        frozen = real_record_result(study, trial, result, objectives, **kwargs)
        state["tell"] = time.perf_counter() - started
        return frozen

    def execute_spec(spec, **kwargs):
        started = time.perf_counter()
        payload = real_execute(spec, **kwargs)
        state["trial"] = time.perf_counter() - started
        return payload

    def start_trials(loop):
        if loop.stage != "flash":
            return real_start(loop)
        started = time.perf_counter()
        keys = set(loop.running)
        real_start(loop)
        for number in set(loop.running) - keys:  # inline: the trial ran inside submit
            total = time.perf_counter() - started
            timings.add(number + 1, "ask", state["ask"])
            timings.add(number + 1, "trial", state["trial"])
            timings.add(number + 1, "rest", total - state["ask"] - state["trial"])

    def record(loop, key, payload):
        if loop.stage != "flash":
            return real_record(loop, key, payload)
        started = time.perf_counter()
        real_record(loop, key, payload)
        total = time.perf_counter() - started
        timings.add(key + 1, "tell", state["tell"])
        timings.add(key + 1, "rest", total - state["tell"])

    runner.ask, runner.record_result, runner.execute_spec = ask, record_result, execute_spec
    runner._Loop.start_trials, runner._Loop.record = start_trials, record


def parse_windows(text: str) -> list[range]:
    windows = []
    for part in text.split(","):
        low, high = (int(x) for x in part.split("-"))
        windows.append(range(low, high + 1))
    return windows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def table(timings: Timings, windows: list[range], sampler: str) -> str:
    lines = [f"| sampler | trials | {' | '.join(f'{p} median / p90 (s)' for p in PARTS)} |",
             "|---|---|" + "---|" * len(PARTS)]
    for window in windows:
        rows = [timings.by_trial[n] for n in window if n in timings.by_trial]
        for row in rows:
            row["coordinator"] = row["ask"] + row["tell"] + row["rest"]
        if not rows:
            continue
        cells = [f"{statistics.median(r[p] for r in rows):.3f} / {percentile([r[p] for r in rows], 0.9):.3f}"
                 for p in PARTS]
        lines.append(f"| {sampler} | {window.start}-{window.stop - 1} | {' | '.join(cells)} |")
    return "\n".join(lines)


def search_config(sampler: str, trials: int, seed: int):
    teacher = Path(__file__).resolve().parents[1] / "teachers" / "minilm-l6-squad2"  # the space's shape only
    return load_config(base={"teacher": {"path": str(teacher)}, "search": {
        "name": "scale", "sampler": sampler, "seed": seed, "backend": "inline",
        "trial_function": "search_fakes:fake_trial", "thresholds": {"exact": 40.0}, "space_preset": "cpu",
        "flash": {"n_trials": trials}, "regular": {"top_k": 3},
    }})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sampler", default="gp", help="search.sampler (default gp)")
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--windows", default="1-50,151-200,451-500", help="trial numbers (1-based) to report")
    parser.add_argument("--fill", help="a cheap sampler (random) for the trials outside the windows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="the study folder to write and keep (default: a temporary one)")
    parser.add_argument("--json", help="also write every trial's timings here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    windows = parse_windows(args.windows)
    timings = Timings()
    instrument(timings, windows, args.fill, args.seed)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="coordinator-scale-"))
    started = time.perf_counter()
    run_search(search_config(args.sampler, args.trials, args.seed), folder, log=lambda line: None)
    print(f"{args.trials} flash trials ({args.sampler}, fill {args.fill or 'none'}) in "
          f"{time.perf_counter() - started:.0f} s; study folder {folder}")
    print(table(timings, windows, args.sampler))
    if args.json:
        Path(args.json).write_text(json.dumps({"sampler": args.sampler, "fill": args.fill, "trials": timings.by_trial}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
