"""``batchsms status`` against the real sandbox: delivery, settling unknown rows, the results file rewritten
in place, the list call read defensively, and GETs retried where a send never may be.

The sandbox runs on a ManualClock, so a message is delivered when the test moves the clock on, and
``status --watch`` runs on an injected clock and sleep: no test waits for real time to pass.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from click.testing import CliRunner

from batchsms.cli import main
from batchsms.client import Client, Decision, ListError, parse_listing
from batchsms.clock import format_local
from batchsms.codes import Status
from batchsms.journal import Finish, Journal, request_hash
from batchsms.sandbox.server import ManualClock
from batchsms.status import StatusOptions, settle_unknown, status_of

from .helpers import contacts, env_for, read_results, send, taken_ids, write_csv, write_xlsx

TEXT = "Hi {{ Name }}"


def status(server, tmp_path, *args):
    """``batchsms status ARGS`` in this process, pointed at ``server``."""
    return CliRunner().invoke(main, ["status", *[str(a) for a in args]], env=env_for(server, tmp_path),
                              catch_exceptions=False)


def client_of(server):
    return Client(server.url, server.account_sid, server.auth_token, "PS1")


def sent_sheet(server, tmp_path, rows, *extra):
    sheet = write_csv(tmp_path / "c.csv", rows)
    result = send(server, tmp_path, sheet, "--text", TEXT, "--quiet", *extra)
    assert result.exit_code in (0, 1), result.output
    return sheet


def when(epoch):
    """An epoch as the results show it: clock.format_local in the tests' zone, UTC."""
    return format_local(epoch, ZoneInfo("UTC"))


@pytest.fixture
def clock():
    return ManualClock()


# --------------------------------------------------------------------------- delivery


def test_status_fills_delivery_after_the_clock_moves_and_keeps_every_other_byte(make_sandbox, tmp_path, clock):
    server = make_sandbox(clock=clock)
    rows = [["Campaign list"], ["Mobile", "Name", "Note"], ["0412000001", "=HYPERLINK(\"x\")", "a, b"],
            ["0412000002", "Bo", "-2+3"], [], ["bad", "Cy", "x"], ["0412000003", "Di", "plain"]]
    sheet = write_csv(tmp_path / "c.csv", rows)
    assert send(server, tmp_path, sheet, "--text", TEXT, "--quiet").exit_code == 1  # one invalid row
    results = tmp_path / "c.results.csv"
    before = results.read_bytes()
    clock.advance(5)
    result = status(server, tmp_path, sheet, "--price", "0.055")
    assert result.exit_code == 0, result.output
    assert result.output.replace(str(tmp_path), "<tmp>") == (
        "Status of <tmp>/c.results.csv (journal c.results.csv.journal)\n"
        "  taken by the API             3\n"
        "  delivered                    3  100.0%\n"
        "  failed                       0    0.0%\n"
        "  still pending                0    0.0%\n"
        "  segments                     3\n"
        "  cost                    A$0.17\n"
        "Results: <tmp>/c.results.csv\n")
    with server.state.lock:
        delivered = {m["MessageSid"]: m["Delivered"] for m in server.state.messages.values()}
    assert len(delivered) == 3 and all(delivered.values())
    # Every record as it was, byte for byte, with the three delivery cells added at its end.
    old = before.decode("utf-8-sig").split("\r\n")
    suffixes = ["", ",Delivery,Delivered at,Delivery error"]
    for line in old[2:]:
        quote = '"' if line.startswith('"') else ""  # a row holding an inert cell is quoted whole
        if not line:
            suffixes.append("")
        elif ",invalid," in line:
            suffixes.append(",,,")
        else:
            sid = next(s for s in delivered if s in line)
            suffixes.append("".join(f",{quote}{v}{quote}" for v in ("Delivered", when(delivered[sid]), "")))
    expected = "\ufeff" + "\r\n".join(line + suffix for line, suffix in zip(old, suffixes, strict=True))
    assert results.read_bytes().decode("utf-8") == expected
    assert status(server, tmp_path, results).exit_code == 0  # nothing left to ask: the file stays as it is
    assert results.read_bytes().decode("utf-8") == expected
    # send writes the same file from the sheet and the journal: the refresh and the writer agree
    assert "already sent by an earlier run: 3" in send(server, tmp_path, sheet, "--text", TEXT).output
    assert results.read_bytes().decode("utf-8") == expected


def test_records_spanning_lines_keep_their_place_and_bytes(make_sandbox, tmp_path, clock):
    server = make_sandbox(clock=clock)
    rows = [["Mobile", "Name", "Note"], ["0412000001", "A", "line1\nline2"], ["0412000002", "B", "x"],
            ["0412000003", "C", 'say "hi"\r\nok']]
    sheet = write_csv(tmp_path / "c.csv", rows)
    assert send(server, tmp_path, sheet, "--text", TEXT, "--quiet").exit_code == 0
    results = tmp_path / "c.results.csv"
    before = results.read_bytes()
    clock.advance(5)
    assert status(server, tmp_path, sheet).exit_code == 0
    with server.state.lock:
        (delivered,) = {m["Delivered"] for m in server.state.messages.values()}
    header_end = before.index(b"\r\n")
    expected = (before[:header_end] + b",Delivery,Delivered at,Delivery error"
                + before[header_end:].replace(b",1,,1\r\n", f",1,,1,Delivered,{when(delivered)},\r\n".encode()))
    assert results.read_bytes() == expected
    assert [(r["Note"], r["Delivery"]) for r in read_results(results)] == [
        ("line1\nline2", "Delivered"), ("x", "Delivered"), ('say "hi"\r\nok', "Delivered")]


def test_undelivered_messages_are_failed_with_the_error(make_sandbox, tmp_path, clock):
    server = make_sandbox(clock=clock, undelivered=1.0)
    sheet = sent_sheet(server, tmp_path, contacts(3))
    clock.advance(5)
    result = status(server, tmp_path, sheet, "--json")
    assert result.exit_code == 1
    figures = json.loads(result.output)
    assert {k: figures[k] for k in ("sent", "delivered", "failed", "pending", "failed_rate", "final", "cost")} == {
        "sent": 3, "delivered": 0, "failed": 3, "pending": 0, "failed_rate": 1.0, "final": True, "cost": None}
    rows = read_results(tmp_path / "c.results.csv")
    assert [(r["Status"], r["Delivery"], r["Delivered at"], r["Delivery error"]) for r in rows] == [
        ("sent", "Failed", "", "Undeliverable")] * 3


def test_pending_then_watch_until_final_on_an_injected_clock(make_sandbox, tmp_path, clock):
    server = make_sandbox(clock=clock)
    sheet = sent_sheet(server, tmp_path, contacts(2))
    slept: list[float] = []

    def sleep(seconds):
        slept.append(seconds)
        clock.advance(seconds)

    rounds = []
    target = env_target(server)
    options = StatusOptions(watch=True, every=60, until=3600, clock=clock, sleep=sleep)
    outcome = status_of(sheet, target, options, each_round=lambda o: rounds.append(
        (o.rounds, o.delivery.pending, o.delivery.delivered)))
    assert rounds == [(1, 2, 0), (2, 0, 2)] and slept == [60]
    assert outcome.delivery.final and outcome.delivery.all_delivered
    with Journal(tmp_path / "c.results.csv.journal") as journal:
        assert [e.delivery_checked for e in journal.entries().values()] == [clock(), clock()]
    # A deadline shorter than a round: one round, still pending.
    sheet2 = write_csv(tmp_path / "d.csv", contacts(1, start=5))
    assert send(server, tmp_path, sheet2, "--text", TEXT, "--quiet").exit_code == 0
    slept.clear()
    outcome = status_of(sheet2, target, StatusOptions(watch=True, every=60, until=30, clock=clock, sleep=sleep))
    assert (outcome.rounds, outcome.delivery.pending, slept) == (1, 1, [])


def env_target(server):
    from batchsms.config import Settings

    return Settings(server.url, server.account_sid, server.auth_token, "PS1")


def test_watch_on_the_command_line_stops_when_all_is_final(make_sandbox, tmp_path, clock):
    server = make_sandbox(clock=clock)
    sheet = sent_sheet(server, tmp_path, contacts(2))
    clock.advance(5)
    result = status(server, tmp_path, sheet, "--watch", "--every", "1s", "--until", "1h")
    assert result.exit_code == 0
    assert result.output.startswith("Round 1:\n  taken by the API             2\n  delivered                    2")
    assert result.output.count("Round") == 1


def test_no_receipt_asked_counts_submitted_as_final(make_sandbox, tmp_path, clock):
    server = make_sandbox(clock=clock)
    sheet = sent_sheet(server, tmp_path, contacts(2), "--no-delivery-receipt")
    clock.advance(5)
    result = status(server, tmp_path, sheet, "--json")
    figures = json.loads(result.output)
    assert (figures["pending"], figures["submitted_no_receipt"], figures["final"]) == (2, 2, True)
    assert result.exit_code == 0
    assert [r["Delivery"] for r in read_results(tmp_path / "c.results.csv")] == ["Submitted", "Submitted"]


def test_workbook_results_keep_their_cells_and_gain_delivery(make_sandbox, tmp_path, clock):
    server = make_sandbox(clock=clock)
    rows = [["Mobile", "Name", "Amount", "Status"], ["0412000001", "=SUM(1)", 12.5, "vip"],
            ["0412000002", "Bo", 3, "new"]]
    sheet = write_xlsx(tmp_path / "c.xlsx", rows, formulas=False)
    assert send(server, tmp_path, sheet, "--text", TEXT, "--quiet").exit_code == 0
    path = tmp_path / "c.results.xlsx"
    before = [list(r) for r in openpyxl.load_workbook(path).active.iter_rows(values_only=True)]
    clock.advance(5)
    assert status(server, tmp_path, path).exit_code == 0
    book = openpyxl.load_workbook(path)
    after = [list(r) for r in book.active.iter_rows(values_only=True)]
    assert after[0] == before[0] + ["Delivery", "Delivered at", "Delivery error"]
    assert [r[:len(before[0])] for r in after[1:]] == before[1:]  # every cell as it was, types too
    assert [type(v) for v in after[1]] == [type(v) for v in before[1]] + [str, str, type(None)]
    assert [r[-3] for r in after[1:]] == ["Delivered", "Delivered"]
    assert send(server, tmp_path, sheet, "--text", TEXT, "--quiet").exit_code == 0  # written anew from the journal
    assert [list(r) for r in openpyxl.load_workbook(path).active.iter_rows(values_only=True)] == after
    assert not [c.coordinate for row in book.active.iter_rows() for c in row if c.data_type == "f"]
    summary = dict(book["Summary"].iter_rows(values_only=True))
    assert (summary["Rows sent"], summary["Delivered"], summary["Delivery failed"], summary["Delivery pending"]) == (
        2, 2, 0, 0)


# --------------------------------------------------------------------------- settling unknown rows


def test_settle_finds_messages_the_sandbox_took_and_dropped_the_answer_for(make_sandbox, tmp_path, clock):
    server = make_sandbox(clock=clock, faults={"lost": 1.0})
    rows = contacts(3) + [["0412000000", "Name0", "dup"]]  # row 5: the same text to row 2's number
    sheet = sent_sheet(server, tmp_path, rows)
    assert [r["Status"] for r in read_results(tmp_path / "c.results.csv")] == ["unknown"] * 4
    with server.state.lock:
        by_to = {}
        for m in sorted(server.state.messages.values(), key=lambda m: (m["Created"], m["MessageSid"])):
            by_to.setdefault(m["To"], []).append(m["MessageSid"])
    clock.advance(5)
    result = status(server, tmp_path, sheet, "--settle")
    assert result.exit_code == 1  # rows 2 and 5 stay unknown
    assert "  settled this run             2 sent, 0 not sent, 2 still unknown\n" in result.output
    results = read_results(tmp_path / "c.results.csv")
    assert [(r["Status"], r["MessageSid"]) for r in results[1:3]] == [
        ("sent", by_to["+61412000001"][0]), ("sent", by_to["+61412000002"][0])]
    assert results[1]["Error"].startswith("settled as sent on ")
    assert f"the API's message list holds {by_to['+61412000001'][0]} to +61412000001 with this very text" \
        in results[1]["Error"]
    assert [r["Delivery"] for r in results] == ["", "Delivered", "Delivered", ""]
    two = ", ".join(by_to["+61412000000"])
    for row in (results[0], results[3]):
        assert row["Status"] == "unknown" and row["MessageSid"] == ""
        assert row["Error"] == "no answer: connection reset"  # the journal keeps the reason; the summary says why
    assert (f"    row 2: 2 messages to +61412000000 with this very text in the send window ({two}): which is this "
            "row's cannot be told; compare with the API's records by hand\n") in result.output
    again = send(server, tmp_path, sheet, "--text", TEXT, "--quiet")
    assert "already sent by an earlier run: 2" in again.output and len(taken_ids(server)) == 4


def test_rows_never_taken_settle_as_not_sent_only_after_the_window_closed(make_sandbox, tmp_path, clock):
    server = make_sandbox(clock=clock, faults={"reset": 1.0})
    sheet = sent_sheet(server, tmp_path, contacts(2))
    assert taken_ids(server) == []
    result = status(server, tmp_path, sheet, "--settle")
    assert result.exit_code == 1
    assert "  settled this run             0 sent, 0 not sent, 2 still unknown\n" in result.output
    assert "no such message in the API's list yet; the send window (" in result.output
    assert "closed too recently to be sure: run status --settle again after " in result.output
    journal_file = tmp_path / "c.results.csv.journal"
    with Journal(journal_file) as journal:
        assert {e.settled for e in journal.entries().values()} == {None}
        later = max(e.updated for e in journal.entries().values()) + 120 + 300 + 1
        found = settle_unknown(journal, client_of(server), now=later)
        entries = journal.entries()
    assert (found.sent, found.not_sent, found.unsettled) == ([], [2, 3], [])
    assert [(e.state, e.settled) for e in entries.values()] == [(Status.UNKNOWN, "not sent")] * 2
    assert entries[2].error.startswith("settled as not sent on ")
    assert "the API's message list holds no message to +61412000000 created " in entries[2].error
    assert entries[2].error.endswith(" UTC; run send with --retry-unknown to send it again")
    result = status(server, tmp_path, sheet, "--settle")
    assert "  unknown                      2  (2 settled as not sent: --retry-unknown sends them)\n" in result.output
    assert read_results(tmp_path / "c.results.csv")[0]["Error"] == entries[2].error
    server.faults = {}
    assert "unknown, not resent: rows 2, 3" in send(server, tmp_path, sheet, "--text", TEXT, "--retry-failed").output
    assert taken_ids(server) == []
    assert send(server, tmp_path, sheet, "--text", TEXT, "--retry-unknown", "--quiet").exit_code == 0
    assert sorted(taken_ids(server)) == ["id0", "id1"]


def unknown_journal(path, server, rows, *, started=None):
    """A journal beside ``path`` whose ``rows`` ({row: body}) are unknown, tied to ``server``'s property."""
    journal = Journal(path)
    journal.set_meta(target=f"{server.url}/v2/Properties/PS1", sheet="c.csv")
    journal.commit(starts=[(r, request_hash(b), b) for r, b in rows.items()])
    journal.commit(finishes=[Finish(r, Status.UNKNOWN, 1, error="no answer", segments=1) for r in rows])
    return journal


def test_one_message_two_rows_could_own_leaves_both_unknown(sandbox, tmp_path):
    body = {"To": "+61412000001", "Text": "Your code is 12", "DeliveryReceipt": True}
    taken = client_of(sandbox).send(body)
    assert taken.decision is Decision.ACCEPTED
    rows = {2: body, 3: body, 4: {**body, "Text": "Your code is 13"}}
    with unknown_journal(tmp_path / "j", sandbox, rows) as journal:
        found = settle_unknown(journal, client_of(sandbox), now=time.time() + 10_000)
        entries = journal.entries()
    sid = taken.message_sid
    assert found.sent == [] and found.not_sent == []
    assert found.unsettled == [
        (2, f"one message to +61412000001 with this text ({sid}) in the send window, and rows 3 send the same text "
            "to the same number at the same time: which row it belongs to cannot be told; compare with the API's "
            "records by hand"),
        (3, f"one message to +61412000001 with this text ({sid}) in the send window, and rows 2 send the same text "
            "to the same number at the same time: which row it belongs to cannot be told; compare with the API's "
            "records by hand"),
        (4, "1 message to +61412000001 in the send window, but none with this very text (the API may have changed "
            "it): compare with the API's records by hand"),
    ]
    assert {e.state for e in entries.values()} == {Status.UNKNOWN} and {e.settled for e in entries.values()} == {None}


def test_a_message_already_claimed_by_a_sent_row_is_not_claimed_again(sandbox, tmp_path):
    body = {"To": "+61412000001", "Text": "Hi"}
    taken = client_of(sandbox).send(body)
    with unknown_journal(tmp_path / "j", sandbox, {2: body, 3: body}) as journal:
        journal.settle(2, taken.message_sid, "settled as sent")
        found = settle_unknown(journal, client_of(sandbox), now=time.time() + 10_000)
    # The one message is row 2's: row 3 is not given it, and with no other message it was never taken.
    assert (found.sent, found.not_sent, found.unsettled) == ([], [3], [])


def test_a_list_too_full_to_read_whole_settles_nothing(make_sandbox, tmp_path, clock):
    server = make_sandbox(clock=clock)  # the clock stands still: every message is created in the same second
    client = client_of(server)
    bodies = {r: {"To": f"+6141200000{r}", "Text": "Hi"} for r in (2, 3, 4)}
    for body in bodies.values():
        assert client.send(body).decision is Decision.ACCEPTED
    with unknown_journal(tmp_path / "j", server, {**bodies, 5: {"To": "+61412000009", "Text": "Hi"}}) as journal:
        found = settle_unknown(journal, client, now=time.time() + 10_000, count=2)
    assert found.sent == [] and found.not_sent == [] and [r for r, _ in found.unsettled] == [2, 3, 4, 5]
    assert found.unsettled[0][1].startswith("the message list could not be read whole (2 or more messages within ")
    assert found.unsettled[0][1].endswith(" (epoch seconds), more than one list call returns)")


def test_rows_journaled_by_an_older_batchsms_are_left_for_a_person(sandbox, tmp_path):
    with Journal(tmp_path / "j") as journal:
        journal.commit(starts=[(2, "h")])  # no body: as an older batchsms journaled it
        journal.commit(finishes=[Finish(2, Status.UNKNOWN, 1, error="no answer")])
        found = settle_unknown(journal, client_of(sandbox), now=time.time() + 10_000)
    assert found.unsettled == [(2, "the journal holds no copy of the request (it was sent by an older batchsms): "
                                   "compare it with the API's records by hand")]


# --------------------------------------------------------------------------- the list call


def test_list_call_splits_full_pages_until_it_has_every_message(make_sandbox, clock):
    server = make_sandbox(clock=clock)
    client = client_of(server)
    start = int(clock())
    sids = []
    for n in range(10):
        sids.append(client.send({"To": f"+614120000{n:02d}", "Text": "Hi"}).message_sid)
        clock.advance(10)
    listing = client.list_messages(start, int(clock()), count=3)
    assert sorted(listing.messages) == sorted(sids) and listing.complete and listing.gaps == []
    assert listing.calls == 13
    message = listing.messages[sids[0]]
    assert (message.to, message.text, message.created, message.direction) == ("+61412000000", "Hi", start, "Transmit")
    assert client.list_messages(start, int(clock()), count=3, max_calls=2).complete is False


@pytest.mark.parametrize(("data", "found", "unreadable"), [
    ({"Messages": []}, [], 0),
    ({"messages": [{"MessageSid": "M1", "To": "+61412000001", "Text": "Hi", "Created": 5}]}, ["M1"], 0),
    ({"MESSAGES": [{"messagesid": "M2", "to": "+61412000001", "text": "Hi"}, "junk", {"To": "x"}, None]}, ["M2"], 3),
    ({"Messages": [{"MessageSid": "M3", "To": ["+61412000001"], "Text": 7, "Created": "soon",
                    "NumSegments": True}]}, ["M3"], 0),
])
def test_list_answers_are_read_item_by_item(data, found, unreadable):
    messages, bad = parse_listing(data, "the API")
    assert [m.sid for m in messages] == found and bad == unreadable
    if found == ["M3"]:  # every field of the wrong type is dropped, never taken as it came
        assert messages[0][1:] == (None, None, None, None, None, None, None)


@pytest.mark.parametrize(("data", "says"), [
    ([], "the message list answered a JSON list, not an object with a Messages list"),
    ({"Data": [], "Total": 0}, "the message list answered an object without a Messages list (Data, Total)"),
    ({"Messages": {"M1": {}}}, "the message list answered an object without a Messages list (Messages)"),
    ("ok", "the message list answered a JSON str, not an object with a Messages list"),
])
def test_a_list_answer_of_another_shape_is_an_error_that_says_so(data, says):
    with pytest.raises(ListError) as caught:
        parse_listing(data, "https://api.example/v2/Properties/PS1/Messages")
    assert str(caught.value) == (f"https://api.example/v2/Properties/PS1/Messages: {says}; the list call is known only "
                                 "from third-party use, so batchsms cannot read it here")


# --------------------------------------------------------------------------- GET retries, against a scripted server


class Quiet(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client that timed out and hung up: expected here
        pass


class Scripted:
    """A loopback server answering the n-th GET with ``answers[n]`` (the last repeated); ``hold`` seconds first."""

    def __init__(self, answers):
        self.answers, self.paths, self.lock = answers, [], threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as the API answers. (An answer with Connection: close escapes the whole-answer
            # deadline, for sends and GETs alike: http.client drops conn.sock before the body is read.)
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                with server.lock:
                    server.paths.append(self.path)
                    answer = server.answers[min(len(server.paths), len(server.answers)) - 1]
                status, headers, body, hold = (*answer, 0)[:4]
                if hold:
                    time.sleep(hold)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if headers.get("X-Drip"):  # a byte every 0.1 s: each read is quick, the whole answer never ends
                    for byte in data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.1)
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def scripted():
    servers = []

    def start(*answers):
        servers.append(Scripted(list(answers)))
        return servers[-1]

    yield start
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()


MESSAGE = {"Message": {"MessageSid": "MS1", "Status": "Delivered", "Delivered": 1_800_000_000}}
BUSY = {"ResponseStatus": {"ErrorCode": "TryAgain", "Message": "busy"}}


def scripted_client(server, slept, **kwargs):
    return Client(server.url, "AC1", "s3cr3t-token", "PS1", sleep=slept.append, jitter=lambda: 0.0, **kwargs)


def test_get_retries_503_and_429_as_retry_after_says(scripted):
    server = scripted((503, {"Retry-After": "2"}, BUSY), (429, {"Retry-After": "1"}, BUSY), (200, {}, MESSAGE))
    slept = []
    lookup = scripted_client(server, slept).get_message("MS1")
    assert (lookup.ok, lookup.attempts, lookup.data["Status"], slept) == (True, 3, "Delivered", [2.0, 1.0])
    assert server.paths == ["/v2/Messages/MS1"] * 3


def test_get_retries_5xx_and_timeouts_then_gives_up_saying_so(scripted):
    server = scripted((500, {}, "<html>oops</html>"), (502, {}, BUSY), (200, {}, MESSAGE, 1.0), (200, {}, MESSAGE))
    slept = []
    lookup = scripted_client(server, slept, read_timeout=0.3).get_message("MS1")
    assert (lookup.ok, lookup.attempts, slept) == (True, 4, [0.25, 0.5, 1.0])
    down = scripted((504, {}, BUSY))
    lookup = scripted_client(down, [], max_attempts=3).get_message("MS1")
    assert (lookup.ok, lookup.attempts, len(down.paths)) == (False, 3, 3)
    assert lookup.error == "TryAgain: busy (gave up after 3 attempts)"


@pytest.mark.parametrize(("answer", "requests", "error"), [
    ((404, {}, {"ResponseStatus": {"ErrorCode": "NotFound", "Message": "No message MS1"}}), 1,
     "NotFound: No message MS1"),
    ((200, {}, "<html>parked domain</html>"), 1,
     "the server answered 200 but not as the Fone Dynamics API does (an HTML page); check --base-url"),
    ((200, {}, {"Messages": []}), 1,
     "the server answered 200 but not as the Fone Dynamics API does (no Message object); check --base-url"),
    ((500, {}, "token s3cr3t-token leaked"), 5, "500: HTTP 500 Internal Server Error (not a JSON answer: token "
                                                "[redacted] leaked) (gave up after 5 attempts)"),
])
def test_get_errors_are_not_retried_unless_they_may_pass_and_never_hold_the_token(scripted, answer, requests, error):
    server = scripted(answer)
    lookup = scripted_client(server, []).get_message("MS1")
    assert (lookup.ok, len(server.paths), lookup.error) == (False, requests, error)


def test_get_answers_are_capped_in_size_and_in_time_as_sends_are(scripted):
    big = scripted((200, {}, "x" * (5 * 2**20)))
    lookup = scripted_client(big, []).get_message("MS1")
    assert (lookup.ok, len(big.paths), lookup.error) == (
        False, 1, "the server answered 200 but the answer was larger than 4 MB; check --base-url")
    drip = scripted((200, {"X-Drip": "1"}, MESSAGE))
    started = time.monotonic()
    lookup = scripted_client(drip, [], read_timeout=0.5, max_attempts=1).get_message("MS1")
    assert time.monotonic() - started < 1.5
    assert (lookup.ok, lookup.transient, lookup.error) == (
        False, True, "the server answered 200 but timed out, the whole answer took longer than the read timeout "
                     "(0.5 s)")


def test_get_stops_on_refused_credentials(scripted):
    server = scripted((401, {}, {"ResponseStatus": {"ErrorCode": "Unauthorized", "Message": "Invalid token"}}))
    lookup = scripted_client(server, []).get_message("MS1")
    assert (lookup.decision, lookup.stops_run, len(server.paths)) == (Decision.AUTH, True, 1)


def test_a_list_call_that_answers_another_shape_leaves_rows_unknown_saying_why(sandbox, scripted, tmp_path):
    server = scripted((200, {}, [{"MessageSid": "M1"}]))
    with unknown_journal(tmp_path / "j", sandbox, {2: {"To": "+61412000001", "Text": "Hi"}}) as journal:
        found = settle_unknown(journal, scripted_client(server, []), now=time.time() + 10_000)
    assert found.unsettled == [(2, f"the message list could not be read: {server.url}/v2/Properties/PS1/Messages: "
                                   "the message list answered a JSON list, not an object with a Messages list; the "
                                   "list call is known only from third-party use, so batchsms cannot read it here")]
    assert server.paths[0].startswith("/v2/Properties/PS1/Messages?Date_From=")
    assert server.paths[0].endswith("&Results_Count=1000")


# --------------------------------------------------------------------------- the command's edges


def test_no_journal_and_a_foreign_results_file_exit_2(sandbox, tmp_path):
    missing = status(sandbox, tmp_path, tmp_path / "nothing.csv")
    assert missing.exit_code == 2
    assert missing.output.replace(str(tmp_path), "<tmp>") == (
        "batchsms: error: <tmp>/nothing.csv: no journal found (looked for <tmp>/nothing.csv.journal or "
        "<tmp>/nothing.results.csv.journal); give the results file `batchsms send` wrote, or the sheet it sent\n")
    sheet = sent_sheet(sandbox, tmp_path, contacts(2))
    results = tmp_path / "c.results.csv"
    sid = read_results(results)[0]["MessageSid"]
    results.write_bytes(results.read_bytes().replace(sid.encode(), b"MOTHER"))
    foreign = status(sandbox, tmp_path, sheet)
    assert foreign.exit_code == 2
    assert foreign.output.replace(str(tmp_path), "<tmp>") == (
        f"batchsms: error: <tmp>/c.results.csv: row 2 shows MessageSid MOTHER, and the journal beside it records "
        f"{sid}: this results file does not belong to that journal; give the results file the send wrote\n")


def test_another_property_is_refused(sandbox, tmp_path):
    sheet = sent_sheet(sandbox, tmp_path, contacts(1))
    shutil.copy(tmp_path / "c.results.csv", tmp_path / "copy.csv")
    result = status(sandbox, tmp_path, sheet, "--property-sid", "PS2")
    assert result.exit_code == 2
    assert "this journal records a send to " in result.output and "/v2/Properties/PS1, and this run asks " \
        in result.output and "give the --base-url and --property-sid that send used" in result.output


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("45s", 45), ("30m", 1800), ("2h", 7200),
                                               ("1h30m", 5400), ("1d", 86400), ("0.5h", 1800)])
def test_durations(text, seconds):
    from batchsms.cli_status import Duration

    assert Duration().convert(text, None, None) == seconds


def test_a_duration_that_is_none_is_a_usage_error(sandbox, tmp_path):
    result = status(sandbox, tmp_path, tmp_path / "c.csv", "--watch", "--until", "soon")
    assert result.exit_code == 2
    assert result.output.endswith("Invalid value for '--until': 'soon': write seconds (90) or a duration such as "
                                  "30m, 2h or 1h30m\n")
