"""``batchsms send`` end to end against a real sandbox on a loopback port."""

import collections
import csv
import signal
import time
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from batchsms.cli import main

from .helpers import contacts, env_for, read_results, send, start_send, taken_ids, wait_until, write_csv, write_xlsx


def test_every_valid_row_arrives_once_with_the_right_fields(sandbox, tmp_path):
    rows = contacts(40)
    rows[5][0] = "12345"  # invalid: never sent
    rows[9] = ["+61 412 000 001", "Name8", "dup"]  # same recipient as row 3: a warning, still sent
    sheet = write_csv(tmp_path / "c.csv", rows)
    schedule = int(time.time()) + 3600
    result = send(sandbox, tmp_path, sheet, "--text", "Hi {{ Name }}", "--from", "CityDental",
                  "--schedule", str(schedule), "--no-delivery-receipt", "--quiet")
    assert result.exit_code == 1, result.output  # one invalid row
    with sandbox.state.lock:
        taken = {b["ExternalId"]: b for b in sandbox.state.taken}
    assert len(sandbox.state.taken) == 39 == len(taken)
    assert taken["id0"] == {"From": "CityDental", "To": "+61412000000", "Text": "Hi Name0", "Schedule": schedule,
                            "DeliveryReceipt": False, "ExternalId": "id0"}
    results = read_results(tmp_path / "c.results.csv")
    assert [r["Status"] for r in results].count("scheduled") == 39
    assert results[4]["Status"] == "invalid" and "invalid-phone" in results[4]["Error"]
    for r in results:
        if r["Status"] == "scheduled":
            assert r["MessageSid"] in sandbox.state.messages and r["SenderId"] == "CityDental"


def test_leased_sender_id_is_reported(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(3))
    assert send(sandbox, tmp_path, sheet, "--text", "x").exit_code == 0
    results = read_results(tmp_path / "c.results.csv")
    assert all(r["SenderId"].startswith("+6140") and r["Status"] == "sent" for r in results)
    assert [r["Attempts"] for r in results] == ["1", "1", "1"]


def test_faults_never_double_send_nor_claim_untaken_rows(make_sandbox, tmp_path):
    server = make_sandbox(faults={"429": 0.1, "503": 0.05, "reset": 0.05, "500": 0.05, "timeout": 0.03},
                          timeout_hold=2)
    sheet = write_csv(tmp_path / "c.csv", contacts(200))
    result = send(server, tmp_path, sheet, "--text", "Hi {{ Name }}", "--read-timeout", "0.5",
                  "--concurrency", "16", "--quiet")
    assert result.exit_code == 1  # some rows are unknown
    ids = taken_ids(server)
    assert len(ids) == len(set(ids)), "a row reached the API twice"
    results = read_results(tmp_path / "c.results.csv")
    statuses = collections.Counter(r["Status"] for r in results)
    assert statuses["sent"] > 100 and statuses["unknown"] > 0 and statuses["pending"] == 0
    for r in results:
        if r["Status"] == "sent":
            assert r["MessageSid"] in server.state.messages  # never marked sent unless taken
    # 500 and timeout took the message; the unknown rows include them, and nothing proves otherwise
    assert server.state.stats["500"] + server.state.stats["timeout"] <= statuses["unknown"]
    # Running again sends nothing new: unknown rows wait for a person.
    again = send(server, tmp_path, sheet, "--text", "Hi {{ Name }}", "--quiet")
    assert again.exit_code == 1 and "unknown, not resent" in again.output
    assert len(taken_ids(server)) == len(ids)


def test_limit_then_resume_sends_each_row_once(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(30))
    first = send(sandbox, tmp_path, sheet, "--text", "x", "--limit", "10")
    assert first.exit_code == 0 and "left for a later run by --limit: 20" in first.output
    assert collections.Counter(r["Status"] for r in read_results(tmp_path / "c.results.csv")) == {
        "sent": 10, "pending": 20}
    second = send(sandbox, tmp_path, sheet, "--text", "x")
    assert second.exit_code == 0 and "already sent by an earlier run: 10" in second.output
    ids = taken_ids(sandbox)
    assert sorted(ids) == sorted(f"id{i}" for i in range(30))


def test_changed_sheet_is_refused_until_restart(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(5))
    assert send(sandbox, tmp_path, sheet, "--text", "v1").exit_code == 0
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "v2", "--yes"],
                                env=env_for(sandbox, tmp_path))
    assert result.exit_code == 2
    assert "rows 2, 3, 4, 5, 6 now hold other messages than the ones this journal sent" in result.output
    assert len(sandbox.state.taken) == 5
    restarted = send(sandbox, tmp_path, sheet, "--text", "v2", "--restart")
    assert restarted.exit_code == 0 and len(sandbox.state.taken) == 10
    assert list(tmp_path.glob("c.results.csv.journal.*.bak"))


def test_journal_is_tied_to_its_target(sandbox, make_sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    assert send(sandbox, tmp_path, sheet, "--text", "x").exit_code == 0
    other = make_sandbox()
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "x", "--yes"], env=env_for(other, tmp_path))
    assert result.exit_code == 2 and "this journal records a send to" in result.output
    assert other.state.taken == []


def test_refused_credentials_stop_the_run_at_once(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(100))
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "x", "--yes", "--quiet", "--concurrency", "4"],
                                env=env_for(sandbox, tmp_path, token="wrong-token"))
    assert result.exit_code == 2
    assert "refused the credentials" in result.output and "wrong-token" not in result.output
    assert sandbox.state.stats["401"] <= 4 and sandbox.state.taken == []
    results = read_results(tmp_path / "c.results.csv")
    assert {r["Status"] for r in results} == {"pending"}
    assert send(sandbox, tmp_path, sheet, "--text", "x", "--quiet").exit_code == 0
    assert len(sandbox.state.taken) == 100


def test_no_credentials_is_a_clear_error(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(1))
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "x", "--yes"],
                                env={"BATCHSMS_ACCOUNT_SID": "", "BATCHSMS_AUTH_TOKEN": "", "BATCHSMS_CONFIG": "",
                                     "XDG_CONFIG_HOME": str(tmp_path)})
    assert result.exit_code == 2 and "no credentials" in result.output and "--sandbox" in result.output


def test_built_in_sandbox_needs_no_credentials(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(4))
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "x", "--sandbox", "--yes", "--json"],
                                env={"XDG_CONFIG_HOME": str(tmp_path), "BATCHSMS_CONFIG": ""})
    assert result.exit_code == 0, result.output
    assert '"sent": 4' in result.output


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_results_keep_the_sheet_and_keep_formulas_inert(sandbox, tmp_path, suffix):
    rows = [["Mobile", "Name", "Note"], ["0412000001", "=HYPERLINK(\"http://evil\")", "@SUM(1)"],
            ["+61412000002", "-2+3", "+61 412"], ["bad", "Ann", "x"]]
    if suffix == ".csv":
        sheet = write_csv(tmp_path / "c.csv", rows)
    else:
        sheet = write_xlsx(tmp_path / "c.xlsx", rows, formulas=False)
    result = send(sandbox, tmp_path, sheet, "--text", "Hi")
    assert result.exit_code == 1
    path = tmp_path / f"c.results{suffix}"
    results = read_results(path)
    assert list(results[0]) == ["Mobile", "Name", "Note", "Status", "MessageSid", "SenderId", "To", "Text",
                                "Sends at", "Segments", "Error", "Attempts"]
    if suffix == ".csv":
        assert [r["Name"] for r in results] == ["'=HYPERLINK(\"http://evil\")", "'-2+3", "Ann"]
        assert [r["Note"] for r in results] == ["'@SUM(1)", "+61 412", "x"]
    else:
        assert [r["Name"] for r in results] == ["=HYPERLINK(\"http://evil\")", "-2+3", "Ann"]
        ws = openpyxl.load_workbook(path).active
        assert not [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]  # no live formula
        assert [ws.cell(r, 2).data_type for r in (2, 3)] == ["s", "s"]  # "=HYPERLINK(...)" stays text
        assert [ws.cell(r, 10).value for r in (2, 3, 4)] == [1, 1, 1]  # Segments are numbers
    assert [r["Mobile"] for r in results] == ["0412000001", "+61412000002", "bad"]
    assert [r["Status"] for r in results] == ["sent", "sent", "invalid"]


def _wait_for_taken(server, n):
    wait_until(lambda: len(server.state.taken) >= n, f"the sandbox took {n} messages (the sender never got going)")


def test_sigkill_mid_run_then_rerun_sends_nothing_twice(make_sandbox, tmp_path):
    server = make_sandbox(latency_ms=20)
    sheet = write_csv(tmp_path / "c.csv", contacts(300))
    proc = start_send(server, tmp_path, sheet)
    _wait_for_taken(server, 60)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed_at = len(server.state.taken)
    assert killed_at < 300
    rerun = start_send(server, tmp_path, sheet)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 1, err  # the rows in flight at the kill are unknown
    ids = taken_ids(server)
    assert len(ids) == len(set(ids)), "a row reached the API twice"
    results = read_results(tmp_path / "c.results.csv")
    statuses = collections.Counter(r["Status"] for r in results)
    assert statuses["sent"] + statuses["unknown"] == 300
    assert 0 < statuses["unknown"] <= 4  # at most the requests in flight (concurrency 4)
    assert "in flight when the last run stopped" in out
    for r in results:
        if r["Status"] == "sent":
            assert r["MessageSid"] in server.state.messages


def test_ctrl_c_drains_saves_and_prints_the_resume_command(make_sandbox, tmp_path):
    server = make_sandbox(latency_ms=20)
    sheet = write_csv(tmp_path / "c.csv", contacts(300))
    proc = start_send(server, tmp_path, sheet)
    _wait_for_taken(server, 40)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "run the same command again" in err and "batchsms send" in err
    results = read_results(tmp_path / "c.results.csv")
    statuses = collections.Counter(r["Status"] for r in results)
    assert statuses["unknown"] == 0 and statuses["pending"] > 0  # in-flight requests were let finish
    assert statuses["sent"] == len(server.state.taken)
    rerun = start_send(server, tmp_path, sheet)
    rerun.communicate(timeout=60)
    assert rerun.returncode == 0
    ids = taken_ids(server)
    assert sorted(ids) == sorted(f"id{i}" for i in range(300))


def test_results_are_rebuilt_from_the_journal(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(5))
    assert send(sandbox, tmp_path, sheet, "--text", "x").exit_code == 0
    results = tmp_path / "c.results.csv"
    before = results.read_bytes()
    results.unlink()
    assert send(sandbox, tmp_path, sheet, "--text", "x").exit_code == 0
    assert results.read_bytes() == before and len(sandbox.state.taken) == 5


def test_retry_unknown_resends_only_the_unknown_rows(make_sandbox, tmp_path):
    server = make_sandbox(faults={"500": 0.3}, seed=3)
    sheet = write_csv(tmp_path / "c.csv", contacts(40))
    assert send(server, tmp_path, sheet, "--text", "x", "--quiet").exit_code == 1
    unknown = [r["ExternalId"] for r in read_results(tmp_path / "c.results.csv") if r["Status"] == "unknown"]
    assert unknown
    before = len(server.state.taken)
    server.faults = {}
    again = send(server, tmp_path, sheet, "--text", "x", "--quiet", "--retry-unknown")
    assert again.exit_code == 0
    assert sorted(taken_ids(server)[before:]) == sorted(unknown)
    results = read_results(tmp_path / "c.results.csv")
    assert {r["Status"] for r in results} == {"sent"}
    assert all(r["Attempts"] == "2" for r in results if r["ExternalId"] in unknown)


def test_a_sixth_lease_to_one_number_is_invalid_and_never_sent(sandbox, tmp_path):
    rows = [["Mobile", "Name"]] + [["0412000001", f"n{i}"] for i in range(7)]  # 7 leases to one number
    sheet = write_csv(tmp_path / "c.csv", rows)
    result = send(sandbox, tmp_path, sheet, "--text", "{{ Name }}", "--quiet")
    assert result.exit_code == 1  # rows 7 and 8 break the 5-lease rule: invalid, never sent
    statuses = [r["Status"] for r in read_results(tmp_path / "c.results.csv")]
    assert statuses == ["sent"] * 5 + ["invalid"] * 2
    assert len(sandbox.state.taken) == 5


# --retry-failed end to end (rows the API refused, then resent once the cause is gone):
# test_send_paths.py::test_retry_failed_resends_exactly_the_refused_rows


def test_second_ctrl_c_quits_at_once_and_loses_nothing(make_sandbox, tmp_path):
    server = make_sandbox(latency_ms=1500)  # answers come slowly: the drain is still waiting
    sheet = write_csv(tmp_path / "c.csv", contacts(100))
    proc = start_send(server, tmp_path, sheet)
    _wait_for_taken(server, 8)
    proc.send_signal(signal.SIGINT)
    first_line = proc.stderr.readline()  # the sender says it is draining: now the second Ctrl-C
    assert "Stopping" in first_line or "Stopping" in proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "stopped at once" in err
    server.latency = 0.0
    rerun = start_send(server, tmp_path, sheet)
    out, err = rerun.communicate(timeout=60)
    ids = taken_ids(server)
    assert len(ids) == len(set(ids)), "a row reached the API twice"
    statuses = collections.Counter(r["Status"] for r in read_results(tmp_path / "c.results.csv"))
    assert statuses["sent"] + statuses["unknown"] == 100 and statuses["unknown"] <= 4


def test_sample_workbook_through_the_built_in_sandbox(tmp_path):
    root = Path(__file__).resolve().parent.parent
    results = tmp_path / "out.xlsx"
    template = root / "templates" / "appointment_reminder.txt"
    result = CliRunner().invoke(main, [
        "send", str(root / "samples" / "contacts.xlsx"), "--template", str(template),
        "--sandbox", "--yes", "--quiet", "--results", str(results)], env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert result.exit_code == 1, result.output  # the sample's broken rows are invalid
    statuses = collections.Counter(r["Status"] for r in read_results(results))
    assert statuses == {"sent": 34, "invalid": 4}  # a missing number, a short one, a typo, a landline


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_results_keep_the_sheet_layout_row_for_row(sandbox, tmp_path, suffix):
    """Row N of the results is row N of the sheet: title rows, empty rows and stray cells stay."""
    rows = [["Spring campaign"], [], ["Mobile ", "Name"], ["0412000001", "Ann", "note beyond the header"], [],
            ["0412000002", "Bo"]]
    sheet = (write_csv if suffix == ".csv" else write_xlsx)(tmp_path / f"c{suffix}", rows)
    result = send(sandbox, tmp_path, sheet, "--text", "Hi {{ Name }}", "--header-row", "3", "--quiet")
    assert result.exit_code == 0, result.output
    path = tmp_path / f"c.results{suffix}"
    if suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            got = list(csv.reader(fh))
    else:
        ws = openpyxl.load_workbook(path).active
        got = [["" if c.value is None else c.value for c in row] for row in ws.iter_rows()]
        got = [r[:len(r) - next((i for i, c in enumerate(reversed(r)) if c), len(r))] for r in got]
    assert got[0][0] == "Spring campaign" and not any(got[1])
    assert got[2][:4] == ["Mobile ", "Name", "", "Status"]
    assert got[3][:4] == ["0412000001", "Ann", "note beyond the header", "sent"]
    assert not any(got[4])
    assert got[5][:4] == ["0412000002", "Bo", "", "sent"]


def test_a_row_reaches_the_api_only_after_the_journal_says_it_is_in_flight(sandbox, tmp_path):
    """The sandbox looks into the journal (a second SQLite reader) at the moment each message arrives."""
    import sqlite3

    journal = tmp_path / "c.results.csv.journal"
    seen_states = []
    original = sandbox._take

    def take_and_look(property_sid, body):
        row = int(body["ExternalId"][2:]) + 2
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
            found = db.execute("SELECT state FROM rows WHERE row = ?", (row,)).fetchone()
        seen_states.append(found[0] if found else None)
        return original(property_sid, body)

    sandbox._take = take_and_look
    sheet = write_csv(tmp_path / "c.csv", contacts(40))
    assert send(sandbox, tmp_path, sheet, "--text", "x", "--quiet", "--concurrency", "8").exit_code == 0
    assert seen_states == ["started"] * 40
