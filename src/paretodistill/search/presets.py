"""Named search spaces, baselines and whole-search presets, as plain data.

Bounds that depend on the teacher are written symbolically (``"teacher_heads"``,
``"2*teacher_layers"``, ``"0.5*teacher_intermediate"``) and filled in from the teacher's
``config.json`` by :mod:`paretodistill.search.space`, so one preset fits any BERT teacher.

``sigopt-2020`` is the space of SigOpt's 2020 BERT-distillation experiment (a DistilBERT-style
student of a SQuAD 2.0 BERT, multimetric exact vs size). Two ranges had to move off their
published edges: dropout 1.0 drops everything (a degenerate model that the student builder
refuses), so dropout ranges stop at 0.99; and an init std of 0 makes every fresh weight zero, so
``initializer_range`` starts at 1e-4. ``eval_batch_size`` is searched as in the original even though
it only changes speed, not the model.

``cpu`` is a narrower space that a CPU box can explore in a day: the architecture knobs that matter
for size and latency, the learning rate and the distillation mix. Attention dropout is fixed at 0
because dropout inside attention takes the student off PyTorch's fused attention path (about 3.7x
slower training here).

``autodistill`` is AutoDistill's MobileBERT-like template (Table 1 of the paper: hidden size,
bottleneck size, heads, intermediate size, stacked FFNs, layers) scaled to a MiniLM-L6-H384 teacher,
plus the two embedding levers that hold most of this teacher's size (``embedding_size``,
``vocabulary``). Widths are multiples of 48, so that every head count offered (the divisors of 48
from 2 to 12) divides every width: no sampled combination is impossible. ``configs/search-autodistill.toml``
searches it on exact, num_parameters and latency_ms.
"""

from __future__ import annotations

from paretodistill.config import FlashSettings, RegularSettings, SearchSettings

SPACE_PRESETS: dict[str, dict[str, dict]] = {
    "sigopt-2020": {
        "epsilon": {"type": "float", "low": 9.98e-09, "high": 9.99e-06, "log": True},
        "soft_weight": {"type": "float", "low": 0.0, "high": 1.0},
        "hard_weight": {"type": "float", "low": 0.0, "high": 1.0},
        "attention_dropout": {"type": "float", "low": 0.0, "high": 0.99},  # [0, 1): 1 is degenerate
        "beta1": {"type": "float", "low": 0.7, "high": 0.9999},
        "beta2": {"type": "float", "low": 0.7, "high": 0.9999},
        "initializer_range": {"type": "float", "low": 1e-4, "high": 1.0},  # an init std must be > 0
        "learning_rate": {"type": "float", "low": 2e-6, "high": 0.1, "log": True},
        "heads_per_layer": {"type": "int", "low": 1, "high": "teacher_heads"},
        "num_layers": {"type": "int", "low": 1, "high": "2*teacher_layers"},
        "eval_batch_size": {"type": "int", "low": 4, "high": 32},
        "train_batch_size": {"type": "int", "low": 4, "high": 32},
        "pruning_seed": {"type": "int", "low": 1, "high": 100},
        "pruning": {"type": "fixed", "value": "random"},  # what pruning_seed drew in 2020
        "qa_dropout": {"type": "float", "low": 0.0, "high": 0.99},  # [0, 1)
        "temperature": {"type": "float", "low": 1.0, "high": 10.0},
        "warmup_steps": {"type": "int", "low": 0, "high": 100},
        "weight_decay": {"type": "float", "low": 8.3e-07, "high": 0.018, "log": True},
    },
    "cpu": {
        "num_layers": {"type": "int", "low": 1, "high": "teacher_layers"},
        "heads_per_layer": {"type": "int", "low": 2, "high": "teacher_heads"},
        "intermediate_size": {
            "type": "categorical",
            "choices": ["0.25*teacher_intermediate", "0.5*teacher_intermediate", "teacher_intermediate"],
        },
        "learning_rate": {"type": "float", "low": 1e-5, "high": 5e-4, "log": True},
        "soft_weight": {"type": "float", "low": 0.0, "high": 1.0},
        "hard_weight": {"type": "float", "low": 0.0, "high": 1.0},
        "temperature": {"type": "float", "low": 1.0, "high": 8.0},
        "train_batch_size": {"type": "categorical", "choices": [16, 32]},
        "qa_dropout": {"type": "float", "low": 0.0, "high": 0.3},
        "hidden_dropout": {"type": "float", "low": 0.0, "high": 0.3},
        "attention_dropout": {"type": "fixed", "value": 0.0},  # keeps the fused attention path
    },
    "autodistill": {
        "num_layers": {"type": "int", "low": 1, "high": "teacher_layers"},
        "hidden_size": {"type": "int", "low": 144, "high": 384, "step": 48},
        "bottleneck_size": {"type": "int", "low": 48, "high": 240, "step": 48},
        "heads_per_layer": {"type": "categorical", "choices": [2, 3, 4, 6, 8, 12]},
        "intermediate_size": {"type": "int", "low": 144, "high": 1536, "step": 48},
        "stacked_ffn": {"type": "int", "low": 1, "high": 4},
        "embedding_size": {"type": "categorical", "choices": [48, 96, 144, 192, 288, 384]},
        "vocabulary": {"type": "categorical", "choices": ["full", "corpus"]},
        "learning_rate": {"type": "float", "low": 1e-5, "high": 5e-4, "log": True},
        "attention_dropout": {"type": "fixed", "value": 0.0},  # keeps the fused attention path
    },
}

# Reference students, run once with the regular budget for comparison with the frontier.
# "sigopt-2020": the 2020 SigOpt experiment's hand-picked DistilBERT-style baseline, from
# paretodistill.distill.presets.sigopt_baseline, without its "3 epochs" so that it trains on the
# same budget as the frontier candidates it is compared with. "distilbert": the short version
# (half the teacher's layers, all heads, lr 5e-5, soft/hard 0.5/0.5, temperature 2).
# "config": exactly what the config's [student] / [training] / [distillation] say.
BASELINES: dict[str, dict] = {
    "distilbert": {
        "num_layers": "0.5*teacher_layers",
        "heads_per_layer": "teacher_heads",
        "learning_rate": 5e-5,
        "soft_weight": 0.5,
        "hard_weight": 0.5,
        "temperature": 2.0,
    },
    "config": {},
}

# ``paretodistill search --preset NAME``: typed search settings put under the user's config and --set.
# Each names only what it changes from SearchSettings' defaults. The distillation side of "smoke"
# (tiny random teacher, a slice of the data, 24 steps) comes from paretodistill.distill.presets; this
# adds a 3-trial flash stage at half the steps and 2 regular trials, in-process (no worker start-up
# cost), on a space sized for the tiny teacher, with no threshold (a tiny teacher's students answer nothing).
SEARCH_PRESETS: dict[str, SearchSettings] = {
    "smoke": SearchSettings(
        name="smoke",
        sampler="tpe",
        n_startup_trials=3,
        backend="inline",
        thresholds={},
        space={
            "num_layers": {"type": "int", "low": 1, "high": "teacher_layers"},
            "heads_per_layer": {"type": "int", "low": 1, "high": "teacher_heads"},
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
        },
        flash=FlashSettings(n_trials=3, budget={"training.max_steps": 12, "training.eval_every_steps": 12}),
        regular=RegularSettings(top_k=2),
        heartbeat_interval=5,
        grace_period=20,
    ),
}


def preset_values(name: str, data: str | None = None, teacher: str | None = None, cache_dir: str | None = None) -> dict:
    """Config values of ``--preset NAME``: the distillation preset of that name (from
    ``paretodistill.distill.presets``, its data file may be None when the parts are given as files) under the search preset."""
    import dataclasses

    from paretodistill.config import _merge
    from paretodistill.distill.presets import PRESETS
    from paretodistill.errors import ConfigError

    if name not in SEARCH_PRESETS:
        raise ConfigError(f"--preset: unknown preset {name!r}; known: {sorted(SEARCH_PRESETS)}")
    distill = {}
    if name in PRESETS:
        distill = PRESETS[name](data, teacher, cache_dir)
    return _merge(distill, {"search": dataclasses.asdict(SEARCH_PRESETS[name])})
