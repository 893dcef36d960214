"""The fate of every status and failure (``decide``), and the client against a real sandbox.

The retry loop itself is tested in test_client_retry.py, hostile servers in test_client_hostile.py.
"""

import ssl

import pytest
import requests
import urllib3

from batchsms.client import Client, Decision, Outcome, decide

UNKNOWN, ACCEPTED, RETRY, FAILED, AUTH = (Decision.UNKNOWN, Decision.ACCEPTED, Decision.RETRY, Decision.FAILED,
                                          Decision.AUTH)

# Every status from 100 to 599, by class, with its exact fate.
DECISIONS_BY_CLASS = {
    "1xx": {status: UNKNOWN for status in range(100, 200)},  # never a final answer: cannot say "not taken"
    "2xx": {status: ACCEPTED for status in range(200, 300)},  # (and only with a MessageSid: test_client_hostile)
    "3xx": {status: UNKNOWN for status in range(300, 400)},  # a redirect may have followed a taken POST
    "4xx": {**{status: FAILED for status in range(400, 500)}, 401: AUTH, 403: AUTH, 429: RETRY},
    "5xx": {**{status: UNKNOWN for status in range(500, 600)}, 503: RETRY},  # 500, 502, 504: maybe taken
}


@pytest.mark.parametrize("status_class", DECISIONS_BY_CLASS)
def test_decide_every_status(status_class):
    expected = DECISIONS_BY_CLASS[status_class]
    assert {status: decide(status) for status in expected} == expected


def test_no_status_and_no_exception_is_unknown():
    assert decide(None) is UNKNOWN


def _new_connection_error():
    inner = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", inner))


# (what ended the request before a status line came, its fate): named by what it proves.
EXCEPTION_TABLE = [
    pytest.param(requests.exceptions.ConnectTimeout("connect timed out"), RETRY, id="connect-timeout"),
    pytest.param(_new_connection_error(), RETRY, id="new-connection-error"),
    pytest.param(requests.exceptions.ConnectionError(ConnectionRefusedError(111, "refused")), RETRY,
                 id="connection-refused"),
    pytest.param(requests.exceptions.ReadTimeout("read timed out"), UNKNOWN, id="read-timeout"),
    pytest.param(requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "reset"))), UNKNOWN, id="reset-after-sending"),
    pytest.param(requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", Exception("RemoteDisconnected"))), UNKNOWN, id="remote-disconnected"),
    pytest.param(requests.exceptions.ChunkedEncodingError("broken"), UNKNOWN, id="broken-chunked-body"),
    pytest.param(requests.exceptions.SSLError("bad handshake"), UNKNOWN, id="tls-error-of-unknown-cause"),
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
    pytest.param(_verify_failed(), True, Decision.FATAL, id="verify-failed-connecting"),
    pytest.param(_verify_failed(), False, Decision.FATAL, id="verify-failed-later"),  # only a handshake can fail it
    pytest.param(_tls_error(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")), True,
                 Decision.FATAL, id="wrong-tls-version-connecting"),
    pytest.param(_tls_error(ssl.SSLError(1, "[SSL: DECRYPTION_FAILED] decryption failed")), False, UNKNOWN,
                 id="tls-error-after-sending"),
    pytest.param(_tls_error(ssl.SSLEOFError(8, "EOF occurred in violation of protocol")), True, RETRY,
                 id="tls-eof-connecting"),
    pytest.param(requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "reset"))), True, RETRY, id="reset-connecting"),
    pytest.param(requests.exceptions.ReadTimeout("handshake timed out"), True, RETRY, id="handshake-timeout"),
    pytest.param(requests.exceptions.ReadTimeout("read timed out"), False, UNKNOWN, id="read-timeout"),
]


@pytest.mark.parametrize(("exc", "connecting", "decision"), CONNECTING_TABLE)
def test_decide_while_connecting(exc, connecting, decision):
    assert decide(None, exc, connecting=connecting) is decision


def test_only_refused_credentials_and_a_failed_tls_handshake_stop_the_run():
    assert {decision for decision in Decision if Outcome(decision).stops_run} == {Decision.AUTH, Decision.FATAL}


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


def test_the_sandbox_429_fault_is_retried_after_its_retry_after(make_sandbox):
    server = make_sandbox(faults={"429": 1.0})
    sleeps = []
    outcome = client_for(server, max_attempts=3, sleep=sleeps.append, jitter=lambda: 0.0).send(BODY)
    assert (outcome.decision, outcome.attempts, sleeps) == (Decision.FAILED, 3, [1.0, 1.0])
    assert outcome.error.endswith("(gave up after 3 attempts; never taken)")
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
