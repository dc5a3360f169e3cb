"""Simulated studies with known truth: the proofs of the report's and the race's error rates.

:mod:`~imbal.study.simulation.studies` draws studies (configurations x seeds x images) and runs the
report's rule on them; :mod:`~imbal.study.simulation.races` does the same for the race;
:mod:`~imbal.study.simulation.tables` prints the tables of docs/method.md
(``python -m imbal.study.simulation.tables``).
"""
