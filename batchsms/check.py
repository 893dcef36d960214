"""Validate every API field of every row into a Report (the render and validate arrows of the pipeline).

Row rules run one row at a time; batch rules (suppression, duplicates, the
5-lease limit) run afterwards over all rows in sheet order, because they need
to know what came before. So does naming another country's reading of a bad
number: which countries a sheet uses is known only once every row is read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

from . import codes as C
from . import fields as F
from . import rules
from .clock import local_zone_name, zone_named
from .codes import Status
from .compliance import check_marketing
from .errors import ConfigError, SheetError
from .fields import header_key
from .perf import gc_paused
from .phones import PhoneBook, main_region, region_for, regions_named
from .report import Issue, Report, RowResult
from .rules import ERROR, Problem
from .schedule import day_first_for
from .selection import Selection
from .sendtimes import apply_send_times, check_policy, quiet_hours
from .sheet import ColumnRows, Sheet, find_header, listed_names
from .template import MessageTemplate, MissingVariable, RenderError

if TYPE_CHECKING:
    from .parallel import Helpers

MAX_LEASES_PER_RECIPIENT = 5
#: Sheets with at least this many rows are checked by columns where that covers the run (batchsms.columnar):
#: below it the row-by-row path is as quick, and needs no numpy. Measured with the CLI, preview and report
#: written (benchmarks/NOTES.md; the thresholds before: 20,000 rows, 2 MB, 16 MB / by columns now), each
#: the median of 5 runs: 2,000 rows 0.28 / 0.30 s, 3,000 0.35 / 0.34, 5,000 0.41 / 0.35, 10,000 0.54 / 0.38.
COLUMNAR_MIN_ROWS = 3_000
#: The same for a workbook's rows, where reading gains nothing by columns: 5,000 rows 0.37 s by rows /
#: 0.43 s by columns, 10,000 0.53 / 0.55, 20,000 0.80 / 0.78.
COLUMNAR_MIN_WORKBOOK_ROWS = 20_000
#: For the per-row loops: reading an Enum member off its class costs ~70 ns on Python 3.11, a global ~15.
_VALID, _INVALID, _SKIPPED = Status.VALID, Status.INVALID, Status.SKIPPED

@dataclass
class CheckOptions:
    """Everything besides the sheet that decides a row's verdict."""

    country: str = "AU"
    timezone: str | None = None  # IANA name; None: this machine's zone
    defaults: dict[str, str] = field(default_factory=dict)  # API field -> value for every row
    template: MessageTemplate | None = None
    max_segments: int = 10
    dedupe: bool = False
    suppress: frozenset[str] = frozenset()  # E.164 numbers never to text
    now: float | None = None  # epoch seconds the schedule window is measured from
    country_column: str | None = None  # header of each row's country; None: a column headed Country, if any
    allow_landlines: bool = False  # a valid number that is no mobile is a warning, not an error
    countries: tuple[str, ...] = ()  # countries the sheet's numbers may be from (--countries), to name readings
    where: str | None = None  # --where EXPRESSION: rows it is false for are skipped (not-selected)
    consent_column: str | None = None  # rows whose cell here is not yes/y/true/1 are skipped (no-consent)
    skip_empty: bool = False  # a row whose template writes no text is skipped (empty-message), not an error
    marketing: bool = False  # the law's rules for a marketing text: an opt-out in every text (no-opt-out)
    locale: str | None = None  # the locale --where reads dates in (the template carries its own)
    late: str = "error"  # a Schedule more than an hour past: error, send-now or skip (--late)
    quiet_hours: str | None = None  # --quiet-hours 21:00-08:00, in each recipient's zones
    quiet_days: str | None = None  # --quiet-days Sun: whole days without sends
    quiet_policy: str = "move"  # a send time in quiet hours: move, skip or error

    def day_first(self) -> bool | None:
        """How ``1/12/2026`` reads: by --locale, else English as written in --country."""
        return day_first_for(self.country, self.locale)

    def zone(self) -> ZoneInfo:
        """The zone naive schedule times are read in (``--timezone``, else this machine's)."""
        return zone_named(self.timezone) if self.timezone else zone_named(local_zone_name(), "this machine's zone")


class Source(NamedTuple):
    """Where one API field of a row comes from: a column, an option's default for every row, or both."""

    field: str
    column: int | None  # the column that feeds it, if any (a non-empty cell wins over the default)
    default: str  # the option's value for every row, or ""
    label: str | None  # the column's header, named in problems about a cell
    option: str  # the option, named in problems about the default
    rule: Callable[[str], tuple[object, tuple[Problem, ...] | list[Problem]]] | None  # None: passed through


Rule = Callable[[str], tuple[object, tuple[Problem, ...] | list[Problem]]]


def field_rules(book: PhoneBook, zone: ZoneInfo, now: float, day_first: bool | None = True,
                late: str = "error") -> dict[str, Rule | None]:
    """Every field's rule bound to a phone book, a time zone and a clock (None: passed through as it is).

    ``day_first`` reads ``1/12/2026`` (from --locale or the country); ``late`` is --late.
    """
    return {
        F.TO: partial(rules.check_to, book=book),
        F.FROM: lambda v: rules.check_from(v, book),
        F.SCHEDULE: lambda v: rules.check_schedule(v, zone, now, day_first, late),
        F.DELIVERY_RECEIPT: lambda v: rules.check_bool(v, F.DELIVERY_RECEIPT),
        F.DR_WEBHOOK_URI: lambda v: rules.check_url(v, F.DR_WEBHOOK_URI),
        F.DR_WEBHOOK_METHOD: lambda v: rules.check_method(v, F.DR_WEBHOOK_METHOD),
        F.EXTERNAL_ID: None,  # any text: passed through without a call
        F.FORWARD_TO_SMS: lambda v: rules.check_forward_to_sms(v, book),
        F.FORWARD_FROM_SMS: lambda v: rules.check_forward_from_sms(v, book),
        F.FORWARD_TO_EMAIL: lambda v: rules.check_email(v, F.FORWARD_TO_EMAIL),
        F.FORWARD_FROM_EMAIL: lambda v: rules.check_email(v, F.FORWARD_FROM_EMAIL),
        F.WEBHOOK_URI: lambda v: rules.check_url(v, F.WEBHOOK_URI),
        F.WEBHOOK_METHOD: lambda v: rules.check_method(v, F.WEBHOOK_METHOD),
    }


def check_option_values(options: CheckOptions) -> None:
    """The options that give a field to every row, checked once, as options.

    ``--schedule soon`` is one clear line (exit 2) before the sheet is checked, not an error
    on every row of a column that would be named ``--schedule``. A value that is valid but
    worth a warning (a schedule within the last hour) is left to the rows, which say so.
    """
    try:
        book = PhoneBook(options.country)
    except ValueError as exc:
        raise ConfigError(f"--country: {exc}") from None
    bound = field_rules(book, options.zone(), options.now if options.now is not None else time.time(),
                        options.day_first(), options.late)
    for api_field, value in options.defaults.items():
        rule = bound.get(api_field)
        if rule is None or not value.strip():
            continue
        _, problems = rule(value.strip())
        errors = [p for p in problems if p.severity == ERROR]
        if errors:
            option = F.OPTION_FOR_FIELD.get(api_field, api_field)
            raise ConfigError(f"{option} {value.strip()[:80]!r}: {errors[0].message}")


class RowChecker:
    """Checks single rows of one sheet; holds what is worked out once per run."""

    def __init__(self, sheet: Sheet, options: CheckOptions) -> None:
        self.sheet = sheet
        self.options = options
        try:
            self.book = PhoneBook(options.country)
        except ValueError as exc:
            raise ConfigError(f"--country: {exc}") from None
        try:
            self.countries = regions_named(options.countries, "--countries")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.allow_landlines = options.allow_landlines
        #: One PhoneBook per country, so that each keeps its cache across the rows of its country.
        self.books: dict[str, PhoneBook] = {self.book.country: self.book}
        self.country_index = _country_column(sheet, options.country_column)
        self.country_label = sheet.header[self.country_index] if self.country_index is not None else ""
        self._book_of_cell: dict[str, PhoneBook | None] = {"": self.book}  # Country cell -> book (None: no country)
        self.row_book = self.book  # the book of the row being checked: the To rule reads it
        self.zone = options.zone()
        self.now = options.now if options.now is not None else time.time()
        self.template = options.template
        self.text_column = sheet.columns.get(F.TEXT)
        if self.template is None and self.text_column is None:
            raise SheetError(
                f"{sheet.path}: no message text: give --template FILE or --text '...', "
                "or add a Text column"
            )
        if self.template is not None:
            self.text_label = f"Text ({Path(self.template.name).name})"
        else:
            self.text_label = sheet.header[self.text_column]
        self.sources: list[Source] = []
        for api_field in F.FIELDS:
            if api_field == F.TEXT:
                continue
            index = sheet.columns.get(api_field)
            default = options.defaults.get(api_field, "").strip()
            if index is None and not default:
                continue
            label = sheet.header[index] if index is not None else None
            option = F.OPTION_FOR_FIELD.get(api_field, api_field)
            self.sources.append(Source(api_field, index, default, label, option, self._rule(api_field)))
        self.max_segments = options.max_segments
        # A plain-substitution template renders with one call and cannot fail: skip the wrappers.
        self.render_plain = self.template.render_plain if self.template is not None else None
        # Variables printed bare ({{ Name }}) are looked at for empty cells: None when there are none.
        self.blank_variables = None
        if self.template is not None and self.template.blank_variables([" "] * len(sheet.header)):
            self.blank_variables = self.template.blank_variables
        self.column_of_variable = self.template.columns_of_variables() if self.template is not None else {}
        self.needs_cross_check = any(f in (F.FROM, F.DELIVERY_RECEIPT) for f, *_ in self.sources)

    def _rule(self, api_field: str) -> Rule | None:
        """The rule for one field, bound to this run's phone book, time zone and clock.

        To is read with --allow-landlines, and with a Country column in the row's own country:
        the book is picked per row (:meth:`check`) before its fields are checked.
        """
        if api_field == F.TO:
            allow = self.allow_landlines
            if self.country_index is None:  # a keyword more in a partial costs every row: bound only when set
                if allow:
                    return partial(rules.check_to, book=self.book, allow_landlines=True)
                return partial(rules.check_to, book=self.book)

            def to_rule(raw: str, check_to=rules.check_to) -> tuple[str | None, Sequence[Problem]]:
                return check_to(raw, self.row_book, allow)

            return to_rule
        return field_rules(self.book, self.zone, self.now, self.options.day_first(), self.options.late)[api_field]

    def check(self, index: int) -> RowResult:
        """The verdict on ``sheet.rows[index]`` (the hot loop of a million-row check: keep it lean)."""
        cells = self.sheet.rows[index]
        row = self.sheet.row_numbers[index]
        issues: list[Issue] = []
        body: dict[str, object] = {}
        if self.country_index is not None:
            self.row_book = self._row_book(cells[self.country_index].strip(), row, issues)
        cross_check = self.needs_cross_check
        labels: dict[str, tuple[str, str]] = {} if cross_check else None  # field -> (label, raw), cross-field
        has_to = False
        for api_field, col, default, label, option, rule in self.sources:
            raw = cells[col].strip() if col is not None else ""
            if raw:
                where = label
            elif default:
                raw, where = default, option
            elif api_field == F.TO:
                where = label or option
            else:
                continue
            if api_field == F.TO:
                has_to = True
            if cross_check:
                labels[api_field] = (where, raw)
            if rule is None:
                body[api_field] = raw
                continue
            value, problems = rule(raw)
            if problems:
                issues.extend([Issue(row, where, raw, *p) for p in problems])
            if value is not None and (value != "" or api_field == F.FROM):
                body[api_field] = value
        if not has_to:  # defensive: load() guarantees a recipient column
            issues.append(Issue.of(row, "To", "", C.MISSING_RECIPIENT, "no recipient column"))

        plain = self.render_plain
        text = plain(cells) if plain is not None else self._text(cells, row, issues)
        counted = None
        if text is not None:
            counted, problems = rules.check_text(text, self.max_segments)
            if problems:
                issues.extend([Issue(row, self.text_label, text, *p) for p in problems])
            body[F.TEXT] = text
            if self.blank_variables is not None:
                blanks = self.blank_variables(cells)
                if blanks:
                    self._blank_issues(blanks, text, row, issues)
        if cross_check:
            self._cross_field(body, labels, row, issues)
            if body.get(F.FROM) == "":
                del body[F.FROM]  # blank From: a leased number, so the field is left out
        to = body.get(F.TO)
        if issues and any(i.severity == ERROR for i in issues):
            return RowResult(index, row, _INVALID, None, counted, issues, to, text)
        return RowResult(index, row, _VALID, body, counted, issues, to, text)

    def book_for(self, region: str) -> PhoneBook:
        """The one PhoneBook of ``region`` this run uses (made on first use)."""
        book = self.books.get(region)
        if book is None:
            book = self.books[region] = PhoneBook(region)
        return book

    def book_of_cell(self, value: str) -> PhoneBook | None:
        """The book for a (stripped) Country cell: the default one for an empty cell, None when it names no
        country. Cached by the cell's text: a sheet spells its few countries over and over."""
        found = self._book_of_cell.get(value, False)
        if found is False:
            region = region_for(value)
            found = self._book_of_cell[value] = self.book_for(region) if region is not None else None
        return found  # type: ignore[return-value]

    def _row_book(self, value: str, row: int, issues: list[Issue]) -> PhoneBook:
        """The row's country as a PhoneBook; a Country cell that names no country is an error on the row
        (its number is then read in --country, so its other problems still show)."""
        book = self.book_of_cell(value)
        if book is not None:
            return book
        issues.append(Issue.of(
            row, self.country_label, value, C.INVALID_COUNTRY,
            f"no country is called {value!r}: write a two-letter ISO code (NZ) or the English name (New Zealand), "
            f"or leave it empty for {self.book.country} (--country)",
        ))
        return self.book

    def _text(self, cells: list[str], row: int, issues: list[Issue]) -> str | None:
        if self.template is None:
            return cells[self.text_column]
        try:
            return self.template.render(cells)
        except (MissingVariable, RenderError) as exc:
            code = C.MISSING_VARIABLE if isinstance(exc, MissingVariable) else C.TEMPLATE_ERROR
            issues.append(Issue.of(row, self.text_label, "", code, str(exc)))
            return None

    def _blank_issues(self, blanks: list[str], text: str, row: int, issues: list[Issue]) -> None:
        """A warning per variable that printed nothing: the customer would read "Hi , …"."""
        shown = text if len(text) <= 60 else text[:57] + "..."
        for name in blanks:
            issues.append(Issue.of(
                row, self.column_of_variable.get(name, name), "", C.EMPTY_VARIABLE,
                f"{{{{ {name} }}}} is empty on this row, so the text reads \"{shown}\"; fill the cell, or "
                f"write {{{{ {name} | default(\"there\", true) }}}} in the template",
            ))

    @staticmethod
    def _cross_field(body: dict, labels: dict, row: int, issues: list[Issue]) -> None:
        sender = body.get(F.FROM)
        to = body.get(F.TO)
        if sender:
            for api_field in F.LEASE_ONLY:
                where, raw = labels.get(api_field, ("", ""))
                if raw:
                    issues.append(Issue.of(
                        row, where, raw, C.LEASE_ONLY_FIELD,
                        f"{api_field} works only when sending from a leased number, but From is "
                        f"{sender!r}; leave From blank or remove {api_field}",
                    ))
            if to and to.startswith("+1") and not sender.startswith("+"):
                where, raw = labels[F.FROM]
                issues.append(Issue.of(
                    row, where, raw, C.ALPHANUMERIC_SENDER_US,
                    "US and Canadian networks do not show alphanumeric senders: a leased number "
                    "is used instead, so replies go there",
                ))
        if body.get(F.DELIVERY_RECEIPT) is False and F.DR_WEBHOOK_URI in body:
            where, raw = labels[F.DR_WEBHOOK_URI]
            issues.append(Issue.of(
                row, where, raw, C.RECEIPT_WEBHOOK_UNUSED,
                "DeliveryReceipt is false, so this webhook is never called; set DeliveryReceipt true",
            ))


def _country_column(sheet: Sheet, header: str | None) -> int | None:
    """The column giving each row's country: ``header`` (``--column Country=HEADER``), else one headed
    Country in any case or spacing, else None (every row is in --country)."""
    if header:
        index = find_header(sheet, header)
        if index is None:
            raise SheetError(f"--column Country={header}: {sheet.path} has no column {header!r}; "
                             f"its columns are {listed_names(sheet.header)}")
        return index
    return next((i for i, h in enumerate(sheet.header) if h and header_key(h) == "country"), None)


def apply_other_readings(results: list[RowResult], checker: RowChecker) -> None:
    """Name another country's reading of a landline or an invalid number: "if this is a New Zealand
    mobile (+64 27 338 7500), write +64 or fill the Country column".

    A batch step, not a row rule: the countries a sheet uses (its Country cells, its numbers'
    country codes, --country and --countries) are known only after every row is read, and a
    parallel check reads rows in helper processes. It costs nothing when no row has such a
    problem, and one pass over the rows' numbers when some do.
    """
    wanted = (C.NOT_MOBILE.code, C.INVALID_PHONE.code)
    flagged = [(r.index, r.to, i) for r in filter(attrgetter("issues"), results) for i in r.issues
               if i.code in wanted]
    if not flagged:
        return
    books = reading_books(checker, {r.to[:4] for r in results if r.to})
    if len(books) >= 2:
        name_other_readings(flagged, checker, books)


def reading_books(checker: RowChecker, heads: set[str], country_values: set[str] | None = None) -> list[PhoneBook]:
    """The books of the countries a sheet uses: --countries, --country, its Country cells, and the
    countries of its numbers (``heads``: their first four characters, ``+614``, tell the calling code).

    ``country_values`` is the set of the (stripped) Country cells, added in row order, when the
    caller collected it (a sheet read in chunks); else it is made from the sheet's rows.
    """
    regions: dict[str, None] = dict.fromkeys(checker.countries)
    regions[checker.book.country] = None
    sheet, index = checker.sheet, checker.country_index
    if index is not None:
        if country_values is None:
            country_values = {cells[index].strip() for cells in sheet.rows}
        for value in sorted(country_values):  # sorted: the readings' order is the same on every run
            book = checker.book_of_cell(value)
            if book is not None:
                regions[book.country] = None
    for head in sorted(heads):
        region = main_region(head)
        if region is not None:
            regions[region] = None
    return [checker.book_for(region) for region in regions]


def name_other_readings(flagged: Sequence[tuple[int, str | None, Issue]], checker: RowChecker,
                        books: list[PhoneBook], country_cell: Callable[[int], str] | None = None) -> None:
    """Rewrite the messages of ``flagged`` (row index, recipient, issue) to name the other readings.

    ``country_cell`` gives a row's stripped Country cell by its index (default: read from the sheet).
    """
    sheet, index = checker.sheet, checker.country_index
    for row_index, to, issue in flagged:
        if index is None:
            own, fix = checker.book, "add a Country column"
        else:
            cell = country_cell(row_index) if country_cell is not None else sheet.rows[row_index][index].strip()
            own = checker.book_of_cell(cell) or checker.book
            fix = f"correct the {checker.country_label} cell" if cell else f"fill the {checker.country_label} column"
        readings = rules.other_readings(issue.value, own.country, books, fix)
        if not readings:
            continue
        if issue.code == C.NOT_MOBILE.code and to:
            issue.message = rules.not_mobile_problem(to, checker.allow_landlines, readings).message
        elif issue.code == C.INVALID_PHONE.code:
            reason = own.normalise(issue.value).reason
            issue.message = rules.invalid_message(issue.value.strip(), reason, own.country, readings)


def apply_sheet_rules(results: list[RowResult], sheet: Sheet) -> None:
    """What reading the file found about single rows: a stray quote (error), a hidden row (skipped).

    Runs before the batch rules, so a hidden row is neither a duplicate nor a lease.
    """
    if not sheet.problems and not (sheet.hidden_rows and not sheet.include_hidden):
        return
    by_row = {r.row: r for r in results}
    for problem in reversed(sheet.problems):  # each goes first: reversed, a row's problems stay in column order
        r = by_row.get(problem.row)
        if r is None:
            continue
        r.status, r.body = Status.INVALID, None
        r.issues.insert(0, Issue.of(r.row, problem.column, problem.value, C.entry(problem.code), problem.message))
    if not sheet.include_hidden:
        for row in sheet.hidden_rows:
            r = by_row.get(row)
            if r is not None and r.status != Status.INVALID:
                r.status, r.body = Status.SKIPPED, None
                r.issues = [Issue.of(row, "", "", C.HIDDEN_ROW,
                                     "skipped: the row is hidden in the workbook; unhide it, or use --include-hidden")]


def apply_batch_rules(results: list[RowResult], options: CheckOptions, to_label: str = "To") -> None:
    """Suppression, duplicates and the lease limit, in sheet order."""
    seen: dict[str, list] = {}  # recipient -> [first valid RowResult, leases so far]
    suppress, dedupe = options.suppress, options.dedupe
    sender_field, text_field = F.FROM, F.TEXT  # locals: this loop runs once per row of the sheet
    valid, skipped, of = _VALID, _SKIPPED, Issue.of
    for r in results:
        to = r.to
        if to is None or r.status == skipped:  # skipped already: hidden in the workbook
            continue
        if suppress and to in suppress:
            r.status, r.body = Status.SKIPPED, None
            r.issues = [of(r.row, to_label, to, C.SUPPRESSED,
                           "skipped: the number is on the opt-out list (--suppress)")]
            continue
        if r.status != valid:
            continue
        entry = seen.get(to)
        if entry is None:
            entry = seen[to] = [r, 0]
        else:
            earlier = entry[0]
            if dedupe:
                r.status, r.body = Status.SKIPPED, None
                r.issues = [of(r.row, to_label, to, C.DUPLICATE_SKIPPED,
                               f"skipped: row {earlier.row} already texts {to} (--dedupe)")]
                continue
            if earlier.body[text_field] == r.body[text_field]:
                r.issues.append(of(r.row, to_label, to, C.DUPLICATE_MESSAGE,
                                   f"row {earlier.row} sends {to} the very same text: they would get it "
                                   "twice; remove one or use --dedupe"))
            else:
                r.issues.append(of(r.row, to_label, to, C.DUPLICATE_RECIPIENT,
                                   f"row {earlier.row} also texts {to}; use --dedupe to send only the first"))
        if sender_field not in r.body:
            entry[1] += 1
            if entry[1] > MAX_LEASES_PER_RECIPIENT:
                r.status, r.body = Status.INVALID, None
                r.issues.append(of(
                    r.row, "From", "", C.LEASE_LIMIT,
                    f"message {entry[1]} to {to} from a leased (blank) sender; the API allows "
                    f"{MAX_LEASES_PER_RECIPIENT} at once: set a From for these rows, or send them later",
                ))


def _mostly_countries(checker: RowChecker) -> bool:
    """Whether most rows have a Country cell: the check by columns hands such rows back to the row-by-row
    rules one at a time, so the row-by-row check (on every core) is quicker for such a sheet (200,000 rows
    with a Country cell on each: 5.9 s instead of 6.9 s). A sheet too big to hold stays by columns."""
    index, rows = checker.country_index, checker.sheet.rows
    if index is None or getattr(rows, "streamed", None) is not None:
        return False
    column = rows.columns[index] if isinstance(rows, ColumnRows) else (cells[index] for cells in rows)
    return 2 * sum(1 for cell in column if cell.strip()) > len(rows)


def check(sheet: Sheet, options: CheckOptions, workers: int = 1, helpers: Helpers | None = None, *,
          by_columns: bool | None = None) -> Report:
    """Validate every row of a loaded ``sheet`` (see :mod:`batchsms.api` for the public entry points).

    ``workers > 1``, or ``helpers`` started earlier with :func:`parallel.start_helpers`,
    checks large sheets on several processes. A large sheet whose run the check by columns
    covers (:mod:`batchsms.columnar`) is checked that way, with the same verdicts;
    ``by_columns`` (or the environment variable ``BATCHSMS_CHECK=rows|columns``, for tests)
    forces one path or the other.
    """
    from .parallel import check_rows  # parallel imports this module for RowChecker

    if options.now is None:  # one clock for every row, whichever process checks it
        options = replace(options, now=time.time())
    checker = RowChecker(sheet, options)
    quiet = quiet_hours(options.quiet_hours, options.quiet_days)
    check_policy(options.quiet_policy)
    selection = Selection.of(sheet, where=options.where, consent_column=options.consent_column,
                             skip_empty=options.skip_empty, locale=options.locale, country=options.country)
    if by_columns is None and os.environ.get("BATCHSMS_CHECK") in ("rows", "columns"):
        by_columns = os.environ["BATCHSMS_CHECK"] == "columns"
    least = COLUMNAR_MIN_ROWS if sheet.kind == "csv" else COLUMNAR_MIN_WORKBOOK_ROWS
    if by_columns or (by_columns is None and len(sheet.rows) >= least and not _mostly_countries(checker)):
        from . import columnar  # numpy and pandas: imported only for a sheet this big

        if columnar.supported(checker, options, selection.active, quiet):
            with gc_paused():  # a helper process, if started, judges half of a big recipient column
                return columnar.check_columns(checker, options, helpers)
    with gc_paused():
        results = check_rows(checker, workers, helpers)
        apply_other_readings(results, checker)
        apply_sheet_rules(results, sheet)
        selection.apply(results, sheet)
        if options.marketing or any(source.field == F.FROM for source in checker.sources):
            check_marketing(results, marketing=options.marketing, sender_label=sheet.column_of(F.FROM) or "From",
                            text_label=checker.text_label)
        apply_send_times(results, sheet, zone=checker.zone, now=checker.now, quiet=quiet, policy=options.quiet_policy,
                         marketing=options.marketing)
        apply_batch_rules(results, options, sheet.column_of(F.TO) or "To")
    return Report(results, sheet)
