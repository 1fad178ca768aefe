"""benchmarks/pretrain_compare.py: the three arms run end to end on a tiny teacher, and the equal-time arm
gets the steps that the pretrained arm's whole time buys."""

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "pretrain_compare.py"
_spec = importlib.util.spec_from_file_location("pretrain_compare", _PATH)
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEV = SHARED / "squad2" / "dev-v2.0.json"
SQUAD1_EXTRA = SHARED / "squad1" / "dev-v1.1-extra13.explorer-rebuilt.json.gz"


def test_equal_time_steps_spend_the_pretrained_arms_whole_time():
    # 60 s of pretraining + 40 s for 20 follow-up steps (2 s a step): 100 s buy 50 steps
    assert compare.equal_time_steps(60.0, 40.0, 20) == 50
    assert compare.equal_time_steps(0.0, 40.0, 20) == 20  # no pretraining: the same steps


def test_arms_are_timed_in_cpu_seconds_when_both_runs_recorded_them():
    pretrained = {"pretrain_seconds": 3600.0, "pretrain_cpu_seconds": 900.0}  # wall inflated by other runs
    follow = {"train_seconds": 400.0, "train_cpu_seconds": 300.0}
    assert compare.arm_seconds(pretrained, follow) == (900.0, 300.0, "CPU")
    assert compare.arm_seconds(None, follow) == (0.0, 300.0, "CPU")  # the equal-time arm
    older = {"pretrain_seconds": 1378.0}  # recorded before CPU time was: both on wall time
    assert compare.arm_seconds(older, follow) == (1378.0, 400.0, "wall")
    assert compare.arm_seconds(pretrained, {"train_seconds": 400.0}) == (3600.0, 400.0, "wall")


TINY = """
[teacher]
path = "{teacher}"
[data]
split_file = "{dev}"
max_eval_articles = 1
max_train_questions = 40
[data.features]
max_seq_length = 128
doc_stride = 48
max_query_length = 32
[student]
num_layers = 1
heads_per_layer = 2
pruning = "random"  # pretrain-distill reads no QA data to score heads by
[training]
train_batch_size = 8
max_steps = 4
log_every_steps = 1000
[latency]
enabled = false
[pretrain]
text_files = ["{squad1}"]
max_paragraphs = 24
heldout_paragraphs = 6
max_seq_length = 64
[pretrain.training]
train_batch_size = 6
warmup_steps = 0
log_every_steps = 1000
"""


def test_the_three_arms_run_and_fill_the_table(teacher_dir, cache_dir, tmp_path, capsys):
    if not (DEV.exists() and SQUAD1_EXTRA.exists()):
        pytest.skip(f"{SHARED} is not there")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(teacher=teacher_dir, dev=DEV, squad1=SQUAD1_EXTRA))
    out = tmp_path / "compare"
    assert compare.main(["--config", str(config), "--out", str(out), "--seeds", "1", "--workers", "1",
                         "--pretrain-steps", "3", "--head-steps", "1", "--set", f'cache_dir="{cache_dir}"']) == 0
    pretrained = json.loads((out / "pretrained" / "seed-1" / "pretrain" / "pretrain.json").read_text())
    no_soft = json.loads((out / "pretrained-no-soft-mlm" / "seed-1" / "pretrain" / "pretrain.json").read_text())
    assert pretrained["training"]["steps"] == 3 and no_soft["weights"].get("soft", 0.0) == 0.0
    assert pretrained["weights"]["soft"] > 0
    follow = json.loads((out / "pretrained" / "seed-1" / "distill" / "metrics.json").read_text())
    alone = json.loads((out / "distill-only" / "seed-1" / "metrics.json").read_text())
    assert follow["pretrain_seconds"] == pytest.approx(pretrained["pretrain_seconds"])
    assert pretrained["pretrain_cpu_seconds"] > 0
    assert follow["pretrain_cpu_seconds"] == pytest.approx(pretrained["pretrain_cpu_seconds"])
    assert alone["training"]["steps"] == compare.equal_time_steps(
        pretrained["pretrain_cpu_seconds"], follow["train_cpu_seconds"], follow["training"]["steps"])
    assert alone["training"]["steps"] > follow["training"]["steps"]
    table = capsys.readouterr().out
    for arm in compare.ARMS:
        assert f"| {arm} | 1 |" in table
    assert table.count(" (CPU) |") == 3
