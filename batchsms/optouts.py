"""The opt-out list: every number that must never be texted, read by ``check``/``send`` and kept by
``replies``/``receive``.

Reading (:func:`load_optouts`): any CSV, TXT or workbook a person hands to ``--suppress``,
read with the sheet reader (same encodings, delimiters and workbook suffixes, so an
``.xlsb`` list is read as a workbook, not as CSV garbage that silently suppresses nobody);
every cell that is a phone number counts. Digits that lost their ``+`` in Excel
(``64211234567``) count too: a list of opt-outs errs on the side of not texting.

Writing (:func:`add_optouts`): *the opt-out file* is a CSV a person can open in Excel,
``Number,Date,Reply`` — the number in E.164, the time of the reply in UTC
(``2026-11-27T05:13:00Z``), and the reply as it came, on one line and formula-safe. Beside
it, ``<name>.history.csv`` records every keyword reply ever applied (append-only), which is
what makes the rules hold across runs and processes:

- a number is listed once, whatever number of STOPs it sends;
- the latest keyword from a number wins: START/UNSTOP *after* its opt-out removes it, an
  opt-out after that lists it again, and a reply older than the latest one (a webhook
  retried late, a ``replies --since`` window read twice) changes nothing; at the same
  second an opt-out beats an opt-in;
- a row a person typed in without a readable Date is never removed by a START: a person
  put it there, a person takes it out;
- a reply seen before (in the history) is not applied twice, so a row a person deleted by
  hand is not brought back by reading the same STOP again.

Additions are appended to the file, leaving every other byte as it was; a removal rewrites
it through a temporary file and a rename, copying the other rows' lines unchanged. A lock
file (``<name>.lock``, ``flock``) makes each read-change-write one step, so two processes
(``receive`` and ``replies``, say) never lose each other's lines. Readers need no lock: they
see the old file or the new one, never half.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import enum
import fcntl
import io
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .cells import csv_safe
from .errors import ConfigError
from .fields import header_key
from .phones import PhoneBook
from .replies import OPT_IN, OPT_OUT, Keyword, Reply, reply_key, shown_text
from .sheet import WORKBOOK_SUFFIXES, decode, detect_delimiter, read_csv_records, read_workbook_records

if TYPE_CHECKING:
    from .config import Preferences

HEADER = ("Number", "Date", "Reply")
HISTORY_HEADER = ("Date", "Number", "Keyword", "Result", "Reply", "MessageSid")
DEFAULT_NAME = "optouts.csv"
LOCK_WAIT = 30.0  # seconds to wait for another process's change to the file before giving up


def load_optouts(path: str | Path, country: str, *, what: str = "--suppress",
                 missing_ok: bool = False) -> frozenset[str]:
    """Every cell of the file that is a valid phone number, in E.164 (other cells are ignored).

    ``what`` names the file in errors (``--suppress``, ``--optouts``, ``optouts in the
    config``); ``missing_ok`` reads a file that does not exist yet (the default opt-out
    file, before the first STOP) as empty.
    """
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return frozenset()
        raise ConfigError(f"{what} {path}: no such file")
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        records, _ = read_workbook_records(path, None)
    else:
        records, _, _ = read_csv_records(path, None, None)
    book = PhoneBook(country)
    numbers = set()
    for record in records:
        for cell in record:
            if cell.strip():
                e164 = _number(book, cell)
                if e164 is not None:
                    numbers.add(e164)
    return frozenset(numbers)


def _number(book: PhoneBook, cell: str) -> str | None:
    """The E.164 number a cell holds: as written, else as digits that lost their + in Excel."""
    phone = book.normalise(cell)
    if not phone.valid:
        phone = book.international(cell) or phone
    return phone.e164 if phone.valid else None


def history_path(path: str | Path) -> Path:
    """``optouts.csv`` → ``optouts.history.csv`` beside it: every keyword reply applied to the file."""
    path = Path(path)
    return path.with_name(f"{path.stem}.history.csv")


def default_optouts_path(preferences: Preferences | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The opt-out file when no ``--optouts`` is given: ``optouts`` in the config file's ``[batchsms]``
    (a relative path is beside the config file), else ``optouts.csv`` in the state folder.

    ``check`` and ``send`` must read this same file (missing: empty), or a STOP kept here
    would not stop the next campaign.
    """
    if preferences is None:
        from .config import load_preferences

        preferences = load_preferences(env)
    if preferences.optouts is not None:
        return Path(preferences.optouts)
    from .state import state_dir

    return Path(state_dir(env)) / DEFAULT_NAME


# --------------------------------------------------------------------------- the changes


class Result(str, enum.Enum):
    """What a keyword reply did to the opt-out file (the values are what ``replies`` shows)."""

    ADDED = "opted out"
    ALREADY = "already opted out"
    REMOVED = "opted in"
    NOT_LISTED = "opted in (was not opted out)"
    SUPERSEDED = "ignored: a later reply or change counts"
    KEPT = "kept: listed by hand without a date, remove it yourself"
    NO_NUMBER = "ignored: the sender is not a phone number"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Entry:
    """One keyword reply to apply: the number (E.164), when it was sent, its text, opt-out or opt-in."""

    number: str
    at: float  # epoch seconds
    reply: str
    keyword: Keyword
    sid: str | None = None
    valid_number: bool = True


@dataclass(frozen=True)
class Applied:
    entry: Entry
    result: Result


def entries_from(replies: Iterable[Reply]) -> list[Entry]:
    """The keyword replies among ``replies`` as entries (other replies change nothing)."""
    return [Entry(r.number, r.at, r.text, kw, r.sid, r.valid_number) for r in replies
            for kw in [r.keyword] if kw is not None]


def apply_replies(path: str | Path, replies: Iterable[Reply], *, country: str = "AU") -> dict[str, str]:
    """Apply the keyword replies to the opt-out file; what was done to each reply by ``reply_key`` ("—" for none)."""
    replies = list(replies)
    applied = add_optouts(path, entries_from(replies), country=country)
    by_entry = {(a.entry.sid, a.entry.number, a.entry.at): a.result for a in applied}
    return {reply_key(r): str(by_entry.get((r.sid, r.number, r.at), "—")) for r in replies}


def iso_utc(epoch: float) -> str:
    """``2026-11-27T05:13:00Z``: the Date column (UTC, to the second)."""
    return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_iso(text: str) -> float | None:
    """A Date cell back as epoch seconds; None when it is no ISO date-time (typed by hand, or reformatted)."""
    text = text.strip().lstrip("'")
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def add_optouts(path: str | Path, entries: Iterable[Entry], *, country: str = "AU") -> list[Applied]:
    """Apply keyword replies to the opt-out file at ``path`` (created with its header when missing).

    Opt-outs are appended once per number; an opt-in later than the number's latest
    opt-out removes its rows. Entries are applied in time order (an opt-out first at
    the same second); see the module docstring for the rules. Returns what each entry
    did, in that order.
    """
    path = Path(path)
    _check_writable(path)
    ordered = sorted(entries, key=lambda e: (e.at, 0 if e.keyword == OPT_IN else 1))
    if not ordered:
        return []
    book = PhoneBook(country)
    with _locked(path):
        table = _Table(path, book)
        history = _History(history_path(path), book)
        applied = [Applied(entry, _apply(entry, table, history)) for entry in ordered]
        table.write()
        history.write()
    return applied


def _apply(entry: Entry, table: _Table, history: _History) -> Result:
    if not entry.valid_number:
        return Result.NO_NUMBER
    number, second = entry.number, int(entry.at)
    listed = table.listed(number)
    if (number, second, entry.keyword) in history.seen:  # applied by an earlier run: report, do not redo
        if entry.keyword == OPT_OUT:
            return Result.ALREADY if listed else Result.SUPERSEDED
        return Result.NOT_LISTED if not listed else Result.SUPERSEDED
    latest = max(filter(None, (history.latest.get(number), table.latest(number))), default=None)
    if latest is not None and (second < latest or (second == latest and entry.keyword == OPT_IN)):
        result = Result.SUPERSEDED
    elif entry.keyword == OPT_OUT:
        result = Result.ALREADY if listed else Result.ADDED
        if not listed:
            table.add(number, entry.at, entry.reply)
    elif not listed:
        result = Result.NOT_LISTED
    elif latest is None or table.hand_listed(number):  # a person typed it in: a person takes it out
        result = Result.KEPT
    else:
        table.remove(number)
        result = Result.REMOVED
    history.record(entry, result)
    return result


# --------------------------------------------------------------------------- the files


def _check_writable(path: Path) -> None:
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        raise ConfigError(f"--optouts {path}: the opt-out file batchsms keeps must be a .csv file; a workbook can "
                          "still be read with --suppress")
    if path.exists() and not path.is_file():
        raise ConfigError(f"--optouts {path}: exists and is not a regular file; choose another path")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"--optouts {path}: the folder {folder} does not exist; create it or choose another path")


@contextlib.contextmanager
def _locked(path: Path, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold ``<path>.lock`` exclusively: one read-change-write of the file (and its history) at a time."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConfigError(f"{path}: another batchsms process has been changing this opt-out file for "
                                      f"{wait:g} s; wait for it to finish and run this again") from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+\Z")


def _records_with_lines(text: str, delimiter: str) -> list[tuple[list[str], str]]:
    """Each CSV record of ``text`` with the exact lines it was read from (to copy it unchanged)."""
    lines = _LINE.findall(text)
    consumed: list[str] = []

    def feed() -> Iterator[str]:
        for line in lines:
            consumed.append(line)
            yield line

    out = []
    try:
        for record in csv.reader(feed(), delimiter=delimiter):
            out.append((record, "".join(consumed)))
            consumed.clear()
    except csv.Error:  # a stray quote ran to the end: keep those lines as they are, as one record
        out.append(([], "".join(consumed)))
    return out


BOM = b"\xef\xbb\xbf"


def _read_text(path: Path) -> tuple[str, str, bool]:
    """The file's text, its encoding and whether it starts with a BOM (a new file: UTF-8 with one,
    so Excel reads the replies' accents right; a file Excel saved in cp1252 stays cp1252)."""
    data = path.read_bytes() if path.exists() else b""
    if not data.strip():
        return "", "utf-8", True
    try:
        return data.decode("utf-8-sig"), "utf-8", data.startswith(BOM)
    except UnicodeDecodeError:
        text, encoding = decode(path, data, None)
        return text.lstrip("\ufeff"), encoding, False


@dataclass
class _Row:
    raw: str  # the line(s) as in the file
    number: str | None
    at: float | None  # the Date cell, None when unreadable or absent


class _Table:
    """The opt-out file in memory: its rows as they are written, and the changes to make."""

    def __init__(self, path: Path, book: PhoneBook) -> None:
        self.path = path
        text, self.encoding, self.bom = _read_text(path)
        self.delimiter = detect_delimiter(text) if text else ","
        newline = re.search(r"\r\n|\n|\r", text)
        self.newline = newline.group(0) if newline else "\r\n"
        self.text = text
        self.head = ""  # the header line(s), kept as they are
        self.rows: list[_Row] = []
        self.new: list[tuple[str, float, str]] = []
        self.removed = False
        records = _records_with_lines(text, self.delimiter)
        number_col = date_col = None
        if records:
            keys = [header_key(cell) for cell in records[0][0]]
            if "number" in keys:
                number_col = keys.index("number")
                date_col = keys.index("date") if "date" in keys else None
                self.head = records[0][1]
                records = records[1:]
        for record, raw in records:
            if number_col is not None:
                cell = record[number_col] if number_col < len(record) else ""
                number = _number(book, cell) if cell.strip() else None
            else:  # a list without our header: the row's first phone number
                number = next((n for c in record if c.strip() for n in [_number(book, c)] if n), None)
            at = read_iso(record[date_col]) if date_col is not None and date_col < len(record) else None
            self.rows.append(_Row(raw, number, at))

    def listed(self, number: str) -> bool:
        return any(r.number == number for r in self.rows) or any(n == number for n, _, _ in self.new)

    def hand_listed(self, number: str) -> bool:
        """True when a row for ``number`` has no readable Date: a person typed it in, and only a person
        takes it out (a START never removes it)."""
        return any(r.number == number and r.at is None for r in self.rows)

    def latest(self, number: str) -> float | None:
        times = [r.at for r in self.rows if r.number == number and r.at is not None]
        times += [at for n, at, _ in self.new if n == number]
        return max(times, default=None)

    def add(self, number: str, at: float, reply: str) -> None:
        self.new.append((number, at, reply))

    def remove(self, number: str) -> None:
        before = len(self.rows)
        self.rows = [r for r in self.rows if r.number != number]
        self.removed = self.removed or len(self.rows) != before
        self.new = [n for n in self.new if n[0] != number]

    def write(self) -> None:
        """Append the new rows, or (after a removal, or to a new file) write it whole and rename it in place.

        A file that does not exist yet is created, with its header, even when nothing is added
        (a STOP and a START in one go): the file the next ``check`` reads is then there.
        """
        if not self.removed and not self.new and self.text.strip():
            return
        new = _csv_lines([(n, iso_utc(at), shown_text(reply)) for n, at, reply in self.new],
                         self.delimiter, self.newline)
        if not self.removed and self.text.strip():
            start = "" if self.text.endswith(("\n", "\r")) else self.newline
            _append(self.path, (start + new).encode(self.encoding, "replace"))
            return
        head = self.head or (_csv_lines([HEADER], self.delimiter, self.newline) if not self.rows else "")
        body = "".join(r.raw for r in self.rows)
        if body and not body.endswith(("\n", "\r")):
            body += self.newline
        data = (head + body + new).encode(self.encoding, "replace")
        _replace(self.path, BOM + data if self.bom else data)


def _csv_lines(rows: Iterable[Iterable[str]], delimiter: str, newline: str) -> str:
    """Rows as CSV text, each cell made formula-safe; a row with a cell so changed is written fully quoted."""
    out = io.StringIO()
    plain = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    quoted = csv.writer(out, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_ALL)
    for row in rows:
        row = list(row)
        safe = [csv_safe(cell) for cell in row]
        (quoted if safe != row else plain).writerow(safe)
    return out.getvalue()


def _append(path: Path, data: bytes) -> None:
    """One write with O_APPEND, then fsync: the lines land whole, after everything already there."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, and rename it over ``path``
    (keeping its permissions): a reader sees the old file or the new one, never half of one."""
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:  # a new file: what the umask allows, as open() would give it
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut once the folder is synced
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class _History:
    """``<name>.history.csv``: every keyword reply applied, to tell a new reply from one seen before."""

    def __init__(self, path: Path, book: PhoneBook) -> None:
        self.path = path
        self.seen: set[tuple[str, int, str]] = set()
        self.latest: dict[str, float] = {}
        self.lines: list[tuple[str, ...]] = []
        self.exists = path.exists() and path.stat().st_size > 0
        if not self.exists:
            return
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            records = list(csv.reader(fh))
        keys = [header_key(c) for c in records[0]] if records else []
        if not {"date", "number", "keyword"} <= set(keys):
            return  # not a history batchsms wrote: nothing known, nothing assumed
        at_col, num_col, kw_col = keys.index("date"), keys.index("number"), keys.index("keyword")
        for record in records[1:]:
            if len(record) <= max(at_col, num_col, kw_col):
                continue
            at, number, keyword = read_iso(record[at_col]), _number(book, record[num_col]), record[kw_col].strip()
            if at is None or number is None or keyword not in (OPT_OUT, OPT_IN):
                continue
            self.seen.add((number, int(at), keyword))
            self.latest[number] = max(self.latest.get(number, at), at)

    def record(self, entry: Entry, result: Result) -> None:
        second = int(entry.at)
        self.seen.add((entry.number, second, entry.keyword))
        self.latest[entry.number] = max(self.latest.get(entry.number, second), second)
        self.lines.append((iso_utc(entry.at), entry.number, entry.keyword, result.name.lower().replace("_", "-"),
                           shown_text(entry.reply), entry.sid or ""))

    def write(self) -> None:
        if not self.lines:
            return
        text = _csv_lines(self.lines, ",", "\r\n")
        if not self.exists:
            _append(self.path, BOM + _csv_lines([HISTORY_HEADER], ",", "\r\n").encode() + text.encode())
        else:
            _append(self.path, text.encode("utf-8"))
