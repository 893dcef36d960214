"""The results file: the user's own sheet, every row in order, plus each row's outcome.

It is built from the check report and the journal alone, so it can be written at
the end, on interruption, or rebuilt any time later from the journal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from . import fields as F
from . import tables
from .clock import format_when
from .codes import DONE, Severity, Status
from .journal import Entry
from .paths import input_mode
from .report import Report
from .sheet import WORKBOOK_SUFFIXES, Sheet

#: Read once: an Enum member read off its class costs ~70 ns on Python 3.11, and this runs per row.
_NOT_VALID = frozenset({Status.INVALID, Status.SKIPPED})
_FAILED, _PENDING, _UNKNOWN, _STARTED = Status.FAILED, Status.PENDING, Status.UNKNOWN, Status.STARTED
RESULT_COLUMNS = ("Status", "MessageSid", "SenderId", "To", "Text", "Sends at", "Segments", "Error", "Attempts")


def default_results_path_for(sheet_path: Path) -> Path:
    """``contacts.csv`` → ``contacts.results.csv``; workbooks → ``contacts.results.xlsx``."""
    suffix = ".xlsx" if sheet_path.suffix.lower() in WORKBOOK_SUFFIXES else ".csv"
    return sheet_path.with_name(f"{sheet_path.stem}.results{suffix}")


def sheet_width(sheet: Sheet) -> int:
    """How many columns the sheet really uses: cells beyond the header are kept too."""
    return max([len(sheet.raw_header or sheet.header), len(sheet.header)] + [len(r) for r in sheet.rows])


def result_header(sheet: Sheet, width: int | None = None) -> list[str]:
    """The header row as the file has it, plus the result columns (renamed if the sheet has one)."""
    width = sheet_width(sheet) if width is None else width
    header = list(sheet.raw_header or sheet.header)
    header += [""] * (width - len(header))
    taken = set(sheet.header)
    extra = [name if name not in taken else f"batchsms {name}" for name in RESULT_COLUMNS]
    return header + extra


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
    if report_row.status in _NOT_VALID:
        codes = ", ".join(dict.fromkeys(i.code for i in report_row.issues))
        earlier = "sent by an earlier run" if entry.state in DONE else "an earlier run may have sent it"
        error = "; ".join(filter(None, [error, f"{earlier}; the row is now {report_row.status} ({codes}) "
                                               "and is never sent again"]))
    return [state, entry.message_sid or "", entry.sender_id or "", to, text, sends,
            entry.segments if entry.segments is not None else segments, error, entry.attempts]


def result_rows(sheet: Sheet, report: Report, entries: dict[int, Entry], width: int | None = None,
                zone: ZoneInfo | None = None) -> Iterator[list]:
    """Every row below the header, in order; empty rows stay (empty), so row N here is row N there.

    A workbook's cells keep their types (numbers, dates); a CSV's are the text they were.
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
        yield list(cells) + outcome_cells(result, entries.get(result.row), when)
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
    preamble = sheet.preamble_values if sheet.preamble_values is not None else sheet.preamble
    tables.write_table(path, result_header(sheet, width), result_rows(sheet, report, entries, width, zone),
                       delimiter=sheet.delimiter or ",", sheet=sheet.sheet_name or "Results",
                       preamble=preamble, mode=input_mode(sheet.path), status_column=width,
                       summary=outcome_summary(report, entries))
    return path


def outcome_summary(report: Report, entries: dict[int, Entry]) -> list[tuple[str, object]]:
    """The results workbook's Summary sheet: rows by outcome, then the check's figures."""
    counts: dict[str, int] = {}
    when = lambda epoch: ""  # noqa: E731 - the status alone is counted here
    for r in report.results:
        status = str(outcome_cells(r, entries.get(r.row), when)[0])
        counts[status] = counts.get(status, 0) + 1
    order = [str(s) for s in (Status.SENT, Status.SCHEDULED, Status.FAILED, Status.UNKNOWN, Status.PENDING,
                              Status.INVALID, Status.SKIPPED)]
    rows: list[tuple[str, object]] = [(f"Rows {name}", counts[name]) for name in order if name in counts]
    return rows + report.summary_rows()
