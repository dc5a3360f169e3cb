"""The ``imbal`` command line."""
