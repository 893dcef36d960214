"""The check by columns: the same verdicts as the row-by-row check, worked out per column and per distinct value.

Why: a million-row check spent most of its time building and reading one Python object per
row (benchmarks/NOTES.md). Here a row is a few entries in arrays: its status, its recipient
as a compact key, the id of its message among the sheet's distinct messages. Work is done
once per *distinct* value (a sheet of a million rows has a few hundred distinct messages)
or over whole columns in numpy (the phone numbers, :mod:`batchsms.phonecols`), and Issue
objects are made when they are read, from those shared verdicts. A CSV file too big to hold
(``sheet.Streamed``) is checked 500,000 rows at a time into the same arrays.

What it covers, and what it leaves to the row-by-row path (:func:`supported`): a sheet whose
messages are a recipient (To), an ExternalId and a text (a template or a Text column), with
or without a Country column, an opt-out list, ``--dedupe`` and the lease limit. Any other
per-row field (From, Schedule, webhooks…), ``--where``, ``--consent-column``,
``--skip-empty``, ``--marketing`` and quiet hours make the whole check run row by row. Within
a covered sheet, the rows no column rule can settle go through the row-by-row code itself:
rows whose Country cell is filled (``RowChecker.check``), rows the file garbles or hides
(``apply_sheet_rules``), and every recipient cell that is not a plainly valid home-country
mobile (``rules.check_to``, once per distinct cell). The rules across rows (suppression,
duplicates, leases) run over the compact keys with the same outcome as
``check.apply_batch_rules``, whose order they follow row for row.

``tests/test_columnar_equivalence.py`` compares this path with the row-by-row one (every
row's status, body, issues, text and segments, and the preview file byte for byte) over a
generated sheet with every problem a CSV file can carry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.ma  # noqa: F401 - np.unique imports it on first use: here, once, before the check forks

from . import codes as C
from . import fields as F
from . import rules
from .codes import Severity, Status
from .perf import gc_paused
from .phonecols import Settler
from .report import Issue, Report, RowResult
from .segments import Segments
from .sheet import ColumnRows, IntRows, LazyColumns, Sheet, StreamedRows
from .template import MissingVariable, RenderError

if TYPE_CHECKING:
    from .check import CheckOptions, RowChecker
    from .parallel import Helpers

#: Rows from which the distinct cells of a column are found by pandas.factorize (the reader of so big a
#: sheet imported pandas already) rather than a dict.
FACTORIZE_ROWS = 300_000
#: Row states in the arrays (int8), and back.
VALID, INVALID, SKIPPED = 0, 1, 2
STATUSES = (Status.VALID, Status.INVALID, Status.SKIPPED)
#: What the rules across rows found for a row (ColumnarReport.across).
ACROSS_OPTED_OUT, ACROSS_DEDUPLICATED, ACROSS_SAME_TEXT, ACROSS_OTHER_TEXT = 1, 2, 3, 4
#: The fields a covered sheet may give its messages besides Text.
COVERED_FIELDS = frozenset({F.TO, F.EXTERNAL_ID})
NO_KEY = -1  # a row without a recipient


def supported(checker: RowChecker, options: CheckOptions, selection_active: bool, quiet: object) -> bool:
    """Whether the check by columns covers this run (see the module docstring)."""
    if selection_active or options.marketing or quiet is not None or not len(checker.sheet.rows):
        return False
    for source in checker.sources:
        if source.field not in COVERED_FIELDS:
            return False
        if source.field == F.TO and (source.column is None or source.default):
            return False
    return True


@dataclass
class _Messages:
    """The distinct messages of a sheet: per id the text and what the rules say of it (rows hold the ids)."""

    texts: list[str | None] = field(default_factory=list)
    segments: list[Segments | None] = field(default_factory=list)
    problems: list[list[tuple[str, str, Severity, str, str]]] = field(default_factory=list)  # (column, value, ...)
    errors: list[bool] = field(default_factory=list)
    ids: dict[tuple, int] = field(default_factory=dict)  # the cells a message is made of -> its id


class ColumnarReport(Report):
    """A Report kept as columns; :attr:`results` builds the RowResult objects on first use.

    A row is a few array entries: its status, its recipient as a compact key (the E.164
    digits), the id of its message among the sheet's distinct messages, and the id of its
    recipient cell's verdict among the distinct cells the column rules could not settle.
    Issue objects are made when they are read (:meth:`issues_of`): from those shared
    verdicts, plus what the rules across rows added. The summary, the report file and the
    preview read the columns; code that walks ``results`` (sending, ``check_frame``) gets
    exactly the objects the row-by-row check builds.
    """

    by_columns = True  # what Preview looks for (it does not import this module, nor numpy, for small sheets)

    def __init__(self, sheet: Sheet, checker: RowChecker) -> None:  # noqa: D107 - see the class
        self.sheet = sheet
        self.checker = checker
        count = len(sheet.rows)
        self.count = count
        self.status = np.zeros(count, dtype=np.int8)
        self.keys = np.full(count, NO_KEY, dtype=np.int64)  # the recipient's E.164 digits (-1: none)
        self.settled = np.zeros(count, dtype=bool)  # the recipient is a plainly valid home mobile (phonecols)
        self.message = np.full(count, -1, dtype=np.int32)  # the row's message id (-1: none here)
        self.verdict = np.full(count, -1, dtype=np.int32)  # the id of the recipient cell's verdict (-1: settled)
        self.messages = _Messages()
        self.verdicts: list[tuple[str, str | None, tuple, bool]] = []  # (cell, E.164, problems, error)
        self.verdict_ids: dict[str, int] = {}  # the cell -> its verdict's id
        # What the rules across rows found, per row (their issues are made on read, see issues_of):
        self.across = np.zeros(count, dtype=np.int8)  # ACROSS_*: opted out, deduplicated, a duplicate
        self.earlier = np.full(count, -1, dtype=np.int64)  # the row that already texts the recipient
        self.leases = np.zeros(count, dtype=np.int32)  # the message's count past the lease limit (0: within)
        self.special: dict[int, RowResult] = {}  # rows checked row by row: their own results
        self._externals: list[str] | None = None  # the ExternalId of each row ("" none), made when first read
        self._externals_of: Callable[[], list[str]] | None = None  # how to make them (None: a sheet read in chunks)
        self.heads: set[str] = set()  # the first four characters of the settled recipients (+614)
        self.long_keys: dict[str, int] = {}  # E.164 texts too long for an int64 key: key -2 - n
        self.to_label = "To"  # the recipient column's header, for the issues of its cells
        self.to_label_batch = "To"  # ... and as the rules across rows name it
        self.text_label = checker.text_label
        self._results: list[RowResult] | None = None
        self._signatures: list | None = None

    # ------------------------------------------------------------------ per row
    def to_of(self, index: int) -> str | None:
        """The row's recipient in E.164, or None (what RowResult.to holds)."""
        special = self.special.get(index)
        if special is not None:
            return special.to
        key = int(self.keys[index])
        if key >= 0:
            return f"+{key}"
        if key == NO_KEY:
            return None
        return next(e164 for e164, n in self.long_keys.items() if key == -2 - n)  # pragma: no cover

    def text(self, index: int) -> str | None:
        special = self.special.get(index)
        if special is not None:
            return special.text
        message = int(self.message[index])
        return self.messages.texts[message] if message >= 0 else None

    def segments_of(self, index: int) -> Segments | None:
        special = self.special.get(index)
        if special is not None:
            return special.segments
        message = int(self.message[index])
        return self.messages.segments[message] if message >= 0 else None

    def own_issues(self, index: int) -> list[Issue]:
        """The row's issues from its own cells (recipient, then message), as the row check makes them."""
        row = self.sheet.row_numbers[index]
        issues: list[Issue] = []
        verdict = int(self.verdict[index])
        if verdict >= 0:
            raw, _, problems, _ = self.verdicts[verdict]
            issues = [Issue(row, self.to_label, raw, *p) for p in problems]
        message = int(self.message[index])
        if message >= 0:
            issues += [Issue(row, *p) for p in self.messages.problems[message]]
        return issues

    def issues_of(self, index: int) -> list[Issue]:
        """The row's issues, in order (a new list, but for a row checked row by row: its own)."""
        special = self.special.get(index)
        if special is not None:
            return special.issues
        across = int(self.across[index])
        if across in (ACROSS_OPTED_OUT, ACROSS_DEDUPLICATED):
            return [self._across_issue(index, across)]
        issues = list(self.own_issues(index))
        if across:
            issues.append(self._across_issue(index, across))
        if self.leases[index]:
            issues.append(self._lease_issue(index))
        return issues

    def _across_issue(self, index: int, across: int) -> Issue:
        """The issue check.apply_batch_rules gives: opted out, deduplicated, or a duplicate (same text or not)."""
        row, to, label = self.sheet.row_numbers[index], self.to_of(index), self.to_label_batch
        if across == ACROSS_OPTED_OUT:
            return Issue.of(row, label, to, C.SUPPRESSED, "skipped: the number is on the opt-out list (--suppress)")
        earlier = self.sheet.row_numbers[int(self.earlier[index])]
        if across == ACROSS_DEDUPLICATED:
            return Issue.of(row, label, to, C.DUPLICATE_SKIPPED,
                            f"skipped: row {earlier} already texts {to} (--dedupe)")
        if across == ACROSS_SAME_TEXT:
            return Issue.of(row, label, to, C.DUPLICATE_MESSAGE,
                            f"row {earlier} sends {to} the very same text: they would get it "
                            "twice; remove one or use --dedupe")
        return Issue.of(row, label, to, C.DUPLICATE_RECIPIENT,
                        f"row {earlier} also texts {to}; use --dedupe to send only the first")

    def _lease_issue(self, index: int) -> Issue:
        from .check import MAX_LEASES_PER_RECIPIENT

        return Issue.of(
            self.sheet.row_numbers[index], "From", "", C.LEASE_LIMIT,
            f"message {int(self.leases[index])} to {self.to_of(index)} from a leased (blank) sender; the API allows "
            f"{MAX_LEASES_PER_RECIPIENT} at once: set a From for these rows, or send them later",
        )

    def signatures(self) -> list[tuple[tuple[tuple[str, str], ...], int, int]]:
        """(the (severity, code) pairs of a row's issues, in order; rows that have them; of those, valid rows),
        for every distinct list of pairs in the order it first appears: what the summary and the preview count,
        without making every Issue."""
        if self._signatures is not None:
            return self._signatures
        rows = np.flatnonzero(self.flagged())
        special = np.zeros(self.count, dtype=bool)
        special[list(self.special)] = True
        # a row's pairs follow from the pairs of its recipient's verdict and of its message: rows are keyed by
        # those (a few distinct lists), not by the verdicts (one per distinct bad number: 48,000 at 1M rows)
        kinds: dict[tuple, int] = {(): 0}
        verdict_kind = np.array([kinds.setdefault(tuple((p[0], p[1]) for p in v[2]), len(kinds))
                                 for v in self.verdicts] + [0], dtype=np.int64)  # -1 (no verdict) reads the 0
        message_kind = np.array([kinds.setdefault(tuple((p[2], p[3]) for p in problems), len(kinds))
                                 for problems in self.messages.problems] + [0], dtype=np.int64)
        size = len(kinds)
        key = (verdict_kind[self.verdict[rows]] * size + message_kind[self.message[rows]]) * 16 \
            + self.across[rows].astype(np.int64) * 2 + (self.leases[rows] > 0)
        key = np.where(special[rows], -1 - rows, key)  # a row checked row by row is its own
        distinct, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
        valid = np.bincount(inverse.reshape(-1), weights=self.status[rows] == VALID, minlength=len(distinct))
        found = []
        for k in np.argsort(first, kind="stable").tolist():
            index = int(rows[first[k]])
            pairs = tuple((i.severity, i.code) for i in self.issues_of(index))
            if pairs:
                found.append((pairs, int(counts[k]), int(valid[k])))
        self._signatures = found
        return found

    def flagged(self) -> np.ndarray:
        """Whether each row has issues (worked out from the shared verdicts, then the rows that differ)."""
        has = (self.across != 0) | (self.leases != 0)
        if self.verdicts:
            with_problems = np.array([bool(v[2]) for v in self.verdicts] + [False])
            has |= with_problems[self.verdict]  # -1 reads the False at the end
        if self.messages.problems:
            with_problems = np.array([bool(p) for p in self.messages.problems] + [False])
            has |= with_problems[self.message]
        for index, r in self.special.items():
            has[index] = bool(r.issues)
        return has

    def body(self, index: int, external: bool = True) -> dict | None:
        """The row's request body (without its ExternalId when ``external`` is False: the preview needs none)."""
        if self.status[index] != VALID:
            return None
        special = self.special.get(index)
        if special is not None:
            return special.body
        body: dict[str, object] = {F.TO: self.to_of(index)}
        given = self._external(index) if external else ""
        if given:
            body[F.EXTERNAL_ID] = given
        body[F.TEXT] = self.text(index)
        return body

    @property
    def external(self) -> list[str] | None:
        """The ExternalId of each row ("" none), or None for a sheet read in chunks. Made when first read: a
        check does not read them (its ExternalId column is then never parsed, see sheet.LazyColumns), a send
        does."""
        if self._externals is None and self._externals_of is not None:
            self._externals = self._externals_of()
        return self._externals

    def _external(self, index: int) -> str:
        """The row's ExternalId ("" none); a sheet read in chunks reads its cells for it (the whole sheet, once)."""
        if self.external is not None:
            return self.external[index]
        source = next((s for s in self.checker.sources if s.field == F.EXTERNAL_ID), None)
        if source is None:
            return ""
        value = self.sheet.rows[index][source.column].strip() if source.column is not None else ""
        return value or source.default

    def result(self, index: int, external: bool = True) -> RowResult:
        """Row ``index`` as the RowResult the row-by-row check gives (see :meth:`body` for ``external``)."""
        special = self.special.get(index)
        issues = special.issues if special is not None else self.issues_of(index)
        return RowResult(index, self.sheet.row_numbers[index], STATUSES[self.status[index]], self.body(index, external),
                         self.segments_of(index), issues, self.to_of(index), self.text(index))

    @classmethod
    def sharing(cls, report: ColumnarReport, part: Sheet) -> ColumnarReport:
        """A report for a chunk of ``report``'s sheet, adding to its tables of distinct values."""
        into = cls(part, report.checker)
        into.messages, into.verdicts, into.verdict_ids = report.messages, report.verdicts, report.verdict_ids
        into.to_label = report.to_label
        return into

    @property
    def built(self) -> list[RowResult] | None:
        """The RowResults, once :attr:`results` has built them (a caller may have changed them since)."""
        return self._results

    @property  # type: ignore[override]
    def results(self) -> list[RowResult]:
        if self._results is None:
            self._results = self._build()
        return self._results

    def _build(self) -> list[RowResult]:
        """Every row's RowResult, as :meth:`result` makes it, reading the arrays once as Python values."""
        flagged = self.flagged().tolist()
        status, keys, messages = self.status.tolist(), self.keys.tolist(), self.message.tolist()
        texts, segments = self.messages.texts, self.messages.segments
        numbers = self.sheet.row_numbers
        external = self.external
        with_external = external is None and any(s.field == F.EXTERNAL_ID for s in self.checker.sources)
        built = []
        for index in range(self.count):
            if index in self.special or keys[index] < NO_KEY:
                built.append(self.result(index))
                continue
            key, message = keys[index], messages[index]
            to = f"+{key}" if key >= 0 else None
            text = texts[message] if message >= 0 else None
            body = None
            if status[index] == VALID:
                body = {F.TO: to}
                given = external[index] if external is not None else (self._external(index) if with_external else "")
                if given:
                    body[F.EXTERNAL_ID] = given
                body[F.TEXT] = text
            built.append(RowResult(index, numbers[index], STATUSES[status[index]], body,
                                   segments[message] if message >= 0 else None,
                                   self.issues_of(index) if flagged[index] else [], to, text))
        return built

    # ------------------------------------------------------------------ the Report interface
    def issue_rows(self) -> Iterator[tuple[int, list[Issue]]]:
        """(row index, issues) of every row with issues, in sheet order."""
        for index in np.flatnonzero(self.flagged()).tolist():
            issues = self.issues_of(index)
            if issues:
                yield index, issues

    def issues(self) -> Iterator[Issue]:
        if self._results is not None:
            yield from super().issues()
            return
        for _, issues in self.issue_rows():
            yield from issues

    @property
    def ok(self) -> bool:
        if self._results is not None:
            return super().ok
        return not bool((self.status == INVALID).any())

    def write(self, path: str | Path) -> Path:
        """As Report.write; a CSV report is written by columns (:func:`tables.safe_csv_lines`), to the same bytes."""
        path = Path(path)
        if path.suffix.lower() != ".csv" or self._results is not None:
            return super().write(path)
        with gc_paused():
            self._write_csv(path)
        return path

    def _write_csv(self, path: Path) -> None:
        from . import tables
        from .report import ISSUE_COLUMNS

        tables.write_csv_lines(path, ISSUE_COLUMNS, self._report_chunks(), chunked=True)

    def _report_chunks(self, size: int = 65536) -> Iterator[list[str]]:
        """The report's CSV lines, ``size`` at a time, as Issue.csv_cells and write_table make them.

        A row's issues from its recipient cell and its message are the same for every row of the
        same verdict and message but for the row number: their lines are made once each, as the
        text after the row's number, and each row's lines are its number and those tails.
        """
        tails = _Tails()
        verdict_tails: dict[int, list[tuple[bool, str]]] = {}
        message_tails: dict[int, list[tuple[bool, str]]] = {}
        lines: list[str] = []
        special, row_numbers = self.special, self.sheet.row_numbers
        flagged = np.flatnonzero(self.flagged())
        numbers = (row_numbers.values[flagged].tolist() if isinstance(row_numbers, IntRows)  # one int at a time
                   else [row_numbers[i] for i in flagged.tolist()])                           # is slow from numpy
        per_row = zip(flagged.tolist(), numbers, self.across[flagged].tolist(), self.verdict[flagged].tolist(),
                      self.message[flagged].tolist(), self.leases[flagged].tolist(), strict=True)
        for index, number, across, verdict, message, leases in per_row:
            row = str(number)
            if index in special:
                made = [tails.of(i) for i in special[index].issues]
            else:
                if across in (ACROSS_OPTED_OUT, ACROSS_DEDUPLICATED):
                    made = [tails.of(self._across_issue(index, across))]
                else:
                    made = []
                    if verdict >= 0:
                        found = verdict_tails.get(verdict)
                        if found is None:
                            raw, _, problems, _ = self.verdicts[verdict]
                            found = verdict_tails[verdict] = [tails.of(Issue(0, self.to_label, raw, *p))
                                                              for p in problems]
                        made += found
                    if message >= 0:
                        found = message_tails.get(message)
                        if found is None:
                            found = message_tails[message] = [tails.of(Issue(0, *p))
                                                              for p in self.messages.problems[message]]
                        made += found
                    if across:
                        made.append(tails.of(self._across_issue(index, across)))
                    if leases:
                        made.append(tails.of(self._lease_issue(index)))
            for quoted, tail in made:
                lines.append(f'"{row}"{tail}' if quoted else row + tail)
            if len(lines) >= size:
                yield lines
                lines = []
        if lines:
            yield lines

    def summary(self, top: int = 5) -> dict:
        if self._results is not None:
            return super().summary(top)
        valid = self.status == VALID
        gsm7 = ucs2 = segments = 0
        ids = self.message
        plain = valid & (ids >= 0)
        if plain.any():
            per_message = np.bincount(ids[plain], minlength=len(self.messages.texts))
            for message in np.flatnonzero(per_message).tolist():
                counted = self.messages.segments[message]
                rows = int(per_message[message])
                if counted.encoding == "GSM-7":
                    gsm7 += rows
                else:
                    ucs2 += rows
                segments += counted.parts * rows
        for index in np.flatnonzero(valid & (ids < 0)).tolist():
            counted = self.segments_of(index)
            if counted.encoding == "GSM-7":
                gsm7 += 1
            else:
                ucs2 += 1
            segments += counted.parts
        special_bodies = [r.body for i, r in self.special.items() if valid[i]]
        scheduled = sum(1 for body in special_bodies if F.SCHEDULE in body)
        leased = int(valid.sum()) - sum(1 for body in special_bodies if F.FROM in body)
        warned = 0
        problems: Counter[tuple[str, str]] = Counter()
        warning = Severity.WARNING
        for pairs, rows, valid_rows in self.signatures():  # in the order they first appear, as rows are read
            for pair in pairs:
                problems[pair] += rows
            if valid_rows and any(severity == warning for severity, _ in pairs):
                warned += valid_rows
        return {
            "rows_read": self.count,
            "rows_valid": gsm7 + ucs2,
            "rows_with_errors": int((self.status == INVALID).sum()),
            "rows_with_warnings": warned,
            "rows_skipped": int((self.status == SKIPPED).sum()),
            "messages_gsm7": gsm7,
            "messages_ucs2": ucs2,
            "segments": segments,
            "leased_rows": leased,
            "scheduled_rows": scheduled,
            "top_problems": [
                {"severity": sev, "code": code, "count": n} for (sev, code), n in problems.most_common(top)
            ],
        }


class _Tails:
    """The text of an issue's report line after its row number (``,Mobile,0412,error,…``), as
    :func:`tables.safe_csv_lines` writes the line of ``Issue.csv_cells``, and whether the row number
    is quoted too (every field is, when a cell was made inert: it starts with ``'``)."""

    def __init__(self) -> None:
        from . import tables
        from .cells import csv_safe
        from .report import _safe_label, clip

        self._changes, self._csv_safe, self._label, self._clip = tables.changes, csv_safe, _safe_label, clip
        self._line = tables.safe_csv_line
        self._inert: dict[str, str] = {}

    def _safe(self, value: str) -> str:
        found = self._inert.get(value)
        if found is None:
            found = self._csv_safe(value) if self._changes(value) else value
            if len(self._inert) > 200_000:
                self._inert.clear()
            self._inert[value] = found
        return found

    def of(self, issue: Issue) -> tuple[bool, str]:
        clip = self._clip
        line = self._line(["0", self._label(clip(issue.column)), self._safe(clip(issue.value)),
                           str.__str__(issue.severity), issue.code, self._safe(issue.message)])
        quoted = line.startswith('"')  # "0": every field quoted
        return quoted, line[3:] if quoted else line[1:]


# --------------------------------------------------------------------------- the check


#: Records read at once from a file too big to hold (sheet.Streamed).
CHUNK_ROWS = 500_000


def check_columns(checker: RowChecker, options: CheckOptions, helpers: Helpers | None = None) -> ColumnarReport:
    """Every row's verdict, by columns (the caller has made sure :func:`supported` holds); ``helpers`` (started
    by the caller, see parallel.start_helpers) take a share of a big recipient column, else a forked copy does."""
    from .check import name_other_readings, reading_books

    sheet = checker.sheet
    report = ColumnarReport(sheet, checker)
    to_source = next(s for s in checker.sources if s.field == F.TO)
    report.to_label = to_source.label
    country_values: set[str] | None = None
    country_cell = None
    if isinstance(sheet.rows, StreamedRows):
        country_values, country_cell = _check_streamed(report, checker, helpers)
    else:
        _check_part(report, checker, sheet, 0, helpers)
    _keys(report)
    # names the other countries' readings of bad numbers (check.apply_other_readings)
    # A row's reading does not depend on its row: every row not checked row by row has an empty
    # Country cell, so the rewrite is the same for every row of a verdict, and is made on the verdict.
    wanted = (C.NOT_MOBILE.code, C.INVALID_PHONE.code)
    marked = [v for v, verdict in enumerate(report.verdicts) if any(p.code in wanted for p in verdict[2])]
    flagged = []
    for index in sorted(report.special):
        issues = report.special[index].issues
        flagged += [(index, report.to_of(index), i) for i in issues if i.code in wanted]
    if flagged or marked:
        books = reading_books(checker, _heads(report), country_values)
        if len(books) >= 2:
            made = {v: [Issue(0, report.to_label, report.verdicts[v][0], *p) for p in report.verdicts[v][2]]
                    for v in marked}
            flagged += [(-1, report.verdicts[v][1], i) for v in marked for i in made[v] if i.code in wanted]
            name_other_readings(flagged, checker, books, _country_cell(country_cell, checker))
            for v, issues in made.items():
                raw, e164, _, error = report.verdicts[v]
                report.verdicts[v] = (raw, e164, tuple(rules.Problem(i.severity, i.code, i.message) for i in issues),
                                      error)
    _sheet_rules(report, sheet)
    _batch_rules(report, options, sheet.column_of(F.TO) or "To")
    return report


def _country_cell(country_cell, checker: RowChecker):
    """A row's stripped Country cell for name_other_readings; index -1 stands for a verdict's rows, whose
    Country cell is empty (a filled one makes its row checked row by row)."""

    def cell(index: int) -> str:
        if index < 0:
            return ""
        if country_cell is not None:
            return country_cell(index)
        return checker.sheet.rows[index][checker.country_index].strip()

    return cell


def _check_part(report: ColumnarReport, checker: RowChecker, part: Sheet, offset: int,
                helpers: Helpers | None = None) -> None:
    """Check the rows of ``part`` (the sheet, or a chunk of it starting at row ``offset``) into ``report``."""
    whole = part is report.sheet
    into = report if whole else ColumnarReport.sharing(report, part)
    count = len(part.rows)
    columns = _columns(part)
    held, checker.sheet = checker.sheet, part
    try:
        special = _special_rows(part, checker, columns)
        to_column = next(s for s in checker.sources if s.field == F.TO).column

        def cells(lo: int, hi: int) -> list[str]:
            return list(map(str.strip, columns(to_column)[lo:hi]))

        def meanwhile() -> None:
            if isinstance(part.rows, ColumnRows):  # the columns read here, parsed at once where they are lazy
                part.rows.want(_columns_read(checker, part))
            _texts(into, checker, columns, special)

        # the messages are made while another process judges a share of the recipients (they are independent);
        # where this process must first parse the columns it reads, the other takes a larger share
        lazy = isinstance(part.rows, ColumnRows) and isinstance(part.rows.columns, LazyColumns)
        _recipients(into, checker, cells, count, special, helpers, meanwhile=meanwhile,
                    share=ELSEWHERE_SHARE if lazy else ELSEWHERE_SHARE_PARSED)
        external = next((s for s in checker.sources if s.field == F.EXTERNAL_ID), None)
        if external is not None and whole:
            report._externals_of = lambda: _externals(columns, external, count)
        # rows the column rules cannot settle: checked row by row, as the row-by-row check would
        for index in special.tolist():
            r = checker.check(index)
            r.index = index + offset
            report.special[index + offset] = r
            into.status[index] = INVALID if r.status == Status.INVALID else VALID
    finally:
        checker.sheet = held
    if not whole:
        span = slice(offset, offset + count)
        report.status[span], report.keys[span], report.settled[span] = into.status, into.keys, into.settled
        report.message[span], report.verdict[span] = into.message, into.verdict
        report.heads |= into.heads


def _check_streamed(report: ColumnarReport, checker: RowChecker, helpers: Helpers | None = None):
    """Check a sheet too big to hold (sheet.Streamed) a chunk of records at a time."""
    from .sheet import ColumnRows as Rows

    sheet = report.sheet
    rows = sheet.rows
    numbers = sheet.row_numbers.values  # type: ignore[attr-defined]
    width = len(sheet.header)
    done = 0
    line = 0
    index = checker.country_index
    country_values: set[str] | None = set() if index is not None else None
    country_ids: dict[str, int] = {}
    country_of = np.zeros(report.count, dtype=np.int32) if index is not None else None
    # rows checked row by row need every cell; else only the columns the check reads are parsed
    usecols = None if index is not None or sheet.problems else _columns_read(checker, sheet)
    for chunk in rows.streamed.chunks(width, CHUNK_ROWS, usecols):
        size = len(next(column for column in chunk if column is not None))
        hi = int(np.searchsorted(numbers, line + size, side="right"))
        local = (numbers[done:hi] - 1 - line).tolist()
        if local:
            if local[-1] - local[0] == len(local) - 1:  # no empty line in the chunk: its columns as they are
                cells = [column[local[0]:local[-1] + 1] if column is not None else None for column in chunk]
            else:
                cells = [[column[i] for i in local] if column is not None else None for column in chunk]
            width_here = max(width, rows.widest)
            part = Sheet(sheet.path, sheet.header, Rows(cells[:width_here], width, count=len(local)),
                         numbers[done:hi].tolist(), "csv", sheet.encoding, sheet.delimiter, None, sheet.header_row,
                         columns=sheet.columns)
            _check_part(report, checker, part, done, helpers)
            if index is not None:
                values = list(map(str.strip, cells[index]))
                country_values.update(values)
                country_of[done:hi] = [country_ids.setdefault(v, len(country_ids)) for v in values]
        done = hi
        line += size
    if index is None:
        return None, None
    names = list(country_ids)
    return country_values, lambda row: names[country_of[row]]


def _externals(columns, source, count: int) -> list[str]:
    """Each row's ExternalId ("" none): its cell, else the default (--external-id)."""
    ext = list(map(str.strip, columns(source.column))) if source.column is not None else [""] * count
    return [v or source.default for v in ext] if source.default else ext


def _columns(sheet: Sheet):
    """A function giving column j as a list of cells, one per row (made once per column: callers ask for a
    column once per distinct message, which made a sheet read row by row quadratic)."""
    rows = sheet.rows
    if isinstance(rows, ColumnRows):
        return lambda j: rows.columns[j]
    made: dict[int, list[str]] = {}

    def column(j: int) -> list[str]:
        found = made.get(j)
        if found is None:
            found = made[j] = [cells[j] for cells in rows]
        return found

    return column


def _special_rows(sheet: Sheet, checker: RowChecker, columns) -> np.ndarray:
    """Rows checked row by row: a filled Country cell, or a problem or hidden state from reading the file."""
    count = len(sheet.rows)
    special = np.zeros(count, dtype=bool)
    if checker.country_index is not None:
        special |= np.fromiter((bool(c.strip()) for c in columns(checker.country_index)), dtype=bool, count=count)
    marked = {p.row for p in sheet.problems} | (set(sheet.hidden_rows) if not sheet.include_hidden else set())
    if marked:
        special |= np.isin(np.asarray(sheet.row_numbers), sorted(marked))
    return np.flatnonzero(special)


#: Rows from which a share of a recipient column is judged by another process (background.Elsewhere).
SPLIT_ROWS = 50_000
#: That share, for a sheet whose columns are parsed when first read: the other process starts at once and
#: parses its cells, while this one parses the columns it reads and makes the messages first.
ELSEWHERE_SHARE = 0.58
#: That share where the columns are parsed already (a smaller file, a chunk of a streamed one): this process
#: only makes the messages first.
ELSEWHERE_SHARE_PARSED = 0.55


def _recipients(report: ColumnarReport, checker: RowChecker, cells: Callable[[int, int], list[str]], count: int,
                special: np.ndarray, helpers: Helpers | None = None,
                meanwhile: Callable[[], None] | None = None, share: float = ELSEWHERE_SHARE_PARSED) -> None:
    """Each row's recipient: plain mobiles by columns, every other cell's verdict once per distinct text.

    ``cells(lo, hi)`` gives the recipient cells of rows lo to hi, stripped. A big column is
    judged in two parts at once, the second by a helper process of ``helpers`` (or a forked
    copy, which reads its cells itself: a column not yet parsed is parsed there too): rows are
    independent, and the phone numbers are most of a check's time. ``meanwhile`` (work that
    needs no recipient) is done here first; ``share`` is the other process's part of the rows.
    """
    from .background import Elsewhere

    book, allow = checker.book, checker.allow_landlines
    aside = np.zeros(count, dtype=bool)
    aside[special] = True
    half = count - int(count * share) if count >= SPLIT_ROWS else count
    elsewhere = None
    if half < count:
        pool = helpers.ready_pool() if helpers is not None else None
        if pool is not None:  # a helper gets the cells themselves
            elsewhere = Elsewhere(_judge_elsewhere, book.country, allow, cells(half, count), aside[half:], pool=pool)
        else:
            elsewhere = Elsewhere(_judge_cells, book.country, allow, cells, half, count, aside[half:])
    try:
        if meanwhile is not None:
            meanwhile()
        parts = [(0, _judge(book, allow, cells(0, half), aside[:half], report.verdict_ids, report.verdicts))]
    except BaseException:
        if elsewhere is not None:  # never leave the other half's process behind
            elsewhere.cancel()
        raise
    if elsewhere is not None:
        parts.append((half, elsewhere.result()))
    heads: set[str] = set()
    ids, table = report.verdict_ids, report.verdicts
    for offset, (settled, keys, part_heads, others, which, found) in parts:
        report.settled[settled + offset] = True
        report.keys[settled + offset] = keys
        heads |= part_heads
        if found is not table:  # another process's verdicts: numbered into this report's table
            remap = np.zeros(len(found) + 1, dtype=np.int32)
            for j, entry in enumerate(found):
                verdict = ids.get(entry[0])
                if verdict is None:
                    verdict = ids[entry[0]] = len(table)
                    table.append(entry)
                remap[j] = verdict
            which = remap[which]
        report.verdict[others + offset] = which
    report.settled[special] = False
    report.keys[special] = NO_KEY
    report.heads = heads
    if table:
        errors = np.array([v[3] for v in table] + [False])
        report.status[errors[report.verdict]] = INVALID  # -1 (settled, or checked row by row) reads the False


def _judge(book, allow: bool, cells: list[str], aside: np.ndarray, ids: dict[str, int], table: list) -> tuple:
    """The recipients of a run of cells: (settled cell indexes, their keys, their heads, the other cells'
    indexes, each one's verdict id, the verdict table); ``aside`` cells (checked row by row) are left out.
    Verdicts are added to ``ids``/``table`` (a report's, or new ones in another process)."""
    verdicts = Settler(book).settle(cells)
    settled = np.zeros(len(cells), dtype=bool)
    settled[verdicts.settled] = True
    others = np.flatnonzero(~settled & ~aside)
    which = np.empty(len(others), dtype=np.int32)
    for k, index in enumerate(others.tolist()):
        raw = cells[index]
        verdict = ids.get(raw)
        if verdict is None:
            value, problems = rules.check_to(raw, book, allow) if allow else rules.check_to(raw, book)
            verdict = ids[raw] = len(table)
            table.append((raw, value, tuple(problems), any(p.severity == rules.ERROR for p in problems)))
        which[k] = verdict
    return verdicts.settled, verdicts.keys, verdicts.heads, others, which, table


def _judge_cells(country: str, allow: bool, cells: Callable[[int, int], list[str]], lo: int, hi: int,
                 aside: np.ndarray) -> tuple:
    """:func:`_judge_elsewhere` of the cells of rows lo to hi, read where it runs (a forked copy)."""
    return _judge_elsewhere(country, allow, cells(lo, hi), aside)


def _judge_elsewhere(country: str, allow: bool, cells: list[str], aside: np.ndarray) -> tuple:
    """:func:`_judge` in another process, with a book of its own (the same verdicts: books keep no settings)."""
    from .phones import PhoneBook

    return _judge(PhoneBook(country), allow, cells, aside, {}, [])


def _texts(report: ColumnarReport, checker: RowChecker, columns, special: np.ndarray) -> None:
    """Each row's message, rendered, counted and checked once per distinct set of the cells it reads."""
    sheet, messages = report.sheet, report.messages
    template, plain = checker.template, checker.render_plain
    count = report.count
    indexes = _text_columns(checker, sheet)
    codes, firsts = _distinct_rows(columns, indexes, count)
    text_label, max_segments = checker.text_label, checker.max_segments
    blanks = checker.blank_variables
    checked: dict[str, tuple] = {}
    local = np.empty(len(firsts), dtype=np.int32)
    for k, first in enumerate(firsts.tolist()):
        cells = {j: columns(j)[first] for j in indexes}
        key = tuple(cells[j] for j in indexes)
        found = messages.ids.get(key)
        if found is not None:
            local[k] = found
            continue
        local[k] = messages.ids[key] = len(messages.texts)
        problems: list[tuple[str, str, Severity, str, str]] = []
        text: str | None
        if template is None:
            text = cells[checker.text_column]
        elif plain is not None:
            text = plain(cells)
        else:
            full = sheet.rows[first]
            try:
                text = template.render(full)
            except (MissingVariable, RenderError) as exc:
                code = C.MISSING_VARIABLE if isinstance(exc, MissingVariable) else C.TEMPLATE_ERROR
                problems.append((text_label, "", code.severity, code.code, str(exc)))
                text = None
        counted = None
        if text is not None:
            found_text = checked.get(text)
            if found_text is None:
                found_text = checked[text] = rules.check_text(text, max_segments)
            counted, text_problems = found_text
            problems += [(text_label, text, *p) for p in text_problems]
            if blanks is not None:
                cells_of_row = cells if plain is not None or template is None else sheet.rows[first]
                names = blanks(cells_of_row)
                if names:
                    holder: list[Issue] = []
                    checker._blank_issues(names, text, 0, holder)
                    problems += [(i.column, i.value, i.severity, i.code, i.message) for i in holder]
        messages.texts.append(text)
        messages.segments.append(counted)
        messages.problems.append(problems)
        messages.errors.append(any(p[2] == rules.ERROR for p in problems))
    ids = local[codes]
    if len(special):
        ids[special] = -1
    report.message[:] = ids
    errors = np.array(messages.errors + [False], dtype=bool)
    report.status[errors[ids]] = INVALID


def _columns_read(checker: RowChecker, sheet: Sheet) -> list[int]:
    """The columns a check by columns reads of each row: the recipient's and the message's (rows checked
    row by row, a Country cell's, read every cell)."""
    return [next(s for s in checker.sources if s.field == F.TO).column] + _text_columns(checker, sheet)


def _text_columns(checker: RowChecker, sheet: Sheet) -> list[int]:
    """The columns a row's message is made of."""
    if checker.template is None:
        return [checker.text_column]
    if checker.render_plain is not None:
        return list(dict.fromkeys(checker.template._plain_parts[1]))
    return list(range(len(sheet.header)))  # a Jinja template may read any cell


def _distinct_rows(columns, indexes: list[int], count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the id of its combination of the cells in ``indexes``; and the first row of each id.

    Numbered in order of first appearance: with a dict below :data:`FACTORIZE_ROWS` rows (importing
    pandas would cost more), with pandas' hash tables (factorize) from there on.
    """
    if not indexes:  # a text that reads no cell (a template without variables): one message for every row
        return np.zeros(count, dtype=np.int64), np.zeros(min(count, 1), dtype=np.int64)
    if count < FACTORIZE_ROWS:
        table: dict[tuple, int] = {}
        keys = zip(*(columns(j) for j in indexes), strict=True)
        ids = np.fromiter((table.setdefault(key, len(table)) for key in keys), dtype=np.int64, count=count)
        seen = np.maximum.accumulate(ids) if count else ids
        return ids, np.flatnonzero(np.concatenate(([True], seen[1:] > seen[:-1]))) if count else ids
    import pandas as pd

    combined = np.zeros(count, dtype=np.int64)
    scale = 1
    for j in indexes:
        codes, uniques = pd.factorize(np.asarray(columns(j), dtype=object), sort=False)
        if scale * max(len(uniques), 1) >= 2**62:  # too many combinations for one integer: renumber
            _, combined = np.unique(combined, return_inverse=True)
            scale = int(combined.max()) + 1 if count else 1
        combined = combined + codes.astype(np.int64) * scale
        scale *= max(len(uniques), 1)
    ids = pd.factorize(combined, sort=False)[0].astype(np.int64)  # numbered in order of first appearance
    seen = np.maximum.accumulate(ids)
    firsts = np.flatnonzero(np.concatenate(([True], seen[1:] > seen[:-1])))
    return ids, firsts


def _heads(report: ColumnarReport) -> set[str]:
    """The first four characters of every recipient (``+614``), which tell its calling code."""
    heads = set(report.heads)
    for index in np.flatnonzero(~report.settled & (report.keys != NO_KEY)).tolist():
        heads.add(report.to_of(index)[:4])
    for r in report.special.values():
        if r.to:
            heads.add(r.to[:4])
    return heads


def _sheet_rules(report: ColumnarReport, sheet: Sheet) -> None:
    """check.apply_sheet_rules, on the rows checked row by row (the only ones it can touch)."""
    from .check import apply_sheet_rules

    if not report.special:
        return
    ordered = [report.special[i] for i in sorted(report.special)]
    apply_sheet_rules(ordered, sheet)
    for r in ordered:
        report.status[r.index] = STATUSES.index(r.status)


def _keys(report: ColumnarReport) -> None:
    """The compact key of every recipient not settled by columns (E.164 digits as an int64)."""
    long_keys = report.long_keys
    found = np.array([_key_of(v[1], long_keys, add=True) if v[1] else NO_KEY for v in report.verdicts] + [NO_KEY],
                     dtype=np.int64)
    others = ~report.settled
    report.keys[others] = found[report.verdict[others]]
    for index, r in report.special.items():
        report.keys[index] = _key_of(r.to, long_keys, add=True) if r.to else NO_KEY


def _key_of(e164: str, long_keys: dict[str, int], add: bool = False) -> int | None:
    digits = e164[1:]
    if e164[:1] == "+" and digits.isdigit() and digits.isascii() and len(digits) <= 18 and digits[0] != "0":
        return int(digits)
    found = long_keys.get(e164)
    if found is None and add:  # pragma: no cover - phonenumbers gives no E.164 this long
        found = long_keys[e164] = len(long_keys)
    return -2 - found if found is not None else None


def _stable_order(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` of int64 values: where the values' span and their
    positions fit in 63 bits together (one country's numbers), one sort of value-then-position keys, which
    measured 0.45 s instead of 1.14 s for 9M keys."""
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    low = int(values.min())
    shift = max(int(len(values) - 1).bit_length(), 1)
    if (int(values.max()) - low).bit_length() + shift > 63:
        return np.argsort(values, kind="stable")
    combined = ((values - low) << shift) | np.arange(len(values), dtype=np.int64)
    combined.sort()
    return combined & ((1 << shift) - 1)


def _batch_rules(report: ColumnarReport, options: CheckOptions, to_label: str) -> None:
    """check.apply_batch_rules over the keys: suppression, duplicates and the lease limit, in sheet order.

    The first valid row to a recipient is the one the others are duplicates of; the n-th valid
    row to it (all are leased here) is the n-th lease, an error past the limit: ranks within
    the rows sorted by key, stably, give all of it at once.
    """
    from .check import MAX_LEASES_PER_RECIPIENT

    report.to_label_batch = to_label
    status, keys, rows = report.status, report.keys, report.sheet.row_numbers
    special = np.zeros(report.count, dtype=bool)
    special[list(report.special)] = True
    has_to = (keys != NO_KEY) & (status != SKIPPED)
    if options.suppress:
        wanted = [k for k in (_key_of(e, report.long_keys) for e in options.suppress) if k is not None]
        suppressed = has_to & np.isin(keys, np.array(wanted, dtype=np.int64))
        report.across[suppressed & ~special] = ACROSS_OPTED_OUT
        for index in np.flatnonzero(suppressed & special).tolist():
            report.special[index].issues = [Issue.of(rows[index], to_label, report.to_of(index), C.SUPPRESSED,
                                                     "skipped: the number is on the opt-out list (--suppress)")]
        status[suppressed] = SKIPPED
    valid = np.flatnonzero((status == VALID) & (keys != NO_KEY))
    if not len(valid):
        return
    order = valid[_stable_order(keys[valid])]
    sorted_keys = keys[order]
    new_group = np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1]))
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
    rank = np.arange(len(order)) - group_start
    first = order[group_start]
    later = rank > 0
    if not later.any():
        return
    for index in report.special:
        body = report.special[index].body
        if status[index] == VALID and body is not None and F.FROM in body:  # pragma: no cover - no From here
            raise AssertionError("the check by columns covers leased rows only")
    index, earlier = order[later], first[later]
    report.earlier[index] = earlier
    if options.dedupe:
        status[index] = SKIPPED
        report.across[index] = ACROSS_DEDUPLICATED
    else:
        text_ids = _text_ids(report)
        same = text_ids[index] == text_ids[earlier]
        report.across[index] = np.where(same, ACROSS_SAME_TEXT, ACROSS_OTHER_TEXT)
        leases = rank[later] + 1
        over = leases > MAX_LEASES_PER_RECIPIENT
        report.leases[index[over]] = leases[over]
        status[index[over]] = INVALID
    for k in np.flatnonzero(special[index]).tolist():  # rows checked row by row keep their own issue lists
        row_index = int(index[k])
        issues = [report._across_issue(row_index, int(report.across[row_index]))]
        if report.across[row_index] == ACROSS_DEDUPLICATED:
            report.special[row_index].issues = issues
        else:
            report.special[row_index].issues += issues + ([report._lease_issue(row_index)]
                                                          if report.leases[row_index] else [])
        report.across[row_index] = 0
        report.leases[row_index] = 0


def _text_ids(report: ColumnarReport) -> np.ndarray:
    """Per row, an id of its message text: equal ids, equal texts (-1 and below: no text, or a special row's)."""
    by_text: dict[str | None, int] = {}
    per_message = np.array([by_text.setdefault(t, len(by_text)) if t is not None else -1
                            for t in report.messages.texts] + [-1], dtype=np.int64)
    ids = per_message[report.message]
    for index, r in report.special.items():
        ids[index] = by_text.setdefault(r.text, len(by_text)) if r.text is not None else -1
    return ids
