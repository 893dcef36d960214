"""Replies and the opt-out file: keywords, the file's rules across runs and processes, `batchsms replies`
against a real sandbox, and the next `check` skipping the opted-out number."""

from __future__ import annotations

import csv
import datetime as dt
import json
import multiprocessing
import re
import time

import pytest
from click.testing import CliRunner

from batchsms.cli import main
from batchsms.errors import ConfigError
from batchsms.optouts import (
    Entry,
    Result,
    add_optouts,
    default_optouts_path,
    history_path,
    load_optouts,
)
from batchsms.phones import PhoneBook
from batchsms.replies import OPT_IN, OPT_OUT, classify, near_miss, parse_since, replies_in, reply_of

from .helpers import env_for, write_csv

T0 = 1_795_000_000  # Wed 18 Nov 2026 11:06:40 UTC
A, B, C = "+61412000001", "+61412000002", "+61412000003"


def read_rows(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


# --------------------------------------------------------------------------- keywords


@pytest.mark.parametrize("text", [
    "STOP", "stop", "Stop.", " stop!! ", "STOP ALL", "stop all", "Stop-All", "UNSUBSCRIBE", "Unsubscribe.",
    "cancel", "END", "quit", "OPT OUT", "opt-out", "Opt Out!", "OPTOUT", "optout", "revoke", "ＳＴＯＰ",
    "stop 🛑", "S.T.O.P", "\u200bSTOP\u200b", "stop\n",
])
def test_opt_out_keywords_are_the_whole_message(text):
    assert classify(text) == OPT_OUT


@pytest.mark.parametrize("text", ["START", "start", "Start.", "UNSTOP", "un-stop"])
def test_opt_in_keywords(text):
    assert classify(text) == OPT_IN


@pytest.mark.parametrize("text", ["Stop sending me these", "STOP STOP", "please stop", "Thanks!", "", "   ",
                                  "See you at the end", "stopping by at 3", "Who is this?", "START now"])
def test_other_replies_are_no_keyword(text):
    assert classify(text) is None


@pytest.mark.parametrize(("text", "word"), [
    ("Stop sending me these", "stop"), ("please STOP", "stop"), ("Can I cancel my appointment?", "cancel"),
    ("how do I opt-out", "opt out"), ("remove me from this list", "remove me"), ("Thanks!", None),
    ("STOP", None), ("stopping by at 3", None), ("See you at the end", None),
])
def test_near_misses_name_the_word_for_a_person(text, word):
    assert near_miss(text) == word


def test_reply_of_reads_message_fields_in_any_case_and_skips_outbound():
    book = PhoneBook("AU")
    inbound = {"messageSid": "MR1", "FROM": "0412 000 001", "to": "+61400000001", "text": "Stop.",
               "direction": "Receive", "Status": "Received", "Received": T0}
    reply = reply_of({"Message": inbound}, book, now=T0 + 5)
    assert (reply.number, reply.at, reply.text, reply.sid, reply.keyword) == (A, T0, "Stop.", "MR1", OPT_OUT)
    assert reply_of({**inbound, "Direction": "Transmit", "Status": "Delivered"}, book, T0) is None
    assert reply_of({"Status": "Received", "Text": "hi"}, book, T0) is None  # no From: nobody to act on
    shortcode = reply_of({"From": "TELCO", "Text": "STOP", "Direction": "Receive"}, book, now=T0)
    assert (shortcode.number, shortcode.valid_number, shortcode.at) == ("TELCO", False, T0)
    newest_first = replies_in([{**inbound, "MessageSid": "M1", "Created": T0},
                               {**inbound, "MessageSid": "M2", "Received": T0 + 60},
                               {**inbound, "MessageSid": "M1", "Created": T0}], book, T0 + 100)
    assert [r.sid for r in newest_first] == ["M2", "M1"]
    future = reply_of({**inbound, "Received": T0 + 10**6}, book, now=T0 + 100)
    assert future.at == T0 + 100  # a time from the future would outrank every later reply


def test_parse_since():
    now = T0
    utc = dt.timezone.utc
    assert parse_since("7d", now, utc) == now - 7 * 86400
    assert parse_since("24h", now, utc) == now - 86400
    assert parse_since("30m", now, utc) == now - 1800
    assert parse_since("2026-11-17", now, utc) == dt.datetime(2026, 11, 17, tzinfo=utc).timestamp()
    assert parse_since("2026-11-17T09:00+11:00", now, utc) == dt.datetime(2026, 11, 16, 22, tzinfo=utc).timestamp()
    for bad in ("last week", "7 parsecs", "2027-01-01"):
        with pytest.raises(ConfigError, match="--since"):
            parse_since(bad, now, utc)


# --------------------------------------------------------------------------- the opt-out file


def out(number, at, text="STOP", sid=None):
    return Entry(number, at, text, OPT_OUT, sid)


def opt_in(number, at, text="START", sid=None):
    return Entry(number, at, text, OPT_IN, sid)


def test_stop_variants_land_once_and_start_after_removes(tmp_path):
    path = tmp_path / "optouts.csv"
    done = add_optouts(path, [out(A, T0, "STOP"), out(A, T0 + 5, "stop."), out(B, T0 + 1, "Unsubscribe"),
                              out(A, T0 + 9, "OPT OUT")])
    assert [d.result for d in done] == [Result.ADDED, Result.ADDED, Result.ALREADY, Result.ALREADY]
    assert read_rows(path) == [["Number", "Date", "Reply"], [A, "2026-11-18T11:06:40Z", "STOP"],
                               [B, "2026-11-18T11:06:41Z", "Unsubscribe"]]
    assert path.read_bytes().startswith(b"\xef\xbb\xbfNumber,Date,Reply\r\n")  # Excel reads it as UTF-8
    assert add_optouts(path, [out(B, T0 + 1, "Unsubscribe")])[0].result == Result.ALREADY
    done = add_optouts(path, [opt_in(A, T0 + 20)])
    assert done[0].result == Result.REMOVED
    assert read_rows(path) == [["Number", "Date", "Reply"], [B, "2026-11-18T11:06:41Z", "Unsubscribe"]]
    assert load_optouts(path, "AU") == frozenset({B})


def test_an_opt_in_older_than_the_opt_out_changes_nothing_and_a_tie_keeps_the_opt_out(tmp_path):
    path = tmp_path / "optouts.csv"
    add_optouts(path, [out(A, T0)])
    assert add_optouts(path, [opt_in(A, T0 - 60)])[0].result == Result.SUPERSEDED
    assert add_optouts(path, [opt_in(A, T0)])[0].result == Result.SUPERSEDED
    done = add_optouts(path, [opt_in(B, T0), out(B, T0)])  # the same second, given opt-in last or first
    assert [(d.entry.keyword, d.result) for d in done] == [(OPT_IN, Result.NOT_LISTED), (OPT_OUT, Result.ADDED)]
    assert load_optouts(path, "AU") == frozenset({A, B})


def test_reading_the_same_replies_again_never_brings_back_an_opted_in_number(tmp_path):
    path = tmp_path / "optouts.csv"
    window = [out(A, T0, sid="M1"), opt_in(A, T0 + 60, sid="M2")]
    assert [d.result for d in add_optouts(path, window)] == [Result.ADDED, Result.REMOVED]
    again = add_optouts(path, window)  # `replies --since 7d` run twice over the same week
    assert [d.result for d in again] == [Result.SUPERSEDED, Result.NOT_LISTED]
    assert add_optouts(path, window[:1])[0].result == Result.SUPERSEDED  # the STOP alone, later
    assert load_optouts(path, "AU") == frozenset()
    assert add_optouts(path, [out(A, T0 + 120, "STOP again")])[0].result == Result.ADDED  # a new STOP counts
    assert load_optouts(path, "AU") == frozenset({A})
    history = read_rows(history_path(path))
    assert history[0] == ["Date", "Number", "Keyword", "Result", "Reply", "MessageSid"]
    assert [r[2:4] for r in history[1:]] == [["opt-out", "added"], ["opt-in", "removed"], ["opt-out", "added"]]


def test_a_row_a_person_deleted_is_not_brought_back_by_the_same_stop(tmp_path):
    path = tmp_path / "optouts.csv"
    add_optouts(path, [out(A, T0), out(B, T0)])
    lines = path.read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join(line for line in lines if b"+61412000001" not in line))
    assert add_optouts(path, [out(A, T0)])[0].result == Result.SUPERSEDED
    assert load_optouts(path, "AU") == frozenset({B})


def test_a_number_typed_in_by_hand_is_not_removed_by_start(tmp_path):
    path = tmp_path / "optouts.csv"
    path.write_text("Number,Date,Reply\r\n0412 000 001,,asked on the phone\r\n", encoding="utf-8")
    assert add_optouts(path, [opt_in(A, T0)])[0].result == Result.KEPT
    assert add_optouts(path, [out(A, T0 + 1)])[0].result == Result.ALREADY
    assert load_optouts(path, "AU") == frozenset({A})


def test_a_removal_keeps_every_other_line_byte_for_byte(tmp_path):
    path = tmp_path / "optouts.csv"
    original = ("Number,Date,Reply,Note\n"
                "+61412000002,2026-11-01T00:00:00Z,STOP,\"from the old system,\nkept as is\"\n"
                "+61412000001,2026-11-02T00:00:00Z,STOP,\n"
                "0412 000 003,27/11/2026 9:00,stop, typed by hand \n")
    path.write_text(original, encoding="utf-8")
    path.chmod(0o640)
    add_optouts(path, [opt_in(A, T0)])
    assert path.read_text(encoding="utf-8") == original.replace("+61412000001,2026-11-02T00:00:00Z,STOP,\n", "")
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optouts.csv", "optouts.csv.lock", "optouts.history.csv"]


def test_reply_text_is_one_line_and_formula_safe(tmp_path):
    path = tmp_path / "optouts.csv"
    add_optouts(path, [out(A, T0, "=HYPERLINK(\"http://x\")\r\n"), out(B, T0, "STOP\x1b[2J")])
    rows = read_rows(path)
    assert rows[1] == [A, "2026-11-18T11:06:40Z", "'=HYPERLINK(\"http://x\")"]
    assert rows[2] == [B, "2026-11-18T11:06:40Z", "STOP?[2J"]


def test_appending_to_a_file_excel_saved_keeps_its_encoding_delimiter_and_rows(tmp_path):
    path = tmp_path / "optouts.csv"
    original = "Number;Date;Reply;Name\r\n61412000002;2026-11-01T00:00:00Z;STOP;Zoë\r\n".encode("cp1252")
    path.write_bytes(original)
    add_optouts(path, [out(A, T0, "Stop ✋ José")])
    data = path.read_bytes()
    assert data.startswith(original)
    assert data[len(original):].decode("cp1252") == "+61412000001;2026-11-18T11:06:40Z;Stop ? José\r\n"
    assert load_optouts(path, "AU") == frozenset({A, B})
    assert add_optouts(path, [out(B, T0)])[0].result == Result.ALREADY  # Excel dropped the +: still the number


def test_digits_without_plus_from_another_country_still_suppress(tmp_path):
    path = write_csv(tmp_path / "list.csv", [["Mobile"], ["64211234567"], ["0412000001"], ["n/a"]])
    assert load_optouts(path, "AU") == frozenset({"+64211234567", A})


def test_missing_files_and_workbooks(tmp_path):
    assert load_optouts(tmp_path / "none.csv", "AU", missing_ok=True) == frozenset()
    with pytest.raises(ConfigError, match=r"--optouts .*none.csv: no such file"):
        load_optouts(tmp_path / "none.csv", "AU", what="--optouts")
    with pytest.raises(ConfigError, match="must be a .csv file"):
        add_optouts(tmp_path / "list.xlsx", [out(A, T0)])
    with pytest.raises(ConfigError, match="does not exist"):
        add_optouts(tmp_path / "missing" / "optouts.csv", [out(A, T0)])


def test_default_location_is_the_config_key_else_the_state_folder(tmp_path):
    config = tmp_path / "config.ini"
    config.write_text("[batchsms]\ntimezone = UTC\n", encoding="utf-8")
    env = {"BATCHSMS_CONFIG": str(config), "BATCHSMS_STATE": str(tmp_path / "state")}
    assert default_optouts_path(env=env) == tmp_path / "state" / "optouts.csv"
    config.write_text("[batchsms]\noptouts = lists/optouts.csv\n", encoding="utf-8")
    assert default_optouts_path(env=env) == tmp_path / "lists" / "optouts.csv"


def _add_many(path, numbers, start):
    for i, number in enumerate(numbers):
        add_optouts(path, [out(number, start + i)])


def test_two_processes_adding_at_once_lose_no_line(tmp_path):
    path = tmp_path / "optouts.csv"
    first = [f"+614120{i:05d}" for i in range(40)]
    second = [f"+614121{i:05d}" for i in range(40)]
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_add_many, args=(path, numbers, T0)) for numbers in (first, second)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(20)
    assert [w.exitcode for w in workers] == [0, 0]
    rows = read_rows(path)
    assert rows[0] == ["Number", "Date", "Reply"]
    assert sorted(r[0] for r in rows[1:]) == sorted(first + second)
    assert len(read_rows(history_path(path))) == 81


# --------------------------------------------------------------------------- `batchsms replies` on a sandbox


def run_replies(sandbox, tmp_path, *args):
    env = {**env_for(sandbox, tmp_path), "BATCHSMS_STATE": str(tmp_path / "state")}
    return CliRunner().invoke(main, ["replies", *args], env=env, catch_exceptions=False)


def test_replies_lists_inbound_messages_and_keeps_the_opt_out_file(sandbox, tmp_path):
    now = time.time()
    optouts = tmp_path / "optouts.csv"
    for number, text, ago in [(A, "STOP", 300), (A, "stop.", 200), (B, "Stop sending me these", 100),
                              (C, "Unsubscribe", 90), (B, "Thanks\x1b[31m!", 80)]:
        sandbox.add_reply(number, text, to="+61400000009", property_sid="PS1", at=now - ago)
    sandbox.add_reply(A, "STOP", to="+61400000009", property_sid="PS1", at=now - 30 * 86400)  # before --since
    sandbox.add_reply(C, "STOP", to="+61400000009", property_sid="OTHER", at=now - 60)  # another property
    result = run_replies(sandbox, tmp_path, "--optouts", optouts, "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert [(i["number"], i["text"], i["done"]) for i in found["items"]] == [
        (B, "Thanks?[31m!", "—"), (C, "Unsubscribe", "opted out"), (B, "Stop sending me these", "—"),
        (A, "stop.", "already opted out"), (A, "STOP", "opted out")]
    assert {k: found[k] for k in ("replies", "opt_outs", "new_opt_outs", "opt_ins", "near_misses", "complete")} == {
        "replies": 5, "opt_outs": 3, "new_opt_outs": 2, "opt_ins": 0, "near_misses": 1, "complete": True}
    assert [r[0] for r in read_rows(optouts)] == ["Number", A, C]

    sandbox.add_reply(A, "Start", to="+61400000009", property_sid="PS1", at=now - 10)
    result = run_replies(sandbox, tmp_path, "--optouts", optouts, "--since", "1h", "--timezone", "UTC")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Replies since ") and lines[0].endswith(" UTC to property PS1:")
    assert [re.split(r"\s{2,}", line.strip())[1:] for line in lines[1:7]] == [
        [A, "opted in", "Start"], [B, "—", "Thanks?[31m!"], [C, "already opted out", "Unsubscribe"],
        [B, "—", "Stop sending me these"], [A, "already opted out", "stop."], [A, "already opted out", "STOP"]]
    assert lines[7].startswith("Replies that mention stop but are not the keyword")
    assert lines[8].endswith(f"{B}  mentions 'stop': Stop sending me these")
    assert lines[9] == "6 replies, 3 opt-outs (0 new), 1 opt-in."
    assert [r[0] for r in read_rows(optouts)] == ["Number", C]


def test_the_next_check_skips_the_opted_out_number(sandbox, tmp_path):
    optouts = tmp_path / "optouts.csv"
    sandbox.add_reply(B, "STOP ALL", to="+61400000009", property_sid="PS1", at=time.time() - 5)
    assert run_replies(sandbox, tmp_path, "--optouts", optouts).exit_code == 0
    sheet = write_csv(tmp_path / "contacts.csv", [["Mobile", "Name"], ["0412 000 001", "Ann"], ["0412000002", "Bob"]])
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "Hi {{ Name }}", "--suppress", str(optouts),
                                       "--no-preview", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = read_rows(tmp_path / "contacts.report.csv")
    assert [r[:5] for r in report[1:]] == [["3", "Mobile", "+61412000002", "warning", "suppressed"]]
    assert json.loads(result.output)["rows_skipped"] == 1


def test_replies_dry_run_changes_nothing_and_a_bad_since_is_one_line(sandbox, tmp_path):
    sandbox.add_reply(A, "STOP", to="+61400000009", property_sid="PS1", at=time.time() - 5)
    result = run_replies(sandbox, tmp_path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == ["1 reply, 1 opt-out (0 new), 0 opt-ins.",
                                               "Dry run: the opt-out file was not changed."]
    assert not (tmp_path / "state" / "optouts.csv").exists()
    result = run_replies(sandbox, tmp_path, "--since", "last week")
    assert result.exit_code == 2
    assert result.output.startswith("batchsms: error: --since 'last week': write a span such as 30m")
