"""Score any Hugging Face QA checkpoint on a SQuAD file, or on one part of an article split."""

from __future__ import annotations

import json
from pathlib import Path

from paretodistill.config import FeatureSettings
from paretodistill.data.features import cached_features
from paretodistill.data.splits import ArticleSplit
from paretodistill.data.squad import load_squad
from paretodistill.errors import ConfigError
from paretodistill.evaluation.inference import evaluate_model
from paretodistill.hardware.device import pick_device, supports_fast_bf16
from paretodistill.models.loading import check_tokenizer_fits, load_qa_model, load_tokenizer
from paretodistill.outputs import EVALUATION, check_output, written_by


def evaluate_checkpoint(
    model_dir: str,
    data_file: str,
    part: str = "all",
    split_file: str | None = None,
    threshold: float | None = None,
    out_dir: str | None = None,
    batch_size: int = 64,
    cache_dir: str | None = None,
    features: FeatureSettings | None = None,
    log=print,
    trust_remote_code: bool = False,
    guard_out: bool = True,
    device: str = "auto",
) -> dict:
    """Official metrics of the checkpoint's answers; the threshold defaults to the one it was tuned with.

    ``trust_remote_code`` runs Python files the checkpoint ships; only when the user asked (``models.loading``).
    ``out_dir`` is checked before anything is read (``paretodistill.outputs``): never the model folder, an
    input, a study, or files an evaluation did not write. ``guard_out=False`` is for a caller that
    writes the evaluation into a folder of its own making (``analyze``, whose folder may lie in a study).
    """
    if out_dir and guard_out:
        check_output(out_dir, EVALUATION, {"the model folder": model_dir, "the data file": data_file,
                                           "the split file": split_file})
    data = load_squad(data_file)
    split_info = None
    if part != "all":
        split_path = Path(split_file) if split_file else Path(model_dir) / "split.json"
        if not split_path.exists():
            raise ConfigError(f"--part {part} needs a split: {split_path} does not exist (pass --split)")
        split = ArticleSplit.load(split_path)
        data = split.select(data, part)
        split_info = {"split_file": str(split_path), "part": part, "titles": list(split.titles(part))}
    saved = Path(model_dir) / "metrics.json"
    recorded = json.loads(saved.read_text()) if saved.exists() else {}
    if threshold is None:
        threshold = float(recorded.get("na_threshold", 0.0))
    if features is None:  # the lengths the checkpoint was evaluated with, so its figures reproduce
        features = FeatureSettings(**recorded.get("data", {}).get("feature_settings", {}))

    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    model = load_qa_model(model_dir, trust_remote_code=trust_remote_code, trained_head=True).to(pick_device(device))
    check_tokenizer_fits(tokenizer, model)
    bf16 = supports_fast_bf16(pick_device(device))
    log(f"evaluating {model_dir} on {len(data.examples)} questions of {data.source} ({part})")
    feature_set = cached_features(data.examples, tokenizer, features, cache_dir)
    scored = evaluate_model(model, data, feature_set, batch_size, bf16, threshold=threshold)
    result = {**scored.metrics, "data": data.source, "split": split_info}
    if out_dir:  # metrics.json first: its tag marks the folder as an evaluation's, so a killed write can be redone
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "metrics.json").write_text(json.dumps({**result, **written_by("evaluate")}, indent=1))
        scored.answers.write(out_dir, threshold)
    return result
