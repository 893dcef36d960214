"""Send the planned rows concurrently, rate-limited, journaled, with a progress bar and Ctrl-C handling.

The main thread owns the journal and dispatches; worker threads only make HTTP
calls. Each loop turn commits, in one transaction, the outcomes that arrived and
the rows about to go out, then hands those rows to the workers: a row's request
never leaves before the journal durably says it is in flight, and one fsync
serves many rows (group commit).
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

from tqdm import tqdm

from . import fields as F
from .client import Client, Decision, Outcome
from .codes import DONE, MAYBE_SENT, Status
from .journal import Entry, Finish, Journal, request_hash
from .report import Report
from .rules import MAX_SCHEDULE_BEHIND

RELEASED = "released"


@dataclass(slots=True)
class Job:
    """One row to send: its Excel row number, request body, fingerprint and segment count."""

    row: int
    body: dict
    digest: str
    segments: int
    due: float | None = None  # a held message: when ``batchsms due`` hands it to the API


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

    def wait_time(self) -> float:
        if self.rate is None:
            return 0.0
        self._refill()
        return max(0.0, (1 - self.tokens) / self.rate)


@dataclass
class SendStats:
    counts: Counter = field(default_factory=Counter)
    interrupted: bool = False
    auth_error: str | None = None
    elapsed: float = 0.0


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
    marks the rows whose answer never came as unknown.
    """

    def __init__(self, client: Client, journal: Journal, *, concurrency: int = 8, rate: float | None = None,
                 quiet: bool = False, drain_timeout: float = 35.0, handle_signals: bool = True) -> None:
        self.client = client
        self.journal = journal
        self.concurrency = max(1, concurrency)
        self.limiter = RateLimiter(rate, burst=max(1, min(self.concurrency, int(rate or 1))))
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
        timeout = max(0.001, self.limiter.wait_time()) if can_dispatch else 0.25
        answers = []
        try:
            answers.append(run.answers.get(timeout=timeout))
            while True:
                answers.append(run.answers.get_nowait())
        except queue.Empty:
            pass
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
                                       error="still waiting for the API's answer when the run stopped"))
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
