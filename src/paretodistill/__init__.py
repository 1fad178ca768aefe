"""paretodistill: distil SQuAD 2.0 QA models and find the accuracy / size / latency frontier."""

from paretodistill.registration import register_when_transformers_loads

__version__ = "0.1.0"

register_when_transformers_loads()  # stock AutoModelForQuestionAnswering then loads pruned students
