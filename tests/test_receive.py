"""`batchsms receive`: the secret path, the payload shapes, requests made to hurt, delivery receipts from a real
send into its real journal (also while a send holds it), and replies from the sandbox's webhook into the opt-outs."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest
import requests

from batchsms.errors import ConfigError
from batchsms.journal import Journal, journal_path
from batchsms.receive import (
    MAX_BODY,
    Receiver,
    Setup,
    apply_pending,
    choose_secret,
    decode_logged_body,
    pending_receipts,
    read_setup,
    webhook_url,
    write_setup,
)
from batchsms.sandbox import ManualClock

from .helpers import contacts, send, wait_until, write_csv

SECRET = "test-secret-0123456789"
A, B = "+61412000001", "+61412000002"


@pytest.fixture
def make_receiver(tmp_path):
    receivers = []

    def make(**kwargs):
        kwargs.setdefault("secret", SECRET)
        kwargs.setdefault("optouts", tmp_path / "optouts.csv")
        kwargs.setdefault("log", tmp_path / "receive.log")
        kwargs.setdefault("retry_every", 3600)  # tests retry by hand
        receiver = Receiver(**kwargs).start()
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:
        receiver.stop()


def log_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def optouts_in(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [row[0] for row in csv.reader(fh)][1:]


def raw_exchange(receiver, data: bytes, *, shut: bool = True, timeout: float = 5.0) -> bytes:
    """Send bytes as they are; the whole answer (empty when the receiver just closes)."""
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=timeout) as sock:
        with_errors = b""
        try:
            sock.sendall(data)
            if shut:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the receiver answered and closed before taking everything: read what it said
            pass
        try:
            while chunk := sock.recv(65536):
                with_errors += chunk
        except ConnectionResetError:
            pass
        return with_errors


def status_of(answer: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    return int(match.group(1)) if match else None


def reply(number, text, **extra):
    return {"MessageSid": f"MR{abs(hash((number, text))) % 10**6}", "From": number, "To": "+61400000009",
            "Text": text, "Direction": "Receive", "Status": "Received", **extra}


# --------------------------------------------------------------------------- the path and the payloads


def test_only_the_secret_path_answers(make_receiver, tmp_path):
    receiver = make_receiver()
    assert receiver.url == f"http://127.0.0.1:{receiver.port}/hooks/{SECRET}"
    for url in (receiver.base_url + "/", receiver.base_url + "/hooks/", receiver.base_url + "/hooks/wrong-secret",
                receiver.url + "x", receiver.base_url + "/hooks/" + SECRET.upper(), receiver.url + "/../x"):
        assert requests.post(url, json=reply(A, "STOP"), timeout=5).status_code == 404, url
        assert requests.get(url, timeout=5).status_code == 404, url
    assert log_lines(tmp_path / "receive.log") == []
    assert not (tmp_path / "optouts.csv").exists()
    assert requests.get(receiver.url, timeout=5).json() == {"ok": True, "received": 0}  # a proxy's health check


def test_json_form_and_get_replies_go_through_the_opt_out_rules(make_receiver, tmp_path):
    events = []
    receiver = make_receiver(on_event=events.append)
    answer = requests.post(receiver.url, json=reply(A, "STOP", Received=int(time.time()) - 60), timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"ok": True, "received": 1})
    answer = requests.post(receiver.url, data={"from": B, "text": "Stop.", "direction": "Receive"}, timeout=5)
    assert answer.status_code == 200
    now = int(time.time())
    assert requests.post(receiver.url, json={"Message": reply(A, "stop all", Received=now - 30)},
                         timeout=5).status_code == 200
    assert optouts_in(tmp_path / "optouts.csv") == [A, B]
    answer = requests.get(receiver.url, params={"From": A, "Text": "START", "Status": "Received", "Received": now - 10},
                          timeout=5)
    assert answer.status_code == 200
    requests.post(receiver.url, json=reply(B, "Stop sending me these"), timeout=5)
    assert optouts_in(tmp_path / "optouts.csv") == [B]
    assert [e.text for e in events] == [
        f"reply from {A} 'STOP': opted out", f"reply from {B} 'Stop.': opted out",
        f"reply from {A} 'stop all': already opted out", f"reply from {A} 'START': opted in",
        f"reply from {B} 'Stop sending me these': mentions 'stop', not a keyword: read it"]
    logged = log_lines(tmp_path / "receive.log")
    assert [(r["kind"], r["From"], r["keyword"], r["result"]) for r in logged] == [
        ("reply", A, "opt-out", "opted out"), ("reply", B, "opt-out", "opted out"),
        ("reply", A, "opt-out", "already opted out"), ("reply", A, "opt-in", "opted in"),
        ("reply", B, None, "—")]
    assert logged[-1]["mentions"] == "stop"


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b'{"hello": "world"}'),
    ("application/json", b'{"MessageSid": "M1", "Status": "Teleported"}'),
    ("application/json", b"[1, 2, 3]"),
    ("application/json", b'{"From": "+61412000001", "Text": "STOP", "Direction": "Receive"'),  # cut-off JSON
    ("application/json", '{"From": "+61412000001", "Text": "STÖP"}'.encode("latin-1")),  # not UTF-8
    ("application/octet-stream", bytes(range(256))),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=From\r\n\r\n+614\r\n--x--"),
    ("application/x-www-form-urlencoded", b"From=%FF%FE&Text=STOP&Direction=Receive"),
    ("", b"just some words"),
])
def test_a_payload_it_cannot_read_is_kept_raw(make_receiver, tmp_path, content_type, body):
    receiver = make_receiver()
    answer = requests.post(receiver.url, data=body, headers={"Content-Type": content_type}, timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"ok": True, "received": 0, "kept": "raw"})
    (record,) = log_lines(tmp_path / "receive.log")
    assert record["kind"] == "unrecognised"
    assert decode_logged_body(record) == body
    assert not (tmp_path / "optouts.csv").exists()


def test_a_binary_body_is_logged_as_base64(make_receiver, tmp_path):
    receiver = make_receiver()
    requests.post(receiver.url, data=b"\x00\xff\x10", headers={"Content-Type": "application/octet-stream"}, timeout=5)
    (record,) = log_lines(tmp_path / "receive.log")
    assert (record["body_base64"], record["method"], record["content_type"]) == ("AP8Q", "POST",
                                                                                "application/octet-stream")


# --------------------------------------------------------------------------- requests made to hurt


@pytest.mark.parametrize(("name", "data", "status"), [
    ("garbage bytes", b"\x00\x01\x02\xff garbage\r\n\r\n", 400),
    ("no request line", b"\r\n\r\n", None),
    ("a request line over the cap", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    ("headers over the cap", b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 20_000 + b"\r\n\r\n", 431),
    ("too many headers", b"GET / HTTP/1.1\r\n" + b"X-A: 1\r\n" * 150 + b"\r\n", 431),
    ("a bad Content-Length", b"POST {path} HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
    ("a negative Content-Length", b"POST {path} HTTP/1.1\r\nContent-Length: -5\r\n\r\nhello", 400),
    ("two Content-Lengths", b"POST {path} HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello", 400),
    ("a Content-Length in Arabic digits", "POST {path} HTTP/1.1\r\nContent-Length: ٥\r\n\r\nhello".encode(), 400),
    ("no Content-Length", b"POST {path} HTTP/1.1\r\n\r\nhello", 411),
    ("a chunked body", b"POST {path} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411),
    ("a huge declared body", b"POST {path} HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n", 413),
    ("a 30-digit Content-Length", b"POST {path} HTTP/1.1\r\nContent-Length: " + b"9" * 30 + b"\r\n\r\n", 413),
    ("a truncated body", b"POST {path} HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"From\": ", 400),
    ("half a request line", b"POST /hoo", 400),
    ("an unknown method", b"BREW {path} HTTP/1.1\r\n\r\n", 501),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
])
def test_malformed_requests_get_an_answer_and_the_next_good_request_works(make_receiver, tmp_path, name, data,
                                                                          status):
    receiver = make_receiver(max_body=MAX_BODY)
    answer = raw_exchange(receiver, data.replace(b"{path}", receiver.path.encode()))
    assert status_of(answer) == status, (name, answer[:200])
    good = requests.post(receiver.url, json=reply(A, "STOP"), timeout=5)
    assert (good.status_code, good.json()) == (200, {"ok": True, "received": 1})
    assert optouts_in(tmp_path / "optouts.csv") == [A]


def test_a_body_just_over_the_cap_is_refused_unread_and_logged(make_receiver, tmp_path):
    receiver = make_receiver(max_body=1024)
    answer = requests.post(receiver.url, data=b"x" * 1025, timeout=5)
    assert answer.status_code == 413
    assert requests.post(receiver.url, data=b'{"a": "' + b"y" * 1000 + b'"}', timeout=5).status_code == 200
    assert [(r["kind"], r.get("reason")) for r in log_lines(tmp_path / "receive.log")] == [
        ("refused", "body of 1025 bytes, over 1024"), ("unrecognised", None)]


def test_a_silent_client_is_dropped_and_a_flood_of_connections_is_turned_away(make_receiver, tmp_path):
    receiver = make_receiver(request_timeout=0.5, max_connections=2)
    idle = [socket.create_connection(("127.0.0.1", receiver.port)) for _ in range(2)]
    time.sleep(0.1)  # let both be taken up by their threads
    started = time.monotonic()
    assert raw_exchange(receiver, b"", shut=False, timeout=5) == b""  # a third is closed at once
    assert time.monotonic() - started < 0.4
    for sock in idle:  # the silent ones are closed after request_timeout
        sock.settimeout(5)
        assert sock.recv(100) == b""
        sock.close()
    assert requests.post(receiver.url, json=reply(A, "STOP"), timeout=5).status_code == 200


def test_never_a_traceback_even_from_random_bytes(make_receiver, tmp_path, capfd):
    receiver = make_receiver()
    import random

    rng = random.Random(12)
    for _ in range(40):
        head = rng.choice([b"", b"POST " + receiver.path.encode() + b" HTTP/1.1\r\n", b"GET / HTTP/1.1\r\n"])
        raw_exchange(receiver, head + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))))
    assert requests.post(receiver.url, json=reply(A, "STOP"), timeout=5).status_code == 200
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out


# --------------------------------------------------------------------------- receipts into real journals


@pytest.fixture
def sent(make_sandbox, tmp_path, monkeypatch):
    """A real send of 3 messages to a sandbox on a manual clock, with receipts to ``url`` (set before sending)."""
    monkeypatch.setenv("BATCHSMS_STATE", str(tmp_path / "state"))
    clock = ManualClock()
    sandbox = make_sandbox(clock=clock)
    sheet = write_csv(tmp_path / "contacts.csv", contacts(3))
    results = tmp_path / "contacts.results.csv"

    def run(*extra):
        outcome = send(sandbox, tmp_path, sheet, "--text", "Hi {{ Name }}", "--results", results, "--no-preview",
                       *extra)
        assert outcome.exit_code == 0, outcome.output
        with Journal(journal_path(results)) as journal:
            return sandbox, clock, journal_path(results), sorted(e.message_sid for e in journal.entries().values())

    return run


def deliveries(path):
    with Journal(path) as journal:
        return sorted((e.message_sid, e.delivery) for e in journal.entries().values())


def test_a_delivery_receipt_from_a_real_send_updates_its_journal(make_receiver, sent, tmp_path):
    receiver = make_receiver(journals=lambda: [tmp_path / "elsewhere.journal", journal_path(tmp_path /
                                                                                          "contacts.results.csv")])
    sandbox, clock, journal, sids = sent("--delivery-receipt-webhook", receiver.url)
    assert deliveries(journal) == [(sid, None) for sid in sids]
    clock.advance(5)  # past DELIVERY_DELAY: the sandbox delivers and calls the receipt webhook
    wait_until(lambda: receiver.counts.get("receipt", 0) == 3, "three receipts arrived", timeout=10)
    assert deliveries(journal) == [(sid, "Delivered") for sid in sids]
    receipts = [r for r in log_lines(tmp_path / "receive.log") if r["kind"] == "receipt"]
    assert sorted((r["MessageSid"], r["Status"], r["outcome"], r["journal"]) for r in receipts) == [
        (sid, "Delivered", "applied", str(journal)) for sid in sids]
    with Journal(journal) as opened:
        assert all(e.delivered_at is not None for e in opened.entries().values())


def test_a_receipt_for_a_journal_in_use_is_kept_and_applied_later(make_receiver, sent, tmp_path):
    sandbox, clock, journal, sids = sent()
    events = []
    receiver = make_receiver(journals=[journal], on_event=events.append)
    held = Journal(journal)  # as a running send holds it
    try:
        answer = requests.post(receiver.url, json={"MessageSid": sids[0], "Status": "Delivered",
                                                   "Delivered": 1_795_000_000}, timeout=5)
        assert answer.status_code == 200
        assert events[-1].text == (f"receipt {sids[0]} Delivered: kept in the log: {journal} is in use by a running "
                                   "send or status; applied when it is free")
        assert receiver.retry_pending() == 0
        assert [(r.sid, r.status) for r in pending_receipts(tmp_path / "receive.log")] == [(sids[0], "Delivered")]
    finally:
        held.close()
    assert receiver.retry_pending() == 1
    assert dict(deliveries(journal))[sids[0]] == "Delivered"
    assert pending_receipts(tmp_path / "receive.log") == []
    assert log_lines(tmp_path / "receive.log")[-1]["kind"] == "receipt-applied"


def test_the_next_receiver_applies_what_the_last_one_kept(make_receiver, sent, tmp_path):
    sandbox, clock, journal, sids = sent()
    with Journal(journal):
        first = make_receiver(journals=[journal])
        requests.post(first.url, json={"MessageSid": sids[2], "Status": "Delivered"}, timeout=5)
        first.stop()
    assert dict(deliveries(journal))[sids[2]] is None
    make_receiver(journals=[journal])  # at start it tries what the log keeps

    def recorded():  # read-only: polling through Journal() would hold its lock and keep the receipt waiting
        with closing(sqlite3.connect(f"{journal.as_uri()}?mode=ro", uri=True)) as db:
            return db.execute("SELECT delivery FROM rows WHERE message_sid = ?", (sids[2],)).fetchone()[0]

    wait_until(lambda: recorded() == "Delivered", "the kept receipt was recorded")
    wait_until(lambda: pending_receipts(tmp_path / "receive.log") == [], "the log marks it applied")


def test_status_can_apply_the_receipts_a_busy_journal_left_in_the_log(make_receiver, sent, tmp_path):
    sandbox, clock, journal, sids = sent()
    with Journal(journal) as held:
        receiver = make_receiver(journals=[journal])
        for sid, status in [(sids[0], "Submitted"), (sids[1], "Failed"), ("MNOBODY", "Delivered")]:
            requests.post(receiver.url, json={"MessageSid": sid, "Status": status, "ErrorCode": "E1"}, timeout=5)
        receiver.stop()  # its last retry finds the journal still in use: the receipts stay in the log
        assert sorted(r.sid for r in pending_receipts(tmp_path / "receive.log")) == sorted(sids[:2])
        assert apply_pending(held, tmp_path / "receive.log", checked=1_795_000_000) == 2  # what `status` would call
        entries = {e.message_sid: e for e in held.entries().values()}
    assert (entries[sids[0]].delivery, entries[sids[1]].delivery, entries[sids[1]].delivery_error) == (
        "Submitted", "Failed", "E1")
    assert pending_receipts(tmp_path / "receive.log") == []


def test_a_reply_through_the_sandbox_webhook_lands_in_the_opt_out_file(make_receiver, sent, tmp_path):
    receiver = make_receiver(clock=lambda: clock())  # the receiver's now is the sandbox's: replies are not "future"
    sandbox, clock, journal, sids = sent("--webhook", receiver.url)
    sandbox.add_reply("+61412000001", "Stop!")
    wait_until(lambda: receiver.counts.get("reply", 0) == 1, "the reply webhook arrived", timeout=10)
    assert optouts_in(tmp_path / "optouts.csv") == ["+61412000001"]
    clock.advance(60)
    sandbox.add_reply("+61412000001", "UNSTOP")
    wait_until(lambda: receiver.counts.get("reply", 0) == 2, "the second reply arrived", timeout=10)
    assert optouts_in(tmp_path / "optouts.csv") == []
    with sandbox.state.lock:
        assert [(c["kind"], c["status"]) for c in sandbox.state.webhook_calls] == [("reply", 200), ("reply", 200)]


# --------------------------------------------------------------------------- the URL for send --webhook auto


def test_webhook_url_is_what_the_last_receiver_wrote(tmp_path):
    with pytest.raises(ConfigError, match="no webhook receiver is set up; start one with `batchsms receive"):
        webhook_url(tmp_path)
    secret = choose_secret("auto", tmp_path)
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", secret)
    write_setup(Setup(secret, "http://127.0.0.1:8090"), tmp_path)
    assert (tmp_path / "receive.json").stat().st_mode & 0o777 == 0o600
    assert choose_secret("auto", tmp_path) == secret  # URLs already handed to the API keep working
    assert webhook_url(tmp_path) == f"http://127.0.0.1:8090/hooks/{secret}"
    with pytest.raises(ConfigError, match="restart it with --public-url"):
        webhook_url(tmp_path, public=True)
    write_setup(Setup(secret, "http://127.0.0.1:8090", "https://hooks.example.com"), tmp_path)
    assert webhook_url(tmp_path, public=True) == f"https://hooks.example.com/hooks/{secret}"
    with pytest.raises(ConfigError, match="--path-secret"):
        choose_secret("short", tmp_path)


def test_the_receive_command_prints_its_url_serves_and_stops_cleanly(tmp_path):
    env = {**os.environ, "BATCHSMS_STATE": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1", "TZ": "UTC",
           "BATCHSMS_CONFIG": "", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    process = subprocess.Popen(
        [sys.executable, "-m", "batchsms", "receive", "--port", "0", "--public-url", "https://hooks.example.com/",
         "--optouts", str(tmp_path / "optouts.csv")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or lines[-1] != "Ctrl-C to stop.":
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line.rstrip("\n"))
        local = re.fullmatch(r"Receiving webhooks on (http://127\.0\.0\.1:\d+/hooks/([A-Za-z0-9_-]{32}))", lines[0])
        assert local, lines
        url, secret = local.groups()
        assert lines[1] == (f"  the API calls: https://hooks.example.com/hooks/{secret} (send --webhook auto puts it "
                            "in DeliveryReceiptWebhookUri and WebhookUri)")
        assert read_setup(tmp_path / "state").public_url == "https://hooks.example.com"
        assert webhook_url(tmp_path / "state", public=True) == f"https://hooks.example.com/hooks/{secret}"
        assert requests.post(url, json=reply(A, "STOP"), timeout=5).status_code == 200
        assert requests.get(url.rsplit("/", 1)[0] + "/other", timeout=5).status_code == 404
        event = process.stdout.readline()
        assert event.rstrip("\n").endswith(f" UTC  reply from {A} 'STOP': opted out")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert out.splitlines() == ["Stopped: reply 1."]
    assert err == ""
    assert optouts_in(tmp_path / "optouts.csv") == [A]
