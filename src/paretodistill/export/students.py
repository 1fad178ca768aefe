"""Shipping a chosen student: its checkpoint, a model card with its measured figures, optionally ONNX.

The export is a plain Hugging Face folder (weights, config, tokenizer and, for pruned students,
the model code), so it loads without paretodistill. Its model card (``export.model_card``)
repeats the numbers measured by the search, because a checkpoint separated from its numbers is
how wrong claims are made.

What can go wrong is guarded (``paretodistill.outputs``): ``--out`` never touches the study or the
checkpoint; the export is built in a hidden sibling folder and renamed into place, so a crash
leaves the earlier export or the new one, never half of one, and ``--force`` replaces only an
earlier export. A folder that appears at ``--out`` while the export runs is left as it is (the
final rename re-checks), and a killed export's staging folder is removed by the next one. The
files get the modes the umask gives. Only the checkpoint's regular files are copied: a symbolic
link is skipped (it may point anywhere), and Python files are not shipped: a pruned student gets
the installed file that defines it (``pruned_bert.py``, ``pruned_encoders.py``), and code of any
other kind needs ``--trust-remote-code``. Paths in the card, export.json and the copied JSON
files are relative to the study, or names only.

An ONNX export can be answered with where torch is not: each ONNX file carries in its metadata
what answering needs besides the tokenizer (the recorded no-answer threshold, the window lengths,
the postprocessing's limits, the model's inputs), and ``answer.py`` (``export/onnx_answer.py``)
beside it reads them and answers with onnxruntime, numpy and tokenizers alone.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from paretodistill.errors import ParetodistillError
from paretodistill.export.model_card import export_info, model_card
from paretodistill.export.runtime import ANSWER_SCRIPT, INT8_ONNX_FILE, ONNX_FILE, recorded_settings
from paretodistill.hardware.onnx import ONNX_OUTPUTS, export_onnx, onnx_session
from paretodistill.models.saving import model_code, write_model_code
from paretodistill.outputs import (
    EXPORT,
    EXPORT_FILE,
    WEIGHT_FILES,
    OutputRefused,
    check_output,
    is_export,
    normal_permissions,
)
from paretodistill.report.frontier import StudyData, TrialRecord, load_study_dir
from paretodistill.report.paths import public

COPY_IGNORE = (".state", ".staging", "__pycache__", "*.lock", "optimizer.pt", "scheduler.pt")
PUBLIC_JSON = ("metrics.json", "split.json")  # copied records whose paths are made relative


class ExportError(ParetodistillError):
    """A trial that cannot be exported (no checkpoint, no weights, ONNX missing or not matching PyTorch)."""


def find_record(data: StudyData, number: int, stage: str) -> TrialRecord:
    if stage not in data.stages:
        raise ExportError(f"the study has no {stage} stage (stages: {sorted(data.stages)}); pass --stage")
    for record in data.stages[stage]:
        if record.number == number:
            return record
    numbers = [r.number for r in data.stages[stage]]
    raise ExportError(f"no trial {number} in the {stage} stage (trials {min(numbers, default=0)}..{max(numbers, default=-1)})")


def resolve_checkpoint(record: TrialRecord, directory: Path) -> Path:
    """The trial's checkpoint folder; a relative path is taken from the study directory, then the working directory."""
    if not record.checkpoint:
        raise ExportError(
            f"{record.label} has no checkpoint ({record.category}"
            f"{': ' + record.failure_reason if record.failure_reason else ''}); only trials that kept one can be exported"
        )
    path = Path(record.checkpoint)
    for candidate in ([path] if path.is_absolute() else [directory / path, path]):
        if (candidate / "config.json").exists():
            return candidate
    raise ExportError(f"{record.label}: checkpoint {record.checkpoint} is not a Hugging Face folder (no config.json there)")


def export_trial(
    directory: str | Path,
    trial: int,
    out: str | Path,
    stage: str = "regular",
    name: str | None = None,
    onnx: bool = False,
    overwrite: bool = False,
    atol: float = 1e-4,
    int8: bool = False,
    data_file: str | None = None,
    trust_remote_code: bool = False,
    threads: int | None = None,
) -> dict:
    """Copy a trial's checkpoint to ``out`` with a model card (README.md) and export.json; optionally model.onnx.

    ``int8`` also writes model.int8.onnx and measures it against the float ONNX file (test exact/F1
    on the split's test part of ``data_file``, default the split's source file; batch-1 latency
    with the study's latency settings, ``threads`` replacing its thread count when given).
    ``overwrite`` replaces an earlier export at ``out``; ``trust_remote_code`` (module docstring)
    ships and runs Python files found in the checkpoint.
    """
    directory = Path(directory)
    data = load_study_dir(directory, name)
    record = find_record(data, trial, stage)
    source = resolve_checkpoint(record, directory)
    out = Path(out)
    inputs = {"the study": directory, "the trial's checkpoint": source, "the data file": data_file}
    check_output(out, EXPORT, inputs, force=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    claimed = claim(out)
    if not claimed:  # there already, or it appeared since the check: judged as it is now
        check_output(out, EXPORT, inputs, force=overwrite)
    replacing = not claimed and is_export(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".staging", dir=out.parent))
    try:
        info = _write_export(staging, data, record, source, out.name, onnx or int8, atol, int8, data_file,
                             trust_remote_code, threads)
        normal_permissions(staging)
        _put_in_place(staging, out, replacing)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if claimed:
            _release(out)
        raise
    return {"out": str(out), "files": sorted(p.name for p in out.iterdir()), **info}


def claim(out: Path) -> bool:
    """Create ``out`` as an empty folder when nothing is there; whether this call created it.

    A folder that exists from now on is the export's own: whatever someone puts into it while the
    export runs makes the final rename fail instead of being replaced.
    """
    try:
        out.mkdir()
    except FileExistsError:
        return False
    return True


def _release(out: Path) -> None:
    """Remove the folder :func:`claim` made, only while it is still empty (``rmdir`` refuses otherwise)."""
    try:
        out.rmdir()
    except OSError:
        pass


def _put_in_place(staging: Path, out: Path, replacing: bool) -> None:
    """Rename the finished export to ``out``; an earlier export is first renamed aside, then removed.

    Each rename re-checks atomically what the check at the start saw: a folder is renamed onto
    ``out`` only while ``out`` is absent or empty, and what is renamed aside is removed only when
    it is an export. Anything else found there is put back and left as it is.
    """
    if not replacing:
        try:
            os.rename(staging, out)  # onto the empty folder claimed (or found empty) at the start
        except OSError as error:
            raise OutputRefused(f"--out {out} was filled by something else while exporting ({error.strerror}); it "
                                "was left as it is and this export discarded: choose another --out") from None
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".old", dir=out.parent))
    os.replace(out, aside)  # onto the empty folder just made
    if not is_export(aside):
        os.replace(aside, out)
        raise OutputRefused(f"--out {out} was replaced by something that is not an export while exporting; it was "
                            "left as it is and this export discarded: choose another --out")
    try:
        os.rename(staging, out)
    except OSError:
        os.replace(aside, out)  # the earlier export back where it was
        raise
    shutil.rmtree(aside, ignore_errors=True)


_LEFT_BEHIND = re.compile(r"(?P<pid>\d+)\.[a-z0-9_]{8}\.(?P<kind>staging|old)")  # .NAME.<pid>.<mkdtemp's 8>.staging


def remove_stale_staging(out: Path) -> list[Path]:
    """Remove what a killed export to ``out`` left beside it; returns what was removed.

    Only folders this module names (``.NAME.<pid>.<random>.staging``, ``.old`` for an earlier export set
    aside) whose process is gone from this machine: a running export's staging folder is its own. A
    set-aside earlier export is removed only once ``out`` holds an export again.
    """
    prefix = f".{out.name}."
    removed = []
    for path in out.parent.iterdir():
        match = _LEFT_BEHIND.fullmatch(path.name[len(prefix):]) if path.name.startswith(prefix) else None
        if match is None or path.is_symlink() or not path.is_dir() or _running(int(match["pid"])):
            continue
        if match["kind"] == "staging" or is_export(out):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (elsewhere than POSIX: assumed, as it cannot be asked safely)."""
    if os.name != "posix" or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_export(folder: Path, data: StudyData, record: TrialRecord, source: Path, name: str, onnx: bool,
                  atol: float, int8: bool, data_file: str | None, trust_remote_code: bool,
                  threads: int | None = None) -> dict:
    """Everything an export holds, written into ``folder`` (the staging folder); returns export.json's content."""
    warnings = copy_checkpoint(source, folder, trust_remote_code)
    config = json.loads((folder / "config.json").read_text())
    saved_metrics = _read_json(folder / "metrics.json")
    onnx_check = export_checked_onnx(folder, folder / ONNX_FILE, atol=atol, trust_remote_code=trust_remote_code,
                                     answer_metadata=False) if onnx else None
    info = export_info(data, record, source, config, saved_metrics, onnx_check)
    info["name"] = name
    info["warnings"] = warnings
    if not any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        info["warnings"].append("the checkpoint holds no tokenizer: load the teacher's")
    if int8:
        info["variants"] = int8_variants(folder, info, config, data_file, trust_remote_code, threads)
    for file_name in PUBLIC_JSON:  # after int8_variants, which reads split.json's source file
        if (folder / file_name).is_file():
            (folder / file_name).write_text(json.dumps(public(_read_json(folder / file_name)), indent=1))
    info = public(info)
    (folder / EXPORT_FILE).write_text(json.dumps(info, indent=1, default=str))
    # the card is written from ``info``, already public; its examples quote the folder's name, which a
    # second pass for absolute paths would break (a name ending in ")" or "`" makes "/answer.py" look like one)
    (folder / "README.md").write_text(model_card(info), encoding="utf-8")
    if onnx:
        ship_answer_script(folder)
    return info


def ship_answer_script(folder: Path) -> None:
    """Write the answer settings into the folder's ONNX files and copy ``answer.py`` beside them.

    Done last: the threshold is read as ``paretodistill predict`` reads it, from metrics.json or else
    export.json, which only now exists.
    """
    from paretodistill.export import onnx_answer

    for file_name in (ONNX_FILE, INT8_ONNX_FILE):
        if (folder / file_name).is_file():
            write_answer_metadata(folder / file_name, folder)
    shutil.copyfile(onnx_answer.__file__, folder / ANSWER_SCRIPT)


def write_answer_metadata(onnx_path: str | Path, model_dir: str | Path) -> dict[str, str]:
    """Store in the ONNX file's metadata what answering with it needs besides the tokenizer; returns it.

    The model folder's recorded threshold and feature lengths (``recorded_settings``, as predict
    uses them), the postprocessing's n-best and longest answer (``extract_answers``' defaults, which
    predict uses) and the inputs the graph takes, so ``export/onnx_answer.py`` answers as predict does.
    """
    import onnx

    from paretodistill.evaluation.postprocess import extract_answers
    from paretodistill.export.onnx_answer import AnswerSettings

    recorded = recorded_settings(model_dir)
    postprocess = inspect.signature(extract_answers).parameters
    model = onnx.load(str(onnx_path))
    initializers = {tensor.name for tensor in model.graph.initializer}
    settings = AnswerSettings(
        na_threshold=recorded.na_threshold,
        max_seq_length=recorded.features.max_seq_length,
        doc_stride=recorded.features.doc_stride,
        max_query_length=recorded.features.max_query_length,
        n_best=postprocess["n_best"].default,
        max_answer_length=postprocess["max_answer_length"].default,
        input_names=tuple(i.name for i in model.graph.input if i.name not in initializers),
    ).to_metadata()
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **settings})
    onnx.save(model, str(onnx_path))
    return settings


def copy_checkpoint(source: Path, folder: Path, trust_remote_code: bool = False) -> list[str]:
    """Copy the checkpoint's regular files into ``folder``; returns warnings for what was left out.

    Symbolic links are skipped, not followed: a checkpoint is exported, not what its links point
    at. Python files are not copied unless ``trust_remote_code``: a pruned student gets the
    installed model code (``write_model_code``); any other ``auto_map`` is refused.
    """
    config = _read_json(source / "config.json")
    code = model_code(config.get("model_type"))  # a pruned student: the installed file that defines it
    pruned = code is not None
    if "auto_map" in config and not pruned and not trust_remote_code:
        raise ExportError(f"{source}: config.json maps its classes to Python files in the checkpoint (auto_map) and it "
                          "is not a paretodistill student; paretodistill neither runs nor ships such code unless you "
                          "pass --trust-remote-code (only for a checkpoint whose code you have read)")
    skipped: dict[str, list[str]] = {"links": [], "code": []}
    patterns = shutil.ignore_patterns(*COPY_IGNORE)

    def ignore(where: str, names: list[str]) -> set[str]:
        left_out = set(patterns(where, names))
        for entry in names:
            path = Path(where) / entry
            relative = path.relative_to(source).as_posix()
            if entry in left_out:
                continue
            if path.is_symlink():
                skipped["links"].append(relative)
                left_out.add(entry)
            elif not trust_remote_code and path.suffix == ".py":
                skipped["code"].append(relative)
                left_out.add(entry)
        return left_out

    shutil.copytree(source, folder, ignore=ignore, dirs_exist_ok=True)
    if not (folder / "config.json").is_file() or not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise ExportError(f"{source}: no config.json and weights as regular files in the checkpoint"
                          + (f" (symbolic links are not followed: {', '.join(skipped['links'])})" if skipped["links"] else ""))
    if pruned and not trust_remote_code:
        write_model_code(folder)
        skipped["code"] = [f for f in skipped["code"] if f != code[0].name]
    warnings = []
    if skipped["links"]:
        warnings.append(f"symbolic links in the checkpoint were not copied (an export holds the checkpoint's own files "
                        f"only): {', '.join(skipped['links'])}")
    if skipped["code"]:
        warnings.append(f"Python files in the checkpoint were not copied (pass --trust-remote-code to ship them): "
                        f"{', '.join(skipped['code'])}")
    return warnings


def int8_variants(out: Path, info: dict, config: dict, data_file: str | None, trust_remote_code: bool = False,
                  threads: int | None = None) -> dict:
    """Quantize model.onnx to int8 and measure both files; the test part comes from the folder's split.json.

    ``threads`` times both files on that many threads (serving often gets one core) instead of the study's.
    """
    from paretodistill.data.splits import ArticleSplit, read_part
    from paretodistill.export.variants import measure_variants, quantize_int8, timing_settings

    quantize_int8(out / ONNX_FILE, out / INT8_ONNX_FILE)
    test = None
    if not (out / "split.json").exists():
        info["warnings"].append("no split.json beside the checkpoint: int8 test exact/F1 not measured")
    else:
        split = ArticleSplit.load(out / "split.json")
        sources = list(split.files.get("test", ())) or [data_file or split.source]
        missing = [source for source in sources if not Path(source).exists()]
        if "test" not in split.files and data_file is None and missing:
            info["warnings"].append(f"the split's data file {Path(sources[0]).name} is not here: int8 test exact/F1 not "
                                    "measured (pass --data)")
        elif missing:
            info["warnings"].append(f"the test file {Path(missing[0]).name} is not here: int8 test exact/F1 not measured")
        else:
            test = read_part(split, "test", data_file)
    threshold = info.get("na_threshold")
    return measure_variants(out, test, 0.0 if threshold is None else float(threshold), int(config["vocab_size"]),
                            timing_settings(info.get("latency_settings"), threads), trust_remote_code=trust_remote_code)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        return {}


def export_checked_onnx(model_dir: str | Path, onnx_path: str | Path, atol: float = 1e-4, opset: int = 17,
                        trust_remote_code: bool = False, answer_metadata: bool = True) -> dict:
    """Export ``model_dir`` to ONNX (``hardware.onnx``, dynamic batch and sequence axes) and check it against PyTorch.

    The check runs a different shape than the export trace so that a baked-in shape fails it;
    ExportError when a logit differs by more than ``atol``. The model loads through
    ``load_qa_model``: a pruned student with the installed code, never a checkpoint's copy unless
    ``trust_remote_code``. ``answer_metadata`` writes the folder's answer settings into the file
    (``write_answer_metadata``); an export writes them once it is complete.
    """
    try:
        import onnx  # noqa: F401  (the checker below)
        import onnxruntime  # noqa: F401  (the check's session)
    except ImportError:
        raise ExportError("ONNX export needs the onnx and onnxruntime packages: pip install 'paretodistill[onnx]'") from None
    import numpy as np
    import torch

    from paretodistill.models.loading import load_qa_model

    model_dir, onnx_path = Path(model_dir), Path(onnx_path)
    model = load_qa_model(model_dir, trust_remote_code=trust_remote_code).eval()
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)

    def batch(size: int, length: int) -> dict[str, torch.Tensor]:
        ids = torch.randint(1, vocab, (size, length), generator=generator)
        mask = torch.ones_like(ids)
        mask[-1, length // 2 :] = 0
        types = torch.zeros_like(ids)
        if (getattr(model.config, "type_vocab_size", 2) or 1) > 1:  # RoBERTa has one type, DeBERTa-v3 none
            types[:, length // 3 :] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    export_onnx(model, onnx_path, batch(2, 16), dynamic=True, opset=opset)
    onnx.checker.check_model(str(onnx_path))
    session = onnx_session(onnx_path)
    names = tuple(i.name for i in session.get_inputs())  # less any input the graph ignores (DeBERTa-v3's types)
    check = {k: v for k, v in batch(3, 40).items() if k in names}
    start, end = session.run(list(ONNX_OUTPUTS), {k: v.numpy() for k, v in check.items()})
    with torch.inference_mode():
        reference = model(**check)
    diff = float(max(np.abs(start - reference.start_logits.numpy()).max(), np.abs(end - reference.end_logits.numpy()).max()))
    if not diff <= atol:
        raise ExportError(f"ONNX logits differ from PyTorch's by {diff:.2e} > tolerance {atol:g}; {onnx_path} is not trustworthy")
    if answer_metadata:
        write_answer_metadata(onnx_path, model_dir)
    return {"file": onnx_path.name, "opset": opset, "inputs": list(names), "max_abs_diff": diff, "atol": atol,
            "checked_shape": list(check["input_ids"].shape)}
