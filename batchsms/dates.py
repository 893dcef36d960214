"""Dates and times in templates: read what a cell holds as text, print it the way people write it.

Every cell reaches a template as text (printing it plainly must give what the user
sees), so the ``date`` and ``time`` filters read that text back into a date:

* the ISO forms batchsms itself writes for Excel date cells: ``2026-12-03 09:30:00``,
  ``2026-12-03``, ``09:30:00`` (and ``9:30:00``, Excel's duration cells);
* what people type in a CSV: ``30/11/2026 14:30``, ``30/11/26``, ``30.11.2026``,
  ``11/30/2026 2:30pm``, ``3 Dec 2026 9:30``, ``3-Dec-26`` (Excel's ``d-mmm-yy``),
  ``Dec 3, 2026``, ``Tue 3 Dec 2026`` (English month and weekday names).

``30/11/2026`` can only be day-first and ``11/30/2026`` only month-first, so an
impossible reading settles a numeric date either way; ``3/12/2026`` is read as the
locale writes dates (:func:`day_first`). Two-digit years follow Excel: ``00``-``29``
are 2000-2029, ``30``-``99`` are 1930-1999, so ``26`` means what the user's spreadsheet
showed them.

Output goes through Babel (CLDR data) in the template's locale, with one change:
the no-break spaces CLDR puts before "am"/"pm" become plain spaces, because a
single character outside GSM-7 makes the whole SMS UCS-2 (70 characters a part
instead of 160).

Babel is imported on first use, so a run whose template prints no dates never loads it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from babel import Locale

#: What a cell can be read as (``datetime`` before ``date``: a datetime is also a date).
When: TypeAlias = "dt.datetime | dt.date | dt.time"

#: The pattern ``{{ x | date }}`` uses: ``Thu 3 Dec`` in English.
DEFAULT_DATE_PATTERN = "EEE d MMM"
#: The longest CLDR pattern a template may give: a message needs a few fields, and a
#: pattern is formatted field by field (``BBBB`` alone is "in the morning").
MAX_PATTERN = 64
#: Longer text is not a date anyone typed (and is not worth a regular expression's time).
_MAX_WHEN_TEXT = 48

_MONTHS = {
    name: number
    for number, names in enumerate(
        [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
         ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
         ("oct", "october"), ("nov", "november"), ("dec", "december")],
        start=1,
    )
    for name in names
}
_WEEKDAYS = frozenset({
    "mon", "monday", "tue", "tues", "tuesday", "wed", "weds", "wednesday", "thu", "thur", "thurs", "thursday",
    "fri", "friday", "sat", "saturday", "sun", "sunday",
})

# A time of day: 24-hour with minutes (14:30, 9:30:00) or 12-hour (2:30pm, 2 PM, 12:15 a.m.).
_TIME = (r"(?P<H>\d{1,2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?P<F>[.,]\d{1,6})?)?)?"
         r"(?:\s*(?P<ap>[ap])\.?\s*m\.?)?")
# What may stand between a date and its time: T (ISO), spaces, a comma, "at", a dash.
_JOIN = r"(?:T|\s*,\s*|\s+(?:at\s+|-\s+)?)"
_ZONE = r"(?P<Z>Z|[+-]\d{2}:?\d{2})?"
_WEEKDAY = r"(?:(?P<wd>[a-z]+)\.?,?\s+)?"
_ORDINAL = r"(?:st|nd|rd|th)?"

_TIME_ONLY = re.compile(_TIME, re.IGNORECASE)
_YEAR_FIRST = re.compile(  # 2026-12-03, 2026/12/03, 2026.12.03
    r"(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?:" + _JOIN + _TIME + _ZONE + ")?",
    re.IGNORECASE,
)
_NUMERIC = re.compile(  # 30/11/2026, 11/30/26, 30.11.2026, 30-11-2026
    r"(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})(?:" + _JOIN + _TIME + ")?",
    re.IGNORECASE,
)
_DAY_NAME = re.compile(  # 3 Dec 2026, 3rd of December, 2026, 3-Dec-26, Tue 3 Dec 2026
    _WEEKDAY + r"(?P<d>\d{1,2})" + _ORDINAL + r"(?:\s+of)?[\s\-/.]*(?P<mon>[a-z]+)\.?[\s\-/.,]*(?P<y>\d{4}|\d{2})"
    r"(?:" + _JOIN + _TIME + ")?",
    re.IGNORECASE,
)
_NAME_DAY = re.compile(  # Dec 3, 2026, December 3rd 2026, Thursday, December 3, 2026
    _WEEKDAY + r"(?P<mon>[a-z]+)\.?\s+(?P<d>\d{1,2})" + _ORDINAL + r",?\s+(?P<y>\d{4})(?:" + _JOIN + _TIME + ")?",
    re.IGNORECASE,
)


class NotADate(ValueError):
    """A value a ``date`` or ``time`` filter cannot print; the message is for the person who wrote the sheet."""


# --------------------------------------------------------------------------- reading text


def _year(text: str) -> int:
    """A year as written; two digits as Excel reads them (29 → 2029, 30 → 1930)."""
    year = int(text)
    if len(text) == 2:
        year += 2000 if year < 30 else 1900
    return year


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _time(match: re.Match[str]) -> dt.time | None:
    """The time of day in a match of :data:`_TIME`, or None when it is no time (25:00, 0am, a bare 14)."""
    hour = int(match["H"])
    minute = int(match["M"] or 0)
    second = int(match["S"] or 0)
    micro = int((match["F"][1:] + "00000")[:6]) if match["F"] else 0
    period = match["ap"]
    if period:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if period.lower() == "p" else 0)
    elif match["M"] is None:
        return None  # "14" alone is a number, not a time
    if hour > 23 or minute > 59 or second > 59:
        return None
    return dt.time(hour, minute, second, micro)


def _zone(text: str | None) -> dt.tzinfo | None:
    if not text:
        return None
    if text in "Zz":
        return dt.timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _with_time(day: dt.date | None, match: re.Match[str], zone: dt.tzinfo | None = None) -> When | None:
    """``day`` alone, or with the time the match also holds; None when either part is impossible."""
    if day is None:
        return None
    if match["H"] is None:
        return day
    clock = _time(match)
    if clock is None:
        return None
    return dt.datetime.combine(day, clock, tzinfo=zone)


def _named(match: re.Match[str]) -> When | None:
    """A date written with an English month name (a weekday before it is allowed and not checked)."""
    month = _MONTHS.get(match["mon"].lower())
    weekday = match["wd"]
    if month is None or (weekday is not None and weekday.lower() not in _WEEKDAYS):
        return None
    return _with_time(_date(_year(match["y"]), month, int(match["d"])), match)


def read_when(text: str, day_first: bool) -> When | None:
    """The date, time, or date and time ``text`` holds, or None when it holds none.

    ``day_first`` decides numeric dates that read both ways (``3/12/2026``); a reading
    that is impossible (a 13th month, 31 April) gives way to the other one, so
    ``30/11/2026`` and ``11/30/2026`` are the same day whichever way round the locale
    writes dates. A datetime carries a time zone only when the text gives an offset
    (``2026-12-03T09:30:00+11:00``); its wall time is kept as written.
    """
    text = text.strip()
    if not text or len(text) > _MAX_WHEN_TEXT or not text[0].isalnum():
        return None
    if text[0].isdigit():
        match = _TIME_ONLY.fullmatch(text)
        if match:
            return _time(match)
        match = _YEAR_FIRST.fullmatch(text)
        if match:
            return _with_time(_date(int(match["y"]), int(match["m"]), int(match["d"])), match, _zone(match["Z"]))
        match = _NUMERIC.fullmatch(text)
        if match:
            first, second, year = int(match["a"]), int(match["b"]), _year(match["y"])
            readings = ((first, second), (second, first)) if day_first else ((second, first), (first, second))
            for day, month in readings:
                found = _date(year, month, day)
                if found is not None:
                    return _with_time(found, match)
            return None
    match = _DAY_NAME.fullmatch(text) or _NAME_DAY.fullmatch(text)
    return _named(match) if match else None


# --------------------------------------------------------------------------- locales


def locale_for(country: str, explicit: str | None) -> Locale:
    """The locale dates are printed in: ``explicit`` (``--locale en_AU``) when given, else English as
    written in ``country`` (``en_AU``, ``en_US``, ``en_GB`` …) when Babel knows it, else plain ``en``.

    English by default because the template's own words are the user's; the country
    only decides day or month first, 12- or 24-hour clocks and such. ``en-AU`` is taken
    for ``en_AU``. An unknown explicit locale raises ValueError with a message for a person.
    """
    from babel import Locale, UnknownLocaleError, localedata

    if explicit is not None and explicit.strip():
        name = explicit.strip().replace("-", "_")
        try:
            return Locale.parse(name)
        except (ValueError, UnknownLocaleError):
            raise ValueError(
                f"--locale {explicit}: not a locale Babel knows; write it like en_AU, en_US or de_DE"
            ) from None
    region = (country or "").strip().upper()
    if region.isalpha() and localedata.exists(f"en_{region}"):
        return Locale.parse(f"en_{region}")
    return Locale.parse("en")


def _pattern_fields(pattern: str) -> str:
    """The pattern's letters outside its 'quoted literals' (``EEE 'at' h:mm`` → ``EEEhmm``)."""
    return re.sub(r"[^A-Za-z]", "", re.sub(r"'[^']*'?", "", pattern))


def day_first(locale: Locale) -> bool:
    """Whether ``locale`` writes the day before the month (``d/M/yy`` in en_AU, ``M/d/yy`` in en_US).

    Read from the short date pattern; when that starts with the year (``y-MM-dd`` in
    en_CA, ``y/MM/dd`` in en_ZA) it says nothing about the ``3/12/2026`` form, so the
    medium pattern decides (``MMM d, y`` in en_CA: month-first; ``dd MMM y`` in en_ZA:
    day-first).
    """
    for width in ("short", "medium"):
        fields = _pattern_fields(locale.date_formats[width].pattern)
        if fields.startswith(("y", "Y", "u")) and width == "short":
            continue
        day, month = fields.find("d"), fields.find("M")
        if day >= 0 and month >= 0:
            return day < month
    return True


def twelve_hour(locale: Locale) -> bool:
    """Whether ``locale``'s clock is 12-hour (its short time pattern has ``h`` or ``K``)."""
    fields = _pattern_fields(locale.time_formats["short"].pattern)
    return "h" in fields or "K" in fields


# --------------------------------------------------------------------------- printing

_NAMED_WIDTHS = frozenset({"short", "medium", "long", "full"})
_TIME_FIELDS = frozenset("hHkKjJmsSAaBb")
_ZONE_FIELDS = frozenset("zZOvVXx")


@dataclass(frozen=True)
class DateStyle:
    """A locale with what the filters ask of it on every row, worked out once per template."""

    locale: Locale
    day_first: bool
    twelve_hour: bool

    @classmethod
    def of(cls, locale: Locale) -> DateStyle:
        return cls(locale, day_first(locale), twelve_hour(locale))

    @property
    def example(self) -> str:
        """How to write a date and time so that this locale reads it (for error messages)."""
        return "30/11/2026 14:30" if self.day_first else "11/30/2026 2:30pm"


def check_pattern(pattern: object) -> str:
    """``pattern`` if it is a CLDR date pattern a message can use, else NotADate saying what is wrong.

    Babel prints letters it does not know as they are (``EEE at h`` → ``Thu amt 9``) and
    ignores a ' left open, so both are refused here: words go in single quotes.
    """
    if not isinstance(pattern, str) or not pattern:
        raise NotADate(f'a date pattern is text like "{DEFAULT_DATE_PATTERN}", not {_shown(pattern)}')
    return _check_pattern_text(pattern)


@lru_cache(maxsize=256)
def _check_pattern_text(pattern: str) -> str:
    """:func:`check_pattern` for text, cached: a template's pattern is the same on every row."""
    from babel.dates import PATTERN_CHARS, parse_pattern

    if pattern in _NAMED_WIDTHS:
        return pattern
    if len(pattern) > MAX_PATTERN:
        raise NotADate(f"the date pattern is {len(pattern):,} characters long; the limit is {MAX_PATTERN}")
    if pattern.replace("''", "").count("'") % 2:
        raise NotADate(f"the date pattern {pattern!r} opens a ' that it never closes")
    unknown = sorted({c for c in _pattern_fields(pattern) if c not in PATTERN_CHARS})
    if unknown:
        raise NotADate(
            f"the date pattern {pattern!r} has letters that are not date fields ({', '.join(unknown)}); "
            "put words in single quotes: \"EEE d MMM 'at' h:mm a\""
        )
    try:
        parse_pattern(pattern)  # a field of a length CLDR has no form for (MMMMMM, hhh)
    except ValueError as exc:
        raise NotADate(f"the date pattern {pattern!r} is not one CLDR knows ({exc})") from None
    return pattern


def _shown(value: object) -> str:
    """A value quoted for an error message, cut short: a cell may be long."""
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _read(value: object, style: DateStyle, what: str, shown: str) -> When:
    """``value`` as a date/time for the ``what`` filter, or NotADate with a message for the sheet's author."""
    if isinstance(value, (dt.date, dt.time)):
        return value
    if isinstance(value, str):
        found = read_when(value, style.day_first)
        if found is not None:
            return found
        if not value.strip():
            raise NotADate(f"{shown}: the value is empty, not a {what}; write it like {style.example}")
    raise NotADate(f"{shown}: {_shown(value)} is not a {what}; write it like {style.example}")


def _plain_spaces(text: str) -> str:
    """CLDR's no-break spaces as plain spaces: one of them would make the SMS UCS-2."""
    return text if text.isascii() else text.replace("\u202f", " ").replace("\u00a0", " ")


def format_date(value: object, pattern: object, style: DateStyle, *, shown: str = "the date filter") -> str:
    """``{{ x | date(pattern) }}``: ``value`` (a date, time or text :func:`read_when` reads) in ``pattern``.

    The pattern is CLDR's (``EEE d MMM`` → ``Thu 3 Dec``; ``short``, ``medium``, ``long``,
    ``full`` are the locale's own date formats). Time fields need a value with a time,
    date fields a value with a date: 9:30 with no day is never printed as some day.
    """
    from babel import dates

    pattern = check_pattern(pattern)
    when = _read(value, style, "date", shown)
    if pattern in _NAMED_WIDTHS:
        if not isinstance(when, dt.date):
            raise NotADate(f"{shown}: {_shown(value)} is a time with no date; write it like {style.example}")
        return _plain_spaces(dates.format_date(when, pattern, locale=style.locale))
    return _plain_spaces(_format(when, pattern, style, value, shown))


def format_time(value: object, pattern: object, style: DateStyle, *, shown: str = "the time filter") -> str:
    """``{{ x | time }}``: the time of day of ``value``, as people write it in the locale.

    Without a pattern: ``9:30am`` / ``2:30pm`` where the locale is English with a
    12-hour clock (no leading zero, no space, lower case: short, and how appointment
    texts read); the locale's own short time elsewhere (``14:30`` in en_GB, ``09:30`` in
    de_DE). With a pattern: CLDR's, as for ``date`` (``h:mm a``, ``HH:mm``, ``short``).
    """
    from babel import dates

    if pattern is not None:
        pattern = check_pattern(pattern)
    when = _read(value, style, "time", shown)
    if not isinstance(when, (dt.datetime, dt.time)):
        raise NotADate(f"{shown}: {_shown(value)} has no time of day; write it like {style.example}")
    if pattern is None:
        if style.twelve_hour and style.locale.language == "en":
            return f"{when.hour % 12 or 12}:{when.minute:02d}{'am' if when.hour < 12 else 'pm'}"
        pattern = "short"
    if pattern in _NAMED_WIDTHS:
        return _plain_spaces(dates.format_time(when, pattern, locale=style.locale))
    return _plain_spaces(_format(when, pattern, style, value, shown))


def _format(when: When, pattern: str, style: DateStyle, value: object, shown: str) -> str:
    """``when`` in a CLDR ``pattern``, refusing fields the value does not have.

    A zone field (``z``) needs a time with an offset: Babel would print "UTC" for a
    wall time that has none.
    """
    from babel import dates

    fields = set(_pattern_fields(pattern))
    if fields & _ZONE_FIELDS and not (isinstance(when, dt.datetime) and when.tzinfo is not None):
        raise NotADate(f"{shown}: {_shown(value)} has no time zone for {pattern!r}; leave the z out")
    needs_time = bool(fields & _TIME_FIELDS)
    needs_date = bool(fields - _TIME_FIELDS - _ZONE_FIELDS)
    if isinstance(when, dt.datetime):
        return dates.format_datetime(when, pattern, locale=style.locale)
    if isinstance(when, dt.date):
        if needs_time:
            raise NotADate(f"{shown}: {_shown(value)} has no time of day for {pattern!r}; "
                           f"write it like {style.example}")
        return dates.format_date(when, pattern, locale=style.locale)
    if needs_date:
        raise NotADate(f"{shown}: {_shown(value)} is a time with no date; write it like {style.example}")
    return dates.format_time(when, pattern, locale=style.locale)
