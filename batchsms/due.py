"""Held messages: handed to the API when they are due (``batchsms due``), or withdrawn (``batchsms cancel``).

The API takes a Schedule at most 14 days ahead and has no call to cancel a scheduled
message. So batchsms keeps a message due later (or every scheduled one, with ``--hold``)
in its journal as ``held``, and ``batchsms due`` — from cron every few minutes, or
``--watch`` — hands each one over, with its Schedule, once it is due. Until then it can
be cancelled, or moved by editing the sheet and sending again.

``due`` walks every journal registered in the state folder, one runner at a time
(a lock), each journal under its own lock (a journal a send is using is left for the
next run). It sends through the same journaled path as ``send``, so a run that dies
half-way leaves ``unknown`` rows, never a double send. A message whose time passed by
more than an hour while nothing ran (the machine was off) is not sent late unless the
send said ``--late send-now``; it becomes ``failed`` with the reason, or with
``--late skip`` cancelled.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from . import fields as F
from .client import Client
from .clock import format_local
from .codes import Status
from .config import Settings
from .errors import AuthError, BatchSmsError, JournalError
from .journal import Finish, Journal
from .results import refresh_results
from .sender import MAX_LATE, Job, Sender
from .state import journals, run_lock

#: How the send that held a message wanted late rows treated (kept in the journal's meta).
LATE_KEY = "late"


@dataclass
class DueRun:
    """What one ``batchsms due`` did, journal by journal."""

    counts: Counter = field(default_factory=Counter)  # outcome -> messages
    lines: list[str] = field(default_factory=list)  # one per journal that had something due, or was skipped
    waiting: int = 0  # held messages not due yet
    next_due: float | None = None  # the earliest of those

    @property
    def ok(self) -> bool:
        return not (self.counts[Status.FAILED] or self.counts[Status.UNKNOWN] or self.counts["errors"])


def results_of(journal_file: Path) -> Path:
    """The results file a journal belongs to (``x.results.csv.journal`` → ``x.results.csv``)."""
    return journal_file.with_name(journal_file.name.removesuffix(".journal"))


def submit_due(target: Settings, *, now: float | None = None, paths: Iterable[Path] | None = None,
               zone: ZoneInfo | None = None, concurrency: int = 4, connect_timeout: float = 5.0,
               read_timeout: float = 30.0, max_attempts: int = 5, allow_insecure: bool = False,
               progress: bool = False) -> DueRun:
    """Hand every due held message of every registered journal (or ``paths``) to the API, once.

    Raises :class:`~batchsms.state.RunLocked` when another ``due`` is running.
    """
    now = time.time() if now is None else now
    zone = zone or ZoneInfo("UTC")
    run = DueRun()
    with run_lock("due", what="batchsms due"):
        client = Client(target.base_url, target.account_sid, target.auth_token, target.property_sid,
                        connect_timeout=connect_timeout, read_timeout=read_timeout, max_attempts=max_attempts,
                        allow_insecure=allow_insecure)
        try:
            for path in (journals() if paths is None else paths):
                try:
                    _one_journal(Path(path), target, client, now, zone, run, concurrency, progress)
                except AuthError:
                    raise  # refused credentials: no other journal would fare better
                except (BatchSmsError, OSError, sqlite3.Error) as exc:  # one campaign's trouble stops no other
                    run.lines.append(f"{path}: not finished: {exc}")
                    run.counts["errors"] += 1
        finally:
            client.close()
    return run


def _one_journal(path: Path, target: Settings, client: Client, now: float, zone: ZoneInfo, run: DueRun,
                 concurrency: int, progress: bool) -> None:
    try:
        journal = Journal(path)
    except JournalError as exc:  # a send is using it, or it is not readable: the next run tries again
        run.lines.append(f"{path}: left for the next run: {exc}")
        return
    with journal:
        held = journal.entries_in(Status.HELD)
        if not held:
            return
        later = [e.due for e in held.values() if e.due is not None and e.due > now]
        run.waiting += len(later)
        if later:
            run.next_due = min([*later, *([run.next_due] if run.next_due is not None else [])])
        due = [e for e in held.values() if e.due is None or e.due <= now]
        if not due:
            return
        recorded = journal.get_meta("target")
        if recorded != target.target:
            run.lines.append(f"{path}: {len(due)} held message(s) due, for {recorded}; run batchsms due with that "
                             "API and property (--base-url, --property-sid, or its config) to send them")
            return
        late_policy = journal.get_meta(LATE_KEY) or "error"
        jobs, late, missing = [], [], []
        for entry in sorted(due, key=lambda e: e.row):
            body = entry.request()
            if body is None:
                missing.append(entry.row)
                continue
            schedule = body.get(F.SCHEDULE)
            if isinstance(schedule, (int, float)) and schedule < now - MAX_LATE:
                if late_policy == "send-now":
                    body = {k: v for k, v in body.items() if k != F.SCHEDULE}
                else:
                    late.append((entry.row, schedule))
                    continue
            jobs.append(Job(entry.row, body, entry.request_hash, entry.segments or 1))
        _late(journal, late, late_policy, zone, run)
        if missing:
            journal.commit(finishes=[Finish(row, Status.FAILED, 0, error="held without its message (journal damaged?)")
                                     for row in missing])
            run.counts[Status.FAILED] += len(missing)
        if jobs:
            stats = Sender(client, journal, concurrency=concurrency, quiet=not progress,
                           handle_signals=False).run(jobs)
            run.counts.update(stats.counts)
            if stats.auth_error:
                raise AuthError(f"{stats.auth_error}; nothing more was handed over")
        results = results_of(path)
        note = ""
        if results.exists():
            try:
                refresh_results(results, journal.entries(), zone)
                note = f"; results: {results}"
            except BatchSmsError as exc:  # sorted or edited in Excel, say: the journal still knows
                note = f"; results not updated ({exc}); put it back, then run `batchsms status {results}`"
        shown = ", ".join(f"{n} {s}" for s, n in Counter(e.state for e in journal.entries().values()
                                                       if e.row in {d.row for d in due}).items())
        run.lines.append(f"{path}: {len(due)} due: {shown}{note}")


def _late(journal: Journal, late: list[tuple[int, float]], policy: str, zone: ZoneInfo, run: DueRun) -> None:
    """Held messages whose time passed by more than an hour while nothing ran: never sent late by surprise."""
    if not late:
        return
    if policy == "skip":
        for row, schedule in late:
            journal.cancel([row], f"its time ({format_local(schedule, zone)}) passed before it could be handed "
                                  "over (--late skip)")
        run.counts[Status.CANCELLED] += len(late)
        return
    journal.commit(finishes=[Finish(row, Status.FAILED, 0, error=(
        f"not sent: its time ({format_local(schedule, zone)}) passed more than an hour before batchsms due ran "
        "(was the machine off?); send it again with a new time, or use --late send-now next time"))
        for row, schedule in late])
    run.counts[Status.FAILED] += len(late)


def watch_due(target: Settings, *, every: float = 60.0, stop: Callable[[], bool] = lambda: False,
              sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
              on_run: Callable[[DueRun], None] | None = None, **kwargs) -> None:
    """``batchsms due --watch``: run :func:`submit_due` every ``every`` seconds until ``stop()``."""
    while not stop():
        found = submit_due(target, now=clock(), **kwargs)
        if on_run is not None:
            on_run(found)
        sleep(every)


# --------------------------------------------------------------------------- cancel


@dataclass
class Cancelled:
    cancelled: list[int]
    handed_over: list[tuple[int, str]]  # (row, state): already with the API, which has no cancel call
    results: Path | None
    nothing: list[int] = field(default_factory=list)  # chosen rows with no held message (a typo?)


def cancel_held(journal_file: Path, rows: set[int] | None = None, *, zone: ZoneInfo | None = None,
                now: float | None = None) -> Cancelled:
    """Withdraw the held messages of ``rows`` (None: every held one) in the journal ``journal_file``."""
    zone = zone or ZoneInfo("UTC")
    now = time.time() if now is None else now
    with Journal(journal_file) as journal:
        entries = journal.entries()
        chosen = [row for row in sorted(entries) if rows is None or row in rows]
        held = [row for row in chosen if entries[row].state == Status.HELD]
        handed = [(row, str(entries[row].state)) for row in chosen
                  if entries[row].state in (Status.SCHEDULED, Status.SENT, Status.STARTED, Status.UNKNOWN)]
        cancelled = journal.cancel(held, f"cancelled on {format_local(now, zone)} (batchsms cancel)")
        named = {row for row, _ in handed} | set(held)
        nothing = sorted(rows) if rows is not None and not named else []  # none of them held anything
        results = results_of(Path(journal_file))
        if results.exists():
            refresh_results(results, journal.entries(), zone)
        else:
            results = None
    return Cancelled(cancelled, handed, results, nothing)


def parse_rows(text: str | None) -> set[int] | None:
    """``5-40,52`` → {5, …, 40, 52}; None for every row. ValueError with a message for a person."""
    if not text:
        return None
    rows: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        first, _, last = part.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"--rows {text}: {part!r} is not a row or a range; write them like 5-40,52") from None
        if low < 1 or high < low or high - low > 10_000_000:
            raise ValueError(f"--rows {text}: {part!r} is not a range of row numbers (first-last, from 1)")
        rows.update(range(low, high + 1))
    return rows
