"""Exceptions for what stops a run. Problems in the data are Issues, not exceptions.

Every message says where (file:row, URL, option) and what to do; ``cli.py`` prints
it as one line and turns it into the exit code.
"""

from __future__ import annotations


class BatchSmsError(Exception):
    """A run cannot start or go on."""

    exit_code = 2


class SheetError(BatchSmsError):
    """The contact sheet cannot be read or has no usable columns."""


class TemplateError(BatchSmsError):
    """The message template cannot be read or compiled."""


class ConfigError(BatchSmsError):
    """An option, environment variable or config file value is wrong."""


class JournalError(BatchSmsError):
    """The journal disagrees with this run (the sheet or template changed) or cannot be used."""


class AuthError(BatchSmsError):
    """The API refused the credentials: every row would fail, so the run stops."""
