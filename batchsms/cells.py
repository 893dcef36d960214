"""Keep spreadsheet cells inert: never write a value that Excel or Sheets would run as a formula.

A cell starting with ``=``, ``@``, a tab or carriage return, or ``+``/``-`` followed
by anything but a plain number (``+61412345678`` is fine, ``+SUM(A1)`` is not) is a
formula to a spreadsheet (CSV injection). In a CSV file such a value gets a leading
``'``, which spreadsheets show as text; in a workbook it is stored as a text cell.
"""

from __future__ import annotations

import re

_PLAIN_SIGNED_NUMBER = re.compile(r"^[+-][\d ]+$")
_TRIGGERS = ("=", "@", "\t", "\r", "+", "-")
_FIRST = frozenset("=@\t\r+-")


def is_formula_like(value: str) -> bool:
    """True when a spreadsheet would treat ``value`` as a formula."""
    return bool(value) and value.startswith(_TRIGGERS) and not _PLAIN_SIGNED_NUMBER.match(value)


def csv_safe(value: str) -> str:
    """``value`` as a CSV cell that a spreadsheet shows as text instead of running it."""
    if not value or value[0] not in _FIRST:  # the common case: one character looked at
        return value
    return "'" + value if is_formula_like(value) else value
