"""Paths in a config file mean the files beside the config, wherever the command runs; paths on the
command line mean the working directory's; names that are not paths are kept as written."""

from __future__ import annotations

import os
from pathlib import Path

from paretodistill.config import PATH_FIELDS, load_config

CONFIG = """
cache_dir = "cache"

[data]
split_file = "data/own.json"
extra_train_files = ["data/more.json.gz", "rajpurkar/squad_v2:train"]
validation_files = ["./data/validation.json"]
test_files = ["squad_v2:validation"]

[teacher]
path = "../teachers/mine"

[student]
init_from = "distilbert/distilbert-base-uncased"

[pretrain]
text_files = ["data/text.json"]
base_encoder = "encoder"
"""


def test_config_paths_resolve_from_the_config_folder_not_the_working_directory(tmp_path, monkeypatch):
    project = tmp_path / "project" / "configs"
    (project / "encoder").mkdir(parents=True)  # a folder beside the config: a path; "minilm" would be a name
    (project / "run.toml").write_text(CONFIG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config("../project/configs/run.toml", ['data.split_file="cli/own.json"'])

    def seen(path: str) -> Path:  # where the command will look, from its working directory
        return (elsewhere / path).resolve()

    assert config.data.split_file == "cli/own.json"  # --set is the command line's: the working directory's
    assert seen(config.data.extra_train_files[0]) == project / "data" / "more.json.gz"
    assert config.data.extra_train_files[1] == "rajpurkar/squad_v2:train"  # a dataset id, not a path
    assert seen(config.data.validation_files[0]) == project / "data" / "validation.json"
    assert config.data.test_files == ("squad_v2:validation",)
    assert seen(config.teacher.path) == tmp_path / "project" / "teachers" / "mine"
    assert config.student.init_from == "distilbert/distilbert-base-uncased"  # a hub id: no such folder beside it
    assert seen(config.pretrain.text_files[0]) == project / "data" / "text.json"
    assert seen(config.pretrain.base_encoder) == project / "encoder"
    assert seen(config.cache_dir) == project / "cache"


def test_a_config_run_from_its_usual_place_gives_the_same_strings(tmp_path, monkeypatch):
    """Resolved paths are written relative to the working directory: a shipped config run from the
    repository root names its files as it always did, so its studies keep their identity."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "c.toml").write_text('[data]\nsplit_file = "../../shared/dev.json"\n'
                                                 '[teacher]\npath = "../teachers/t"\n[student]\ninit_from = "../runs/x"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config("configs/c.toml")
    assert (config.data.split_file, config.teacher.path, config.student.init_from) == (
        os.path.join("..", "shared", "dev.json"), os.path.join("teachers", "t"), os.path.join("runs", "x"))


def test_names_and_absolute_paths_are_kept(tmp_path):
    (tmp_path / "c.toml").write_text(f'[teacher]\npath = "minilm"\n[data]\nsplit_file = "{tmp_path / "d.json"}"\n'
                                     '[pretrain]\nbase_encoder = "minilm"\n')
    config = load_config(tmp_path / "c.toml")
    assert (config.teacher.path, config.pretrain.base_encoder) == ("minilm", "minilm")
    assert config.data.split_file == str(tmp_path / "d.json")


def test_every_path_field_is_a_field_of_the_config():
    values = load_config().to_dict()
    for dotted in PATH_FIELDS:
        node = values
        for key in dotted.split("."):
            assert key in node, dotted
            node = node[key]
