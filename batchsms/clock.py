"""Time as people read it: the run's time zone, and times written in it with its abbreviation.

A person scheduling a campaign thinks in their own wall clock, so the run's zone is
``--timezone``, else ``timezone`` in the config file, else the machine's zone, and never
silently UTC. Every time shown to a person goes through :func:`format_local` or
:func:`format_range`, so the summary, the preview and the errors read the same way:
``Tue 1 Dec 2026 10:00 AEDT``.

Day and month names are English and fixed here rather than taken from ``strftime``,
whose names follow the process locale: a report must read the same on every machine.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Preferences

FALLBACK_ZONE = "UTC"
LOCALTIME = Path("/etc/localtime")
TIMEZONE_FILE = Path("/etc/timezone")
#: Names that exist under zoneinfo but name no zone (or a copy of whichever one the machine uses).
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
#: Zoneinfo trees that hold the same zones under a prefix; the name people know is what follows.
_TREE_PREFIXES = ("posix/", "right/")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
RANGE_DASH = " – "


# --------------------------------------------------------------------------- which zone


def _zone_or_none(name: str) -> ZoneInfo | None:
    """The zone called ``name``, or None: zoneinfo raises several kinds of error for a bad name
    (a directory such as ``Australia``, an absolute path, a file that is no zone)."""
    if not name or name in _NOT_ZONES:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def zone_named(name: str, where: str = "--timezone", *, show: bool = True) -> ZoneInfo:
    """The zone called ``name`` (an IANA name); ConfigError with one line naming ``where`` if none.

    ``show`` puts the name in the message (an option the user typed); values read
    from the config file are not quoted, like every error about that file.
    """
    found = _zone_or_none(name.strip())
    if found is None:
        shown = f" {name.strip()[:60]}" if show else ""
        raise ConfigError(f"{where}{shown}: unknown time zone; use an IANA name such as Australia/Sydney")
    return found


def _name_from_path(target: str) -> str | None:
    """The zone name in a path into a zoneinfo tree (``/usr/share/zoneinfo/Australia/Sydney``), if valid."""
    marker = "zoneinfo/"
    at = target.rfind(marker)
    if at < 0:
        return None
    name = target[at + len(marker):]
    for prefix in _TREE_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name if _zone_or_none(name) is not None else None


def _from_tz_variable(value: str) -> str | None:
    """The zone ``TZ`` names: ``Australia/Sydney``, ``:Australia/Sydney`` or a path into zoneinfo.

    A POSIX rule such as ``AEST-10AEDT`` names no IANA zone and is passed over.
    """
    value = value.strip().removeprefix(":")
    if value.startswith("/"):
        return _name_from_path(value)
    return value if _zone_or_none(value) is not None else None


def _from_symlink(localtime: Path) -> str | None:
    """The zone ``/etc/localtime`` links to, by the link's own target first (``US/Pacific`` stays
    ``US/Pacific``), then by the fully resolved path (macOS links through ``/var/db/timezone``)."""
    try:
        target = os.readlink(localtime)
    except OSError:  # not a link (a copied file), or missing
        return None
    direct = os.path.normpath(os.path.join(os.path.dirname(localtime), target))
    return _name_from_path(direct) or _name_from_path(os.path.realpath(localtime))


def _from_timezone_file(path: Path) -> str | None:
    """The zone named in Debian's ``/etc/timezone`` (first line that is not a comment)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        name = line.strip()
        if name and not name.startswith("#"):
            return name if _zone_or_none(name) is not None else None
    return None


def local_zone_name(env: Mapping[str, str] | None = None, localtime: Path = LOCALTIME,
                    timezone_file: Path = TIMEZONE_FILE) -> str:
    """The machine's IANA zone name: ``TZ`` if it names one, else where ``/etc/localtime`` links,
    else ``/etc/timezone``, else ``UTC``.

    The standard library knows the local offset but not the zone's name, and the name
    is what reads a naive schedule time correctly on both sides of a DST change. The
    paths are parameters so tests need not depend on the machine.
    """
    env = os.environ if env is None else env
    tz_value = env.get("TZ")
    if tz_value:
        found = _from_tz_variable(tz_value)
        if found:
            return found
    return _from_symlink(localtime) or _from_timezone_file(timezone_file) or FALLBACK_ZONE


def run_zone(option: str | None, preferences: Preferences | None = None, *,
             env: Mapping[str, str] | None = None) -> ZoneInfo:
    """This run's zone: ``--timezone``, else ``timezone`` in the config file, else the machine's."""
    if option is not None and option.strip():
        return zone_named(option, "--timezone")
    if preferences is not None and preferences.timezone:
        where = f"{preferences.path}: [batchsms] timezone" if preferences.path else "timezone"
        return zone_named(preferences.timezone, where, show=False)
    return zone_named(local_zone_name(env))


# --------------------------------------------------------------------------- times as text


def abbreviation(when: dt.datetime) -> str:
    """The zone's abbreviation at ``when`` (``AEDT``; ``+04`` where the zone has no letters, kept
    as it is), else the UTC offset (``+05:30``) for a zone that gives none."""
    name = when.tzname()
    if name:
        return name
    offset = when.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _clock(when: dt.datetime) -> str:
    """``10:00``, or ``10:00:30`` when the seconds are not zero: a time is never shown rounded."""
    return f"{when:%H:%M:%S}" if when.second else f"{when:%H:%M}"


def _date(when: dt.datetime, year: bool) -> str:
    text = f"{_DAYS[when.weekday()]} {when.day} {_MONTHS[when.month - 1]}"
    return f"{text} {when.year}" if year else text


def local(epoch: float, zone: dt.tzinfo) -> dt.datetime:
    """The aware time ``epoch`` is in ``zone`` (below seconds dropped: nothing shown goes finer)."""
    return dt.datetime.fromtimestamp(int(epoch), zone)


def format_local(epoch: float, zone: dt.tzinfo) -> str:
    """``Tue 1 Dec 2026 10:00 AEDT``: day, date, year, 24-hour time and the zone's abbreviation then."""
    when = local(epoch, zone)
    return f"{_date(when, True)} {_clock(when)} {abbreviation(when)}"


def format_when(epoch: float | None, zone: dt.tzinfo) -> str:
    """When a message goes: ``now`` for one without a schedule, else :func:`format_local`."""
    return "now" if epoch is None else format_local(epoch, zone)


def format_range(first: float, last: float, zone: dt.tzinfo) -> str:
    """The span from ``first`` to ``last`` (epoch seconds, either order), said once where both agree.

    - one moment (to the second): ``Tue 1 Dec 2026 10:00 AEDT``;
    - one day: ``Tue 1 Dec 2026 10:00 – 14:30 AEDT``;
    - one year: ``Tue 1 Dec 10:00 – Wed 2 Dec 2026 09:00 AEDT`` (the year once, at the end);
    - otherwise both in full: ``Thu 31 Dec 2026 10:00 – Fri 1 Jan 2027 09:00 AEDT``.

    The abbreviation is written once at the end when both ends share it, else after each
    end (a span over a DST change: ``Sat 3 Oct 10:00 AEST – Mon 5 Oct 2026 09:00 AEDT``),
    so no time is ever read in the wrong offset.
    """
    if last < first:
        first, last = last, first
    start, end = local(first, zone), local(last, zone)
    start_zone, end_zone = abbreviation(start), abbreviation(end)
    if int(first) == int(last):  # not start == end: within one zone that ignores fold (02:30 twice)
        return format_local(first, zone)
    zone_once = start_zone == end_zone
    head_zone = "" if zone_once else f" {start_zone}"
    if start.date() == end.date():
        return f"{_date(start, True)} {_clock(start)}{head_zone}{RANGE_DASH}{_clock(end)} {end_zone}"
    same_year = start.year == end.year
    return (f"{_date(start, not same_year)} {_clock(start)}{head_zone}{RANGE_DASH}"
            f"{_date(end, True)} {_clock(end)} {end_zone}")
