"""Issue #9: the preview sheet, the terminal's picture of the send, the cost, and times in the run's zone."""

import datetime as dt
import json

import openpyxl
from click.testing import CliRunner

from batchsms import cli
from batchsms.cli import main

from .helpers import contacts, env_for, normalise, read_results, send, write_csv, write_xlsx

SYDNEY = dt.timezone(dt.timedelta(hours=11))  # AEDT, all of December


def in_days(days: int, hour: int) -> dt.datetime:
    """A wall-clock time in Sydney ``days`` from now, for a Schedule within the API's window."""
    day = dt.datetime.now(SYDNEY).date() + dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, hour, 0)


def test_a_workbook_preview_shows_every_message_and_marks_the_cells_at_fault(tmp_path):
    appointment = dt.datetime(2026, 12, 3, 9, 30)
    rows = [["Spring reminders"], [], ["Mobile", "Name", "Appointment", "Visits"],
            [61412345677, "Ann", appointment, 3], ["12345", "Bob", appointment, 1], [],
            ["0412 345 679", "Zoë", None, 2]]
    sheet = write_xlsx(tmp_path / "c.xlsx", rows)
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "Hi {{ Name }}", "--header-row", "3",
                                       "--price", "0.05"])
    assert result.exit_code == 1, result.output
    wb = openpyxl.load_workbook(tmp_path / "c.preview.xlsx")
    ws = wb.worksheets[0]
    assert wb.sheetnames == ["Sheet1", "Summary"]
    assert ws["A1"].value == "Spring reminders" and ws["A2"].value is None  # row N is row N of the sheet
    assert [c.value for c in ws[3]] == ["Mobile", "Name", "Appointment", "Visits", "Will text", "Message",
                                       "Characters", "Segments", "Encoding", "Sends at", "Cost", "Status", "Problem"]
    assert ws["A3"].font.b and ws.freeze_panes == "A4" and ws.auto_filter.ref.startswith("A3:")
    ann = [c.value for c in ws[4]]
    assert ann[:4] == [61412345677, "Ann", appointment, 3]  # the input's types survive
    assert ann[4:] == ["AU mobile · +61 412 345 677", "Hi Ann", 6, 1, "GSM-7", "now", 0.05, "ready", None]
    assert ws["C4"].is_date and ws["D4"].data_type == "n"
    bob = ws[5]
    assert [c.value for c in bob][4:12] == [None, "Hi Bob", 6, 1, "GSM-7", None, None, "error"]
    assert bob[0].fill.fgColor.rgb.endswith("FFC7CE") and "not a valid phone number" in bob[0].comment.text
    assert bob[11].fill.fgColor.rgb.endswith("FFC7CE")  # the Status column, coloured
    assert ws["A6"].value is None  # the empty row stays
    zoe = [c.value for c in ws[7]]
    assert zoe[5:9] == ["Hi Zoë", 6, 1, "UCS-2 (because of ë)"]
    summary = dict(wb["Summary"].iter_rows(values_only=True))
    assert summary["Rows read"] == 3 and summary["Ready to send"] == 2 and summary["Estimated cost"] == 0.1


def test_a_csv_preview_shows_send_times_in_the_run_zone_and_the_cost(tmp_path):
    when = in_days(3, 10)
    rows = [["Mobile", "Name", "Schedule"], ["0412345677", "Ann", when.strftime("%Y-%m-%d %H:%M")],
            ["+64 21 123 4568", "Kiri", ""]]
    sheet = write_csv(tmp_path / "c.csv", rows)
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "Hi {{ Name }}", "--timezone",
                                       "Australia/Sydney", "--price", "0.055", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    expected_when = f"{when:%a} {when.day} {when:%b %Y} 10:00 AEDT"
    assert figures["sends_at"] == f"now and {expected_when}"
    assert figures["recipients"] == [{"country": "AU", "line": "mobile", "rows": 1},
                                     {"country": "NZ", "line": "mobile", "rows": 1}]
    assert (figures["cost"], figures["currency"]) == ("0.11", "AUD")
    preview = read_results(tmp_path / "c.preview.csv")
    assert [(r["Will text"], r["Sends at"], r["Cost"], r["Status"]) for r in preview] == [
        ("AU mobile · +61 412 345 677", expected_when, "0.055", "ready"),
        ("NZ mobile · +64 21 123 4568", "now", "0.055", "ready"),
    ]


def test_preview_options_and_paths(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(2))
    assert CliRunner().invoke(main, ["check", str(sheet), "--text", "x", "--no-preview"]).exit_code == 0
    assert not (tmp_path / "c.preview.csv").exists()
    custom = tmp_path / "look.xlsx"
    assert CliRunner().invoke(main, ["check", str(sheet), "--text", "x", "--preview", str(custom)]).exit_code == 0
    assert openpyxl.load_workbook(custom).worksheets[0]["D1"].value == "Will text"
    refused = CliRunner().invoke(main, ["check", str(sheet), "--text", "x", "--preview", str(sheet)])
    assert refused.exit_code == 2 and "is the contact sheet" in refused.output


def test_send_writes_the_preview_before_asking_and_names_the_cost(sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "interactive", lambda: True)
    sheet = write_csv(tmp_path / "c.csv", contacts(3))
    result = CliRunner().invoke(main, ["send", str(sheet), "--text", "Hi {{ Name }}", "--price", "0.1"],
                                input="n\n", env=env_for(sandbox, tmp_path))
    assert result.exit_code == 1 and sandbox.state.taken == []
    assert "Send 3 messages (3 segments, est. A$0.30) from property PS1 via 127.0.0.1:<port>? [y/N]: n" in \
        normalise(result.output, tmp_path)
    assert [r["Status"] for r in read_results(tmp_path / "c.preview.csv")] == ["ready"] * 3


def test_max_cost_refuses_before_any_request(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(30))
    over = send(sandbox, tmp_path, sheet, "--text", "Hi {{ Name }}", "--price", "0.1", "--max-cost", "2.50")
    assert over.exit_code == 2 and sandbox.state.taken == []
    assert "the messages would cost A$3.00, over --max-cost A$2.50; nothing was sent" in over.output
    unpriced = send(sandbox, tmp_path, sheet, "--text", "x", "--max-cost", "5")
    assert unpriced.exit_code == 2 and "--max-cost needs prices" in unpriced.output
    assert send(sandbox, tmp_path, sheet, "--text", "x", "--price", "0.1", "--max-cost", "3").exit_code == 0
    assert len(sandbox.state.taken) == 30


def test_a_problem_on_most_rows_is_printed_once_first(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts(40))
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "Hi {{ First_Name }}"])
    assert result.exit_code == 1
    line = result.output.splitlines()[1]
    assert line.startswith("  ! missing-variable (error) on 40 of 40 rows, e.g. row 2: the template uses "
                           "{{ First_Name }} but there is no such column")


def test_results_say_what_was_sent_to_whom_and_when(sandbox, tmp_path):
    when = in_days(2, 9)
    rows = [["Mobile", "Name", "Schedule"], ["0412345677", "Ann", when.strftime("%Y-%m-%d %H:%M")]]
    sheet = write_csv(tmp_path / "c.csv", rows)
    assert send(sandbox, tmp_path, sheet, "--text", "Hi {{ Name }}", "--timezone", "Australia/Sydney").exit_code == 0
    row = read_results(tmp_path / "c.results.csv")[0]
    assert (row["Status"], row["To"], row["Text"], row["Segments"], row["Attempts"]) == (
        "scheduled", "+61412345677", "Hi Ann", "1", "1")
    assert row["Sends at"] == f"{when:%a} {when.day} {when:%b %Y} 09:00 AEDT"


def test_results_and_report_workbooks_carry_a_summary_sheet(sandbox, tmp_path):
    sheet = write_xlsx(tmp_path / "c.xlsx", contacts(3) + [["12345", "Bad", "idx"]])
    result = send(sandbox, tmp_path, sheet, "--text", "Hi {{ Name }}", "--report", tmp_path / "r.xlsx")
    assert result.exit_code == 1
    results = openpyxl.load_workbook(tmp_path / "c.results.xlsx")
    summary = dict(results["Summary"].iter_rows(values_only=True))
    assert (summary["Rows sent"], summary["Rows invalid"], summary["Segments"]) == (3, 1, 3)
    status = results.worksheets[0]["D2"]
    assert status.value == "sent" and status.fill.fgColor.rgb.endswith("C6EFCE")
    report = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert dict(report["Summary"].iter_rows(values_only=True))["Problem: invalid-phone (error)"] == 1
