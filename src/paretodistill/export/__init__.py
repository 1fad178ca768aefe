"""Export: shipping a chosen student and asking it questions, in PyTorch or ONNX Runtime.

A student leaves the search here: its checkpoint with a model card (``students``, ``model_card``),
a checked ``model.onnx`` and its int8 variant (``variants``; ``int8`` tables every frontier
student's), and ``predict``, the one way from a model folder to an answer (Transformers no longer
has a question-answering pipeline). ``onnx_answer`` is the torch-free copy shipped beside the ONNX
files. The room sits above ``report`` in the import order: it reads a study through the report's
reader (``report.frontier``), while a report never loads or measures a model. ONNX files are
written and opened through ``hardware.onnx``, as the search's latency does.
"""
