"""paretodistill: distil SQuAD 2.0 QA models and find the accuracy / size / latency frontier."""

__version__ = "0.1.0"
