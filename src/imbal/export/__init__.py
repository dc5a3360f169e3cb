"""``imbal export`` and ``imbal card``: a finished run's model for pipelines that do not run imbal.

:mod:`~imbal.export.source` loads a run as ``imbal predict`` does and wraps its model as the graph
an export holds (images in [0, 1] -> logits and probabilities); :mod:`~imbal.export.onnx_export`
and :mod:`~imbal.export.torchscript_export` serialise it and run it back; :mod:`~imbal.export.parity`
checks the file against PyTorch before anything is written; :mod:`~imbal.export.preprocessing`
describes, for a caller in any language, what an input must look like; :mod:`~imbal.export.card`
(with :mod:`~imbal.export.verdict` for a run inside a study) writes the model card;
:mod:`~imbal.export.bundle` puts an export folder together.
"""
