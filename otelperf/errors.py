"""The two errors a user can cause, at the bottom of the package so every layer can raise them.

``ConfigError`` is a bad setting (argument, environment variable, file key); ``UserError`` is a
bad command-line input (a URL that answers nonsense, an unwritable ``--out``).  The CLI prints
either as one line and exits with status 2; library callers catch them like any ValueError.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting (argument, environment variable or file key) has an invalid value."""


class UserError(Exception):
    """A mistake on the command line or in an input file: printed as one line, exit status 2."""
