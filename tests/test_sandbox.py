"""The sandbox behaves like the API: rules, error shape, leases, batches, lifecycle, webhooks, rate limit."""

import contextlib
import gc
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from click.testing import CliRunner

from batchsms.cli import main
from batchsms.sandbox import parse_faults


def post(server, body, path="Messages", auth=None):
    return requests.post(f"{server.url}/v2/Properties/PS1/{path}", json=body,
                         auth=auth or (server.account_sid, server.auth_token), timeout=5)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"To": "0412345678", "Text": "x"}, "InvalidTo"),
        ({"To": "+61412345678", "Text": ""}, "InvalidText"),
        ({"To": "+61412345678", "Text": "x", "From": "Way Too Long!"}, "InvalidFrom"),
        ({"To": "+61412345678", "Text": "x", "Schedule": "soon"}, "InvalidSchedule"),
        ({"To": "+61412345678", "Text": "x", "Schedule": int(time.time()) + 15 * 86400}, "InvalidSchedule"),
        ({"To": "+61412345678", "Text": "x", "Schedule": int(time.time()) - 7200}, "InvalidSchedule"),
        ({"To": "+61412345678", "Text": "x", "DeliveryReceipt": "yes"}, "InvalidDeliveryReceipt"),
        ({"To": "+61412345678", "Text": "x", "WebhookMethod": "PUT"}, "InvalidWebhookMethod"),
        ({"To": "+61412345678", "Text": "x", "WebhookUri": "ftp://x"}, "InvalidWebhookUri"),
        ({"To": "+61412345678", "Text": "x", "ForwardToEmail": "nope"}, "InvalidForwardToEmail"),
        ({"To": "+61412345678", "Text": "x", "From": "Shop", "ForwardToSms": "+61413000111"},
         "LeaseParameterNotAllowed"),
        ({"To": "+61412345678", "Text": "x", "Colour": "red"}, "InvalidParameter"),
        ([1, 2], "InvalidRequest"),
    ],
)
def test_rules_answer_with_response_status(sandbox, body, code):
    response = post(sandbox, body)
    assert response.status_code == 400
    assert response.json()["ResponseStatus"]["ErrorCode"] == code
    assert sandbox.state.taken == []


def test_auth_required(sandbox):
    response = post(sandbox, {"To": "+61412345678", "Text": "x"}, auth=("ACSANDBOX", "wrong"))
    assert response.status_code == 401
    assert response.json()["ResponseStatus"]["ErrorCode"] == "Unauthorized"


def test_leases_are_distinct_and_limited_to_five(sandbox):
    senders = [post(sandbox, {"To": "+61412345678", "Text": f"m{i}"}).json()["Message"]["From"] for i in range(5)]
    assert len(set(senders)) == 5 and all(s.startswith("+614") for s in senders)
    sixth = post(sandbox, {"To": "+61412345678", "Text": "m6"})
    assert sixth.status_code == 400 and sixth.json()["ResponseStatus"]["ErrorCode"] == "LeaseLimitExceeded"
    assert post(sandbox, {"To": "+61412345678", "Text": "m7", "From": "Shop"}).status_code == 200


def test_batch_messages_answer_per_item(sandbox):
    response = post(sandbox, {"Messages": [{"To": "+61412345678", "Text": "a"}, {"To": "bad", "Text": "b"}]},
                    path="BatchMessages")
    items = response.json()
    assert response.status_code == 200 and isinstance(items, list)
    assert items[0]["MessageSid"] and items[0]["ErrorCode"] is None
    assert items[1]["MessageSid"] is None and items[1]["ErrorCode"] == "InvalidTo"


def test_kept_messages_stay_out_of_the_cyclic_collectors_walk(make_sandbox):
    """A benchmark leaves hundreds of thousands of messages in the sandbox: a kept message
    holding its request body (a dict) made each one a container the collector walked, and
    its pauses held up every answer (the 50 ms batch figure lost ~3 points)."""
    server = make_sandbox(undelivered=0.5, replies=1.0, seed=7)
    post(server, {"Messages": [{"To": f"+6141234567{i}", "Text": "a", "DeliveryReceipt": True,
                                "WebhookUri": "http://127.0.0.1:9/r"} for i in range(6)]}, path="BatchMessages")
    post(server, {"To": "+61412345670", "Text": "b"})
    with server.state.lock:
        kept = list(server.state.messages.values())
        assert len(kept) == 7 and any("_reply" in m for m in kept)
        assert not any(gc.is_tracked(m) for m in kept)
        assert not any(gc.is_tracked(body) for body in server.state.taken)


def test_scheduled_message_lifecycle(sandbox):
    sid = post(sandbox, {"To": "+61412345678", "Text": "later", "Schedule": int(time.time()) + 3600}
               ).json()["Message"]["MessageSid"]
    got = requests.get(f"{sandbox.url}/v2/Messages/{sid}", auth=(sandbox.account_sid, sandbox.auth_token)).json()
    assert got["Message"]["Status"] == "Processing" and got["Message"]["Direction"] == "Transmit"
    now = post(sandbox, {"To": "+61412345678", "Text": "now"}).json()["Message"]["MessageSid"]
    time.sleep(1.1)
    got = requests.get(f"{sandbox.url}/v2/Messages/{now}", auth=(sandbox.account_sid, sandbox.auth_token)).json()
    assert got["Message"]["Status"] == "Delivered"
    missing = requests.get(f"{sandbox.url}/v2/Messages/MNOPE", auth=(sandbox.account_sid, sandbox.auth_token))
    assert missing.status_code == 404


def test_delivery_receipt_webhook_is_called(sandbox):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{hook.server_address[1]}/dr"
        sid = post(sandbox, {"To": "+61412345678", "Text": "x", "DeliveryReceiptWebhookUri": url}
                   ).json()["Message"]["MessageSid"]
        deadline = time.time() + 5
        while not received and time.time() < deadline:
            time.sleep(0.05)
    finally:
        hook.shutdown()
    assert received and received[0]["MessageSid"] == sid and received[0]["Status"] == "Delivered"


def test_rate_limit_answers_429_with_retry_after(make_sandbox):
    server = make_sandbox(rate=5)
    statuses = [post(server, {"To": "+61412345678", "Text": "x", "From": "Shop"}) for _ in range(12)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and all(r.headers["Retry-After"] == "1" for r in limited)
    assert len(server.state.taken) == 12 - len(limited)


def test_parse_faults():
    assert parse_faults("429=0.05, reset=0.01") == {"429": 0.05, "reset": 0.01}
    for bad in ("404=0.1", "429", "429=x", "429=2", "429=0.6,503=0.6"):
        with pytest.raises(ValueError):
            parse_faults(bad)


def test_sandbox_command_rejects_bad_faults():
    result = CliRunner().invoke(main, ["sandbox", "--faults", "418=0.1"])
    assert result.exit_code == 2 and "KIND=RATE" in result.output


def test_sandbox_command_serves_and_reports_on_exit(tmp_path):
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "batchsms", "sandbox", "--port", "0", "--auth-token", "t"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline()).group(0)
        answer = requests.post(f"{url}/v2/Properties/PS1/Messages", json={"To": "+61412345678", "Text": "x"},
                               auth=("ACSANDBOX", "t"), timeout=5)
        assert answer.status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "sandbox: requests 1, taken 1" in out


def test_stopping_with_a_request_held_logs_no_traceback(make_sandbox, caplog):
    """``batchsms sandbox --latency`` or a 'timeout' fault holds requests; stopping then is no error."""
    server = make_sandbox(latency_ms=30_000)

    def held_request():
        with contextlib.suppress(requests.RequestException):  # the stop drops the connection
            post(server, {"To": "+61412345678", "Text": "x"})

    client = threading.Thread(target=held_request, daemon=True)
    client.start()
    deadline = time.time() + 5
    while server.state.stats["requests"] == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert server.state.stats["requests"] == 1
    server.stop()
    client.join(10)
    assert [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


def test_parse_faults_knows_lost():
    assert parse_faults("lost=0.25,timeout=0.1") == {"lost": 0.25, "timeout": 0.1}


@pytest.mark.parametrize("option", ["--undelivered", "--replies"])
def test_sandbox_command_rejects_a_rate_beyond_one(option):
    result = CliRunner().invoke(main, ["sandbox", option, "1.5"])
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output


def test_sandbox_command_fails_the_undelivered_share(tmp_path):
    """``--undelivered 1`` reaches the server: the message ends Failed (on the real clock, ~1 s) and is counted."""
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "batchsms", "sandbox", "--port", "0", "--auth-token", "t",
                             "--undelivered", "1", "--replies", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline()).group(0)
        sid = requests.post(f"{url}/v2/Properties/PS1/Messages", json={"To": "+61412345678", "Text": "x"},
                            auth=("ACSANDBOX", "t"), timeout=5).json()["Message"]["MessageSid"]
        deadline = time.monotonic() + 5
        while True:
            message = requests.get(f"{url}/v2/Messages/{sid}", auth=("ACSANDBOX", "t"), timeout=5).json()["Message"]
            if message["Status"] != "Submitted" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (message["Status"], message["ErrorCode"]) == ("Failed", "Undeliverable")
    assert re.search(r"sandbox: requests \d+, taken 1, failed 1$", out.strip())
