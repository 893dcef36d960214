"""Quiet hours in the recipient's time and late rows, through the check (issue #11): AU, NZ and US numbers
across their daylight-saving changes, the Timezone column, --late, and a re-run at another hour."""

import datetime as dt
import time

import pytest
from click.testing import CliRunner

from batchsms import Options, check_sheet
from batchsms.api import SendOptions, Target, send_sheet
from batchsms.cli import main

from .helpers import taken_ids, write_csv

UTC = dt.timezone.utc


def utc(*args):
    return int(dt.datetime(*args, tzinfo=UTC).timestamp())


def checked(tmp_path, rows, header=("Phone", "Name", "Timezone", "Schedule"), **options):
    path = write_csv(tmp_path / "c.csv", [list(header), *rows])
    options.setdefault("text", "Hi {{ Name }}")
    return check_sheet(path, Options(**options)).results


@pytest.mark.parametrize(("number", "zone_cell", "written", "run_zone", "now", "sends"), [
    # Sydney springs forward on Sun 4 Oct 2026 (02:00 AEST -> 03:00 AEDT): 01:00 AEST is quiet, 08:00 AEDT is +11
    ("0412 555 120", "Australia/Sydney", "2026-10-04 01:00", "Australia/Sydney", utc(2026, 10, 1),
     utc(2026, 10, 3, 21)),
    # ... and falls back on Sun 5 Apr 2026 (03:00 AEDT -> 02:00 AEST): 08:00 AEST is +10
    ("0412 555 120", "Australia/Sydney", "2026-04-05 06:00", "Australia/Sydney", utc(2026, 4, 1),
     utc(2026, 4, 4, 22)),
    # New Zealand springs forward on Sun 27 Sep 2026: 06:00 NZDT is quiet; 08:00 NZDT (+13) is 08:45 on the Chathams
    ("+64 21 825 0671", "", "2026-09-27 06:00", "Pacific/Auckland", utc(2026, 9, 20), utc(2026, 9, 26, 19)),
    # New York falls back on Sun 1 Nov 2026 (02:00 EDT -> 01:00 EST): 08:00 EST is -5
    ("+1 212 555 0143", "", "2026-11-01 06:00", "America/New_York", utc(2026, 10, 28), utc(2026, 11, 1, 13)),
    # ... and springs forward on Sun 8 Mar 2026: 08:00 EDT is -4
    ("+1 212 555 0143", "", "2026-03-08 06:00", "America/New_York", utc(2026, 3, 1), utc(2026, 3, 8, 12)),
])
def test_quiet_hours_move_to_the_next_allowed_local_time_across_clock_changes(
        tmp_path, number, zone_cell, written, run_zone, now, sends):
    [r] = checked(tmp_path, [[number, "Ann", zone_cell, written]], timezone=run_zone, now=now,
                  quiet_hours="21:00-08:00")
    assert str(r.status) == "valid"
    assert r.body["Schedule"] == sends
    assert [i.code for i in r.issues] == ["quiet-hours-moved"]


def test_an_australian_mobile_waits_for_perth(tmp_path):
    # 07:30 in Sydney (AEDT) is 04:30 in Perth: it goes at 08:00 AWST, 11:00 AEDT
    [r] = checked(tmp_path, [["0412 555 120", "Ann", "", "2026-12-01 07:30"]], timezone="Australia/Sydney",
                  now=utc(2026, 11, 27), quiet_hours="21:00-08:00")
    assert r.body["Schedule"] == utc(2026, 12, 1, 0)
    assert r.issues[0].message == (
        "Tue 1 Dec 2026 07:30 AEDT is Tue 04:30 AWST in Australia/Perth, inside the quiet hours 21:00-08:00 there; "
        "moved to Tue 1 Dec 2026 11:00 AEDT (Tue 08:00 AWST there)")
    assert (r.issues[0].column, r.issues[0].value) == ("Schedule", "2026-12-01 07:30")


def test_a_time_allowed_everywhere_is_left_alone(tmp_path):
    [r] = checked(tmp_path, [["0412 555 120", "Ann", "", "2026-12-01 12:00"]], timezone="Australia/Sydney",
                  now=utc(2026, 11, 27), quiet_hours="21:00-08:00")
    assert (r.body["Schedule"], r.issues) == (utc(2026, 12, 1, 1), [])


def test_a_row_that_would_go_now_in_quiet_hours_becomes_scheduled(tmp_path):
    now = utc(2026, 11, 27, 12)  # 23:00 in Sydney
    [r] = checked(tmp_path, [["0412 555 120", "Ann", "Australia/Sydney", ""]], timezone="Australia/Sydney",
                  now=now, quiet_hours="21:00-08:00")
    assert r.body["Schedule"] == utc(2026, 11, 27, 21)  # 08:00 AEDT
    assert r.identity == {"To": "+61412555120", "Text": "Hi Ann"}
    assert (r.issues[0].column, r.issues[0].value) == ("Schedule", "")


@pytest.mark.parametrize(("policy", "status", "code"), [("skip", "skipped", "quiet-hours-skipped"),
                                                        ("error", "invalid", "quiet-hours")])
def test_the_policy_skips_or_flags_instead(tmp_path, policy, status, code):
    [r] = checked(tmp_path, [["0412 555 120", "Ann", "Australia/Sydney", "2026-12-01 07:30"]],
                  timezone="Australia/Sydney", now=utc(2026, 11, 27), quiet_hours="21:00-08:00", quiet_policy=policy)
    assert (str(r.status), [i.code for i in r.issues]) == (status, [code])


def test_quiet_days(tmp_path):
    # Sun 29 Nov 2026 10:00 in Sydney, Sundays quiet: Monday 08:00
    [r] = checked(tmp_path, [["0412 555 120", "Ann", "Australia/Sydney", "2026-11-29 10:00"]],
                  timezone="Australia/Sydney", now=utc(2026, 11, 27), quiet_hours="21:00-08:00", quiet_days="Sun")
    assert r.body["Schedule"] == utc(2026, 11, 29, 21)


def test_us_numbers_keep_the_tcpa_hours_on_a_marketing_run(tmp_path):
    rows = [["+1 212 555 0143", "Ann", "", "2026-11-01 06:00"], ["0412 555 120", "Bo", "", "2026-11-01 06:00"]]
    us, au = checked(tmp_path, rows, timezone="America/New_York", now=utc(2026, 10, 28), marketing=True,
                     text="Sale! Reply STOP to opt out")
    assert us.body["Schedule"] == utc(2026, 11, 1, 13)  # 08:00 EST
    assert au.body["Schedule"] == utc(2026, 11, 1, 11)  # no quiet hours for Australia without --quiet-hours
    [plain] = checked(tmp_path, rows[:1], timezone="America/New_York", now=utc(2026, 10, 28))
    assert plain.body["Schedule"] == utc(2026, 11, 1, 11)  # not marketing: as written


def test_a_bad_timezone_cell_is_an_error_on_its_row(tmp_path):
    [r] = checked(tmp_path, [["0412 555 120", "Ann", "Mars/Base", ""]], quiet_hours="21:00-08:00")
    assert (str(r.status), r.issues[0].code, r.issues[0].column) == ("invalid", "invalid-timezone", "Timezone")


def test_bad_quiet_hours_are_one_line(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Phone"], ["0412 555 120"]])
    result = CliRunner().invoke(main, ["check", str(path), "--text", "Hi", "--quiet-hours", "9pm", "--no-preview"])
    assert result.exit_code == 2
    assert result.output.startswith("batchsms: error: --quiet-hours: ")
    assert result.output.count("\n") == 1


@pytest.mark.parametrize(("late", "status", "codes", "schedule"), [
    ("error", "invalid", ["schedule-in-past"], None),
    ("send-now", "valid", ["schedule-late"], None),
    ("skip", "skipped", ["schedule-late-skipped"], None),
])
def test_late_rows(tmp_path, late, status, codes, schedule):
    [r] = checked(tmp_path, [["0412 555 120", "Ann", "", "2026-11-26 09:00"]], timezone="Australia/Sydney",
                  now=utc(2026, 11, 27), late=late)
    assert (str(r.status), [i.code for i in r.issues]) == (status, codes)
    if status == "valid":
        assert "Schedule" not in r.body


def test_a_message_moved_by_quiet_hours_is_not_sent_again_by_a_run_at_another_hour(tmp_path, sandbox):
    """The journal knows the row by the message as written, not by the time quiet hours gave it."""
    path = write_csv(tmp_path / "c.csv", [["Phone", "Name", "Timezone", "ExternalId"],
                                          ["0412 555 120", "Ann", "UTC", "id0"]])
    now = time.time()
    hour = dt.datetime.fromtimestamp(now, UTC).hour
    quiet = f"{hour:02d}:00-{(hour + 2) % 24:02d}:00"  # now is inside it
    target = Target(sandbox.url, sandbox.account_sid, sandbox.auth_token, "PS1")
    first = send_sheet(path, Options(text="Hi {{ Name }}", quiet_hours=quiet), target, SendOptions(progress=False))
    assert first.ok and taken_ids(sandbox) == ["id0"]
    with sandbox.state.lock:
        assert sandbox.state.taken[0]["Schedule"] > now
    again = send_sheet(path, Options(text="Hi {{ Name }}"), target, SendOptions(progress=False))
    assert again.ok and again.sendplan.plan.jobs == [] and again.sendplan.plan.done == 1
    assert taken_ids(sandbox) == ["id0"]


def test_a_sale_blast_for_next_tuesday_10am_sydney_as_people_write_it(tmp_path, sandbox, monkeypatch):
    """Issue #11 (a): the time as typed, in the team's zone from the config file, shown before it goes."""
    from zoneinfo import ZoneInfo

    from .helpers import env_for

    sydney = ZoneInfo("Australia/Sydney")
    today = dt.datetime.now(sydney).date()
    tuesday = today + dt.timedelta(days=(1 - today.weekday()) % 7 or 7)
    written = f"Tue {tuesday.day} {tuesday:%b} 10am"
    expected = int(dt.datetime.combine(tuesday, dt.time(10), sydney).timestamp())
    config = tmp_path / "batchsms.ini"
    config.write_text("[batchsms]\ntimezone = Australia/Sydney\n", encoding="utf-8")
    env = {**env_for(sandbox, tmp_path), "BATCHSMS_CONFIG": str(config)}
    path = write_csv(tmp_path / "c.csv", [["Phone", "Name"], ["0412 555 120", "Ann"]])
    result = CliRunner().invoke(main, ["send", str(path), "--text", "Sale! {{ Name }}", "--schedule", written,
                                       "--yes", "--quiet"], env=env)
    assert result.exit_code == 0, result.output
    abbreviation = dt.datetime.combine(tuesday, dt.time(10), sydney).tzname()  # AEDT in summer, AEST in winter
    shown = f"{tuesday:%a} {tuesday.day} {tuesday:%b %Y} 10:00 {abbreviation}"
    assert f"sends at                  {shown}" in result.output
    with sandbox.state.lock:
        assert sandbox.state.taken[0]["Schedule"] == expected
