"""The results file: the user's own sheet, every row in order, plus each row's outcome.

It is built from the check report and the journal alone, so it can be written at
the end, on interruption, or rebuilt any time later from the journal.

Once ``batchsms status`` has asked the API about delivery, the file also has
**Delivery**, **Delivered at** and **Delivery error** columns. ``status`` cannot
rebuild the file (it does not know the template or options the send used), so
:func:`refresh_results` rewrites the existing file in place: only the outcome cells
the journal now says otherwise change, and every other cell keeps its bytes (in CSV
each record is spliced as text; a workbook is read back typed and written again).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from . import fields as F
from . import tables
from .cells import csv_safe
from .clock import format_local, format_when
from .codes import DONE, MAYBE_SENT, Severity, Status
from .errors import JournalError, SheetError
from .journal import Entry
from .paths import input_mode
from .report import Report
from .sheet import WORKBOOK_SUFFIXES, Sheet

#: Read once: an Enum member read off its class costs ~70 ns on Python 3.11, and this runs per row.
_NOT_VALID = frozenset({Status.INVALID, Status.SKIPPED})
_FAILED, _PENDING, _UNKNOWN, _STARTED = Status.FAILED, Status.PENDING, Status.UNKNOWN, Status.STARTED
RESULT_COLUMNS = ("Status", "MessageSid", "SenderId", "To", "Text", "Sends at", "Segments", "Error", "Attempts")
#: After RESULT_COLUMNS once ``batchsms status`` has asked about delivery.
DELIVERY_COLUMNS = ("Delivery", "Delivered at", "Delivery error")
_STATUS, _SID, _SENDER, _ERROR = (RESULT_COLUMNS.index(n) for n in ("Status", "MessageSid", "SenderId", "Error"))
#: The Summary sheet's lines about delivery (replaced whole when the file is refreshed).
DELIVERY_SUMMARY = ("Delivered", "Delivery failed", "Delivery pending")


#: Outcomes that never reached the API: a held message and a cancelled one (``batchsms due``, ``cancel``).
_LOCAL = frozenset({Status.HELD, Status.CANCELLED})


def default_results_path_for(sheet_path: Path) -> Path:
    """``contacts.csv`` → ``contacts.results.csv``; workbooks → ``contacts.results.xlsx``."""
    suffix = ".xlsx" if sheet_path.suffix.lower() in WORKBOOK_SUFFIXES else ".csv"
    return sheet_path.with_name(f"{sheet_path.stem}.results{suffix}")


def sheet_width(sheet: Sheet) -> int:
    """How many columns the sheet really uses: cells beyond the header are kept too."""
    return max([len(sheet.raw_header or sheet.header), len(sheet.header)] + [len(r) for r in sheet.rows])


def result_header(sheet: Sheet, width: int | None = None, delivery: bool = False) -> list[str]:
    """The header row as the file has it, plus the result columns (renamed if the sheet has one)."""
    width = sheet_width(sheet) if width is None else width
    header = list(sheet.raw_header or sheet.header)
    header += [""] * (width - len(header))
    taken = set(sheet.header)
    names = RESULT_COLUMNS + DELIVERY_COLUMNS if delivery else RESULT_COLUMNS
    extra = [name if name not in taken else f"batchsms {name}" for name in names]
    return header + extra


def has_delivery(entries: dict[int, Entry]) -> bool:
    """True once ``batchsms status`` has asked about (or a webhook has told of) some message's delivery."""
    return any(e.delivery is not None or e.delivery_checked is not None for e in entries.values())


def delivery_cells(entry: Entry | None, zone: ZoneInfo) -> list[str]:
    """Delivery, Delivered at (in the run's zone) and Delivery error for one row."""
    if entry is None or (entry.delivery is None and entry.delivery_error is None):
        return ["", "", ""]
    delivered = format_local(entry.delivered_at, zone) if entry.delivered_at is not None else ""
    return [entry.delivery or "", delivered, entry.delivery_error or ""]


def outcome_cells(report_row, entry: Entry | None, when: Callable[[float | None], str]) -> list:
    """Status, MessageSid, SenderId, To, Text, Sends at, Segments, Error, Attempts for one row.

    What the journal says was sent (or may have been) wins over today's verdict: a row
    sent yesterday and invalid or suppressed today was still sent. Segments and Attempts
    are numbers, so a spreadsheet can add them up.
    """
    body = report_row.body
    to = report_row.to or ""
    text = report_row.text or ""
    segments = report_row.segments.parts if report_row.segments else ""
    if report_row.status in _NOT_VALID and (entry is None or entry.state == _FAILED):
        reasons = [i for i in report_row.issues if i.severity == Severity.ERROR] or report_row.issues
        error = "; ".join(f"{i.code}: {i.message}" for i in reasons)
        return [report_row.status, "", "", to, text, "", segments, error, 0]
    sends = when(body.get(F.SCHEDULE)) if body is not None else ""
    if entry is None:
        return [_PENDING, "", "", to, text, sends, segments, "not sent yet: run the same command again to send it", 0]
    state = _UNKNOWN if entry.state == _STARTED else entry.state
    error = entry.error or ("in flight when the run stopped" if entry.state == _STARTED else "")
    if entry.state == Status.HELD:
        sends = when((entry.request() or {}).get(F.SCHEDULE)) or sends
        error = (f"held by batchsms: `batchsms due` hands it to the API from {when(entry.due)}; "
                 "`batchsms cancel` withdraws it until then")
    if report_row.status in _NOT_VALID:
        codes = ", ".join(dict.fromkeys(i.code for i in report_row.issues))
        earlier = "sent by an earlier run" if entry.state in DONE else "an earlier run may have sent it"
        error = "; ".join(filter(None, [error, f"{earlier}; the row is now {report_row.status} ({codes}) "
                                               "and is never sent again"]))
    return [state, entry.message_sid or "", entry.sender_id or "", to, text, sends,
            entry.segments if entry.segments is not None else segments, error, entry.attempts]


def result_rows(sheet: Sheet, report: Report, entries: dict[int, Entry], width: int | None = None,
                zone: ZoneInfo | None = None, delivery: bool = False) -> Iterator[list]:
    """Every row below the header, in order; empty rows stay (empty), so row N here is row N there.

    A workbook's cells keep their types (numbers, dates); a CSV's are the text they were.
    With ``delivery`` each row also gets :func:`delivery_cells`.
    """
    width = sheet_width(sheet) if width is None else width
    zone = zone or ZoneInfo("UTC")
    when = lru_cache(maxsize=4096)(lambda epoch: format_when(epoch, zone))
    typed = sheet.values
    expected = sheet.header_row + 1
    for result in report.results:
        while expected < result.row:  # an empty row of the sheet
            yield []
            expected += 1
        cells = typed[result.index] if typed is not None else sheet.rows[result.index]
        if len(cells) < width:
            cells = list(cells) + [""] * (width - len(cells))
        entry = entries.get(result.row)
        extra = delivery_cells(entry, zone) if delivery else []
        yield list(cells) + outcome_cells(result, entry, when) + extra
        expected += 1


def write_results(path: str | Path, sheet: Sheet, report: Report, entries: dict[int, Entry],
                  zone: ZoneInfo | None = None) -> Path:
    """Write atomically, in CSV (the input's delimiter) or .xlsx, every cell inert.

    The file has the sheet's own layout: the rows above the header, the header, and
    every row after it at the same row number, each with its outcome added on the right.
    Send times are shown in ``zone`` (the run's), with its abbreviation.
    """
    path = Path(path)
    width = sheet_width(sheet)
    delivery = has_delivery(entries)
    preamble = sheet.preamble_values if sheet.preamble_values is not None else sheet.preamble
    header = result_header(sheet, width, delivery)
    rows: Iterable[list] = result_rows(sheet, report, entries, width, zone, delivery)
    summary = None
    if path.suffix.lower() in (".xlsx", ".xlsm"):  # a CSV has no Summary sheet
        rows = list(rows)
        summary = campaign_table(header, rows, sheet.header_row + 1, zone, sheet.path.name, entries) \
            + report.summary_rows()
    tables.write_table(path, header, rows, delimiter=sheet.delimiter or ",", sheet=sheet.sheet_name or "Results",
                       preamble=preamble, mode=input_mode(sheet.path), status_column=width, summary=summary)
    return path


def campaign_table(header: Sequence[object], rows: Sequence[Sequence[object]], first_row: int,
                   zone: ZoneInfo | None, title: str, entries: dict[int, Entry]) -> list[tuple[str, object]]:
    """The campaign's figures for the results workbook's Summary sheet: the same as the HTML summary's
    (``batchsms summary``), from the rows as written, plus the delivery lines from the journal."""
    from .summary import figures, rows_from_table

    zone = zone or ZoneInfo("UTC")
    found = figures(rows_from_table([str(h) for h in header], rows, first_row=first_row, zone=zone), zone=zone,
                    title=title, generated_at=0.0)
    labels = set(DELIVERY_SUMMARY) | {"Summary made"}  # the journal's delivery lines below; no clock time
    return [pair for pair in found.as_table() if pair[0] not in labels] + delivery_summary(entries)


def delivery_summary(entries: dict[int, Entry]) -> list[tuple[str, object]]:
    """The Summary sheet's delivery lines (none before ``batchsms status`` has asked)."""
    if not has_delivery(entries):
        return []
    took = [e for e in entries.values() if e.state in DONE]
    delivered = sum(e.delivery == "Delivered" for e in took)
    failed = sum(e.delivery == "Failed" for e in took)
    return list(zip(DELIVERY_SUMMARY, (delivered, failed, len(took) - delivered - failed), strict=True))


# --------------------------------------------------------------------------- refreshing a written file


@dataclass
class Refreshed:
    """What :func:`refresh_results` changed: data rows whose outcome or delivery cells changed."""

    path: Path
    rows_changed: int
    columns_added: bool


#: The note :func:`outcome_cells` adds to the Error of a row sent (or maybe sent) and now invalid or skipped.
_NOW_NOTE = re.compile(r"(?:^|; )(?:sent by an earlier run|an earlier run may have sent it)(; the row is now .*)\Z",
                       re.DOTALL)
#: A results file's header is within the first rows (a title or blank rows above it, at most 20).
_HEADER_SEARCH = 40


def _named(cell: object, name: str) -> bool:
    return isinstance(cell, str) and cell in (name, f"batchsms {name}")


def _layout(records: Sequence[Sequence[object]]) -> tuple[int, int, int | None] | None:
    """(header record, Status column, Delivery column or None) of a results file, or None if it has none."""
    for index, fields in enumerate(records[:_HEADER_SEARCH]):
        for col in range(len(fields) - len(RESULT_COLUMNS) + 1):
            if all(_named(fields[col + j], name) for j, name in enumerate(RESULT_COLUMNS)):
                after = col + len(RESULT_COLUMNS)
                present = len(fields) >= after + len(DELIVERY_COLUMNS) and all(
                    _named(fields[after + j], name) for j, name in enumerate(DELIVERY_COLUMNS))
                return index, col, after if present else None
    return None


def _error_with_note(error: str, old: str, state: str) -> str:
    """``error``, keeping the "the row is now invalid …" note the old Error cell carried (worded for ``state``)."""
    found = _NOW_NOTE.search(old)
    if found is None:
        return error
    earlier = "sent by an earlier run" if state in DONE else "an earlier run may have sent it"
    return "; ".join(filter(None, [error, earlier + found.group(1)]))


def _new_outcome(cells: Sequence[object], col: int, entry: Entry, path: Path, row: int) -> dict[int, str]:
    """The outcome cells (column → text) that the journal now says otherwise, for one data row.

    Only rows the API took or may have taken are touched (a settle moves unknown to sent);
    a row the file shows as invalid or failed keeps what ``send`` wrote.
    """
    old_state, old_sid, old_error = (tables.cell_text(cells[col + i]) for i in (_STATUS, _SID, _ERROR))
    if entry.state not in DONE and entry.state not in MAYBE_SENT and entry.state not in _LOCAL \
            and old_state != Status.HELD:  # a held message `batchsms due` found too late fails
        return {}
    state = str(_UNKNOWN if entry.state == _STARTED else entry.state)
    sid = entry.message_sid or ""
    if old_sid and sid and old_sid != sid:
        raise JournalError(
            f"{path}: row {row} shows MessageSid {old_sid}, and the journal beside it records {sid}: this results "
            "file does not belong to that journal; give the results file the send wrote")
    error = _error_with_note(entry.error or "", old_error, state) if entry.state != Status.HELD else old_error
    if entry.state in (Status.FAILED, Status.CANCELLED):
        error = entry.error or ""
    if old_state != state or old_sid != sid:
        sender = entry.sender_id or tables.cell_text(cells[col + _SENDER])
        return {col + _STATUS: state, col + _SID: sid, col + _SENDER: sender, col + _ERROR: error}
    if entry.settled is not None and old_error != error:
        return {col + _ERROR: error}
    return {}


def _changes(cells: Sequence[object], col: int, delivery_col: int | None, entry: Entry | None, zone: ZoneInfo,
             path: Path, row: int) -> tuple[dict[int, str], list[str] | None]:
    """(cells to replace by column, delivery cells to insert after the outcome columns or None)."""
    changed = _new_outcome(cells, col, entry, path, row) if entry is not None else {}
    new_delivery = delivery_cells(entry, zone)
    if delivery_col is None:
        return changed, new_delivery
    for offset, value in enumerate(new_delivery):
        old = cells[delivery_col + offset] if delivery_col + offset < len(cells) else ""
        if tables.cell_text(old) != value:
            changed[delivery_col + offset] = value
    return changed, None


def _delivery_header(header: Sequence[object], col: int) -> list[str]:
    """The delivery column names, renamed ``batchsms …`` where the user's own header already has one."""
    taken = {h for i, h in enumerate(header) if not col <= i < col + len(RESULT_COLUMNS)}
    return [name if name not in taken else f"batchsms {name}" for name in DELIVERY_COLUMNS]


def refresh_results(path: str | Path, entries: dict[int, Entry], zone: ZoneInfo | None = None) -> Refreshed:
    """Rewrite the results file at ``path`` with what the journal now knows, atomically.

    The outcome cells of rows a settle changed (Status, MessageSid, SenderId, Error) and the
    Delivery, Delivered at and Delivery error cells (added after Attempts when the file
    has none yet) are written; every other cell is left as it was. Row N of the file is
    row N of the journal, as :func:`write_results` wrote it; a MessageSid that disagrees
    with the journal stops it, since the file would belong to another send.
    """
    path = Path(path)
    zone = zone or ZoneInfo("UTC")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _refresh_workbook(path, entries, zone)
    return _refresh_csv(path, entries, zone)


def _not_results(path: Path) -> SheetError:
    return SheetError(f"{path}: has no batchsms result columns (Status, MessageSid, SenderId, To, Text, Sends at, "
                      "Segments, Error, Attempts); give the results file `batchsms send` wrote")


# --- CSV: records spliced as text, so every cell not rewritten keeps its bytes

def _csv_field(delimiter: str) -> re.Pattern[str]:
    return re.compile(r'"(?:[^"]|"")*"|[^' + re.escape(delimiter) + r'\r\n]*')


def split_records(text: str, delimiter: str) -> list[tuple[list[str], str]]:
    """The records of CSV ``text`` as (raw fields, line ending), the fields exactly as written (quotes kept).

    ValueError when the text is not CSV as :mod:`csv` writes it (a quote that never closes,
    text right after a closing quote).
    """
    field = _csv_field(delimiter)
    records: list[tuple[list[str], str]] = []
    fields: list[str] = []
    pos, end = 0, len(text)
    while pos < end:
        match = field.match(text, pos)
        fields.append(match.group())
        pos = match.end()
        if pos >= end:
            records.append((fields, ""))
            break
        char = text[pos]
        if char == delimiter:
            pos += 1
            if pos == end:  # a last field that is empty
                records.append((fields + [""], ""))
            continue
        if char not in "\r\n":
            raise ValueError(f"unexpected {char!r} after a field at character {pos}")
        ending = "\r\n" if text.startswith("\r\n", pos) else char
        pos += len(ending)
        records.append((fields, ending))
        fields = []
    return records


def _csv_value(raw: str) -> str:
    return raw[1:-1].replace('""', '"') if raw.startswith('"') and len(raw) >= 2 else raw


def _csv_raw(value: str, delimiter: str, quoted: bool = False) -> str:
    """``value`` as one CSV field: made inert (:func:`cells.csv_safe`), quoted when it must be or was changed,
    or when its record is ``quoted`` whole (as :func:`tables.write_csv` writes a row holding an inert cell)."""
    safe = csv_safe(value)
    if quoted or safe is not value or any(c in safe for c in (delimiter, '"', "\r", "\n")):
        return '"' + safe.replace('"', '""') + '"'
    return safe


def _read_csv_results(path: Path) -> tuple[str, str, list[tuple[list[str], str]], tuple[int, int, int | None]]:
    data = path.read_bytes()
    bom = "\ufeff" if data.startswith(b"\xef\xbb\xbf") else ""
    try:
        text = data[len(bom.encode()):].decode("utf-8")
    except UnicodeDecodeError:
        raise _not_results(path) from None
    for delimiter in (",", ";", "\t", "|"):
        try:
            records = split_records(text, delimiter)
        except ValueError:
            continue
        layout = _layout([[_csv_value(f) for f in fields] for fields, _ in records[:_HEADER_SEARCH]])
        if layout is not None:
            return bom, delimiter, records, layout
    raise _not_results(path)


def _refresh_csv(path: Path, entries: dict[int, Entry], zone: ZoneInfo) -> Refreshed:
    bom, delimiter, records, (header_at, col, delivery_col) = _read_csv_results(path)
    changed_rows = 0
    out: list[str] = []
    for index, (fields, ending) in enumerate(records):
        if index == header_at and delivery_col is None:
            names = _delivery_header([_csv_value(f) for f in fields], col)
            fields = fields[:col + len(RESULT_COLUMNS)] + [_csv_raw(n, delimiter) for n in names] \
                + fields[col + len(RESULT_COLUMNS):]
        elif index > header_at and len(fields) > col:
            quoted = all(f.startswith('"') for f in fields)
            cells = [_csv_value(f) for f in fields]
            cells += [""] * (col + len(RESULT_COLUMNS) - len(cells))
            fields = fields + [""] * (len(cells) - len(fields))
            changes, insert = _changes(cells, col, delivery_col, entries.get(index + 1), zone, path, index + 1)
            for at, value in changes.items():
                while at >= len(fields):
                    fields.append("")
                fields[at] = _csv_raw(value, delimiter, quoted)
            if insert is not None:
                at = col + len(RESULT_COLUMNS)
                fields = fields[:at] + [_csv_raw(v, delimiter, quoted) for v in insert] + fields[at:]
            changed_rows += bool(changes) or (insert is not None and any(insert))
        out.append(delimiter.join(fields) + ending)
    _replace(path, (bom + "".join(out)).encode("utf-8"))
    return Refreshed(path, changed_rows, delivery_col is None)


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + rename), keeping the file's permissions."""
    mode = input_mode(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


# --- workbooks: read back typed, written again by the same writer

def _refresh_workbook(path: Path, entries: dict[int, Entry], zone: ZoneInfo) -> Refreshed:
    from .sheet import read_workbook

    book = read_workbook(path, None, hidden=False)
    layout = _layout(book.records)
    if layout is None:
        raise _not_results(path)
    header_at, col, delivery_col = layout
    values = [list(row) for row in book.values]
    header = values[header_at]
    after = col + len(RESULT_COLUMNS)
    if delivery_col is None:
        header[after:after] = _delivery_header(header, col)
    changed_rows = 0
    rows = []
    counts = [col + RESULT_COLUMNS.index(name) for name in ("Segments", "Attempts")]
    for index in range(header_at + 1, len(values)):
        cells = values[index]
        cells += [""] * (after - len(cells))
        for at in counts:  # written as whole numbers; calamine reads every number back as a float
            cells[at] = _whole(cells[at])
        changes, insert = _changes(cells, col, delivery_col, entries.get(index + 1), zone, path, index + 1)
        for at, value in changes.items():
            cells += [""] * (at + 1 - len(cells))
            cells[at] = value
        if insert is not None:
            cells[after:after] = insert
        changed_rows += bool(changes) or (insert is not None and any(insert))
        rows.append(cells)
    summary = _refreshed_summary(path, book.sheet_name, rows, col, entries, header, header_at + 2, zone)
    tables.write_table(path, header, rows, sheet=book.sheet_name, preamble=values[:header_at],
                       mode=input_mode(path), status_column=col, summary=summary)
    return Refreshed(path, changed_rows, delivery_col is None)


def _whole(value: object) -> object:
    """A float that holds a whole number as the int it was written as (counts); anything else as it is."""
    return int(value) if type(value) is float and value.is_integer() and abs(value) < 1e15 else value


def _refreshed_summary(path: Path, sheet_name: str, rows: list[list], col: int, entries: dict[int, Entry],
                       header: Sequence[object], first_row: int, zone: ZoneInfo) -> list[tuple[str, object]]:
    """The Summary sheet with the campaign's figures counted again from the rows; the check's lines kept."""
    import python_calamine

    workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    name = next((n for n in workbook.sheet_names if n != sheet_name and n.endswith(tables.SUMMARY_SHEET)), None)
    pairs: list[tuple[str, object]] = []
    if name is not None:
        for line in workbook.get_sheet_by_name(name).to_python():
            if line and isinstance(line[0], str) and line[0]:
                pairs.append((line[0], _whole(line[1]) if len(line) > 1 else ""))
    campaign = campaign_table(header, rows, first_row, zone, path.name.replace(".results", ""), entries)
    labels = {label for label, _ in campaign}
    computed = ("Rows ", "Recipients: ", "Line type: ", "Messages sent: ", "Segments sent", "Cost", "Problem: ",
                "Failure reason: ", "Delivered", "Delivery ", "Campaign", "Time zone")
    rest = [p for p in pairs if p[0] not in labels and not p[0].startswith(computed)]
    return campaign + rest
