"""A fake study directory, written through Optuna's API with the attributes the search writes.

The report reads only the study directory (``study.db`` + ``pareto.json``), so the tests build one
here instead of running a search: a hand-made set of trials whose classes and table rows are
worked out by hand in the tests, plus (for the page and browser tests) a few dozen generated
trials with curves, failures, a regular stage and a baseline.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

OBJECTIVES_2D = ["exact:maximize", "num_parameters:minimize"]
OBJECTIVES_3D = [*OBJECTIVES_2D, "latency_ms:minimize"]
THRESHOLDS = {"exact": 50.0}
M = 1_000_000

SPACE = {
    "num_layers": IntDistribution(1, 6),
    "heads_per_layer": IntDistribution(1, 12),
    "intermediate_size": CategoricalDistribution([512, 1024, 1536]),
    "learning_rate": FloatDistribution(1e-5, 1e-3, log=True),
    "temperature": FloatDistribution(1.0, 8.0),
    "progressive": CategoricalDistribution([False, True]),
}


@dataclass
class FakeTrial:
    exact: float | None = None
    size: float | None = None  # num_parameters
    latency: float | None = None
    params: dict[str, Any] | None = None
    state: str = "COMPLETE"
    failure_kind: str | None = None
    failure_reason: str | None = None
    failure_step: int | None = None
    test_exact: float | None = None
    checkpoint: str | None = None
    curve: bool = True
    extra_attrs: dict[str, Any] = field(default_factory=dict)


# Flash stage of the hand-made set (objectives exact/num_parameters, threshold exact >= 50).
# Baseline: exact 64, 22M parameters. Classes and table rows are worked out in tests/unit/test_report.py.
HAND_FLASH = [
    FakeTrial(70.0, 20 * M, 9.0, test_exact=68.0),  # 0
    FakeTrial(65.0, 10 * M, 5.0, test_exact=66.0),  # 1
    FakeTrial(60.0, 15 * M, 3.0),  # 2
    FakeTrial(72.0, 30 * M, 14.0, test_exact=71.0),  # 3
    FakeTrial(45.0, 5 * M, 2.0),  # 4
    FakeTrial(state="FAIL", failure_kind="out_of_memory", failure_reason="CUDA out of memory at batch 32", failure_step=12),  # 5
    FakeTrial(68.0, 25 * M, 10.0),  # 6
    FakeTrial(55.0, 8 * M, 4.0, test_exact=54.0),  # 7
    FakeTrial(0.0, 12 * M, 6.0, failure_kind="diverged", failure_reason="loss is nan at step 40", failure_step=40),  # 8
    FakeTrial(65.0, 10 * M, 5.5),  # 9
    FakeTrial(49.9, 1 * M, 1.0),  # 10
    FakeTrial(state="PRUNED"),  # 11
    FakeTrial(state="RUNNING", curve=False),  # 12
]
HAND_BASELINE = FakeTrial(64.0, 22 * M, 8.0, params={"num_layers": 3, "heads_per_layer": 12}, test_exact=63.0)


def params_for(index: int) -> dict[str, Any]:
    """Deterministic parameters of trial ``index`` inside SPACE."""
    rng = random.Random(f"params/{index}")
    return {
        "num_layers": rng.randint(1, 6),
        "heads_per_layer": rng.randint(1, 12),
        "intermediate_size": rng.choice([512, 1024, 1536]),
        "learning_rate": 10 ** rng.uniform(-5, -3),
        "temperature": round(rng.uniform(1.0, 8.0), 3),
        "progressive": rng.choice([False, True]),
    }


def fake_curve(final_exact: float, steps: int = 6, stop_at: int | None = None, seed: int = 0) -> list[dict]:
    """A plausible learning curve ending at ``final_exact`` (cut at ``stop_at`` for failures)."""
    rng = random.Random(seed)
    curve = []
    for i in range(1, steps + 1):
        step = 100 * i
        if stop_at is not None and step > stop_at:
            break
        progress = 1 - math.exp(-1.2 * i)
        exact = round(final_exact * progress / (1 - math.exp(-1.2 * steps)) + rng.uniform(-0.5, 0.5), 3)
        curve.append({
            "step": step,
            "epoch": round(i / steps * 2, 3),
            "loss": round(4.0 * math.exp(-0.5 * i) + 0.8 + rng.uniform(0, 0.05), 4),
            "exact": exact,
            "f1": round(exact + 3.0, 3),
            "HasAns_exact": round(exact - 6.0, 3),
            "NoAns_exact": round(exact + 6.0, 3),
        })
    return curve


def _metrics(t: FakeTrial) -> dict[str, float]:
    metrics: dict[str, float] = {}
    if t.exact is not None:
        metrics.update(
            exact=t.exact, f1=t.exact + 3.0, HasAns_exact=t.exact - 6.0, HasAns_f1=t.exact,
            NoAns_exact=t.exact + 6.0, NoAns_f1=t.exact + 6.0, train_seconds=120.0,
        )
    if t.size is not None:
        metrics["num_parameters"] = int(t.size)
    if t.latency is not None:
        metrics["latency_ms"] = t.latency
    return metrics


def _test_metrics(t: FakeTrial) -> dict[str, float] | None:
    if t.test_exact is None:
        return None
    return {"exact": t.test_exact, "f1": t.test_exact + 3.0, "HasAns_exact": t.test_exact - 6.0,
            "NoAns_exact": t.test_exact + 6.0, "num_parameters": t.size}


def _frozen(t: FakeTrial, index: int, objectives: list[str], stage: str, directory: Path):
    params = t.params if t.params is not None else params_for(index if stage != "regular" else index + 1000)
    distributions = {k: SPACE[k] for k in params if k in SPACE}
    state = TrialState[t.state]
    values = None
    if state == TrialState.COMPLETE:
        metrics = _metrics(t)
        values = [float(metrics.get(spec.split(":")[0], 0.0)) for spec in objectives]
    attrs: dict[str, Any] = {
        "failure_kind": None, "failure_reason": None, "failure_step": None,  # as the search writes them
        "metrics": _metrics(t),
        "curve": fake_curve(t.exact or 30.0, stop_at=t.failure_step, seed=index) if t.curve else [],
        "checkpoint": t.checkpoint,
        "trial_dir": str(directory / "trials" / stage / f"{index:04d}"),
        "test_metrics": _test_metrics(t),
        **t.extra_attrs,
    }
    if t.failure_kind:
        attrs.update(failure_kind=t.failure_kind, failure_reason=t.failure_reason, failure_step=t.failure_step)
    constraints = None
    if state in (TrialState.COMPLETE, TrialState.FAIL):  # the search's constraints: <= 0 feasible
        exact = _metrics(t).get("exact")
        failed = state == TrialState.FAIL or exact is None
        constraints = {"threshold:exact": 1.0 if failed else (50.0 - exact) / 50.0, "failed": 1.0 if failed else -1.0}
    return create_trial(state=state, values=values, params=params, distributions=distributions, user_attrs=attrs,
                        constraints=constraints)


def _dominates(a, b, objectives) -> bool:
    better = False
    for x, y, spec in zip(a, b, objectives):
        maximize = spec.endswith("maximize")
        if (x < y) if maximize else (x > y):
            return False
        if (x > y) if maximize else (x < y):
            better = True
    return better


def write_study(
    directory: str | Path,
    flash: list[FakeTrial],
    regular: list[FakeTrial] | None = None,
    baseline: FakeTrial | None = None,
    *,
    name: str = "study",
    objectives: list[str] = OBJECTIVES_2D,
    thresholds: dict = THRESHOLDS,
    pareto: bool = True,
    split: Any = None,
    teacher_latency: dict | None = None,
) -> Path:
    """Write ``DIR/study.db`` (stages as ``<name>-flash/-regular/-baseline``) and ``DIR/pareto.json``;
    ``teacher_latency``: the flash study's ``Attr.TEACHER_LATENCY`` (None: a study from before it)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{directory / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    split = split if split is not None else {
        "source": "dev-v2.0.json", "seed": 13, "fractions": {"train": 0.6, "validation": 0.2, "test": 0.2},
        "train": ["A", "B", "C"], "validation": ["D"], "test": ["E"],
    }
    config = {"teacher": {"path": "runs/teacher-minilm"}, "search": {"name": name},
              "latency": {"batch_size": 1, "sequence_length": 384, "runtime": "torch", "threads": 2}}
    frontier_entries = []
    for stage, trials in (("flash", flash), ("regular", regular), ("baseline", [baseline] if baseline else None)):
        if trials is None:
            continue
        study = optuna.create_study(
            study_name=f"{name}-{stage}", storage=storage,
            directions=[spec.split(":")[1] for spec in objectives],
        )
        for key, value in (("config", config), ("objectives", objectives), ("thresholds", thresholds),
                           ("stage", stage), ("split", split)):
            study.set_user_attr(key, value)
        if stage == "flash" and teacher_latency is not None:
            study.set_user_attr("teacher_latency", teacher_latency)
        for index, trial in enumerate(trials):
            study.add_trial(_frozen(trial, index, objectives, stage, directory))
        if stage == "baseline":
            continue
        feasible = [
            (t.number, t.values) for t in study.trials
            if t.state == TrialState.COMPLETE and not t.user_attrs.get("failure_kind")
            and all(t.user_attrs["metrics"].get(k, -math.inf) >= float(str(v).lstrip(">= ")) for k, v in thresholds.items())
        ]
        for number, values in feasible:
            if not any(_dominates(other, values, objectives) for _, other in feasible):
                t = study.trials[number]
                frontier_entries.append({
                    "stage": stage, "trial_number": number, "params": t.params,
                    "validation": t.user_attrs["metrics"], "test": t.user_attrs["test_metrics"],
                    "checkpoint": t.user_attrs["checkpoint"],
                })
    if pareto:
        document = {
            "objectives": objectives,
            "thresholds": thresholds,
            "split": split,
            "frontier": [e for e in frontier_entries if e["stage"] == ("regular" if regular else "flash")],
            "baseline": None if baseline is None else {
                "params": baseline.params or {}, "validation": _metrics(baseline), "test": _test_metrics(baseline),
            },
            "flash_regular_spearman": 0.8 if regular else None,
            "counts": {"flash": len(flash), "regular": len(regular or [])},
            "teacher_latency": teacher_latency,
        }
        (directory / "pareto.json").write_text(json.dumps(document, indent=1))
    return directory


def demo_trials(count: int = 30, seed: int = 7) -> list[FakeTrial]:
    """Generated flash trials: accuracy grows with size, with noise; a few failures."""
    rng = random.Random(seed)
    trials = []
    for i in range(count):
        params = params_for(100 + i)
        size = (4 + params["num_layers"] * (1.2 + 0.25 * params["heads_per_layer"]) + params["intermediate_size"] / 400) * M
        exact = 40 + 28 * (1 - math.exp(-size / (12 * M))) + rng.uniform(-4, 4)
        latency = size / M * 0.35 + rng.uniform(0, 1.5)
        if i % 11 == 5:
            trials.append(FakeTrial(params=params, state="FAIL", failure_kind="out_of_memory",
                                    failure_reason="out of memory allocating 1.5 GiB", failure_step=200))
        elif i % 13 == 7:
            trials.append(FakeTrial(0.0, size, latency, params=params, failure_kind="diverged",
                                    failure_reason="loss became nan at step 300", failure_step=300))
        else:
            trials.append(FakeTrial(round(exact, 2), round(size), round(latency, 2), params=params,
                                    test_exact=round(exact + rng.uniform(-2, 2), 2)))
    return trials


def demo_study(directory: str | Path, *, latency: bool = True, regular: bool = True) -> Path:
    """The hand-made flash trials plus generated ones, a regular stage re-running the best, and a baseline."""
    flash = [FakeTrial(**{**t.__dict__, "params": t.params or params_for(i)}) for i, t in enumerate(HAND_FLASH)]
    flash += demo_trials()
    regular_trials = None
    if regular:
        ranked = sorted((t for t in flash if t.state == "COMPLETE" and t.exact and not t.failure_kind),
                        key=lambda t: -t.exact)[:8]
        regular_trials = [
            FakeTrial(round(t.exact + 3 + (i % 3) - 1, 2), t.size, t.latency, params=dict(t.params),
                      test_exact=round(t.exact + 2.5, 2), extra_attrs={"flash_trial": flash.index(t)})
            for i, t in enumerate(ranked)
        ]
        regular_trials.append(FakeTrial(state="FAIL", params=params_for(999), failure_kind="interrupted",
                                        failure_reason="worker lost (node preempted)"))
    return write_study(directory, flash, regular_trials, HAND_BASELINE,
                       objectives=OBJECTIVES_3D if latency else OBJECTIVES_2D, thresholds={"exact": ">= 50"})


# ---------------------------------------------------------------- tiny checkpoints
TINY_WORDS = ("the a of in river thames flows through london it is long city paris france capital what where which "
              "who when how does did 1066 battle hastings year rome empire . , ? ' s").split()


def tiny_tokenizer(directory: str | Path, words=TINY_WORDS):
    """A fast WordPiece tokenizer over a few words (no download), saved to ``directory``."""
    from transformers import BertTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(words)]
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(directory)
    return tokenizer


def tiny_bert_config(vocab_size: int, **overrides):
    from transformers import BertConfig

    fields = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=512, pad_token_id=0)
    return BertConfig(**{**fields, **overrides})


TINY_CONTEXTS = {
    "Thames": "the river thames flows through london . london is a long city .",
    "France": "paris is the capital of france . it is in france .",
    "Hastings": "the battle of hastings was in 1066 . it is a battle of the year 1066 .",
    "Rome": "rome is the capital city of the empire . the empire of rome is long .",
}
TINY_QUESTIONS = ["what is the city ?", "where does it flow ?", "which year ?", "who is the capital ?"]


def tiny_squad_with_split(path: str | Path):
    """A 4-article SQuAD 2.0 file in the tiny tokenizer's words (half the questions unanswerable) and
    its split by article (2 train, 1 validation, 1 test): what an export measures its test part on."""
    from conftest import article, qa, write_squad
    from paretodistill.data.splits import split_by_article
    from paretodistill.data.squad import load_squad

    articles = []
    for title, context in TINY_CONTEXTS.items():
        word = context.split()[1]
        qas = [qa(f"{title}{i}", q, [(word, context.index(word))]) if i % 2 == 0 else qa(f"{title}{i}", q)
               for i, q in enumerate(TINY_QUESTIONS)]
        articles.append(article(title, context, qas))
    data_file = write_squad(Path(path), articles)
    return data_file, split_by_article(load_squad(data_file), {"train": 0.5, "validation": 0.25, "test": 0.25})


def tiny_checkpoint(directory: str | Path, *, pruned: bool = False, metrics: dict | None = None, seed: int = 0) -> Path:
    """A tiny QA checkpoint with tokenizer: a plain BertForQuestionAnswering, or (``pruned``) a
    student with fewer heads per layer built by ``build_student`` and saved with its model code."""
    import torch
    from transformers import BertForQuestionAnswering

    from paretodistill.models.saving import save_with_code
    from paretodistill.models.student import StudentArchitecture, build_student

    directory = Path(directory)
    tokenizer = tiny_tokenizer(directory)
    torch.manual_seed(seed)
    model = BertForQuestionAnswering(tiny_bert_config(len(tokenizer))).eval()
    if pruned:
        model = build_student(model, StudentArchitecture(num_layers=1, heads_per_layer=2, pruning_seed=seed,
                                                         hidden_dropout=0.0, attention_dropout=0.0, pruning="random"))
    save_with_code(model, directory)
    if metrics is not None:
        (directory / "metrics.json").write_text(json.dumps(metrics))
    return directory


# ---------------------------------------------------------------- an error analysis
def demo_analysis(topics: int = 6, per_topic: int = 8) -> dict:
    """An analysis of made-up answers on a made-up SQuAD file: every category, several topics."""
    from paretodistill.data.squad import parse_squad
    from paretodistill.report.analysis import analyze_predictions

    context = "The river Thames flows through London, the capital city. It was crossed in 1066 by the army."
    spans = [("Thames", "Thames river"), ("London", "in London"), ("1066", "1067"), ("the army", "")]
    articles, predictions = [], {}
    for t in range(topics):
        qas = []
        for q in range(per_topic):
            qid = f"t{t}q{q}"
            gold, wrong = spans[q % len(spans)]
            kind = (q + t) % 5
            if kind == 4:  # unanswerable
                qas.append({"id": qid, "question": f"Who rebuilt the bridge in year {q}?", "answers": [], "is_impossible": True})
                predictions[qid] = "" if t % 2 else "the army"
                continue
            qas.append({"id": qid, "question": f"Question {q} about {gold}?", "is_impossible": False,
                        "answers": [{"text": gold, "answer_start": context.index(gold)}]})
            predictions[qid] = gold if kind == 0 else wrong
        articles.append({"title": f"Topic {t}", "paragraphs": [{"context": context, "qas": qas}]})
    data = parse_squad({"version": "v2.0", "data": articles}, "made-up.json", "1" * 64)
    return {"model": "made-up student", "data": "made-up.json", "part": "validation",
            **analyze_predictions(data, predictions)}
