"""The check report: one record per problem, each row's verdict, and the summary.

Problems in the data are data: an Issue names the row (as Excel numbers it), the
column, the value, a severity, a stable code and a message that says how to fix it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from . import tables
from .cells import csv_safe
from .codes import Code, Severity, Status
from .errors import ConfigError
from .segments import Segments

if TYPE_CHECKING:
    from .sheet import Sheet

ISSUE_COLUMNS = ("Row", "Column", "Value", "Severity", "Code", "Message")
REPORT_SUFFIXES = (".csv", ".xlsx", ".json")


@dataclass(slots=True)
class Issue:
    row: int
    column: str
    value: str
    severity: str
    code: str
    message: str

    @classmethod
    def of(cls, row: int, column: str, value: str, code: Code, message: str) -> Issue:
        """An issue with a catalogue code (its severity comes from the catalogue)."""
        return cls(row, column, value, code.severity, code.code, message)

    def cells(self) -> list[str]:
        return [self.row, clip(self.column), clip(self.value), self.severity, self.code, self.message]

    def csv_cells(self) -> list[str]:
        """The cells for a CSV file: row, severity and code are inert by construction; the rest made so."""
        return [str(self.row), _safe_label(clip(self.column)), csv_safe(clip(self.value)), self.severity, self.code,
                _safe_label(self.message)]

    def record(self) -> dict:
        """The issue for the JSON report, its cell clipped as in the other formats."""
        return {"row": self.row, "column": clip(self.column), "value": clip(self.value),
                "severity": self.severity, "code": self.code, "message": self.message}


#: Column names and messages repeat across thousands of issues: made inert once each (csv_safe scans
#: every separator-delimited part, ~2 us for a message with commas and dashes).
_safe_label = lru_cache(maxsize=8192)(csv_safe)

#: The most of one cell a report copies: enough to recognise it, never a megabyte per line.
MAX_CELL_IN_REPORT = 300


def clip(value: str, limit: int = MAX_CELL_IN_REPORT) -> str:
    """``value``, or its first ``limit`` characters and how many more there were."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}… ({len(value) - limit:,} more characters)"


def report_path(path: str | Path) -> Path:
    """``path`` as a report's path, refused (ConfigError) unless it ends in .csv, .xlsx or .json: asked before
    the check runs too, so a run never fails on it once the preview is written."""
    path = Path(path)
    if path.suffix.lower() not in REPORT_SUFFIXES:
        raise ConfigError(f"--report {path}: the report must end in .csv, .xlsx or .json")
    return path


@dataclass(slots=True)
class RowResult:
    """The verdict on one data row: what would be sent, or why not."""

    index: int  # position in Sheet.rows
    row: int  # the row number Excel shows
    status: Status  # VALID, INVALID or SKIPPED
    body: dict | None  # the API request body, for valid rows
    segments: Segments | None
    issues: list[Issue] = field(default_factory=list)
    to: str | None = None  # the recipient in E.164, when it could be read
    text: str | None = None  # the message text, when it could be rendered (also for rows not sent)
    identity: dict | None = None  # the message as written, when its send time was moved (quiet hours):
    #                               the journal knows the row by this, so another hour's run finds it sent

    @property
    def has_warning(self) -> bool:
        warning = Severity.WARNING
        return any(i.severity == warning for i in self.issues)


@dataclass
class Report:
    """Every row's verdict, in sheet order."""

    results: list[RowResult]
    sheet: Sheet | None = None  # the sheet these verdicts are about (None when built by hand)

    def issues(self) -> Iterator[Issue]:
        for result in self.results:
            yield from result.issues

    @property
    def ok(self) -> bool:
        """True when no row has an error (drives the exit code)."""
        invalid = Status.INVALID
        return all(r.status != invalid for r in self.results)

    def summary(self, top: int = 5) -> dict:
        """The figures a person checks before a campaign."""
        counts: Counter[str] = Counter()
        problems: Counter[tuple[str, str]] = Counter()
        gsm7 = ucs2 = segments = leased = scheduled = warned = 0
        valid = Status.VALID  # a local: a class attribute of an Enum is slow in a million-row loop
        for r in self.results:  # one pass: this runs over a million rows
            status = r.status
            if status == valid:
                counted = r.segments
                if counted.encoding == "GSM-7":
                    gsm7 += 1
                else:
                    ucs2 += 1
                segments += counted.parts
                body = r.body
                if "From" not in body:
                    leased += 1
                if "Schedule" in body:
                    scheduled += 1
                if r.issues and r.has_warning:
                    warned += 1
            else:
                counts[status] += 1
            if r.issues:
                problems.update((i.severity, i.code) for i in r.issues)
        counts[Status.VALID] = gsm7 + ucs2
        encodings = {"GSM-7": gsm7, "UCS-2": ucs2}
        return {
            "rows_read": len(self.results),
            "rows_valid": counts[Status.VALID],
            "rows_with_errors": counts[Status.INVALID],
            "rows_with_warnings": warned,
            "rows_skipped": counts[Status.SKIPPED],
            "messages_gsm7": encodings["GSM-7"],
            "messages_ucs2": encodings["UCS-2"],
            "segments": segments,
            "leased_rows": leased,
            "scheduled_rows": scheduled,
            "top_problems": [
                {"severity": sev, "code": code, "count": n} for (sev, code), n in problems.most_common(top)
            ],
        }

    def summary_rows(self) -> list[tuple[str, object]]:
        """The summary as (label, number) lines, for a workbook's Summary sheet."""
        s = self.summary()
        rows: list[tuple[str, object]] = [
            ("Rows read", s["rows_read"]), ("Rows valid", s["rows_valid"]), ("Rows with errors", s["rows_with_errors"]),
            ("Rows with warnings", s["rows_with_warnings"]), ("Rows skipped", s["rows_skipped"]),
            ("Messages in GSM-7", s["messages_gsm7"]), ("Messages in UCS-2", s["messages_ucs2"]),
            ("Segments", s["segments"]), ("Leased rows (blank From)", s["leased_rows"]),
            ("Scheduled rows", s["scheduled_rows"]),
        ]
        return rows + [(f"Problem: {p['code']} ({p['severity']})", p["count"]) for p in s["top_problems"]]

    def write(self, path: str | Path) -> Path:
        """Write the issues as .csv, .xlsx or .json, chosen by the path's suffix."""
        path = report_path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            data = {"summary": self.summary(), "issues": [i.record() for i in self.issues()]}
            path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        else:
            tables.write_table(path, ISSUE_COLUMNS, (i.cells() for i in self.issues()), sheet="Report",
                               csv_rows=(i.csv_cells() for i in self.issues()), summary=self.summary_rows())
        return path
