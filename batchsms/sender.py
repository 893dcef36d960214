"""Send the planned rows concurrently, rate-limited, journaled, with a progress bar and Ctrl-C handling.

The main thread owns the journal and dispatches; worker threads only make HTTP
calls. Each loop turn commits, in one transaction, the outcomes that arrived and
the rows about to go out, then hands those rows to the workers: a row's request
never leaves before the journal durably says it is in flight, and one fsync
serves many rows (group commit).

With a batch size the same loop hands out batches instead of rows: every row of a
batch is journaled as started before its BatchMessages request goes, ``concurrency``
counts requests, and the rate counts messages. A batch whose answer never comes
leaves all its rows unknown, which is what a batch size costs; a batch the API
refuses as too large was not taken, so its rows go again in batches half the size.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING

from tqdm import tqdm

from . import fields as F
from .codes import DONE, MAYBE_SENT, Status
from .config import MAX_BATCH_SIZE  # the API's own maximum is not documented: a refused batch is halved
from .errors import ConfigError
from .journal import Entry, Finish, Journal, request_hash
from .outcome import BatchOutcome, Decision, Outcome, encode_body
from .report import Report
from .rules import MAX_SCHEDULE_BEHIND

if TYPE_CHECKING:
    from .client import Client

RELEASED = "released"
STILL_WAITING = "still waiting for the API's answer when the run stopped"


def _waiting(answers: queue.SimpleQueue, timeout: float) -> list:
    """The first answer to come within ``timeout`` seconds, and every one already behind it ([] if none came)."""
    found = []
    try:
        found.append(answers.get(timeout=timeout))
        while True:
            found.append(answers.get_nowait())
    except queue.Empty:
        pass
    return found


@dataclass(slots=True)
class Job:
    """One row to send: its Excel row number, request body, fingerprint and segment count."""

    row: int
    body: dict
    digest: str
    segments: int
    due: float | None = None  # a held message: when ``batchsms due`` hands it to the API
    wire: bytes | None = None  # the body as encode_body writes it, once made (encoded())

    def encoded(self) -> bytes:
        """The body as :func:`encode_body` writes it, made once: a batch's journal keeps these bytes and
        its request carries them."""
        if self.wire is None:
            self.wire = encode_body(self.body)
        return self.wire


@dataclass
class Plan:
    jobs: list[Job]
    done: int = 0  # rows already sent or scheduled by an earlier run
    done_changed: list[int] = field(default_factory=list)  # sent earlier, now invalid, skipped or gone: kept as sent
    held_unknown: list[int] = field(default_factory=list)  # unknown rows not resent (no --retry-unknown)
    held_failed: list[int] = field(default_factory=list)
    mismatched: list[int] = field(default_factory=list)  # rows whose new message differs from the one sent
    limited: int = 0  # rows left for later by --limit
    to_hold: list[Job] = field(default_factory=list)  # messages kept locally until due (beyond 14 days, --hold)
    kept_held: list[int] = field(default_factory=list)  # rows an earlier run holds, with this very message
    withdrawn: list[int] = field(default_factory=list)  # held rows no longer ready (invalid, opted out, gone)
    cancelled: list[int] = field(default_factory=list)  # rows cancelled earlier, with this very message


#: The API's window for a Schedule, and how far inside it a held message is handed over.
API_WINDOW = 14 * 24 * 3600
HANDOVER_MARGIN = 3600
#: A Schedule further in the past than this is refused by the API.
MAX_LATE = 3600


def due_time(body: dict, now: float, *, hold: bool = False, submit_ahead: float = 900.0) -> float | None:
    """When a message must be handed to the API, or None to send it now (with its Schedule, if any).

    Beyond the API's 14-day window it waits until an hour inside it; with ``hold`` every
    scheduled message waits until ``submit_ahead`` seconds before its time, so it can still
    be cancelled (the API has no cancel call).
    """
    schedule = body.get("Schedule")
    if not isinstance(schedule, (int, float)):
        return None
    due = schedule - submit_ahead if hold else schedule - API_WINDOW + HANDOVER_MARGIN
    return due if due > now else None


def plan(report: Report, entries: dict[int, Entry], *, retry_unknown: bool = False,
         retry_failed: bool = False, limit: int | None = None, now: float | None = None, hold: bool = False,
         submit_ahead: float = 900.0) -> Plan:
    """Which valid rows this run sends, given what the journal says earlier runs did.

    A row the journal says was sent is done whatever happened to the sheet since: it is
    never sent again because it became invalid, skipped (suppressed, deduplicated) or was
    deleted, and that never blocks the run. Only a row whose *new* message differs from
    the one sent (or maybe sent) under its number stops the run: the sheet or template
    was changed under a send, and guessing which text the person wants could text twice.
    """
    result = Plan([])
    seen_rows = set()
    now = time.time() if now is None else now
    held, cancelled = Status.HELD, Status.CANCELLED
    for r in report.results:
        seen_rows.add(r.row)
        entry = entries.get(r.row)
        if r.status != Status.VALID:
            if entry is not None and entry.state == held:
                result.withdrawn.append(r.row)  # never handed over: it simply does not go
            elif entry is not None and entry.state in DONE:
                result.done += 1
                result.done_changed.append(r.row)
            elif entry is not None and entry.state in MAYBE_SENT:
                result.held_unknown.append(r.row)  # maybe sent: never resent, never forgotten
            continue
        digest = request_hash(r.identity if r.identity is not None else r.body)
        job = Job(r.row, r.body, digest, r.segments.parts)
        if entry is None or (entry.state in (held, cancelled) and entry.request_hash != digest):
            result.jobs.append(job)  # new, or a held message edited before it went: the new one replaces it
        elif entry.state == held:
            result.kept_held.append(r.row)
        elif entry.state == cancelled:
            result.cancelled.append(r.row)
        elif entry.state == Status.FAILED:  # refused by the API: never taken, so a changed row may go again
            if retry_failed or entry.request_hash != digest:
                result.jobs.append(job)
            else:
                result.held_failed.append(r.row)
        elif entry.request_hash != digest:
            result.mismatched.append(r.row)
        elif entry.state in DONE:
            result.done += 1
        elif entry.state in MAYBE_SENT:
            if retry_unknown:
                result.jobs.append(job)
            else:
                result.held_unknown.append(r.row)
    for row, entry in entries.items():  # rows deleted from the sheet since they were sent
        if row not in seen_rows and entry.state == held:
            result.withdrawn.append(row)
        elif row not in seen_rows and entry.state in DONE:
            result.done += 1
            result.done_changed.append(row)
        elif row not in seen_rows and entry.state in MAYBE_SENT:
            result.held_unknown.append(row)
    result.done_changed.sort()
    result.held_unknown.sort()
    result.withdrawn.sort()
    sending = []
    for job in result.jobs:
        job.due = due_time(job.body, now, hold=hold, submit_ahead=submit_ahead)
        (result.to_hold if job.due is not None else sending).append(job)
    result.jobs = sending
    if limit is not None and len(result.jobs) > limit:
        result.limited = len(result.jobs) - limit
        result.jobs = result.jobs[:limit]
    return result


class RateLimiter:
    """A token bucket: ``rate`` messages a second, bursts up to ``burst``; None means unlimited."""

    def __init__(self, rate: float | None, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, float(burst))
        self.tokens = self.capacity
        self.clock = clock
        self.last = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def take(self, wanted: int) -> int:
        """How many of ``wanted`` may go now (and consume them)."""
        if self.rate is None:
            return wanted
        self._refill()
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted

    def wait_time(self, wanted: int = 1) -> float:
        """Seconds until ``wanted`` messages may go (at most the burst's worth)."""
        if self.rate is None:
            return 0.0
        self._refill()
        return max(0.0, (min(wanted, self.capacity) - self.tokens) / self.rate)

    def take_whole(self, wanted: int) -> int:
        """``wanted`` (cut to the burst) if that many may go now, else 0: a batch waits to go whole.

        Taking what is there would send a batch of one message each time a token comes in.
        """
        if self.rate is None:
            return wanted
        wanted = min(wanted, int(self.capacity))
        self._refill()
        if self.tokens < wanted:
            return 0
        self.tokens -= wanted
        return wanted

    def refund(self, unused: int) -> None:
        """Give back tokens taken for messages that did not go after all."""
        if self.rate is not None and unused > 0:
            self.tokens = min(self.capacity, self.tokens + unused)


@dataclass
class SendStats:
    counts: Counter = field(default_factory=Counter)
    interrupted: bool = False
    auth_error: str | None = None
    elapsed: float = 0.0
    notices: list[str] = field(default_factory=list)  # what changed during the run (a batch size halved)
    batch_size: int | None = None  # the batch size the run ended with (None: single sends)


def finish_for(job: Job, outcome: Outcome, now: float) -> Finish | None:
    """The journal record for an outcome; None when the row was provably never taken (release it).

    Only the client's checked fields are journaled (``message_sid``, ``sender_id``,
    ``num_segments``), never the raw Message: a hostile answer's dict as MessageSid or
    30-digit NumSegments would crash SQLite. A row is sent or scheduled only with a
    MessageSid; an ACCEPTED outcome without one is recorded unknown.
    """
    if outcome.decision is Decision.ACCEPTED and outcome.message_sid:
        schedule = job.body.get(F.SCHEDULE)
        state = Status.SCHEDULED if schedule is not None and schedule > now else Status.SENT
        segments = outcome.num_segments if outcome.num_segments is not None else job.segments
        return Finish(job.row, state, outcome.attempts, outcome.message_sid, outcome.sender_id,
                      segments, None, outcome.status)
    if outcome.decision is Decision.ACCEPTED:
        return Finish(job.row, Status.UNKNOWN, outcome.attempts, error="the answer held no MessageSid",
                      http_status=outcome.status, segments=job.segments)
    if outcome.decision is Decision.FAILED:
        return Finish(job.row, Status.FAILED, outcome.attempts, error=outcome.error_text, http_status=outcome.status,
                      segments=job.segments)
    if outcome.decision is Decision.UNKNOWN:
        return Finish(job.row, Status.UNKNOWN, outcome.attempts, error=outcome.error_text, http_status=outcome.status,
                      segments=job.segments)
    return None  # AUTH or FATAL (refused before taking; the run stops) or RETRY cut short by a stop


class Sender:
    """Runs jobs through a client, journaled; see the module docstring.

    One run is a loop of three steps on the main thread: :meth:`_dispatch` journals the
    rows the rate and the free workers allow and hands them out, :meth:`_collect` waits
    for answers and turns them into journal records, and after a stop :meth:`_drain`
    marks the rows whose answer never came as unknown. With a batch size the same three
    steps hand out batches (:class:`_Batches`).
    """

    def __init__(self, client: Client, journal: Journal, *, concurrency: int = 8, rate: float | None = None,
                 quiet: bool = False, drain_timeout: float = 35.0, handle_signals: bool = True,
                 batch_size: int | None = None) -> None:
        """``batch_size`` (1 or more) sends through BatchMessages, that many messages a request at most;
        None (or 0) sends each message on its own."""
        if batch_size is not None and not (type(batch_size) is int and 0 <= batch_size <= MAX_BATCH_SIZE):
            raise ConfigError(f"batch size {batch_size!r}: give a whole number of messages from 1 to "
                              f"{MAX_BATCH_SIZE:,} (100 is usual), or 0 to send each message on its own")
        self.client = client
        self.journal = journal
        self.concurrency = max(1, concurrency)
        self.batch_size = batch_size or None
        if self.batch_size is None:
            self.limiter = RateLimiter(rate, burst=max(1, min(self.concurrency, int(rate or 1))))
        else:  # a second's worth of messages at most, so a rate below the batch size makes smaller batches
            self.limiter = RateLimiter(rate, burst=max(1, min(self.concurrency * self.batch_size, int(rate or 1))))
        #: Told, in plain English, what changed during the run (a batch size halved); the CLI prints it.
        self.on_notice: Callable[[str], None] | None = None
        self.quiet = quiet
        self.drain_timeout = drain_timeout
        self.handle_signals = handle_signals
        self.stop = threading.Event()
        self.on_interrupt: Callable[[], None] | None = None  # told on the first Ctrl-C
        #: Called on a second Ctrl-C (the CLI exits at once); by default it raises KeyboardInterrupt.
        self.on_second_interrupt: Callable[[], None] | None = None

    @contextmanager
    def _signals(self) -> Iterator[None]:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return

        def interrupted(signum, frame) -> None:
            if self.stop.is_set():  # the second Ctrl-C: the journal is already durable
                if self.on_second_interrupt is not None:
                    self.on_second_interrupt()
                raise KeyboardInterrupt
            self.stop.set()
            if self.on_interrupt:
                self.on_interrupt()

        previous = {s: signal.signal(s, interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def run(self, jobs: list[Job]) -> SendStats:
        """Send ``jobs``; returns the counts. The journal holds every outcome when this returns."""
        if self.batch_size is not None:
            return _Batches(self, jobs).run()
        run = _Run(self, jobs)
        workers = [threading.Thread(target=run.work, name=f"batchsms-send-{n}", daemon=True)
                   for n in range(self.concurrency)]
        for thread in workers:
            thread.start()
        try:
            with self._signals():
                while (run.pending and not self.stop.is_set()) or run.in_flight:
                    self._dispatch(run)
                    if run.in_flight:
                        self._collect(run)
                        if run.drain_deadline is not None and time.monotonic() > run.drain_deadline:
                            break
                    elif run.pending and not self.stop.is_set():
                        self.stop.wait(self.limiter.wait_time())  # Ctrl-C ends the wait at once
                self._drain(run)
        finally:
            for _ in workers:
                run.ready.put(None)
            run.bar.set_postfix_str(self._postfix(run.stats.counts), refresh=False)
            run.bar.close()
        stats = run.stats
        stats.interrupted = self.stop.is_set() and stats.auth_error is None
        stats.elapsed = time.monotonic() - run.started_at
        return stats

    def _dispatch(self, run: _Run) -> None:
        """Journal the rows that may go now (rate, free workers) with the outcomes so far; then hand them out.

        One commit carries both, so a row's request never leaves before the journal
        durably says it is in flight, and one fsync serves many rows.
        """
        batch: list[Job] = []
        expired: list[Job] = []
        if run.pending and not self.stop.is_set():
            free = self.concurrency - len(run.in_flight)
            for _ in range(self.limiter.take(min(free, len(run.pending)))):
                job = run.pending.popleft()
                if self._expired(job):  # the schedule passed during the run: the API would refuse it
                    expired.append(job)
                    run.finishes.append(Finish(
                        job.row, Status.FAILED, 0, segments=job.segments,
                        error="schedule-in-past: the Schedule time passed more than an hour ago "
                              "during the run; fix it and use --retry-failed"))
                    run.stats.counts[Status.FAILED] += 1
                    run.bar.update(1)
                else:
                    batch.append(job)
        if batch or run.finishes or run.releases:
            self.journal.commit(starts=[(j.row, j.digest, j.body) for j in batch + expired],
                                finishes=run.finishes, releases=run.releases)
            run.finishes, run.releases = [], []
        for job in batch:
            run.in_flight[job.row] = job
            run.ready.put(job)
        if self.stop.is_set() and run.drain_deadline is None:
            run.drain_deadline = time.monotonic() + self.drain_timeout

    def _collect(self, run: _Run) -> None:
        """Wait for the first answer (no longer than the next dispatch is due), take all that came, record them."""
        can_dispatch = run.pending and not self.stop.is_set() and len(run.in_flight) < self.concurrency
        answers = _waiting(run.answers, max(0.001, self.limiter.wait_time()) if can_dispatch else 0.25)
        now = time.time()
        stats = run.stats
        for job, outcome in answers:
            del run.in_flight[job.row]
            if outcome.stops_run and not stats.auth_error:  # refused credentials, TLS: every row would fail
                stats.auth_error = self.client.stop_message(outcome)
                self.stop.set()
            record = finish_for(job, outcome, now)
            if record is None:
                run.releases.append(job.row)
                stats.counts[RELEASED] += 1
            else:
                run.finishes.append(record)
                stats.counts[record.state] += 1
                run.bar.update(1)
        if not self.quiet and time.monotonic() - run.last_postfix > 0.2:
            run.last_postfix = time.monotonic()
            run.bar.set_postfix_str(self._postfix(stats.counts), refresh=False)

    def _drain(self, run: _Run) -> None:
        """Rows still in flight after the drain will never have their answer read: they become unknown."""
        for job in run.in_flight.values():
            run.finishes.append(Finish(job.row, Status.UNKNOWN, 1, segments=job.segments,
                                       error=STILL_WAITING))
            run.stats.counts[Status.UNKNOWN] += 1
        self.journal.commit(finishes=run.finishes, releases=run.releases)
        run.finishes, run.releases = [], []

    @staticmethod
    def _expired(job: Job) -> bool:
        schedule = job.body.get(F.SCHEDULE)
        return schedule is not None and schedule < time.time() - MAX_SCHEDULE_BEHIND

    @staticmethod
    def _postfix(counts: Counter) -> str:
        shown = (Status.SENT, Status.SCHEDULED, Status.FAILED, Status.UNKNOWN)
        return " ".join(f"{k}={counts[k]}" for k in shown if counts[k]) or "starting"


class _Run:
    """The state of one :meth:`Sender.run`: the rows still to go, those in flight, and what to commit next."""

    def __init__(self, sender: Sender, jobs: list[Job]) -> None:
        self.stats = SendStats()
        self.started_at = time.monotonic()
        self.pending = deque(jobs)
        self.in_flight: dict[int, Job] = {}  # row -> job, for requests whose answer has not been read
        self.finishes: list[Finish] = []  # outcomes for the next commit
        self.releases: list[int] = []  # rows provably never taken, for the next commit
        self.drain_deadline: float | None = None
        self.last_postfix = 0.0
        # Plain worker threads on queues rather than an executor: no Future per message, and
        # daemon threads, so a request still hanging after the drain never holds up the exit.
        self.ready: queue.SimpleQueue = queue.SimpleQueue()  # journaled rows for the workers; None = stop
        self.answers: queue.SimpleQueue = queue.SimpleQueue()  # (job, outcome) back to the main thread
        self._send = sender.client.send
        self._scrub = sender.client.scrub  # an exception's text may hold anything, the token included
        self._stop = sender.stop
        interactive = sys.stderr.isatty()
        self.bar = tqdm(total=len(jobs), unit="msg", disable=sender.quiet or not jobs, dynamic_ncols=True,
                        file=sys.stderr, smoothing=0.05,
                        mininterval=0.1 if interactive else 30)  # a cron log gets a line every 30 s

    def work(self) -> None:
        """A worker thread: one message at a time, with its retries; each answer goes back to the main thread."""
        while (job := self.ready.get()) is not None:
            try:
                outcome = self._send(job.body, self._stop)
            except BaseException as exc:  # a bug must not leave the row looking in flight forever
                outcome = Outcome(Decision.UNKNOWN, error=self._scrub(f"internal error: {exc!r}"))
            self.answers.put((job, outcome))


class _Batches:
    """One :meth:`Sender.run` with a batch size: the single-send loop, handing out batches instead of rows.

    The main thread owns the journal: it commits each batch's rows as started, then hands
    the batch to a free worker (``concurrency`` of them, one request each); the workers turn
    their answers into journal records, and the main thread commits those once the next
    batches are out rather than with their rows, which would put the outcomes' SQL between
    an answer and the next batch (measured at 50 ms latency, batches of 100, 8 in flight:
    13,200 msg/s with the outcomes in the same commit, 14,000 in their own). Committing the
    outcomes less often was slower still (13,400 msg/s every 1,000 rows: a long commit holds
    up the workers reading their answers), and so was letting each worker journal its own
    next batch (13,600: one commit per batch where the main thread commits for every free
    worker at once).
    """

    def __init__(self, sender: Sender, jobs: list[Job]) -> None:
        self.sender = sender
        self.journal, self.limiter, self.stop = sender.journal, sender.limiter, sender.stop
        self.stats = SendStats()
        self.started_at = time.monotonic()
        self.pending = deque(jobs)
        self.in_flight: dict[int, Job] = {}  # row -> job, for batches whose answer has not been recorded
        self.requests = 0  # batches in flight
        self.finishes: list[Finish] = []  # outcomes for the next commit
        self.releases: list[int] = []  # rows provably never taken, for the next commit
        #: Rows a batch refused as too large sent back to ``pending``: journaled as started already,
        #: with the attempts made so far.
        self.requeued: dict[int, int] = {}
        self.batch_size = sender.batch_size or 1  # halved when the API refuses a batch as too large
        self.drain_deadline: float | None = None
        self.last_postfix = 0.0
        self.ready: queue.SimpleQueue = queue.SimpleQueue()  # journaled batches for the workers; None = stop
        self.answers: queue.SimpleQueue = queue.SimpleQueue()  # (batch, outcome, records) to the main thread
        self._send_batch = sender.client.send_batch
        self._scrub = sender.client.scrub
        interactive = sys.stderr.isatty()
        self.bar = tqdm(total=len(jobs), unit="msg", disable=sender.quiet or not jobs, dynamic_ncols=True,
                        file=sys.stderr, smoothing=0.05, mininterval=0.1 if interactive else 30)

    def run(self) -> SendStats:
        sender, stop = self.sender, self.stop
        workers = [threading.Thread(target=self.work, name=f"batchsms-batch-{n}", daemon=True)
                   for n in range(sender.concurrency)]
        for thread in workers:
            thread.start()
        try:
            with sender._signals():
                while (self.pending and not stop.is_set()) or self.in_flight:
                    self._dispatch()
                    if self.in_flight:
                        self._collect()
                        if self.drain_deadline is not None and time.monotonic() > self.drain_deadline:
                            break
                    elif self.pending and not stop.is_set():
                        stop.wait(self._wait_time())  # Ctrl-C ends the wait at once
                self._drain()
        finally:
            for _ in workers:
                self.ready.put(None)
            self.bar.set_postfix_str(sender._postfix(self.stats.counts), refresh=False)
            self.bar.close()
        stats = self.stats
        stats.interrupted = stop.is_set() and stats.auth_error is None
        stats.elapsed = time.monotonic() - self.started_at
        stats.batch_size = self.batch_size
        return stats

    def work(self) -> None:
        """A worker thread: one batch at a time, with its retries; each answer goes back to the main thread."""
        while (batch := self.ready.get()) is not None:
            try:
                outcome = self._send_batch([job.body for job in batch], self.stop,
                                           encoded=[job.encoded() for job in batch])
            except BaseException as exc:  # a bug must not leave the rows looking in flight forever
                outcome = BatchOutcome(Decision.UNKNOWN, error=self._scrub(f"internal error: {exc!r}"))
            now = time.time()  # the journal records, made here: the main thread has enough to do
            records = None if outcome.too_large and len(batch) > 1 else [
                finish_for(job, item, now) for job, item in zip(batch, outcome.each(len(batch)), strict=True)]
            self.answers.put((batch, outcome, records))

    def _wait_time(self) -> float:
        """Seconds until the rate lets the next whole batch go."""
        return self.limiter.wait_time(min(self.batch_size, len(self.pending)))

    def _dispatch(self) -> None:
        """Journal whole batches (every row, with its body) for the free workers and hand them out; then,
        while they are out, commit the outcomes recorded so far.

        A batch is as many rows as the batch size, the rate and :data:`MAX_BATCH_BYTES` allow.
        Rows sent back by a batch refused as too large are journaled as started already (by
        their first request): they are not started again.
        """
        batches: list[list[Job]] = []
        starts: list[Job] = []
        expired: list[Finish] = []  # committed with the starts: a row is journaled before its outcome
        while self.pending and not self.stop.is_set() and self.requests + len(batches) < self.sender.concurrency:
            wanted = self.limiter.take_whole(min(self.batch_size, len(self.pending)))
            if not wanted:
                break
            batch: list[Job] = []
            size = passed = 0
            while self.pending and len(batch) + passed < wanted:
                job = self.pending[0]
                weight = _weight(job.body)
                if batch and size + weight > MAX_BATCH_BYTES:
                    break  # a batch of long texts: its answer must stay within the client's cap
                self.pending.popleft()
                size += weight
                if job.row not in self.requeued:
                    starts.append(job)
                if Sender._expired(job):
                    expired.append(Finish(
                        job.row, Status.FAILED, self.requeued.pop(job.row, 0), segments=job.segments,
                        error="schedule-in-past: the Schedule time passed more than an hour ago "
                              "during the run; fix it and use --retry-failed"))
                    self.stats.counts[Status.FAILED] += 1
                    self.bar.update(1)
                    passed += 1
                else:
                    batch.append(job)
            self.limiter.refund(wanted - len(batch) - passed)  # cut short by long texts
            if batch:
                batches.append(batch)
        if starts or expired:
            self.journal.commit(starts=[(j.row, j.digest, j.encoded()) for j in starts], finishes=expired)
        for batch in batches:
            for job in batch:
                self.in_flight[job.row] = job
            self.requests += 1
            self.ready.put(batch)
        if self.finishes or self.releases:
            self._commit_outcomes()
        for job in islice(self.pending, 2 * self.batch_size):  # while the workers are out, so that the next
            job.encoded()  # dispatch, between an answer and its batch, only commits
        if self.stop.is_set() and self.drain_deadline is None:
            self.drain_deadline = time.monotonic() + self.sender.drain_timeout

    def _commit_outcomes(self) -> None:
        self.journal.commit(finishes=self.finishes, releases=self.releases)
        self.finishes, self.releases = [], []

    def _collect(self) -> None:
        """Wait for the first answer (no longer than the next dispatch is due), take all that came, record them."""
        sender = self.sender
        can_dispatch = self.pending and not self.stop.is_set() and self.requests < sender.concurrency
        answers = _waiting(self.answers, max(0.001, self._wait_time()) if can_dispatch else 0.25)
        for answer in answers:
            self._record(*answer)
        if not sender.quiet and time.monotonic() - self.last_postfix > 0.2:
            self.last_postfix = time.monotonic()
            self.bar.set_postfix_str(sender._postfix(self.stats.counts), refresh=False)

    def _record(self, jobs: list[Job], outcome: BatchOutcome, records: list[Finish | None] | None) -> None:
        """The outcomes of one batch's rows, in order; a batch refused as too large goes again, halved."""
        self.requests -= 1
        for job in jobs:
            del self.in_flight[job.row]
        stats = self.stats
        if records is None:  # refused as too large: none of it was taken
            if self.stop.is_set():  # and this run sends no more: a later run sends them
                for job in jobs:
                    self.requeued.pop(job.row, None)
                    self.releases.append(job.row)
                stats.counts[RELEASED] += len(jobs)
                return
            for job in jobs:  # still journaled as started: they go again without a new start
                self.requeued[job.row] = self.requeued.get(job.row, 0) + outcome.attempts
            self.pending.extendleft(reversed(jobs))
            smaller = max(1, len(jobs) // 2)
            if smaller < self.batch_size:
                self.batch_size = smaller
                self._notice(f"the API refused a batch of {len(jobs):,} messages as too large "
                             f"({outcome.error_text}); none of it was taken: sending batches of "
                             f"{smaller:,} from now on")
            return
        if outcome.stops_run and not stats.auth_error:  # refused credentials, TLS: every batch would fail
            stats.auth_error = self.sender.client.stop_message(outcome)
            self.stop.set()
        recorded = 0
        requeued = self.requeued
        for job, record in zip(jobs, records, strict=True):
            earlier = requeued.pop(job.row, 0) if requeued else 0
            if record is None:  # never taken (credentials refused, or a Ctrl-C in a 429's backoff)
                self.releases.append(job.row)
                stats.counts[RELEASED] += 1
            else:
                record.attempts += earlier
                self.finishes.append(record)
                stats.counts[record.state] += 1
                recorded += 1
        self.bar.update(recorded)

    def _notice(self, text: str) -> None:
        self.stats.notices.append(text)
        if self.sender.on_notice is not None:
            with tqdm.external_write_mode(file=sys.stderr):  # above the progress bar, not through it
                self.sender.on_notice(text)

    def _drain(self) -> None:
        """Rows still in flight after the drain will never have their answer read: they become unknown.
        Rows a batch refused as too large sent back, and not sent again before the stop, were never taken."""
        for job in self.in_flight.values():
            self.finishes.append(Finish(job.row, Status.UNKNOWN, 1 + self.requeued.pop(job.row, 0),
                                        segments=job.segments, error=STILL_WAITING))
            self.stats.counts[Status.UNKNOWN] += 1
        if self.requeued:
            self.releases.extend(self.requeued)
            self.stats.counts[RELEASED] += len(self.requeued)
            self.requeued.clear()
        self._commit_outcomes()


#: The most bytes of message bodies (estimated, :func:`_weight`) in one BatchMessages request. The
#: answer repeats each message's text plus ~0.5 KB of fields, so at 1,000 messages it stays well
#: within the 4 MB the client reads of an answer.
MAX_BATCH_BYTES = 2 * 1024 * 1024


def _weight(body: dict) -> int:
    """An upper bound on a message's bytes in a JSON request or answer: 6 bytes a character (``\\uXXXX``)."""
    size = 64
    for value in body.values():
        if value.__class__ is str:
            size += 6 * len(value) + 16
    return size
