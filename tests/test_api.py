"""The public Python API, used as a notebook or a script would: no click, no printing."""

import re

import pandas as pd
import pytest
from click.testing import CliRunner

import batchsms
from batchsms.cli import main
from batchsms.errors import AuthError, ConfigError

from .helpers import write_csv


def test_check_frame_gives_verdicts_and_problems_as_dataframes():
    frame = pd.DataFrame({"Mobile": ["0412 345 677", "12345", None], "First Name": ["Ann", "Bo", "Cy"]},
                         index=["a", "b", "c"])
    checked = batchsms.check_frame(frame, batchsms.Options(text="Hi {{ First_Name }}"))
    assert list(checked.rows.index) == ["a", "b", "c"]
    assert checked.rows[["Status", "To", "Text"]].values.tolist() == [
        ["valid", "+61412345677", "Hi Ann"], ["invalid", "", ""], ["invalid", "", ""]]
    assert checked.issues[["Row", "Column", "Severity", "Code"]].values.tolist() == [
        [3, "Mobile", "error", "invalid-phone"], [4, "Mobile", "error", "missing-recipient"]]
    assert not checked.report.ok


def test_check_sheet_reads_a_file_and_keeps_the_sheet(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Phone", "Name"], ["0412345677", "Ann"]])
    report = batchsms.check_sheet(path, batchsms.Options(text="Hi {{ Name }}", defaults={"From": "CityDental"}))
    assert report.ok and report.sheet.path == path
    assert report.results[0].body == {"To": "+61412345677", "From": "CityDental", "Text": "Hi Ann"}


def test_write_outputs_writes_the_report_and_the_preview_as_the_check_command_does(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Phone", "Name"], ["0412345677", "Ann"], ["12345", "Bo"]])
    options = batchsms.Options(text="Hi {{ Name }}", defaults={"From": "CityDental"})
    report = batchsms.check_sheet(path, options)
    preview, written = batchsms.write_outputs(report, options, report_path=tmp_path / "r.csv",
                                              preview_path=tmp_path / "p.csv")
    assert written == tmp_path / "p.csv" and preview.report is report
    runner = CliRunner()
    assert runner.invoke(main, ["check", str(path), "--text", "Hi {{ Name }}", "--from", "CityDental",
                                "--report", str(tmp_path / "cli.r.csv"), "--preview", str(tmp_path / "cli.p.csv")]
                         ).exit_code == 1
    for mine, cli in (("r.csv", "cli.r.csv"), ("p.csv", "cli.p.csv")):
        assert (tmp_path / mine).read_bytes() == (tmp_path / cli).read_bytes()
    assert b"invalid-phone" in (tmp_path / "r.csv").read_bytes()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert batchsms.write_outputs(report, options)[1] is None  # neither path: the preview is only made
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_write_outputs_never_writes_over_what_the_check_read(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["Phone", "Name"], ["0412345677", "Ann"], ["12345", "Bo"]])
    template = tmp_path / "t.txt"
    template.write_text("Hi {{ Name }}", encoding="utf-8")
    before = sheet.read_bytes(), template.read_bytes()
    options = batchsms.Options(template=template, defaults={"From": "CityDental"})
    report = batchsms.check_sheet(sheet, options)
    for paths, says in (({"report_path": sheet}, f"the report {sheet}: is the contact sheet"),
                        ({"preview_path": sheet}, f"the preview {sheet}: is the contact sheet"),
                        ({"preview_path": template}, f"the preview {template}: is the --template file"),
                        ({"report_path": tmp_path / "r.txt", "preview_path": tmp_path / "p.csv"},
                         "the report must end in .csv, .xlsx or .json")):
        with pytest.raises(ConfigError, match=re.escape(says)):
            batchsms.write_outputs(report, options, **paths)
    assert (sheet.read_bytes(), template.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "t.txt"]  # refused before writing anything


def test_options_are_checked_as_options(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Phone"], ["0412345677"]])
    with pytest.raises(ConfigError, match="not API fields"):
        batchsms.check_sheet(path, batchsms.Options(text="x", defaults={"Sender": "x"}))
    with pytest.raises(ConfigError, match="not both"):
        batchsms.check_sheet(path, batchsms.Options(text="x", template=tmp_path / "t.txt"))


def test_send_sheet_sends_once_and_asks_first(sandbox, tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Phone", "Name"], ["0412345677", "Ann"], ["0412345679", "Bo"]])
    target = batchsms.Target(sandbox.url, sandbox.account_sid, sandbox.auth_token, "PS1")
    options = batchsms.Options(text="Hi {{ Name }}")
    seen = []
    declined = batchsms.send_sheet(path, options, target, batchsms.SendOptions(progress=False),
                                   approve=lambda p: seen.append(len(p.plan.jobs)) or False)
    assert seen == [2] and not declined.approved and sandbox.state.taken == []
    outcome = batchsms.send_sheet(path, options, target, batchsms.SendOptions(progress=False))
    assert outcome.ok and outcome.stats.counts[batchsms.Status.SENT] == 2
    assert sorted(b["Text"] for b in sandbox.state.taken) == ["Hi Ann", "Hi Bo"]
    again = batchsms.send_sheet(path, options, target, batchsms.SendOptions(progress=False))
    assert again.ok and again.sendplan.plan.done == 2 and len(sandbox.state.taken) == 2
    assert outcome.results.read_text(encoding="utf-8-sig").splitlines()[1].startswith("0412345677,Ann,sent,")


def test_send_sheet_raises_when_the_credentials_are_refused(sandbox, tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Phone"], ["0412345677"]])
    target = batchsms.Target(sandbox.url, sandbox.account_sid, "wrong", "PS1")
    with pytest.raises(AuthError, match="refused the credentials"):
        batchsms.send_sheet(path, batchsms.Options(text="x"), target, batchsms.SendOptions(progress=False))
    assert (tmp_path / "c.results.csv").exists()
