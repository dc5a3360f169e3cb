"""``imbal report`` and ``imbal embed``: a study folder as findings first, then tables and figures.

:mod:`~imbal.study.report.collect` reads the folder once into one
:class:`~imbal.study.report.data.DatasetReport` per data set (facts, runs, outputs), which every
section and the archive writer take; :mod:`~imbal.study.report.sections` builds the blocks,
:mod:`~imbal.study.report.render` turns them into Markdown and HTML, and
:mod:`~imbal.study.report.build` puts a report together.
"""
