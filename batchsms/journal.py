"""The SQLite journal that makes a send exactly-once across crashes.

Before a request goes out, its row is committed as ``started`` (with a hash of the
exact request); afterwards its outcome replaces that. SQLite in WAL mode with
``synchronous=FULL`` makes each commit survive a power cut, and the sender groups
many rows into one commit so the fsync does not limit throughput.

A row still ``started`` when a journal is opened was in flight when the last run
died: nobody knows whether the API took it, so it becomes ``unknown`` and is
never resent unless a person asks (``--retry-unknown``).

After the send the journal also holds what became of each message: the request body
as it was sent and when it first went out (so an ``unknown`` row can later be looked
up in the API's message list and settled), and the delivery status the API last
gave. Journals written before those columns existed are migrated when opened
(``ALTER TABLE ADD COLUMN``); every row stays.
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
from .outcome import encode_body

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

#: Columns added after the first journals were written: (name, SQL type). A journal that lacks
#: them gets them when it is opened; the fingerprint above stays the first journals' columns, so
#: old and new journals are both accepted (and an older batchsms still opens a new journal).
_ADDED_COLUMNS = (
    ("body", "TEXT"),  # the request body JSON exactly as sent (never any credential)
    ("started", "REAL"),  # when the first attempt of this message went out (epoch seconds)
    ("due", "REAL"),  # a held message: when it is to go to the API
    ("delivery", "TEXT"),  # the API's last Status for the message: Processing, Submitted, Delivered, Failed
    ("delivered_at", "REAL"),  # the API's Delivered time
    ("delivery_error", "TEXT"),  # the API's ErrorCode, or why the status could not be read
    ("delivery_checked", "REAL"),  # when the status was last asked for
    ("settled", "TEXT"),  # an unknown row looked up in the message list: 'sent' or 'not sent'
)
#: Delivery statuses after which the API says nothing more about a message.
FINAL_DELIVERY = frozenset({"Delivered", "Failed"})
#: How far along a message is; a status is never replaced by one further back.
_DELIVERY_RANK = {"Processing": 1, "Submitted": 2, "Delivered": 3, "Failed": 3}
SETTLED_SENT, SETTLED_NOT_SENT = "sent", "not sent"
#: Rows in one INSERT of :meth:`Journal.commit`: 5 values each stay within the 999 variables
#: SQLite allowed a statement before 3.32.
_ROWS_PER_INSERT = 199


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
                    "SELECT request_hash, row FROM rows WHERE state IN (?, ?, ?, ?, ?)",
                    (Status.SENT, Status.SCHEDULED, Status.UNKNOWN, Status.STARTED, Status.HELD)):
                sent.setdefault(digest, (path, row))
        except sqlite3.Error:
            continue
        finally:
            db.close()
    return sent


def _migrate(db: sqlite3.Connection) -> None:
    """Add the columns an older journal lacks; its rows keep their values (the new columns are NULL)."""
    have = {r[1] for r in db.execute("PRAGMA table_info(rows)")}
    missing = [(name, kind) for name, kind in _ADDED_COLUMNS if name not in have]
    indexed = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'rows_by_sid'").fetchone()
    if not missing and indexed:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for name, kind in missing:
            db.execute(f"ALTER TABLE rows ADD COLUMN {name} {kind}")
        # Delivery answers and receipts find their row by MessageSid: without an index each is a full scan.
        db.execute("CREATE INDEX IF NOT EXISTS rows_by_sid ON rows (message_sid)")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


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
    body: str | None = None  # the request body JSON as sent (None: journaled by an older batchsms)
    started: float | None = None  # when the first attempt went out
    updated: float | None = None  # when the row last changed (its outcome was recorded)
    due: float | None = None
    delivery: str | None = None  # Processing, Submitted, Delivered, Failed (None: never asked)
    delivered_at: float | None = None
    delivery_error: str | None = None
    delivery_checked: float | None = None
    settled: str | None = None  # SETTLED_SENT or SETTLED_NOT_SENT for an unknown row looked up in the list

    def request(self) -> dict | None:
        """The request body as a dict, or None when it was not recorded (or is not a JSON object)."""
        return _request_of(self.body)

    @property
    def delivery_final(self) -> bool:
        return self.delivery in FINAL_DELIVERY


def _request_of(body: str | None) -> dict | None:
    if not body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_ENTRY_COLUMNS = ("row, request_hash, state, attempts, message_sid, sender_id, segments, error, http_status, body, "
                  "started, updated, due, delivery, delivered_at, delivery_error, delivery_checked, settled")


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
                f"{self.path}: another batchsms send (or status, due, cancel or receive) is using this journal; "
                "wait for it to finish"
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
                _migrate(self.db)
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
        cursor = self.db.execute(f"SELECT {_ENTRY_COLUMNS} FROM rows")
        return {r[0]: Entry(*r) for r in cursor}

    def entries_in(self, state: str) -> dict[int, Entry]:
        """The rows in ``state`` (e.g. every held message)."""
        cursor = self.db.execute(f"SELECT {_ENTRY_COLUMNS} FROM rows WHERE state = ?", (str(state),))
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
    def commit(self, *, starts: Iterable[tuple[int, str] | tuple[int, str, dict | bytes]] = (),
               finishes: Iterable[Finish] = (), releases: Iterable[int] = ()) -> None:
        """One durable transaction: new rows in flight, outcomes, and rows never taken.

        ``starts`` are ``(row, request hash, request body)`` (the body may be left out),
        committed before their requests may go out; the body is kept as the JSON the
        client sends (given as a dict, or as the bytes :func:`encode_body` made), and
        ``started`` keeps the first attempt's time when a row goes again
        (``--retry-unknown``), so a later look-up covers every attempt. A finish is a new
        outcome, so what was known about the previous message's delivery or settlement
        is cleared. ``releases`` drop rows that were provably never taken, so a later run
        sends them as new.
        """
        now = time.time()
        with self._transaction():
            self._start(starts, now)
            self.db.executemany(
                "UPDATE rows SET state = ?, attempts = attempts + ?, message_sid = ?, sender_id = ?, segments = ?, "
                "error = ?, http_status = ?, prev_state = NULL, prev_error = NULL, updated = ?, delivery = NULL, "
                "delivered_at = NULL, delivery_error = NULL, delivery_checked = NULL, settled = NULL WHERE row = ?",
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

    def _start(self, starts: Iterable[tuple[int, str] | tuple[int, str, dict | bytes]], now: float) -> None:
        """:meth:`commit`'s new rows in flight, in statements of up to :data:`_ROWS_PER_INSERT` rows.

        One statement a chunk, not one per row: the sender commits a batch's rows between
        an answer and the next request, and each statement gives up the GIL to the
        workers reading their answers and must win it back (a batch of 100 at 50 ms, 8
        in flight: 0.97 → 0.80 ms a commit).
        """
        values = []
        for start in starts:
            body = start[2] if len(start) > 2 else None
            if isinstance(body, dict):
                body = encode_body(body)
            values.append((start[0], start[1], now, None if body is None else body.decode("utf-8"), now))
        for lo in range(0, len(values), _ROWS_PER_INSERT):
            chunk = values[lo:lo + _ROWS_PER_INSERT]
            self.db.execute(
                "INSERT INTO rows (row, request_hash, state, attempts, updated, body, started) VALUES "
                + ", ".join(["(?, ?, 'started', 0, ?, ?, ?)"] * len(chunk))
                + " ON CONFLICT(row) DO UPDATE SET request_hash = excluded.request_hash, state = 'started', "
                "prev_state = rows.state, prev_error = rows.error, error = NULL, updated = excluded.updated, "
                "body = excluded.body, started = COALESCE(rows.started, excluded.started)",
                [value for row in chunk for value in row],
            )

    # ------------------------------------------------------------------ held messages
    def hold(self, items: Iterable[tuple[int, str, dict, float, int]]) -> None:
        """Keep messages locally until they are due: ``(row, request hash, body, due, segments)``.

        A held row is not sent; ``batchsms due`` hands it to the API (with its Schedule)
        once ``due`` has come. A row held again with another message (the sheet was edited
        before the handover) simply replaces it: the API never had the old one.
        """
        now = time.time()
        with self._transaction():
            self.db.executemany(
                "INSERT INTO rows (row, request_hash, state, attempts, updated, body, due, segments) "
                "VALUES (?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT(row) DO UPDATE SET request_hash = excluded.request_hash, "
                "state = excluded.state, attempts = 0, message_sid = NULL, error = NULL, http_status = NULL, "
                "updated = excluded.updated, body = excluded.body, due = excluded.due, segments = excluded.segments, "
                "started = NULL, delivery = NULL, delivered_at = NULL, delivery_error = NULL, "
                "delivery_checked = NULL, settled = NULL",
                [(row, digest, Status.HELD, now, encode_body(body).decode("utf-8"), due, segments)
                 for row, digest, body, due, segments in items],
            )

    def cancel(self, rows: Iterable[int], reason: str) -> list[int]:
        """Withdraw held messages (the API never had them); returns the rows cancelled.

        Only ``held`` rows change: a message already handed to the API cannot be withdrawn
        (the API has no cancel call), and the caller names those rows to the person.
        """
        cancelled = []
        now = time.time()
        with self._transaction():
            for row in rows:
                cursor = self.db.execute(
                    "UPDATE rows SET state = ?, error = ?, updated = ? WHERE row = ? AND state = ?",
                    (Status.CANCELLED, reason, now, row, Status.HELD))
                if cursor.rowcount:
                    cancelled.append(row)
        return cancelled

    def renumber(self, moves: dict[int, int]) -> None:
        """Move records to new row numbers (rows inserted or deleted above them), all at once.

        Each record first goes to a free negative number, then to its new row, so records
        trading places never collide (see :mod:`batchsms.moves`).
        """
        if not moves:
            return
        with self._transaction():
            for old in moves:
                self.db.execute("UPDATE rows SET row = ? WHERE row = ?", (-old - 1, old))
            for old, new in moves.items():
                self.db.execute("UPDATE rows SET row = ? WHERE row = ?", (new, -old - 1))

    # ------------------------------------------------------------------ after the send
    def record_delivery(self, message_sid: str, status: str | None, delivered_at: float | None,
                        error: str | None, checked: float) -> int:
        """Record what the API says of the message ``message_sid``; returns how many rows changed.

        Idempotent, and never backwards: a status is replaced only by one as far along or
        further (Processing < Submitted < Delivered/Failed), so a late or repeated answer
        cannot move a Delivered message back to Submitted. ``status`` None records only that
        the status could not be read (``error`` says why), and leaves a final status alone.
        """
        return self.record_deliveries([(message_sid, status, delivered_at, error, checked)])

    def record_deliveries(self, answers: Iterable[tuple[str, str | None, float | None, str | None, float]]) -> int:
        """:meth:`record_delivery` for many messages in one transaction (one fsync)."""
        changed = 0
        with self._transaction():
            for sid, status, delivered_at, error, checked in answers:
                rows = self.db.execute("SELECT row, delivery FROM rows WHERE message_sid = ?", (sid,)).fetchall()
                for row, current in rows:
                    if status is None:
                        if current in FINAL_DELIVERY:
                            continue
                        self.db.execute("UPDATE rows SET delivery_error = ?, delivery_checked = ? WHERE row = ?",
                                        (error, checked, row))
                    elif current is not None and _DELIVERY_RANK.get(current, 0) > _DELIVERY_RANK.get(status, 0):
                        self.db.execute("UPDATE rows SET delivery_checked = ? WHERE row = ?", (checked, row))
                    else:
                        self.db.execute(
                            "UPDATE rows SET delivery = ?, delivered_at = ?, delivery_error = ?, delivery_checked = ? "
                            "WHERE row = ?", (status, delivered_at, error, checked, row))
                    changed += 1
        return changed

    def settle(self, row: int, message_sid: str | None, how: str, *, sender_id: str | None = None,
               segments: int | None = None, now: float | None = None) -> bool:
        """Settle the ``unknown`` row ``row`` from the API's own record; False if it is not unknown.

        With ``message_sid`` (the API's message list holds exactly this message) the row
        becomes sent, or scheduled when its Schedule is still ahead, with that MessageSid.
        Without one (the list proves no such message was created) the row stays
        ``unknown``, marked settled as not sent: ``--retry-unknown`` resends it, and nothing
        else does. ``how`` (what the look-up found) becomes the row's error text either way.
        """
        now = time.time() if now is None else now
        with self._transaction():
            found = self.db.execute("SELECT state, body FROM rows WHERE row = ?", (row,)).fetchone()
            if found is None or found[0] != Status.UNKNOWN:
                return False
            if message_sid is None:
                self.db.execute("UPDATE rows SET error = ?, settled = ? WHERE row = ?", (how, SETTLED_NOT_SENT, row))
                return True
            schedule = (_request_of(found[1]) or {}).get("Schedule")
            later = isinstance(schedule, (int, float)) and not isinstance(schedule, bool) and schedule > now
            self.db.execute(
                "UPDATE rows SET state = ?, message_sid = ?, sender_id = COALESCE(?, sender_id), "
                "segments = COALESCE(?, segments), error = ?, settled = ? WHERE row = ?",
                (Status.SCHEDULED if later else Status.SENT, message_sid, sender_id, segments, how, SETTLED_SENT,
                 row))
        return True

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
