"""The preview: the user's own sheet, row for row, with what each row will send, to whom, when and why not.

A report lists problems one per line, to be cross-referenced by row number; a person
deciding whether to send needs to see every message as it will go out, in the sheet they
work in. The preview is that sheet (title rows, empty rows and cells beyond the header
kept, so row N is row N) plus Will text, Message, Characters, Segments, Encoding, Sends
at, Cost (when prices are set), Status and Problem. In a workbook the cell that caused a
problem is filled red (error) or amber (warning) with the problem as its comment.

:class:`Preview` is built in one pass over the report; it also holds the figures the
terminal prints before the send question, ``--json`` carries, and the Summary sheet shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from . import codes as C
from . import fields as F
from . import tables
from .clock import format_local, format_range
from .codes import Severity, Status
from .numbers import describe
from .perf import gc_paused
from .pricing import Prices, format_money
from .report import Report, RowResult
from .segments import ucs2_forcers
from .sheet import ColumnRows, Sheet, StreamedRows

PREVIEW_COLUMNS = ("Will text", "Message", "Characters", "Segments", "Encoding", "Sends at", "Cost", "Status",
                   "Problem")
#: Why a row is skipped, as the Status column says it.
SKIP_REASONS = {C.SUPPRESSED.code: "opted out", C.DUPLICATE_SKIPPED.code: "duplicate", C.HIDDEN_ROW.code: "hidden"}
#: A problem on more than this share of the rows is printed once, first, with its count.
DOMINANT_SHARE = 0.5


def default_preview_path(sheet_path: Path) -> Path:
    """``contacts.xlsx`` → ``contacts.preview.xlsx``; a CSV sheet gets a CSV preview."""
    suffix = ".csv" if sheet_path.suffix.lower() in (".csv", ".txt", ".tsv") else ".xlsx"
    return sheet_path.with_name(f"{sheet_path.stem}.preview{suffix}")


@dataclass
class Sample:
    """A message as the recipient will read it, for the terminal."""

    why: str  # "first ready row", "longest", "with a warning"
    row: int
    number: str  # "AU mobile · +61 412 345 678"
    text: str
    segments: int


@dataclass
class Preview:
    """What a check found, as a person deciding to send wants to see it."""

    report: Report
    zone: ZoneInfo
    prices: Prices | None = None
    recipients: Counter = field(default_factory=Counter)  # (region, kind) -> rows to send
    cost: Decimal | None = None  # None: no prices set
    unpriced: int = 0  # rows to send whose country has no price
    first_send: float | None = None  # earliest Schedule among the rows to send (epoch)
    last_send: float | None = None
    sends_now: int = 0  # rows to send without a Schedule
    samples: list[Sample] = field(default_factory=list)
    dominant: tuple[str, str, int] | None = None  # (severity, code, rows) of a problem on most rows
    dialled: list = field(default_factory=list)  # per result: the Dialled description, or None
    _by_row: dict | None = field(default=None, repr=False)
    # A check by columns (batchsms.columnar_preview): per valid row, in order, the index of its number's
    # (region, kind) in label_kinds (the Will text itself is made as the file is written); ``dialled`` stays empty.
    label_groups: object = field(default=None, repr=False)
    label_kinds: list = field(default_factory=list, repr=False)
    by_columns: bool = False  # built from a ColumnarReport's columns (dialled stays empty)

    @classmethod
    def build(cls, report: Report, zone: ZoneInfo, prices: Prices | None = None) -> Preview:
        """One pass over the report's rows (or over its columns, for a check by columns)."""
        preview = cls(report, zone, prices)
        if getattr(report, "by_columns", False) and report.built is None:  # a ColumnarReport, as it came
            from . import columnar_preview

            with gc_paused():
                columnar_preview.build(preview)
            return preview
        cost = Decimal(0) if prices is not None else None
        first_ready = longest = warned = None
        longest_key = (-1, -1)
        per_code: Counter = Counter()
        dialled = preview.dialled
        valid = Status.VALID
        for r in report.results:
            if r.issues:
                per_code.update({(i.severity, i.code) for i in r.issues})
            if r.status != valid:
                dialled.append(describe(r.to) if r.to else None)
                continue
            number = describe(r.to)
            dialled.append(number)
            preview.recipients[(number.region, number.kind)] += 1
            if prices is not None:
                price = prices.cost(number.region, r.segments.parts)
                if price is None:
                    preview.unpriced += 1
                else:
                    cost += price
            when = r.body.get(F.SCHEDULE)
            if when is None:
                preview.sends_now += 1
            else:
                preview.first_send = when if preview.first_send is None else min(preview.first_send, when)
                preview.last_send = when if preview.last_send is None else max(preview.last_send, when)
            if first_ready is None and not r.issues:
                first_ready = r
            key = (r.segments.parts, len(r.text or ""))
            if key > longest_key:
                longest, longest_key = r, key
            if warned is None and r.issues:
                warned = r
        preview.cost = cost
        for why, r in (("first ready row", first_ready), ("longest", longest), ("with a warning", warned)):
            if r is not None and all(s.row != r.row for s in preview.samples):
                number = dialled[r.index] if r.index < len(dialled) else describe(r.to)
                preview.samples.append(Sample(why, r.row, number.label, r.text or "", r.segments.parts))
        if per_code:
            (severity, code), rows = per_code.most_common(1)[0]
            if rows > DOMINANT_SHARE * len(report.results):
                preview.dominant = (str(severity), code, rows)
        return preview

    def region_of(self, row: int) -> str | None:
        """The country of the row's recipient (Excel row number), as the preview describes it."""
        if self.by_columns:  # built by columns: described now
            index = self.report.sheet.row_numbers.index(row) if row in self.report.sheet.row_numbers else None
            to = self.report.to_of(index) if index is not None else None  # type: ignore[attr-defined]
            return describe(to).region if to else None
        if self._by_row is None:
            self._by_row = {r.row: d for r, d in zip(self.report.results, self.dialled, strict=True)}
        dialled = self._by_row.get(row)
        return dialled.region if dialled is not None else None

    # ------------------------------------------------------------------ figures
    def when_text(self) -> str:
        """When the messages go out, in the run's zone: ``now``, a time, or a range."""
        if self.first_send is None:
            return "now"
        scheduled = format_range(self.first_send, self.last_send, self.zone)
        return f"now and {scheduled}" if self.sends_now else scheduled

    def cost_text(self) -> str:
        if self.prices is None or self.cost is None:
            return "not known: set --price, or [prices] in the config file"
        text = f"{format_money(self.cost, self.prices.currency)}"
        if self.unpriced:
            text += f" (and {self.unpriced:,} messages to countries without a price)"
        return text

    def figures(self) -> dict:
        """The summary a person reads before sending, as plain data (``--json``, the Summary sheet)."""
        return {
            "recipients": [{"country": region, "line": kind, "rows": n}
                           for (region, kind), n in sorted(self.recipients.items(), key=lambda kv: -kv[1])],
            "sends_at": self.when_text(),
            "time_zone": str(self.zone),
            "cost": None if self.cost is None else str(self.cost.quantize(Decimal("0.01"))),
            "currency": self.prices.currency if self.prices is not None else None,
            "samples": [{"why": s.why, "row": s.row, "to": s.number, "text": s.text, "segments": s.segments}
                        for s in self.samples],
            "dominant_problem": None if self.dominant is None else {
                "severity": self.dominant[0], "code": self.dominant[1], "rows": self.dominant[2]},
        }

    def summary_rows(self) -> list[tuple[str, object]]:
        """The Summary sheet: the terminal's figures, one per line, numbers as numbers."""
        s = self.report.summary()
        rows: list[tuple[str, object]] = [
            ("Rows read", s["rows_read"]), ("Ready to send", s["rows_valid"]),
            ("Rows with errors", s["rows_with_errors"]), ("Rows with warnings", s["rows_with_warnings"]),
            ("Rows skipped", s["rows_skipped"]), ("Messages in GSM-7", s["messages_gsm7"]),
            ("Messages in UCS-2", s["messages_ucs2"]), ("Segments", s["segments"]),
            ("Sends at", self.when_text()), ("Time zone", str(self.zone)),
            ("Estimated cost", float(self.cost.quantize(Decimal("0.01"))) if self.cost is not None
             else self.cost_text()),
        ]
        if self.prices is not None:
            rows.append(("Currency", self.prices.currency))
        rows += [(f"Recipients: {region} {kind}", n) for (region, kind), n in self.recipients.most_common()]
        rows += [(f"Problem: {p['code']} ({p['severity']})", p["count"]) for p in s["top_problems"]]
        return rows

    # ------------------------------------------------------------------ the sheet
    def write(self, path: str | Path) -> Path:
        """The preview file (.xlsx or .csv by the path's suffix), written atomically beside the input."""
        sheet = self.report.sheet
        path = Path(path)
        columns = [c for c in PREVIEW_COLUMNS if c != "Cost" or self.prices is not None]
        width = _width(sheet)
        header = list(sheet.raw_header or sheet.header)
        header += [""] * (width - len(header))
        taken = set(sheet.header)
        header += [c if c not in taken else f"batchsms {c}" for c in columns]
        status_column = len(header) - 2
        if (self.by_columns and self.report.built is None and path.suffix.lower() not in (".xlsx", ".xlsm")
                and sheet.values is None):
            from . import columnar_preview

            with gc_paused():
                columnar_preview.write_csv(self, path, header, width, columns)
            return path
        tables.write_table(path, header, self._rows(sheet, width, columns), delimiter=sheet.delimiter or ",",
                           sheet=sheet.sheet_name or "Preview", preamble=_preamble(sheet),
                           status_column=status_column, summary=self.summary_rows())
        return path

    def _rows(self, sheet: Sheet, width: int, columns: Sequence[str]) -> Iterator[list]:
        typed = sheet.values
        header_index = {h: i for i, h in reversed(list(enumerate(sheet.header)))}  # first column wins
        with_cost = "Cost" in columns
        expected = sheet.header_row + 1
        for r in self.report.results:
            while expected < r.row:  # an empty row of the sheet stays empty
                yield []
                expected += 1
            expected += 1
            cells: list = list(typed[r.index] if typed is not None else sheet.rows[r.index])
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            extra = self._extra(r)
            problem = ""
            if r.issues:
                problem = "; ".join(f"{i.column + ': ' if i.column else ''}{i.message}" for i in r.issues)
                for issue in r.issues:
                    at = header_index.get(issue.column)
                    level = "error" if issue.severity == Severity.ERROR else "warning"
                    if at is not None and at < len(cells):
                        cells[at] = _mark(cells[at], level, issue.message)
                    elif issue.column.startswith("Text"):
                        extra[1] = _mark(extra[1], level, issue.message)
            if not with_cost:
                del extra[6]
            yield cells + extra + [problem]

    def _extra(self, r: RowResult) -> list:
        """Will text, Message, Characters, Segments, Encoding, Sends at, Cost, Status (Problem is added after)."""
        text = r.text or ""
        counted = r.segments
        encoding = ""
        if counted is not None:
            encoding = counted.encoding
            if encoding == "UCS-2":
                forcers = ucs2_forcers(text)
                encoding += f" (because of {' '.join(forcers[:8])}{' …' if len(forcers) > 8 else ''})"
        if r.status == Status.VALID:
            number = self.dialled[r.index] if r.index < len(self.dialled) else describe(r.to)
            when = r.body.get(F.SCHEDULE)
            sends = "now" if when is None else format_local(when, self.zone)
            cost = ""
            if self.prices is not None:
                price = self.prices.cost(number.region, counted.parts)
                cost = float(price) if price is not None else "no price"
            status = "warning" if r.issues else "ready"
            return [number.label, text, len(text), counted.parts, encoding, sends, cost, status]
        if r.status == Status.SKIPPED:
            reason = next((SKIP_REASONS[i.code] for i in r.issues if i.code in SKIP_REASONS), "")
            status = f"skipped ({reason})" if reason else "skipped"
        else:
            status = "error"
        return ["", text, len(text) if text else "", counted.parts if counted else "", encoding, "", "", status]


def _mark(cell: object, level: str, note: str) -> tables.Marked:
    """``cell`` marked with a problem; a cell two problems point at (a placeholder number that is also a
    duplicate) keeps both notes and the graver level, since a Marked value cannot hold another."""
    if isinstance(cell, tables.Marked):
        graver = "error" if "error" in (cell.level, level) else "warning"
        return tables.Marked(cell.value, graver, f"{cell.note}\n{note}")
    return tables.Marked(cell, level, note)  # type: ignore[arg-type]


def _width(sheet: Sheet) -> int:
    rows = sheet.rows
    if isinstance(rows, ColumnRows):  # read by columns: their widths are known without reading every row
        widest = (rows.width if rows.lengths is None else int(rows.lengths.max())) if len(rows) else 0
        return max(len(sheet.raw_header or sheet.header), len(sheet.header), widest)
    if isinstance(rows, StreamedRows):  # too big to hold: the scan noted the widest line
        return max(len(sheet.raw_header or sheet.header), len(sheet.header), rows.widest if len(rows) else 0)
    return max([len(sheet.raw_header or sheet.header), len(sheet.header)] + [len(r) for r in rows])


def _preamble(sheet: Sheet) -> list:
    return sheet.preamble_values if sheet.preamble_values is not None else sheet.preamble

