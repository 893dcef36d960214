"""The SQLite journal that makes a send exactly-once across crashes.

Before a request goes out, its row is committed as ``started`` (with a hash of the
exact request); afterwards its outcome replaces that. SQLite in WAL mode with
``synchronous=FULL`` makes each commit survive a power cut, and the sender groups
many rows into one commit so the fsync does not limit throughput.

A row still ``started`` when a journal is opened was in flight when the last run
died: nobody knows whether the API took it, so it becomes ``unknown`` and is
never resent unless a person asks (``--retry-unknown``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .codes import Status
from .errors import JournalError

INTERRUPTED = "interrupted while in flight: the API may or may not have taken it (check before --retry-unknown)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    row INTEGER PRIMARY KEY,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    message_sid TEXT,
    sender_id TEXT,
    segments INTEGER,
    error TEXT,
    http_status INTEGER,
    prev_state TEXT,
    prev_error TEXT,
    updated REAL NOT NULL
);
"""


_COLUMNS = {"rows": {"row", "request_hash", "state", "attempts", "message_sid", "sender_id", "segments", "error",
                    "http_status", "prev_state", "prev_error", "updated"},
            "meta": {"key", "value"}}


def _foreign_schema(db: sqlite3.Connection) -> str | None:
    """What makes this database something other than a batchsms journal (None for a journal or a new file)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return None
    for table, wanted in _COLUMNS.items():
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        if not wanted <= have:
            return f"it has no {table} table of the journal's shape"
    return None


def journal_path(results: Path) -> Path:
    """The journal that belongs to a results file: ``contacts.results.csv.journal`` beside it."""
    return results.with_name(results.name + ".journal")


def journals_near(*folders: Path) -> list[Path]:
    """Every journal (and every journal set aside by --restart) in these folders."""
    found: dict[Path, None] = {}
    for folder in folders:
        for pattern in ("*.journal", "*.journal.*.bak"):
            for path in sorted(folder.glob(pattern)):
                found[path.resolve()] = None
    return list(found)


def earlier_sends(paths: Iterable[Path], target: str) -> dict[str, tuple[Path, int]]:
    """Request hashes that these journals record as sent, scheduled or maybe sent to ``target``.

    Read-only and lock-free (another send may be writing one of them): what it cannot
    read it skips, because this only warns before a deliberate resend.
    """
    sent: dict[str, tuple[Path, int]] = {}
    for path in paths:
        try:
            db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        except sqlite3.Error:
            continue
        try:
            meta = dict(db.execute("SELECT key, value FROM meta"))
            if meta.get("target") != target:
                continue
            for digest, row in db.execute(
                    "SELECT request_hash, row FROM rows WHERE state IN (?, ?, ?, ?)",
                    (Status.SENT, Status.SCHEDULED, Status.UNKNOWN, Status.STARTED)):
                sent.setdefault(digest, (path, row))
        except sqlite3.Error:
            continue
        finally:
            db.close()
    return sent


def request_hash(body: dict) -> str:
    """A stable fingerprint of the exact request (key order does not matter)."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(slots=True)
class Entry:
    row: int
    request_hash: str
    state: str
    attempts: int
    message_sid: str | None
    sender_id: str | None
    segments: int | None
    error: str | None
    http_status: int | None


@dataclass(slots=True)
class Finish:
    """The outcome of one row, to be written in the next commit."""

    row: int
    state: str
    attempts: int
    message_sid: str | None = None
    sender_id: str | None = None
    segments: int | None = None
    error: str | None = None
    http_status: int | None = None


class Journal:
    """One send's journal. Only one process may hold it open (a lock file enforces that)."""

    def __init__(self, path: str | Path, *, restart: bool = False) -> None:
        """Open (or create) the journal at ``path``, holding its lock until :meth:`close`.

        ``restart`` first sets any existing journal aside as a dated ``.bak`` (kept, not
        deleted: it still says what was sent); this happens under the lock, so a send
        still running on the old journal is refused rather than left writing to a backup.
        """
        self.path = Path(path)
        self.backup: Path | None = None
        self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise JournalError(
                f"{self.path}: another batchsms send is using this journal; wait for it to finish"
            ) from None
        if restart and self.path.exists():
            self.backup = self.path.with_name(f"{self.path.name}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
            for suffix in ("", "-wal", "-shm"):
                part = Path(f"{self.path}{suffix}")
                if part.exists():
                    part.rename(Path(f"{self.backup}{suffix}"))
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            foreign = _foreign_schema(self.db)  # before anything is written to someone else's file
            if not foreign:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self.close()
            raise JournalError(
                f"{self.path}: not a usable batchsms journal ({exc}); move it away, or use --restart "
                "(which keeps it as a .bak)"
            ) from None
        if foreign:
            self.close()
            raise JournalError(
                f"{self.path}: is a SQLite file but not a batchsms journal ({foreign}); move it away, "
                "or choose another --results path"
            )

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, **values: str) -> None:
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    # ------------------------------------------------------------------ reading
    def entries(self) -> dict[int, Entry]:
        cursor = self.db.execute(
            "SELECT row, request_hash, state, attempts, message_sid, sender_id, segments, error, http_status FROM rows"
        )
        return {r[0]: Entry(*r) for r in cursor}

    def recover(self) -> int:
        """Turn rows left ``started`` by a dead run into ``unknown``; returns how many."""
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE rows SET state = ?, error = ?, updated = ? WHERE state = ?",
                (Status.UNKNOWN, INTERRUPTED, time.time(), Status.STARTED),
            )
        return cursor.rowcount

    # ------------------------------------------------------------------ writing
    def commit(self, *, starts: Iterable[tuple[int, str]] = (), finishes: Iterable[Finish] = (),
               releases: Iterable[int] = ()) -> None:
        """One durable transaction: new rows in flight, outcomes, and rows never taken.

        ``starts`` are committed before their requests may go out. ``releases`` drop
        rows that were provably never taken, so a later run sends them as new.
        """
        now = time.time()
        with self._transaction():
            self.db.executemany(
                "INSERT INTO rows (row, request_hash, state, attempts, updated) VALUES (?, ?, 'started', 0, ?) "
                "ON CONFLICT(row) DO UPDATE SET request_hash = excluded.request_hash, state = 'started', "
                "prev_state = rows.state, prev_error = rows.error, error = NULL, updated = excluded.updated",
                [(row, digest, now) for row, digest in starts],
            )
            self.db.executemany(
                "UPDATE rows SET state = ?, attempts = attempts + ?, message_sid = ?, sender_id = ?, segments = ?, "
                "error = ?, http_status = ?, prev_state = NULL, prev_error = NULL, updated = ? WHERE row = ?",
                [(f.state, f.attempts, f.message_sid, f.sender_id, f.segments, f.error, f.http_status, now, f.row)
                 for f in finishes],
            )
            releases = [(r,) for r in releases]
            self.db.executemany("DELETE FROM rows WHERE row = ? AND state = 'started' AND prev_state IS NULL",
                                releases)
            self.db.executemany(
                "UPDATE rows SET state = prev_state, error = prev_error, prev_state = NULL, prev_error = NULL "
                "WHERE row = ? AND state = 'started'",
                releases,
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
            self.db = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
