"""Sending through BatchMessages (``send --batch-size N``): exactly once under faults, batch by batch.

Real sandbox on loopback, real journal, the real client and sender; the CLI through CliRunner or a
child process (for SIGKILL and Ctrl-C). Where the sandbox must answer what the API might but the
sandbox never does (one item short, an item with neither MessageSid nor ErrorCode), the test wraps
the sandbox's own batch handler and changes its answer after the messages were taken, as a
misbehaving server would. Retries run with the client's injectable ``sleep``, so no test waits for
a Retry-After.
"""

from __future__ import annotations

import collections
import json
import signal
import sqlite3
import time

import pytest
from click.testing import CliRunner

from batchsms.cli import main
from batchsms.client import Client, Decision, encode_batch, join_batch, read_batch, read_batch_item, says_too_large
from batchsms.codes import Status
from batchsms.config import load_preferences
from batchsms.errors import ConfigError
from batchsms.journal import Journal, request_hash
from batchsms.sandbox.server import ManualClock
from batchsms.sender import MAX_BATCH_BYTES, RateLimiter, Sender, _weight
from batchsms.sender import Job as SendJob

from .helpers import contacts, env_for, read_results, requests_seen, send, start_send, taken_ids, wait_until, write_csv
from .test_client_hostile import Server, answer

TEXT = "Hi {{ Name }}"


def body(i: int) -> dict:
    return {"To": f"+614120{i:05d}", "Text": f"Hi Name{i}", "ExternalId": f"id{i}"}


def run_sender(server, tmp_path, n, batch_size, *, concurrency=8, rate=None, waits=None, bodies=None,
               **client_options):
    """Rows 2..n+1 (``body(i)``, or ``bodies``) through a real Sender in batches; returns the stats and the
    journal's entries."""
    waits = [] if waits is None else waits
    client = Client(server.url, server.account_sid, server.auth_token, "PS1", sleep=waits.append,
                    jitter=lambda: 0.0, **client_options)
    bodies = bodies or [body(i) for i in range(n)]
    jobs = [SendJob(i + 2, b, request_hash(b), 1) for i, b in enumerate(bodies)]
    with Journal(tmp_path / "j") as journal:
        sender = Sender(client, journal, concurrency=concurrency, rate=rate, quiet=True, handle_signals=False,
                        batch_size=batch_size)
        stats = sender.run(jobs)
        entries = journal.entries()
    client.close()
    return stats, entries


def batch_send(server, tmp_path, sheet, size, *extra):
    return send(server, tmp_path, sheet, "--text", TEXT, "--batch-size", str(size), "--quiet", *extra)


def wrap_batches(server, change):
    """Let the sandbox take each batch as usual, then hand its answer to ``change(items, answer)``."""
    original = server._take_batch

    def take(property_sid, items):
        return change(items, original(property_sid, items))

    server._take_batch = take


def ledger(server):
    """ExternalId -> MessageSid of every message the sandbox took."""
    with server.state.lock:
        return {m["ExternalId"]: sid for sid, m in server.state.messages.items()}


@pytest.fixture
def serve():
    """Loopback servers that answer as a handler of tests/test_client_hostile.py says."""
    servers = []

    def start(handler):
        servers.append(Server(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# --------------------------------------------------------------------------- the happy path


def test_every_row_goes_once_in_batches_and_a_rerun_sends_nothing(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(25))
    result = batch_send(sandbox, tmp_path, sheet, 10)
    assert result.exit_code == 0, result.output
    assert "  to send now: 25 messages (25 segments) from property PS1 via 127.0.0.1:" in result.output
    assert "  via BatchMessages: up to 10 rows unknown per unanswered request (batches of 10)\n" in result.output
    assert requests_seen(sandbox) == 3  # 10 + 10 + 5
    assert sorted(taken_ids(sandbox)) == sorted(f"id{i}" for i in range(25))
    sids = ledger(sandbox)
    results = read_results(tmp_path / "c.results.csv")
    assert [(r["Status"], r["MessageSid"], r["Attempts"], r["Error"]) for r in results] == [
        ("sent", sids[f"id{i}"], "1", "") for i in range(25)]
    assert all(r["SenderId"].startswith("+6140") and r["Segments"] == "1" for r in results)  # the answer's fields
    again = batch_send(sandbox, tmp_path, sheet, 10)
    assert again.exit_code == 0 and "already sent by an earlier run: 25" in again.output
    assert requests_seen(sandbox) == 3 and len(taken_ids(sandbox)) == 25


def test_every_row_of_a_batch_is_journaled_with_its_body_before_the_batch_goes(sandbox, tmp_path):
    journal = tmp_path / "c.results.csv.journal"
    seen = []

    def look(items, answer):
        rows = [int(item["ExternalId"][2:]) + 2 for item in items]
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
            found = dict(db.execute(f"SELECT row, state || ' ' || body FROM rows WHERE row IN "
                                    f"({','.join('?' * len(rows))})", rows).fetchall())
        seen.extend(found.get(row) == f"started {json.dumps(item)}" for row, item in zip(rows, items, strict=True))
        return answer

    wrap_batches(sandbox, look)
    sheet = write_csv(tmp_path / "c.csv", contacts(30))
    assert batch_send(sandbox, tmp_path, sheet, 7).exit_code == 0
    assert seen == [True] * 30


# --------------------------------------------------------------------------- the answer, item by item


def test_items_the_api_refuses_fail_alone(sandbox, tmp_path):
    client = Client(sandbox.url, sandbox.account_sid, sandbox.auth_token, "PS1")
    for n in range(5):  # five leases to row 5's number already: the API refuses a sixth
        assert client.send({"To": "+61412000003", "Text": f"earlier {n}"}).decision is Decision.ACCEPTED
    sheet = write_csv(tmp_path / "c.csv", contacts(6))
    result = batch_send(sandbox, tmp_path, sheet, 4)
    assert result.exit_code == 1
    results = read_results(tmp_path / "c.results.csv")
    assert [(r["Status"], r["Error"]) for r in results] == [("sent", "")] * 3 + [
        ("failed", "LeaseLimitExceeded: There are already 5 active leases to +61412000003")] + [("sent", "")] * 2
    assert taken_ids(sandbox)[:5] == [None] * 5
    assert sorted(taken_ids(sandbox)[5:]) == ["id0", "id1", "id2", "id4", "id5"]


def test_an_answer_one_item_short_leaves_its_whole_batch_unknown(sandbox, tmp_path):
    wrap_batches(sandbox, lambda items, answer: answer[:-1] if items[0]["ExternalId"] == "id3" else answer)
    sheet = write_csv(tmp_path / "c.csv", contacts(7))
    assert batch_send(sandbox, tmp_path, sheet, 3).exit_code == 1
    results = read_results(tmp_path / "c.results.csv")
    short = ("unknown", "", "the server answered 200 to the batch but not as the Fone Dynamics API does "
                            "(2 items for 3 messages); the batch may have been taken; check --base-url")
    assert [(r["Status"], r["MessageSid"], r["Error"]) for r in results] == [
        ("sent", ledger(sandbox)["id0"], ""), ("sent", ledger(sandbox)["id1"], ""),
        ("sent", ledger(sandbox)["id2"], ""), short, short, short, ("sent", ledger(sandbox)["id6"], "")]
    assert len(taken_ids(sandbox)) == 7  # the sandbox took them all: only the answer was wrong
    again = batch_send(sandbox, tmp_path, sheet, 3)
    assert "  unknown, not resent: rows 5, 6, 7 (--retry-unknown)\n" in again.output
    assert len(taken_ids(sandbox)) == 7


@pytest.mark.parametrize(("change", "error"), [
    (lambda answer: {"Messages": answer}, "(a JSON object, not a list)"),
    (lambda answer: "done", "(not a JSON list)"),
])
def test_an_answer_that_is_no_list_leaves_the_batch_unknown(sandbox, tmp_path, change, error):
    wrap_batches(sandbox, lambda items, answer: change(answer))
    stats, entries = run_sender(sandbox, tmp_path, 4, 4)
    assert stats.counts == {Status.UNKNOWN: 4}
    assert {e.state for e in entries.values()} == {Status.UNKNOWN}
    assert error in entries[2].error and "the batch may have been taken" in entries[2].error


def test_an_item_with_neither_messagesid_nor_errorcode_is_unknown_not_sent(sandbox, tmp_path):
    def strip(items, answer):
        for item in answer:
            if item["ExternalId"] == "id1":
                del item["MessageSid"], item["ErrorCode"]
        return answer

    wrap_batches(sandbox, strip)
    stats, entries = run_sender(sandbox, tmp_path, 4, 4)
    assert stats.counts == {Status.SENT: 3, Status.UNKNOWN: 1}
    assert (entries[3].state, entries[3].message_sid, entries[3].error) == (
        Status.UNKNOWN, None, "the batch answer's item for this message holds neither a MessageSid nor an ErrorCode")
    assert [entries[row].state for row in (2, 4, 5)] == [Status.SENT] * 3


def test_a_schedule_that_passed_during_the_run_fails_and_never_goes(sandbox, tmp_path):
    late = {**body(1), "Schedule": int(time.time()) - 7200}
    stats, entries = run_sender(sandbox, tmp_path, 3, 10, bodies=[body(0), late, body(2)])
    assert stats.counts == {Status.SENT: 2, Status.FAILED: 1}
    assert (entries[3].state, entries[3].request(), entries[3].error) == (
        Status.FAILED, late, "schedule-in-past: the Schedule time passed more than an hour ago during the run; "
                             "fix it and use --retry-failed")
    assert sorted(taken_ids(sandbox)) == ["id0", "id2"]


def test_two_items_with_one_messagesid_are_both_unknown(sandbox, tmp_path):
    def share(items, answer):
        answer[1]["MessageSid"] = answer[0]["MessageSid"]
        return answer

    wrap_batches(sandbox, share)
    stats, entries = run_sender(sandbox, tmp_path, 3, 3)
    assert [entries[row].state for row in (2, 3, 4)] == [Status.UNKNOWN, Status.UNKNOWN, Status.SENT]
    assert entries[2].error == "the batch answer gave this message's MessageSid to another message too"


# --------------------------------------------------------------------------- the request as a whole


@pytest.mark.parametrize("fault", ["429", "503"])
def test_a_429_or_503_on_a_batch_is_retried_whole(sandbox, tmp_path, fault):
    faults = iter([fault])
    sandbox._draw_fault = lambda: next(faults, None)  # the first request only
    waits = []
    stats, entries = run_sender(sandbox, tmp_path, 40, 10, waits=waits)
    assert stats.counts == {Status.SENT: 40}
    assert waits == [1.0]  # Retry-After: 1, once
    assert requests_seen(sandbox) == 5 and sandbox.state.stats[fault] == 1
    assert sorted(taken_ids(sandbox)) == sorted(f"id{i}" for i in range(40))
    assert collections.Counter(e.attempts for e in entries.values()) == {1: 30, 2: 10}  # one whole batch again


@pytest.mark.parametrize(("fault", "taken", "error"), [
    ("500", True, "500: HTTP 500 Internal Server Error (not a JSON answer: "
                  "<html><body><h1>500 Internal Server Error</h1></body></html>)"),
    ("lost", True, "no answer: connection reset"),
    ("timeout", True, "no answer: timed out"),  # waiting for the answer, or the whole answer took too long
    ("reset", False, "no answer: connection reset"),
])
def test_no_answer_leaves_the_whole_batch_unknown(make_sandbox, tmp_path, fault, taken, error):
    server = make_sandbox(faults={fault: 1.0}, timeout_hold=1)
    stats, entries = run_sender(server, tmp_path, 6, 3, read_timeout=0.3)
    assert stats.counts == {Status.UNKNOWN: 6}
    assert {(e.state, e.error[:len(error)], e.attempts) for e in entries.values()} == {(Status.UNKNOWN, error, 1)}
    assert len(taken_ids(server)) == (6 if taken else 0)


def test_a_batch_refused_until_out_of_attempts_fails_and_was_never_taken(make_sandbox, tmp_path):
    server = make_sandbox(faults={"503": 1.0})
    stats, entries = run_sender(server, tmp_path, 4, 2, max_attempts=2)
    assert stats.counts == {Status.FAILED: 4}
    assert {(e.error, e.attempts) for e in entries.values()} == {
        ("TryAgain: Please retry later (gave up after 2 attempts; never taken)", 2)}
    assert taken_ids(server) == []


def test_faults_on_batches_never_double_send_nor_claim_untaken_rows(make_sandbox, tmp_path):
    server = make_sandbox(faults={"429": 0.1, "503": 0.05, "reset": 0.05, "500": 0.05, "timeout": 0.03,
                                  "lost": 0.05}, timeout_hold=1, seed=7)
    stats, entries = run_sender(server, tmp_path, 400, 10, read_timeout=0.3)
    ids = taken_ids(server)
    assert len(ids) == len(set(ids)), "a row reached the API twice"
    taken = ledger(server)
    states = collections.Counter(e.state for e in entries.values())
    assert len(entries) == 400 and set(states) <= {Status.SENT, Status.UNKNOWN, Status.FAILED}
    assert states[Status.SENT] >= 250 and states[Status.UNKNOWN] >= 10  # every row ends somewhere known
    for row, entry in entries.items():
        external = f"id{row - 2}"
        if entry.state == Status.SENT:
            assert entry.message_sid == taken[external]  # sent only when the API took exactly this message
        elif entry.state == Status.FAILED:  # 429/503 to the last attempt: never taken
            assert external not in taken and entry.error.endswith("attempts; never taken)")
        else:  # unknown: a batch with no usable answer, whether it was taken (500, timeout, lost) or not (reset)
            assert entry.message_sid is None
    unknown_batches = {(row - 2) // 10 for row, e in entries.items() if e.state == Status.UNKNOWN}
    assert states[Status.UNKNOWN] == 10 * len(unknown_batches)  # whole batches, never part of one
    assert server.state.stats["429"] + server.state.stats["503"] > 0  # retried whole, then sent
    assert len(taken) == states[Status.SENT] + sum(f"id{row - 2}" in taken for row, e in entries.items()
                                                   if e.state == Status.UNKNOWN)


# --------------------------------------------------------------------------- too large


def test_a_batch_too_large_is_halved_for_the_rest_of_the_run_and_says_so(make_sandbox, tmp_path):
    server = make_sandbox(max_batch=30)
    sheet = write_csv(tmp_path / "c.csv", contacts(100))
    result = batch_send(server, tmp_path, sheet, 100)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "batchsms: the API refused a batch of 100 messages as too large (BatchTooLarge: A batch can hold at most "
        "30 messages; this one has 100); none of it was taken: sending batches of 50 from now on\n"
        "batchsms: the API refused a batch of 50 messages as too large (BatchTooLarge: A batch can hold at most "
        "30 messages; this one has 50); none of it was taken: sending batches of 25 from now on\n")
    assert server.state.stats["400"] == 3 and requests_seen(server) == 7  # 100, 50 + 50, then 4 x 25
    assert sorted(taken_ids(server)) == sorted(f"id{i}" for i in range(100))
    results = read_results(tmp_path / "c.results.csv")
    assert {(r["Status"], r["Attempts"]) for r in results} == {("sent", "3")}  # refused twice, then taken


def test_a_single_message_too_large_fails(make_sandbox, tmp_path):
    server = make_sandbox(max_batch=0)
    stats, entries = run_sender(server, tmp_path, 3, 4)
    assert stats.notices == ["the API refused a batch of 3 messages as too large (BatchTooLarge: A batch can hold "
                             "at most 0 messages; this one has 3); none of it was taken: sending batches of 1 from "
                             "now on"]
    assert stats.counts == {Status.FAILED: 3} and stats.batch_size == 1
    assert {(e.error, e.attempts) for e in entries.values()} == {
        ("BatchTooLarge: A batch can hold at most 0 messages; this one has 1", 2)}
    assert taken_ids(server) == []


@pytest.mark.parametrize(("status", "code", "text", "too_large"), [
    (413, "PayloadTooLarge", "the body declares 20000000 bytes; this endpoint takes at most 16777216", True),
    (413, "413", "HTTP 413 Request Entity Too Large (not a JSON answer)", True),
    (400, "BatchTooLarge", "A batch can hold at most 30 messages", True),
    (400, "InvalidRequest", "Too many messages in one request", True),
    (400, "InvalidRequest", "The maximum batch size is 500", True),
    (400, "LeaseLimitExceeded", "There are already 5 active leases to +61412345678", False),
    (400, "InvalidSchedule", "Schedule can be at most 14 days in the future", False),
    (400, "InvalidRequest", "Messages must be a list", False),
    (422, "BatchTooLarge", "A batch can hold at most 30 messages", False),  # only 400 and 413 say it
    (429, "TooManyRequests", "Too many requests", False),
])
def test_what_counts_as_a_batch_too_large(status, code, text, too_large):
    assert says_too_large(status, code, text) is too_large


def test_a_batch_carries_the_very_bytes_the_journal_keeps(make_sandbox, tmp_path):
    """Each body is encoded once: the journal keeps it and the request joins those bytes, which
    are exactly what encoding the whole batch at once writes."""
    server = make_sandbox()
    raw_requests = []
    original = server._process

    def process(property_sid, batch, raw):
        raw_requests.append(raw)
        return original(property_sid, batch, raw)

    server._process = process
    bodies = [{**body(i), "Text": f"Grüße {i} – 50% off"} for i in range(25)]
    stats, entries = run_sender(server, tmp_path, 25, 10, bodies=bodies, concurrency=1)
    assert stats.counts[Status.SENT] == 25 and len(raw_requests) == 3
    for k, raw in enumerate(raw_requests):
        rows = range(2 + 10 * k, min(27, 12 + 10 * k))
        assert raw == join_batch([entries[row].body.encode() for row in rows])
        assert raw == encode_batch([bodies[row - 2] for row in rows])
    assert join_batch([]) == encode_batch([]) == b'{"Messages": []}'
    with pytest.raises(ValueError, match="post_batch_once: 2 encoded bodies for 1 messages"):
        Client(server.url, "AC1", "token", "PS1").send_batch([body(0)], encoded=[b"{}", b"{}"])


def test_a_413_page_halves_the_batch(serve, tmp_path):
    server = serve(answer(413, b"<html>Request Entity Too Large</html>", content_type="text/html"))
    client = Client(server.url, "AC1", "token", "PS1")
    outcome = client.send_batch([body(0), body(1)])
    assert (outcome.decision, outcome.too_large, outcome.attempts, outcome.items) == (Decision.FAILED, True, 1, [])
    assert outcome.error_text == "413: HTTP 413 Whatever (not a JSON answer: <html>Request Entity Too Large</html>)"


# --------------------------------------------------------------------------- reading an answer


@pytest.mark.parametrize(("data", "count", "what"), [
    (b"", 1, "an empty body"),
    (b"<html>hi</html>", 1, "an HTML page"),
    (b"[{}", 1, "not JSON"),
    (b'{"Messages": []}', 1, "a JSON object, not a list"),
    (b'"x"', 1, "not a JSON list"),
    (b"[]", 1, "0 items for 1 message"),
    (b"[{}, {}, {}]", 2, "3 items for 2 messages"),
])
def test_read_batch_refuses_what_cannot_be_mapped_to_rows(data, count, what):
    assert read_batch(data, "application/json", count) == (None, what)


def test_read_batch_keeps_the_items_in_order():
    assert read_batch(b'[{"MessageSid": "M1"}, {"ErrorCode": "X"}]', "", 2) == (
        [{"MessageSid": "M1"}, {"ErrorCode": "X"}], "")


@pytest.mark.parametrize(("item", "decision", "fields"), [
    ({"MessageSid": "M1", "From": "+61400000001", "NumSegments": 2, "ErrorCode": None, "Message": None},
     Decision.ACCEPTED, ("M1", "+61400000001", 2, "")),
    ({"MessageSid": "M1", "From": ["+61400000001"], "NumSegments": 10 ** 30}, Decision.ACCEPTED,
     ("M1", None, None, "")),
    ({"MessageSid": "M1", "From": "x" * 40, "NumSegments": True}, Decision.ACCEPTED, ("M1", None, None, "")),
    ({"MessageSid": None, "ErrorCode": "InvalidTo", "Message": "To must be E164"}, Decision.FAILED,
     (None, None, None, "InvalidTo: To must be E164")),
    ({"MessageSid": None, "ErrorCode": 17, "Message": None}, Decision.FAILED,
     (None, None, None, "17: the API refused this message of the batch")),
    ({"MessageSid": None, "ErrorCode": None, "Message": "odd"}, Decision.UNKNOWN, (None, None, None, None)),
    ({"MessageSid": None, "ErrorCode": "  "}, Decision.UNKNOWN, (None, None, None, None)),
    ({"MessageSid": None, "ErrorCode": True}, Decision.UNKNOWN, (None, None, None, None)),
    ({"MessageSid": ""}, Decision.UNKNOWN, (None, None, None, None)),
    ({"MessageSid": {"id": 1}}, Decision.UNKNOWN, (None, None, None, None)),
    ({"MessageSid": "M" * 5000}, Decision.UNKNOWN, (None, None, None, None)),
    (["M1"], Decision.UNKNOWN, (None, None, None, None)),
    (None, Decision.UNKNOWN, (None, None, None, None)),
])
def test_read_batch_item(item, decision, fields):
    outcome = read_batch_item(item)
    assert outcome.decision is decision
    got = (outcome.message_sid, outcome.sender_id, outcome.num_segments,
           outcome.error_text if decision is not Decision.UNKNOWN else None)
    assert got == fields
    if decision is Decision.UNKNOWN:
        assert outcome.error.startswith("the batch answer's item for this message ")


def test_item_error_texts_are_scrubbed_of_the_token(serve):
    token = "s3cr3t-T0ken"
    items = json.dumps([{"MessageSid": None, "ErrorCode": f"Bad{token}", "Message": f"you sent {token}"}]).encode()
    server = serve(answer(200, items))
    outcome = Client(server.url, "AC1", token, "PS1").send_batch([body(0)])
    (item,) = outcome.items
    assert item.decision is Decision.FAILED and token not in item.error_text and "you sent" in item.error_text


# --------------------------------------------------------------------------- crashes and Ctrl-C


def test_sigkill_mid_batch_leaves_its_rows_unknown_and_never_resends_them(make_sandbox, tmp_path):
    server = make_sandbox(latency_ms=1500)  # a message is taken half the latency after it arrived
    sheet = write_csv(tmp_path / "c.csv", contacts(200))
    proc = start_send(server, tmp_path, sheet, "--batch-size", "20", "--concurrency", "2")
    wait_until(lambda: requests_seen(server) >= 2, "two batches reached the sandbox")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert taken_ids(server) == []  # still in the sandbox's latency: in flight, answer never read
    server.latency = 0.0
    rerun = start_send(server, tmp_path, sheet, "--batch-size", "20")
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 1, err
    assert "  40 rows in flight when the last run stopped: now unknown\n" in out
    wait_until(lambda: len(taken_ids(server)) == 200, "the sandbox took the two batches the killed run sent")
    ids = taken_ids(server)
    assert len(ids) == len(set(ids)) == 200, "a row reached the API twice"
    results = read_results(tmp_path / "c.results.csv")
    unknown = [r["ExternalId"] for r in results if r["Status"] == "unknown"]
    assert len(unknown) == 40 and collections.Counter(r["Status"] for r in results)["sent"] == 160
    assert sorted(unknown) == sorted(f"id{i}" for i in range(40))  # exactly the two batches in flight at the kill
    with Journal(tmp_path / "c.results.csv.journal") as journal:
        entries = journal.entries()
    assert all(entries[int(external[2:]) + 2].request() is not None for external in unknown)  # settle can find them
    again = start_send(server, tmp_path, sheet, "--batch-size", "20")
    again.communicate(timeout=60)
    assert len(taken_ids(server)) == 200


def test_ctrl_c_lets_the_batches_in_flight_finish(make_sandbox, tmp_path):
    server = make_sandbox(latency_ms=400)
    sheet = write_csv(tmp_path / "c.csv", contacts(200))
    proc = start_send(server, tmp_path, sheet, "--batch-size", "20", "--concurrency", "2")
    wait_until(lambda: requests_seen(server) >= 2, "two batches reached the sandbox")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    statuses = collections.Counter(r["Status"] for r in read_results(tmp_path / "c.results.csv"))
    assert statuses["unknown"] == 0 and statuses["sent"] == len(taken_ids(server)) >= 40
    assert statuses["sent"] + statuses["pending"] == 200 and statuses["sent"] % 20 == 0


def test_unknown_batch_rows_are_settled_from_the_message_list(make_sandbox, tmp_path):
    clock = ManualClock()
    server = make_sandbox(clock=clock, faults={"lost": 1.0})
    sheet = write_csv(tmp_path / "c.csv", contacts(6))
    assert batch_send(server, tmp_path, sheet, 3).exit_code == 1
    assert {r["Status"] for r in read_results(tmp_path / "c.results.csv")} == {"unknown"}
    clock.advance(5)
    settled = CliRunner().invoke(main, ["status", str(sheet), "--settle"], env=env_for(server, tmp_path))
    assert "  settled this run             6 sent, 0 not sent\n" in settled.output, settled.output
    sids = ledger(server)
    assert [(r["Status"], r["MessageSid"]) for r in read_results(tmp_path / "c.results.csv")] == [
        ("sent", sids[f"id{i}"]) for i in range(6)]


# --------------------------------------------------------------------------- the rate, the plan, the config


def test_the_rate_counts_messages_and_a_batch_waits_to_go_whole():
    now = [0.0]
    limiter = RateLimiter(50, burst=50, clock=lambda: now[0])
    assert limiter.take_whole(100) == 50  # never more than the burst: a second's worth
    assert limiter.take_whole(30) == 0 and limiter.wait_time(30) == pytest.approx(0.6)
    now[0] = 0.59
    assert limiter.take_whole(30) == 0  # 29.5 tokens: not yet, rather than a batch of 29
    now[0] = 0.6
    assert limiter.take_whole(30) == 30
    limiter.refund(10)
    assert limiter.tokens == pytest.approx(10)
    assert RateLimiter(None).take_whole(1000) == 1000


def test_a_rate_below_the_batch_size_sends_smaller_batches_at_that_rate(sandbox, tmp_path):
    sizes = []
    wrap_batches(sandbox, lambda items, answer: sizes.append(len(items)) or answer)
    began = time.monotonic()
    stats, _ = run_sender(sandbox, tmp_path, 150, 100, rate=100)
    assert stats.counts == {Status.SENT: 150}
    assert sizes == [100, 50] and time.monotonic() - began >= 0.45  # 50 more messages at 100 a second


def test_long_texts_make_smaller_batches_so_the_answer_stays_within_the_cap(sandbox, tmp_path):
    sizes = []
    wrap_batches(sandbox, lambda items, answer: sizes.append(len(items)) or answer)
    bodies = [{**body(i), "Text": "x" * 20_000} for i in range(40)]
    fit = MAX_BATCH_BYTES // _weight(bodies[0])  # 6 bytes a character at most, in JSON
    stats, _ = run_sender(sandbox, tmp_path, 40, 100, concurrency=1, bodies=bodies)
    assert stats.counts == {Status.SENT: 40}
    assert fit == 17 and sizes == [17, 17, 6]


def test_the_plan_says_which_call_and_what_an_unanswered_request_costs(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(3))
    config = tmp_path / "config.ini"
    config.write_text("[batchsms]\nbatch_size = 50\n", encoding="utf-8")
    env = {**env_for(sandbox, tmp_path), "BATCHSMS_CONFIG": str(config)}
    args = ["send", str(sheet), "--text", TEXT, "--quiet", "--yes", "--limit", "0"]
    from_config = CliRunner().invoke(main, args, env=env)
    assert "  via BatchMessages: up to 3 rows unknown per unanswered request (batches of 50)\n" not in \
        from_config.output  # nothing to send (--limit 0): nothing to say
    from_config = CliRunner().invoke(main, args[:-2], env=env)
    assert from_config.exit_code == 0, from_config.output
    assert "  via BatchMessages: up to 3 rows unknown per unanswered request (batches of 50)\n" in from_config.output
    assert requests_seen(sandbox) == 1
    sheet2 = write_csv(tmp_path / "d.csv", contacts(2, start=10))
    single = CliRunner().invoke(main, ["send", str(sheet2), "--text", TEXT, "--quiet", "--yes", "--batch-size", "0"],
                                env=env)
    assert "  via Messages: one row unknown per unanswered request (single sends)\n" in single.output
    assert requests_seen(sandbox) == 3


def test_batch_size_needs_a_value_in_range(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(1))
    for args, says in ((["--batch-size"], "Option '--batch-size' requires an argument"),
                       (["--batch-size", "1001"], "1001 is not in the range 0<=x<=1000"),
                       (["--batch-size", "ten"], "'ten' is not a valid integer")):
        result = CliRunner().invoke(main, ["send", str(sheet), "--text", TEXT, "--yes", *args],
                                    env=env_for(sandbox, tmp_path))
        assert result.exit_code == 2 and says in result.output, result.output
    assert requests_seen(sandbox) == 0


@pytest.mark.parametrize(("value", "size"), [("100", 100), ("0", None), ("", None), (" 7 ", 7)])
def test_batch_size_in_the_config(tmp_path, value, size):
    config = tmp_path / "config.ini"
    config.write_text(f"[batchsms]\nbatch_size = {value}\n", encoding="utf-8")
    assert load_preferences({"BATCHSMS_CONFIG": str(config)}).batch_size == size


@pytest.mark.parametrize("value", ["-1", "1001", "ten", "1.5", "²"])
def test_a_bad_batch_size_in_the_config_is_one_line(tmp_path, value):
    config = tmp_path / "config.ini"
    config.write_text(f"[batchsms]\nbatch_size = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_preferences({"BATCHSMS_CONFIG": str(config)})
    assert str(caught.value) == (f"{config}: [batchsms] batch_size = {value!r}: write a whole number of messages "
                                 "from 1 to 1,000 (100 is usual), or 0 to send each message on its own")
