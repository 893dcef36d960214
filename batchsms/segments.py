"""GSM-7 / UCS-2 detection and SMS segment counting (GSM 03.38).

Written here rather than taken from PyPI: the counters measured there miscount
extension characters that straddle a part boundary, or emoji (two UTF-16 code
units) that straddle one. A character is never split across two parts: when it
does not fit in what is left of a part, the part ends early.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters of the extension table: each costs two septets (escape + code).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

#: Look-alikes that silently force UCS-2, and the GSM-7 text that can replace them.
REPLACEABLE: dict[str, str] = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2015": "-", "\u2212": "-", "\u2010": "-",
    "\u2011": "-", "\u2026": "...", "\u00a0": " ", "\u2002": " ", "\u2003": " ",
    "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u2007": " ", "\u2008": " ",
    "\u200b": "", "\ufeff": "", "\t": " ",
}
_REPLACE_TABLE = str.maketrans(REPLACEABLE)
# One C-level scan answers "any character outside GSM-7?" and "any extension character?".
_NON_GSM7 = re.compile("[^" + re.escape("".join(sorted(GSM7_ALL))) + "]")
_EXTENSION = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENSION))) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")
# A character that neither GSM-7 nor a look-alike replacement covers: replacing cannot help.
_NOT_REPLACEABLE = re.compile("[^" + re.escape("".join(sorted(GSM7_ALL | set(REPLACEABLE)))) + "]")


class Segments(NamedTuple):
    """How a text travels: its encoding, its length in that encoding's units, its parts."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 basic or extension table."""
    return _NON_GSM7.search(text) is None


def _greedy_parts(costs, part_size: int) -> int:
    """Pack characters of the given costs into parts without splitting any character."""
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part_size:
            parts += 1
            used = cost
        else:
            used += cost
    return parts


def count(text: str) -> Segments:
    """Count the segments ``text`` takes; an empty text takes none."""
    if _NON_GSM7.search(text) is None:
        extension = len(_EXTENSION.findall(text))
        septets = len(text) + extension
        if septets == 0:
            return Segments("GSM-7", 0, 0)
        if septets <= GSM7_SINGLE:
            return Segments("GSM-7", septets, 1)
        if not extension:
            return Segments("GSM-7", septets, -(-septets // GSM7_PART))
        costs = (2 if c in GSM7_EXTENSION else 1 for c in text)
        return Segments("GSM-7", septets, _greedy_parts(costs, GSM7_PART))
    astral = len(_ASTRAL.findall(text))
    units = len(text) + astral  # characters beyond the BMP take two UTF-16 code units
    if units <= UCS2_SINGLE:
        return Segments("UCS-2", units, 1)
    if not astral:  # no surrogate pairs: nothing can straddle a boundary
        return Segments("UCS-2", units, -(-units // UCS2_PART))
    costs = (2 if ord(c) > 0xFFFF else 1 for c in text)
    return Segments("UCS-2", units, _greedy_parts(costs, UCS2_PART))


def ucs2_forcers(text: str) -> list[str]:
    """The distinct characters of ``text`` that are not GSM-7, in order of first use."""
    seen: dict[str, None] = {}
    for c in text:
        if c not in GSM7_ALL:
            seen.setdefault(c, None)
    return list(seen)


def char_name(c: str) -> str:
    """A readable name for a character in a message: ``’ (RIGHT SINGLE QUOTATION MARK)``."""
    name = unicodedata.name(c, f"U+{ord(c):04X}")
    shown = c if c.isprintable() and not c.isspace() else repr(c)[1:-1] or " "
    return f"{shown} ({name})"


def gsm7_replacement(text: str) -> str | None:
    """The GSM-7 text obtained by replacing look-alike characters, or None if that is not enough."""
    if _NOT_REPLACEABLE.search(text) is not None:
        return None
    replaced = text.translate(_REPLACE_TABLE)
    return replaced if is_gsm7(replaced) else None
