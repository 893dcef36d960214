"""Keep spreadsheet cells inert: never write a value that Excel or Sheets would run as a formula.

A field starting with ``=``, ``@``, or ``+``/``-`` followed by anything but a plain
number is a formula to a spreadsheet (CSV injection). Checking only the start of
a cell is not enough: Excel opens a ``.csv`` with the list separator of the
user's locale (``;`` in much of Europe), so ``Bob;=cmd|' /C calc'!A0`` written to
a comma CSV is read as ``Bob`` and a formula. Nor does quoting the cell save it:
in ``12,"Bob;=cmd…"`` read with ``;`` the field runs ``12,"Bob`` up to the ``;``,
the quote is not at a field start, and ``=cmd…`` is a field of its own.

So a value is checked as every delimiter would cut it: split at ``,`` ``;`` tab
``|`` and line breaks, a *segment* is dangerous when it starts (after spaces and
``"``) with ``=``, ``@``, or ``+``/``-`` not followed by a plain number; a value
starting with a tab or carriage return is dangerous too. A dangerous value gets
a ``'`` at its start *and* a ``'`` at the start of every dangerous segment, so
that whichever separator a spreadsheet uses, each field it makes starts with
``'`` (shown as text), and :func:`tables.write_csv` writes such rows quoted.

A plain number is a sign then digits with the punctuation of numbers and phone
numbers (spaces, ``( ) . - /``): ``-12.50``, ``+61 412 345 678`` and
``+1 (555) 010-9999`` stay as written. Excel may still read the last one as
arithmetic, but a formula without a letter can call no function, name no cell
and reach no other program, and a ``'`` would change the number for every
program reading the file (including batchsms reading its own results back).
In a workbook text is always written as a text cell (numbers and dates as themselves), so
none of this is needed there.
"""

from __future__ import annotations

import re

#: One pass over the value tells most cells apart: with none of these it cannot be dangerous.
_TRIGGER = re.compile(r"[=@+\-\t\r]")
_SEPARATOR = r"[,;\t|\r\n]"
_FIRST = frozenset("=@+-\t\r")
_ANY_SEPARATOR = re.compile(_SEPARATOR)
#: After the sign of a plain number: digits with the punctuation of numbers and phone numbers.
_NUMBER_BODY = r"[\d ().\-/]*\d[\d ().\-/]*"
_PLAIN_NUMBER_CELL = re.compile(r"[+-]" + _NUMBER_BODY + r"\s*\Z")
#: The (empty) position where a dangerous segment starts: a ``'`` goes there.
_DANGEROUS_SEGMENT = re.compile(
    r"(?:^(?=[\t\r])"  # a value starting with a tab or carriage return
    r"|(?:^|(?<=" + _SEPARATOR + r"))"  # or the start of any segment
    r"(?=(?:[^\S\t\r\n]|\")*"  # that, after spaces and quotes,
    r"(?:[=@]|[+-](?!" + _NUMBER_BODY + r"\s*(?:" + _SEPARATOR + r"|\Z)))))"  # starts a formula
)


def is_formula_like(value: str) -> bool:
    """True when a spreadsheet would read some field of ``value`` as a formula, whatever its separator."""
    return bool(value) and _TRIGGER.search(value) is not None and _DANGEROUS_SEGMENT.search(value) is not None


def csv_safe(value: str) -> str:
    """``value`` as a CSV cell that a spreadsheet shows as text instead of running it.

    Unchanged values are returned as the same object, which :func:`tables.write_csv`
    relies on to find the rows it must quote.
    """
    if not value or value.isalnum() or _TRIGGER.search(value) is None:  # the common cases, in C
        return value
    first = value[0]
    if first not in _FIRST:
        if _ANY_SEPARATOR.search(value) is None:  # one field, and it starts safely ("2026-12-01")
            return value
    elif first in "+-" and (value[1:].isdigit() or _PLAIN_NUMBER_CELL.match(value) is not None):
        return value  # "+61412345678", "+61 412 345 678", "-12.50"
    if _DANGEROUS_SEGMENT.search(value) is None:
        return value
    inert = _DANGEROUS_SEGMENT.sub("'", value)
    return inert if inert.startswith("'") else "'" + inert

