"""The command line under generated input: config values, damaged data and prediction files, predict's
JSON lines, damaged study databases.

Each generated input goes through ``paretodistill.cli.main`` in this process and must end the way
README "Errors and exit status" promises: an exit status of 0, 1, 2 or 130, no traceback on stderr,
and every input file byte for byte as it was. ``test_the_fuzz_figures`` at the end prints how many
inputs of each kind ran (docs/reliability.md quotes them).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: report_fixtures, search_fakes, conftest
import paretodistill.models.loading  # noqa: E402,F401  (transformers' model classes first, as the commands load them)
import report_fixtures as fx  # noqa: E402
import search_fakes  # noqa: E402,F401  (the config's trial_function resolves to it)
from conftest import article, qa, write_squad  # noqa: E402
from paretodistill.cli import main  # noqa: E402

DOCUMENTED_EXIT_STATUSES = {0, 1, 2, 130}
RUNS: Counter = Counter()  # generated inputs run, by kind
BROKEN: Counter = Counter()  # of which ended otherwise than promised (only under an xfail mark)


def fuzz(examples: int, shrink: bool = True) -> settings:
    """Bounded runs (the file stays under a minute), the same inputs every run (figures that can be quoted),
    no example database written into the repository.
    ``shrink=False``: report the first failing input as generated (shrinking a slow failure takes minutes)."""
    phases = tuple(Phase) if shrink else (Phase.explicit, Phase.reuse, Phase.generate)
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True, phases=phases,
                    report_multiple_bugs=shrink,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

CONTEXT = "the river thames flows through london . paris is the capital of france ."
SEARCH_CONFIG = """
[search]
name = "t"
sampler = "random"
seed = 1
backend = "inline"
trial_function = "search_fakes:fake_trial"
thresholds = {}
[search.space]
num_layers = {type = "int", low = 1, high = 4}
learning_rate = {type = "float", low = 1e-5, high = 1e-3, log = true}
[search.flash]
n_trials = 2
budget = {"training.max_steps" = 10}
[search.regular]
top_k = 1
"""


# ---------------------------------------------------------------- the harness
def _digests(paths) -> dict[str, str]:
    """Every input file's sha256. Left out: SQLite's ``-shm`` file (the write-ahead log's shared index,
    which any reader rebuilds) and an empty ``-wal`` file (SQLite makes and removes it as connections
    come and go; empty, it holds none of the study)."""
    files = [f for p in map(Path, paths) for f in ([p] if p.is_file() else sorted(p.rglob("*")))
             if f.is_file() and not f.name.endswith("-shm") and not (f.name.endswith("-wal") and f.stat().st_size == 0)]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def run_cli(kind: str, argv: list[str], inputs, stdin: bytes | None = None) -> tuple[int, str]:
    """``main(argv)`` as the shell would run it; asserts the documented ending and untouched inputs."""
    before = _digests(inputs)
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as stop:  # argparse's own usage errors
                code = stop.code if isinstance(stop.code, int) else 2
    finally:
        sys.stdin = saved_stdin
    RUNS[kind] += 1
    try:
        assert "Traceback" not in err.getvalue(), err.getvalue()
        assert code in DOCUMENTED_EXIT_STATUSES, (code, err.getvalue())
        if code == 2:
            assert err.getvalue().strip().splitlines()[-1].startswith("paretodistill "), err.getvalue()
        assert _digests(inputs) == before, "an input file changed"
    except AssertionError:
        BROKEN[kind] += 1
        raise
    return code, err.getvalue()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def squad_file(work) -> Path:
    return write_squad(work / "d.json", [
        article("T", CONTEXT, [qa("q1", "where does the thames flow ?", [("london", 31)]),
                               qa("q2", "what is the capital of rome ?")]),
        article("U", "hastings was in 1066 .", [qa("q3", "when was hastings ?", [("1066", 16)])]),
    ])


@pytest.fixture(scope="module")
def model_dir(work, one_torch_thread) -> Path:
    return fx.tiny_checkpoint(work / "student", seed=1, metrics={
        "na_threshold": -1.5, "data": {"feature_settings": {"max_seq_length": 32, "doc_stride": 8,
                                                           "max_query_length": 16}}})


# ---------------------------------------------------------------- config values
CONFIG_KEYS = [
    "search.seed", "search.sampler", "search.dedupe", "search.workers", "search.heartbeat_interval",
    "search.grace_period", "search.flash.n_trials", "search.regular.top_k", "search.storage", "search.thresholds",
    "search.space.num_layers", "search.flash.budget", "training.learning_rate", "training.max_steps",
    "training.train_batch_size", "training.epochs", "training.warmup_ratio", "distillation.temperature",
    "distillation.soft_weight", "student.num_layers", "student.heads_per_layer", "student.pruning",
    "student.hidden_dropout", "data.fractions", "data.split_seed", "data.features.max_seq_length",
    "data.features.doc_stride", "latency.batch_size", "seed", "cache_dir",
]
TOML_VALUES = st.one_of(
    st.integers(-2**70, 2**70).map(str), st.floats().map(repr), st.booleans().map(lambda b: str(b).lower()),
    st.sampled_from(["nan", "inf", "-inf", "1e309", '"false"', "[]", "{}", "[1, 2]", '{type = "int"}', '""',
                     '"x" = 1', "[[1]]", '"\\ud800"', "0x10", "1_000"]),
    st.text(max_size=20),
)


@fuzz(40)
@given(overrides=st.lists(st.tuples(st.sampled_from(CONFIG_KEYS), TOML_VALUES), min_size=1, max_size=3))
def test_config_values_end_in_one_line_or_a_plan(work, squad_file, overrides):
    """``search`` reads the config, the data and the plan, then stops at the study (a file): a bad
    value must be refused before it, in one line."""
    config, study = work / "search.toml", work / "study-is-a-file"
    config.write_text(SEARCH_CONFIG)
    study.write_text("not a study")
    argv = ["search", "--config", str(config), "--study", str(study), "--data", str(squad_file),
            "--cache-dir", str(work / "cache")]
    for key, value in overrides:
        argv += ["--set", f"{key}={value}"]
    code, err = run_cli("config values", argv, [config, study, squad_file])
    assert code == 2


# ---------------------------------------------------------------- data and prediction files
def _mutations():
    flip = st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                                              min_size=1, max_size=8))
    cut = st.tuples(st.just("truncate"), st.floats(0, 1))
    nest = st.tuples(st.just("nest"), st.sampled_from([1, 100, 5_000, 200_000]))
    field = st.tuples(st.just("field"), st.tuples(st.sampled_from(["id", "question", "context", "answer_start",
                                                                   "text", "title", "version", "is_impossible"]),
                                                  st.one_of(st.none(), st.integers(-5, 500), st.text(max_size=5),
                                                            st.sampled_from(["\ud800", [], {}, 1.5, True]))))
    return st.one_of(flip, cut, nest, field)


def _mutate(raw: bytes, mutation) -> bytes:
    kind, how = mutation
    if kind == "flip":
        data = bytearray(raw)
        for where, byte in how:
            data[int(where * len(data))] = byte
        return bytes(data)
    if kind == "truncate":
        return raw[: int(how * len(raw))]
    if kind == "nest":
        document = json.loads(raw)
        return (b'{"version": "v2.0", "data": ' + b"[" * how + json.dumps(document["data"]).encode()
                + b"]" * how + b"}")
    name, value = how
    document = json.loads(raw)
    first = document["data"][0]["paragraphs"][0]
    places = {"title": document["data"][0], "version": document, "context": first}
    places["answer_start"] = places["text"] = first["qas"][0]["answers"][0]
    target = places.get(name, first["qas"][0])
    target[name] = value
    return json.dumps(document).encode()


@fuzz(40)
@given(mutation=_mutations(), which=st.sampled_from(["data", "predictions"]))
def test_damaged_data_and_prediction_files_given_to_score(work, squad_file, mutation, which):
    predictions = work / "p.json"
    predictions.write_text(json.dumps({"q1": "london", "q2": "", "q3": "1066"}))
    source = {"data": squad_file, "predictions": predictions}[which]
    damaged = work / f"damaged-{which}.json"
    raw = source.read_bytes()
    if mutation[0] == "field" and which == "predictions":
        mutation = ("flip", [(0.5, 0x5b)])  # a field change means the data file's fields
    damaged.write_bytes(_mutate(raw, mutation) if which == "data" or mutation[0] != "nest"
                        else b"[" * mutation[1] + b"]" * mutation[1])
    files = {"data": squad_file, "predictions": predictions, which: damaged}
    run_cli(f"damaged {which} files (score)", ["score", str(files["data"]), str(files["predictions"])],
            [squad_file, predictions, damaged])


@fuzz(40)
@given(mutation=_mutations())
def test_damaged_data_files_given_to_data_loading(work, squad_file, model_dir, mutation):
    """``predict --data`` reads the file as every command does (``data.squad``), before any model."""
    damaged = work / "damaged-read.json"
    damaged.write_bytes(_mutate(squad_file.read_bytes(), mutation))
    run_cli("damaged data files (loading)", ["predict", "--model", str(model_dir), "--data", str(damaged)],
            [damaged, model_dir])


# ---------------------------------------------------------------- predict's JSON lines
TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["\ud800", "x\udfff", "\x00", "\u2028", "é" * 3, " ", ""]),
                 st.integers(), st.none(), st.lists(st.integers(), max_size=2))
IDS = st.one_of(st.sampled_from(["1", "2", "a", 1, 2]), st.text(max_size=4), st.none(), st.booleans(), st.floats())
ROW = st.fixed_dictionaries({}, optional={"id": IDS, "question": TEXT, "context": TEXT, "extra": TEXT})
LINE = st.one_of(
    ROW.map(lambda row: json.dumps(row).encode()),
    ROW.map(lambda row: json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
    st.sampled_from([b"", b"[" * 100_000, b'{"question": "q", "context": "c"', b"\xef\xbb\xbf{}", b"null"]),
)


@fuzz(60)
@given(lines=st.lists(LINE, min_size=0, max_size=5))
def test_generated_predict_input_lines(work, model_dir, lines):
    run_cli("predict input lines", ["predict", "--model", str(model_dir)], [model_dir],
            stdin=b"\n".join(lines) + b"\n")


@fuzz(20)
@given(question=TEXT.filter(lambda v: isinstance(v, str)), context=TEXT.filter(lambda v: isinstance(v, str)))
def test_generated_predict_arguments(model_dir, question, context):
    run_cli("predict --question/--context", ["predict", "--model", str(model_dir), "--question", question,
                                             "--context", context], [model_dir])


# ---------------------------------------------------------------- damaged study files
@pytest.fixture(scope="module")
def small_study(work, squad_file) -> Path:
    """A real study folder: a fake search of two flash trials and one regular trial."""
    config = work / "study.toml"
    config.write_text(SEARCH_CONFIG)
    study = work / "small-study"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["search", "--config", str(config), "--study", str(study), "--data", str(squad_file),
                     "--cache-dir", str(work / "cache")]) == 0
    return study


@fuzz(25, shrink=False)
@given(file=st.sampled_from(["study.db", "search.json", "pareto.json"]), mutation=st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                                        min_size=1, max_size=16)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
))
def test_damaged_study_files_given_to_status(small_study, file, mutation):
    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder) / "s"
        shutil.copytree(small_study, study)
        target = study / file
        if target.exists():
            target.write_bytes(_mutate(target.read_bytes(), mutation))
        run_cli(f"damaged {file} (status)", ["status", "--study", str(study)], [study])


def test_the_fuzz_figures(capsys):
    """How many generated inputs ran, by kind, and how many broke the promise (run with the tests above)."""
    broken = ", ".join(f"{kind} {n}" for kind, n in sorted(BROKEN.items())) or "none"
    with capsys.disabled():
        print(f"\nfuzzed command line: {sum(RUNS.values())} generated inputs ("
              + ", ".join(f"{kind} {n}" for kind, n in sorted(RUNS.items()))
              + f"); ended otherwise than promised (a traceback, an undocumented status or a changed input): {broken}")
