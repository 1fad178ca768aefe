"""Every supported encoder family end to end, on tiny random models with their own kind of tokenizer.

bert, distilbert and electra read WordPiece (the packaged MiniLM vocabulary), roberta byte-level BPE,
deberta-v2 a Unigram ``tokenizer.json``. Each family's teacher is distilled by the real command with
the smoke preset; its student must load with stock transformers and answer the same through
PyTorch and ONNX Runtime. A separate seed checkpoint (a BERT rewritten as a DistilBERT) seeds
students of its own family; one whose tokenizer is not the teacher's is refused before any work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoModelForQuestionAnswering

from paretodistill.cli import main
from paretodistill.errors import ConfigError, ModelMismatchError
from paretodistill.models.families import FAMILIES, family_of
from paretodistill.models.student import StudentArchitecture, build_student, count_parameters, expected_parameter_count
from paretodistill.testing.tiny_checkpoints import tiny_checkpoint

STOCK_CLASSES = {
    "bert": "BertForQuestionAnswering",
    "distilbert": "DistilBertForQuestionAnswering",
    "roberta": "RobertaForQuestionAnswering",
    "electra": "ElectraForQuestionAnswering",
    "deberta-v2": "DebertaV2ForQuestionAnswering",
}
PRUNED_MODEL_TYPES = {
    "bert": "paretodistill_bert",
    "distilbert": "paretodistill_distilbert",
    "roberta": "paretodistill_roberta",
    "electra": "paretodistill_electra",
}


def _load(folder):
    return AutoModelForQuestionAnswering.from_pretrained(folder).eval()


def _batch(model, length: int = 20):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (2, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, length // 2:] = 0
    return ids, mask


@pytest.fixture(scope="module")
def smoke_students(tiny_family_checkpoints, dev_v2, tmp_path_factory, one_torch_thread):
    """{family: trial folder} of ``paretodistill distill --teacher DIR --preset smoke`` for each family's teacher."""
    root = tmp_path_factory.mktemp("family_smoke")
    cache = root / "cache"
    students, codes = {}, {}
    for family, teacher in tiny_family_checkpoints.items():
        out = root / family
        codes[family] = main(["distill", "--teacher", str(teacher), "--preset", "smoke", "--data", str(dev_v2),
                              "--out", str(out), "--cache-dir", str(cache)])
        students[family] = out
    assert codes == dict.fromkeys(FAMILIES, 0)
    return students


@pytest.mark.parametrize("family", FAMILIES)
def test_distill_smoke_exits_0_and_the_student_is_of_the_teachers_family(family, smoke_students):
    checkpoint = smoke_students[family] / "checkpoint"
    metrics = json.loads((smoke_students[family] / "metrics.json").read_text())
    student = _load(checkpoint)
    assert family_of(student).name == family
    # the smoke student keeps 2 of 4 heads (a pruned class) except where attention cannot drop heads
    expected_type = PRUNED_MODEL_TYPES.get(family, family)
    assert student.config.model_type == expected_type
    assert count_parameters(student) == metrics["num_parameters"]
    assert 0.0 <= metrics["f1"] <= 100.0 and metrics["latency_ms"] > 0


FIRST_IMPORTS = {
    "auto first": "",
    # a family's modeling module imports transformers' auto module halfway through its own import
    "modeling first": "from transformers import BertForQuestionAnswering, DistilBertForQuestionAnswering, RobertaForQuestionAnswering",
}


@pytest.mark.parametrize("first_import", FIRST_IMPORTS.values(), ids=FIRST_IMPORTS.keys())
def test_every_student_loads_with_stock_transformers_after_import_paretodistill(smoke_students, first_import):
    """A fresh Python: pruned students load with no trust_remote_code, the same logits as in this process,
    whichever transformers class the user imports first."""
    expected = {}
    for family, folder in smoke_students.items():
        model = _load(folder / "checkpoint")
        ids, mask = _batch(model)
        inputs = {"input_ids": ids, "attention_mask": mask}
        with torch.no_grad():
            expected[family] = model(**inputs).start_logits.tolist()
    script = textwrap.dedent("""
        import json, sys, torch
        import paretodistill
        FIRST_IMPORT
        from transformers import AutoModelForQuestionAnswering
        folders, inputs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
        out = {}
        for family, folder in folders.items():
            model = AutoModelForQuestionAnswering.from_pretrained(folder).eval()  # no trust_remote_code
            with torch.no_grad():
                out[family] = [type(model).__name__, model(**{k: torch.tensor(v) for k, v in inputs[family].items()}).start_logits.tolist()]
        print(json.dumps(out))
    """).replace("FIRST_IMPORT", first_import)
    inputs = {}
    for family, folder in smoke_students.items():
        ids, mask = _batch(_load(folder / "checkpoint"))
        inputs[family] = {"input_ids": ids.tolist(), "attention_mask": mask.tolist()}
    folders = {family: str(folder / "checkpoint") for family, folder in smoke_students.items()}
    result = subprocess.run([sys.executable, "-c", script, json.dumps(folders), json.dumps(inputs)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for family in smoke_students:
        assert loaded[family][0].startswith("Pruned") == (family in PRUNED_MODEL_TYPES)
        assert torch.allclose(torch.tensor(loaded[family][1]), torch.tensor(expected[family]), atol=1e-5)


def test_the_stand_ins_cover_every_pruned_student_type():
    from paretodistill.models import pruned_bert, pruned_encoders
    from paretodistill.registration import STUDENT_MODEL_TYPES

    defined = [config.model_type for module in (pruned_bert, pruned_encoders) for config, _ in module.PRUNED_CLASSES]
    assert sorted(STUDENT_MODEL_TYPES) == sorted(defined)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_student_keeping_all_heads_is_the_familys_stock_class_and_counts_as_predicted(family, tiny_family_checkpoints,
                                                                                        tmp_path):
    teacher = _load(tiny_family_checkpoints[family])
    arch = StudentArchitecture(num_layers=1, heads_per_layer=4, intermediate_size=64, pruning="random")
    student = build_student(teacher, arch)
    assert type(student).__name__ == STOCK_CLASSES[family]
    assert count_parameters(student) == expected_parameter_count(teacher.config, arch)
    student.save_pretrained(tmp_path / "s")
    assert "auto_map" not in json.loads((tmp_path / "s" / "config.json").read_text())
    reloaded = _load(tmp_path / "s")
    ids, mask = _batch(student)
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=ids, attention_mask=mask).end_logits,
                           student(input_ids=ids, attention_mask=mask).end_logits)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_full_student_of_the_teacher_answers_as_the_teacher(family, tiny_family_checkpoints):
    """All layers, heads and neurons copied: the adapter names every part, so nothing is left fresh."""
    teacher = _load(tiny_family_checkpoints[family])
    student = build_student(teacher, StudentArchitecture(num_layers=2, heads_per_layer=4, hidden_dropout=0.0,
                                                         attention_dropout=0.0, pruning="random"))
    ids, mask = _batch(teacher)
    with torch.no_grad():
        assert torch.allclose(student(input_ids=ids, attention_mask=mask).start_logits,
                              teacher(input_ids=ids, attention_mask=mask).start_logits, atol=1e-5)


def test_deberta_cannot_drop_heads_and_says_so(tiny_family_checkpoints):
    teacher = _load(tiny_family_checkpoints["deberta-v2"])
    with pytest.raises(ModelMismatchError, match=r"a deberta-v2 student cannot keep 2 of its seed's 4 heads "
                                                 r"\(student.heads_per_layer\)"):
        build_student(teacher, StudentArchitecture(num_layers=1, heads_per_layer=2, pruning="random"))


@pytest.mark.parametrize("family, parameter", [("deberta-v2", "heads_per_layer"), ("roberta", "embedding_size"),
                                               ("electra", "qa_dropout")])
def test_the_search_plan_refuses_a_parameter_the_family_cannot_take(family, parameter, tiny_family_checkpoints):
    from paretodistill.config import load_config
    from paretodistill.search.plan import plan_search

    teacher = tiny_family_checkpoints[family]
    space = {"num_layers": {"type": "int", "low": 1, "high": 2},
             parameter: {"type": "int", "low": 1, "high": 4} if parameter != "qa_dropout"
             else {"type": "float", "low": 0.0, "high": 0.3}}
    if parameter == "embedding_size":
        space[parameter] = {"type": "categorical", "choices": [16, 32]}
    config = load_config(None, [f'teacher.path="{teacher}"', "data.split_file=\"x.json\"",
                                f"search.space={json.dumps(space).replace(':', '=')}"])
    with pytest.raises(ConfigError, match=rf"the students are {family} models, which cannot take the searched "
                                          rf"{parameter}"):
        plan_search(config, config.search, log=lambda _: None, teacher_folder=str(teacher))


def test_layerwise_transfer_between_families_trains(tiny_family_checkpoints):
    """Hidden-state and attention-map losses read any family's outputs: a BERT teacher, a DistilBERT student."""
    from paretodistill.config import DistillSettings
    from paretodistill.distill.objective import DistillationObjective
    from paretodistill.training.batching import Batch

    teacher = _load(tiny_family_checkpoints["bert"])
    seed = build_student(teacher, StudentArchitecture(num_layers=2, heads_per_layer=4, pruning="random"),
                         family="distilbert")
    student = build_student(seed, StudentArchitecture(num_layers=1, heads_per_layer=2, pruning="random"),
                            seed_checkpoint="a separate seed").train()
    objective = DistillationObjective(student, DistillSettings(soft_weight=0.5, hard_weight=0.5, hidden_weight=1.0,
                                                               attention_weight=1.0), teacher=teacher)
    ids, mask = _batch(teacher)
    batch = Batch(indices=torch.arange(2), input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=mask,
                  start_positions=torch.tensor([1, 0]), end_positions=torch.tensor([2, 0]))
    inputs = batch.model_inputs()
    loss = objective(objective.model(**inputs), batch)
    loss.backward()
    objective.finish()
    assert torch.isfinite(loss) and student.distilbert.transformer.layer[0].attention.q_lin.weight.grad.abs().sum() > 0
    # the 2 heads kept index the seed's heads, not the teacher's: the maps are compared as head means
    assert [pair.teacher_heads for pair in objective.pairs] == [None]


def test_a_bert_checkpoint_converts_to_distilbert_exactly_on_question_side_tokens(tiny_family_checkpoints, tmp_path):
    from paretodistill.recipes.convert import convert_checkpoint

    record = convert_checkpoint(str(tiny_family_checkpoints["bert"]), "distilbert", tmp_path / "seed", log=lambda _: None)
    assert record["family"] == "distilbert" and record["max_abs_diff"] < 1e-5
    assert json.loads((tmp_path / "seed" / "config.json").read_text())["architectures"] == ["DistilBertModel"]


def test_students_seeded_from_a_separate_checkpoint_take_its_family(tiny_family_checkpoints, dev_v2, tmp_path,
                                                                   one_torch_thread):
    """The seeds' arrangement: a BERT teacher, students seeded from a DistilBERT base model (no QA head)."""
    from paretodistill.recipes.convert import convert_checkpoint

    teacher = tiny_family_checkpoints["bert"]
    convert_checkpoint(str(teacher), "distilbert", tmp_path / "seed", log=lambda _: None)
    out = tmp_path / "run"
    assert main(["distill", "--teacher", str(teacher), "--preset", "smoke", "--data", str(dev_v2), "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--set", f'student.init_from="{tmp_path / "seed"}"',
                 "--set", 'student.pruning="random"']) == 0
    student = _load(out / "checkpoint")
    assert student.config.model_type == "paretodistill_distilbert"  # 1 layer, 2 of the seed's 4 heads
    assert student.config.seed_checkpoint == str(tmp_path / "seed")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["student_seed"] == str(tmp_path / "seed")
    # the recipe of the 2020 arrangement: the seed DistilBERT's whole architecture
    from paretodistill.config import load_config
    from paretodistill.distill.presets import recipe_parameters

    config = load_config(None, [f'teacher.path="{teacher}"', f'student.init_from="{tmp_path / "seed"}"'])
    assert recipe_parameters("sigopt", config)["num_layers"] == 2
    with pytest.raises(ConfigError, match="--recipe sigopt seeds the student from a DistilBERT checkpoint"):
        recipe_parameters("sigopt", load_config(None, [f'teacher.path="{teacher}"']))


def test_a_seed_whose_tokenizer_differs_is_refused_in_one_line_before_any_work(tiny_family_checkpoints, dev_v2,
                                                                             tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["distill", "--teacher", str(tiny_family_checkpoints["bert"]), "--preset", "smoke", "--data",
                 str(dev_v2), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--set", f'student.init_from="{tiny_family_checkpoints["roberta"]}"'])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "its tokenizer's cls_token is '<s>' (id 0), the teacher's is '[CLS]' (id 101)" in err
    assert not out.exists() and not (tmp_path / "cache" / "features").exists()  # nothing spent


def test_a_seed_of_the_same_kind_with_another_vocabulary_is_refused_naming_it(tiny_family_checkpoints, tmp_path):
    from paretodistill.distill.pretrained_student import check_same_tokenizer
    from paretodistill.models.loading import load_tokenizer
    from paretodistill.testing.tiny_checkpoints import tiny_tokenizer

    tiny_tokenizer("roberta", tmp_path / "words", text=["a different text for a different vocabulary"] * 3)
    tiny_checkpoint("roberta", tmp_path / "other", tokenizer_folder=tmp_path / "words")
    with pytest.raises(ModelMismatchError, match=r"its vocabulary differs from the teacher's"):
        check_same_tokenizer(load_tokenizer(tiny_family_checkpoints["roberta"]), tmp_path / "other")
    check_same_tokenizer(load_tokenizer(tiny_family_checkpoints["roberta"]), tiny_family_checkpoints["roberta"])


@pytest.mark.parametrize("family", FAMILIES)
def test_the_onnx_export_answers_as_predict_does(family, smoke_students, dev_v2, tmp_path):
    """Each family's student through ONNX: the torch-free answer helper, predict on ONNX and on torch agree."""
    import shutil

    pytest.importorskip("onnxruntime")
    from paretodistill.data.squad import load_squad
    from paretodistill.export import onnx_answer
    from paretodistill.export.predict import Predictor
    from paretodistill.export.students import export_checked_onnx

    folder = tmp_path / "student"
    shutil.copytree(smoke_students[family] / "checkpoint", folder)
    export_checked_onnx(folder, folder / "model.onnx")
    examples = [e for e in load_squad(dev_v2).examples[:40]][::8]
    by_torch = Predictor(folder, "torch").answer_examples(examples)
    by_onnx = Predictor(folder, "onnx").answer_examples(examples)
    for example, torch_answer, onnx_answer_ in zip(examples, by_torch, by_onnx, strict=True):
        helper = onnx_answer.answer(folder, example.question, example.context)
        assert helper["text"] == onnx_answer_.text == torch_answer.text
        assert helper["best_span"] == torch_answer.best_span and helper["best_span"] in example.context
        assert helper["na_score"] == pytest.approx(torch_answer.na_score, abs=1e-4)


def test_a_pruned_student_of_another_family_loads_without_paretodistill_with_the_flag(smoke_students, tmp_path):
    import shutil

    from paretodistill.models.saving import save_with_code

    student = _load(smoke_students["distilbert"] / "checkpoint")
    save_with_code(student, tmp_path / "s")
    assert (tmp_path / "s" / "pruned_encoders.py").is_file()
    shutil.copy(smoke_students["distilbert"] / "checkpoint" / "tokenizer.json", tmp_path / "s")
    ids, mask = _batch(student)
    with torch.no_grad():
        expected = student(input_ids=ids, attention_mask=mask).start_logits
    script = textwrap.dedent("""
        import json, sys, torch
        sys.modules["paretodistill"] = None  # not installed
        from transformers import AutoModelForQuestionAnswering
        model = AutoModelForQuestionAnswering.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
        ids, mask = (torch.tensor(v) for v in json.loads(sys.argv[2]))
        with torch.no_grad():
            print(json.dumps([type(model).__name__, model(input_ids=ids, attention_mask=mask).start_logits.tolist()]))
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "s"), json.dumps([ids.tolist(), mask.tolist()])],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    name, logits = json.loads(result.stdout.strip().splitlines()[-1])
    assert name == "PrunedDistilBertForQuestionAnswering"
    assert torch.allclose(torch.tensor(logits), expected, atol=1e-5)


def test_the_seeds_arrangement_searches_students_of_the_seeds_family(tiny_family_checkpoints, dev_v2, tmp_path,
                                                                    one_torch_thread):
    """A smoke search seeded from a DistilBERT: the space and the sigopt-2020-distilbert baseline read the seed's
    shape, every trial's student is a DistilBERT, and the baseline is the seed's whole architecture."""
    from paretodistill.recipes.convert import convert_checkpoint

    teacher = tiny_family_checkpoints["bert"]
    seed = tmp_path / "seed"
    convert_checkpoint(str(teacher), "distilbert", seed, log=lambda _: None)
    study = tmp_path / "study"
    assert main(["search", "--preset", "smoke", "--teacher", str(teacher), "--data", str(dev_v2), "--study", str(study),
                 "--cache-dir", str(tmp_path / "cache"), "--set", f'student.init_from="{seed}"',
                 "--set", 'student.pruning="random"', "--set", 'search.baseline="sigopt-2020-distilbert"',
                 "--set", "search.regular.top_k=1"]) == 0
    trials = sorted(study.glob("trials/*/checkpoint/config.json"))
    assert trials and {json.loads(path.read_text())["model_type"] for path in trials} <= {
        "distilbert", "paretodistill_distilbert"}
    baseline = json.loads(next(study.glob("trials/baseline*/metrics.json")).read_text())
    assert baseline["parameters"]["num_layers"] == 2 and baseline["parameters"]["learning_rate"] == 5e-5
    assert baseline["teacher"]["student_seed"] == str(seed)


def test_a_seed_given_by_hub_id_is_read_from_the_hub_cache(tiny_family_checkpoints, dev_v2, tmp_path, monkeypatch,
                                                           one_torch_thread):
    """student.init_from = "org/name": resolved offline to its cached snapshot, like a teacher's hub id."""
    import huggingface_hub.constants as constants

    from paretodistill.recipes.convert import convert_checkpoint

    teacher = tiny_family_checkpoints["bert"]
    repo = tmp_path / "hub" / "models--org--tiny-distilbert"
    convert_checkpoint(str(teacher), "distilbert", repo / "snapshots" / "abc", log=lambda _: None)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    for name, value in (("HF_HUB_CACHE", str(tmp_path / "hub")), ("HF_HUB_OFFLINE", "1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "run"
    assert main(["distill", "--teacher", str(teacher), "--preset", "smoke", "--data", str(dev_v2), "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--set", 'student.init_from="org/tiny-distilbert"',
                 "--set", 'student.pruning="random"']) == 0
    student = json.loads((out / "checkpoint" / "config.json").read_text())
    assert student["model_type"] == "paretodistill_distilbert" and student["seed_checkpoint"] == "org/tiny-distilbert"
    missing = main(["distill", "--teacher", str(teacher), "--preset", "smoke", "--data", str(dev_v2), "--out",
                    str(tmp_path / "none"), "--set", 'student.init_from="org/not-cached"'])
    assert missing == 2 and not (tmp_path / "none").exists()


def test_importance_pruning_of_a_separately_seeded_search_is_refused_before_trial_0(tiny_family_checkpoints, tmp_path):
    from paretodistill.config import load_config
    from paretodistill.search.plan import plan_search

    teacher = tiny_family_checkpoints["bert"]
    space = '{num_layers = {type = "int", low = 1, high = 2}, heads_per_layer = {type = "int", low = 1, high = 4}}'
    overrides = [f'teacher.path="{teacher}"', 'data.split_file="x.json"', f"search.space={space}",
                 f'student.init_from="{tiny_family_checkpoints["distilbert"]}"']
    config = load_config(None, overrides)
    seed = str(tiny_family_checkpoints["distilbert"])
    with pytest.raises(ConfigError, match='student.pruning = "importance" scores the teacher\'s heads and neurons'):
        plan_search(config, config.search, log=lambda _: None, teacher_folder=seed)
    config = load_config(None, [*overrides, 'student.pruning="random"'])
    plan = plan_search(config, config.search, log=lambda _: None, teacher_folder=seed)
    assert plan.space.distributions()["heads_per_layer"].high == 4
    # pruning set in the space: a fixed "random" is fine (the sigopt presets), a choice that includes importance is not
    fixed = space[:-1] + ', pruning = {type = "fixed", value = "random"}}'
    config = load_config(None, [*overrides[:2], f"search.space={fixed}", overrides[3]])
    assert plan_search(config, config.search, log=lambda _: None, teacher_folder=seed).space["pruning"].value == "random"
    either = space[:-1] + ', pruning = {type = "categorical", choices = ["random", "importance"]}}'
    config = load_config(None, [*overrides[:2], f"search.space={either}", overrides[3], 'student.pruning="random"'])
    with pytest.raises(ConfigError, match="scores the teacher's heads and neurons"):
        plan_search(config, config.search, log=lambda _: None, teacher_folder=seed)
