"""Validate every API field of every row into a Report (the first three arrows of the pipeline).

Row rules run one row at a time; batch rules (suppression, duplicates, the
5-lease limit) run afterwards over all rows in sheet order, because they need
to know what came before.
"""

from __future__ import annotations

import marshal
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import fields as F
from . import rules
from .errors import ConfigError, SheetError
from .perf import gc_paused
from .phones import PhoneBook
from .report import INVALID, SKIPPED, VALID, Issue, Report, RowResult
from .rules import ERROR, WARNING, Problem
from .segments import Segments
from .sheet import Sheet
from .template import MessageTemplate, MissingVariable, RenderError

MAX_LEASES_PER_RECIPIENT = 5

#: The option that gives each field to every row (named in issues when the value came from it).
OPTION_FOR_FIELD = {
    F.FROM: "--from",
    F.SCHEDULE: "--schedule",
    F.DELIVERY_RECEIPT: "--delivery-receipt",
    F.DR_WEBHOOK_URI: "--delivery-receipt-webhook",
    F.DR_WEBHOOK_METHOD: "--delivery-receipt-webhook-method",
    F.WEBHOOK_URI: "--webhook",
    F.WEBHOOK_METHOD: "--webhook-method",
    F.FORWARD_TO_SMS: "--forward-to-sms",
    F.FORWARD_FROM_SMS: "--forward-from-sms",
    F.FORWARD_TO_EMAIL: "--forward-to-email",
    F.FORWARD_FROM_EMAIL: "--forward-from-email",
}


@dataclass
class CheckOptions:
    """Everything besides the sheet that decides a row's verdict."""

    country: str = "AU"
    timezone: str = "UTC"
    defaults: dict[str, str] = field(default_factory=dict)  # API field -> value for every row
    template: MessageTemplate | None = None
    max_segments: int = 10
    dedupe: bool = False
    suppress: frozenset[str] = frozenset()  # E.164 numbers never to text
    now: float | None = None  # epoch seconds the schedule window is measured from

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"--timezone {self.timezone}: unknown time zone; use an IANA name such as Australia/Sydney"
            ) from None


class RowChecker:
    """Checks single rows of one sheet; holds what is worked out once per run."""

    def __init__(self, sheet: Sheet, options: CheckOptions) -> None:
        self.sheet = sheet
        self.options = options
        try:
            self.book = PhoneBook(options.country)
        except ValueError as exc:
            raise ConfigError(f"--country: {exc}") from None
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
        # (field, column index or None, default value, label for the cell, label for the default)
        self.sources = []
        for api_field in F.FIELDS:
            if api_field == F.TEXT:
                continue
            index = sheet.columns.get(api_field)
            default = options.defaults.get(api_field, "").strip()
            if index is None and not default:
                continue
            label = sheet.header[index] if index is not None else None
            option = OPTION_FOR_FIELD.get(api_field, api_field)
            self.sources.append((api_field, index, default, label, option, self._rule(api_field)))
        self.max_segments = options.max_segments
        # A plain-substitution template renders with one call and cannot fail: skip the wrappers.
        self.plain_render = self.template.render_plain if self.template is not None else None
        self.needs_cross_check = any(f in (F.FROM, F.DELIVERY_RECEIPT) for f, *_ in self.sources)

    def _rule(self, api_field: str) -> Callable[[str], tuple[object, tuple[Problem, ...] | list[Problem]]] | None:
        """The rule for one field, bound to this run's phone book, time zone and clock."""
        book, zone, now = self.book, self.zone, self.now
        return {
            F.TO: partial(rules.check_to, book=book),
            F.FROM: lambda v: rules.check_from(v, book),
            F.SCHEDULE: lambda v: rules.check_schedule(v, zone, now),
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
        }[api_field]

    def check(self, index: int) -> RowResult:
        """The verdict on ``sheet.rows[index]`` (the hot loop of a million-row check: keep it lean)."""
        cells = self.sheet.rows[index]
        row = self.sheet.row_numbers[index]
        issues: list[Issue] = []
        body: dict[str, object] = {}
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
            issues.append(Issue(row, "To", "", ERROR, "missing-recipient", "no recipient column"))

        plain = self.plain_render
        text = plain(cells) if plain is not None else self._text(cells, row, issues)
        counted = None
        if text is not None:
            counted, problems = rules.check_text(text, self.max_segments)
            if problems:
                issues.extend([Issue(row, self.text_label, text, *p) for p in problems])
            body[F.TEXT] = text
        if cross_check:
            self._cross_field(body, labels, row, issues)
            if body.get(F.FROM) == "":
                del body[F.FROM]  # blank From: a leased number, so the field is left out
        to = body.get(F.TO)
        if issues and any(i.severity == ERROR for i in issues):
            return RowResult(index, row, INVALID, None, counted, issues, to)
        return RowResult(index, row, VALID, body, counted, issues, to)

    def _text(self, cells: list[str], row: int, issues: list[Issue]) -> str | None:
        if self.template is None:
            return cells[self.text_column]
        try:
            return self.template.render(cells)
        except (MissingVariable, RenderError) as exc:
            code = "missing-variable" if isinstance(exc, MissingVariable) else "template-error"
            issues.append(Issue(row, self.text_label, "", ERROR, code, str(exc)))
            return None

    @staticmethod
    def _cross_field(body: dict, labels: dict, row: int, issues: list[Issue]) -> None:
        sender = body.get(F.FROM)
        to = body.get(F.TO)
        if sender:
            for api_field in F.LEASE_ONLY:
                where, raw = labels.get(api_field, ("", ""))
                if raw:
                    issues.append(Issue(
                        row, where, raw, ERROR, "lease-only-field",
                        f"{api_field} works only when sending from a leased number, but From is "
                        f"{sender!r}; leave From blank or remove {api_field}",
                    ))
            if to and to.startswith("+1") and not sender.startswith("+"):
                where, raw = labels[F.FROM]
                issues.append(Issue(
                    row, where, raw, WARNING, "alphanumeric-sender-us",
                    "US and Canadian networks do not show alphanumeric senders: a leased number "
                    "is used instead, so replies go there",
                ))
        if body.get(F.DELIVERY_RECEIPT) is False and F.DR_WEBHOOK_URI in body:
            where, raw = labels[F.DR_WEBHOOK_URI]
            issues.append(Issue(
                row, where, raw, WARNING, "receipt-webhook-unused",
                "DeliveryReceipt is false, so this webhook is never called; set DeliveryReceipt true",
            ))


def apply_batch_rules(results: list[RowResult], options: CheckOptions, to_label: str = "To") -> None:
    """Suppression, duplicates and the lease limit, in sheet order."""
    seen: dict[str, list] = {}  # recipient -> [first valid RowResult, leases so far]
    suppress, dedupe = options.suppress, options.dedupe
    sender_field, text_field = F.FROM, F.TEXT  # locals: this loop runs once per row of the sheet
    for r in results:
        to = r.to
        if to is None:
            continue
        if suppress and to in suppress:
            r.status, r.body = SKIPPED, None
            r.issues = [Issue(r.row, to_label, to, WARNING, "suppressed",
                              "skipped: the number is on the suppression list (--suppress)")]
            continue
        if r.status != VALID:
            continue
        entry = seen.get(to)
        if entry is None:
            entry = seen[to] = [r, 0]
        else:
            earlier = entry[0]
            if dedupe:
                r.status, r.body = SKIPPED, None
                r.issues = [Issue(r.row, to_label, to, WARNING, "duplicate-skipped",
                                  f"skipped: row {earlier.row} already texts {to} (--dedupe)")]
                continue
            if earlier.body[text_field] == r.body[text_field]:
                r.issues.append(Issue(r.row, to_label, to, WARNING, "duplicate-message",
                                      f"row {earlier.row} sends {to} the very same text: they would get it "
                                      "twice; remove one or use --dedupe"))
            else:
                r.issues.append(Issue(r.row, to_label, to, WARNING, "duplicate-recipient",
                                      f"row {earlier.row} also texts {to}; use --dedupe to send only the first"))
        if sender_field not in r.body:
            entry[1] += 1
            if entry[1] > MAX_LEASES_PER_RECIPIENT:
                r.status, r.body = INVALID, None
                r.issues.append(Issue(
                    r.row, "From", "", ERROR, "lease-limit",
                    f"this would be lease number {entry[1]} to {to}; the API allows "
                    f"{MAX_LEASES_PER_RECIPIENT} at once: give these rows a From, or send them later",
                ))


def check_sheet(sheet: Sheet, options: CheckOptions, workers: int = 1, helpers: Helpers | None = None) -> Report:
    """Validate every row of ``sheet``.

    ``workers > 1`` (or ``helpers`` started earlier with :func:`start_helpers`)
    checks large sheets on several processes. Helper processes come from a fork
    server, which imports the caller's ``__main__`` module: only use them from a
    program whose main module is guarded by ``if __name__ == "__main__"`` (the
    ``batchsms`` command is).
    """
    if options.now is None:  # one clock for every row, whichever process checks it
        options = replace(options, now=time.time())
    checker = RowChecker(sheet, options)
    with gc_paused():
        results = check_rows(checker, workers, helpers)
        apply_batch_rules(results, options, sheet.column_of(F.TO) or "To")
    return Report(results)


#: Below this many rows a second process costs more than it saves.
PARALLEL_MIN_ROWS = 50_000
#: The share of rows each helper process takes: it also pays for starting and for pickling.
HELPER_SHARE = 0.42


def _pack(r: RowResult, offset: int) -> tuple:
    """A RowResult as plain tuples, which pickle several times faster than slotted dataclasses."""
    seg = tuple(r.segments) if r.segments else None
    issues = [(i.row, i.column, i.value, i.severity, i.code, i.message) for i in r.issues] if r.issues else None
    return r.index + offset, r.row, r.status, r.body, seg, issues, r.to


def _check_slice(sheet: Sheet, rows: bytes, options: CheckOptions, offset: int) -> bytes:
    """Run in a helper process: check a slice of the sheet, return packed results.

    Rows and results cross the process boundary as ``marshal`` data (plain lists,
    tuples, dicts and strings), which measured 8x faster to write than pickle here.
    """
    with gc_paused():
        sheet.rows = marshal.loads(rows)
        checker = RowChecker(sheet, options)
        return marshal.dumps([_pack(checker.check(i), offset) for i in range(len(sheet.rows))])


class Helpers:
    """Helper processes for a parallel check.

    Started before the sheet is loaded, so that their start-up (a fork server, a
    fresh interpreter importing batchsms) overlaps the loading instead of delaying
    the check: measured here, a helper started on demand began checking 1.8 s late.
    """

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["batchsms.check"])
        self.count = count
        self.pool = ProcessPoolExecutor(count, mp_context=context)
        for _ in range(count):  # a first task makes the pool start its processes now
            self.pool.submit(_warm_up)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Helpers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _warm_up() -> None:
    PhoneBook("AU")  # loads the metadata this process will most likely need


def start_helpers(workers: int) -> Helpers | None:
    """Helpers for ``workers`` processes in all (this one included), or None where that is not possible."""
    if workers <= 1 or "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    return Helpers(workers - 1)


def check_rows(checker: RowChecker, workers: int = 1, helpers: Helpers | None = None) -> list[RowResult]:
    """Check every row; with several workers, helper processes check the tail while this one checks the head.

    Rows are independent (batch rules run afterwards, in order), so slices can be
    checked anywhere. Helpers come from a fork server and get their slice by
    pickle: a plain fork of this process would share its gigabyte of rows
    copy-on-write, and the page copies measured here slowed both processes by
    half. Small sheets, or a machine without fork, run everything here.
    """
    sheet = checker.sheet
    total = len(sheet.rows)
    if total < PARALLEL_MIN_ROWS:
        return [checker.check(i) for i in range(total)]
    if helpers is None:
        with start_helpers(workers) or nullcontext() as started:
            if started is None:
                return [checker.check(i) for i in range(total)]
            return check_rows(checker, workers, started)
    count = helpers.count
    share = min(HELPER_SHARE, 1 / (count + 1))
    size = int(total * share)
    own = total - size * count
    pool = helpers.pool
    futures = []
    for k in range(count):
        lo, hi = own + k * size, own + (k + 1) * size if k < count - 1 else total
        part = Sheet(sheet.path, sheet.header, [], sheet.row_numbers[lo:hi], sheet.kind, columns=sheet.columns)
        futures.append(pool.submit(_check_slice, part, marshal.dumps(sheet.rows[lo:hi]), checker.options, lo))
    results = [checker.check(i) for i in range(own)]
    segments_seen: dict[tuple, Segments] = {}
    for future in futures:
        for index, row, status, body, seg, issues, to in marshal.loads(future.result()):
            counted = None
            if seg is not None:
                counted = segments_seen.get(seg)
                if counted is None:
                    counted = segments_seen[seg] = Segments(*seg)
            issue_list = [Issue(*i) for i in issues] if issues else []
            results.append(RowResult(index, row, status, body, counted, issue_list, to))
    return results


def load_suppression(path: str | Path, country: str) -> frozenset[str]:
    """Every cell of a CSV/XLSX/TXT file that is a valid phone number, in E.164."""
    from .sheet import CSV_SUFFIXES, read_csv_records, read_workbook_records

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--suppress {path}: no such file")
    if path.suffix.lower() in CSV_SUFFIXES or path.suffix.lower() not in (".xlsx", ".xlsm", ".xls", ".ods"):
        records, _, _ = read_csv_records(path, None, None)
    else:
        records, _ = read_workbook_records(path, None)
    book = PhoneBook(country)
    numbers = set()
    for record in records:
        for cell in record:
            if cell.strip():
                phone = book.normalise(cell)
                if phone.valid:
                    numbers.add(phone.e164)
    return frozenset(numbers)
