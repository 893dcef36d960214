"""What a person reads, compared whole (as sqlite-utils' CLI tests do): a wording change is a visible diff.

Only what changes from run to run is replaced (:func:`helpers.normalise`): the test's folder
by ``<tmp>``, the sandbox's port by ``<port>``, the measured speed by ``<speed>``. No sheet
here has a Schedule, so nothing depends on the clock.
"""

import json

from click.testing import CliRunner

from batchsms import cli
from batchsms.cli import main

from .helpers import contacts, env_for, normalise, read_results, send, write_csv

#: A small sheet with a few kinds of problems: three errors, a warning, one UCS-2 text.
PROBLEM_ROWS = [
    ["Mobile", "Name"],
    ["0412 345 677", "Ann"],  # row 2: fine
    ["12345", "Bob"],  # row 3: invalid-phone
    ["", "Cy"],  # row 4: missing-recipient
    ["(02) 9876 5432", "Dee"],  # row 5: not-mobile (a landline): an error unless --allow-landlines
    ["0412345677", "Zoë"],  # row 6: duplicate-recipient of row 2, still sent; ë is not GSM-7
]

SUMMARY = """\
  rows read                        5
  rows valid                       2
  rows with errors                 3
  rows with warnings               1
  rows skipped                     0
  messages in GSM-7                1
  messages in UCS-2                1
  total segments                   2
  leased rows (blank From)         2
  scheduled rows                   0
  recipients                2 AU mobile
  sends at                  now
  estimated cost            not known: set --price, or [prices] in the config file
  most frequent problems:
           1  error    invalid-phone
           1  error    missing-recipient
           1  error    not-mobile
           1  warning  duplicate-recipient
  sample messages:
    row 2 · AU mobile · +61 412 345 677 (first ready row, 1 segment)
      Hi Ann
    row 6 · AU mobile · +61 412 345 677 (with a warning, 1 segment)
      Hi Zoë
"""

#: What --json adds about the messages themselves (recipients, send times, cost, samples).
PREVIEW_JSON = {
    "recipients": [{"country": "AU", "line": "mobile", "rows": 2}],
    "sends_at": "now", "time_zone": "UTC", "cost": None, "currency": None,
    "samples": [
        {"why": "first ready row", "row": 2, "to": "AU mobile · +61 412 345 677", "text": "Hi Ann", "segments": 1},
        {"why": "with a warning", "row": 6, "to": "AU mobile · +61 412 345 677", "text": "Hi Zoë", "segments": 1},
    ],
    "dominant_problem": None,
}

SUMMARY_JSON = {
    "rows_read": 5, "rows_valid": 2, "rows_with_errors": 3, "rows_with_warnings": 1, "rows_skipped": 0,
    "messages_gsm7": 1, "messages_ucs2": 1, "segments": 2, "leased_rows": 2, "scheduled_rows": 0,
    "top_problems": [
        {"severity": "error", "code": "invalid-phone", "count": 1},
        {"severity": "error", "code": "missing-recipient", "count": 1},
        {"severity": "error", "code": "not-mobile", "count": 1},
        {"severity": "warning", "code": "duplicate-recipient", "count": 1},
    ],
}


def check(tmp_path, *args):
    sheet = write_csv(tmp_path / "c.csv", PROBLEM_ROWS)
    return CliRunner().invoke(main, ["check", str(sheet), "--text", "Hi {{ Name }}", *map(str, args)],
                              catch_exceptions=False)


def test_check_summary(tmp_path):
    result = check(tmp_path)
    assert (result.exit_code, result.stderr) == (1, "")
    assert normalise(result.stdout, tmp_path) == (
        "Checked <tmp>/c.csv (5 rows); report: <tmp>/c.report.csv; preview: <tmp>/c.preview.csv\n" + SUMMARY)


def test_check_report_file(tmp_path):
    assert check(tmp_path).exit_code == 1
    report = (tmp_path / "c.report.csv").read_bytes().decode("utf-8-sig")
    assert report == (
        "Row,Column,Value,Severity,Code,Message\r\n"
        '3,Mobile,12345,error,invalid-phone,"not a valid phone number: it is too short (5 digits; an Australian '
        "mobile has 10, as in 0412 345 678); without a country code it was read as AU (Australia): write +<country "
        "code>, or set the row's Country column or --country\"\r\n"
        "4,Mobile,,error,missing-recipient,no recipient number; fill in the cell or remove the row\r\n"
        '5,Mobile,(02) 9876 5432,error,not-mobile,"this is an Australian landline (+61 2 9876 5432); SMS to it is '
        "at best read out as a voice call; use the person's mobile number, or --allow-landlines to send anyway\"\r\n"
        "6,Mobile,+61412345677,warning,duplicate-recipient,row 2 also texts +61412345677; use --dedupe to send "
        "only the first\r\n"
    )


def test_check_json(tmp_path):
    result = check(tmp_path, "--json")
    assert (result.exit_code, result.stderr) == (1, "")
    assert json.loads(normalise(result.stdout, tmp_path)) == {
        **SUMMARY_JSON, **PREVIEW_JSON, "report": "<tmp>/c.report.csv", "preview": "<tmp>/c.preview.csv"}


def test_check_of_a_clean_sheet(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "Name"], ["0412 345 677", "Ann"]])
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "Hi {{ Name }}", "--from", "CityDental"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert normalise(result.stdout, tmp_path) == """\
Checked <tmp>/c.csv (1 row); report: <tmp>/c.report.csv; preview: <tmp>/c.preview.csv
  rows read                        1
  rows valid                       1
  rows with errors                 0
  rows with warnings               0
  rows skipped                     0
  messages in GSM-7                1
  messages in UCS-2                0
  total segments                   1
  leased rows (blank From)         0
  scheduled rows                   0
  recipients                1 AU mobile
  sends at                  now
  estimated cost            not known: set --price, or [prices] in the config file
  sample messages:
    row 2 · AU mobile · +61 412 345 677 (first ready row, 1 segment)
      Hi Ann
"""


def test_check_that_cannot_start(tmp_path):
    result = CliRunner().invoke(main, ["check", str(tmp_path / "missing.csv"), "--text", "x"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert normalise(result.stderr, tmp_path) == (
        "batchsms: error: <tmp>/missing.csv: no such file\n")


def test_send_plan_and_confirmation_declined(sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "interactive", lambda: True)
    sheet = write_csv(tmp_path / "c.csv", PROBLEM_ROWS)
    xs = "x" * 160
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "Hi {{ Name }}, " + xs],
                                input="n\n", env=env_for(sandbox, tmp_path))
    assert (result.exit_code, result.stderr) == (1, "")
    assert normalise(result.stdout, tmp_path) == (
        "Checked <tmp>/c.csv (5 rows); preview: <tmp>/c.preview.csv\n"
        + SUMMARY.replace("total segments                   2", "total segments                   5")
        .replace("(first ready row, 1 segment)\n      Hi Ann", f"(first ready row, 2 segments)\n      Hi Ann, {xs}")
        .replace("(with a warning, 1 segment)\n      Hi Zoë", f"(longest, 3 segments)\n      Hi Zoë, {xs}")
        + "  to send now: 2 messages (5 segments) from property PS1 via 127.0.0.1:<port>\n"
        "  via Messages: one row unknown per unanswered request (single sends)\n"
        "Send 2 messages (5 segments) from property PS1 via 127.0.0.1:<port>? [y/N]: n\n"
        "Nothing sent.\n"
    )
    assert sandbox.state.taken == []
    assert [r["Status"] for r in read_results(tmp_path / "c.results.csv")] == [
        "pending", "invalid", "invalid", "invalid", "pending"]


def test_send_without_a_terminal_refuses(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "x"], env=env_for(sandbox, tmp_path))
    assert result.exit_code == 2 and sandbox.state.taken == []
    assert result.stderr == (
        "batchsms: error: refusing to send without a terminal to confirm on; add --yes (e.g. for cron)\n")


def test_send_json(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", PROBLEM_ROWS)
    result = send(sandbox, tmp_path, sheet, "--text", "Hi {{ Name }}", "--json")
    assert (result.exit_code, result.stderr) == (1, "")  # rows 3, 4 and 5 are invalid
    outcome = json.loads(normalise(result.stdout, tmp_path))
    assert isinstance(outcome.pop("seconds"), float)
    assert outcome == {**SUMMARY_JSON, **PREVIEW_JSON, "sent": 2, "scheduled": 0, "failed": 0, "unknown": 0,
                       "results": "<tmp>/c.results.csv", "preview": "<tmp>/c.preview.csv", "to_send": 2,
                       "segments_to_send": 2, "cost_to_send": None, "host": "127.0.0.1:<port>", "property": "PS1",
                       "interrupted": False}


def test_send_json_asks_on_stderr_so_stdout_stays_json(sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "interactive", lambda: True)
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "x", "--json"], input="y\n",
                                env=env_for(sandbox, tmp_path))
    assert result.exit_code == 0
    assert normalise(result.stderr, tmp_path) == (
        "Send 2 messages (2 segments) from property PS1 via 127.0.0.1:<port>? [y/N]: y\n")
    assert json.loads(result.stdout)["sent"] == 2


def test_send_json_of_a_clean_sheet_exits_0(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    result = send(sandbox, tmp_path, sheet, "--text", "Hi {{ Name }}", "--json", "--from", "CityDental")
    assert (result.exit_code, result.stderr) == (0, "")
    outcome = json.loads(normalise(result.stdout, tmp_path))
    del outcome["seconds"]
    assert outcome == {
        "rows_read": 2, "rows_valid": 2, "rows_with_errors": 0, "rows_with_warnings": 0, "rows_skipped": 0,
        "messages_gsm7": 2, "messages_ucs2": 0, "segments": 2, "leased_rows": 0, "scheduled_rows": 0,
        "top_problems": [], "recipients": [{"country": "AU", "line": "mobile", "rows": 2}], "sends_at": "now",
        "time_zone": "UTC", "cost": None, "currency": None,
        "samples": [{"why": "first ready row", "row": 2, "to": "AU mobile · +61 412 000 000", "text": "Hi Name0",
                     "segments": 1}],
        "dominant_problem": None, "sent": 2, "scheduled": 0, "failed": 0, "unknown": 0,
        "results": "<tmp>/c.results.csv", "preview": "<tmp>/c.preview.csv", "to_send": 2, "segments_to_send": 2,
        "cost_to_send": None, "host": "127.0.0.1:<port>", "property": "PS1", "interrupted": False,
    }


CLEAN_SUMMARY = """\
Checked <tmp>/c.csv (6 rows); preview: <tmp>/c.preview.csv
  rows read                        6
  rows valid                       6
  rows with errors                 0
  rows with warnings               0
  rows skipped                     0
  messages in GSM-7                6
  messages in UCS-2                0
  total segments                   6
  leased rows (blank From)         6
  scheduled rows                   0
  recipients                6 AU mobile
  sends at                  now
  estimated cost            not known: set --price, or [prices] in the config file
  sample messages:
    row 2 · AU mobile · +61 412 000 000 (first ready row, 1 segment)
      Hi Name0
"""


def test_rerun_plan_names_what_earlier_runs_did(sandbox, tmp_path):
    """Two rows sent, one unknown (the API took it and answered 500), one failed (503, out of attempts)."""
    sheet = write_csv(tmp_path / "c.csv", contacts(6))
    args = (sheet, "--text", "Hi {{ Name }}", "--quiet")
    first = send(sandbox, tmp_path, *args, "--limit", "2")
    assert (first.exit_code, first.stderr) == (0, "")
    assert normalise(first.stdout, tmp_path) == CLEAN_SUMMARY + (
        "  to send now: 2 messages (2 segments) from property PS1 via 127.0.0.1:<port>\n"
        "  via Messages: one row unknown per unanswered request (single sends)\n"
        "  left for a later run by --limit: 4\n"
        "This run: sent 2, scheduled 0, failed 0, unknown 0 (<speed> msg/s)\n"
        "Results: <tmp>/c.results.csv\n"
    )
    sandbox.faults = {"500": 1.0}
    assert send(sandbox, tmp_path, *args, "--limit", "1").exit_code == 1
    sandbox.faults = {"503": 1.0}
    assert send(sandbox, tmp_path, *args, "--limit", "1", "--max-attempts", "1").exit_code == 1
    sandbox.faults = {}

    rerun = send(sandbox, tmp_path, *args)
    assert (rerun.exit_code, rerun.stderr) == (1, "")  # row 4 stays unknown, row 5 failed
    assert normalise(rerun.stdout, tmp_path) == CLEAN_SUMMARY + (
        "  to send now: 2 messages (2 segments) from property PS1 via 127.0.0.1:<port>\n"
        "  via Messages: one row unknown per unanswered request (single sends)\n"
        "  already sent by an earlier run: 2\n"
        "  unknown, not resent: row 4 (--retry-unknown)\n"
        "  failed earlier, not resent: row 5 (--retry-failed)\n"
        "This run: sent 2, scheduled 0, failed 0, unknown 0 (<speed> msg/s)\n"
        "Results: <tmp>/c.results.csv\n"
    )
    assert [(r["Status"], r["Error"], r["Attempts"]) for r in read_results(tmp_path / "c.results.csv")] == [
        ("sent", "", "1"),
        ("sent", "", "1"),
        ("unknown", "500: HTTP 500 Internal Server Error (not a JSON answer: "
                    "<html><body><h1>500 Internal Server Error</h1></body></html>)", "1"),
        ("failed", "TryAgain: Please retry later (gave up after 1 attempt; never taken)", "1"),
        ("sent", "", "1"),
        ("sent", "", "1"),
    ]

    nothing_left = send(sandbox, tmp_path, *args)
    assert normalise(nothing_left.stdout, tmp_path) == CLEAN_SUMMARY + (
        "  to send now: 0 messages (0 segments) from property PS1 via 127.0.0.1:<port>\n"
        "  already sent by an earlier run: 4\n"
        "  unknown, not resent: row 4 (--retry-unknown)\n"
        "  failed earlier, not resent: row 5 (--retry-failed)\n"
        "This run: sent 0, scheduled 0, failed 0, unknown 0\n"
        "Results: <tmp>/c.results.csv\n"
    )
    assert nothing_left.exit_code == 1


def test_send_refuses_a_changed_sheet_in_one_line(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(3))
    assert send(sandbox, tmp_path, sheet, "--text", "v1", "--quiet").exit_code == 0
    result = send(sandbox, tmp_path, sheet, "--text", "v2", "--quiet")
    assert (result.exit_code, result.stdout) == (2, "")
    assert normalise(result.stderr, tmp_path) == (
        "batchsms: error: <tmp>/c.results.csv.journal: rows 2, 3, 4 now hold other messages than the ones this "
        "journal sent or may have sent under those row numbers (the sheet or template changed since); put the "
        "sheet back, or start a new campaign with --restart (rows already sent are not sent again without "
        "--yes-resend)\n"
    )


def test_send_refuses_a_journal_of_another_target_in_one_line(sandbox, make_sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(3))
    assert send(sandbox, tmp_path, sheet, "--text", "v1", "--quiet").exit_code == 0
    other = make_sandbox()
    result = send(other, tmp_path, sheet, "--text", "v1", "--quiet")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.replace(str(tmp_path), "<tmp>") == (
        f"batchsms: error: <tmp>/c.results.csv.journal: this journal records a send to "
        f"{sandbox.url}/v2/Properties/PS1, and this run targets {other.url}/v2/Properties/PS1; use --restart to "
        "start over or --results NEW.csv for a separate run\n"
    )
