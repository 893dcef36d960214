"""Validate every API field of every row into a Report (the first three arrows of the pipeline).

Row rules run one row at a time; batch rules (suppression, duplicates, the
5-lease limit) run afterwards over all rows in sheet order, because they need
to know what came before.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import fields as F
from . import rules
from .errors import ConfigError, SheetError
from .perf import gc_paused
from .phones import PhoneBook
from .report import INVALID, SKIPPED, VALID, Issue, Report, RowResult
from .rules import ERROR, WARNING, Problem
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
            self.sources.append((api_field, index, default, label, OPTION_FOR_FIELD.get(api_field, api_field)))
        self._checks: dict[str, Callable[[str], tuple[object, list[Problem]]]] = {
            F.TO: lambda v: rules.check_to(v, self.book),
            F.FROM: lambda v: rules.check_from(v, self.book),
            F.SCHEDULE: lambda v: rules.check_schedule(v, self.zone, self.now),
            F.DELIVERY_RECEIPT: lambda v: rules.check_bool(v, F.DELIVERY_RECEIPT),
            F.DR_WEBHOOK_URI: lambda v: rules.check_url(v, F.DR_WEBHOOK_URI),
            F.DR_WEBHOOK_METHOD: lambda v: rules.check_method(v, F.DR_WEBHOOK_METHOD),
            F.EXTERNAL_ID: lambda v: (v, []),
            F.FORWARD_TO_SMS: lambda v: rules.check_forward_to_sms(v, self.book),
            F.FORWARD_FROM_SMS: lambda v: rules.check_forward_from_sms(v, self.book),
            F.FORWARD_TO_EMAIL: lambda v: rules.check_email(v, F.FORWARD_TO_EMAIL),
            F.FORWARD_FROM_EMAIL: lambda v: rules.check_email(v, F.FORWARD_FROM_EMAIL),
            F.WEBHOOK_URI: lambda v: rules.check_url(v, F.WEBHOOK_URI),
            F.WEBHOOK_METHOD: lambda v: rules.check_method(v, F.WEBHOOK_METHOD),
        }

    def check(self, index: int) -> RowResult:
        """The verdict on ``sheet.rows[index]``."""
        cells = self.sheet.rows[index]
        row = self.sheet.row_numbers[index]
        issues: list[Issue] = []
        body: dict[str, object] = {}
        labels: dict[str, tuple[str, str]] = {}  # field -> (column label, raw value)

        def note(label: str, value: str, problems: list[Problem]) -> None:
            issues.extend(Issue(row, label, value, p.severity, p.code, p.message) for p in problems)

        for api_field, col, default, label, option in self.sources:
            raw = cells[col].strip() if col is not None else ""
            if raw:
                where = label
            elif default:
                raw, where = default, option
            else:
                where = label or option
            labels[api_field] = (where, raw)
            if not raw and api_field != F.TO:
                continue
            value, problems = self._checks[api_field](raw)
            note(where, raw, problems)
            if value is not None and (value != "" or api_field == F.FROM):
                body[api_field] = value
        if F.TO not in labels:  # defensive: load() guarantees a recipient column
            note("To", "", [Problem(ERROR, "missing-recipient", "no recipient column")])

        text = self._text(cells, row, issues)
        counted = None
        if text is not None:
            counted, problems = rules.check_text(text, self.options.max_segments)
            note(self.text_label, text, problems)
            body[F.TEXT] = text
        self._cross_field(body, labels, row, issues)
        if body.get(F.FROM) == "":
            del body[F.FROM]  # blank From: a leased number, so the field is left out
        to = body.get(F.TO)
        if any(i.severity == ERROR for i in issues):
            return RowResult(index, row, INVALID, None, counted, issues, to=to)
        ordered = {f: body[f] for f in F.FIELDS if f in body}
        return RowResult(index, row, VALID, ordered, counted, issues, to=to)

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
    first: dict[str, RowResult] = {}
    leases: Counter[str] = Counter()
    for r in results:
        if r.to is not None and r.to in options.suppress:
            r.status, r.body = SKIPPED, None
            r.issues = [Issue(r.row, to_label, r.to, WARNING, "suppressed",
                              "skipped: the number is on the suppression list (--suppress)")]
            continue
        if r.status != VALID:
            continue
        to = r.body[F.TO]
        earlier = first.get(to)
        if earlier is None:
            first[to] = r
        elif options.dedupe:
            r.status, r.body = SKIPPED, None
            r.issues = [Issue(r.row, to_label, to, WARNING, "duplicate-skipped",
                              f"skipped: row {earlier.row} already texts {to} (--dedupe)")]
            continue
        elif earlier.body[F.TEXT] == r.body[F.TEXT]:
            r.issues.append(Issue(r.row, to_label, to, WARNING, "duplicate-message",
                                  f"row {earlier.row} sends {to} the very same text: they would get it "
                                  "twice; remove one or use --dedupe"))
        else:
            r.issues.append(Issue(r.row, to_label, to, WARNING, "duplicate-recipient",
                                  f"row {earlier.row} also texts {to}; use --dedupe to send only the first"))
        if F.FROM not in r.body:
            leases[to] += 1
            if leases[to] > MAX_LEASES_PER_RECIPIENT:
                r.status, r.body = INVALID, None
                r.issues.append(Issue(
                    r.row, "From", "", ERROR, "lease-limit",
                    f"this would be lease number {leases[to]} to {to}; the API allows "
                    f"{MAX_LEASES_PER_RECIPIENT} at once: give these rows a From, or send them later",
                ))


def check_sheet(sheet: Sheet, options: CheckOptions) -> Report:
    """Validate every row of ``sheet``."""
    checker = RowChecker(sheet, options)
    with gc_paused():
        results = [checker.check(i) for i in range(len(sheet.rows))]
        apply_batch_rules(results, options, sheet.column_of(F.TO) or "To")
    return Report(results)


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
