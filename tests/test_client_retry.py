"""The retry loop of ``Client.send``: what is retried, how long it waits, when it gives up, and Ctrl-C.

The policy is two pure functions (``should_retry``, ``backoff_seconds``) tested over
their inputs; the loop is tested against a real loopback HTTP server that counts the
requests it gets, because the promise is about requests on the wire: nothing that may
have been taken is sent twice, and nothing at all goes out after a Ctrl-C.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from batchsms.client import Client, Decision, Outcome, backoff_seconds, parse_retry_after, should_retry
from batchsms.sender import Job, finish_for

BODY = {"To": "+61412345678", "Text": "hello"}
ACCEPTED_BODY = json.dumps({"Message": {"MessageSid": "MS1", "From": "+61400000001", "NumSegments": 1}})
TOO_MANY = json.dumps({"ResponseStatus": {"ErrorCode": "TooManyRequests", "Message": "slow down"}})


# --- the policy -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("decision", "attempts", "max_attempts", "retry"), [
    (Decision.RETRY, 1, 5, True),
    (Decision.RETRY, 4, 5, True),
    (Decision.RETRY, 5, 5, False),  # out of attempts
    (Decision.RETRY, 1, 1, False),  # --max-attempts 1: never a second request
    (Decision.UNKNOWN, 1, 5, False),  # may have been taken: a resend could text twice
    (Decision.FAILED, 1, 5, False),
    (Decision.AUTH, 1, 5, False),
    (Decision.FATAL, 1, 5, False),
    (Decision.ACCEPTED, 1, 5, False),
])
def test_should_retry(decision, attempts, max_attempts, retry):
    assert should_retry(Outcome(decision), attempts, max_attempts) is retry


@pytest.mark.parametrize(("value", "seconds"), [
    ("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("nan", None), ("", None), (None, None), ("soon", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # the HTTP-date form counts as absent
])
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize(("attempt", "jitter", "seconds"), [
    (1, 0.0, 0.25), (1, 0.5, 0.375), (1, 1.0, 0.5),  # equal jitter: between half and all of the step
    (2, 0.0, 0.5), (2, 1.0, 1.0),
    (3, 0.0, 1.0), (3, 1.0, 2.0),
    (7, 1.0, 30.0), (30, 0.0, 15.0), (30, 1.0, 30.0),  # the step stops growing at 30 s
])
def test_backoff_without_retry_after_is_exponential_with_equal_jitter(attempt, jitter, seconds):
    assert backoff_seconds(attempt, None, jitter=lambda: jitter) == seconds


@pytest.mark.parametrize(("retry_after", "jitter", "seconds"), [
    (2.0, 0.0, 2.0), (2.0, 0.5, 2.05), (0.0, 0.0, 0.0),
    (86_400.0, 0.0, 120.0),  # a day is not a wait a send run can honour: two minutes at most
])
def test_backoff_honours_retry_after(retry_after, jitter, seconds):
    for attempt in (1, 4):  # whatever the attempt: the server said how long
        assert backoff_seconds(attempt, retry_after, jitter=lambda: jitter) == pytest.approx(seconds)


# --- the loop, against a real server ----------------------------------------------------------------------------

class CountingServer:
    """A loopback HTTP server that answers the n-th POST with ``answers[n]`` (the last one repeated) and counts them."""

    def __init__(self, answers: list[tuple[int, dict[str, str], str]]) -> None:
        self.answers = answers
        self.requests = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    server.requests += 1
                    status, headers, body = server.answers[min(server.requests, len(server.answers)) - 1]
                data = body.encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # keep the test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[CountingServer] = []

    def start(*answers: tuple[int, dict[str, str], str]) -> CountingServer:
        servers.append(CountingServer(list(answers)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client_for(url: str, **kwargs) -> Client:
    kwargs.setdefault("jitter", lambda: 0.0)
    return Client(url, "AC1", "tok", "PS1", **kwargs)


def test_ctrl_c_during_a_backoff_sends_nothing_more(serve):
    """The real wait (stop.wait, no injected sleep): Ctrl-C ends it at once and no second POST goes out."""
    server = serve((503, {"Retry-After": "2"}, '{"ResponseStatus": {"Message": "busy"}}'))
    client = client_for(server.url, max_attempts=5)
    stop = threading.Event()
    outcomes: list[Outcome] = []
    worker = threading.Thread(target=lambda: outcomes.append(client.send(BODY, stop)), daemon=True)
    worker.start()
    deadline = time.monotonic() + 5
    while server.requests < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # the answer is read and the 2 s backoff has begun
    stopped_at = time.monotonic()
    stop.set()
    worker.join(timeout=3)
    assert time.monotonic() - stopped_at < 0.5
    time.sleep(0.2)  # a POST let out after the stop would have reached the server by now
    assert server.requests == 1
    [outcome] = outcomes
    assert (outcome.decision, outcome.status, outcome.attempts, outcome.error) == (Decision.RETRY, 503, 1, "busy")
    assert finish_for(Job(2, BODY, "h2", 1), outcome, time.time()) is None  # released, never taken


def test_a_stop_set_during_the_sleep_is_checked_before_the_next_post(serve):
    """The same with an injected sleep that plays Ctrl-C: deterministic, no timing."""
    server = serve((429, {}, TOO_MANY))
    stop = threading.Event()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        stop.set()

    outcome = client_for(server.url, max_attempts=5, sleep=sleep).send(BODY, stop)
    assert (server.requests, sleeps, outcome.decision, outcome.attempts) == (1, [0.25], Decision.RETRY, 1)


@pytest.mark.parametrize(("max_attempts", "waits"), [(1, []), (2, [0.25]), (4, [0.25, 0.5, 1.0])])
def test_429_until_max_attempts_is_failed_never_taken(serve, max_attempts, waits):
    server = serve((429, {}, TOO_MANY))
    sleeps: list[float] = []
    outcome = client_for(server.url, max_attempts=max_attempts, sleep=sleeps.append).send(BODY)
    tries = "1 attempt" if max_attempts == 1 else f"{max_attempts} attempts"
    assert (outcome.decision, outcome.status, outcome.attempts) == (Decision.FAILED, 429, max_attempts)
    assert outcome.error_text == f"TooManyRequests: slow down (gave up after {tries}; never taken)"
    assert (server.requests, sleeps) == (max_attempts, waits)


def test_retry_after_is_honoured_then_the_message_goes(serve):
    busy = (503, {"Retry-After": "3"}, "")
    server = serve(busy, (429, {"Retry-After": "7"}, TOO_MANY), (200, {}, ACCEPTED_BODY))
    sleeps: list[float] = []
    outcome = client_for(server.url, max_attempts=5, sleep=sleeps.append).send(BODY)
    assert (outcome.decision, outcome.message_sid, outcome.attempts) == (Decision.ACCEPTED, "MS1", 3)
    assert (server.requests, sleeps) == (3, [3.0, 7.0])


@pytest.mark.parametrize("status", [500, 502, 504, 400, 401, 403])
def test_what_may_have_been_taken_or_would_fail_again_is_sent_once(serve, status):
    server = serve((status, {"Retry-After": "1"}, '{"ResponseStatus": {"Message": "no"}}'))
    sleeps: list[float] = []
    outcome = client_for(server.url, max_attempts=5, sleep=sleeps.append).send(BODY)
    assert (outcome.attempts, server.requests, sleeps) == (1, 1, [])  # a Retry-After on them changes nothing
    assert "gave up" not in outcome.error


def test_a_refused_connection_is_retried_then_failed_as_never_taken():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before use: nothing listens there
    sleeps: list[float] = []
    outcome = client_for(f"http://127.0.0.1:{port}", max_attempts=3, sleep=sleeps.append).send(BODY)
    assert (outcome.decision, outcome.attempts, sleeps) == (Decision.FAILED, 3, [0.25, 0.5])
    assert outcome.error.endswith("(gave up after 3 attempts; never taken)")
