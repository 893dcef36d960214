"""The client against servers that misbehave on purpose: real loopback sockets, no mocks.

Each server here reads a request (or not) and answers with something the Fone
Dynamics API never sends: a parked domain's page, a gzip bomb, a drip of one byte
at a time, a self-signed certificate, its own request echoed back with the token.
None of it may mark a row sent, exhaust memory, hang past the read timeout, or
put a credential into an error text.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pytest

import batchsms.client as client_mod
from batchsms.client import Client, Decision
from batchsms.codes import Status
from batchsms.errors import ConfigError
from batchsms.journal import Journal
from batchsms.sender import Job, finish_for

SID = "AC0123456789"
TOKEN = "s3cr3t-T0ken+/=xyz"
PAIR_B64 = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
BODY = {"To": "+61412345678", "Text": "hello"}

Handler = Callable[[socket.socket, threading.Event], None]


def read_request(conn: socket.socket) -> bytes:
    """One HTTP request (head and Content-Length body) from ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def answer(status: int, body: bytes, *headers: str, content_type: str = "application/json") -> Handler:
    """A handler that reads the request and sends one complete answer."""
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        head = [f"HTTP/1.1 {status} Whatever", f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
                "Connection: close", *headers]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return handle


class Server:
    """A loopback TCP server running ``handler`` on each connection, in its own thread; TLS if given a context."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.connections = 0
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.handler(conn, self.stop)
        except OSError:  # the client hung up (or refused our certificate): expected here
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(handler: Handler, tls: ssl.SSLContext | None = None) -> Server:
        servers.append(Server(handler, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client_for(server: Server, **kwargs) -> Client:
    return Client(server.url, SID, TOKEN, "PS1", **kwargs)


# --- 2xx answers that are not the API's ----------------------------------------------------------------------

NOT_THE_API = [
    (200, b"<!doctype html><html><body>This domain is parked</body></html>", "text/html", "an HTML page"),
    (200, b"", "application/json", "an empty body"),
    (201, b'{"Message": {"MessageSid": "M1"', "application/json", "not JSON"),
    (200, b"[" * 100_000, "application/json", "not JSON"),  # deeper than the JSON parser can go
    (200, b'[{"MessageSid": "M1"}]', "application/json", "a JSON list"),
    (200, b'"M1"', "application/json", "not a JSON object"),
    (200, b'{"MessageSid": "M1"}', "application/json", "no Message object"),
    (202, b'{"Message": {"To": "+61412345678", "Status": "Processing"}}', "application/json", "no MessageSid"),
    (200, b'{"Message": {"MessageSid": {"id": 1}}}', "application/json", "no MessageSid"),
    (200, b'{"Message": {"MessageSid": ""}}', "application/json", "no MessageSid"),
    (200, json.dumps({"Message": {"MessageSid": "M" * 5000}}).encode(), "application/json", "a MessageSid that is not"),
]


@pytest.mark.parametrize(("status", "body", "content_type", "what"), NOT_THE_API,
                         ids=[case[3] + f"-{n}" for n, case in enumerate(NOT_THE_API)])
def test_a_2xx_that_is_not_the_api_is_unknown(serve, status, body, content_type, what):
    outcome = client_for(serve(answer(status, body, content_type=content_type))).send(BODY)
    assert outcome.decision is Decision.UNKNOWN and outcome.attempts == 1 and outcome.message_sid is None
    assert f"the server answered {status} but not as the Fone Dynamics API does ({what}" in outcome.error
    assert outcome.error.endswith("check --base-url")


@pytest.mark.parametrize(("extra", "sender_id", "num_segments"), [
    ({"From": ["+61400000001"], "NumSegments": 10 ** 30}, None, None),
    ({"From": {"number": "+61400000001"}, "NumSegments": -1}, None, None),
    ({"From": "+614" * 5000, "NumSegments": True}, None, None),
    ({"From": "+61400000001\n=cmd", "NumSegments": "3"}, None, None),
    ({"From": "+61400000009", "NumSegments": 3}, "+61400000009", 3),
])
def test_wrong_types_in_an_accepted_answer_never_reach_the_journal(serve, tmp_path, extra, sender_id, num_segments):
    answer_body = json.dumps({"Message": {"MessageSid": "M1", **extra}}).encode()
    outcome = client_for(serve(answer(200, answer_body))).send(BODY)
    assert outcome.decision is Decision.ACCEPTED
    assert (outcome.message_sid, outcome.sender_id, outcome.num_segments) == ("M1", sender_id, num_segments)
    segments = num_segments or 2  # the job's own count when the answer's is unusable
    now = time.time()
    scheduled = finish_for(Job(2, {**BODY, "Schedule": int(now) + 3600}, "h2", 2), outcome, now)
    sent = finish_for(Job(3, BODY, "h3", 2), outcome, now)
    with Journal(tmp_path / "j") as journal:
        journal.commit(starts=[(2, "h2"), (3, "h3")])
        journal.commit(finishes=[scheduled, sent])
        entries = journal.entries()
    assert (entries[2].state, entries[2].message_sid, entries[2].sender_id, entries[2].segments) == (
        Status.SCHEDULED, "M1", sender_id, segments)
    assert entries[3].state == Status.SENT


# --- bounded bodies ---------------------------------------------------------------------------------------------

def _big_answer(status: int, chunked: bool) -> Handler:
    """A JSON answer padded to 5 MB, with a Content-Length or chunked (so only reading can find its size)."""
    body = json.dumps({"Message": {"MessageSid": "M1", "Pad": "x" * (5 << 20)}}).encode()
    if not chunked:
        return answer(status, body)

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(f"HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        for start in range(0, len(body), 65536):
            piece = body[start:start + 65536]
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.sendall(b"0\r\n\r\n")
    return handle


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_answer_over_the_cap_is_unknown(serve, chunked):
    outcome = client_for(serve(_big_answer(200, chunked))).send(BODY)
    assert outcome.decision is Decision.UNKNOWN and outcome.message_sid is None
    assert "the server answered 200 but the answer was larger than 4 MB" in outcome.error


@lru_cache
def _bomb(encoding: str) -> bytes:
    """256 MB of zeros in ~260 KB: sixteen 16 MB gzip members, or one 16 MB+ deflate stream."""
    if encoding == "deflate":
        engine = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
        zeros = bytes(1 << 20)
        return b"".join(engine.compress(zeros) for _ in range(64)) + engine.flush()
    engine = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    member = engine.compress(bytes(16 << 20)) + engine.flush()
    return member * 16


@pytest.mark.parametrize(("encoding", "status", "decision"), [
    ("gzip", 200, Decision.UNKNOWN), ("deflate", 201, Decision.UNKNOWN),
    ("gzip", 400, Decision.FAILED), ("gzip", 500, Decision.UNKNOWN),
])
def test_a_compression_bomb_stops_at_the_cap(serve, encoding, status, decision):
    server = serve(answer(status, _bomb(encoding), f"Content-Encoding: {encoding}"))
    client = client_for(server)
    tracemalloc.start()
    try:
        started = time.monotonic()
        outcome = client.send(BODY)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome.decision is decision and outcome.attempts == 1
    assert "the answer was larger than 4 MB" in outcome.error and len(outcome.error) <= 300
    assert peak < 40 << 20, f"{peak / 2 ** 20:.0f} MB held while reading a bomb"
    assert elapsed < 3


# --- the whole answer within the read timeout -----------------------------------------------------------------

def _drip(where: str) -> Handler:
    """Answer one byte every 0.3 s, in the headers or in the body, for up to 9 s: never a silent gap of 1.5 s."""
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        if where == "headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(30):
            if stop.wait(0.3):
                return
            conn.sendall(b"a" if where == "headers" else b" ")
    return handle


def test_dripping_answers_end_within_the_read_timeout(serve):
    """Headers and body dripped at once, by two servers, so the test takes one read timeout, not two."""
    def timed(where: str) -> tuple[float, client_mod.Outcome]:
        started = time.monotonic()
        outcome = client_for(serve(_drip(where)), connect_timeout=1.0, read_timeout=1.5).send(BODY)
        return time.monotonic() - started, outcome

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(timed, ["headers", "body"]))
    for elapsed, outcome in results:
        assert outcome.decision is Decision.UNKNOWN and outcome.attempts == 1
        assert "took longer than the read timeout (1.5 s)" in outcome.error
        assert 1.4 < elapsed < 4


# --- TLS failures stop the run ----------------------------------------------------------------------------------

def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: with the cryptography package, else the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        try:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                           check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            pytest.skip("neither the cryptography package nor the openssl command is available")
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key


def test_a_certificate_that_fails_verification_stops_the_run(serve, tmp_path):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_self_signed(tmp_path))
    requests_seen = []
    server = serve(lambda conn, stop: requests_seen.append(read_request(conn)), tls=context)
    client = client_for(server, max_attempts=3, sleep=lambda s: None)
    outcome = client.send(BODY)
    assert outcome.decision is Decision.FATAL and outcome.stops_run and outcome.attempts == 1
    assert outcome.error == (f"TLS handshake with 127.0.0.1:{server.port} failed: certificate verify failed: "
                             "self-signed certificate; check --base-url or the machine's CA certificates")
    assert client.stop_message(outcome) == outcome.error_text
    assert requests_seen == []  # not one byte of the request went out
    assert finish_for(Job(2, BODY, "h", 1), outcome, time.time()) is None  # the row is released


def test_https_to_a_plain_http_server_stops_the_run(serve):
    def plain_http(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")  # to a TLS ClientHello
        time.sleep(0.2)

    server = serve(plain_http)
    client = Client(server.url.replace("http://", "https://"), SID, TOKEN, "PS1", max_attempts=3,
                    sleep=lambda s: None)
    outcome = client.send(BODY)
    assert outcome.decision is Decision.FATAL and outcome.attempts == 1
    assert outcome.error.startswith(f"TLS handshake with 127.0.0.1:{server.port} failed: ")
    assert outcome.error.endswith("; check --base-url or the machine's CA certificates")


def test_a_connection_dropped_in_the_tls_handshake_was_never_taken(serve):
    server = serve(lambda conn, stop: None)  # accepts, then closes before any TLS byte
    client = Client(server.url.replace("http://", "https://"), SID, TOKEN, "PS1", max_attempts=2,
                    sleep=lambda s: None)
    outcome = client.send(BODY)
    assert outcome.decision is Decision.FAILED and outcome.attempts == 2
    assert "never taken" in outcome.error and server.connections == 2


# --- the base URL and the credentials ---------------------------------------------------------------------------

REFUSED_URLS = [
    ("ftp://api.fonedynamics.com", "is not an http(s) URL"),
    ("api.fonedynamics.com", "is not an http(s) URL"),
    ("https://", "has no host"),
    ("https://AC1:hunter2@api.fonedynamics.com", "holds a user name or password"),
    ("https://api.fonedynamics.com/?PropertySid=PS1", "holds a query"),
    ("https://api.fonedynamics.com/#top", "or fragment"),
    ("https://api.fonedynamics.com:99999", "has a port that is not a number"),
    ("https://api.fone dynamics.com", "holds a space"),
    ("http://api.fonedynamics.com", "unencrypted to another machine"),
    ("http://127.evil.example:8080", "unencrypted to another machine"),
    ("http://localhost.evil.example", "unencrypted to another machine"),
    ("http://[::2]:8080", "unencrypted to another machine"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED_URLS)
def test_a_base_url_that_cannot_be_right_is_refused(url, why):
    with pytest.raises(ConfigError) as caught:
        client_mod.check_base_url(url, allow_insecure=False)
    message = str(caught.value)
    assert why in message and "\n" not in message and "hunter2" not in message
    with pytest.raises(ConfigError):
        Client(url, SID, TOKEN, "PS1")


def test_loopback_and_insecure_base_urls():
    for url in ("https://api.fonedynamics.com/", "http://127.0.0.1:8080", "http://127.9.9.9/", "http://localhost:1",
                "http://[::1]:8080/base/"):
        assert client_mod.check_base_url(url, allow_insecure=False) == url.rstrip("/")
    assert client_mod.check_base_url("http://api.example.com", allow_insecure=True) == "http://api.example.com"
    assert Client("http://api.example.com", SID, TOKEN, "PS1", allow_insecure=True).url == \
        "http://api.example.com/v2/Properties/PS1/Messages"


@pytest.mark.parametrize(("sid", "token", "expected"), [
    (SID, "abc–def", "BATCHSMS_AUTH_TOKEN (or auth_token in the config file) holds a character that cannot be sent "
                     "(position 4: EN DASH); paste the token again"),
    (SID, "abcdef\n", "(position 7: LINE FEED)"),
    (SID, "abc def", "(position 4: SPACE)"),
    (SID, "tök", "(position 2: LATIN SMALL LETTER O WITH DIAERESIS)"),
    ("AC12:34", TOKEN, "BATCHSMS_ACCOUNT_SID (or account_sid in the config file) holds a character that cannot be "
                       "sent (position 5: COLON); paste the account SID again"),
])
def test_credentials_that_cannot_go_into_a_basic_header_are_refused_without_showing_them(sid, token, expected):
    with pytest.raises(ConfigError) as caught:
        Client("https://api.fonedynamics.com", sid, token, "PS1")
    message = str(caught.value)
    assert expected in message
    assert (token if sid == SID else sid) not in message


# --- error texts are trimmed and scrubbed -----------------------------------------------------------------------

def _echo(status: int) -> Handler:
    """An error answer that quotes the credentials and the request back (Authorization header and all)."""
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        request = read_request(conn).decode("latin-1")
        header = next(line for line in request.split("\r\n") if line.startswith("Authorization:"))
        text = f"token {TOKEN}, pair {SID}:{TOKEN}, {header}, request {request!r} " + "x" * 10_000
        if status == 500:
            body = f"<html>{TOKEN} {header}<pre>{request}</pre></html>".encode()
        else:
            body = json.dumps({"ResponseStatus": {"ErrorCode": "Echo", "Message": text}}).encode()
        answer(status, body)(_Replay(conn, request.encode("latin-1")), stop)
    return handle


class _Replay:
    """A socket whose request was already read: recv gives it again, for the ``answer`` handler."""

    def __init__(self, conn: socket.socket, request: bytes) -> None:
        self.conn, self.pending = conn, request

    def recv(self, size: int) -> bytes:
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

    def sendall(self, data: bytes) -> None:
        self.conn.sendall(data)


@pytest.mark.parametrize(("status", "decision"), [(400, Decision.FAILED), (401, Decision.AUTH),
                                                  (500, Decision.UNKNOWN)])
def test_error_answers_are_trimmed_and_never_hold_a_credential(serve, status, decision):
    client = client_for(serve(_echo(status)))
    outcome = client.send(BODY)
    assert outcome.decision is decision
    stored = outcome.error_text + client.stop_message(outcome)
    for secret in (TOKEN, PAIR_B64, f"{SID}:{TOKEN}"):
        assert secret not in stored
    assert len(outcome.error) <= 300 and "\n" not in outcome.error
    assert "[redacted]" in outcome.error


def test_scrub_for_any_text_such_as_an_internal_error():
    client = Client("https://api.fonedynamics.com", SID, TOKEN, "PS1")
    exc = RuntimeError(f"header Authorization: Basic {PAIR_B64} for {SID}:{TOKEN}")
    text = client.scrub(f"internal error: {exc!r}")
    assert text.startswith("internal error: RuntimeError(") and TOKEN not in text and PAIR_B64 not in text
    assert client.scrub("HTTP 401 (Basic authentication failed)") == "HTTP 401 (Basic authentication failed)"
    for gap in range(2390, 2480):  # the token cut in two by the length cap: no part of it survives
        assert TOKEN[:6] not in client.scrub(" " * gap + TOKEN * 3)
