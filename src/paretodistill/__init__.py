"""paretodistill: distil SQuAD 2.0 QA models and find the accuracy / size / latency frontier.

The Python API (:mod:`paretodistill.api`): ``paretodistill.search(...)`` and ``paretodistill.distill(...)``
run what the commands of those names run and return typed results; ``paretodistill.Predictor`` loads
a student once and answers many questions. Each loads its heavy modules on first use, so that
``import paretodistill`` stays cheap.
"""

from paretodistill.callable_packages import make_callable
from paretodistill.registration import register_when_transformers_loads

__version__ = "0.1.0"

register_when_transformers_loads()  # stock AutoModelForQuestionAnswering then loads pruned students
make_callable("paretodistill.search")  # paretodistill.search(...): api.search; the search room stays a package
make_callable("paretodistill.distill")  # paretodistill.distill(...): api.distill

# the API's types, imported on first use: {name: module}
LAZY_EXPORTS = {
    "Predictor": "paretodistill.export.predict",
    "Prediction": "paretodistill.export.predict",
    "SearchResult": "paretodistill.api",
    "FrontierMember": "paretodistill.api",
    "Baseline": "paretodistill.api",
    "TrainedStudent": "paretodistill.api",
    "DistillResult": "paretodistill.api",
}

__all__ = ["__version__", "search", "distill", *LAZY_EXPORTS]


def __getattr__(name: str):
    if name in LAZY_EXPORTS:
        import importlib

        value = getattr(importlib.import_module(LAZY_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *LAZY_EXPORTS})
