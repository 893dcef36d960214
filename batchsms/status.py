"""After the send: what became of each message, and which ``unknown`` rows the API's own record settles.

"sent" only means the API took a message. :func:`check_delivery` asks the API
(``GET /v2/Messages/{MessageSid}``) about every sent or scheduled row whose delivery is
not final yet, concurrently and rate-limited, and records each answer in the journal.

An ``unknown`` row's answer never came: the message may or may not exist. Resending
blindly can text a person twice, so :func:`settle_unknown` looks for it in the
property's message list over the row's send window (from its first attempt to its
last answer, with some slack) and settles it only on proof:

- exactly one message to the same number (compared in E.164) with the very same text,
  claimed by no other row → **sent**, with that MessageSid;
- no message to that number at all in the window, the whole window read, and the window
  closed a while ago (the API may list a message a little late) → **not sent**: the row
  stays ``unknown`` but marked settled, so ``--retry-unknown`` resends it and nothing
  else does;
- anything else (two candidates, one message two rows could own, a message to the number
  with another text, a list that could not be read whole) → stays ``unknown``, saying why.

It never guesses. :func:`watch_delivery` repeats the check until every message is final
or a deadline passes, on an injectable clock and sleep.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from . import fields as F
from .client import Client, ListedMessage, ListError, Lookup
from .clock import format_local, format_range
from .codes import DONE, Status
from .config import Settings
from .errors import AuthError, ConfigError, JournalError
from .journal import FINAL_DELIVERY, SETTLED_NOT_SENT, SETTLED_SENT, Entry, Journal, journal_path
from .numbers import describe
from .pricing import Prices
from .results import Refreshed, default_results_path_for, refresh_results
from .sender import RateLimiter

#: Seconds added before a row's first attempt and after its last answer: the API's clock and
#: ours differ, and Created may be stamped when the request is read, not when it is answered.
DEFAULT_SLACK = 120.0
#: Seconds after a send window's end before "not in the list" may count as "not sent".
GRACE = 300.0
#: Results_Count asked for in each list call (a full page makes the window split in two).
LIST_COUNT = 1000
#: The most list calls one settle makes (windows split when a page comes back full).
MAX_LIST_CALLS = 200
#: Answers recorded in the journal per transaction while a check runs.
RECORD_BATCH = 500
#: The API's Status values, by their lower-case spelling.
_STATUSES = {s.lower(): s for s in ("Processing", "Submitted", "Delivered", "Failed", "Received")}


# --------------------------------------------------------------------------- delivery


@dataclass
class DeliverySummary:
    """Where the journal's messages stand, after this check's answers were recorded.

    ``sent`` counts rows the API took (sent or scheduled); ``delivered``, ``failed`` and
    ``pending`` split them. ``submitted`` is the part of ``pending`` that was handed on
    without a delivery receipt asked for: the API will say nothing more about those, so
    they count as final. ``unknown`` rows may or may not have gone (``settled_not_sent`` of
    them proved not sent); ``refused`` rows the API refused at send time.
    """

    rows: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    pending: int = 0
    submitted: int = 0
    unknown: int = 0
    refused: int = 0
    held: int = 0  # kept by batchsms for `batchsms due`, or cancelled: never went to the API
    settled_sent: int = 0
    settled_not_sent: int = 0
    segments: int = 0  # of the messages the API took
    segments_by_country: Counter = field(default_factory=Counter)  # ISO region (None: unknown) -> segments
    asked: int = 0  # lookups this check made
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row, why) for lookups without an answer

    @property
    def final(self) -> bool:
        """True when no message can change any more: each delivered, failed or submitted without a receipt."""
        return self.pending == self.submitted

    @property
    def all_delivered(self) -> bool:
        """True when every row the API took is final and none failed, and no row is unknown or refused."""
        return self.final and not self.failed and not self.unknown and not self.refused

    def rate(self, count: int) -> float | None:
        """``count`` as a share of the messages the API took (None when it took none)."""
        return count / self.sent if self.sent else None

    def cost(self, prices: Prices | None) -> Decimal | None:
        """What the messages the API took cost (None without a price for every country)."""
        return prices.total(self.segments_by_country) if prices is not None else None

    def figures(self) -> dict[str, Any]:
        """The summary as plain data (``--json``)."""
        def share(n: int) -> float | None:
            rate = self.rate(n)
            return None if rate is None else round(rate, 4)

        return {"rows": self.rows, "sent": self.sent, "delivered": self.delivered, "failed": self.failed,
                "pending": self.pending, "submitted_no_receipt": self.submitted, "unknown": self.unknown,
                "refused": self.refused, "held": self.held, "delivered_rate": share(self.delivered),
                "failed_rate": share(self.failed),
                "pending_rate": share(self.pending), "segments": self.segments,
                "settled_sent": self.settled_sent, "settled_not_sent": self.settled_not_sent,
                "asked": self.asked, "lookup_errors": [{"row": r, "error": e} for r, e in self.errors]}


def receipt_asked(entry: Entry) -> bool:
    """Whether the row's message asked for a delivery receipt (the API's default is yes)."""
    body = entry.request()
    return body is None or body.get(F.DELIVERY_RECEIPT) is not False


def needs_asking(entry: Entry) -> bool:
    """A message the API took whose delivery may still change."""
    if entry.state not in DONE or not entry.message_sid or entry.delivery in FINAL_DELIVERY:
        return False
    return not (entry.delivery == "Submitted" and not receipt_asked(entry))


def summarise(entries: dict[int, Entry], *, asked: int = 0, errors: Iterable[tuple[int, str]] = ()
              ) -> DeliverySummary:
    """A :class:`DeliverySummary` of the journal's entries."""
    summary = DeliverySummary(rows=len(entries), asked=asked, errors=sorted(errors))
    for entry in entries.values():
        if entry.settled == SETTLED_SENT:
            summary.settled_sent += 1
        if entry.state in DONE:
            summary.sent += 1
            if entry.delivery == "Delivered":
                summary.delivered += 1
            elif entry.delivery == "Failed":
                summary.failed += 1
            else:
                summary.pending += 1
                if entry.delivery == "Submitted" and not receipt_asked(entry):
                    summary.submitted += 1
            segments = entry.segments or 0
            summary.segments += segments
            summary.segments_by_country[_region(entry)] += segments
        elif entry.state == Status.FAILED:
            summary.refused += 1
        elif entry.state in (Status.HELD, Status.CANCELLED):
            summary.held += 1
        else:  # unknown, or started by a run that died
            summary.unknown += 1
            if entry.settled == SETTLED_NOT_SENT:
                summary.settled_not_sent += 1
    return summary


def _region(entry: Entry) -> str | None:
    body = entry.request()
    to = body.get(F.TO) if body is not None else None
    if not isinstance(to, str) or not to.startswith("+"):
        return None
    return describe(to).region


def read_delivery(sid: str, lookup: Lookup) -> tuple[str | None, float | None, str | None]:
    """(Status, Delivered, error) from a GET of message ``sid``, each read defensively.

    A Status the API documents is written as documented; another short word is kept as
    it came (it is never taken as final). An answer about another MessageSid, or without
    a Status, is no answer.
    """
    if not lookup.ok:
        if lookup.status == 404:
            return None, None, f"the API does not know MessageSid {sid} (404); check --base-url and --property-sid"
        return None, None, f"could not read the status: {lookup.error}"
    message = lookup.data
    answered = message.get("MessageSid")
    if answered is not None and answered != sid:
        return None, None, "the API answered about another message; check --base-url"
    status = message.get("Status")
    if not isinstance(status, str) or not status.strip() or len(status) > 32 or not status.isprintable():
        return None, None, "the API's answer has no Status"
    status = _STATUSES.get(status.strip().lower(), status.strip())
    delivered = message.get("Delivered")
    if isinstance(delivered, bool) or not isinstance(delivered, (int, float)) or not 0 < delivered < 1e11:
        delivered = None
    code = message.get("ErrorCode")
    error = str(code)[:100] if isinstance(code, (str, int)) and not isinstance(code, bool) and str(code) else None
    return status, None if delivered is None else float(delivered), error


def check_delivery(journal: Journal, client: Client, *, now: float | None = None, concurrency: int = 8,
                   rate: float | None = None, stop: threading.Event | None = None) -> DeliverySummary:
    """Ask the API about every sent or scheduled row whose delivery is not final; record each answer.

    At most ``concurrency`` requests are in flight and ``rate`` a second start (None: no
    limit); each GET retries on 429, 5xx and timeouts (:meth:`Client.get_message`).
    ``now`` is the time recorded as checked. Answers are written to the journal as they
    come, in batches. Raises :class:`AuthError` when the API refuses the credentials or TLS
    fails (what came before is recorded).
    """
    stop = stop if stop is not None else threading.Event()
    entries = journal.entries()
    todo = [(row, e.message_sid) for row, e in sorted(entries.items()) if needs_asking(e)]
    limiter = RateLimiter(rate, burst=max(1, min(concurrency, int(rate or 1))))
    lock = threading.Lock()

    def paced(sid: str) -> Lookup | None:
        while True:
            with lock:
                if limiter.take(1):
                    break
                wait = limiter.wait_time()
            if stop.wait(max(wait, 0.001)):
                return None
        return client.get_message(sid, stop)

    errors: list[tuple[int, str]] = []
    batch: list[tuple[str, str | None, float | None, str | None, float]] = []
    refused: str | None = None
    checked = time.time() if now is None else now
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="batchsms-status") as pool:
        futures = {pool.submit(paced, sid): (row, sid) for row, sid in todo}
        try:
            for future in as_completed(futures):
                row, sid = futures[future]
                lookup = future.result()
                if lookup is None:  # stopped before asking
                    continue
                if lookup.stops_run and refused is None:
                    refused = lookup.error
                    stop.set()
                status, delivered, error = read_delivery(sid, lookup)
                if status is None:
                    errors.append((row, error or "no answer"))
                batch.append((sid, status, delivered, error, checked))
                if len(batch) >= RECORD_BATCH:
                    journal.record_deliveries(batch)
                    batch = []
        except BaseException:  # Ctrl-C: ask nothing more, keep what came
            stop.set()
            for future in futures:
                future.cancel()
            journal.record_deliveries(batch)
            raise
    journal.record_deliveries(batch)
    if refused is not None:
        raise AuthError(f"{client.base_url}: {refused}; check BATCHSMS_ACCOUNT_SID, BATCHSMS_AUTH_TOKEN and "
                        "--base-url (the answers that came before are recorded)")
    return summarise(journal.entries(), asked=len(todo), errors=errors)


def watch_delivery(journal: Journal, client: Client, *, every: float = 60.0, until: float = 7200.0,
                   clock: Callable[[], float] = time.time, sleep: Callable[[float], Any] = time.sleep,
                   concurrency: int = 8, rate: float | None = None,
                   before_round: Callable[[], Any] | None = None,
                   each_round: Callable[[DeliverySummary], Any] | None = None,
                   done: Callable[[DeliverySummary], bool] | None = None) -> DeliverySummary:
    """:func:`check_delivery` every ``every`` seconds until every message is final or ``until`` seconds pass.

    ``clock`` and ``sleep`` are for tests (a clock that ``sleep`` moves on). ``before_round``
    runs before each check (settling unknown rows), ``each_round`` sees each round's summary
    (to rewrite the results, print progress); ``done`` says when to stop early (default: every
    message is final). ``until=0`` is one round.
    """
    deadline = clock() + until
    while True:
        if before_round is not None:
            before_round()
        summary = check_delivery(journal, client, now=clock(), concurrency=concurrency, rate=rate)
        if each_round is not None:
            each_round(summary)
        if (done(summary) if done is not None else summary.final) or clock() + every > deadline:
            return summary
        sleep(every)


# --------------------------------------------------------------------------- settling unknown rows


@dataclass
class SettleSummary:
    """What :func:`settle_unknown` did: rows settled sent, settled not sent, and those left unknown with why."""

    sent: list[int] = field(default_factory=list)
    not_sent: list[int] = field(default_factory=list)
    unsettled: list[tuple[int, str]] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)  # of ``unsettled``: not found, their window closed too recently
    list_calls: int = 0
    errors: list[str] = field(default_factory=list)  # list calls that failed, in plain English

    def figures(self) -> dict[str, Any]:
        return {"settled_sent": self.sent, "settled_not_sent": self.not_sent,
                "still_unknown": [{"row": r, "why": why} for r, why in self.unsettled],
                "list_calls": self.list_calls, "list_errors": self.errors}


@dataclass
class _Unknown:
    """An unknown row with what it sent and the window in which the API may have created it."""

    row: int
    to: str
    text: str
    low: float
    high: float


def e164(number: object) -> str | None:
    """``number`` in E.164 (``+61412345678``), reading digits without ``+`` as international; None if not a number."""
    if not isinstance(number, str) or not number.strip():
        return None
    text = number.strip()
    if not text.startswith("+"):
        text = "+" + "".join(c for c in text if c.isdigit())
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _windows(rows: list[_Unknown]) -> list[tuple[float, float, list[_Unknown]]]:
    """Overlapping send windows merged, so each stretch of time is listed once."""
    merged: list[tuple[float, float, list[_Unknown]]] = []
    for row in sorted(rows, key=lambda r: r.low):
        if merged and row.low <= merged[-1][1]:
            low, high, members = merged[-1]
            merged[-1] = (low, max(high, row.high), members + [row])
        else:
            merged.append((row.low, row.high, [row]))
    return merged


def _in_window(message: ListedMessage, row: _Unknown) -> bool:
    return message.created is None or row.low <= message.created <= row.high  # no Created: the call's dates held it


def settle_unknown(journal: Journal, client: Client, *, now: float | None = None,
                   window_slack: float = DEFAULT_SLACK, grace: float = GRACE, zone: ZoneInfo | None = None,
                   count: int = LIST_COUNT, max_calls: int = MAX_LIST_CALLS,
                   stop: threading.Event | None = None) -> SettleSummary:
    """Settle each ``unknown`` row from the property's message list, on proof only (see the module docstring).

    A row's window is [first attempt − ``window_slack``, last answer + ``window_slack``];
    "none found" settles it not sent only once ``now`` is ``grace`` seconds past that.
    Rows already settled are left as they are. Times in the texts are shown in ``zone``.
    """
    now = time.time() if now is None else now
    zone = zone or ZoneInfo("UTC")
    summary = SettleSummary()
    entries = journal.entries()
    claimed = {e.message_sid for e in entries.values() if e.state in DONE and e.message_sid}
    rows: list[_Unknown] = []
    for row, entry in sorted(entries.items()):
        if entry.state != Status.UNKNOWN or entry.settled is not None:
            continue
        body = entry.request()
        if body is None or entry.started is None:  # the body as sent (a row moved by quiet hours is known
            #                                         by its message as written, so no hash check here)
            summary.unsettled.append((row, "the journal holds no copy of the request (it was sent by an older "
                                           "batchsms): compare it with the API's records by hand"))
            continue
        to, text = e164(body.get(F.TO)), body.get(F.TEXT)
        if to is None or not isinstance(text, str):
            summary.unsettled.append((row, "the journal's copy of the request has no To or Text"))
            continue
        last = max(entry.updated or entry.started, entry.started)
        rows.append(_Unknown(row, to, text, entry.started - window_slack, last + window_slack))
    if not rows:
        return summary
    found: dict[int, list[ListedMessage]] = {}  # row -> messages to its number in its window
    for low, high, members in _windows(rows):
        try:
            listing = client.list_messages(low, high, count, max_calls=max(1, max_calls - summary.list_calls),
                                           stop=stop)
        except ListError as exc:
            summary.errors.append(str(exc))
            summary.unsettled += [(r.row, f"the message list could not be read: {exc}") for r in members]
            continue
        summary.list_calls += listing.calls
        for row in members:
            # Messages that may be this row's: to its number, or to a number that cannot be read.
            found[row.row] = [m for m in listing.messages.values()
                              if m.sid not in claimed and (m.direction or "").lower() != "receive"
                              and _in_window(m, row) and e164(m.to) in (row.to, None)]
            if not listing.complete:  # an unread part may hold it, or a second candidate
                summary.unsettled.append((row.row, "the message list could not be read whole ("
                                          + "; ".join(dict.fromkeys(listing.gaps)) + ")"))
    decided = {r for r, _ in summary.unsettled}
    exact = {r.row: [m for m in found.get(r.row, []) if m.text == r.text and e164(m.to) == r.to] for r in rows}
    owners: dict[str, list[int]] = {}
    for row, messages in exact.items():
        for message in messages:
            owners.setdefault(message.sid, []).append(row)
    for row in rows:
        if row.row in decided:
            continue
        verdict = _verdict(row, found.get(row.row, []), exact[row.row], owners, now, grace, zone)
        if isinstance(verdict, str):
            summary.unsettled.append((row.row, verdict))
            if not exact[row.row] and not found.get(row.row) and now <= row.high + grace:
                summary.waiting.append(row.row)
        elif verdict[0] is None:
            if journal.settle(row.row, None, verdict[1], now=now):
                summary.not_sent.append(row.row)
        else:
            message = verdict[0]
            if journal.settle(row.row, message.sid, verdict[1], sender_id=message.sender,
                              segments=message.segments, now=now):
                summary.sent.append(row.row)
    summary.unsettled.sort()
    return summary


def _verdict(row: _Unknown, same_number: list[ListedMessage], exact: list[ListedMessage],
             owners: dict[str, list[int]], now: float, grace: float,
             zone: ZoneInfo) -> str | tuple[ListedMessage | None, str]:
    """(the message, how) to settle ``row`` by, (None, how) for not sent, or why it stays unknown."""
    window = format_range(row.low, row.high, zone)
    today = format_local(now, zone)
    if len(exact) == 1:
        message = exact[0]
        others = [r for r in owners[message.sid] if r != row.row]
        if others:
            return (f"one message to {row.to} with this text ({message.sid}) in the send window, and rows "
                    f"{', '.join(map(str, others))} send the same text to the same number at the same time: which "
                    "row it belongs to cannot be told; compare with the API's records by hand")
        created = f", created {format_local(message.created, zone)}" if message.created is not None else ""
        return message, (f"settled as sent on {today}: the API's message list holds {message.sid} to {row.to} "
                         f"with this very text{created}")
    if exact:
        sids = ", ".join(m.sid for m in sorted(exact, key=lambda m: (m.created or 0, m.sid))[:5])
        return (f"{len(exact)} messages to {row.to} with this very text in the send window ({sids}): which is "
                "this row's cannot be told; compare with the API's records by hand")
    if now <= row.high + grace:
        return (f"no such message in the API's list yet; the send window ({window}) closed too recently to be "
                f"sure: run status --settle again after {format_local(row.high + grace, zone)}")
    if same_number:
        unreadable = sum(e164(m.to) is None for m in same_number)
        to = f"to {row.to}" + (f" or to no readable number ({unreadable})" if unreadable else "")
        return (f"{len(same_number)} message{'s' if len(same_number) != 1 else ''} {to} in the send window, "
                "but none with this very text (the API may have changed it): compare with the API's records by hand")
    return None, (f"settled as not sent on {today}: the API's message list holds no message to {row.to} created "
                  f"{window}; run send with --retry-unknown to send it again")


# --------------------------------------------------------------------------- the whole command


@dataclass
class StatusOptions:
    """How ``batchsms status`` asks: pace, settling, watching, and the client's timeouts.

    ``clock`` and ``sleep`` drive ``watch`` (tests pass a clock that ``sleep`` moves on).
    """

    settle: bool = False
    watch: bool = False
    every: float = 60.0  # seconds between rounds when watching
    until: float = 7200.0  # seconds to keep watching at most
    concurrency: int = 8
    rate: float | None = None  # lookups a second at most
    window_slack: float = DEFAULT_SLACK
    grace: float = GRACE
    allow_insecure: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 5
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Any] = time.sleep


@dataclass
class StatusOutcome:
    """What ``status`` found: the delivery summary, what settling did (this run), and the files."""

    results: Path
    journal: Path
    delivery: DeliverySummary
    settled: SettleSummary | None
    refreshed: Refreshed | None  # None when the results file is gone (``send`` rebuilds it)
    rounds: int = 1


def locate(path: str | Path) -> tuple[Path, Path]:
    """(results file, journal) for a results file or a sheet, as ``batchsms send`` names them."""
    given = Path(path)
    candidates = [given, default_results_path_for(given)]
    for results in candidates:
        if journal_path(results).is_file():
            return results, journal_path(results)
    looked = " or ".join(str(journal_path(r)) for r in dict.fromkeys(candidates))
    raise ConfigError(f"{given}: no journal found (looked for {looked}); give the results file `batchsms send` "
                      "wrote, or the sheet it sent")


def status_of(path: str | Path, target: Settings, options: StatusOptions | None = None, *,
              zone: ZoneInfo | None = None,
              each_round: Callable[[StatusOutcome], Any] | None = None) -> StatusOutcome:
    """Settle unknown rows (with ``options.settle``), ask about delivery, and rewrite the results file.

    ``path`` is the results file or the sheet; the journal is found beside the results. With
    ``options.watch`` it repeats every ``options.every`` seconds until every message is final
    or ``options.until`` seconds passed; ``each_round`` sees each round's outcome.
    """
    options = options or StatusOptions()
    zone = zone or ZoneInfo("UTC")
    results, journal_file = locate(path)
    client = Client(target.base_url, target.account_sid, target.auth_token, target.property_sid,
                    connect_timeout=options.connect_timeout, read_timeout=options.read_timeout,
                    max_attempts=options.max_attempts, allow_insecure=options.allow_insecure)
    settled = SettleSummary() if options.settle else None
    try:
        with Journal(journal_file) as journal:
            recorded = journal.get_meta("target")
            if recorded is not None and recorded != target.target:
                raise JournalError(f"{journal_file}: this journal records a send to {recorded}, and this run asks "
                                   f"{target.target}; give the --base-url and --property-sid that send used")
            journal.recover()
            _apply_webhook_receipts(journal)
            rounds = 0
            outcome: StatusOutcome | None = None

            def settle_round() -> None:
                if settled is not None:
                    found = settle_unknown(journal, client, now=options.clock(), window_slack=options.window_slack,
                                           grace=options.grace, zone=zone)
                    settled.sent += found.sent
                    settled.not_sent += found.not_sent
                    settled.unsettled, settled.waiting = found.unsettled, found.waiting
                    settled.list_calls += found.list_calls
                    settled.errors = found.errors

            def after_round(summary: DeliverySummary) -> None:
                nonlocal rounds, outcome
                rounds += 1
                refreshed = refresh_results(results, journal.entries(), zone) if results.is_file() else None
                outcome = StatusOutcome(results, journal_file, summary, settled, refreshed, rounds)
                if each_round is not None:
                    each_round(outcome)

            watch_delivery(journal, client, every=options.every, until=options.until if options.watch else 0,
                           clock=options.clock, sleep=options.sleep, concurrency=options.concurrency,
                           rate=options.rate, before_round=settle_round, each_round=after_round,
                           done=lambda summary: summary.final and not (settled and settled.waiting))
            assert outcome is not None
            return outcome
    finally:
        client.close()


def _apply_webhook_receipts(journal: Journal) -> None:
    """Receipts ``batchsms receive`` kept while this journal was busy: recorded now, without asking the API."""
    from .receive import apply_pending
    from .state import state_dir

    log = Path(state_dir()) / "receive.log"
    if log.exists():
        apply_pending(journal, log)
