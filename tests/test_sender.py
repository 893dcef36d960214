"""The sender's pieces: planning against the journal, the rate limiter, and send-time schedule checks."""

import threading
import time

from batchsms.client import Client, Decision, Outcome
from batchsms.codes import Status
from batchsms.journal import Finish, Journal, request_hash
from batchsms.report import Report, RowResult
from batchsms.segments import Segments
from batchsms.sender import Job, RateLimiter, Sender, plan


def result(row, body, status="valid"):
    return RowResult(row - 2, row, status, body if status == "valid" else None, Segments("GSM-7", 5, 1))


def test_plan_against_the_journal(tmp_path):
    bodies = {r: {"To": f"+6141200000{r}", "Text": "x"} for r in range(2, 8)}
    report = Report([result(r, b) for r, b in bodies.items()] + [result(8, None, "invalid")])
    with Journal(tmp_path / "j") as journal:
        journal.commit(starts=[(r, request_hash(bodies[r])) for r in (2, 3, 4, 5)])
        journal.commit(finishes=[Finish(2, Status.SENT, 1), Finish(3, Status.FAILED, 1, error="x"),
                                 Finish(4, Status.UNKNOWN, 1)])
        entries = journal.entries()
        assert entries[5].state == "started"
        p = plan(report, entries)
        assert [j.row for j in p.jobs] == [6, 7]
        assert (p.done, p.held_failed, p.held_unknown) == (1, [3], [4, 5])
        p = plan(report, entries, retry_unknown=True, retry_failed=True, limit=3)
        assert [j.row for j in p.jobs] == [3, 4, 5] and p.limited == 2
        bodies[2]["Text"] = "changed"
        changed = Report([result(r, b) for r, b in bodies.items()])
        assert plan(changed, entries).mismatched == [2]


def test_recover_turns_in_flight_rows_unknown(tmp_path):
    with Journal(tmp_path / "j") as journal:
        journal.commit(starts=[(2, "h"), (3, "h")])
        journal.commit(finishes=[Finish(2, Status.SENT, 1)])
    with Journal(tmp_path / "j") as journal:
        assert journal.recover() == 1
        entry = journal.entries()[3]
        assert entry.state == Status.UNKNOWN and "in flight" in entry.error


def test_release_restores_a_resent_row_to_its_earlier_state(tmp_path):
    with Journal(tmp_path / "j") as journal:
        journal.commit(starts=[(2, "h"), (3, "h")])
        journal.commit(finishes=[Finish(2, Status.UNKNOWN, 1, error="timeout")])
        journal.commit(starts=[(2, "h")])  # --retry-unknown
        journal.commit(releases=[2, 3])  # the run stopped before either was taken
        entries = journal.entries()
        assert 3 not in entries
        assert (entries[2].state, entries[2].error, entries[2].attempts) == (Status.UNKNOWN, "timeout", 1)


def test_journal_is_locked_to_one_process(tmp_path):
    import pytest

    from batchsms.errors import JournalError

    with Journal(tmp_path / "j"), pytest.raises(JournalError,
                                                 match="another batchsms send .or status, due, cancel or receive"):
        Journal(tmp_path / "j")


def test_rate_limiter_with_a_fake_clock():
    now = [0.0]
    limiter = RateLimiter(10, burst=2, clock=lambda: now[0])
    assert limiter.take(5) == 2
    assert limiter.take(1) == 0
    assert abs(limiter.wait_time() - 0.1) < 1e-9
    now[0] = 0.35
    assert limiter.take(5) == 2  # refilled, but never above the burst
    assert RateLimiter(None).take(1000) == 1000


def test_schedule_that_passed_during_the_run_is_not_sent(sandbox, tmp_path):
    body = {"To": "+61412000001", "Text": "x", "Schedule": int(time.time()) - 7200}
    client = Client(sandbox.url, sandbox.account_sid, sandbox.auth_token, "PS1")
    with Journal(tmp_path / "j") as journal:
        stats = Sender(client, journal, quiet=True, handle_signals=False).run([Job(2, body, "h", 1)])
        entry = journal.entries()[2]
    assert stats.counts[Status.FAILED] == 1 and "schedule-in-past" in entry.error
    assert sandbox.state.stats["requests"] == 0


def test_answers_not_back_when_the_drain_time_is_up_leave_their_rows_unknown(sandbox, tmp_path):
    """The backstop behind the client's own timeouts: after a stop, the run waits for the requests
    in flight at most ``drain_timeout``; rows whose answer has not come by then are unknown, and
    rows never dispatched stay unstarted. (The client's whole-answer deadline ends a real request
    sooner, see test_send_paths.py; here a request hangs past every timeout.)"""
    client = Client(sandbox.url, sandbox.account_sid, sandbox.auth_token, "PS1")
    release, started = threading.Event(), []

    def send_that_hangs(body, stop=None):
        started.append(body["To"])
        if len(started) == 2:  # both requests are out: Ctrl-C
            sender.stop.set()
        release.wait(10)
        return Outcome(Decision.ACCEPTED, 201, message_sid="MLATE")

    client.send = send_that_hangs
    jobs = [Job(row, {"To": f"+614120000{row:02d}", "Text": "x"}, f"h{row}", 1) for row in range(2, 7)]
    with Journal(tmp_path / "j") as journal:
        sender = Sender(client, journal, concurrency=2, quiet=True, drain_timeout=0.5, handle_signals=False)
        began = time.monotonic()
        try:
            stats = sender.run(jobs)
        finally:
            release.set()
        waited = time.monotonic() - began
        entries = journal.entries()
    assert stats.interrupted and stats.counts == {Status.UNKNOWN: 2}
    assert {row: (e.state, e.error) for row, e in entries.items()} == {
        row: (Status.UNKNOWN, "still waiting for the API's answer when the run stopped") for row in (2, 3)}
    assert waited >= 0.5


def test_restart_keeps_the_old_journal_and_never_moves_a_busy_one(tmp_path):
    import pytest

    from batchsms.errors import JournalError

    path = tmp_path / "j"
    with Journal(path) as journal:
        journal.commit(starts=[(2, "h")])
        with pytest.raises(JournalError, match="another batchsms send"):
            Journal(path, restart=True)
        assert path.exists() and not list(tmp_path.glob("j.*.bak"))
    with Journal(path, restart=True) as journal:
        assert journal.entries() == {} and journal.backup is not None
    with Journal(journal.backup) as old:
        assert list(old.entries()) == [2]
