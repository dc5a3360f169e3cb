"""Training a study's cells (``imbal grid``): which cells a study file holds, and running them safely.

:mod:`~imbal.study.run.spec` reads a study file into cells (data set x sampler x loss x seed with
their settings); :mod:`~imbal.study.run.grid` trains them, resumable, ``--jobs N`` at once, each in
a process forked from a warm server (:mod:`~imbal.study.run.warm`, :mod:`~imbal.study.run.preload`);
:mod:`~imbal.study.run.locks` keeps two processes from training one cell and
:mod:`~imbal.study.run.shards` keeps the shards of one folder on one n.
"""
