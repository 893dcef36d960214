"""Times people write, and quiet hours in the recipient's time zones (batchsms/schedule.py).

Every expected moment is written by hand as a UTC wall time (``utc(...)``, via calendar.timegm),
with the local time and offset it stands for beside it, never computed with zoneinfo: the code
under test is what converts wall times.
"""

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

import phonenumbers
import phonenumbers.timezone
import pytest

from batchsms import schedule as S
from batchsms.codes import ERROR, WARNING

SYD = ZoneInfo("Australia/Sydney")
PER = ZoneInfo("Australia/Perth")
AKL = ZoneInfo("Pacific/Auckland")
NYC = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")
LON = ZoneInfo("Europe/London")


def utc(*args) -> float:
    return float(calendar.timegm((*args, *(0,) * (6 - len(args)))))


NOW = utc(2026, 11, 26, 1, 0)  # Thu 26 Nov 2026 12:00 AEDT (+11)
NIGHT = S.QuietHours.parse("21:00-08:00")


def read(raw, zone=SYD, now=NOW, day_first=True, excel_date=False):
    return S.read_time(raw, zone=zone, now=now, day_first=day_first, excel_date=excel_date)


def problem(reading):
    assert reading.epoch is None
    return (reading.problem.severity, reading.problem.code, reading.problem.message)


# --------------------------------------------------------------------------- times people write


@pytest.mark.parametrize(
    ("raw", "day_first", "expected", "note"),
    [
        ("2026-12-01 10:00", True, utc(2026, 11, 30, 23), None),  # 1 Dec 10:00 AEDT
        ("2026-12-01T10:00", None, utc(2026, 11, 30, 23), None),
        ("2026-12-01T10:00:00+11:00", None, utc(2026, 11, 30, 23), None),
        ("2026-12-01T10:00:00+08:00", None, utc(2026, 12, 1, 2), None),  # the offset wins over the zone
        ("2026-12-01T10:00:00Z", None, utc(2026, 12, 1, 10), None),
        ("2026-12-01 10am", None, utc(2026, 11, 30, 23), None),
        ("1/12/2026 10:00", True, utc(2026, 11, 30, 23), None),
        ("1/12/2026 10:00", False, utc(2026, 1, 11, 23), None),  # 12 Jan 10:00 AEDT (+11: summer)
        ("1/12/2026 10am", True, utc(2026, 11, 30, 23), None),
        ("1/12/2026 10:30 pm", True, utc(2026, 12, 1, 11, 30), None),  # 22:30 AEDT
        ("1/12/2026 10:30pm", True, utc(2026, 12, 1, 11, 30), None),
        ("1-12-2026 10:00", True, utc(2026, 11, 30, 23), None),
        ("1.12.2026 10:00", True, utc(2026, 11, 30, 23), None),
        ("1/12/26 10:00", True, utc(2026, 11, 30, 23), None),
        ("30/11/2026 9:30", False, utc(2026, 11, 29, 22, 30), None),  # day > 12 settles it, even month-first
        ("30/11/2026 9:30", None, utc(2026, 11, 29, 22, 30), None),
        ("11/30/2026 9:30am", True, utc(2026, 11, 29, 22, 30), None),
        ("1 Dec 2026 10am", None, utc(2026, 11, 30, 23), None),
        ("Tue 1 Dec 2026 10:00", None, utc(2026, 11, 30, 23), None),
        ("December 1, 2026 10am", None, utc(2026, 11, 30, 23), None),
        ("Tue 1 Dec 10am", None, utc(2026, 11, 30, 23), None),  # no year: the next 1 December
        ("Dec 1 10am", None, utc(2026, 11, 30, 23), None),
        ("1st of December at 10:00", None, utc(2026, 11, 30, 23), None),
        ("Mon 1 Nov 10am", None, utc(2027, 10, 31, 23), None),  # 1 Nov 2026 has passed: 1 Nov 2027 (a Monday)
        ("13:00", None, utc(2026, 11, 26, 2), "today"),  # 13:00 AEDT today
        ("1pm", None, utc(2026, 11, 26, 2), "today"),
        ("10:00", None, utc(2026, 11, 26, 23), "tomorrow"),  # 10:00 has passed: Fri 27 Nov 10:00 AEDT
        ("10am", None, utc(2026, 11, 26, 23), "tomorrow"),
        ("12:00", None, utc(2026, 11, 27, 1), "tomorrow"),  # exactly now counts as passed
        ("1796079600", None, 1796079600.0, None),
        ("1796079600.0", None, 1796079600.0, None),
    ],
)
def test_times_people_write(raw, day_first, expected, note):
    reading = read(raw, day_first=day_first)
    assert (reading.epoch, reading.problem, reading.note) == (expected, None, note)


def test_month_first_in_new_york():
    assert read("12/1/2026 10:00", zone=NYC, day_first=False).epoch == utc(2026, 12, 1, 15)  # 10:00 EST (-5)
    assert read("7/4/2026 9am", zone=NYC, day_first=False).epoch == utc(2026, 7, 4, 13)  # 09:00 EDT (-4)


def test_a_time_alone_is_read_in_the_run_zone_on_its_own_date():
    # 26 Nov 2026 20:00 UTC is Fri 27 Nov 07:00 AEDT but still Thu 26 Nov 15:00 in New York.
    now = utc(2026, 11, 26, 20)
    assert read("9am", now=now) == S.Reading(utc(2026, 11, 26, 22), None, "today")  # Fri 09:00 AEDT
    assert read("9am", zone=NYC, now=now) == S.Reading(utc(2026, 11, 27, 14), None, "tomorrow")  # Fri 09:00 EST


def test_an_ambiguous_date_names_both_readings():
    assert problem(read("1/12/2026 10:00", day_first=None)) == (
        ERROR, "ambiguous-date",
        "1/12/2026 10:00 could be 1 December or 12 January; write 2026-12-01 10:00 or 2026-01-12 10:00, "
        "or set --locale (en_AU reads day first, en_US month first)")
    assert problem(read("3/4/2026 9am", day_first=None))[2] == (
        "3/4/2026 9am could be 3 April or 4 March; write 2026-04-03 09:00 or 2026-03-04 09:00, "
        "or set --locale (en_AU reads day first, en_US month first)")


def test_the_same_day_either_way_is_not_ambiguous():
    assert read("5/5/2026 10:00", day_first=None).epoch == utc(2026, 5, 5, 0)  # 10:00 AEST (+10: winter)


def test_day_first_comes_from_the_locale_or_the_country():
    assert S.day_first_for("AU", None) is True
    assert S.day_first_for("NZ", None) is True
    assert S.day_first_for("GB", None) is True
    assert S.day_first_for("US", None) is False
    assert S.day_first_for("AU", "en_US") is False
    assert S.day_first_for("US", "en-AU") is True
    assert S.day_first_for("", None) is None  # nothing says: a date that reads both ways is an error
    with pytest.raises(ValueError, match="not a locale Babel knows"):
        S.day_first_for("AU", "xx_YY_ZZ")


def test_epoch_milliseconds_are_refused_with_the_seconds_to_write():
    assert problem(read("1796079600000")) == (
        ERROR, "invalid-schedule",
        "looks like milliseconds; the API takes epoch seconds: write 1796079600 (Tue 1 Dec 2026 10:00 AEDT)")


def test_excel_date_cells():
    # 46357 is 1 Dec 2026 in Excel's count (45658 is 1 Jan 2025, 46023 1 Jan 2026, +334 days); .4166… is 10:00.
    assert read("46357.4166666667", excel_date=True).epoch == utc(2026, 11, 30, 23)
    assert read("46357.75", excel_date=True).epoch == utc(2026, 12, 1, 7)  # 18:00 AEDT
    # What sheet.cell_text gives a date cell: ISO text, read as a wall time in the zone.
    assert read("2026-12-01 10:00:00", excel_date=True).epoch == utc(2026, 11, 30, 23)
    assert problem(read("12", excel_date=True))[1] == "invalid-schedule"  # no date a schedule can be
    # The same number in a cell that lost its date format is not read as epoch seconds (1970).
    assert problem(read("46357.4166666667")) == (
        ERROR, "invalid-schedule",
        "46357.4166666667 is not a time: it looks like a date as Excel counts days (Tue 1 Dec 2026 10:00); "
        "format the column as a date in Excel, or write the date and time")
    assert problem(read("46357"))[2].startswith("46357 is not a time: it looks like a date as Excel counts days "
                                                "(Tue 1 Dec 2026 00:00)")


def test_unreadable_times_say_how_to_write_one():
    assert problem(read("next tuesday")) == (
        ERROR, "invalid-schedule",
        "not a time: write it like 1/12/2026 9:30am, 2026-12-01 09:30, 2026-12-01T09:30:00+11:00, or 9:30am alone "
        "(today, or tomorrow once it has passed); epoch seconds and Excel date cells work too; times without an "
        "offset are read in Australia/Sydney (set another with --timezone)")
    assert problem(read("soon", zone=NYC, day_first=False))[2].startswith("not a time: write it like 12/1/2026 9:30am")
    assert problem(read("1/12/2026"))[2] == (
        "1/12/2026 is a date without a time; write the time too, e.g. 1/12/2026 9:30am")
    assert problem(read("25:00"))[1] == "invalid-schedule"
    assert problem(read("31 Apr 10am"))[1] == "invalid-schedule"


def test_a_weekday_that_is_not_the_dates_is_an_error():
    assert problem(read("Wed 1 Dec 2026 10am")) == (
        ERROR, "invalid-schedule",
        "Wed 1 Dec 2026 10am says Wednesday, but 1 December 2026 is a Tuesday; correct the day or the date")
    assert problem(read("Wed 1 Dec 10am"))[2].startswith("Wed 1 Dec 10am says Wednesday, but 1 December 2026 is a")


def test_clock_changes_name_both_readings():
    assert problem(read("2026-04-05 02:30", now=utc(2026, 4, 1))) == (
        ERROR, "ambiguous-time",
        "2026-04-05 02:30 happens twice in Australia/Sydney: first at +11:00 (AEDT), then at +10:00 (AEST); "
        "write the offset, e.g. 2026-04-05T02:30+10:00")
    assert problem(read("4/10/2026 2:30am", now=utc(2026, 10, 1))) == (
        ERROR, "nonexistent-time",
        "2026-10-04 02:30 does not exist in Australia/Sydney: the clocks skip it; it could mean "
        "Sun 4 Oct 2026 03:30 AEDT (+11:00) or Sun 4 Oct 2026 01:30 AEST (+10:00); write the time you mean "
        "with its offset, e.g. 2026-10-04T03:30+11:00")
    # A time alone that lands in tomorrow's gap: Sat 3 Oct 12:00 AEST, "2:30am" is Sunday's 02:30.
    assert problem(read("2:30am", now=utc(2026, 10, 3, 2)))[1] == "nonexistent-time"
    assert read("2026-10-04 03:30", now=utc(2026, 10, 1)).epoch == utc(2026, 10, 3, 16, 30)  # just after: fine


def test_readings_are_cached():
    S._read_time.cache_clear()
    for _ in range(3):
        read("1/12/2026 10am")
    assert S._read_time.cache_info().hits == 2


# --------------------------------------------------------------------------- quiet hours: parsing


def test_quiet_hours_parse():
    assert S.QuietHours(((dt.time(21), dt.time(8)),)) == NIGHT
    assert S.QuietHours.parse("9pm-8am") == NIGHT
    assert S.QuietHours.parse("21:00 – 08:00") == NIGHT
    both = S.QuietHours.parse("21:00-08:00, 12:00-13:30", days="Sat, sunday")
    assert both == S.QuietHours(((dt.time(21), dt.time(8)), (dt.time(12), dt.time(13, 30))), frozenset({5, 6}))
    assert str(both) == "21:00-08:00, 12:00-13:30 and Sat, Sun"
    assert str(S.US_MARKETING_HOURS) == "21:00-08:00"


@pytest.mark.parametrize(
    ("text", "days", "message"),
    [
        ("21:00", None, "'21:00' is not a span of quiet hours: write START-END, e.g. 21:00-08:00 "
                        "(it may wrap midnight)"),
        ("25:00-08:00", None, "'25:00' in '25:00-08:00' is not a time of day; write quiet hours like 21:00-08:00 or "
                              "9pm-8am"),
        ("21:00-21:00", None, "'21:00-21:00' starts and ends at the same time; write a span such as 21:00-08:00 "
                              "(and --quiet-days for whole days)"),
        ("", None, "no quiet hours given: write START-END, e.g. 21:00-08:00"),
        ("21:00-08:00", "Sonday", "'Sonday' is not a day of the week: write days as Mon, Tue, Wed, Thu, Fri, Sat or "
                                  "Sun, separated by commas"),
        ("21:00-08:00", "Mon,Tue,Wed,Thu,Fri,Sat,Sun", "every day of the week is quiet, so no message could ever go; "
                                                       "name fewer days"),
    ],
)
def test_quiet_hours_that_make_no_sense_say_why(text, days, message):
    with pytest.raises(ValueError) as caught:
        S.QuietHours.parse(text, days=days)
    assert str(caught.value) == message


# --------------------------------------------------------------------------- quiet hours across DST changes


def moved(epoch, zones, quiet=NIGHT, run_zone=None):
    move = S.next_allowed(epoch, tuple(zones), quiet, run_zone or zones[0])
    return move.epoch


@pytest.mark.parametrize(
    ("zone", "send", "expected"),
    [
        # Sydney, clocks forward Sun 4 Oct 2026 02:00 AEST -> 03:00 AEDT
        (SYD, utc(2026, 10, 3, 12), utc(2026, 10, 3, 21)),  # Sat 22:00 AEST -> Sun 08:00 AEDT (+11)
        (SYD, utc(2026, 10, 3, 19, 30), utc(2026, 10, 3, 21)),  # Sun 06:30 AEDT -> 08:00 AEDT
        # Sydney, clocks back Sun 5 Apr 2026 03:00 AEDT -> 02:00 AEST
        (SYD, utc(2026, 4, 4, 11), utc(2026, 4, 4, 22)),  # Sat 22:00 AEDT -> Sun 08:00 AEST (+10)
        (SYD, utc(2026, 4, 4, 16, 30), utc(2026, 4, 4, 22)),  # the second 02:30 (AEST) -> 08:00 AEST
        # Auckland, clocks forward Sun 27 Sep 2026 02:00 NZST -> 03:00 NZDT
        (AKL, utc(2026, 9, 26, 11), utc(2026, 9, 26, 19)),  # Sat 23:00 NZST -> Sun 08:00 NZDT (+13)
        # Auckland, clocks back Sun 5 Apr 2026 03:00 NZDT -> 02:00 NZST
        (AKL, utc(2026, 4, 4, 10), utc(2026, 4, 4, 20)),  # Sat 23:00 NZDT -> Sun 08:00 NZST (+12)
        # New York, clocks forward Sun 8 Mar 2026 02:00 EST -> 03:00 EDT
        (NYC, utc(2026, 3, 8, 3), utc(2026, 3, 8, 12)),  # Sat 22:00 EST -> Sun 08:00 EDT (-4)
        # New York, clocks back Sun 1 Nov 2026 02:00 EDT -> 01:00 EST
        (NYC, utc(2026, 11, 1, 2), utc(2026, 11, 1, 13)),  # Sat 22:00 EDT -> Sun 08:00 EST (-5)
        (NYC, utc(2026, 11, 1, 6), utc(2026, 11, 1, 13)),  # the second 01:00 (EST) -> 08:00 EST
        # allowed times stay where they are, on either side of a change
        (SYD, utc(2026, 10, 3, 23), utc(2026, 10, 3, 23)),  # Sun 10:00 AEDT
        (NYC, utc(2026, 3, 8, 14), utc(2026, 3, 8, 14)),  # Sun 10:00 EDT
        (SYD, utc(2026, 10, 3, 10), utc(2026, 10, 3, 10)),  # Sat 20:00 AEST
        (SYD, utc(2026, 10, 3, 11), utc(2026, 10, 3, 21)),  # Sat 21:00 AEST sharp is quiet
        (SYD, utc(2026, 10, 3, 21), utc(2026, 10, 3, 21)),  # Sun 08:00 AEDT sharp is allowed
    ],
)
def test_quiet_hours_end_at_0800_local_whatever_the_offset(zone, send, expected):
    assert moved(send, [zone]) == expected


def test_a_quiet_window_ending_in_a_gap_ends_when_the_clocks_jump():
    # 21:00-02:30 on the night Sydney skips 02:00-03:00: 02:30 never happens; 03:00 AEDT is the first moment after.
    assert moved(utc(2026, 10, 3, 12), [SYD], S.QuietHours.parse("21:00-02:30")) == utc(2026, 10, 3, 16)
    # New York skips 02:00-03:00 on 8 Mar: 02:15 never happens either.
    assert moved(utc(2026, 3, 8, 3), [NYC], S.QuietHours.parse("22:00-02:15")) == utc(2026, 3, 8, 7)  # 03:00 EDT


def test_a_quiet_window_ending_in_an_overlap_ends_at_its_first_end_not_already_past():
    late = S.QuietHours.parse("21:00-02:30")
    assert moved(utc(2026, 4, 4, 11), [SYD], late) == utc(2026, 4, 4, 15, 30)  # the first 02:30 (AEDT)
    assert moved(utc(2026, 4, 4, 16, 15), [SYD], late) == utc(2026, 4, 4, 16, 30)  # from 02:15 AEST: 02:30 AEST


def test_quiet_days_are_quiet_all_day():
    weekend = S.QuietHours.parse("21:00-08:00", days="Sun")
    # Sat 5 Dec 2026 22:00 AEDT -> Mon 7 Dec 08:00 AEDT
    assert moved(utc(2026, 12, 5, 11), [SYD], weekend) == utc(2026, 12, 6, 21)
    assert moved(utc(2026, 12, 6, 2), [SYD], weekend) == utc(2026, 12, 6, 21)  # Sun 13:00 AEDT
    assert moved(utc(2026, 12, 4, 23), [SYD], weekend) == utc(2026, 12, 4, 23)  # Sat 10:00 AEDT: allowed


def test_the_move_note_is_in_the_run_zone():
    move = S.next_allowed(utc(2026, 11, 30, 20, 30), (PER, SYD), NIGHT, SYD)  # Tue 1 Dec 07:30 AEDT
    assert (move.moved, move.epoch, move.held_by) == (True, utc(2026, 12, 1), PER)
    assert move.note == "Tue 1 Dec 2026 11:00 AEDT — moved from 07:30, quiet hours"
    across = S.next_allowed(utc(2026, 10, 3, 12), (SYD,), NIGHT, SYD)
    assert across.note == "Sun 4 Oct 2026 08:00 AEDT — moved from Sat 3 Oct 22:00 AEST, quiet hours"
    stays = S.next_allowed(utc(2026, 12, 1), (SYD,), NIGHT, SYD)
    assert (stays.moved, stays.epoch, stays.note) == (False, utc(2026, 12, 1), "")


# --------------------------------------------------------------------------- the recipient's zones


AU_MOBILE = "+61412345678"
AU_ZONES = ("Australia/Adelaide", "Australia/Brisbane", "Australia/Eucla", "Australia/Lord_Howe",
            "Australia/Perth", "Australia/Sydney")


def names(zones):
    return tuple(zone.key for zone in zones)


def test_an_australian_mobile_may_be_anywhere_from_perth_to_lord_howe():
    # What phonenumbers says: every zone of +61, Christmas Island and the Cocos Islands included.
    said = phonenumbers.timezone.time_zones_for_number(phonenumbers.parse(AU_MOBILE))
    assert tuple(said) == (*AU_ZONES[:5], "Australia/Sydney", "Indian/Christmas", "Indian/Cocos")
    # Those two have their own country codes (CX, CC): an Australian mobile is held for the six of Australia.
    assert S.zones_for(AU_MOBILE, None, UTC) == (tuple(map(ZoneInfo, AU_ZONES)), None)
    assert S.zones_for(AU_MOBILE, "", UTC) == S.zones_for(AU_MOBILE, "  ", UTC) == S.zones_for(AU_MOBILE, None, UTC)


def test_zones_of_other_numbers():
    assert names(S.zones_for("+61298765432", None, UTC)[0]) == ("Australia/Sydney",)  # a Sydney landline
    assert names(S.zones_for("+64211234567", None, UTC)[0]) == ("Pacific/Auckland", "Pacific/Chatham")
    assert names(S.zones_for("+12125550123", None, UTC)[0]) == ("America/New_York",)
    assert names(S.zones_for("+14155550123", None, UTC)[0]) == ("America/Los_Angeles",)
    # phonenumbers knows no zone for a UK mobile ("Etc/Unknown"): the run's zone
    assert S.zones_for("+447700900123", None, SYD) == ((SYD,), None)
    assert S.zones_for(None, None, SYD) == ((SYD,), None)


def test_the_timezone_column_wins():
    assert S.zones_for(AU_MOBILE, "Australia/Perth", SYD) == ((PER,), None)
    assert S.zones_for(AU_MOBILE, " pacific/auckland ", SYD) == ((AKL,), None)  # any case, spaces around
    zones, found = S.zones_for(AU_MOBILE, "Australia/Sidney", SYD)
    assert names(zones) == AU_ZONES  # the row still has the number's zones, and an error
    assert (found.severity, found.code, found.message) == (
        ERROR, "invalid-timezone",
        "Timezone 'Australia/Sidney' is not a time zone; did you mean Australia/Sydney? write an IANA name such "
        "as Australia/Perth or Pacific/Auckland, or leave it empty to use the number's")
    assert S.zones_for(AU_MOBILE, "AEST", SYD)[1].message == (
        "Timezone 'AEST' is not a time zone; write an IANA name such as Australia/Perth or Pacific/Auckland, "
        "or leave it empty to use the number's")


def example_numbers():
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
                     phonenumbers.PhoneNumberType.TOLL_FREE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                yield phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_the_prefix_walk_gives_what_phonenumbers_gives_for_every_region():
    from batchsms.numbers import describe

    checked = 0
    for e164 in example_numbers():
        dialled = describe(e164)
        kind = S._TYPES[dialled.kind]
        code = S._country_code(e164, dialled.international)
        assert S._zone_names(e164, kind, code) == S._zone_names_slowly(e164), e164
        checked += 1
    assert checked > 500


# --------------------------------------------------------------------------- all zones must allow it


def test_an_australian_mobile_waits_for_0800_in_perth():
    zones, _ = S.zones_for(AU_MOBILE, None, SYD)
    # Tue 1 Dec 2026 07:30 AEDT: 04:30 in Perth -> 08:00 AWST (+8) = 11:00 AEDT
    assert S.apply_quiet(utc(2026, 11, 30, 20, 30), zones, NIGHT, "move", SYD) == (
        utc(2026, 12, 1), (WARNING, "quiet-hours-moved",
                           "Tue 1 Dec 2026 07:30 AEDT is Tue 04:30 AWST in Australia/Perth, inside the quiet hours "
                           "21:00-08:00 there; moved to Tue 1 Dec 2026 11:00 AEDT (Tue 08:00 AWST there)"))
    # Tue 2 Jun 2026 07:30 AEST: 08:00 AWST = 10:00 AEST
    assert moved(utc(2026, 6, 1, 21, 30), zones, run_zone=SYD) == utc(2026, 6, 2)
    # 20:30 AEDT in December is 20:30 on Lord Howe (+11): allowed everywhere
    assert moved(utc(2026, 12, 1, 9, 30), zones, run_zone=SYD) == utc(2026, 12, 1, 9, 30)
    # 20:45 AEST in June is 21:15 on Lord Howe (+10:30): quiet there -> 08:00 AWST next day = 10:00 AEST
    assert moved(utc(2026, 6, 2, 10, 45), zones, run_zone=SYD) == utc(2026, 6, 3)


def test_mobiles_of_each_country_across_a_dst_change():
    au, nz, us = (S.zones_for(number, None, UTC)[0] for number in (AU_MOBILE, "+64211234567", "+12125550123"))
    # Sat 3 Oct 2026 22:00 AEST, the night Sydney goes to AEDT: 08:00 AWST on Sunday = 11:00 AEDT
    assert moved(utc(2026, 10, 3, 12), au) == utc(2026, 10, 4)
    # Sat 26 Sep 2026 23:00 NZST, the night Auckland (and Chatham) go forward: Sun 08:00 NZDT (+13)
    assert moved(utc(2026, 9, 26, 11), nz) == utc(2026, 9, 26, 19)
    # 20:30 NZDT is 21:15 on the Chatham Islands (+13:45): quiet there -> Tue 08:00 NZDT
    assert moved(utc(2026, 9, 28, 7, 30), nz) == utc(2026, 9, 28, 19)
    # Sat 7 Mar 2026 22:00 EST in New York: Sun 08:00 EDT (-4)
    assert moved(utc(2026, 3, 8, 3), us) == utc(2026, 3, 8, 12)


def test_the_policies():
    zones = (PER, SYD)
    send = utc(2026, 11, 30, 20, 30)  # Tue 1 Dec 07:30 AEDT
    why = "Tue 1 Dec 2026 07:30 AEDT is Tue 04:30 AWST in Australia/Perth, inside the quiet hours 21:00-08:00 there"
    assert S.apply_quiet(send, zones, NIGHT, "skip", SYD) == (None, (
        WARNING, "quiet-hours-skipped",
        f"skipped: {why} (--quiet-hours-policy skip); the next allowed time is Tue 1 Dec 2026 11:00 AEDT"))
    assert S.apply_quiet(send, zones, NIGHT, "error", SYD) == (None, (
        ERROR, "quiet-hours",
        f"{why}; send it at Tue 1 Dec 2026 11:00 AEDT or later, or give --quiet-hours-policy move"))
    for policy in S.POLICIES:  # an allowed time passes under every policy
        assert S.apply_quiet(utc(2026, 12, 1, 2), zones, NIGHT, policy, SYD) == (utc(2026, 12, 1, 2), None)
    assert S.apply_quiet(send, zones, None, "move", SYD) == (send, None)  # no quiet hours
    with pytest.raises(ValueError, match="use move, skip or error"):
        S.apply_quiet(send, zones, NIGHT, "later", SYD)


def test_zones_too_far_apart_for_the_quiet_hours():
    narrow = S.QuietHours.parse("20:00-10:00")  # Sydney allows 23:00-09:00 UTC in December, London 10:00-20:00
    assert S.next_allowed(utc(2026, 12, 1), (SYD, LON), narrow, SYD).epoch is None
    assert S.apply_quiet(utc(2026, 12, 1), (SYD, LON), narrow, "move", SYD) == (None, (
        ERROR, "quiet-hours",
        "no time in the next 8 days is outside the quiet hours 20:00-10:00 in every time zone this number may be in "
        "(Australia/Sydney, Europe/London); fill its Timezone column"))


def test_us_numbers_under_marketing_keep_the_tcpa_hours():
    assert S.quiet_for("US", None, marketing=True) is S.US_MARKETING_HOURS
    assert S.quiet_for("AU", None, marketing=True) is None
    assert S.quiet_for("US", None, marketing=False) is None
    late = S.QuietHours.parse("22:00-07:00")
    combined = S.quiet_for("US", late, marketing=True)
    assert str(combined) == "22:00-07:00, 21:00-08:00"
    assert S.quiet_for("AU", late, marketing=True) is late
    # Sat 31 Oct 2026 21:30 EDT: the user's 22:00 would let it go; the TCPA's 21:00 holds it until 08:00 EST
    assert moved(utc(2026, 11, 1, 1, 30), [NYC], combined) == utc(2026, 11, 1, 13)
    # 07:30 EST: allowed by 22:00-07:00, not by the TCPA
    assert moved(utc(2026, 11, 2, 12, 30), [NYC], combined) == utc(2026, 11, 2, 13)
