"""The campaign summary a manager reads: figures from a results file, as one HTML page and as label/value pairs.

After a send, the question is no longer "which row has which problem" but "how did it go":
how many people the campaign reached, in which countries, what it cost, how many messages
were delivered, and what went wrong. This module answers it from the rows of a results file
(:func:`rows_from_results`), so it works on any results file batchsms wrote, today's or an
old one, and needs neither the journal nor the API.

* :func:`figures` counts: recipients by country and line type, the funnel rows → valid →
  sent → delivered with every other outcome beside it, the delivery rate, segments and cost
  by country, problems by code, deliveries over time (hourly in the run's zone, daily when
  the deliveries span more than three days).
* :meth:`Figures.as_table` gives the same figures as (label, value) pairs, the shape of the
  results workbook's Summary sheet (numbers as numbers, so a spreadsheet can add them up).
* :func:`render_html` writes ONE self-contained page: inline CSS, inline SVG charts, no
  script, no font, no image, no link to anywhere, and a Content-Security-Policy that forbids
  loading anything, so it opens the same from a file, an e-mail attachment or a printer. Every
  chart has a table with its numbers beside it (screen readers, printing in black and white).

Why templates and not a chart library: the charts are horizontal bars and one column chart,
~40 lines of SVG in a Jinja2 template (Jinja2 is already a dependency and escapes every value
it prints); a plotting library would add megabytes and, for most of them, JavaScript.

A results file is hostile input like any sheet: its cells are printed only through Jinja2's
autoescaping, and every figure is read defensively. A column that is missing (an older file
without Delivery, Delivered at, Cost …) is empty, never an error; a cell that does not hold
what its column should (a user's own "Delivery" column holding addresses) is read as empty.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import jinja2

from . import __version__
from .clock import abbreviation, format_local, local
from .codes import CATALOGUE, DONE, Status
from .dates import read_when
from .errors import SheetError
from .fields import header_key
from .numbers import KINDS, describe
from .perf import gc_paused
from .phones import country_name, region_for
from .pricing import CENT, DEFAULT_CURRENCY, Prices, format_money
from .sheet import DELIMITERS, WORKBOOK_SUFFIXES, read_csv_records, read_workbook_records

#: The API's delivery states (``GET /v2/Messages/{sid}`` Status of a sent message).
DELIVERY_STATES = ("Processing", "Submitted", "Delivered", "Failed")
DELIVERED, UNDELIVERED = "Delivered", "Failed"
#: A delivery state that will not change any more.
FINAL_DELIVERY = frozenset({DELIVERED, UNDELIVERED})
#: Deliveries spread over more than this are counted per day, else per hour.
HOURLY_SPAN = 3 * 86400
#: How many failure reasons the page lists (the rest are counted as "other reasons").
MAX_REASONS = 10
#: A reason is cut to this many characters: an API error text is a line, not a page.
MAX_REASON = 200

_DONE = frozenset(str(s) for s in DONE)
_STATUSES = frozenset(str(s) for s in Status)
_LINE_TYPES = frozenset(KINDS.values()) - {"invalid"}


@dataclass(frozen=True, slots=True)
class CampaignRow:
    """One row of a results file as the summary counts it.

    ``status`` is a row state of :class:`batchsms.codes.Status` (``sent``, ``failed`` …);
    ``delivery`` one of :data:`DELIVERY_STATES` or None when no delivery report was read;
    times are epoch seconds; ``cost`` is exact (not rounded) in ``currency``; ``problems``
    are catalogue codes; ``error`` is why the row failed (the API's refusal, or the delivery
    error), empty otherwise.
    """

    row: int
    status: str
    country: str = ""
    line_type: str = ""
    segments: int | None = None
    cost: Decimal | None = None
    currency: str = DEFAULT_CURRENCY
    delivery: str | None = None
    delivered_at: float | None = None
    sent_at: float | None = None
    problems: tuple[str, ...] = ()
    error: str = ""


class Spend(NamedTuple):
    """What the messages the API took cost in one country (and currency)."""

    country: str  #: ISO region, "" when not known
    currency: str
    messages: int  #: sent or scheduled
    segments: int
    cost: Decimal | None  #: None when none of these messages has a cost
    unpriced: int  #: messages among them without a cost


class ProblemCount(NamedTuple):
    """How many rows have one problem code, with what the catalogue says it means."""

    code: str
    severity: str
    meaning: str
    rows: int


class Bucket(NamedTuple):
    """Deliveries in one hour or day (``start`` is its first second, epoch)."""

    start: float
    count: int


@dataclass(frozen=True)
class Figures:
    """The campaign in figures; build with :func:`figures`.

    The outcome counts partition the rows: delivered + awaiting + undelivered + failed +
    unknown + pending + held + cancelled + skipped + invalid + other == rows.
    """

    title: str
    zone: dt.tzinfo
    generated_at: float
    source: str
    rows: int
    valid: int  #: rows that passed the check: every row but invalid and skipped ones
    sent: int  #: the API took them: sent and scheduled
    scheduled: int
    delivered: int  #: sent, and the delivery report says Delivered
    undelivered: int  #: sent, and the delivery report says Failed
    awaiting: int  #: sent, and no final delivery report yet (none, Processing or Submitted)
    failed: int  #: the API refused them
    unknown: int  #: the answer never came: maybe sent
    pending: int  #: valid, not sent yet
    held: int
    cancelled: int
    skipped: int
    invalid: int
    other: int  #: a Status this version does not know
    by_country: tuple[tuple[str, int], ...]  #: recipients (valid rows) by ISO region, most first
    by_line_type: tuple[tuple[str, int], ...]
    spend: tuple[Spend, ...]
    segments: int  #: segments of the messages sent
    costs: tuple[tuple[str, Decimal], ...]  #: (currency, total) of the messages sent
    unpriced: int  #: messages sent without a cost
    problems: tuple[ProblemCount, ...]
    reasons: tuple[tuple[str, int], ...]  #: why rows failed or were not delivered, most first
    other_reasons: int  #: rows with a reason beyond :data:`MAX_REASONS`
    deliveries: tuple[Bucket, ...]
    daily: bool  #: deliveries are counted per day (else per hour)

    @property
    def final(self) -> int:
        """Messages sent with a final delivery report (Delivered or Failed): the delivery rate's denominator."""
        return self.delivered + self.undelivered

    @property
    def delivery_rate(self) -> float | None:
        """Delivered ÷ sent messages with a final delivery report; None when none has one yet."""
        return self.delivered / self.final if self.final else None

    def as_table(self) -> list[tuple[str, object]]:
        """The figures as (label, value) pairs for a workbook's Summary sheet (see ``tables.write_table``).

        Counts are ints, the delivery rate a percentage (96.2), money a float rounded to
        cents with its currency in the label, so a spreadsheet can compute with each.
        """
        rate = self.delivery_rate
        table: list[tuple[str, object]] = [
            ("Campaign", self.title), ("Summary made", format_local(self.generated_at, self.zone)),
            ("Time zone", _zone_name(self.zone)), ("Rows", self.rows), ("Rows valid", self.valid),
            ("Rows sent", self.sent - self.scheduled), ("Rows scheduled", self.scheduled),
            ("Delivered", self.delivered), ("Delivery failed", self.undelivered),
            ("Delivery pending", self.awaiting),
            ("Delivery rate, % of sent messages with a final report",
             _share(self.delivered, self.final) if rate is not None else "no final delivery report yet"),
            ("Rows failed", self.failed), ("Rows unknown", self.unknown), ("Rows pending", self.pending),
        ]
        table += [(label, n) for label, n in (("Rows held", self.held), ("Rows cancelled", self.cancelled))
                  if n]
        table += [("Rows skipped", self.skipped), ("Rows invalid", self.invalid)]
        if self.other:
            table.append(("Rows with another status", self.other))
        table.append(("Segments sent", self.segments))
        for currency, total in self.costs:
            table.append((f"Cost of messages sent ({currency})", _cents(total)))
        if self.unpriced:
            table.append(("Messages sent without a cost", self.unpriced))
        table += [(f"Recipients: {country or 'country not known'}", n) for country, n in self.by_country]
        table += [(f"Line type: {kind or 'not known'}", n) for kind, n in self.by_line_type]
        for s in self.spend:
            where = s.country or "country not known"
            table += [(f"Messages sent: {where}", s.messages), (f"Segments sent: {where}", s.segments)]
            if s.cost is not None:
                table.append((f"Cost: {where} ({s.currency})", _cents(s.cost)))
        table += [(f"Problem: {p.code} ({p.severity})", p.rows) for p in self.problems]
        table += [(f"Failure reason: {reason}", n) for reason, n in self.reasons]
        if self.other_reasons:
            table.append(("Failure reason: other reasons", self.other_reasons))
        table += [(f"Delivered: {self.bucket_label(b.start)}", b.count) for b in self.deliveries if b.count]
        return table

    def bucket_label(self, start: float) -> str:
        """``Tue 1 Dec 2026 10:00 AEDT`` for an hour, ``Tue 1 Dec 2026`` for a day."""
        text = format_local(start, self.zone)
        return text.rsplit(" ", 2)[0] if self.daily else text


def _share(part: int, whole: int) -> float:
    """``part`` of ``whole`` in percent to one decimal, never rounded to 100 for less than all nor to 0 for some."""
    share = round(100 * part / whole, 1)
    if share == 100 and part < whole:
        return 99.9
    return 0.1 if share == 0 and part else share


def _cents(amount: Decimal) -> float:
    return float(amount.quantize(CENT))


def _zone_name(zone: dt.tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


# --------------------------------------------------------------------------- counting


def figures(rows: Iterable[CampaignRow], *, zone: dt.tzinfo, title: str, generated_at: float | dt.datetime,
            source: str = "") -> Figures:
    """Count ``rows`` (in one pass) into :class:`Figures`; ``zone`` is the run's, for the times shown."""
    if isinstance(generated_at, dt.datetime):
        generated_at = generated_at.timestamp()
    status_counts: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    messages: Counter[tuple[str, str]] = Counter()
    segments: Counter[tuple[str, str]] = Counter()
    costs: dict[tuple[str, str], Decimal] = {}
    unpriced: Counter[tuple[str, str]] = Counter()
    problems: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    delivered_at: list[float] = []
    total = 0
    for r in rows:
        total += 1
        status = r.status
        status_counts[status] += 1
        if status not in (Status.INVALID, Status.SKIPPED):
            countries[r.country] += 1
            lines[r.line_type] += 1
        for code in dict.fromkeys(r.problems):
            problems[code] += 1
        if status in _DONE:
            key = (r.country, r.currency)
            messages[key] += 1
            segments[key] += r.segments or 0
            if r.cost is None:
                unpriced[key] += 1
            else:
                costs[key] = costs.get(key, Decimal(0)) + r.cost
            if r.delivery == DELIVERED:
                outcomes["delivered"] += 1
                if r.delivered_at is not None:
                    delivered_at.append(r.delivered_at)
            elif r.delivery == UNDELIVERED:
                outcomes["undelivered"] += 1
                reasons[_reason(r.error, "delivery failed, no reason given")] += 1
            else:
                outcomes["awaiting"] += 1
        elif status == Status.FAILED:
            reasons[_reason(r.error, "refused by the API, no reason given")] += 1
    count = status_counts.get
    known = sum(n for s, n in status_counts.items() if s in _STATUSES)
    invalid, skipped = count(Status.INVALID.value, 0), count(Status.SKIPPED.value, 0)
    by_reason = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    spend = tuple(Spend(country, currency, n, segments[(country, currency)], costs.get((country, currency)),
                        unpriced[(country, currency)])
                  for (country, currency), n in sorted(messages.items(), key=lambda kv: (-kv[1], kv[0])))
    totals: dict[str, Decimal] = {}
    for (_, currency), amount in costs.items():
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    buckets, daily = _deliveries(delivered_at, zone)
    return Figures(
        title=title, zone=zone, generated_at=float(generated_at), source=source, rows=total,
        valid=total - invalid - skipped, sent=sum(count(s, 0) for s in _DONE),
        scheduled=count(Status.SCHEDULED.value, 0), delivered=outcomes["delivered"],
        undelivered=outcomes["undelivered"], awaiting=outcomes["awaiting"], failed=count(Status.FAILED.value, 0),
        unknown=count(Status.UNKNOWN.value, 0) + count(Status.STARTED.value, 0),
        pending=count(Status.PENDING.value, 0) + count(Status.VALID.value, 0), held=count(Status.HELD.value, 0),
        cancelled=count(Status.CANCELLED.value, 0), skipped=skipped, invalid=invalid, other=total - known,
        by_country=_most_first(countries), by_line_type=_most_first(lines), spend=spend,
        segments=sum(segments.values()), costs=tuple(sorted(totals.items())), unpriced=sum(unpriced.values()),
        problems=tuple(_problem(code, n) for code, n in sorted(problems.items(), key=lambda kv: (-kv[1], kv[0]))),
        reasons=tuple(by_reason[:MAX_REASONS]), other_reasons=sum(n for _, n in by_reason[MAX_REASONS:]),
        deliveries=buckets, daily=daily,
    )


def _most_first(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    """Most first; ties by name; the unknown ("") last whatever its count."""
    return tuple(sorted(counts.items(), key=lambda kv: (kv[0] == "", -kv[1], kv[0])))


def _reason(text: str, fallback: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_REASON:
        text = text[:MAX_REASON - 1] + "…"
    return text or fallback


def _problem(code: str, rows: int) -> ProblemCount:
    entry = CATALOGUE.get(code)
    if entry is None:
        return ProblemCount(code, "", "", rows)
    return ProblemCount(code, str(entry.severity), entry.meaning, rows)


def _bucket_start(epoch: float, zone: dt.tzinfo, daily: bool) -> float:
    """The first second of the wall-clock hour (or day) ``epoch`` falls in, in ``zone``."""
    when = local(epoch, zone)
    return when.replace(hour=0 if daily else when.hour, minute=0, second=0).timestamp()


def _deliveries(times: list[float], zone: dt.tzinfo) -> tuple[tuple[Bucket, ...], bool]:
    """Deliveries per hour (per day over more than three days), every hour or day between the first and last.

    Buckets are wall-clock hours and days of ``zone``, so a day is 23 or 25 hours long at a
    daylight-saving change and the repeated hour of autumn is a bucket of its own.
    """
    if not times:
        return (), False
    daily = max(times) - min(times) > HOURLY_SPAN
    counts = Counter(_bucket_start(t, zone, daily) for t in times)
    step = 30 * 3600 if daily else 3600  # lands in the next day (23-25 h) or the next hour
    last = max(counts)
    starts = [min(counts)]
    while starts[-1] < last:
        ahead = starts[-1] + step
        following = _bucket_start(ahead, zone, daily)
        while following <= starts[-1]:  # a half-hour clock change: the next bucket is further on
            ahead += step / 2
            following = _bucket_start(ahead, zone, daily)
        starts.append(following)
    return tuple(Bucket(start, counts.get(start, 0)) for start in starts), daily


# --------------------------------------------------------------------------- reading a results file

#: The result columns read, by the name batchsms gives them. Columns the results may not have yet
#: (an older file) are read as empty.
COLUMNS = ("Status", "To", "Segments", "Error", "Sends at", "Delivery", "Delivered at", "Delivery error",
           "Country", "Line type", "Cost", "Problem")
#: How far down a results file its header is looked for (the sheet's title rows come first).
HEADER_SEARCH_ROWS = 1000
#: Distinct times and numbers remembered while a file is read (a million distinct ones would cost memory).
CACHE_LIMIT = 100_000
_MONEY = re.compile(r"(?:[A-Z]{0,3}\$|£|€)?\s*((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)\s*(?:[A-Za-z]{3})?")
_CODE_AT_START = re.compile(r"\s*([a-z0-9]+(?:-[a-z0-9]+)+)\s*(?::|$)")
_ZONE_AT_END = re.compile(r"(.*\d)\s+([A-Za-z]{2,6}|[+-]\d{2}(?::?\d{2})?)")


def _find_header(records: Sequence[Sequence[str]]) -> int | None:
    """The index of the row holding both Status and MessageSid (as batchsms names them, maybe prefixed)."""
    wanted = ({"status", "batchsmsstatus"}, {"messagesid", "batchsmsmessagesid"})
    for index, record in enumerate(records[:HEADER_SEARCH_ROWS]):
        keys = {header_key(cell) for cell in record if cell}
        if all(keys & names for names in wanted):
            return index
    return None


def _columns(header: Sequence[str]) -> dict[str, int]:
    """Where each of :data:`COLUMNS` is: ``batchsms <name>`` (the name was taken by a column of the
    user's sheet), else the last column of that name.

    Result columns come after the sheet's own, from Status on, so a column before Status is the
    user's (a "Cost" of their products, say) and is never read as a result.
    """
    keys = [header_key(h) for h in header]

    def last(key: str, start: int = 0) -> int | None:
        for index in range(len(keys) - 1, start - 1, -1):
            if keys[index] == key:
                return index
        return None

    status = last(header_key("batchsms Status"))
    if status is None:
        status = last(header_key("Status"))
    if status is None:
        return {}
    found: dict[str, int] = {}
    for name in COLUMNS:
        index = last(header_key(f"batchsms {name}"), status)
        if index is None:
            index = last(header_key(name), status)
        if index is not None:
            found[name] = index
    return found


def rows_from_results(path: str | Path, *, zone: dt.tzinfo | None = None, prices: Prices | None = None,
                      currency: str = DEFAULT_CURRENCY) -> list[CampaignRow]:
    """The rows of a results file batchsms wrote (CSV or workbook), read with the sheet reader.

    ``zone`` reads times written without an offset (Excel date cells, ``Tue 1 Dec 2026 10:00``);
    default UTC. Without a Cost column, ``prices`` (if given) price each row's segments by its
    country. Country and line type come from the To number (the number as sent), else from
    Country and Line type columns. Raises :class:`SheetError` when the file is no results file.
    """
    path = Path(path)
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        records, _ = read_workbook_records(path, None)
        at = _find_header(records)
    else:
        records, _, detected = read_csv_records(path, None, None)
        at = _find_header(records)
        # A title row above the header can make the delimiter look like a ";" that some cells hold
        # (the Error column joins problems with "; "): the one that shows the header is right.
        for delimiter in DELIMITERS:
            if at is not None:
                break
            if delimiter != detected:
                records, _, _ = read_csv_records(path, None, delimiter)
                at = _find_header(records)
    if at is None:
        raise SheetError(f"{path}: no Status and MessageSid columns, so this is not a results file batchsms "
                         "wrote; give the <sheet>.results.csv (or .xlsx) that batchsms send wrote")
    with gc_paused():
        return list(rows_from_table(records[at], records[at + 1:], first_row=at + 2, zone=zone, prices=prices,
                                    currency=currency))


def rows_from_table(header: Sequence[str], rows: Iterable[Sequence[object]], *, first_row: int = 2,
                    zone: dt.tzinfo | None = None, prices: Prices | None = None,
                    currency: str = DEFAULT_CURRENCY) -> Iterator[CampaignRow]:
    """:class:`CampaignRow` for each non-empty row of a results table (``header`` + ``rows``, cells as
    text or typed); ``first_row`` is the row number of the first of ``rows``. See :func:`rows_from_results`."""
    zone = zone or dt.timezone.utc
    where = _columns([str(h) for h in header])
    if "Status" not in where:
        raise SheetError("the table has no Status column, so it is not a batchsms results table")
    currency = prices.currency if prices is not None else currency
    names = [name for name in COLUMNS if name in where]
    missing = dict.fromkeys((name for name in COLUMNS if name not in where), "")
    indexes = [where[name] for name in names]
    width = max(indexes) + 1
    # Times and numbers repeat from row to row (a minute's deliveries, a customer texted twice):
    # each distinct cell is read once, up to CACHE_LIMIT of them.
    times: dict[str, float | None] = {}
    places: dict[tuple[str, str, str], tuple[str, str]] = {}

    def when(text: str) -> float | None:
        if text in times:
            return times[text]
        found = read_time(text, zone)
        if len(times) < CACHE_LIMIT:
            times[text] = found
        return found

    def place(key: tuple[str, str, str]) -> tuple[str, str]:
        found = places.get(key)
        if found is None:
            found = _country_and_line(*key)
            if len(places) < CACHE_LIMIT:
                places[key] = found
        return found

    for number, cells in enumerate(rows, start=first_row):
        if not any(cells):
            continue
        if len(cells) < width:
            cells = list(cells) + [""] * (width - len(cells))
        row = dict(missing)
        for name, index in zip(names, indexes, strict=True):
            value = cells[index]
            row[name] = value.strip() if isinstance(value, str) else "" if value is None else str(value).strip()
        status = row["Status"].lower()
        if status == Status.STARTED:
            status = Status.UNKNOWN.value
        country, line_type = place((row["To"], row["Country"], row["Line type"]))
        segments = _whole_number(row["Segments"])
        cost = _money(row["Cost"]) if "Cost" in where else None
        if cost is None and prices is not None and segments is not None and "Cost" not in where:
            cost = prices.cost(country, segments)
        delivery = _delivery(row["Delivery"])
        error = ""
        if delivery == UNDELIVERED:
            error = row["Delivery error"] or row["Error"]
        elif status == Status.FAILED:
            error = row["Error"]
        codes = _codes(row["Error"]) + _codes(row["Problem"])
        yield CampaignRow(
            row=number, status=status, country=country, line_type=line_type, segments=segments, cost=cost,
            currency=currency, delivery=delivery, delivered_at=when(row["Delivered at"]),
            sent_at=when(row["Sends at"]), problems=tuple(dict.fromkeys(codes)), error=error,
        )


def _country_and_line(to: str, country: str, line: str) -> tuple[str, str]:
    """(region, line type) of the number as sent; else what the Country and Line type cells say."""
    if to.startswith("+"):
        try:
            dialled = describe(to)
        except ValueError:
            pass
        else:
            if dialled.kind != "invalid":
                return dialled.region, dialled.kind
    line = line.lower()
    return (region_for(country) or "") if country else "", line if line in _LINE_TYPES else ""


def _whole_number(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and 0 <= value < 1e9 else None


def _money(text: str) -> Decimal | None:
    """An amount as a results or preview Cost cell holds it (``0.11``, ``A$0.11``, ``1,204.50 AUD``)."""
    match = _MONEY.fullmatch(text)
    if match is None:
        return None
    try:
        return Decimal(match[1].replace(",", ""))
    except InvalidOperation:
        return None


def _delivery(text: str) -> str | None:
    """The delivery state the cell names (any case), or None (also for text that is no state)."""
    folded = text.strip().capitalize()
    return folded if folded in DELIVERY_STATES else None


def _codes(text: str) -> list[str]:
    """Catalogue codes a cell names: ``invalid-phone: …; suppressed: …`` (the Error column) or
    ``invalid-phone, suppressed`` (a list of codes)."""
    if not text:
        return []
    found = []
    for part in re.split(r"[;,\n]", text):
        match = _CODE_AT_START.match(part)
        if match and match[1] in CATALOGUE:
            found.append(match[1])
    return found


def read_time(value: object, zone: dt.tzinfo) -> float | None:
    """Epoch seconds from a time as a results file holds it, or None (``now``, empty, no time).

    Reads ``Tue 1 Dec 2026 10:00 AEDT`` (what batchsms writes; the abbreviation picks the
    reading of a repeated hour), ISO text with or without an offset (Excel date cells read as
    ``2026-12-01 10:00:00``), datetimes, and epoch seconds. Times without an offset are read
    in ``zone``.
    """
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) and value > 1e8 else None
    else:
        text = str(value or "").strip()
        if not text:
            return None
        if text.isdigit():
            return float(text) if len(text) >= 9 else None
        label = None
        match = _ZONE_AT_END.fullmatch(text)
        if match:
            text, label = match[1], match[2]
        found = read_when(text, day_first=True)
        if not isinstance(found, dt.datetime):
            return None
        when = found
        if when.tzinfo is None and label is not None:
            when = _with_label(when, label, zone)
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.timestamp()


def _with_label(naive: dt.datetime, label: str, zone: dt.tzinfo) -> dt.datetime:
    """``naive`` in ``zone`` at the reading whose abbreviation is ``label`` (``+05:30`` is an offset)."""
    if label[0] in "+-":
        digits = label[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        return naive.replace(tzinfo=dt.timezone(-offset if label[0] == "-" else offset))
    for fold in (0, 1):
        when = naive.replace(tzinfo=zone, fold=fold)
        if abbreviation(when) == label:
            return when
    return naive.replace(tzinfo=zone)


# --------------------------------------------------------------------------- the page


class Bar(NamedTuple):
    """One bar of a horizontal bar chart, ready to draw."""

    label: str  #: the whole label (the table's, and the bar's tooltip)
    short: str  #: the label cut to fit beside the bar
    value: str  #: the number as a person reads it
    fraction: float  #: the bar's length, 0-1 of the longest possible
    css: str = ""


class Column(NamedTuple):
    """One column of the deliveries chart, in SVG units."""

    x: float
    y: float
    width: float
    height: float
    title: str


class Tick(NamedTuple):
    x: float
    first: str
    second: str


#: Geometry of the charts (SVG user units; the SVG scales to the page's width).
CHART_WIDTH, LABEL_WIDTH, BAR_WIDTH, ROW_HEIGHT = 720, 190, 400, 28
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 56, 710, 16, 190
MAX_LABEL = 26
MAX_TICKS = 8
MAX_COLUMN = 60.0


def count_text(n: int) -> str:
    """``1,234``."""
    return f"{n:,}"


def percent_text(part: int, whole: int) -> str:
    """``96.2%``; never ``100.0%`` for less than all, nor ``0.0%`` for more than none."""
    if not whole:
        return "–"
    share = 100 * part / whole
    if 0 < share < 0.1:
        return "<0.1%"
    if 99.9 < share < 100:
        return ">99.9%"
    return f"{share:.1f}%" if part != whole else "100%"


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"


def _bars(items: Sequence[tuple[str, int | Decimal, str]], scale: float, css: Sequence[str] | str = "") -> list[Bar]:
    """Bars of (label, amount, shown value), each as long as amount ÷ ``scale``."""
    bars = []
    for index, (label, amount, shown) in enumerate(items):
        style = css if isinstance(css, str) else css[index]
        fraction = float(amount) / scale if scale else 0.0
        bars.append(Bar(label, _short(label), shown, min(max(fraction, 0.0), 1.0), style))
    return bars


def country_label(region: str) -> str:
    """``New Zealand (NZ)``; ``Country not known`` for ""."""
    if not region:
        return "Country not known"
    name = country_name(region)
    return f"{name} ({region})" if name != region else region


def line_label(kind: str) -> str:
    return kind[:1].upper() + kind[1:] if kind else "Not known"


def _outcomes(f: Figures) -> list[tuple[str, int, str, str]]:
    """Every row's outcome: (label, rows, bar style, what it means); together they are all the rows."""
    items = [
        ("Delivered", f.delivered, "good", "the delivery report says Delivered"),
        ("Sent, no final report yet", f.awaiting, "",
         "the API took it; no Delivered or Failed report yet (nor ever, when no delivery receipt was asked for)"),
        ("Not delivered", f.undelivered, "bad", "the API took it; the delivery report says Failed"),
        ("Failed", f.failed, "bad", "the API refused it; it was not sent"),
        ("Unknown", f.unknown, "warn", "the API's answer never came: it may have been sent"),
        ("Pending", f.pending, "muted", "valid, not sent yet"),
        ("Held", f.held, "muted", "kept back until it is due"),
        ("Cancelled", f.cancelled, "muted", "held, then withdrawn"),
        ("Skipped", f.skipped, "muted", "not sent on purpose: opted out, a duplicate, or hidden"),
        ("Invalid", f.invalid, "bad", "not sent: the row has an error"),
        ("Another status", f.other, "muted", "a status this version of batchsms does not know"),
    ]
    return [item for item in items if item[1] or item[0] in ("Delivered", "Failed", "Unknown")]


def _columns_chart(f: Figures) -> tuple[list[Column], list[Tick], list[tuple[float, str]]]:
    """The deliveries-over-time columns, the x labels (at most :data:`MAX_TICKS`) and the y gridlines."""
    buckets = f.deliveries
    if not buckets:
        return [], [], []
    top = max(b.count for b in buckets) or 1
    width = min((PLOT_RIGHT - PLOT_LEFT) / len(buckets), MAX_COLUMN)  # a few hours: bars, not blocks
    height = PLOT_BOTTOM - PLOT_TOP
    gap = min(2.0, width / 4)
    columns, ticks = [], []
    every = math.ceil(len(buckets) / MAX_TICKS)
    for index, b in enumerate(buckets):
        x = PLOT_LEFT + index * width
        h = height * b.count / top
        label = f.bucket_label(b.start)
        columns.append(Column(round(x + gap / 2, 2), round(PLOT_BOTTOM - h, 2), round(width - gap, 2), round(h, 2),
                              f"{label}: {count_text(b.count)} delivered"))
        if index % every == 0:
            words = format_local(b.start, f.zone).split()  # Tue 1 Dec 2026 10:00 AEDT: English names
            day = " ".join(words[:3])
            first, second = (day, "") if f.daily else (words[4], day)
            ticks.append(Tick(round(x + width / 2, 2), first, second))
    grid = [(round(PLOT_BOTTOM - height * value / top, 2), count_text(value))
            for value in sorted({top, top // 2}) if value]
    return columns, ticks, grid


def _page(f: Figures) -> dict:
    """What the template prints: the figures as text, and the charts' bars and columns."""
    rate = f.delivery_rate
    funnel = [("Rows in the sheet", f.rows), ("Passed the check", f.valid), ("Sent (the API took them)", f.sent),
              ("Delivered", f.delivered)]
    outcomes = _outcomes(f)
    countries = [(country_label(c), n, count_text(n)) for c, n in f.by_country]
    lines = [(line_label(k), n, count_text(n)) for k, n in f.by_line_type]
    recipients = sum(n for _, n in f.by_country)
    priced = [s for s in f.spend if s.cost is not None]
    if priced and len({s.currency for s in f.spend}) == 1:
        top = max(s.cost for s in priced if s.cost is not None)
        spend_bars = _bars([(country_label(s.country), s.cost or 0, format_money(s.cost, s.currency)
                             if s.cost is not None else "no cost") for s in f.spend], float(top) or 1.0)
        spend_by = "cost"
    else:
        top_segments = max((s.segments for s in f.spend), default=0)
        spend_bars = _bars([(country_label(s.country), s.segments, f"{count_text(s.segments)} segments")
                            for s in f.spend], top_segments or 1)
        spend_by = "segments"
    columns, ticks, grid = _columns_chart(f)
    cost_text = " + ".join(format_money(total, currency) for currency, total in f.costs) or "not known"
    return {
        "f": f, "version": __version__, "zone": _zone_name(f.zone),
        "zone_now": abbreviation(local(f.generated_at, f.zone)), "generated": format_local(f.generated_at, f.zone),
        "rate": percent_text(f.delivered, f.final) if rate is not None else "–",
        "delivered_of_sent": percent_text(f.delivered, f.sent),
        "cost": cost_text, "count": count_text, "percent": percent_text,
        "funnel": _bars([(label, n, f"{count_text(n)} · {percent_text(n, f.rows)}") for label, n in funnel],
                        f.rows or 1,
                        ["", "", "", "good"]),
        "funnel_rows": [(label, n) for label, n in funnel],
        "outcomes": _bars([(label, n, count_text(n)) for label, n, _, _ in outcomes], f.rows or 1,
                          [css for _, _, css, _ in outcomes]),
        "outcome_rows": [(label, n, meaning) for label, n, _, meaning in outcomes],
        "countries": _bars(countries, max((n for _, n, _ in countries), default=1)),
        "lines": _bars(lines, max((n for _, n, _ in lines), default=1)),
        "recipients": recipients, "country_rows": [(label, n) for label, n, _ in countries],
        "line_rows": [(label, n) for label, n, _ in lines],
        "spend_bars": spend_bars, "spend_by": spend_by,
        "spend_rows": [(country_label(s.country), count_text(s.messages), count_text(s.segments),
                        format_money(s.cost, s.currency) if s.cost is not None else "not known",
                        count_text(s.unpriced) if s.unpriced else "") for s in f.spend],
        "any_unpriced": any(s.unpriced for s in f.spend),
        "columns": columns, "ticks": ticks, "grid": grid,
        "delivery_rows": [(f.bucket_label(b.start), count_text(b.count)) for b in f.deliveries if b.count],
        "bucket": "day" if f.daily else "hour",
        "chart": {"width": CHART_WIDTH, "label": LABEL_WIDTH, "bar": BAR_WIDTH, "row": ROW_HEIGHT,
                  "left": PLOT_LEFT, "right": PLOT_RIGHT, "top": PLOT_TOP, "bottom": PLOT_BOTTOM},
    }


def render_html(figures: Figures) -> str:
    """The summary as one self-contained HTML page (see the module docstring)."""
    return _template().render(**_page(figures))


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    return env.from_string(PAGE)


def write_html(path: str | Path, figures: Figures) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8), through a temporary file so no half page is left."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(render_html(figures), encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


#: The page. Only Jinja2 prints values, with autoescaping on: a cell holding ``<script>`` shows as text.
PAGE = """\
{% macro hbars(id, label, bars) %}
<svg class="chart" role="img" aria-labelledby="{{ id }}-title" viewBox="0 0 {{ chart.width }} \
{{ bars|length * chart.row + 8 }}" preserveAspectRatio="xMinYMin meet">
<title id="{{ id }}-title">{{ label }}</title>
{% for b in bars %}
{% set y = loop.index0 * chart.row + 4 %}
<g class="bar {{ b.css }}">
<title>{{ b.label }}: {{ b.value }}</title>
<text x="0" y="{{ y + 18 }}">{{ b.short }}</text>
<rect x="{{ chart.label }}" y="{{ y + 4 }}" width="{{ '%.1f'|format(b.fraction * chart.bar) }}" height="20" rx="2"/>
<text class="value" x="{{ '%.1f'|format(chart.label + b.fraction * chart.bar + 6) }}" y="{{ y + 18 }}">\
{{ b.value }}</text>
</g>
{% endfor %}
</svg>
{% endmacro %}
{# A section of recipients (rows that passed the check) split one way: a chart, then a table of each part's
   count and share of all recipients. Each call ends in a newline and its line adds one: a blank line after. #}
{% macro share_table(section_id, title, chart_id, chart_title, bars, rows, caption, first_column) %}
<section aria-labelledby="{{ section_id }}">
<h2 id="{{ section_id }}">{{ title }}</h2>
{% if rows %}
{{ hbars(chart_id, chart_title, bars) }}
<table>
<caption>{{ caption }}</caption>
<thead><tr><th scope="col">{{ first_column }}</th><th scope="col" class="n">Recipients</th><th scope="col" \
class="n">Share</th></tr></thead>
<tbody>
{% for label, n in rows %}
<tr><th scope="row">{{ label }}</th><td class="n">{{ count(n) }}</td><td class="n">{{ percent(n, recipients) }}</td>\
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No row passed the check.</p>
{% endif %}
</section>
{% endmacro %}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="generator" content="batchsms {{ version }}">
<title>{{ f.title }}: campaign summary</title>
<style>
:root{color-scheme:light}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1a202c;
background:#fff;margin:0 auto;max-width:60rem;padding:1.5rem}
h1{font-size:1.6rem;margin:0 0 .25rem}
h2{font-size:1.2rem;margin:2rem 0 .5rem;border-bottom:1px solid #cbd5e0;padding-bottom:.25rem}
h3{font-size:1rem;margin:1.2rem 0 .3rem}
p{margin:.4rem 0}
.meta,.note{color:#4a5568}
.note{font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:.75rem;margin:1rem 0;padding:0}
.cards div{flex:1 1 10rem;border:1px solid #cbd5e0;border-radius:6px;padding:.6rem .8rem}
.cards dt{font-size:.85rem;color:#4a5568}
.cards dd{margin:0;font-size:1.5rem;font-weight:600}
.cards dd small{display:block;font-size:.8rem;font-weight:400;color:#4a5568}
table{border-collapse:collapse;margin:.5rem 0 1rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:top}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font-size:.9em}
svg.chart{display:block;width:100%;max-width:48rem;height:auto;margin:.5rem 0}
svg text{font-size:13px;fill:#1a202c}
svg .tick{font-size:11px;fill:#4a5568}
.bar rect,.col{fill:#3182ce}
.good rect{fill:#2f855a}
.bad rect{fill:#c53030}
.warn rect{fill:#b7791f}
.muted rect{fill:#a0aec0}
.axis{stroke:#718096;stroke-width:1}
.grid{stroke:#e2e8f0;stroke-width:1}
section{break-inside:avoid;page-break-inside:avoid}
@media print{body{max-width:none;padding:0;font-size:11pt}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}h2{break-after:avoid}}
</style>
</head>
<body>
<header>
<h1>{{ f.title }}</h1>
<p class="meta">Campaign summary made {{ generated }}{% if f.source %} from {{ f.source }}{% endif %}. \
Times are in {{ zone }}.</p>
</header>
<main>
<section aria-labelledby="key-figures">
<h2 id="key-figures">Key figures</h2>
<dl class="cards">
<div><dt>Recipients</dt><dd>{{ count(recipients) }}<small>rows that passed the check, of {{ count(f.rows) }}</small>\
</dd></div>
<div><dt>Sent</dt><dd>{{ count(f.sent) }}<small>{{ percent(f.sent, f.valid) }} of those that passed the check\
</small></dd></div>
<div><dt>Delivered</dt><dd>{{ count(f.delivered) }}<small>{{ delivered_of_sent }} of the messages sent</small>\
</dd></div>
<div><dt>Delivery rate</dt><dd>{{ rate }}<small>of {{ count(f.final) }} sent messages with a final \
delivery report</small></dd></div>
<div><dt>Cost</dt><dd>{{ cost }}<small>{{ count(f.segments) }} segments sent{% if f.unpriced %}; \
without a cost: {{ count(f.unpriced) }}{% endif %}</small></dd></div>
</dl>
<p class="note">The delivery rate is the messages delivered divided by the messages sent whose delivery report \
is final (Delivered or Failed): {{ count(f.delivered) }} of {{ count(f.final) }}. \
{% if f.awaiting %}Sent without a final report yet, so not counted: {{ count(f.awaiting) }}; \
<code>batchsms status</code> asks the API again.{% endif %}</p>
</section>

<section aria-labelledby="funnel">
<h2 id="funnel">From sheet to phone</h2>
{{ hbars("funnel-chart", "Funnel: rows in the sheet, passed the check, sent, delivered", funnel) }}
<table>
<caption>The funnel</caption>
<thead><tr><th scope="col">Stage</th><th scope="col" class="n">Rows</th><th scope="col" class="n">Of all rows\
</th></tr></thead>
<tbody>
{% for label, n in funnel_rows %}
<tr><th scope="row">{{ label }}</th><td class="n">{{ count(n) }}</td><td class="n">{{ percent(n, f.rows) }}</td></tr>
{% endfor %}
</tbody>
</table>
<h3>What happened to every row</h3>
{{ hbars("outcome-chart", "What happened to every row", outcomes) }}
<table>
<caption>Every row's outcome</caption>
<thead><tr><th scope="col">Outcome</th><th scope="col" class="n">Rows</th><th scope="col" class="n">Of all rows\
</th><th scope="col">What it means</th></tr></thead>
<tbody>
{% for label, n, meaning in outcome_rows %}
<tr><th scope="row">{{ label }}</th><td class="n">{{ count(n) }}</td><td class="n">{{ percent(n, f.rows) }}</td>\
<td>{{ meaning }}</td></tr>
{% endfor %}
</tbody>
</table>
</section>

{{ share_table("countries", "Recipients by country", "country-chart", "Recipients by country", countries,
               country_rows, "Recipients (rows that passed the check) by country", "Country") }}
{{ share_table("line-types", "Line types", "line-chart", "Recipients by line type", lines, line_rows,
               "Recipients by line type", "Line type") }}
<section aria-labelledby="spend">
<h2 id="spend">Segments and cost by country</h2>
{% if spend_rows %}
{{ hbars("spend-chart", ("Cost" if spend_by == "cost" else "Segments") ~ " of the messages sent, by country", \
spend_bars) }}
<table>
<caption>Messages sent (the API took them) by country</caption>
<thead><tr><th scope="col">Country</th><th scope="col" class="n">Messages</th><th scope="col" class="n">Segments\
</th><th scope="col" class="n">Cost</th>{% if any_unpriced %}<th scope="col" class="n">Without a cost</th>\
{% endif %}</tr></thead>
<tbody>
{% for label, messages, segments, money, unpriced in spend_rows %}
<tr><th scope="row">{{ label }}</th><td class="n">{{ messages }}</td><td class="n">{{ segments }}</td>\
<td class="n">{{ money }}</td>{% if any_unpriced %}<td class="n">{{ unpriced }}</td>{% endif %}</tr>
{% endfor %}
</tbody>
</table>
{% if any_unpriced %}
<p class="note">A message without a cost had no price: give <code>--price</code>, or a <code>[prices]</code> section \
in the config file, to price it.</p>
{% endif %}
{% else %}
<p>No message was sent.</p>
{% endif %}
</section>

<section aria-labelledby="problems">
<h2 id="problems">Problems by code</h2>
{% if f.problems %}
<table>
<caption>Rows with each problem (a row can have several)</caption>
<thead><tr><th scope="col">Code</th><th scope="col">Severity</th><th scope="col" class="n">Rows</th>\
<th scope="col">What it means</th></tr></thead>
<tbody>
{% for p in f.problems %}
<tr><th scope="row"><code>{{ p.code }}</code></th><td>{{ p.severity }}</td><td class="n">{{ count(p.rows) }}</td>\
<td>{{ p.meaning }}</td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No row has a problem.</p>
{% endif %}
{% if f.reasons %}
<table>
<caption>Why messages failed or were not delivered</caption>
<thead><tr><th scope="col">Reason</th><th scope="col" class="n">Rows</th></tr></thead>
<tbody>
{% for reason, n in f.reasons %}
<tr><td>{{ reason }}</td><td class="n">{{ count(n) }}</td></tr>
{% endfor %}
{% if f.other_reasons %}
<tr><td>Other reasons</td><td class="n">{{ count(f.other_reasons) }}</td></tr>
{% endif %}
</tbody>
</table>
{% endif %}
</section>

<section aria-labelledby="over-time">
<h2 id="over-time">Deliveries over time</h2>
{% if columns %}
<svg class="chart" role="img" aria-labelledby="time-chart-title" viewBox="0 0 {{ chart.width }} 230" \
preserveAspectRatio="xMinYMin meet">
<title id="time-chart-title">Messages delivered per {{ bucket }}, {{ zone }}</title>
{% for y, label in grid %}
<line class="grid" x1="{{ chart.left }}" x2="{{ chart.right }}" y1="{{ y }}" y2="{{ y }}"/>
<text class="tick" x="{{ chart.left - 6 }}" y="{{ y + 4 }}" text-anchor="end">{{ label }}</text>
{% endfor %}
{% for c in columns %}
<rect class="col" x="{{ c.x }}" y="{{ c.y }}" width="{{ c.width }}" height="{{ c.height }}"><title>{{ c.title }}\
</title></rect>
{% endfor %}
<line class="axis" x1="{{ chart.left }}" x2="{{ chart.right }}" y1="{{ chart.bottom }}" y2="{{ chart.bottom }}"/>
<text class="tick" x="{{ chart.left - 6 }}" y="{{ chart.bottom + 4 }}" text-anchor="end">0</text>
{% for t in ticks %}
<text class="tick" x="{{ t.x }}" y="{{ chart.bottom + 16 }}" text-anchor="middle">{{ t.first }}</text>
{% if t.second %}
<text class="tick" x="{{ t.x }}" y="{{ chart.bottom + 30 }}" text-anchor="middle">{{ t.second }}</text>
{% endif %}
{% endfor %}
</svg>
<table>
<caption>Messages delivered per {{ bucket }} ({{ bucket }}s without a delivery left out)</caption>
<thead><tr><th scope="col">{{ bucket|capitalize }}</th><th scope="col" class="n">Delivered</th></tr></thead>
<tbody>
{% for label, n in delivery_rows %}
<tr><th scope="row">{{ label }}</th><td class="n">{{ n }}</td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No delivery report with a time yet{% if f.sent %}: <code>batchsms status</code> asks the API for them{% endif %}.\
</p>
{% endif %}
</section>
</main>
<footer><p class="note">Made by batchsms {{ version }}. Counts are rows of the results file; a row is one \
message to one number.</p></footer>
</body>
</html>
"""
