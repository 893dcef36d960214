"""``batchsms send`` paths end to end against a sandbox: --rate, the drain after Ctrl-C, --retry-failed."""

import collections
import signal
import time

from .helpers import (
    contacts,
    read_results,
    requests_seen,
    send,
    start_send,
    taken_ids,
    wait_until,
    write_csv,
)


class TimedList(list):
    """``SandboxState.taken`` that also notes when each message arrived (the sandbox appends under its lock)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def append(self, item):
        self.times.append(time.monotonic())
        super().append(item)


def test_rate_paces_the_messages_with_a_burst_of_at_most_the_concurrency(sandbox, tmp_path):
    """--rate 20 with --concurrency 8: a token bucket of 8, refilled at 20 a second.

    So 30 messages take at least (30 - 8) / 20 = 1.1 s, and in any stretch of t seconds at
    most 8 + 20 t arrive. Only lower bounds on time: a slow machine is never a failure.
    """
    arrivals = sandbox.state.taken = TimedList()
    sheet = write_csv(tmp_path / "c.csv", contacts(30))
    started = time.monotonic()
    result = send(sandbox, tmp_path, sheet, "--text", "x", "--rate", "20", "--concurrency", "8", "--quiet")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert sorted(b["ExternalId"] for b in arrivals) == sorted(f"id{i}" for i in range(30))
    assert elapsed >= 1.1
    times = arrivals.times
    assert times[-1] - times[0] >= 1.0  # 1.1 s, less the first request's own way to the sandbox
    slack = 2  # arrival times jitter (threads, loopback); 2 messages is 0.1 s at 20/s
    worst = max(j - i + 1 - 20 * (times[j] - times[i]) for i in range(30) for j in range(i, 30))
    assert worst <= 8 + slack, f"a burst of {worst:.1f} messages above the rate; the bucket holds 8"


def test_ctrl_c_with_answers_that_never_come_stops_within_the_timeouts(make_sandbox, tmp_path):
    """The sandbox holds every answer 30 s; --read-timeout 1 --connect-timeout 0.5 bound the drain.

    After one Ctrl-C the run waits for the requests in flight no longer than
    read + connect + 1 s, exits 130, and the rows whose answers never came are
    unknown (the sandbox may still take them): a re-run never sends them.
    """
    server = make_sandbox(latency_ms=30_000)
    sheet = write_csv(tmp_path / "c.csv", contacts(40))
    proc = start_send(server, tmp_path, sheet, "--read-timeout", "1", "--connect-timeout", "0.5")
    try:
        wait_until(lambda: requests_seen(server) >= 4, "4 requests were in flight")
        proc.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    waited = time.monotonic() - interrupted
    assert proc.returncode == 130, err
    assert waited < 1 + 0.5 + 1 + 3, f"the drain took {waited:.1f} s"  # the bound plus slack for a busy machine
    assert "Stopping: waiting for the requests in flight" in err and "run the same command again" in err
    results = read_results(tmp_path / "c.results.csv")
    in_flight = [r["ExternalId"] for r in results if r["Status"] == "unknown"]
    pending = [r["ExternalId"] for r in results if r["Status"] == "pending"]
    assert len(in_flight) + len(pending) == 40
    assert len(in_flight) == requests_seen(server) >= 4  # every request that went out, and only those
    assert all(r["Error"].startswith("no answer: timed out") for r in results if r["Status"] == "unknown")

    server.latency = 0.0
    before = requests_seen(server)
    rerun = start_send(server, tmp_path, sheet)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 1, err  # the unknown rows wait for a person
    assert "unknown, not resent: rows" in out
    assert requests_seen(server) - before == len(pending)
    assert sorted(taken_ids(server)) == sorted(pending)  # the first run's requests are still held (30 s)
    assert collections.Counter(r["Status"] for r in read_results(tmp_path / "c.results.csv")) == {
        "unknown": len(in_flight), "sent": len(pending)}


def test_retry_failed_resends_exactly_the_refused_rows(sandbox, tmp_path):
    """The API refuses a 6th active lease to one number. The check sees only this sheet's rows, so
    leases left by another campaign make the API refuse rows the check passed: they are failed."""
    other = write_csv(tmp_path / "other.csv", [["Mobile", "Name"]] + [["0412000001", f"n{i}"] for i in range(5)])
    assert send(sandbox, tmp_path, other, "--text", "Earlier {{ Name }}", "--quiet").exit_code == 0

    rows = contacts(5)
    rows[2][0] = rows[4][0] = "0412000001"  # rows 3 and 5 go to the number that has 5 leases already
    sheet = write_csv(tmp_path / "c.csv", rows)
    args = (sheet, "--text", "Hi {{ Name }}", "--quiet")
    first = send(sandbox, tmp_path, *args)
    assert first.exit_code == 1, first.output
    results = read_results(tmp_path / "c.results.csv")
    assert [(r["Status"], r["Attempts"]) for r in results] == [
        ("sent", "1"), ("failed", "1"), ("sent", "1"), ("failed", "1"), ("sent", "1")]
    assert results[1]["Error"] == "LeaseLimitExceeded: There are already 5 active leases to +61412000001"
    assert sorted(taken_ids(sandbox)[5:]) == ["id0", "id2", "id4"]

    before = requests_seen(sandbox)
    plain = send(sandbox, tmp_path, *args)
    assert plain.exit_code == 1
    assert "  failed earlier, not resent: rows 3, 5 (--retry-failed)\n" in plain.stdout
    assert "  to send now: 0 messages" in plain.stdout
    assert requests_seen(sandbox) == before

    still = send(sandbox, tmp_path, *args, "--retry-failed")  # the cause is still there: refused again
    assert still.exit_code == 1
    assert "  to send now: 2 messages (2 segments)" in still.stdout
    assert requests_seen(sandbox) == before + 2
    assert [(r["Status"], r["Attempts"]) for r in read_results(tmp_path / "c.results.csv")][1::2] == [
        ("failed", "2"), ("failed", "2")]

    with sandbox.state.lock:  # the earlier campaign's leases expire: the cause is gone
        sandbox.state.leases.clear()
    fixed = send(sandbox, tmp_path, *args, "--retry-failed")
    assert fixed.exit_code == 0, fixed.output
    assert "  already sent by an earlier run: 3\n" in fixed.stdout
    assert sorted(taken_ids(sandbox)[8:]) == ["id1", "id3"]
    results = read_results(tmp_path / "c.results.csv")
    assert [(r["Status"], r["Error"]) for r in results] == [("sent", "")] * 5
    assert [r["Attempts"] for r in results] == ["1", "3", "1", "3", "1"]

    again = send(sandbox, tmp_path, *args, "--retry-failed")  # nothing failed any more: nothing to resend
    assert again.exit_code == 0 and "  already sent by an earlier run: 5\n" in again.stdout
    assert len(taken_ids(sandbox)) == 10
