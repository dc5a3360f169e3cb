"""``imbal recommend``: a statistical race over configurations (docs/method.md, "The race").

:mod:`~imbal.study.race.rules` holds the race as arrays in, decisions out (rounds, drops, stops,
replay on a finished grid); :mod:`~imbal.study.race.folder` its ``race.json`` (identity, pinned
settings, checks on read); :mod:`~imbal.study.race.runner` trains round after round on the grid's
machinery, across shards; :mod:`~imbal.study.race.repeats` is a cross-validated study's race, whose
rounds are repeats of all folds (docs/method.md, "A race over repeats").
"""
