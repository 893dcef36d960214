"""The sandbox as a network service: hostile clients get an HTTP answer, never a traceback.

Everything here talks to a real sandbox on a loopback port through raw sockets, because
the point is what the server does with bytes no well-behaved client would send.
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import socket
import threading
import time

import pytest
import requests

from batchsms.sandbox import Sandbox

MESSAGES = "/v2/Properties/PS1/Messages"
BATCH = "/v2/Properties/PS1/BatchMessages"


@pytest.fixture
def box(make_sandbox, caplog, capfd):
    """A sandbox whose every log record and stderr line is checked for tracebacks after the test.

    asyncio reports a crashed connection handler only when the task is garbage collected
    ("Task exception was never retrieved"), so the check stops the server and collects first.
    """
    caplog.set_level(logging.DEBUG)
    made: list[Sandbox] = []

    def make(**kwargs) -> Sandbox:
        server = make_sandbox(**kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()
    gc.collect()
    traced = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not traced, [r.getMessage() for r in traced]
    assert "Traceback" not in capfd.readouterr().err


def auth(server: Sandbox, token: str | None = None) -> str:
    raw = f"{server.account_sid}:{server.auth_token if token is None else token}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def connect(server: Sandbox, timeout: float = 3.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names), body by its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"the server closed the connection without an answer (got {data!r})")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers, rest


def closed(sock: socket.socket) -> bool:
    """True when the server has closed its side (EOF or reset), within the socket timeout."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def exchange(server: Sandbox, raw: bytes, *, then_closed: bool = True) -> tuple[int, dict[str, str], bytes, bool]:
    """Send raw bytes, read one answer, and (unless ``then_closed=False``) whether the server then closed."""
    with connect(server) as sock:
        sock.sendall(raw)
        status, headers, body = read_response(sock)
        return status, headers, body, then_closed and closed(sock)


def request(server: Sandbox, target: str = MESSAGES, *, method: str = "POST", body: bytes = b"",
            headers: list[str] | None = None, token: str | None = None) -> bytes:
    """A request's bytes; ``headers`` replace the default Content-Length when given."""
    lines = [f"{method} {target} HTTP/1.1", "Host: sandbox", f"Authorization: {auth(server, token)}"]
    lines += headers if headers is not None else [f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ---------------------------------------------------------------- exposure warning
@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_no_exposure_warning_on_loopback(host):
    from batchsms.sandbox import exposure_warning

    assert exposure_warning(host, True) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "sandbox.example.org",
                                  "127.0.0.1.evil.com"])
def test_exposure_warning_when_listening_beyond_loopback_with_default_token(host):
    from batchsms.sandbox import DEFAULT_AUTH_TOKEN, exposure_warning

    warning = exposure_warning(host, True)
    assert warning is not None and "\n" not in warning
    assert f"listens on {host} " in warning and f"'{DEFAULT_AUTH_TOKEN}'" in warning
    assert "--auth-token" in warning and "--host 127.0.0.1" in warning
    assert exposure_warning(host, False) is None  # a token of the user's own choosing
    assert "all interfaces" in exposure_warning("", True)


# ---------------------------------------------------------------- framing
@pytest.mark.parametrize("lines", [
    ["Content-Length: abc"],
    ["Content-Length: -5"],
    ["Content-Length: +5"],
    ["Content-Length: 1e3"],
    ["Content-Length: 5, 6"],
    ["Content-Length: 5", "Content-Length: 6"],
    ["Content-Length: \u00b2"],  # a digit to str.isdigit(), not to HTTP
])
def test_malformed_content_length_is_400_and_closes(box, lines):
    server = box()
    status, _, body, was_closed = exchange(server, request(server, headers=lines, body=b"hello"))
    assert status == 400 and "Content-Length" in json.loads(body)["ResponseStatus"]["Message"]
    assert was_closed  # where the body ends is unknown: the connection cannot be reused
    assert server.state.taken == []


def test_chunked_transfer_encoding_is_refused_with_a_clear_message(box):
    server = box()
    chunked = b'1c\r\n{"To":"+61412345678","Text":"x"}\r\n0\r\n\r\n'
    status, _, body, was_closed = exchange(
        server, request(server, headers=["Transfer-Encoding: chunked"], body=chunked))
    assert status in (411, 501) and "Content-Length" in json.loads(body)["ResponseStatus"]["Message"]
    assert was_closed and server.state.taken == []


@pytest.mark.parametrize("line", [
    b"GARBAGE",
    b"GET /v2/Messages/M1",
    b"GET /v2/Messages/M1 FTP/1.0",
    b"GET\t/v2/Messages/M1 HTTP/1.1",
    b"GET //[oops/v2 HTTP/1.1",
    b"G(T /v2/Messages/M1 HTTP/1.1",
])
def test_bad_request_line_is_400(box, line):
    server = box()
    status, _, _, was_closed = exchange(server, line + b"\r\nHost: sandbox\r\n\r\n")
    assert status == 400 and was_closed


@pytest.mark.parametrize("header", [b"NoColonHere", b" folded: continuation", b"Bad Name: x"])
def test_malformed_header_line_is_400(box, header):
    server = box()
    raw = request(server, "/v2/Messages/M1", method="GET", headers=[])
    raw = raw.replace(b"\r\n\r\n", b"\r\n" + header + b"\r\n\r\n")
    status, _, _, was_closed = exchange(server, raw)
    assert status == 400 and was_closed


def test_header_block_too_big_is_431(box):
    server = box()
    raw = request(server, "/v2/Messages/M1", method="GET", headers=["X-Pad: " + "a" * 100_000])
    status, _, _, was_closed = exchange(server, raw)
    assert status in (400, 431) and was_closed


# ---------------------------------------------------------------- body size and auth order
def test_wrong_auth_is_401_before_the_body_is_read(box):
    server = box()
    with connect(server) as sock:  # declares 10 MB and sends none of it: the answer must not wait
        sock.sendall(request(server, headers=["Content-Length: 10000000"], token="wrong"))
        status, _, body = read_response(sock)
        assert status == 401 and json.loads(body)["ResponseStatus"]["ErrorCode"] == "Unauthorized"
        assert closed(sock)


def test_oversized_bodies_are_413_and_the_cap_depends_on_the_endpoint(box):
    server = box()
    with connect(server) as sock:  # answered from the headers alone
        sock.sendall(request(server, headers=[f"Content-Length: {(1 << 20) + 1}"]))
        assert read_response(sock)[0] == 413
        assert closed(sock)
    status, _, _, was_closed = exchange(server, request(server, headers=["Content-Length: " + "9" * 5000]))
    assert status == 413 and was_closed
    # A real client that sends the whole 2 MB before reading still gets the 413, not a reset.
    answer = requests.post(f"{server.url}{MESSAGES}", json={"To": "+61412345678", "Text": "x" * (2 << 20)},
                           auth=(server.account_sid, server.auth_token), timeout=5)
    assert answer.status_code == 413 and server.state.taken == []
    # BatchMessages carries many messages: 2 MB is fine there.
    batch = b'{"Messages": []}' + b" " * (2 << 20)
    answer = requests.post(f"{server.url}{BATCH}", data=batch, auth=(server.account_sid, server.auth_token),
                           timeout=5)
    assert answer.status_code == 200 and answer.json() == []


def test_expect_100_continue_is_honoured(box):
    server = box()
    body = json.dumps({"To": "+61412345678", "Text": "x", "From": "Shop"}).encode()
    with connect(server) as sock:
        sock.sendall(request(server, headers=[f"Content-Length: {len(body)}", "Expect: 100-continue"]))
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        assert read_response(sock)[0] == 200


# ---------------------------------------------------------------- half-open requests
def test_headers_that_never_finish_get_408_and_a_close(box):
    server = box(request_timeout=0.3)
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(f"POST {MESSAGES} HTTP/1.1\r\nHost: sandbox\r\n".encode())
        status, _, body = read_response(sock)
        assert status == 408 and "0.3 s" in json.loads(body)["ResponseStatus"]["Message"]
        assert closed(sock) and time.monotonic() - started < 2


def test_a_body_that_never_finishes_gets_408_and_a_close(box):
    server = box(request_timeout=0.3)
    with connect(server) as sock:
        sock.sendall(request(server, headers=["Content-Length: 100"]) + b'{"To": "+614')
        assert read_response(sock)[0] == 408
        assert closed(sock)
    assert server.state.taken == []


def test_an_idle_connection_is_closed_quietly(box):
    server = box(idle_timeout=0.3)
    with connect(server) as sock:
        started = time.monotonic()
        assert closed(sock) and time.monotonic() - started < 2


def test_the_connection_serves_requests_after_a_timeout_elsewhere(box):
    server = box(request_timeout=0.3)
    with connect(server) as stuck, connect(server) as fine:
        stuck.sendall(b"POST")
        fine.sendall(request(server, "/v2/Messages/MNOPE", method="GET", headers=[]))
        assert read_response(fine)[0] == 404
        assert read_response(stuck)[0] == 408


# ---------------------------------------------------------------- bodies that used to crash the handler
@pytest.mark.parametrize(("payload", "code"), [
    pytest.param(b"[" * 200_000 + b"]" * 200_000, "InvalidRequest", id="nested-200000-deep"),
    pytest.param(json.dumps({"To": "+61412345678", "Text": "x", "DeliveryReceiptWebhookUri": "http://[::1"}
                            ).encode(), "InvalidDeliveryReceiptWebhookUri", id="unclosed-ipv6-bracket"),
    pytest.param(json.dumps({"To": "+61412345678", "Text": "x",
                             "DeliveryReceiptWebhookUri": "http://127.0.0.1:99999/dr"}).encode(),
                 "InvalidDeliveryReceiptWebhookUri", id="port-out-of-range"),
])
def test_hostile_json_is_400(box, payload, code):
    server = box()
    status, _, body, _ = exchange(server, request(server, body=payload), then_closed=False)
    assert status == 400 and json.loads(body)["ResponseStatus"]["ErrorCode"] == code
    assert server.state.taken == []


# ---------------------------------------------------------------- the webhook target check
@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True), ("localhost", True), ("::ffff:127.0.0.1", True),
    ("127.0.0.1.evil.com", False), ("127.evil", False), ("localhost.evil.com", False), ("0.0.0.0", False),
    ("10.0.0.1", False), ("", False),
])
def test_is_loopback_host(host, loopback):
    from batchsms.sandbox import is_loopback_host

    assert is_loopback_host(host) is loopback


def test_webhooks_to_names_that_look_like_loopback_are_not_called(box):
    server = box()
    listener = socket.create_server(("127.0.0.1", 0))  # a loopback hook that answers something not HTTP

    def answer_garbage() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"garbage\r\n")

    threading.Thread(target=answer_garbage, daemon=True).start()
    garbage = f"http://127.0.0.1:{listener.getsockname()[1]}/dr"
    lookalikes = ["http://127.0.0.1.evil.com/dr", "http://127.evil:8080/dr", "http://localhost.evil.com/dr"]
    with listener:
        answer = requests.post(
            f"{server.url}{BATCH}", auth=(server.account_sid, server.auth_token), timeout=5,
            json={"Messages": [{"To": "+61412345678", "Text": "x", "From": "Shop", "DeliveryReceiptWebhookUri": url}
                               for url in [*lookalikes, garbage]]})
        assert answer.status_code == 200 and all(item["MessageSid"] for item in answer.json())
        deadline = time.monotonic() + 4
        while len(server.state.webhook_calls) < len(lookalikes) + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    calls = {call["url"]: call["status"] for call in server.state.webhook_calls}
    assert set(calls) == {*lookalikes, garbage}
    assert all(calls[url].startswith("not called") for url in lookalikes), calls
    assert calls[garbage] == "failed: the webhook's answer is not HTTP"
