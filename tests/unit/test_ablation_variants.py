"""benchmarks/ablation.py: variant names are read whole, even those that hold commas."""

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "ablation.py"
_spec = importlib.util.spec_from_file_location("ablation", _PATH)
ablation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ablation)


def test_names_with_commas_are_read_whole():
    text = "soft + hard,layers 0,1,2 (bottom),old defaults: lr 5e-5, batch 32, no warm-up,hard only"
    assert ablation.parse_variants(text) == [
        "soft + hard", "layers 0,1,2 (bottom)", "old defaults: lr 5e-5, batch 32, no warm-up", "hard only",
    ]


def test_an_unknown_name_is_kept_for_the_error():
    assert ablation.parse_variants("soft + hard,no such lever") == ["soft + hard", "no such lever"]


def test_every_variant_parses_back_to_itself():
    assert ablation.parse_variants(",".join(ablation.VARIANTS)) == list(ablation.VARIANTS)


def test_the_longest_known_name_wins_over_its_prefix():
    text = "hard only, layers 0,2,5 (ends),hard only,layers 0,2,5 (ends)"
    assert ablation.parse_variants(text) == ["hard only, layers 0,2,5 (ends)", "hard only", "layers 0,2,5 (ends)"]
