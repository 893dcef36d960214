"""When each checked row goes: rows whose time passed (``--late skip``), and quiet hours in the
recipient's own time zones (``--quiet-hours``, and the TCPA's hours for US numbers on a
``--marketing`` run).

This runs after the row checks, in the main process, over the rows about to go: it needs
a row's number *and* its send time, and it may turn a row that goes now into a scheduled
one. A row moved by quiet hours keeps the identity of the message as written (its body
before the move): the journal knows it by that, so running the same sheet again at
another hour — when quiet hours move nothing, or move it elsewhere — finds it already sent.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from . import codes as C
from . import fields as F
from .codes import Status
from .errors import ConfigError
from .numbers import describe
from .report import Issue, RowResult
from .schedule import POLICIES, QuietHours, apply_quiet, quiet_for, zones_for
from .sheet import Sheet

#: Headers that give a row's time zone (compared as header keys: case, spaces and _ ignored).
TIMEZONE_HEADERS = frozenset({"timezone", "tz", "zone"})


def quiet_hours(text: str | None, days: str | None) -> QuietHours | None:
    """``--quiet-hours`` and ``--quiet-days`` read once, as options (ConfigError: one line, exit 2)."""
    if not text and not days:
        return None
    if not text:
        raise ConfigError("--quiet-days needs --quiet-hours (e.g. --quiet-hours 21:00-08:00 --quiet-days Sun)")
    try:
        return QuietHours.parse(text, days)
    except ValueError as exc:
        raise ConfigError(f"--quiet-hours: {exc}") from None


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ConfigError(f"--quiet-hours-policy {policy!r}: use {', '.join(POLICIES)}")
    return policy


def timezone_column(sheet: Sheet) -> int | None:
    """The column headed Timezone (or Time zone, TZ), if the sheet has one."""
    for index, header in enumerate(sheet.header):
        if F.header_key(header) in TIMEZONE_HEADERS:
            return index
    return None


def apply_send_times(results: list[RowResult], sheet: Sheet, *, zone: ZoneInfo, now: float,
                     quiet: QuietHours | None, policy: str = "move", marketing: bool = False) -> None:
    """Skip the rows ``--late skip`` left out, and move, skip or flag rows that would arrive in quiet hours."""
    skipped, valid, invalid = Status.SKIPPED, Status.VALID, Status.INVALID
    late, send_now = C.SCHEDULE_LATE_SKIPPED.code, C.SCHEDULE_LATE.code
    for r in results:
        if r.status != valid or not r.issues:
            continue
        codes = {i.code for i in r.issues}
        if late in codes:
            r.status, r.body = skipped, None
            r.issues = [i for i in r.issues if i.code == late]
        elif send_now in codes and r.body is not None and F.SCHEDULE in r.body:
            # Sent now without its Schedule, but known by the message as written: a later run (or a
            # cancelled held row) finds it by that, whatever the clock says then.
            r.identity = dict(r.body)
            del r.body[F.SCHEDULE]
    if quiet is None and not marketing:
        return
    tz_index = timezone_column(sheet)
    tz_label = sheet.header[tz_index] if tz_index is not None else ""
    for r in results:
        if r.status != valid or r.body is None or r.to is None:
            continue
        cell = sheet.rows[r.index][tz_index] if tz_index is not None else None
        zones, problem = zones_for(r.to, cell, zone)
        if problem is not None:
            r.issues.append(Issue(r.row, tz_label, cell or "", *problem))
            r.status, r.body = invalid, None
            continue
        rules = quiet_for(describe(r.to).region, quiet, marketing=marketing)
        if rules is None:
            continue
        written = r.body.get(F.SCHEDULE)
        at = written if written is not None else now
        moved, problem = apply_quiet(at, zones, rules, policy, zone)
        if problem is None:
            continue
        column = sheet.columns.get(F.SCHEDULE)
        cell = sheet.rows[r.index][column].strip() if column is not None else ""
        where = sheet.header[column] if cell else ("--schedule" if written is not None else "Schedule")
        r.issues.append(Issue(r.row, where, cell, *problem))
        if moved is None:
            r.status, r.body = (skipped, None) if problem.code == C.QUIET_HOURS_SKIPPED.code else (invalid, None)
            if r.status == skipped:
                r.issues = [r.issues[-1]]
            continue
        r.identity = dict(r.body)
        r.body[F.SCHEDULE] = int(moved)
