"""The retry decision over every status and failure, and the client against a real sandbox."""

import socket
import ssl

import pytest
import requests
import urllib3

from batchsms.client import STOP_DECISIONS, Client, Decision, backoff_seconds, decide, parse_retry_after

STATUS_TABLE = [
    (200, Decision.ACCEPTED), (201, Decision.ACCEPTED), (202, Decision.ACCEPTED), (204, Decision.ACCEPTED),
    (301, Decision.UNKNOWN), (302, Decision.UNKNOWN),
    (400, Decision.FAILED), (404, Decision.FAILED), (405, Decision.FAILED), (408, Decision.FAILED),
    (409, Decision.FAILED), (413, Decision.FAILED), (422, Decision.FAILED),
    (401, Decision.AUTH), (403, Decision.AUTH),
    (429, Decision.RETRY), (503, Decision.RETRY),
    (500, Decision.UNKNOWN), (502, Decision.UNKNOWN), (504, Decision.UNKNOWN), (501, Decision.UNKNOWN),
    (None, Decision.UNKNOWN),
]


@pytest.mark.parametrize(("status", "decision"), STATUS_TABLE)
def test_decide_status(status, decision):
    assert decide(status) is decision


def test_every_status_has_a_decision():
    for status in range(100, 600):
        assert decide(status) in Decision


def _new_connection_error():
    inner = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", inner))


EXCEPTION_TABLE = [
    (requests.exceptions.ConnectTimeout("connect timed out"), Decision.RETRY),
    (_new_connection_error(), Decision.RETRY),
    (requests.exceptions.ConnectionError(ConnectionRefusedError(111, "refused")), Decision.RETRY),
    (requests.exceptions.ReadTimeout("read timed out"), Decision.UNKNOWN),
    (requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "reset"))), Decision.UNKNOWN),
    (requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", Exception("RemoteDisconnected"))), Decision.UNKNOWN),
    (requests.exceptions.ChunkedEncodingError("broken"), Decision.UNKNOWN),
    (requests.exceptions.SSLError("bad handshake"), Decision.UNKNOWN),
]


@pytest.mark.parametrize(("exc", "decision"), EXCEPTION_TABLE)
def test_decide_exception(exc, decision):
    assert decide(None, exc) is decision


def _tls_error(exc):
    """A TLS error as requests raises it: SSLError(MaxRetryError(reason=urllib3 SSLError(the ssl module's)))."""
    return requests.exceptions.SSLError(
        urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.SSLError(exc)))


def _verify_failed():
    return _tls_error(ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"))


# (exception, raised while connecting: before any byte of the request went out, decision)
CONNECTING_TABLE = [
    (_verify_failed(), True, Decision.FATAL),
    (_verify_failed(), False, Decision.FATAL),  # only a handshake can fail verification
    (_tls_error(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")), True, Decision.FATAL),
    (_tls_error(ssl.SSLError(1, "[SSL: DECRYPTION_FAILED] decryption failed")), False, Decision.UNKNOWN),
    (_tls_error(ssl.SSLEOFError(8, "EOF occurred in violation of protocol")), True, Decision.RETRY),
    (requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "reset"))), True, Decision.RETRY),
    (requests.exceptions.ReadTimeout("handshake timed out"), True, Decision.RETRY),
    (requests.exceptions.ReadTimeout("read timed out"), False, Decision.UNKNOWN),
]


@pytest.mark.parametrize(("exc", "connecting", "decision"), CONNECTING_TABLE)
def test_decide_while_connecting(exc, connecting, decision):
    assert decide(None, exc, connecting=connecting) is decision
    assert (decision in STOP_DECISIONS) is (decision is Decision.FATAL)


def test_retry_after_and_backoff():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None
    assert backoff_seconds(1, 2.0, jitter=lambda: 0) == 2.0
    assert backoff_seconds(1, None, jitter=lambda: 0) == 0.25
    assert backoff_seconds(3, None, jitter=lambda: 1) == 2.0
    assert backoff_seconds(30, None, jitter=lambda: 1) == 30.0  # capped


def client_for(server, **kwargs):
    return Client(server.url, server.account_sid, server.auth_token, "PS1", **kwargs)


BODY = {"To": "+61412345678", "Text": "hello"}


def test_accepted_message(sandbox):
    outcome = client_for(sandbox).send(BODY)
    assert outcome.decision is Decision.ACCEPTED and outcome.attempts == 1
    assert outcome.message["MessageSid"].startswith("M") and outcome.message["From"].startswith("+6140")
    assert (outcome.message_sid, outcome.sender_id, outcome.num_segments) == (
        outcome.message["MessageSid"], outcome.message["From"], 1)


def test_validation_error_is_failed_with_the_api_code(sandbox):
    outcome = client_for(sandbox).send({"To": "0412345678", "Text": "x"})
    assert (outcome.decision, outcome.status, outcome.error_code) == (Decision.FAILED, 400, "InvalidTo")
    assert "E164" in outcome.error


def test_wrong_token_is_auth(sandbox):
    outcome = Client(sandbox.url, sandbox.account_sid, "wrong", "PS1").send(BODY)
    assert outcome.decision is Decision.AUTH and outcome.status == 401


def test_refused_connection_is_retried_then_failed_as_never_taken():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before use: nothing listens there
    sleeps = []
    outcome = Client(f"http://127.0.0.1:{port}", "AC", "tok", "PS1", max_attempts=3, sleep=sleeps.append).send(BODY)
    assert outcome.decision is Decision.FAILED and outcome.attempts == 3
    assert "never taken" in outcome.error and len(sleeps) == 2


def test_429_honours_retry_after(make_sandbox):
    server = make_sandbox(faults={"429": 1.0})
    sleeps = []
    outcome = client_for(server, max_attempts=3, sleep=sleeps.append).send(BODY)
    assert outcome.attempts == 3 and outcome.decision is Decision.FAILED
    assert all(1.0 <= s <= 1.1 for s in sleeps)  # Retry-After: 1, plus at most 0.1 s jitter
    assert server.state.taken == []


def test_500_with_html_body_is_unknown_and_not_retried(make_sandbox):
    server = make_sandbox(faults={"500": 1.0})
    outcome = client_for(server).send(BODY)
    assert outcome.decision is Decision.UNKNOWN and outcome.attempts == 1
    assert "HTTP 500" in outcome.error and "not a JSON answer" in outcome.error
    assert len(server.state.taken) == 1  # the sandbox took it: resending would double-send


def test_read_timeout_is_unknown(make_sandbox):
    server = make_sandbox(faults={"timeout": 1.0}, timeout_hold=5)
    outcome = client_for(server, read_timeout=0.3).send(BODY)
    assert outcome.decision is Decision.UNKNOWN and outcome.attempts == 1
    assert "timed out" in outcome.error


def test_reset_is_unknown(make_sandbox):
    server = make_sandbox(faults={"reset": 1.0})
    outcome = client_for(server).send(BODY)
    assert outcome.decision is Decision.UNKNOWN and outcome.attempts == 1


def test_token_never_in_repr_or_errors(sandbox):
    client = Client(sandbox.url, sandbox.account_sid, "s3cr3t-token", "PS1")
    outcome = client.send(BODY)
    assert "s3cr3t-token" not in repr(client) + outcome.error + repr(outcome)
