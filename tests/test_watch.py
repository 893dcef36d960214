"""The drop folder (issue #11 (b)): each new file sent exactly once, known by its content, crash-safe,
one runner at a time; against the real sandbox, with real files."""

import os
import time

import pytest
from click.testing import CliRunner

from batchsms import Options
from batchsms.api import SendOptions, Target
from batchsms.cli import main
from batchsms.watch import DropFolder, WatchBusy, file_digest, run_once

from .helpers import contacts, drop, env_for, read_results, taken_ids

TEXT = "Hi {{ Name }}, see you tomorrow"


def target(server):
    return Target(server.url, server.account_sid, server.auth_token, "PS1")


def once(inbox, server, **kwargs):
    return run_once(inbox, Options(text=TEXT), target(server), SendOptions(progress=False), settle=5.0, **kwargs)


def folders(inbox, kind):
    return sorted(p.name for p in (inbox / kind).iterdir()) if (inbox / kind).exists() else []


def test_a_new_file_is_sent_once_and_filed_with_its_outputs(tmp_path, sandbox):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox / "reminders.csv", contacts(3))
    [batch] = once(inbox, sandbox)
    assert (batch.state, batch.ok) == ("done", True)
    assert sorted(taken_ids(sandbox)) == ["id0", "id1", "id2"]
    day = time.strftime("%Y-%m-%d")
    assert folders(inbox, "done") == [f"{day}-reminders.csv"]
    place = inbox / "done" / f"{day}-reminders.csv"
    assert sorted(p.name for p in place.iterdir()) == [
        "reminders.csv", "reminders.preview.csv", "reminders.report.csv", "reminders.results.csv",
        "reminders.results.csv.journal", "reminders.results.csv.journal.lock"]
    assert [r["Status"] for r in read_results(place / "reminders.results.csv")] == ["sent"] * 3
    assert not (inbox / "reminders.csv").exists()
    log = (inbox / "batchsms.log").read_text(encoding="utf-8")
    assert log.endswith(f" reminders.csv: 3 rows, 3 sent -> done/{day}-reminders.csv\n")
    assert once(inbox, sandbox) == []  # nothing new: nothing sent
    assert len(taken_ids(sandbox)) == 3


def test_the_same_file_dropped_again_sends_nothing_and_says_so(tmp_path, sandbox):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox / "reminders.csv", contacts(2))
    once(inbox, sandbox)
    drop(inbox / "copy of reminders.csv", contacts(2))  # the same bytes under another name
    [batch] = once(inbox, sandbox)
    assert batch.state == "duplicate"
    day = time.strftime("%Y-%m-%d")
    assert batch.line == (f"copy of reminders.csv: the same file as reminders.csv, already done "
                          f"(done/{day}-reminders.csv): nothing sent -> duplicates/{day}-copy of reminders.csv")
    assert len(taken_ids(sandbox)) == 2


def test_a_new_file_under_yesterdays_name_is_a_new_batch(tmp_path, sandbox):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox / "reminders.csv", contacts(2))
    once(inbox, sandbox)
    drop(inbox / "reminders.csv", contacts(2, start=10))
    [batch] = once(inbox, sandbox)
    assert batch.state == "done"
    assert sorted(taken_ids(sandbox)) == ["id0", "id1", "id10", "id11"]
    day = time.strftime("%Y-%m-%d")
    assert folders(inbox, "done") == [f"{day}-reminders.csv", f"{day}-reminders.csv-2"]


def test_a_file_still_being_written_is_left_alone(tmp_path, sandbox):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox / "reminders.csv", contacts(2), age=1.0)  # changed a second ago
    (inbox / "~$reminders.xlsx").write_bytes(b"Excel's lock file")
    (inbox / "notes.docx").write_bytes(b"not a sheet")
    assert once(inbox, sandbox) == []
    assert taken_ids(sandbox) == []
    assert sorted(p.name for p in inbox.iterdir() if p.name != ".batchsms") == [
        "notes.docx", "reminders.csv", "~$reminders.xlsx"]


def test_a_sheet_with_errors_goes_to_failed_unsent_unless_send_valid(tmp_path, sandbox):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = [*contacts(2), ["not a number", "Bad", "idX"]]
    drop(inbox / "a.csv", rows)
    [batch] = once(inbox, sandbox)
    assert (batch.state, batch.ok) == ("failed", False)
    assert taken_ids(sandbox) == []
    day = time.strftime("%Y-%m-%d")
    place = inbox / "failed" / f"{day}-a.csv"
    assert {"a.csv", "a.preview.csv", "a.report.csv"} <= {p.name for p in place.iterdir()}
    assert batch.line.endswith("nothing sent: the check found errors (see the preview and report; --send-valid "
                               f"sends the valid rows) -> failed/{day}-a.csv")
    drop(inbox / "b.csv", [*contacts(2, start=5), ["not a number", "Bad", "idY"]])
    [batch] = once(inbox, sandbox, send_valid=True)
    assert batch.state == "done"
    assert sorted(taken_ids(sandbox)) == ["id5", "id6"]


def test_a_batch_a_crash_left_half_done_is_finished_without_sending_twice(tmp_path, sandbox):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = drop(inbox / "r.csv", contacts(4))
    folder = DropFolder(inbox)
    place = folder.place("processing", "r.csv")
    place.mkdir()
    folder.record(file_digest(path), "r.csv", place, "processing")
    os.replace(path, place / "r.csv")
    # the dead run had sent two rows: send them through the same journal (results beside the sheet)
    from batchsms.api import send_sheet
    send_sheet(place / "r.csv", Options(text=TEXT), target(sandbox), SendOptions(progress=False, limit=2))
    assert sorted(taken_ids(sandbox)) == ["id0", "id1"]
    [batch] = once(inbox, sandbox)
    assert batch.state == "done"
    assert sorted(taken_ids(sandbox)) == ["id0", "id1", "id2", "id3"]  # the rest, once
    assert folders(inbox, "processing") == []


def test_one_runner_at_a_time(tmp_path, sandbox):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox / "r.csv", contacts(1))
    with DropFolder(inbox).locked():
        with pytest.raises(WatchBusy, match="another batchsms watch is working on this folder"):
            once(inbox, sandbox)
        result = CliRunner().invoke(main, ["watch", str(inbox), "--text", TEXT, "--yes", "--once"],
                                    env=env_for(sandbox, tmp_path))
        assert result.exit_code == 2
    assert taken_ids(sandbox) == []


def test_the_cli_for_cron(tmp_path, sandbox):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox / "r.csv", contacts(2))
    runner = CliRunner()
    result = runner.invoke(main, ["watch", str(inbox), "--text", TEXT, "--once"], env=env_for(sandbox, tmp_path))
    assert result.exit_code == 2
    assert "watch sends without asking: give --yes" in result.output
    result = runner.invoke(main, ["watch", str(inbox), "--text", TEXT, "--yes", "--once"],
                           env=env_for(sandbox, tmp_path))
    assert result.exit_code == 0, result.output
    day = time.strftime("%Y-%m-%d")
    assert result.output == f"r.csv: 2 rows, 2 sent -> done/{day}-r.csv\n"
    result = runner.invoke(main, ["watch", str(inbox), "--text", TEXT, "--yes", "--once"],
                           env=env_for(sandbox, tmp_path))
    assert (result.exit_code, result.output) == (0, f"{inbox}: nothing new\n")
    drop(inbox / "bad.csv", [["Mobile", "Name"], ["123", "x"]])
    result = runner.invoke(main, ["watch", str(inbox), "--text", TEXT, "--yes", "--once"],
                           env=env_for(sandbox, tmp_path))
    assert result.exit_code == 1
