"""Serving: asking a trained or exported student a question, in PyTorch or ONNX Runtime.

A room of its own between ``report`` and ``search`` in the import order
(``cli`` > ``recipes`` > ``report`` > ``serving`` > ``search`` > ...): ``report.export`` measures
the exported (float and int8) ONNX files with it, so it must sit below ``report``; it needs only
``data`` (features), ``evaluation`` (postprocessing) and ``models`` (loading), never the search or
training. Transformers no longer has a question-answering pipeline, so this is the one way from a
checkpoint folder to an answer.
"""
