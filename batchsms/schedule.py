"""Times people write, and quiet hours in the recipient's time zones.

A marketing team types ``1/12/2026 10am``, ``Tue 1 Dec 10am`` or just ``10:00`` into a sheet,
not ISO 8601; and a message that goes out at 07:30 in Sydney reaches Perth at 04:30. This
module reads the times people write (:func:`read_time`) and keeps messages out of the
recipient's night (:class:`QuietHours`, :func:`zones_for`, :func:`next_allowed`,
:func:`apply_quiet`).

Reading a time:

* epoch seconds (milliseconds are refused with the seconds to write), ISO 8601 with or without
  an offset, Excel date cells (their text is ISO, see :func:`batchsms.sheet.cell_text`; a serial
  number when the caller knows the cell is a date), and what :func:`batchsms.dates.read_when`
  reads: ``1/12/2026 10:00``, ``1-12-2026 10:30 pm``, ``1 Dec 2026 10am``;
* a date without its year (``Tue 1 Dec 10am``, ``Dec 1 10am``): its next occurrence;
* a time alone (``10:00``, ``10am``): today in the run's zone, or tomorrow if that has passed,
  and the :class:`Reading` says which, so the preview can say so;
* ``1/12/2026`` is read day-first or month-first as the locale writes dates; a date that only
  one reading makes valid (``30/11/2026``) settles itself; with no locale to decide, two valid
  readings are an error naming both; a weekday that does not match its date is an error.
* A wall time the clocks skip or repeat (a DST gap or overlap) is an error naming both readings
  (:func:`clock_change`, which ``rules.py`` had as ``_clock_change``).

Quiet hours are wall-clock windows (``21:00-08:00``, wrapping midnight) and whole weekdays,
applied in every zone the recipient may be in: a ``Timezone`` cell, else phonenumbers' zones for
the number (an Australian mobile may be anywhere from Perth to Lord Howe Island), else the run's
zone. A time is allowed only when every one of those zones allows it. All arithmetic is on
wall clocks converted with zoneinfo, so a DST change moves nothing: 21:00-08:00 ends at 08:00
local the next morning whatever the offset, and a wall time inside a gap is never chosen.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
import phonenumbers.timezone

from . import codes as C
from . import dates
from .clock import _zone_or_none, abbreviation, format_local
from .codes import Problem
from .numbers import KINDS, describe

_UTC = dt.timezone.utc

# --------------------------------------------------------------------------- clock changes


def _offset(when: dt.datetime) -> str:
    minutes = int(when.utcoffset().total_seconds() // 60)  # type: ignore[union-attr]
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _wall(when: dt.datetime) -> str:
    """A wall time as the user wrote it (ISO-like), for messages that quote their cell back."""
    return f"{when:%Y-%m-%d %H:%M:%S}" if when.second or when.microsecond else f"{when:%Y-%m-%d %H:%M}"


def zone_name(tz: dt.tzinfo) -> str:
    """The zone as the user named it (``Australia/Sydney``), for messages."""
    return str(getattr(tz, "key", None) or tz)


def clock_change(naive: dt.datetime, tz: ZoneInfo) -> Problem | None:
    """The error for a wall time the clocks skip (a DST gap) or show twice (an overlap) in ``tz``; None
    for a time that happens exactly once.

    zoneinfo reads such a time silently with one offset or the other (``fold``); a
    message sent an hour early or late is worse than a row to fix. Both readings are
    named with their offset and abbreviation, and the fix is written as ISO 8601 with
    an offset, which the user can paste back into the cell. (The messages are those
    ``rules._clock_change`` gave, word for word.)
    """
    first = naive.replace(tzinfo=tz)
    second = first.replace(fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    shown, zone = _wall(naive), zone_name(tz)
    if first.astimezone(_UTC).astimezone(tz).replace(tzinfo=None) == naive:  # it exists: twice
        return C.AMBIGUOUS_TIME.problem(
            f"{shown} happens twice in {zone}: first at {_offset(first)} ({abbreviation(first)}), then at "
            f"{_offset(second)} ({abbreviation(second)}); write the offset, "
            f"e.g. {naive:%Y-%m-%dT%H:%M}{_offset(second)}",
        )
    later = first.astimezone(_UTC).astimezone(tz)  # read with the offset before the change
    earlier = second.astimezone(_UTC).astimezone(tz)  # read with the offset after it
    return C.NONEXISTENT_TIME.problem(
        f"{shown} does not exist in {zone}: the clocks skip it; it could mean "
        f"{format_local(later.timestamp(), tz)} ({_offset(later)}) or "
        f"{format_local(earlier.timestamp(), tz)} ({_offset(earlier)}); write the time you mean with its "
        f"offset, e.g. {later:%Y-%m-%dT%H:%M}{_offset(later)}",
    )


# --------------------------------------------------------------------------- reading times


@dataclass(frozen=True)
class Reading:
    """What a schedule cell says: the moment (epoch seconds) or the problem, and a note for the preview.

    ``note`` is ``"today"`` or ``"tomorrow"`` for a time written alone (``10:00``), so the preview
    can say "tomorrow 10:00" rather than leave the reader to work out which day was meant.
    """

    epoch: float | None
    problem: Problem | None = None
    note: str | None = None


#: Epoch seconds as the API takes them, and as ``rules._parse_when`` read them (``1764540000``, ``1764540000.0``).
_EPOCH = re.compile(r"\d+(?:\.0*)?")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
#: More than this is epoch milliseconds (1e11 seconds is the year 5138).
_MILLISECONDS = 1e11
#: Excel's day 0 in the 1900 date system (its phantom 29 Feb 1900 is before any schedule).
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
#: Excel serials a schedule can be: 1 Jan 2000 to 1 Jan 2100.
_SERIALS = (36526, 73051)
_ISO_START = re.compile(r"\d{4}-\d{2}")
_WEEKDAY_WORD = re.compile(r"([A-Za-z]+)\.?,?\s")
_WEEKDAY_NUMBERS = {
    **dict.fromkeys(("mon", "monday"), 0), **dict.fromkeys(("tue", "tues", "tuesday"), 1),
    **dict.fromkeys(("wed", "weds", "wednesday"), 2), **dict.fromkeys(("thu", "thur", "thurs", "thursday"), 3),
    **dict.fromkeys(("fri", "friday"), 4), **dict.fromkeys(("sat", "saturday"), 5),
    **dict.fromkeys(("sun", "sunday"), 6),
}
_DAY_WORDS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December")
# A date without its year, then a time: "Tue 1 Dec 10am", "1st of December at 10:00", "Dec 1, 10am".
# The pieces are dates.py's, so both read day and month names and times alike.
_YEARLESS = re.compile(
    dates._WEEKDAY + r"(?:(?P<d>\d{1,2})" + dates._ORDINAL + r"(?:\s+of)?[\s\-]+(?P<mon>[a-z]+)\.?"
    r"|(?P<mon2>[a-z]+)\.?\s+(?P<d2>\d{1,2})" + dates._ORDINAL + r")" + dates._JOIN + dates._TIME,
    re.IGNORECASE,
)


def day_first_for(country: str | None, locale: str | None) -> bool | None:
    """Whether ``1/12/2026`` is read day-first: as ``--locale`` writes dates, else as English in
    ``--country`` does (en_AU day-first, en_US month-first); None when neither says (an unknown
    country), and then a date that reads both ways is an error naming both readings.

    ValueError (a message for a person) for a locale Babel does not know, as :func:`dates.locale_for`.
    """
    if locale is not None and locale.strip():
        return dates.day_first(dates.locale_for("", locale))
    found = dates.locale_for(country or "", None)
    if found.territory is None:  # plain "en": the country said nothing
        return None
    return dates.day_first(found)


def read_time(raw: str, *, zone: ZoneInfo, now: float, day_first: bool | None,
              excel_date: bool = False) -> Reading:
    """The moment ``raw`` names, read as people write times; naive times are in ``zone``.

    ``now`` (epoch seconds) decides "today or tomorrow" for a time alone and the year of a date
    written without one. ``day_first`` decides ``1/12/2026`` (see :func:`day_first_for`); None
    makes such a date an error when both readings are valid and differ. ``excel_date`` says the
    cell is an Excel date cell, so that a plain number in it is an Excel serial (days since
    1899-12-30) rather than epoch seconds.

    Cached: a campaign's rows mostly share a few times, and ``--schedule`` gives all of them one.
    """
    return _read_time(raw.strip(), zone, now, day_first, excel_date)


def _not_a_time(zone: ZoneInfo, day_first: bool | None) -> Problem:
    example = "12/1/2026 9:30am" if day_first is False else "1/12/2026 9:30am"
    return C.INVALID_SCHEDULE.problem(
        f"not a time: write it like {example}, 2026-12-01 09:30, 2026-12-01T09:30:00+11:00, or 9:30am alone "
        f"(today, or tomorrow once it has passed); epoch seconds and Excel date cells work too; times without "
        f"an offset are read in {zone_name(zone)} (set another with --timezone)"
    )


def _shown_date(day: dt.date) -> str:
    return f"{day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


def _from_wall(naive: dt.datetime, zone: ZoneInfo, note: str | None = None) -> Reading:
    problem = clock_change(naive, zone)
    if problem is not None:
        return Reading(None, problem)
    return Reading(naive.replace(tzinfo=zone).timestamp(), None, note)


def _weekday_mismatch(text: str, day: dt.date) -> Problem | None:
    """An error when ``text`` starts with a weekday that ``day`` is not (``Wed 1 Dec 2026``: a Tuesday)."""
    match = _WEEKDAY_WORD.match(text)
    if match is None:
        return None
    weekday = _WEEKDAY_NUMBERS.get(match[1].lower())
    if weekday is None or weekday == day.weekday():
        return None
    return C.INVALID_SCHEDULE.problem(
        f"{text} says {_DAY_NAMES[weekday]}, but {_shown_date(day)} is a {_DAY_NAMES[day.weekday()]}; "
        "correct the day or the date"
    )


def _serial(value: float, zone: ZoneInfo) -> Reading:
    """An Excel serial (days since 1899-12-30, the time as the fraction of a day) as a wall time in ``zone``."""
    if not _SERIALS[0] <= value < _SERIALS[1]:
        return Reading(None, C.INVALID_SCHEDULE.problem(
            f"{value:g} is not a date Excel would give a schedule (it counts days since 1900); "
            "write the date and time in the cell"))
    naive = _EXCEL_EPOCH + dt.timedelta(days=value)
    naive = naive.replace(microsecond=0) + dt.timedelta(seconds=round(naive.microsecond / 1e6))  # float noise
    return _from_wall(naive, zone)


def _looks_like_serial(text: str, value: float) -> Problem:
    """Excel shows a date cell as a number once its format is lost (a CSV saved from it, a General column)."""
    when = _EXCEL_EPOCH + dt.timedelta(days=value)
    shown = f"{_DAY_WORDS[when.weekday()]} {when.day} {when:%b %Y %H:%M}"
    return C.INVALID_SCHEDULE.problem(
        f"{text} is not a time: it looks like a date as Excel counts days ({shown}); format the column as a "
        "date in Excel, or write the date and time")


def _yearless(text: str, zone: ZoneInfo, now: float) -> Reading | None:
    """``Tue 1 Dec 10am``: the next 1 December at 10:00 (this year's, or next year's once it has passed)."""
    match = _YEARLESS.fullmatch(text)
    if match is None:
        return None
    month = dates._MONTHS.get((match["mon"] or match["mon2"]).lower())
    weekday = match["wd"]
    clock = dates._time(match)
    if month is None or clock is None or (weekday is not None and weekday.lower() not in dates._WEEKDAYS):
        return None
    day_number = int(match["d"] or match["d2"])
    today = dt.datetime.fromtimestamp(now, zone).date()
    for year in (today.year, today.year + 1, today.year + 2, today.year + 3, today.year + 4):  # 29 Feb
        try:
            day = dt.date(year, month, day_number)
        except ValueError:
            if day_number > 29 or month != 2:
                return None  # 31 April is no date in any year
            continue
        naive = dt.datetime.combine(day, clock)
        if naive.replace(tzinfo=zone).timestamp() > now:
            break
    else:
        return None
    mismatch = _weekday_mismatch(text, day)
    if mismatch is not None:
        return Reading(None, mismatch)
    return _from_wall(naive, zone)


def _ambiguous(text: str, one: dt.date, other: dt.date, found: dt.datetime | dt.date) -> Problem:
    clock = f" {found:%H:%M}" if isinstance(found, dt.datetime) else ""
    return C.AMBIGUOUS_DATE.problem(
        f"{text} could be {one.day} {_MONTH_NAMES[one.month - 1]} or {other.day} {_MONTH_NAMES[other.month - 1]}; "
        f"write {one:%Y-%m-%d}{clock} or {other:%Y-%m-%d}{clock}, or set --locale (en_AU reads day first, "
        "en_US month first)"
    )


@lru_cache(maxsize=1024)
def _read_time(text: str, zone: ZoneInfo, now: float, day_first: bool | None, excel_date: bool) -> Reading:
    if not text:
        return Reading(None, C.INVALID_SCHEDULE.problem("the time is empty; write one, or leave the column out"))
    if _EPOCH.fullmatch(text) or (excel_date and _NUMBER.fullmatch(text)):
        value = float(text)
        if excel_date:
            return _serial(value, zone)
        if value > _MILLISECONDS:
            seconds = int(value // 1000)
            return Reading(None, C.INVALID_SCHEDULE.problem(
                f"looks like milliseconds; the API takes epoch seconds: write {seconds} "
                f"({format_local(seconds, zone)})"))
        if _SERIALS[0] <= value < _SERIALS[1]:
            return Reading(None, _looks_like_serial(text, value))
        return Reading(value)
    if _NUMBER.fullmatch(text):
        value = float(text)
        if _SERIALS[0] <= value < _SERIALS[1]:
            return Reading(None, _looks_like_serial(text, value))
        return Reading(None, _not_a_time(zone, day_first))
    if _ISO_START.match(text):  # ISO 8601 as the standard library reads it, as rules.py always has
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            if when.tzinfo is not None:
                return Reading(when.timestamp())
            return _from_wall(when, zone)
    found = dates.read_when(text, day_first is not False)
    if found is not None and day_first is None and not isinstance(found, dt.time):
        other = dates.read_when(text, False)
        if other != found:
            one = found.date() if isinstance(found, dt.datetime) else found
            two = other.date() if isinstance(other, dt.datetime) else other
            return Reading(None, _ambiguous(text, one, two, found))  # type: ignore[arg-type]
    if found is None:
        return _yearless(text, zone, now) or Reading(None, _not_a_time(zone, day_first))
    if isinstance(found, dt.time):
        today = dt.datetime.fromtimestamp(now, zone).date()
        naive = dt.datetime.combine(today, found)
        if naive.replace(tzinfo=zone).timestamp() <= now:
            return _from_wall(dt.datetime.combine(today + dt.timedelta(days=1), found), zone, "tomorrow")
        return _from_wall(naive, zone, "today")
    if not isinstance(found, dt.datetime):
        return Reading(None, C.INVALID_SCHEDULE.problem(
            f"{text} is a date without a time; write the time too, e.g. {text} 9:30am"))
    mismatch = _weekday_mismatch(text, found.date())
    if mismatch is not None:
        return Reading(None, mismatch)
    if found.tzinfo is not None:
        return Reading(found.timestamp())
    return _from_wall(found, zone)


# --------------------------------------------------------------------------- quiet hours


_SPAN = re.compile(r"\s*(.+?)\s*(?:-|–|—|\bto\b)\s*(.+?)\s*")
_Window = tuple[dt.time, dt.time]


def _clock_text(when: dt.time) -> str:
    return f"{when:%H:%M}"


def _parse_clock(text: str, whole: str) -> dt.time:
    match = dates._TIME_ONLY.fullmatch(text)
    clock = dates._time(match) if match else None
    if clock is None:
        raise ValueError(f"{text!r} in {whole!r} is not a time of day; write quiet hours like 21:00-08:00 or 9pm-8am")
    return clock


@dataclass(frozen=True)
class QuietHours:
    """Wall-clock windows in which no message may arrive, and weekdays that are quiet all day.

    A window whose end is earlier than its start wraps midnight (``21:00-08:00``: from 21:00 to
    08:00 the next morning). Hashable, so that :func:`next_allowed` can cache on it.
    """

    windows: tuple[_Window, ...]
    days: frozenset[int] = frozenset()  # weekdays quiet all day, Monday 0

    @classmethod
    def parse(cls, text: str, days: str | None = None) -> QuietHours:
        """``QuietHours.parse("21:00-08:00", days="Sun")``; several windows with commas
        (``21:00-08:00, 12:00-13:00``); times in 24-hour or am/pm form. ValueError with a
        message for a person (the CLI shows it as a usage error)."""
        windows = []
        for part in (p for p in re.split(r"[,;]", text or "") if p.strip()):
            span = _SPAN.fullmatch(part)
            if span is None:
                raise ValueError(f"{part.strip()!r} is not a span of quiet hours: write START-END, "
                                 "e.g. 21:00-08:00 (it may wrap midnight)")
            start, end = _parse_clock(span[1], part.strip()), _parse_clock(span[2], part.strip())
            if start == end:
                raise ValueError(f"{part.strip()!r} starts and ends at the same time; write a span such as "
                                 "21:00-08:00 (and --quiet-days for whole days)")
            windows.append((start, end))
        if not windows:
            raise ValueError("no quiet hours given: write START-END, e.g. 21:00-08:00")
        quiet_days = set()
        for word in (w for w in re.split(r"[\s,;]+", days or "") if w):
            number = _WEEKDAY_NUMBERS.get(word.lower().rstrip("."))
            if number is None:
                raise ValueError(f"{word!r} is not a day of the week: write days as Mon, Tue, Wed, Thu, Fri, "
                                 "Sat or Sun, separated by commas")
            quiet_days.add(number)
        if len(quiet_days) == 7:
            raise ValueError("every day of the week is quiet, so no message could ever go; name fewer days")
        return cls(tuple(windows), frozenset(quiet_days))

    def __str__(self) -> str:
        """``21:00-08:00``, ``21:00-08:00 and Sun`` (the form :meth:`parse` reads back, near enough)."""
        text = ", ".join(f"{_clock_text(a)}-{_clock_text(b)}" for a, b in self.windows)
        if self.days:
            text += " and " + ", ".join(_DAY_WORDS[d] for d in sorted(self.days))
        return text

    def __or__(self, other: QuietHours) -> QuietHours:
        """Quiet when either is: the run's quiet hours together with the TCPA's for US numbers."""
        windows = self.windows + tuple(w for w in other.windows if w not in self.windows)
        return QuietHours(windows, self.days | other.days)

    def quiet_until(self, wall: dt.datetime) -> dt.datetime | None:
        """The wall time at which the quiet stretch around naive ``wall`` ends, or None when ``wall`` is allowed.

        Whole quiet days and windows that meet are passed over together (Saturday 22:00 with
        ``21:00-08:00`` and Sunday quiet: Monday 08:00).
        """
        found = None
        for _ in range(64):  # at most 6 quiet days and each window once a day: far fewer steps
            if wall.weekday() in self.days:
                wall = dt.datetime.combine(wall.date() + dt.timedelta(days=1), dt.time())
                found = wall
                continue
            clock = wall.time()
            for start, end in self.windows:
                if start < end:
                    if start <= clock < end:
                        wall = dt.datetime.combine(wall.date(), end)
                        break
                elif clock >= start:
                    wall = dt.datetime.combine(wall.date() + dt.timedelta(days=1), end)
                    break
                elif clock < end:
                    wall = dt.datetime.combine(wall.date(), end)
                    break
            else:
                return found
            found = wall
        return found  # pragma: no cover - parse() refuses a week with no allowed time


#: The TCPA's calling hours for marketing to US numbers: 08:00 to 21:00 in the recipient's time.
US_MARKETING_HOURS = QuietHours(((dt.time(21), dt.time(8)),))
#: Regions whose numbers the TCPA covers (the US and its territories with +1 numbers).
TCPA_REGIONS = frozenset({"US", "PR", "VI", "GU", "AS", "MP"})


def quiet_for(region: str, quiet: QuietHours | None, *, marketing: bool) -> QuietHours | None:
    """The quiet hours for a number of ``region`` (``numbers.describe(e164).region``): the run's,
    and under ``--marketing`` at least the TCPA's 21:00-08:00 for US numbers."""
    if marketing and region in TCPA_REGIONS:
        return US_MARKETING_HOURS if quiet is None else quiet | US_MARKETING_HOURS
    return quiet


# --------------------------------------------------------------------------- the recipient's zones


#: phonenumbers' word for a number it knows no zone for.
_UNKNOWN_ZONE = "Etc/Unknown"
_TYPES = {word: kind for kind, word in KINDS.items()}
#: Answers kept per number before the cache starts afresh (as numbers.Dialler does).
CACHE_LIMIT = 100_000
_by_number: dict[str, tuple[ZoneInfo, ...]] = {}

try:  # the table time_zones_for_number reads; without it every number asks phonenumbers itself
    from phonenumbers.tzdata import TIMEZONE_DATA as _PREFIX_ZONES
    from phonenumbers.tzdata import TIMEZONE_LONGEST_PREFIX as _LONGEST_PREFIX

    if not (isinstance(_PREFIX_ZONES, dict) and isinstance(_LONGEST_PREFIX, int)):  # pragma: no cover
        raise ImportError
except ImportError:  # pragma: no cover - a phonenumbers that moved its data
    _PREFIX_ZONES, _LONGEST_PREFIX = None, 0


def _zone_names_slowly(e164: str) -> tuple[str, ...]:
    """What phonenumbers' public API says: ``time_zones_for_number`` (the oracle for :func:`_zone_names`)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return (_UNKNOWN_ZONE,)
    return tuple(phonenumbers.timezone.time_zones_for_number(number))


def _zone_names(e164: str, kind: int, code: str) -> tuple[str, ...]:
    """``time_zones_for_number`` without parsing the number again: the line type comes from
    :func:`numbers.describe` (cached, and already asked by the preview), then the same
    longest-prefix walk over phonenumbers' table (the whole number for a geographic line
    type, the country code alone for others, such as Australian mobiles)."""
    if _PREFIX_ZONES is None:  # pragma: no cover
        return _zone_names_slowly(e164)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return (_UNKNOWN_ZONE,)
    digits = e164[1:] if phonenumbers.is_number_type_geographical(kind, int(code)) else code
    for size in range(min(_LONGEST_PREFIX, len(digits)), 0, -1):
        found = _PREFIX_ZONES.get(digits[:size])
        if found is not None:
            return found
    return (_UNKNOWN_ZONE,)


@lru_cache(maxsize=1)
def _territories() -> dict[str, str]:
    """Zone → the country it is in, from CLDR (Babel, loaded on first use: ~10 ms)."""
    from babel.core import get_global

    return dict(get_global("zone_territories"))


@lru_cache(maxsize=4096)
def _zones_named(names: tuple[str, ...], region: str) -> tuple[ZoneInfo, ...]:
    """The zones ``names`` (phonenumbers' answer for a number of ``region``) as ZoneInfo.

    A zone of another country is left out when the region's own zones remain: every
    Australian mobile is listed in Christmas Island's and the Cocos Islands' zones too (they
    share +61 mobile numbers and have their own country codes in CLDR), which would hold every
    message to Australia 1½ hours later in the morning for a few hundred people; a ``Timezone``
    cell serves them. Unknown names are dropped.
    """
    zones = [name for name in names if name != _UNKNOWN_ZONE and _zone_or_none(name) is not None]
    if region and len(zones) > 1:
        territories = _territories()
        own = [name for name in zones if territories.get(name, region) == region]
        zones = own or zones
    return tuple(ZoneInfo(name) for name in zones)


def number_zones(e164: str) -> tuple[ZoneInfo, ...]:
    """The zones phonenumbers gives for ``e164`` (see :func:`_zones_named`), or () when it knows none."""
    found = _by_number.get(e164)
    if found is None:
        try:
            dialled = describe(e164)
        except ValueError:
            return ()
        kind = _TYPES.get(dialled.kind, phonenumbers.PhoneNumberType.UNKNOWN)
        code = _country_code(e164, dialled.international)
        found = _zones_named(_zone_names(e164, kind, code), dialled.region)
        if len(_by_number) >= CACHE_LIMIT:
            _by_number.clear()
        _by_number[e164] = found
    return found


def _country_code(e164: str, international: str) -> str:
    """The country code's digits: INTERNATIONAL format writes them first, as ``+61 …``."""
    head = international.split(" ", 1)[0]
    return head[1:] if head.startswith("+") and head[1:].isdigit() else e164[1:2]


@lru_cache(maxsize=1)
def _zone_names_by_case() -> dict[str, str]:
    """The zones a Timezone cell may name, by their case-folded names: places (``Area/Location``) and UTC.

    Legacy names such as ``EST`` or ``EST5EDT`` are left out: a person who writes EST means New York,
    and the zone ``EST`` is -05:00 all year, an hour off all summer.
    """
    names = {name for name in available_timezones() if "/" in name and not name.startswith("SystemV/")}
    return {name.casefold(): name for name in (*sorted(names), "UTC")}


@lru_cache(maxsize=1024)
def _zone_cell(text: str) -> tuple[ZoneInfo | None, Problem | None]:
    """The zone a Timezone cell names (any case), or the problem with it."""
    name = _zone_names_by_case().get(text.casefold())
    zone = _zone_or_none(name) if name else None
    if zone is not None:
        return zone, None
    close = difflib.get_close_matches(text, sorted(_zone_names_by_case().values()), n=1, cutoff=0.8)
    hint = f"did you mean {close[0]}? " if close else ""
    return None, C.INVALID_TIMEZONE.problem(
        f"Timezone {text[:60]!r} is not a time zone; {hint}write an IANA name such as Australia/Perth or "
        "Pacific/Auckland, or leave it empty to use the number's"
    )


def zones_for(e164: str | None, timezone_cell: str | None,
              run_zone: ZoneInfo) -> tuple[tuple[ZoneInfo, ...], Problem | None]:
    """The zones the recipient may be in, and the problem with the ``Timezone`` cell if any.

    The ``Timezone`` cell when it names a zone; else phonenumbers' zones for the number (several
    for an Australian mobile: Perth to Lord Howe Island, see :func:`_zones_named`); else
    ``(run_zone,)``. A cell that names no zone is an ``invalid-timezone`` error, returned with the
    number's zones. Cached by the cell and by the number (timeit, best of 3): ~0.1 µs a repeated
    number or cell; ~1.7 µs a number seen first whose :func:`numbers.describe` the preview's Will
    text has already cached, ~5 µs one it has not (phonenumbers' own parse and lookup: ~20 µs).
    """
    if timezone_cell and not timezone_cell.isspace():
        zone, problem = _zone_cell(timezone_cell.strip())
        if zone is not None:
            return _single(zone), None
    else:
        problem = None
    zones = number_zones(e164) if e164 else ()
    return (zones or _single(run_zone)), problem


@lru_cache(maxsize=256)
def _single(zone: ZoneInfo) -> tuple[ZoneInfo, ...]:
    return (zone,)


# --------------------------------------------------------------------------- the next allowed time


#: How far ahead :func:`next_allowed` looks before it says no time is allowed in every zone.
HORIZON = 8 * 86400


def _first_at_or_after(wall: dt.datetime, zone: ZoneInfo, not_before: float) -> float:
    """The first moment at or after ``not_before`` whose wall time in ``zone`` is ``wall`` or,
    when the clocks skip ``wall`` (a DST gap), the moment they jump past it."""
    readings = sorted({wall.replace(tzinfo=zone, fold=0).timestamp(), wall.replace(tzinfo=zone, fold=1).timestamp()})
    if len(readings) == 1:
        return readings[0]
    earlier, later = readings
    if dt.datetime.fromtimestamp(earlier, zone).replace(tzinfo=None) == wall:  # shown twice: the first not past
        return earlier if earlier >= not_before else later
    # A gap: wall times jump at one moment between the two readings; find it to the second.
    low, high = int(earlier), int(later)
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return float(high)


def _free_from(epoch: float, zone: ZoneInfo, quiet: QuietHours) -> float:
    """The earliest moment at or after ``epoch`` outside ``quiet`` in ``zone``."""
    wall = dt.datetime.fromtimestamp(epoch, zone).replace(tzinfo=None)
    end = quiet.quiet_until(wall)
    return epoch if end is None else _first_at_or_after(end, zone, epoch)


@dataclass(frozen=True)
class Move:
    """Where :func:`next_allowed` put a send time.

    ``epoch`` is None when no moment within :data:`HORIZON` is allowed in every zone (zones
    too far apart for the quiet hours). ``held_by`` is the zone whose quiet hours ended last.
    """

    original: float
    epoch: float | None
    held_by: ZoneInfo | None
    note: str

    @property
    def moved(self) -> bool:
        return self.epoch != self.original


def _short(epoch: float, zone: ZoneInfo, beside: float) -> str:
    """``07:30``, or as much more of :func:`format_local` as it takes to tell it from ``beside``."""
    when, other = dt.datetime.fromtimestamp(int(epoch), zone), dt.datetime.fromtimestamp(int(beside), zone)
    clock = f"{when:%H:%M:%S}" if when.second else f"{when:%H:%M}"
    if when.date() != other.date():
        clock = f"{_DAY_WORDS[when.weekday()]} {when.day} {when:%b} {clock}"
    if abbreviation(when) != abbreviation(other):
        clock += f" {abbreviation(when)}"
    return clock


@lru_cache(maxsize=4096)
def next_allowed(epoch: float, zones: tuple[ZoneInfo, ...], quiet: QuietHours, run_zone: ZoneInfo) -> Move:
    """The earliest moment at or after ``epoch`` that is outside ``quiet`` in every one of ``zones``.

    Each zone says the earliest moment it allows; the latest of those is a lower bound for
    any moment all allow, so repeating from there reaches the earliest such moment. The
    note, for the preview, is in ``run_zone``: ``Tue 1 Dec 2026 11:00 AEDT — moved from
    07:30, quiet hours``. Cached: rows share send times and zones (a hit ~0.25 µs; working it out
    for the six zones of an Australian mobile ~27 µs).
    """
    at, held_by = epoch, None
    while at - epoch <= HORIZON:
        latest, by = at, None
        for zone in zones:
            free = _free_from(at, zone, quiet)
            if free > latest:
                latest, by = free, zone
        if by is None:
            break
        at, held_by = latest, by
    else:
        return Move(epoch, None, held_by, "")
    if held_by is None:
        return Move(epoch, epoch, None, "")
    note = f"{format_local(at, run_zone)} — moved from {_short(epoch, run_zone, at)}, quiet hours"
    return Move(epoch, at, held_by, note)


POLICIES = ("move", "skip", "error")


def _wall_in(epoch: float, zone: ZoneInfo) -> str:
    when = dt.datetime.fromtimestamp(int(epoch), zone)
    return f"{_DAY_WORDS[when.weekday()]} {when:%H:%M} {abbreviation(when)}"


@lru_cache(maxsize=4096)
def apply_quiet(epoch: float, zones: tuple[ZoneInfo, ...], quiet: QuietHours | None, policy: str,
                run_zone: ZoneInfo) -> tuple[float | None, Problem | None]:
    """A send time under ``--quiet-hours-policy``: ``(epoch, None)`` when quiet hours allow it;
    moved, ``(new epoch, quiet-hours-moved)``; skipped, ``(None, quiet-hours-skipped)``; or
    flagged, ``(None, quiet-hours)``. For a row without a schedule pass the run's ``now``: if it
    moves, the row becomes scheduled. Messages are in ``run_zone``, naming the recipient's zone
    that held the message.
    """
    if policy not in POLICIES:
        raise ValueError(f"quiet hours policy {policy!r}: use move, skip or error")
    if quiet is None or not zones:
        return epoch, None
    move = next_allowed(epoch, zones, quiet, run_zone)
    if not move.moved:
        return epoch, None
    if move.epoch is None:
        names = ", ".join(zone_name(z) for z in zones)
        return None, C.QUIET_HOURS.problem(
            f"no time in the next {HORIZON // 86400} days is outside the quiet hours {quiet} in every time zone "
            f"this number may be in ({names}); fill its Timezone column"
        )
    held = move.held_by
    assert held is not None
    why = (f"{format_local(epoch, run_zone)} is {_wall_in(epoch, held)} in {zone_name(held)}, inside the "
           f"quiet hours {quiet} there")
    if policy == "move":
        return move.epoch, C.QUIET_HOURS_MOVED.problem(
            f"{why}; moved to {format_local(move.epoch, run_zone)} ({_wall_in(move.epoch, held)} there)")
    if policy == "skip":
        return None, C.QUIET_HOURS_SKIPPED.problem(
            f"skipped: {why} (--quiet-hours-policy skip); the next allowed time is "
            f"{format_local(move.epoch, run_zone)}")
    return None, C.QUIET_HOURS.problem(
        f"{why}; send it at {format_local(move.epoch, run_zone)} or later, or give --quiet-hours-policy move")

