"""What a search reads, checked once before its first trial, and known by content.

A malformed data file or a teacher without weights fails every trial the same way: found inside
the trials, it spent the whole budget on failures and left a study that a rerun with the fixed
file thought finished. So the search reads them first: a bad one is one line, exit status 2, and
no trial is spent. Their sha256 digests are what the study's identity (``search.identity``)
records, so a moved file is the same input and an edited one is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from paretodistill.config import DEFAULT_TRIAL_FUNCTION, ExperimentConfig
from paretodistill.data.squad import load_squad
from paretodistill.errors import ConfigError, ModelMismatchError


@dataclass(frozen=True)
class Inputs:
    data: dict[str, str | list[str]]  # sha256 of the split file and of each extra training file
    teacher: str | None  # sha256 of the teacher's config and weight files
    teacher_folder: str | None = None  # where they are (a hub id's cached snapshot), for the teacher's shape
    seed_folder: str | None = None  # student.init_from's checkpoint, when the students are seeded from one


def check_inputs(config: ExperimentConfig) -> Inputs:
    """Read the data files and the teacher as the trials will; raise a ParetodistillError naming
    the first problem. The distillation trial needs both; another trial function (a test's, a
    user's) gets them checked only when given."""
    needs_both = config.search.trial_function == DEFAULT_TRIAL_FUNCTION
    data: dict[str, str | list[str]] = {}
    if config.data.split_file:
        data["split_file"] = load_squad(config.data.split_file).fingerprint
        data["extra_train_files"] = [load_squad(path, "train").fingerprint for path in config.data.extra_train_files]
    elif needs_both:
        raise ConfigError("no data: give --data FILE or data.split_file (a SQuAD 2.0 file to split by article)")
    teacher = None
    if config.teacher.path:
        from paretodistill.distill.teacher_cache import weights_fingerprint  # torch and transformers:
        from paretodistill.models.student import resolve_teacher  # only when there is a teacher to read

        folder = resolve_teacher(config.teacher.path)  # a missing hub id or an unsupported family
        try:
            teacher = weights_fingerprint(folder)
        except FileNotFoundError as error:
            raise ModelMismatchError(f"teacher {config.teacher.path}: {error}") from None
    elif needs_both:
        raise ModelMismatchError("no teacher: give --teacher DIR or teacher.path (a QA checkpoint)")
    seed = None
    if config.teacher.path and needs_both:
        from paretodistill.distill.run import check_seed_checkpoint

        seed = check_seed_checkpoint(config, folder)  # a seed whose tokenizer is not the teacher's
    return Inputs(data, teacher, folder if config.teacher.path else None, seed)
