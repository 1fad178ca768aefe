"""Saving a student so that it loads anywhere: the file defining a pruned student goes next to it.

A stock student (every layer keeps all its heads) is its family's transformers class and needs no
code. A pruned one (``models.pruned_bert``, ``models.pruned_encoders``) is saved with a copy of
the file that defines it and an ``auto_map`` pointing at it, so that transformers loads it with
``trust_remote_code=True`` where paretodistill is not installed. Those files import only torch and
transformers (transformers checks every import of a file it loads), which is why this module,
which knows them all, is not one of them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from paretodistill.models import pruned_bert, pruned_encoders


def save_with_code(model, out_dir: str | Path, **save_kwargs) -> Path:
    """Save ``model`` so that it loads without paretodistill.

    Calls ``save_pretrained``; for a pruned student also copies the file that defines it
    (:func:`model_code`) into ``out_dir`` and writes
    ``auto_map`` into ``config.json`` so that ``AutoModelForQuestionAnswering.from_pretrained(out_dir,
    trust_remote_code=True)`` works in a fresh Python. A stock model needs no code and gets none.
    """
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, **save_kwargs)
    if model_code(getattr(model.config, "model_type", None)) is not None:
        write_model_code(out_dir)
    return out_dir


def model_code(model_type: str | None):
    """(source file, config class, QA class) of a pruned student's model type; None for a stock one."""
    for module in (pruned_bert, pruned_encoders):
        for config_class, model_class in module.PRUNED_CLASSES:
            if config_class.model_type == model_type:
                return Path(module.__file__), config_class, model_class
    return None


def write_model_code(out_dir: str | Path) -> Path:
    """Put the file defining a saved pruned student next to it and point its ``auto_map`` at it.

    Also what an export does to a checkpoint's copy: it ships the installed code, never a file
    found in the checkpoint (which may not be the one paretodistill wrote).
    """
    out_dir = Path(out_dir)
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    source, config_class, model_class = model_code(config.get("model_type"))
    shutil.copyfile(source, out_dir / source.name)
    config["auto_map"] = {
        "AutoConfig": f"{source.stem}.{config_class.__name__}",
        "AutoModelForQuestionAnswering": f"{source.stem}.{model_class.__name__}",
    }
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out_dir
