"""``batchsms check`` through click's CliRunner: exact exit codes, report rows and error lines."""

import csv
import gc
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from batchsms.cli import main

from .helpers import write_csv, write_xlsx

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def read_report(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def test_clean_sheet_exits_0_with_an_empty_report(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "Name"], ["0412 345 677", "Ann"]])
    result = invoke("check", sheet, "--text", "Hi {{ Name }}")
    assert result.exit_code == 0, result.output
    assert read_report(tmp_path / "c.report.csv") == [["Row", "Column", "Value", "Severity", "Code", "Message"]]
    assert "rows valid" in result.output


def test_errors_exit_1_and_are_listed(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "Name"], ["0412 345 677", "Ann"], ["12345", "Bob"],
                                           ["=cmd|'/c calc'!A1", "Eve"]])
    result = invoke("check", sheet, "--text", "Hi {{ Name }}", "--report", tmp_path / "r.csv")
    assert result.exit_code == 1
    rows = read_report(tmp_path / "r.csv")
    assert [r[:5] for r in rows[1:]] == [
        ["3", "Mobile", "12345", "error", "invalid-phone"],
        ["4", "Mobile", "'=cmd|'/c calc'!A1", "error", "invalid-phone"],  # formula kept inert
    ]


def test_json_summary_and_json_report(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["To", "Text"], ["0412345677", "hi"], ["0412345677", "hi"]])
    result = invoke("check", sheet, "--json", "--report", tmp_path / "r.json")
    assert result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["rows_read"] == 2 and summary["rows_with_warnings"] == 1
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["issues"][0]["code"] == "duplicate-message"


def test_xlsx_report_keeps_formula_like_values_as_text(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["To", "Text"], ["=1+2", "hi"]])
    invoke("check", sheet, "--report", tmp_path / "r.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "r.xlsx").active
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[1][:5] == [2, "To", "=1+2", "error", "invalid-phone"]  # Row is a number, sorts as one
    assert ws["C2"].data_type == "s"


def test_xlsx_sheet_with_numeric_phones_and_options(tmp_path):
    sheet = write_xlsx(tmp_path / "c.xlsx", [["Campaign"], ["Mobile", "Name"], [61412345677, "Ann"], [412345679, "Bo"]])
    result = invoke("check", sheet, "--header-row", "2", "--text", "Hi {{ Name }}", "--from", "CityDental", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows_valid"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "--text", "x"], "missing.csv: no such file"),
        (["{sheet}", "--template", "none.txt"], "none.txt: no such template file"),
        (["{sheet}", "--text", "{{ x"], "<--text>:1: template syntax error"),
        (["{sheet}", "--text", "x", "--country", "XX"], "--country: unknown country 'XX'"),
        (["{sheet}", "--text", "x", "--timezone", "Mars/Base"], "--timezone Mars/Base: unknown time zone"),
        (["{sheet}", "--text", "x", "--report", "r.txt"], "must end in .csv, .xlsx or .json"),
        (["{sheet}", "--text", "x", "--sheet", "S"], "--sheet applies to workbooks"),
        (["{xlsx}", "--text", "x", "--sheet", "S"], "no sheet named 'S'; the sheets are 'Data'"),
        (["{sheet}", "--text", "x", "--column", "To=Nope"], "has no column 'Nope'"),
    ],
)
def test_run_cannot_start_exits_2_with_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "c.csv", [["To"], ["0412345677"]])
    write_xlsx(tmp_path / "c.xlsx", [["To"], ["0412345677"]], title="Data")
    args = [a.replace("{sheet}", "c.csv").replace("{xlsx}", "c.xlsx") for a in args]
    result = CliRunner().invoke(main, ["check", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_option_value_exits_2(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["To"], ["0412345677"]])
    result = CliRunner().invoke(main, ["check", str(sheet), "--column", "To"])
    assert result.exit_code == 2 and "FIELD=HEADER" in result.output


def test_samples_check_as_the_readme_says(tmp_path):
    result = invoke("check", ROOT / "samples" / "contacts.xlsx", "--template",
                    ROOT / "templates" / "appointment_reminder.txt", "--report", tmp_path / "r.csv", "--json")
    assert result.exit_code == 1  # the samples hold deliberately broken rows
    summary = json.loads(result.output)
    assert summary["rows_read"] == 38 and summary["rows_with_errors"] == 4  # the landline is an error too
    codes = {r[4] for r in read_report(tmp_path / "r.csv")[1:]}
    assert codes == {"missing-recipient", "invalid-phone", "not-mobile", "duplicate-recipient"}


def check_as_program(sheet: Path, text: str, hook: str) -> subprocess.CompletedProcess:
    """``batchsms check SHEET --text TEXT --json`` as the program runs it (``cli.run`` in a fresh interpreter),
    after ``hook``, Python run with ``gc``, ``os``, ``sys`` and ``cli`` imported, has patched what the test watches."""
    code = (f"import gc, os, sys\nfrom batchsms import cli\n{hook}\n"
            f"sys.argv = ['batchsms', 'check', {str(sheet)!r}, '--text', {text!r}, '--json']; cli.run()")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_collector_is_off_for_the_program_and_back_on_for_a_python_caller(tmp_path):
    """`batchsms check` runs without the cyclic garbage collector (its passes over a million cells found
    nothing and cost 0.3 s). As the program it stays off to the end, since the process ends there; a
    Python caller (here CliRunner) has it back on when the command returns, whatever the exit code."""
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "Name"], ["0412 345 677", "Ann"], ["12345", "Bob"]])
    assert gc.isenabled()
    assert invoke("check", sheet, "--text", "Hi {{ Name }}").exit_code == 1
    assert gc.isenabled()
    done = check_as_program(sheet, "Hi {{ Name }}", (  # asked as the process leaves, after the command returned
        "def noted(code):\n"
        "    sys.stdout.flush(); print('collector', gc.isenabled(), file=sys.stderr, flush=True); os._exit(code)\n"
        "cli._leave = noted"))
    assert done.returncode == 1, done.stderr
    assert done.stderr == "collector False\n"
    assert json.loads(done.stdout)["rows_with_errors"] == 1


def test_a_check_loads_neither_the_http_stack_nor_the_other_commands(tmp_path):
    """A check sends nothing: requests and urllib3 (~0.06 s to import) are not loaded, nor the commands kept in
    modules of their own (due, replies, status, summary, watch), imported when named or listed; nor (when it
    writes no workbook) xml.sax.saxutils, which imports urllib.request, http.client and ssl (~0.02 s)."""
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "Name"], ["0412 345 677", "Ann"]])
    done = check_as_program(sheet, "Hi", (
        "def loaded():\n"
        "    print(sorted(m for m in sys.modules if m.startswith(('batchsms.cli_', 'batchsms.client'))\n"
        "                 or m.split('.')[0] in ('requests', 'urllib3', 'http', 'ssl')\n"
        "                 or m in ('xml.sax.saxutils', 'urllib.request')), file=sys.stderr)\n"
        "cli._leave = lambda code: (loaded(), os._exit(code))"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == "[]\n"
    for name in ("cancel", "due", "receive", "replies", "status", "summary", "watch"):
        result = invoke(name, "--help")
        assert result.exit_code == 0 and result.output.startswith(f"Usage: main {name} "), (name, result.output)
    listed = invoke("--help").output
    assert all(f"\n  {name} " in listed for name in ("cancel", "check", "due", "status", "watch"))


@pytest.mark.parametrize(("typed", "meant"), [("stauts", "status"), ("recieve", "receive"), ("sumary", "summary")])
def test_a_mistyped_command_kept_elsewhere_is_still_told_what_was_meant(typed, meant):
    """click suggests from the commands it has; those kept in modules of their own are listed too, without
    importing them. A fresh interpreter: in this one another test may have imported the command's module."""
    done = subprocess.run([sys.executable, "-m", "batchsms", typed], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"Error: No such command '{typed}'. Did you mean '{meant}'?" in done.stderr, done.stderr
    module = subprocess.run([sys.executable, "-m", "batchsms.cli", meant, "--help"], capture_output=True, text=True,
                            timeout=30)  # the module run as a script: the same commands
    assert module.returncode == 0 and module.stdout.startswith(f"Usage: python -m batchsms.cli {meant} "), (
        module.stdout + module.stderr)
