"""A drop folder for daily sheets: each new file is checked and sent exactly once.

An operations team exports tomorrow's reminders every morning under the same name and
a cron job (or a long-lived ``batchsms watch``) sends them. A file is known by its
*content* (SHA-256), not its name: the same file dropped twice sends nothing the second
time, and a new file under yesterday's name is a new batch.

Every step is crash-safe. A file is first recorded in the folder's ledger and moved
into ``INBOX/processing/<date>-<name>/``; it is sent there with its journal beside it, so
a run that dies half-way is resumed by the next one (the journal sends nothing twice);
then the whole folder moves to ``INBOX/done/`` (or ``INBOX/failed/`` when the check
found errors and ``--send-valid`` was not given: nothing of it is sent). One runner at
a time: the folder's lock. Each batch's summary goes to ``INBOX/batchsms.log``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from .api import Options, SendOptions, SendOutcome, SendPlan, Target, send_sheet
from .codes import Status
from .config import Preferences
from .errors import BatchSmsError, ConfigError, SheetError, TemplateError
from .sheet import WORKBOOK_SUFFIXES
from .state import forget, register

#: What a drop folder takes: CSV and text exports, and workbooks.
SHEET_SUFFIXES = frozenset({".csv", ".txt", ".tsv"}) | WORKBOOK_SUFFIXES
#: Seconds a file must sit unchanged before it counts as fully written (a copy or an export in progress).
SETTLE_SECONDS = 5.0
STATE = ".batchsms"  # the folder's own state: ledger and lock
DONE, FAILED, PROCESSING, DUPLICATES = "done", "failed", "processing", "duplicates"
LOG_NAME = "batchsms.log"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    digest TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    folder TEXT NOT NULL,
    state TEXT NOT NULL,
    at REAL NOT NULL
);
"""


class WatchBusy(BatchSmsError):
    """Another ``batchsms watch`` holds this folder."""


@dataclass
class Batch:
    """One file's journey through the folder this run."""

    name: str
    digest: str
    folder: Path  # where the file and its preview, results and journal are now
    state: str  # "done", "failed", "duplicate", "waiting" (left in processing/ to retry)
    line: str  # the summary line written to the log
    outcome: SendOutcome | None = None

    @property
    def ok(self) -> bool:
        return self.state in (DONE, "duplicate") and (self.outcome is None or self.outcome.ok)


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes: what identifies a batch."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class DropFolder:
    """The inbox, its ledger of batches (``.batchsms/batches.sqlite``) and its lock."""

    def __init__(self, inbox: str | Path, *, clock: Callable[[], float] = time.time,
                 settle: float = SETTLE_SECONDS) -> None:
        self.inbox = Path(inbox)
        if not self.inbox.is_dir():
            raise ConfigError(f"{self.inbox}: no such folder; create it, or name the folder files are dropped in")
        self.clock, self.settle = clock, settle
        self.state = self.inbox / STATE
        self.state.mkdir(mode=0o700, exist_ok=True)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder: a second runner (cron firing while a long batch still sends) stops at once."""
        fd = os.open(self.state / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WatchBusy(f"{self.inbox}: another batchsms watch is working on this folder; this run "
                                "does nothing (the other one sends the new files)") from None
            yield
        finally:
            os.close(fd)

    def _ledger(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.state / "batches.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        return db

    def earlier(self, digest: str) -> tuple[str, str, str] | None:
        """(name, folder, state) of the batch that had these bytes, if any."""
        with closing(self._ledger()) as db:
            return db.execute("SELECT name, folder, state FROM batches WHERE digest = ?", (digest,)).fetchone()

    def record(self, digest: str, name: str, folder: Path, state: str) -> None:
        with closing(self._ledger()) as db:
            db.execute("INSERT INTO batches (digest, name, folder, state, at) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT(digest) DO UPDATE SET folder = excluded.folder, state = excluded.state, "
                       "at = excluded.at", (digest, name, str(folder), state, self.clock()))

    def unfinished(self) -> list[tuple[str, str, Path]]:
        """(digest, name, folder) of batches a run left in processing/ (it died, or could not send)."""
        with closing(self._ledger()) as db:
            rows = db.execute("SELECT digest, name, folder FROM batches WHERE state = ? ORDER BY at",
                              (PROCESSING,)).fetchall()
        return [(d, n, Path(f)) for d, n, f in rows if Path(f).is_dir()]

    def new_files(self) -> list[Path]:
        """Sheets in the inbox that have sat unchanged for ``settle`` seconds, oldest first.

        Hidden files, Excel's ``~$`` lock files and other suffixes are left alone.
        """
        now = self.clock()
        found = []
        for path in self.inbox.iterdir():
            name = path.name
            if name.startswith((".", "~$")) or path.suffix.lower() not in SHEET_SUFFIXES:
                continue
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            if not path.is_file() or now - info.st_mtime < self.settle:
                continue
            found.append((info.st_mtime, name, path))
        return [path for _, _, path in sorted(found)]

    def place(self, kind: str, name: str) -> Path:
        """A new, unused folder ``INBOX/<kind>/<date>-<name>`` (``-2``, ``-3`` … when taken)."""
        day = dt.datetime.fromtimestamp(self.clock()).strftime("%Y-%m-%d")
        parent = self.inbox / kind
        parent.mkdir(exist_ok=True)
        base = f"{day}-{name}"
        candidate, n = parent / base, 1
        while candidate.exists():
            n += 1
            candidate = parent / f"{base}-{n}"
        return candidate

    def log(self, line: str) -> None:
        stamp = dt.datetime.fromtimestamp(self.clock()).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
        with (self.inbox / LOG_NAME).open("a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {line}\n")


def _summary(name: str, outcome: SendOutcome, where: str) -> str:
    counts = outcome.stats.counts
    report = outcome.report
    rows = len(report.results)
    invalid = sum(1 for r in report.results if r.status == Status.INVALID)
    skipped = sum(1 for r in report.results if r.status == Status.SKIPPED)
    parts = [f"{rows} rows"]
    for status in (Status.SENT, Status.SCHEDULED, Status.HELD, Status.FAILED, Status.UNKNOWN):
        if counts.get(status):
            parts.append(f"{counts[status]} {status}")
    if invalid:
        parts.append(f"{invalid} invalid")
    if skipped:
        parts.append(f"{skipped} skipped")
    if not outcome.approved:
        parts.append("nothing sent: the check found errors (see the preview and report; --send-valid sends "
                     "the valid rows)")
    return f"{name}: {', '.join(parts)} -> {where}"


def run_once(inbox: str | Path, options: Options, target: Target, send: SendOptions | None = None, *,
             send_valid: bool = False, clock: Callable[[], float] = time.time, settle: float = SETTLE_SECONDS,
             preferences: Preferences | None = None,
             on_batch: Callable[[Batch], None] | None = None) -> list[Batch]:
    """Send every new file in ``inbox`` once, resuming batches an earlier run left unfinished.

    ``send`` gives pace and retries (its results/report/preview paths are set per batch);
    ``clock`` decides when a file counts as fully written (tests pass their own).
    Raises :class:`WatchBusy` when another runner holds the folder.
    """
    folder = DropFolder(inbox, clock=clock, settle=settle)
    send = send or SendOptions()
    batches: list[Batch] = []
    with folder.locked():
        for digest, name, place in folder.unfinished():
            batches.append(_send_batch(folder, digest, name, place, options, target, send, send_valid, preferences))
            if on_batch:
                on_batch(batches[-1])
        for path in folder.new_files():
            try:
                batch = _take(folder, path, options, target, send, send_valid, preferences)
            except OSError as exc:  # the file or the folder went away or cannot be read: the next run looks again
                folder.log(f"{path.name}: left for the next run: {exc}")
                continue
            if batch is None:
                continue
            batches.append(batch)
            if on_batch:
                on_batch(batch)
    return batches


def _take(folder: DropFolder, path: Path, options: Options, target: Target, send: SendOptions,
          send_valid: bool, preferences: Preferences | None) -> Batch | None:
    """Send one new file; None when it is not ready after all (written to again, or gone since the listing).

    The listing may be minutes old when earlier batches took long to send, so the file is
    looked at again, and hashed, and looked at once more: a file that changed meanwhile is
    left for the next run rather than sent half-written.
    """
    try:
        before = path.stat()
        if folder.clock() - before.st_mtime < folder.settle:
            return None
        digest = file_digest(path)
        after = path.stat()
    except FileNotFoundError:
        return None  # moved away since the listing
    if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
        return None
    earlier = folder.earlier(digest)
    if earlier is not None:
        place = folder.place(DUPLICATES, path.name)
        place.mkdir()
        os.replace(path, place / path.name)
        what = "still being sent" if earlier[2] == PROCESSING else f"already {earlier[2]}"
        line = (f"{path.name}: the same file as {earlier[0]}, {what} "
                f"({Path(earlier[1]).relative_to(folder.inbox)}): nothing sent -> {place.relative_to(folder.inbox)}")
        folder.log(line)
        return Batch(path.name, digest, place, "duplicate", line)
    place = folder.place(PROCESSING, path.name)
    place.mkdir()
    folder.record(digest, path.name, place, PROCESSING)  # first the ledger, then the move: a crash between
    os.replace(path, place / path.name)  #                  leaves the file in the inbox, taken again next run
    return _send_batch(folder, digest, path.name, place, options, target, send, send_valid, preferences)


def _send_batch(folder: DropFolder, digest: str, name: str, place: Path, options: Options, target: Target,
                send: SendOptions, send_valid: bool, preferences: Preferences | None) -> Batch:
    sheet = place / name
    if not sheet.exists():  # the move never happened: the file is still in the inbox, or gone
        back = folder.inbox / name
        if back.exists() and file_digest(back) == digest:
            os.replace(back, sheet)
        else:
            folder.record(digest, name, place, FAILED)
            line = f"{name}: the file left the folder before it was sent; nothing sent"
            folder.log(line)
            return Batch(name, digest, place, FAILED, line)
    stem = sheet.stem
    per_batch = replace(send, results=None, report=place / f"{stem}.report.csv", preview=True, restart=False)

    def approve(plan: SendPlan) -> bool:
        return plan.report.ok or send_valid

    try:
        outcome = send_sheet(sheet, options, target, per_batch, approve=approve, preferences=preferences)
    except (SheetError, TemplateError, ConfigError) as exc:  # the file cannot be sent as it is: a person must look
        return _finish(folder, digest, name, place, FAILED, f"{name}: {exc}")
    except BatchSmsError as exc:  # the API or the journal stopped the run: try again next time
        line = f"{name}: {exc}; left in {place.relative_to(folder.inbox)} and tried again on the next run"
        folder.log(line)
        return Batch(name, digest, place, "waiting", line)
    state = DONE if outcome.approved else FAILED
    batch = _finish(folder, digest, name, place, state, "", outcome)
    return batch


def _finish(folder: DropFolder, digest: str, name: str, place: Path, state: str, line: str,
            outcome: SendOutcome | None = None) -> Batch:
    """Move the batch's folder to done/ or failed/: the ledger and the registry of journals first.

    A crash between them and the move leaves a ledger that points at the new folder (the file
    is then a known duplicate, never a new batch) and a registry that names the journal where
    it is going (``batchsms due`` finds held messages there once the folder has moved).
    """
    final = folder.place(state, name)
    folder.record(digest, name, final, state)
    for journal in place.glob("*.journal"):
        register(final / journal.name)
        forget(journal)
    os.replace(place, final)
    shown = str(final.relative_to(folder.inbox))
    line = _summary(name, outcome, shown) if outcome is not None else f"{line} -> {shown}"
    folder.log(line)
    return Batch(name, digest, final, state, line, outcome)


def watch(inbox: str | Path, options: Options, target: Target, send: SendOptions | None = None, *,
          every: float = 30.0, send_valid: bool = False, stop: Callable[[], bool] = lambda: False,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
          settle: float = SETTLE_SECONDS, preferences: Preferences | None = None,
          on_batch: Callable[[Batch], None] | None = None,
          on_error: Callable[[Exception], None] | None = None) -> None:
    """Keep sending new files every ``every`` seconds until ``stop()`` says so; with ``on_error`` a run that
    stops (another runner, the folder gone for a moment) is reported and the next look tries again."""
    while not stop():
        try:
            run_once(inbox, options, target, send, send_valid=send_valid, clock=clock, settle=settle,
                     preferences=preferences, on_batch=on_batch)
        except (BatchSmsError, OSError) as exc:  # a long-lived watcher says why and looks again later
            if on_error is None:
                raise
            on_error(exc)
        sleep(every)
