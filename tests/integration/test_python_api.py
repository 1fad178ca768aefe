"""The Python API on real data: the README's example as written (a smoke search, its frontier, its best
student answering), the shipped teacher answering real SQuAD 2.0 dev questions through one loaded
Predictor, and one distillation's typed result against the files it wrote."""

from __future__ import annotations

import json
import re

import pytest

import paretodistill
from conftest import REPO
from paretodistill.data.squad import load_squad
from paretodistill.export.predict import Prediction
from paretodistill.recipes.shipped_teacher import shipped_teacher_dir

pytestmark = pytest.mark.integration

README_STUDY = "runs/my-study"
README_DATA = "../shared/data/squad2/dev-v2.0.json"
# Computational complexity theory: answerable ("problem instance"), unanswerable, and (Normans) answerable
# but with a no-answer score above the teacher's recorded threshold: "" although its best span is the gold "France".
ANSWERED, UNANSWERABLE, HELD_BACK = "56e17a7ccd28a01900c679a1", "5ad532575b96ef001a10ab80", "56ddde6b9a695914005b9628"


def readme_example() -> str:
    """The first Python block of the README's "Python API" section, as a reader sees it."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_searches_reads_the_frontier_and_answers(tmp_path, dev_v2, monkeypatch, capsys):
    code = readme_example()
    assert README_STUDY in code and README_DATA in code  # the paths a reader sees, replaced here
    monkeypatch.setenv("PARETODISTILL_CACHE", str(tmp_path / "cache"))
    study = tmp_path / "my-study"
    namespace: dict = {}
    exec(compile(code.replace(README_STUDY, str(study)).replace(README_DATA, str(dev_v2)), "README.md", "exec"), namespace)

    result, best, prediction = namespace["result"], namespace["best"], namespace["prediction"]
    pareto = json.loads((study / "pareto.json").read_text())
    assert result.study_dir == study and result.pareto_json == study / "pareto.json" and result.report is None
    assert result.counts["flash"]["complete"] == 2 and result.counts["regular"]["complete"] == 1  # the overrides applied
    assert [(m.stage, m.trial_number) for m in result.frontier] == [
        (e["stage"], e["trial_number"]) for e in pareto["frontier"]] == [("regular", 0)]
    assert best is result.frontier[0] and best.metrics == pareto["frontier"][0]["validation"]
    assert best.num_parameters == int(best.metrics["num_parameters"]) > 0 and best.latency_ms > 0
    assert best.checkpoint == study / pareto["frontier"][0]["checkpoint"] and (best.checkpoint / "config.json").is_file()
    recorded = json.loads((best.checkpoint / "metrics.json").read_text())["na_threshold"]
    assert isinstance(prediction, Prediction) and prediction.threshold == pytest.approx(recorded)
    assert prediction.no_answer == (prediction.na_score > prediction.threshold)
    assert prediction.text in ("", *[prediction.best_span] * (not prediction.no_answer))
    printed = capsys.readouterr().out
    assert f"regular 0 {best.num_parameters} {best.latency_ms}" in printed  # the loop over the frontier


def dev_examples(dev_v2, *ids):
    by_id = {e.id: e for e in load_squad(dev_v2).examples}
    return [by_id[qid] for qid in ids]


@pytest.fixture
def load_counts(monkeypatch):
    """How often the model and its tokenizer are read from disk."""
    from paretodistill.export import predict
    from paretodistill.models import loading

    counts = {"model": 0, "tokenizer": 0}

    def counted(name, function):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(loading, "load_qa_model", counted("model", loading.load_qa_model))
    monkeypatch.setattr(predict, "load_tokenizer", counted("tokenizer", predict.load_tokenizer))
    return counts


def test_the_shipped_teacher_answers_dev_questions_from_one_load(dev_v2, load_counts, one_torch_thread):
    answered, unanswerable, held_back = dev_examples(dev_v2, ANSWERED, UNANSWERABLE, HELD_BACK)
    predictor = paretodistill.Predictor(shipped_teacher_dir(), device="cpu")
    recorded = json.loads((shipped_teacher_dir() / "metrics.json").read_text())["na_threshold"]
    assert predictor.threshold == pytest.approx(recorded) and predictor.threshold_source == "metrics.json"

    one = predictor.answer(answered.question, answered.context)
    assert one.text == "problem instance" and one.text in [a.text for a in answered.answers] and not one.no_answer
    many = predictor.answer_many([(e.question, e.context) for e in (answered, unanswerable, held_back)])
    assert [p.id for p in many] == ["0", "1", "2"]
    assert [p.text for p in many] == ["problem instance", "", ""]
    assert many[0].score == pytest.approx(one.score, abs=1e-4)
    assert held_back.answers[0].text == "France" == many[2].best_span  # held back by the recorded threshold
    assert recorded < many[2].na_score < 0
    assert load_counts == {"model": 1, "tokenizer": 1}  # one load, four answers

    given = paretodistill.Predictor(shipped_teacher_dir(), threshold=0.0, device="cpu")
    assert given.answer(held_back.question, held_back.context).text == "France"


def test_distill_returns_what_the_trial_wrote(tmp_path, dev_v2, one_torch_thread):
    out = tmp_path / "student"
    result = paretodistill.distill(preset="smoke", data=str(dev_v2), out=out, student={"num_layers": 1},
                                   overrides={"training.max_steps": 4, "training.eval_every_steps": 4},
                                   test=True, cache_dir=str(tmp_path / "cache"))
    written = json.loads((out / "metrics.json").read_text())
    assert result.out == out and result.checkpoint == out / "checkpoint" and (result.checkpoint / "config.json").is_file()
    assert result.num_parameters == int(written["num_parameters"]) and result.metrics["exact"] == written["exact"]
    assert result.latency_ms == written["latency_ms"] and result.test_metrics["total"] == written["test"]["total"] > 0
    assert result.config.student.num_layers == 1 and result.config.training.max_steps == 4
    assert [point["step"] for point in result.curve] == [4]
    answer = paretodistill.Predictor(result.checkpoint, device="cpu").answer("Who?", "Nobody was there.")
    assert answer.threshold == pytest.approx(written["na_threshold"])


def test_a_failed_distillation_raises_run_failed_with_its_kind(tmp_path, dev_v2):
    from paretodistill.errors import RunFailed

    with pytest.raises(RunFailed, match="impossible_architecture") as raised:  # 5 heads of the tiny teacher's 4
        paretodistill.distill(preset="smoke", data=str(dev_v2), out=tmp_path / "s", student={"heads_per_layer": 5},
                              cache_dir=str(tmp_path / "cache"), log=lambda line: None)
    assert raised.value.kind == "impossible_architecture"
