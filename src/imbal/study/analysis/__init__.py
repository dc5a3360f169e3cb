"""The statistics of a study on arrays: no files but the plan, no training, no rendering.

A study's runs are :class:`~imbal.study.analysis.outputs.StudyOutputs` (labels, hard predictions
and logits of validation and test, per run); :mod:`~imbal.study.analysis.stats` holds paired
estimates with seed and test-image noise, verdicts and power;
:mod:`~imbal.study.analysis.choice` the screens and the choice on validation and the one
cross-fitted confirmation on test; :mod:`~imbal.study.analysis.decision` the exploratory rows,
verdicts and the recommendation; :mod:`~imbal.study.analysis.crossval` the statistics of a
cross-validated study; :mod:`~imbal.study.analysis.plan` the analysis fixed before the runs. The report and the simulations run this one code path.
"""
