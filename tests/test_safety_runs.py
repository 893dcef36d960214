"""Issue #7: re-runs that never double-send, outputs that never replace an input, one clear line for
every broken file or folder, and a Ctrl-C that stops at once when nothing is in flight."""

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from batchsms.cli import every_command, main

from .helpers import write_csv, write_xlsx
from .test_send import contacts, env_for, read_results, taken_ids


def run(server, tmp_path, *args):
    """The CLI without an automatic --yes-resend or anything else added."""
    return CliRunner().invoke(main, ["send", *[str(a) for a in args], "--yes", "--quiet"],
                              env=env_for(server, tmp_path))


# --------------------------------------------------------------------------- re-runs


def test_a_row_sent_then_suppressed_is_neither_resent_nor_blocking(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(6))
    assert run(sandbox, tmp_path, sheet, "--text", "x", "--limit", "3").exit_code == 0
    optout = write_csv(tmp_path / "optout.csv", [["Number"], ["0412000001"], ["0412000004"]])
    result = run(sandbox, tmp_path, sheet, "--text", "x", "--suppress", optout)
    assert result.exit_code == 0, result.output
    assert "sent earlier, now invalid, skipped or removed (not sent again): row 3" in result.output
    # row 3 (sent) stays sent; row 6 (0412000004, never sent) is skipped; rows 5 and 7 go out now
    assert sorted(taken_ids(sandbox)) == ["id0", "id1", "id2", "id3", "id5"]
    rows = read_results(tmp_path / "c.results.csv")
    assert [r["Status"] for r in rows] == ["sent", "sent", "sent", "sent", "skipped", "sent"]
    assert rows[1]["MessageSid"] and "sent by an earlier run; the row is now skipped (suppressed)" in rows[1]["Error"]


def test_a_sent_row_that_became_invalid_stays_sent_and_does_not_block(sandbox, tmp_path):
    rows = contacts(3)
    sheet = write_csv(tmp_path / "c.csv", rows)
    assert run(sandbox, tmp_path, sheet, "--text", "x").exit_code == 0
    rows[2][0] = "12345"  # the sheet was edited after the send: row 3 is no longer a valid number
    write_csv(sheet, rows)
    result = run(sandbox, tmp_path, sheet, "--text", "x")
    assert result.exit_code == 0, result.output
    assert len(sandbox.state.taken) == 3
    assert [r["Status"] for r in read_results(tmp_path / "c.results.csv")] == ["sent"] * 3


def test_restart_refuses_to_resend_without_yes_resend(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(4))
    assert run(sandbox, tmp_path, sheet, "--text", "x", "--limit", "3").exit_code == 0
    journal = tmp_path / "c.results.csv.journal"
    refused = run(sandbox, tmp_path, sheet, "--text", "x", "--restart")
    assert refused.exit_code == 2
    assert "--restart would send 3 messages again that an earlier run already sent" in refused.output
    assert "rows 2, 3, 4" in refused.output and "--yes-resend" in refused.output
    assert len(sandbox.state.taken) == 3 and journal.exists() and not list(tmp_path.glob("*.bak"))
    again = run(sandbox, tmp_path, sheet, "--text", "x", "--restart", "--yes-resend")
    assert again.exit_code == 0, again.output
    assert "sending again (--yes-resend): 3 messages" in again.output
    assert len(sandbox.state.taken) == 7


def test_restart_with_new_messages_needs_no_yes_resend(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(3))
    assert run(sandbox, tmp_path, sheet, "--text", "v1").exit_code == 0
    assert run(sandbox, tmp_path, sheet, "--text", "v2", "--restart").exit_code == 0
    assert len(sandbox.state.taken) == 6


def test_a_new_results_path_refuses_to_resend_what_another_journal_sent(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(3))
    assert run(sandbox, tmp_path, sheet, "--text", "x").exit_code == 0
    other = tmp_path / "other.csv"
    refused = run(sandbox, tmp_path, sheet, "--text", "x", "--results", other)
    assert refused.exit_code == 2 and "this run would send 3 messages again" in refused.output
    assert "c.results.csv.journal" in refused.output and len(sandbox.state.taken) == 3
    assert run(sandbox, tmp_path, sheet, "--text", "x", "--results", other, "--yes-resend").exit_code == 0
    assert len(sandbox.state.taken) == 6


# --------------------------------------------------------------------------- the user's files


def test_results_over_the_input_workbook_is_refused(sandbox, tmp_path):
    sheet = write_xlsx(tmp_path / "c.xlsx", contacts(2), extra_sheets=["Notes"])
    before = sheet.read_bytes()
    result = run(sandbox, tmp_path, sheet, "--text", "x", "--results", sheet)
    assert result.exit_code == 2
    assert f"--results {sheet}: is the contact sheet; batchsms never writes over its input" in result.output
    assert sheet.read_bytes() == before and sandbox.state.taken == []


@pytest.mark.parametrize("option", ["--report", "--results"])
def test_outputs_over_the_suppression_file_are_refused(sandbox, tmp_path, option):
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    optout = write_csv(tmp_path / "optout.csv", [["Number"], ["0412000009"]])
    result = run(sandbox, tmp_path, sheet, "--text", "x", "--suppress", optout, option, optout)
    assert result.exit_code == 2 and "is the --suppress file" in result.output
    assert optout.read_bytes() == b"Number\r\n0412000009\r\n"


def test_check_report_over_the_sheet_is_refused(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "x", "--report", str(sheet)])
    assert result.exit_code == 2 and "is the contact sheet" in result.output


def test_a_missing_output_folder_is_refused_before_the_check(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "x", "--report", str(tmp_path / "no" / "r.csv")])
    assert result.exit_code == 2
    assert result.output.strip() == (f"batchsms: error: --report {tmp_path / 'no' / 'r.csv'}: the folder "
                                     f"{tmp_path / 'no'} does not exist; create it or choose another path")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_output_folder_is_refused(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "x", "--report", str(folder / "r.csv")])
    assert result.exit_code == 2 and "is read-only for you" in result.output


def test_a_full_disk_is_one_line_not_a_traceback(tmp_path):
    """A file-size limit makes the report write fail as a full disk would (EFBIG instead of ENOSPC)."""
    sheet = write_csv(tmp_path / "c.csv", [["Mobile"]] + [["12345"]] * 200)  # 200 problems to report
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000)); from batchsms.cli import run; "
            f"sys.argv = ['batchsms', 'check', {str(sheet)!r}, '--text', 'Hi there ' * 30]; run()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("batchsms: error: ") and "File too large" in proc.stderr
    assert not list(tmp_path.glob(".c.report.csv.*")), "the half-written temp file is left behind"


def test_results_keep_the_input_files_permissions(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    sheet.chmod(0o640)
    assert run(sandbox, tmp_path, sheet, "--text", "x").exit_code == 0
    assert stat.S_IMODE((tmp_path / "c.results.csv").stat().st_mode) == 0o640


@pytest.mark.parametrize("content", [b"not a database" * 300, None], ids=["garbage", "foreign"])
def test_a_corrupt_or_foreign_journal_is_one_clear_line(sandbox, tmp_path, content):
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    journal = tmp_path / "c.results.csv.journal"
    if content is None:  # some other program's SQLite file
        with sqlite3.connect(journal) as db:
            db.execute("CREATE TABLE rows (id INTEGER, name TEXT)")
    else:
        journal.write_bytes(content)
    result = run(sandbox, tmp_path, sheet, "--text", "x")
    assert result.exit_code == 2 and sandbox.state.taken == []
    assert result.output.count("\n") == 1
    assert re.search(r"journal: (is a SQLite file but )?not a (usable )?batchsms journal", result.output)
    if content is None:  # someone else's database is left exactly as it was
        with sqlite3.connect(journal) as db:
            assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["rows"]


# --------------------------------------------------------------------------- options and config


def test_non_utf8_bytes_in_text_are_refused(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(1))
    proc = subprocess.run([sys.executable, "-m", "batchsms", "check", os.fsencode(sheet), "--text", b"Caf\xe9"],
                          capture_output=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == b"batchsms: error: --text: holds bytes that are not UTF-8 text; type it again, " \
                          b"or put the text in a --template file saved as UTF-8\n"


def test_non_utf8_config_is_one_line(tmp_path):
    config = tmp_path / "c.ini"
    config.write_bytes(b"[batchsms]\naccount_sid = AC1\nauth_token = s\xe9cret\n")
    sheet = write_csv(tmp_path / "c.csv", contacts(1))
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "x", "--yes"],
                                env={"BATCHSMS_CONFIG": str(config), "BATCHSMS_ACCOUNT_SID": "",
                                     "BATCHSMS_AUTH_TOKEN": ""})
    assert result.exit_code == 2
    assert result.output == f"batchsms: error: {config}: is not UTF-8 text (byte 0xe9); save it as UTF-8\n"


def test_a_config_file_others_can_read_gets_a_warning(sandbox, tmp_path):
    config = tmp_path / "c.ini"
    config.write_text(f"[batchsms]\naccount_sid = {sandbox.account_sid}\nauth_token = {sandbox.auth_token}\n"
                      f"property_sid = PS1\nbase_url = {sandbox.url}\n")
    config.chmod(0o644)
    sheet = write_csv(tmp_path / "c.csv", contacts(1))
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "x", "--yes", "--quiet"],
                                env={"BATCHSMS_CONFIG": str(config), "BATCHSMS_ACCOUNT_SID": "",
                                     "BATCHSMS_AUTH_TOKEN": "", "BATCHSMS_BASE_URL": "",
                                     "BATCHSMS_PROPERTY_SID": ""})
    assert result.exit_code == 0, result.output
    assert (f"batchsms: warning: {config} holds the auth token and others can read it (mode 644); "
            f"run: chmod 600 {config}") in result.output
    assert sandbox.auth_token not in result.output
    config.chmod(0o600)
    quiet = CliRunner().invoke(main, ["send", str(sheet), "--text", "x", "--yes", "--quiet"],
                               env={"BATCHSMS_CONFIG": str(config), "BATCHSMS_ACCOUNT_SID": "",
                                    "BATCHSMS_AUTH_TOKEN": "", "BATCHSMS_BASE_URL": "", "BATCHSMS_PROPERTY_SID": ""})
    assert "batchsms: warning" not in quiet.output


def test_help_never_puts_the_token_on_a_command_line():
    for name in every_command():
        if name == "sandbox":
            continue  # the sandbox's own made-up token is not a secret
        text = CliRunner().invoke(main, [name, "--help"]).output
        assert "AUTH_TOKEN=" not in text and "--auth-token" not in text, name


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_with_a_slow_rate_and_nothing_in_flight_stops_at_once(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(5))
    env = {**os.environ, **env_for(sandbox, tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "batchsms", "send", str(sheet), "--text", "x", "--yes",
                             "--quiet", "--rate", "0.02"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while not sandbox.state.taken and time.time() < deadline:
        time.sleep(0.01)
    assert len(sandbox.state.taken) == 1  # the first message; the next is 50 s away
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert time.monotonic() - started < 5
    assert [r["Status"] for r in read_results(tmp_path / "c.results.csv")] == ["sent"] + ["pending"] * 4



@pytest.mark.parametrize("suffix", [".csv", ".json", ".xlsx"])
def test_the_report_copies_at_most_a_few_hundred_characters_of_a_cell(tmp_path, suffix):
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "From"], ["0412000001", "x" * 100_000]])
    report = tmp_path / f"r{suffix}"
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "x", "--report", str(report)])
    assert result.exit_code == 1
    assert report.stat().st_size < 5_000
    if suffix == ".csv":
        assert "x" * 300 + "… (99,700 more characters)" in report.read_text(encoding="utf-8-sig")


def test_a_sandbox_open_to_the_network_with_the_default_token_warns():
    proc = subprocess.Popen([sys.executable, "-m", "batchsms", "sandbox", "--host", "0.0.0.0", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert line == ("batchsms: warning: the sandbox listens on 0.0.0.0 with the default token 'sandbox': anyone "
                    "on your network can use it; give --auth-token or --host 127.0.0.1\n")


# --------------------------------------------------------------------------- rows that vanish


def test_a_stray_quote_is_an_error_at_its_row_and_no_row_is_lost(tmp_path):
    sheet = tmp_path / "c.csv"
    sheet.write_bytes(b'Mobile,Name\r\n0412000001,Ann\r\n0412000002,"Bo\r\n0412000003,Cy\r\n'
                      b'0412000004,Di\r\n0412000005,Ed\r\n')
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "Hi {{ Name }}", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.output)
    assert (summary["rows_read"], summary["rows_valid"], summary["rows_with_errors"]) == (5, 4, 1)
    report = (tmp_path / "c.report.csv").read_text(encoding="utf-8-sig")
    assert "3,Name" in report and "unclosed-quote" in report and "swallows the next 3 lines" in report


def test_hidden_rows_are_skipped_unless_asked_for(sandbox, tmp_path):
    import openpyxl

    path = tmp_path / "c.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in contacts(3):
        ws.append(row)
    ws.row_dimensions[3].hidden = True  # the second contact, hidden by hand in Excel
    hidden = wb.create_sheet("Old list", 0)  # a hidden sheet first: never picked by default
    hidden.append(["Mobile"])
    hidden.sheet_state = "hidden"
    wb.save(path)
    result = run(sandbox, tmp_path, path, "--text", "x")
    assert result.exit_code == 0, result.output
    assert sorted(taken_ids(sandbox)) == ["id0", "id2"]
    rows = read_results(tmp_path / "c.results.xlsx")
    assert [r["Status"] for r in rows] == ["sent", "skipped", "sent"] and "hidden-row" in rows[1]["Error"]
    assert run(sandbox, tmp_path, path, "--text", "x", "--include-hidden").exit_code == 0
    assert sorted(taken_ids(sandbox)) == ["id0", "id1", "id2"]
