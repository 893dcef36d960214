"""The run's time zone (option, config, machine) and times written as people read them, errors included."""

import datetime as dt
import os
from zoneinfo import ZoneInfo

import pytest

from batchsms import codes, rules
from batchsms.clock import format_local, format_range, format_when, local_zone_name, run_zone
from batchsms.config import Preferences, load_preferences
from batchsms.errors import ConfigError

SYD = ZoneInfo("Australia/Sydney")
UTC = ZoneInfo("UTC")


def at(*args, tz=UTC) -> float:
    return dt.datetime(*args, tzinfo=tz).timestamp()


@pytest.fixture
def nowhere(tmp_path):
    """Paths where the machine keeps no zone: the detection must not see the real /etc."""
    return {"localtime": tmp_path / "no-localtime", "timezone_file": tmp_path / "no-timezone"}


def link(tmp_path, target: str):
    path = tmp_path / "localtime"
    os.symlink(target, path)
    return path


# --------------------------------------------------------------------------- the machine's zone


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Australia/Sydney", "Australia/Sydney"),
        (":Pacific/Auckland", "Pacific/Auckland"),  # POSIX allows a leading colon
        ("/usr/share/zoneinfo/Europe/London", "Europe/London"),
        (":/usr/share/zoneinfo/posix/Asia/Tokyo", "Asia/Tokyo"),
    ],
)
def test_the_tz_variable_wins(tmp_path, tz, expected):
    localtime = link(tmp_path, "/usr/share/zoneinfo/America/New_York")
    assert local_zone_name({"TZ": tz}, localtime=localtime, timezone_file=tmp_path / "none") == expected


@pytest.mark.parametrize("tz", ["AEST-10AEDT,M10.1.0,M4.1.0/3", "Foo/Bar", "Australia", "", "localtime"])
def test_a_tz_that_names_no_zone_is_passed_over(tmp_path, tz):
    localtime = link(tmp_path, "/usr/share/zoneinfo/America/New_York")
    assert local_zone_name({"TZ": tz}, localtime=localtime, timezone_file=tmp_path / "none") == "America/New_York"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/usr/share/zoneinfo/Australia/Perth", "Australia/Perth"),
        ("../usr/share/zoneinfo/Pacific/Auckland", "Pacific/Auckland"),  # relative, as Debian writes it
        ("/usr/share/zoneinfo/US/Pacific", "US/Pacific"),  # the name the link gives, not what it resolves to
        ("/var/db/timezone/zoneinfo/Europe/Paris", "Europe/Paris"),  # macOS
        ("/usr/share/zoneinfo/posix/Asia/Kolkata", "Asia/Kolkata"),
        ("/usr/share/zoneinfo/Etc/UTC", "Etc/UTC"),
    ],
)
def test_the_localtime_link_names_the_zone(tmp_path, target, expected):
    etc = tmp_path / "etc"
    etc.mkdir()
    localtime = etc / "localtime"
    os.symlink(target, localtime)  # dangling is fine: only where it points matters
    assert local_zone_name({}, localtime=localtime, timezone_file=tmp_path / "none") == expected


def test_a_copied_localtime_falls_back_to_etc_timezone(tmp_path):
    localtime = tmp_path / "localtime"
    localtime.write_bytes(b"TZif2 not a link")
    timezone_file = tmp_path / "timezone"
    timezone_file.write_text("# set by the installer\n\nAmerica/Chicago\n", encoding="utf-8")
    assert local_zone_name({}, localtime=localtime, timezone_file=timezone_file) == "America/Chicago"
    assert local_zone_name({"TZ": "Nope/Nope"}, localtime=localtime, timezone_file=timezone_file) == "America/Chicago"


def test_nothing_known_is_utc(tmp_path, nowhere):
    assert local_zone_name({}, **nowhere) == "UTC"
    bad = tmp_path / "timezone"
    bad.write_text("Mars/Olympus_Mons\n", encoding="utf-8")
    assert local_zone_name({}, localtime=link(tmp_path, "/somewhere/else"), timezone_file=bad) == "UTC"


def test_the_environment_defaults_to_the_process_one(monkeypatch, nowhere):
    monkeypatch.setenv("TZ", "Asia/Singapore")
    assert local_zone_name(**nowhere) == "Asia/Singapore"


# --------------------------------------------------------------------------- the run's zone


def test_option_then_config_then_machine(tmp_path, monkeypatch):
    path = tmp_path / "config.ini"
    path.write_text("[batchsms]\ntimezone = Pacific/Auckland\n", encoding="utf-8")
    preferences = load_preferences({"BATCHSMS_CONFIG": str(path)})
    assert preferences.timezone == "Pacific/Auckland"
    assert run_zone("Australia/Perth", preferences) == ZoneInfo("Australia/Perth")
    assert run_zone(None, preferences) == ZoneInfo("Pacific/Auckland")
    assert run_zone("", preferences) == ZoneInfo("Pacific/Auckland")
    assert run_zone(None, Preferences(), env={"TZ": "Europe/Berlin"}) == ZoneInfo("Europe/Berlin")
    monkeypatch.setenv("TZ", "America/Denver")
    assert run_zone(None, None) == ZoneInfo("America/Denver")


@pytest.mark.parametrize("name", ["Foo/Bar", "Australia", "../../etc/passwd", "/etc/localtime", "AEST"])
def test_a_bad_timezone_option_is_one_line(name):
    with pytest.raises(ConfigError) as caught:
        run_zone(name, None)
    assert str(caught.value) == f"--timezone {name}: unknown time zone; use an IANA name such as Australia/Sydney"


def test_a_bad_timezone_in_the_config_names_the_file_and_key(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text("[batchsms]\ntimezone = Sydney\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_preferences({"BATCHSMS_CONFIG": str(path)})
    assert str(caught.value) == (
        f"{path}: [batchsms] timezone: unknown time zone; use an IANA name such as Australia/Sydney")


# --------------------------------------------------------------------------- one time


@pytest.mark.parametrize(
    ("epoch", "zone", "shown"),
    [
        (at(2026, 11, 30, 23, 0), SYD, "Tue 1 Dec 2026 10:00 AEDT"),  # summer: daylight time, +11
        (at(2026, 7, 1, 0, 0), SYD, "Wed 1 Jul 2026 10:00 AEST"),  # winter: standard time, +10
        (at(2026, 4, 4, 15, 30), SYD, "Sun 5 Apr 2026 02:30 AEDT"),  # 02:30 the first time ...
        (at(2026, 4, 4, 16, 30), SYD, "Sun 5 Apr 2026 02:30 AEST"),  # ... and the second: the abbreviation tells
        (at(2026, 12, 1, 9, 5, 30), UTC, "Tue 1 Dec 2026 09:05:30 UTC"),  # seconds only when there are some
        (at(2026, 12, 1, 6, 0), ZoneInfo("Asia/Dubai"), "Tue 1 Dec 2026 10:00 +04"),  # a numeric abbreviation stays
        (at(2026, 12, 1, 0, 0), ZoneInfo("Asia/Kolkata"), "Tue 1 Dec 2026 05:30 IST"),
        (at(2026, 12, 1, 0, 0), dt.timezone(dt.timedelta(hours=5, minutes=45)), "Tue 1 Dec 2026 05:45 UTC+05:45"),
        (at(2027, 1, 3, 12, 0), ZoneInfo("America/New_York"), "Sun 3 Jan 2027 07:00 EST"),
    ],
)
def test_format_local(epoch, zone, shown):
    assert format_local(epoch, zone) == shown


def test_format_when():
    assert format_when(None, SYD) == "now"
    assert format_when(at(2026, 11, 30, 23, 0), SYD) == "Tue 1 Dec 2026 10:00 AEDT"


# --------------------------------------------------------------------------- a span of times


@pytest.mark.parametrize(
    ("first", "last", "shown"),
    [
        (at(2026, 11, 30, 23, 0), at(2026, 11, 30, 23, 0), "Tue 1 Dec 2026 10:00 AEDT"),
        (at(2026, 11, 30, 23, 0), at(2026, 12, 1, 3, 30), "Tue 1 Dec 2026 10:00 – 14:30 AEDT"),
        (at(2026, 11, 30, 23, 0), at(2026, 12, 1, 22, 0), "Tue 1 Dec 10:00 – Wed 2 Dec 2026 09:00 AEDT"),
        (at(2026, 12, 1, 22, 0), at(2026, 11, 30, 23, 0), "Tue 1 Dec 10:00 – Wed 2 Dec 2026 09:00 AEDT"),  # any order
        (at(2026, 12, 30, 23, 0), at(2027, 1, 1, 0, 0), "Thu 31 Dec 2026 10:00 – Fri 1 Jan 2027 11:00 AEDT"),
        (at(2026, 10, 3, 0, 0), at(2026, 10, 4, 22, 0), "Sat 3 Oct 10:00 AEST – Mon 5 Oct 2026 09:00 AEDT"),
        (at(2026, 4, 4, 15, 30), at(2026, 4, 4, 16, 30), "Sun 5 Apr 2026 02:30 AEDT – 02:30 AEST"),
    ],
)
def test_format_range(first, last, shown):
    assert format_range(first, last, SYD) == shown


# --------------------------------------------------------------------------- schedule messages in the run's zone


NOW = at(2026, 11, 26, 1, 0)  # Thu 26 Nov 2026 12:00 AEDT


def message(raw: str, zone=SYD, now=NOW) -> str:
    _, problems = rules.check_schedule(raw, zone, now)
    assert len(problems) == 1
    return problems[0].message


def test_a_message_beyond_the_14_days_is_held_and_the_handover_is_in_local_time():
    far = str(int(NOW + 15 * 86400))
    assert message(far) == (
        "is 15.0 days ahead (Fri 11 Dec 2026 12:00 AEDT), beyond the API's 14 days: batchsms keeps it and hands "
        "it to the API from Fri 27 Nov 2026 13:00 AEDT; `batchsms due` must run by then (cron)")
    assert "from Fri 27 Nov 2026 10:00 AWST" in message(far, zone=ZoneInfo("Australia/Perth"))


def test_more_than_a_year_ahead_is_an_error():
    assert message(str(int(NOW + 400 * 86400))) == (
        "is 400.0 days ahead (Fri 31 Dec 2027 12:00 AEDT); batchsms holds messages at most a year: check the date")


def test_times_in_the_past_are_in_local_time():
    assert message("2026-11-26 09:00") == (
        "is 3.0 hours in the past (Thu 26 Nov 2026 09:00 AEDT); the API refuses times more than 1 hour ago: set a "
        "time ahead, or --late send-now to send such rows now (--late skip leaves them out)")
    assert message("2026-11-26T00:55:00Z") == (
        "is 5 minutes in the past (Thu 26 Nov 2026 11:55 AEDT): it sends immediately")


def test_late_rows_send_now_or_are_skipped_when_asked():
    assert rules.check_schedule("2026-11-26 09:00", SYD, NOW, late="send-now") == (int(at(2026, 11, 25, 22)), [(
        codes.WARNING, "schedule-late",
        "is 3.0 hours in the past (Thu 26 Nov 2026 09:00 AEDT): it sends now (--late send-now)")])
    assert rules.check_schedule("2026-11-26 09:00", SYD, NOW, late="skip") == (None, [(
        codes.WARNING, "schedule-late-skipped",
        "skipped: the time is 3.0 hours in the past (Thu 26 Nov 2026 09:00 AEDT) (--late skip)")])


def test_an_unreadable_time_names_the_zone_naive_times_are_read_in():
    assert message("next tuesday").endswith(
        "times without an offset are read in Australia/Sydney (set another with --timezone)")


def test_clock_changes_name_both_readings_with_their_abbreviations():
    assert message("2026-04-05 02:30", now=at(2026, 4, 1)) == (
        "2026-04-05 02:30 happens twice in Australia/Sydney: first at +11:00 (AEDT), then at +10:00 (AEST); "
        "write the offset, e.g. 2026-04-05T02:30+10:00")
    assert message("2026-10-04 02:30", now=at(2026, 10, 1)) == (
        "2026-10-04 02:30 does not exist in Australia/Sydney: the clocks skip it; it could mean "
        "Sun 4 Oct 2026 03:30 AEDT (+11:00) or Sun 4 Oct 2026 01:30 AEST (+10:00); write the time you mean "
        "with its offset, e.g. 2026-10-04T03:30+11:00")


def test_a_time_alone_that_has_passed_means_tomorrow_and_says_so():
    assert rules.check_schedule("10:00", SYD, NOW) == (int(at(2026, 11, 26, 23, 0)), [(
        codes.WARNING, "schedule-tomorrow",
        "10:00 has passed today, so it means tomorrow: Fri 27 Nov 2026 10:00 AEDT; write the date to be sure")])
    assert rules.check_schedule("1pm", SYD, NOW) == (int(at(2026, 11, 26, 2, 0)), ())
