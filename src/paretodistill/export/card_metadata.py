"""The YAML front matter of a model card, in the form the Hugging Face hub reads (licence, base model,
datasets, and a ``model-index`` with the measured figures), rendered by ``huggingface_hub`` itself.

The licence is taken from the card of the checkpoint the model was distilled or fine-tuned from,
where that card records one; otherwise the card says ``license: other`` and that it was not
recorded: a licence is never guessed. Figures are the split's validation and test parts, named as
such, of the data file they were split from.
"""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

METRICS = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")
PARTS = ("validation", "test")
TAGS = ["question-answering", "extractive-qa", "paretodistill"]
STUDENT_TAGS = [*TAGS, "distillation"]
UNRECORDED_LICENSE = "not-recorded"
# The official files of each SQuAD version (and the hub ids); any other file is named as itself.
KNOWN_DATASETS = ((re.compile(r"^(squad_v2\b|(dev|train)-v2\.0)"), "squad_v2", "SQuAD 2.0"),
                  (re.compile(r"^(squad\b|(dev|train)-v1\.1)"), "squad", "SQuAD 1.1"))


def dataset_id(file: str) -> tuple[str, str]:
    """(hub id, readable name) of a data file: squad_v2 / squad for the official files, else the file's name."""
    name = Path(str(file).split(":")[0]).name
    for pattern, hub_id, readable in KNOWN_DATASETS:
        if pattern.match(name):
            return hub_id, readable
    return name, name


def recorded_license(checkpoint: str | Path | None) -> dict:
    """``license`` (and ``license_name``/``license_link`` for "other") from the checkpoint folder's card, or {}."""
    card_file = Path(str(checkpoint)) / "README.md" if checkpoint else None
    if card_file is None or not card_file.is_file():
        return {}
    data = ModelCard(card_file.read_text(encoding="utf-8"), ignore_metadata_errors=True).data
    return {key: getattr(data, key) for key in ("license", "license_name", "license_link") if getattr(data, key, None)}


def eval_results(split_file: str, validation: dict, test: dict, split_seed: int | None = None) -> list[EvalResult]:
    """One result per metric and part: the part is the split name, the data file the dataset."""
    hub_id, readable = dataset_id(split_file)
    results = []
    for part, metrics in zip(PARTS, (validation, test)):
        for key in METRICS:
            if isinstance((metrics or {}).get(key), (int, float)):
                results.append(EvalResult(
                    task_type="question-answering", task_name="Extractive question answering",
                    dataset_type=hub_id, dataset_name=f"{readable}, {part} articles", dataset_split=part,
                    dataset_args={"split_file": Path(str(split_file)).name, "split_by": "article",
                                  **({"split_seed": split_seed} if split_seed is not None else {})},
                    metric_type=key, metric_name=key, metric_value=float(metrics[key])))
    return results


def front_matter(model_name: str, base_model: str | None, license_: dict, datasets: list[str], results: list[EvalResult],
                 tags: list[str] = TAGS, language: str | None = "en") -> str:
    """``---``, the YAML, ``---``: what the hub shows beside the card (no licence recorded: ``other``, said so)."""
    license_ = license_ or {"license": "other", "license_name": UNRECORDED_LICENSE}
    data = ModelCardData(
        model_name=model_name, base_model=base_model or None, datasets=list(dict.fromkeys(datasets)) or None,
        library_name="transformers", pipeline_tag="question-answering", tags=list(tags), language=language,
        eval_results=results or None, **license_)
    return f"---\n{data.to_yaml()}\n---\n"


def license_note(license_: dict) -> str | None:
    """A line for the card when no licence was recorded, else None."""
    if license_:
        return None
    return ("Licence: not recorded with the base checkpoint, so the front matter says `license: other`; check the "
            "terms of the teacher and of its pretrained encoder before sharing this model.")
