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
# the model types of models/pruned_bert.py and models/pruned_encoders.py (a test holds the two lists equal)
STUDENT_MODEL_TYPES = ("paretodistill_bert", "paretodistill_distilbert", "paretodistill_roberta", "paretodistill_electra")


def register_students() -> None:
    """Register the pruned students' config and QA classes with transformers' Auto classes."""
    import paretodistill.models.pruned_bert  # noqa: F401  (registers at import)
    import paretodistill.models.pruned_encoders  # noqa: F401  (registers at import)


def register_placeholders() -> None:
    """Stand-in configs for the students' model types, which register the real classes when first used.

    The trigger fires while transformers imports its auto module, which a modeling module (BERT's,
    through ``modeling_layers``) may be halfway through importing: importing the students' code then,
    which subclasses that module's classes, would break the user's own import. A stand-in costs
    nothing; ``AutoConfig`` builds a config through ``from_dict`` (or the class itself), and the
    stand-in swaps in the real classes there, long after every import has finished.
    """
    from transformers import AutoConfig, PretrainedConfig

    def stand_in(model_type: str) -> type:
        def build(cls, *args, **kwargs):
            register_students()
            return AutoConfig.for_model(model_type, *args, **kwargs)

        def from_dict(cls, config_dict, **kwargs):
            register_students()
            return type(AutoConfig.for_model(model_type)).from_dict(config_dict, **kwargs)

        return type(f"Unregistered_{model_type}", (PretrainedConfig,),
                    {"model_type": model_type, "__new__": build, "from_dict": classmethod(from_dict)})

    for model_type in STUDENT_MODEL_TYPES:
        AutoConfig.register(model_type, stand_in(model_type), exist_ok=True)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Registers stand-ins (:func:`register_placeholders`) right after the trigger module has been imported."""

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
            register_placeholders()

        spec.loader.exec_module = exec_module
        return spec


def register_when_transformers_loads() -> None:
    if TRIGGER in sys.modules:
        register_students()
    elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
