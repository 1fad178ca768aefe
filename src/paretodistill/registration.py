"""``import paretodistill`` lets stock transformers load every student, pruned ones included.

A pruned student's ``model_type`` (``paretodistill_bert``, ``paretodistill_distilbert``, ...) is
unknown to transformers until its classes are registered with the Auto classes. Registering
imports torch and the model code (seconds), which ``import paretodistill`` should not cost a
command that never loads a model: so the registration runs when transformers' auto-model module
is imported (at once if it already is), before any ``AutoModel*`` class can be used to load
a student.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

TRIGGER = "transformers.models.auto.modeling_auto"


def register_students() -> None:
    """Register the pruned students' config and QA classes with transformers' Auto classes."""
    import paretodistill.models.pruned_bert  # noqa: F401  (registers at import)
    import paretodistill.models.pruned_encoders  # noqa: F401  (registers at import)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Runs :func:`register_students` right after the trigger module has been imported."""

    def find_spec(self, name, path, target=None):
        if name != TRIGGER:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            register_students()

        spec.loader.exec_module = exec_module
        return spec


def register_when_transformers_loads() -> None:
    if TRIGGER in sys.modules:
        register_students()
    elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
