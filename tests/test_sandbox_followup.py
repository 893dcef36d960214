"""The sandbox after the send: the list call, scheduled messages, Failed, replies, lost answers.

Time is a ``ManualClock`` the tests move; everything else is real: the sandbox on a
loopback port, ``requests`` as the client, and a small HTTP listener for the webhooks.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from batchsms.sandbox import ManualClock
from batchsms.sandbox.server import REPLY_TEXTS

from .helpers import wait_until

T0 = 2_000_000_000  # 2033: far from the real clock, so a rule decided on real time would show
TO = "+61412345678"


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def box(make_sandbox, clock):
    """Start a sandbox on the test's clock."""
    return lambda **kwargs: make_sandbox(clock=clock, **kwargs)


@pytest.fixture
def hooks():
    """A loopback listener that records every webhook call: (method, path, fields)."""
    calls: list[tuple[str, str, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append(("POST", urlsplit(self.path).path, body))
            self.send_response(204)
            self.end_headers()

        def do_GET(self):
            parts = urlsplit(self.path)
            calls.append(("GET", parts.path, dict(parse_qsl(parts.query))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    server.calls = calls
    yield server
    server.shutdown()
    server.server_close()


def auth(server):
    return (server.account_sid, server.auth_token)


def send(server, body, prop="PS1"):
    response = requests.post(f"{server.url}/v2/Properties/{prop}/Messages", json=body, auth=auth(server), timeout=5)
    return response


def sid_of(server, body, prop="PS1"):
    response = send(server, body, prop)
    assert response.status_code == 200, response.text
    return response.json()["Message"]["MessageSid"]


def listing(server, prop="PS1", **params):
    response = requests.get(f"{server.url}/v2/Properties/{prop}/Messages", params=params, auth=auth(server),
                            timeout=5)
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["Messages"]
    return response.json()["Messages"]


def get(server, sid):
    return requests.get(f"{server.url}/v2/Messages/{sid}", auth=auth(server), timeout=5).json()["Message"]


def column(messages, key):
    return [m[key] for m in messages]


# --------------------------------------------------------------------------- the list call


def test_the_list_call_filters_by_property_and_date_newest_first(box, clock):
    server = box()
    sids = []
    for i in range(3):
        sids.append(sid_of(server, {"To": f"+6141234567{i}", "Text": f"m{i}", "From": "Shop"}))
        clock.advance(10)  # created at T0, T0+10, T0+20
    sid_of(server, {"To": TO, "Text": "elsewhere", "From": "Shop"}, prop="PS2")

    everything = listing(server)
    assert column(everything, "MessageSid") == sids[::-1]
    assert column(everything, "Created") == [T0 + 20, T0 + 10, T0]
    assert column(everything, "Direction") == ["Transmit"] * 3
    assert column(everything, "Status") == ["Delivered"] * 3  # advanced to now (T0+30) before listing
    assert everything[0] == get(server, sids[2])  # the same resource as the GET
    assert set(everything[0]) == {"MessageSid", "AccountSid", "PropertySid", "From", "To", "Text",
                                  "DeliveryReceipt", "NumSegments", "Status", "Direction", "Scheduled",
                                  "Created", "Submitted", "Delivered", "Received", "ErrorCode", "ExternalId"}

    assert column(listing(server, Date_From=T0 + 10, Date_To=T0 + 20), "Text") == ["m2", "m1"]  # inclusive
    assert column(listing(server, Date_From=T0 + 11), "Text") == ["m2"]
    assert column(listing(server, Date_To=T0 + 9), "Text") == ["m0"]
    assert column(listing(server, Results_Count=2), "Text") == ["m2", "m1"]
    assert listing(server, Results_Count=0) == []
    assert column(listing(server, date_from=T0 + 20, RESULTS_COUNT=5), "Text") == ["m2"]  # names in any case
    assert column(listing(server, prop="PS2"), "Text") == ["elsewhere"]
    assert listing(server, prop="PSNOBODY") == []


def test_the_list_call_returns_50_by_default_and_1000_at_most(box):
    server = box()
    batch = {"Messages": [{"To": TO, "Text": f"n{i}", "From": "Shop"} for i in range(1001)]}
    answer = requests.post(f"{server.url}/v2/Properties/PS1/BatchMessages", json=batch, auth=auth(server),
                           timeout=10)
    assert answer.status_code == 200
    assert len(listing(server)) == 50
    top = listing(server, Results_Count=5000)
    assert len(top) == 1000 and top[0]["Text"] == "n1000" and top[-1]["Text"] == "n1"  # same second: last first


@pytest.mark.parametrize(("params", "code"), [
    ({"Results_Count": "ten"}, "InvalidResults_Count"),
    ({"Results_Count": "-1"}, "InvalidResults_Count"),
    ({"Results_Count": "2.5"}, "InvalidResults_Count"),
    ({"Results_Count": ""}, "InvalidResults_Count"),
    ({"Results_Count": "9" * 5000}, "InvalidResults_Count"),
    ({"Date_From": "yesterday"}, "InvalidDate_From"),
    ({"Date_To": "1.5"}, "InvalidDate_To"),
    ([("Results_Count", "1"), ("Results_Count", "2")], "InvalidResults_Count"),
])
def test_a_bad_list_parameter_is_the_apis_400(box, params, code):
    server = box()
    response = requests.get(f"{server.url}/v2/Properties/PS1/Messages", params=params, auth=auth(server), timeout=5)
    assert response.status_code == 400
    assert list(response.json()) == ["ResponseStatus"]
    assert response.json()["ResponseStatus"]["ErrorCode"] == code


def test_the_list_call_needs_the_credentials(box):
    server = box()
    response = requests.get(f"{server.url}/v2/Properties/PS1/Messages", auth=(server.account_sid, "wrong"),
                            timeout=5)
    assert response.status_code == 401


# --------------------------------------------------------------------------- scheduled messages, the clock


def test_a_scheduled_message_waits_for_its_time_then_is_submitted_and_delivered(box, clock, hooks):
    server = box()
    sid = sid_of(server, {"To": TO, "Text": "later", "From": "Shop", "Schedule": T0 + 3600,
                          "DeliveryReceiptWebhookUri": f"{hooks.base}/dr"})
    clock.advance(3599)
    assert [get(server, sid)["Status"], listing(server)[0]["Status"]] == ["Processing", "Processing"]
    clock.advance(1)
    message = get(server, sid)
    assert (message["Status"], message["Scheduled"], message["Submitted"], message["Delivered"]) == \
        ("Submitted", T0 + 3600, T0 + 3600, None)
    assert listing(server)[0]["Status"] == "Submitted"
    time.sleep(0.25)
    assert hooks.calls == []  # no receipt before its time, however long the ticker runs

    clock.advance(1)
    moved = time.monotonic()
    wait_until(lambda: hooks.calls, "the receipt webhook is called", timeout=2)
    noticed = time.monotonic() - moved
    assert noticed < 0.3  # the ticker reads the clock every 0.1 s
    method, path, fields = hooks.calls[0]
    assert (method, path, fields["MessageSid"], fields["Status"], fields["Delivered"]) == \
        ("POST", "/dr", sid, "Delivered", T0 + 3601)
    assert [get(server, sid)["Status"], listing(server)[0]["Status"]] == ["Delivered", "Delivered"]
    wait_until(lambda: server.state.webhook_calls, "the call is recorded", timeout=2)
    assert [(c["kind"], c["MessageSid"], c["status"]) for c in server.state.webhook_calls] == [("receipt", sid, 204)]


def test_the_schedule_window_is_read_on_the_sandbox_clock(box):
    server = box()
    too_far = send(server, {"To": TO, "Text": "x", "From": "Shop", "Schedule": T0 + 15 * 86400})
    assert too_far.status_code == 400
    assert too_far.json() == {"ResponseStatus": {"ErrorCode": "InvalidSchedule",
                                                 "Message": "Schedule can be at most 14 days in the future"}}
    too_old = send(server, {"To": TO, "Text": "x", "From": "Shop", "Schedule": T0 - 3601})
    assert too_old.json()["ResponseStatus"]["ErrorCode"] == "InvalidSchedule"
    assert server.state.messages == {}
    assert send(server, {"To": TO, "Text": "x", "From": "Shop", "Schedule": T0 + 14 * 86400}).status_code == 200
    assert send(server, {"To": TO, "Text": "x", "From": "Shop", "Schedule": T0 - 3600}).status_code == 200


def test_a_manual_clock_only_moves_forward():
    clock = ManualClock(100)
    assert (clock(), clock.advance(2.5), clock()) == (100.0, 102.5, 102.5)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


# --------------------------------------------------------------------------- undelivered


def test_undelivered_one_fails_every_message_and_its_receipt_says_so(box, clock, hooks):
    server = box(undelivered=1.0)
    sid = sid_of(server, {"To": TO, "Text": "x", "From": "Shop", "DeliveryReceiptWebhookUri": f"{hooks.base}/dr"})
    quiet = sid_of(server, {"To": TO, "Text": "y", "From": "Shop", "DeliveryReceipt": False})
    assert get(server, sid)["Status"] == "Submitted"
    clock.advance(1)
    failed = get(server, sid)
    assert (failed["Status"], failed["ErrorCode"], failed["Submitted"], failed["Delivered"]) == \
        ("Failed", "Undeliverable", T0, None)
    assert {m["MessageSid"]: m["Status"] for m in listing(server)} == {sid: "Failed", quiet: "Submitted"}
    wait_until(lambda: hooks.calls, "the receipt webhook is called", timeout=2)
    assert [(p, f["MessageSid"], f["Status"], f["ErrorCode"]) for _, p, f in hooks.calls] == \
        [("/dr", sid, "Failed", "Undeliverable")]


def test_undelivered_zero_fails_nothing(box, clock):
    server = box(undelivered=0.0)
    sids = [sid_of(server, {"To": TO, "Text": f"m{i}", "From": "Shop"}) for i in range(5)]
    clock.advance(1)
    assert {(m["Status"], m["ErrorCode"]) for m in listing(server)} == {("Delivered", None)}
    assert {get(server, s)["Status"] for s in sids} == {"Delivered"}


def test_a_share_undelivered_is_drawn_once_from_the_seed(box, clock):
    def failed_positions(seed):
        server = box(undelivered=0.5, seed=seed)
        sids = [sid_of(server, {"To": TO, "Text": f"m{i}", "From": "Shop"}) for i in range(30)]
        clock.advance(1)
        by_get = [i for i, s in enumerate(sids) if get(server, s)["Status"] == "Failed"]
        by_list = sorted(sids.index(m["MessageSid"]) for m in listing(server) if m["Status"] == "Failed")
        assert by_get == by_list
        return by_get

    first = failed_positions(7)
    assert 0 < len(first) < 30
    assert failed_positions(7) == first


# --------------------------------------------------------------------------- replies


def test_replies_one_answers_every_delivered_message_and_calls_the_reply_webhook(box, clock, hooks):
    server = box(replies=1.0)
    sent = send(server, {"To": TO, "Text": "Your table is booked", "WebhookUri": f"{hooks.base}/in",
                         "DeliveryReceiptWebhookUri": f"{hooks.base}/dr"}).json()["Message"]
    named = sid_of(server, {"To": TO, "Text": "from a name", "From": "Shop"})  # cannot be replied to
    clock.advance(1)
    assert len(listing(server)) == 2  # delivered, no reply yet
    clock.advance(10)  # replies come 2 to 10 s after delivery
    newest = listing(server)
    assert len(newest) == 3
    reply = newest[0]
    assert {k: reply[k] for k in ("Direction", "Status", "From", "To", "PropertySid", "DeliveryReceipt")} == \
        {"Direction": "Receive", "Status": "Received", "From": TO, "To": sent["From"], "PropertySid": "PS1",
         "DeliveryReceipt": False}
    assert reply["Text"] in [text for text, _ in REPLY_TEXTS]
    assert T0 + 3 <= reply["Created"] == reply["Received"] <= T0 + 11
    assert reply["MessageSid"] not in (sent["MessageSid"], named)
    assert get(server, reply["MessageSid"]) == reply

    wait_until(lambda: len(hooks.calls) == 2, "the receipt and reply webhooks are called", timeout=2)
    assert sorted(hooks.calls, key=lambda c: c[1]) == [
        ("POST", "/dr", {k: v for k, v in get(server, sent["MessageSid"]).items() if v is not None}),
        ("POST", "/in", {k: v for k, v in reply.items() if v is not None}),
    ]
    wait_until(lambda: len(server.state.webhook_calls) == 2, "both calls are recorded", timeout=2)
    assert sorted((c["kind"], c["MessageSid"], c["status"]) for c in server.state.webhook_calls) == \
        [("receipt", sent["MessageSid"], 204), ("reply", reply["MessageSid"], 204)]


def test_replies_zero_answers_nothing(box, clock):
    server = box(replies=0.0)
    sid_of(server, {"To": TO, "Text": "x"})
    clock.advance(60)
    assert column(listing(server), "Direction") == ["Transmit"]


def test_add_reply_records_an_inbound_message_and_calls_the_webhook(box, clock, hooks):
    server = box()
    sent = send(server, {"To": TO, "Text": "Reply STOP to opt out", "WebhookUri": f"{hooks.base}/in",
                         "WebhookMethod": "GET"}).json()["Message"]
    clock.advance(30)
    reply = server.add_reply(TO, "STOP")
    assert {k: reply[k] for k in ("From", "To", "Text", "PropertySid", "Status", "Direction", "Created",
                                  "Received")} == \
        {"From": TO, "To": sent["From"], "Text": "STOP", "PropertySid": "PS1", "Status": "Received",
         "Direction": "Receive", "Created": T0 + 30, "Received": T0 + 30}
    assert listing(server)[0] == reply
    wait_until(lambda: hooks.calls, "the reply webhook is called", timeout=2)
    method, path, fields = hooks.calls[0]
    assert (method, path, fields["MessageSid"], fields["Text"], fields["From"]) == \
        ("GET", "/in", reply["MessageSid"], "STOP", TO)

    earlier = server.add_reply("+61499999999", "who is this", to="+61400000001", property_sid="PS9", at=T0 - 5)
    assert (earlier["Created"], earlier["To"]) == (T0 - 5, "+61400000001")
    assert column(listing(server, prop="PS9"), "MessageSid") == [earlier["MessageSid"]]
    with pytest.raises(ValueError, match=r"no message was sent to \+61499999998"):
        server.add_reply("+61499999998", "hello")
    time.sleep(0.15)
    assert len(hooks.calls) == 1  # no webhook for a message nobody asked for one on


# --------------------------------------------------------------------------- lost answers


@pytest.mark.parametrize("fault", ["lost", "500", "timeout"])
def test_a_fault_that_takes_the_message_leaves_it_in_the_list_call(box, fault):
    server = box(faults={fault: 1.0}, timeout_hold=0.1)
    try:
        answer = send(server, {"To": TO, "Text": "x", "From": "Shop", "ExternalId": "row-7"})
    except requests.ConnectionError:
        answer = None
    if fault == "500":
        assert answer.status_code == 500 and "MessageSid" not in answer.text
    else:
        assert answer is None  # no answer at all
    (kept,) = listing(server)
    assert (kept["ExternalId"], kept["Direction"], kept["Text"]) == ("row-7", "Transmit", "x")
    assert list(server.state.messages) == [kept["MessageSid"]]


@pytest.mark.parametrize("fault", ["429", "503", "reset"])
def test_a_fault_that_refuses_keeps_nothing(box, fault):
    server = box(faults={fault: 1.0})
    if fault == "reset":
        with pytest.raises(requests.ConnectionError):
            send(server, {"To": TO, "Text": "x", "From": "Shop"})
    else:
        assert send(server, {"To": TO, "Text": "x", "From": "Shop"}).status_code == int(fault)
    assert listing(server) == [] and server.state.messages == {} and server.state.taken == []


# --------------------------------------------------------------------------- the summary


def test_the_summary_counts_delivered_failed_and_replies(box, clock):
    server = box(undelivered=1.0, replies=1.0)
    sid_of(server, {"To": TO, "Text": "fails"})
    sid_of(server, {"To": TO, "Text": "no receipt", "DeliveryReceipt": False})  # Submitted, then a reply
    sid_of(server, {"To": "+61412345670", "Text": "kept for later", "Schedule": T0 + 600})
    clock.advance(11)
    assert len(listing(server)) == 4
    assert server.summary() == "sandbox: requests 4, taken 3, failed 1, replies 1"
