"""The whole after-send loop against the sandbox with faults on (issue #12's "done when"): send, then
status --settle leaves no row unknown that the sandbox's ledger can settle; a STOP reply lands in the
opt-out file and the next check skips that number; the summary page is written from the results."""

import time

from click.testing import CliRunner

from batchsms.api import Target
from batchsms.cli import main
from batchsms.sandbox.server import ManualClock
from batchsms.status import StatusOptions, status_of

from .helpers import contacts, env_for, read_results, send, write_csv

TEXT = "Hi {{ Name }}, see you soon"


def test_send_settle_replies_and_summary_close_the_loop(make_sandbox, tmp_path):
    clock = ManualClock(time.time())
    server = make_sandbox(clock=clock, faults={"lost": 0.25, "reset": 0.1, "503": 0.1}, seed=5)
    sheet = write_csv(tmp_path / "c.csv", contacts(40))
    result = send(server, tmp_path, sheet, "--text", TEXT, "--quiet", "--max-attempts", "3")
    assert result.exit_code in (0, 1), result.output
    results = tmp_path / "c.results.csv"
    unknown = [r for r in read_results(results) if r["Status"] == "unknown"]
    assert unknown, "the faults should leave some rows unknown"

    clock.advance(3600)  # the send window has closed, and every message taken is delivered
    target = Target(server.url, server.account_sid, server.auth_token, "PS1")
    outcome = status_of(sheet, target, StatusOptions(settle=True, clock=lambda: time.time() + 3600))
    assert outcome is not None
    with server.state.lock:
        ledger = {m["ExternalId"]: sid for sid, m in server.state.messages.items() if m["Direction"] == "Transmit"}
    rows = read_results(results)
    assert [r for r in rows if r["Status"] == "unknown" and r["ExternalId"] in ledger] == []  # all settled
    for r in rows:
        if r["ExternalId"] in ledger:
            assert (r["Status"], r["MessageSid"]) == ("sent", ledger[r["ExternalId"]])
            assert r["Delivery"] == "Delivered"
        else:  # never taken: settled as not sent, resendable by --retry-unknown only
            assert r["Status"] in ("unknown", "failed") and r["MessageSid"] == ""

    first = rows[0]["Mobile"]
    server.add_reply("+61" + first[1:], "Stop.", at=time.time() - 60)
    env = env_for(server, tmp_path)
    replies = CliRunner().invoke(main, ["replies", "--since", "2d"], env=env)
    assert replies.exit_code == 0, replies.output
    assert "1 opt-out (1 new)" in replies.output
    check = CliRunner().invoke(main, ["check", str(sheet), "--text", TEXT, "--no-preview", "--json"], env=env)
    report = (tmp_path / "c.report.csv").read_text(encoding="utf-8-sig")
    assert check.exit_code == 0, check.output
    assert f"2,Mobile,+61{first[1:]},warning,suppressed," in report

    page = tmp_path / "campaign.html"
    summary = CliRunner().invoke(main, ["summary", str(results), "--html", str(page)], env=env)
    assert summary.exit_code == 0, summary.output
    delivered = sum(1 for r in rows if r["Delivery"] == "Delivered")
    assert f"delivered {delivered:,}," in summary.output
    assert "<svg" in page.read_text(encoding="utf-8")


def test_webhook_auto_names_this_machines_receiver(tmp_path, sandbox):
    from batchsms import Options, check_sheet
    from batchsms.api import SendOptions, send_sheet
    from batchsms.errors import ConfigError
    from batchsms.receive import Setup, write_setup

    sheet = write_csv(tmp_path / "c.csv", contacts(1))
    try:
        check_sheet(sheet, Options(text=TEXT, defaults={"WebhookUri": "auto"}))
        raise AssertionError("no receiver ever ran: --webhook auto must say so")
    except ConfigError as exc:
        assert "batchsms receive" in str(exc)
    secret = "s" * 24
    write_setup(Setup(secret, "http://127.0.0.1:8090", "https://hooks.example.com"))
    url = f"https://hooks.example.com/hooks/{secret}"
    [row] = check_sheet(sheet, Options(text=TEXT, defaults={"WebhookUri": "auto"})).results
    assert (row.body["DeliveryReceiptWebhookUri"], row.body["WebhookUri"]) == (url, url)
    [row] = check_sheet(sheet, Options(text=TEXT, defaults={"WebhookUri": "auto", "From": "CityDental"})).results
    assert str(row.status) == "valid" and row.body["DeliveryReceiptWebhookUri"] == url
    assert "WebhookUri" not in row.body  # a reply webhook works for leased numbers only
    target = Target(sandbox.url, sandbox.account_sid, sandbox.auth_token, "PS1")
    outcome = send_sheet(sheet, Options(text=TEXT, defaults={"DeliveryReceiptWebhookUri": "auto"}), target,
                         SendOptions(progress=False))
    assert outcome.ok
    with sandbox.state.lock:
        assert sandbox.state.taken[0]["DeliveryReceiptWebhookUri"] == url
