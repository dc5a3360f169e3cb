"""Studies: many runs of one question (which loss and sampler?), run, raced, analysed and reported.

Sub-packages, each with one job, from the bottom layer up (an import never goes from a lower layer
to a higher one; tests/test_import_cycles.py checks it):

- :mod:`~imbal.study.analysis`: the statistics on arrays of predictions (paired estimates with
  seed and image noise, the analysis plan, the choice on validation and its confirmation on test);
  nothing here trains or renders.
- :mod:`~imbal.study.run`: a study file's cells and how they are trained (``imbal grid``): warm
  processes, locks, shards, interrupts.
- :mod:`~imbal.study.race`: ``imbal recommend``, the statistical race over configurations, on the
  grid's machinery.
- :mod:`~imbal.study.simulation`: simulated studies with known truth that prove the decision
  rules' error rates.
- :mod:`~imbal.study.report`: ``imbal report`` and ``imbal embed``: a study folder read once into
  one object per data set, then sections, tables, figures, Markdown and HTML.

:mod:`imbal.study.demo` (``make demo``) runs a small grid and its report.
"""
