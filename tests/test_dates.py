"""Dates in templates: cells read as dates by the ``date`` and ``time`` filters, printed in the locale (issue 10)."""

import datetime as dt
import pickle

import pytest

from batchsms.dates import day_first, locale_for, read_when
from batchsms.errors import TemplateError
from batchsms.template import MessageTemplate, RenderError

HEADER = ["Name", "Appointment"]


def render(source, appointment, locale="en_AU"):
    return MessageTemplate(source, HEADER, locale=locale).render(["Ann", appointment])


# --------------------------------------------------------------------------- reading what a cell holds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # as batchsms writes Excel date, datetime and time cells
        ("2026-12-03 09:30:00", dt.datetime(2026, 12, 3, 9, 30)),
        ("2026-12-03", dt.date(2026, 12, 3)),
        ("09:30:00", dt.time(9, 30)),
        ("9:30:00", dt.time(9, 30)),  # an Excel duration cell
        ("2026-12-03T09:30", dt.datetime(2026, 12, 3, 9, 30)),
        # as people type them
        ("30/11/2026 14:30", dt.datetime(2026, 11, 30, 14, 30)),
        ("30/11/26", dt.date(2026, 11, 30)),
        ("30.11.2026", dt.date(2026, 11, 30)),
        ("30-11-2026", dt.date(2026, 11, 30)),
        ("11/30/2026 2:30pm", dt.datetime(2026, 11, 30, 14, 30)),
        ("11/30/2026 2:30 PM", dt.datetime(2026, 11, 30, 14, 30)),
        ("30/11/2026, 2:30 p.m.", dt.datetime(2026, 11, 30, 14, 30)),
        ("3 Dec 2026 9:30", dt.datetime(2026, 12, 3, 9, 30)),
        ("3 December 2026", dt.date(2026, 12, 3)),
        ("3-Dec-26", dt.date(2026, 12, 3)),  # Excel's d-mmm-yy
        ("3rd of December 2026 at 2pm", dt.datetime(2026, 12, 3, 14, 0)),
        ("Dec 3, 2026", dt.date(2026, 12, 3)),
        ("Sept 3 2026 9:30am", dt.datetime(2026, 9, 3, 9, 30)),
        ("Thursday, December 3rd, 2026", dt.date(2026, 12, 3)),
        ("Thu 3 Dec 2026", dt.date(2026, 12, 3)),
        ("  2:30pm ", dt.time(14, 30)),
        ("12:15am", dt.time(0, 15)),
        ("12pm", dt.time(12, 0)),
        ("14:30", dt.time(14, 30)),
    ],
)
def test_read_when_reads_each_form(text, expected):
    assert read_when(text, day_first=True) == expected
    assert type(read_when(text, day_first=True)) is type(expected)


@pytest.mark.parametrize(
    "text",
    ["", "next week", "14", "2026", "0412 345 678", "+61412345678", "1.5", "3/12", "13/13/2026", "31/4/2026",
     "25:00", "0:30am", "13pm", "9:61", "3 Dek 2026", "Foo 3 Dec 2026", "2026-02-30", "30/11/2026 25:00",
     "x" * 10_000, "3" * 10_000],
)
def test_read_when_refuses_what_is_not_a_date(text):
    assert read_when(text, day_first=True) is None
    assert read_when(text, day_first=False) is None


def test_day_first_or_month_first_decides_a_date_that_reads_both_ways():
    assert read_when("3/12/2026", day_first=True) == dt.date(2026, 12, 3)
    assert read_when("3/12/2026", day_first=False) == dt.date(2026, 3, 12)
    assert read_when("03/12/26 9:30", day_first=False) == dt.datetime(2026, 3, 12, 9, 30)


def test_an_impossible_reading_settles_it_either_way():
    for first in (True, False):
        assert read_when("30/11/2026", day_first=first) == dt.date(2026, 11, 30)
        assert read_when("11/30/2026", day_first=first) == dt.date(2026, 11, 30)
        assert read_when("12/13/2026", day_first=first) == dt.date(2026, 12, 13)
        assert read_when("31/1/2026", day_first=first) == dt.date(2026, 1, 31)
        assert read_when("2/29/2028", day_first=first) == dt.date(2028, 2, 29)  # 29/2: only month-first


def test_two_digit_years_as_excel_reads_them():
    assert read_when("1/2/29", day_first=True) == dt.date(2029, 2, 1)
    assert read_when("1/2/30", day_first=True) == dt.date(1930, 2, 1)


def test_an_offset_keeps_the_wall_time_as_written():
    when = read_when("2026-12-03T09:30:00+11:00", day_first=True)
    assert when == dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=11)))
    assert render("{{ Appointment | time }}", "2026-12-03T09:30:00+11:00") == "9:30am"


# --------------------------------------------------------------------------- locales


@pytest.mark.parametrize(
    ("country", "explicit", "name"),
    [("AU", None, "en_AU"), ("us", None, "en_US"), ("GB", None, "en_GB"), ("NZ", None, "en_NZ"),
     ("CN", None, "en"), ("", None, "en"), ("ZZ", None, "en"), ("AU", "en_US", "en_US"), ("AU", "en-GB", "en_GB"),
     ("AU", "de_DE", "de_DE"), ("AU", "  ", "en_AU"), ("AU", "en_AU.UTF-8", "en_AU"), ("AU", "EN_us", "en_US")],
)
def test_locale_for(country, explicit, name):
    assert str(locale_for(country, explicit)) == name


@pytest.mark.parametrize("explicit", ["klingon", "xx_YY", "en_XX"])
def test_an_unknown_locale_is_a_plain_error(explicit):
    with pytest.raises(ValueError, match=rf"--locale {explicit}: not a locale Babel knows; write it like en_AU"):
        locale_for("AU", explicit)


@pytest.mark.parametrize(
    ("name", "first"),
    [("en_AU", True), ("en_GB", True), ("de_DE", True), ("en_US", False), ("en", False),
     ("en_CA", False), ("en_ZA", True)],  # en_CA and en_ZA write short dates year-first: the medium form decides
)
def test_day_first_follows_the_locale(name, first):
    assert day_first(locale_for("", name)) is first


# --------------------------------------------------------------------------- the filters, through the template


def test_an_excel_date_cell_prints_plainly_and_through_the_filters():
    cell = "2026-12-03 09:30:00"  # how an Excel datetime cell reaches the template
    plain = MessageTemplate("See you {{ Appointment }}", HEADER, locale="en_AU")
    assert plain.render_plain is not None  # the fast path stays: printing a cell gives its text
    assert plain.render(["Ann", cell]) == "See you 2026-12-03 09:30:00"
    assert render('{{ Appointment | date("EEE d MMM") }}', cell) == "Thu 3 Dec"  # 2026-12-03 is a Thursday
    assert render("{{ Appointment | date }}", cell) == "Thu 3 Dec"
    assert render("{{ Appointment | time }}", cell) == "9:30am"
    assert render("{{ Appointment | time }}", "09:30:00") == "9:30am"
    assert render("{{ Appointment | date }}", "2026-12-03") == "Thu 3 Dec"


def test_csv_text_in_en_au_is_day_first():
    source = "Hi {{ Name }}, see you {{ Appointment | date }} at {{ Appointment | time }}."
    assert render(source, "30/11/2026 14:30") == "Hi Ann, see you Mon 30 Nov at 2:30pm."
    assert render(source, "3/12/2026 14:30") == "Hi Ann, see you Thu 3 Dec at 2:30pm."


def test_csv_text_in_en_us_is_month_first():
    source = "Hi {{ Name }}, see you {{ Appointment | date }} at {{ Appointment | time }}."
    assert render(source, "11/30/2026 2:30 PM", "en_US") == "Hi Ann, see you Mon 30 Nov at 2:30pm."
    assert render(source, "3/12/2026 2:30 PM", "en_US") == "Hi Ann, see you Thu 12 Mar at 2:30pm."
    assert render(source, "30/11/2026 14:30", "en_US") == "Hi Ann, see you Mon 30 Nov at 2:30pm."


def test_time_is_9_30am_in_english_12_hour_locales_and_the_locales_own_clock_elsewhere():
    cell = "2026-12-03 14:05:00"
    assert render("{{ Appointment | time }}", cell, "en_AU") == "2:05pm"
    assert render("{{ Appointment | time }}", "2026-12-03 00:05:00", "en_US") == "12:05am"
    assert render("{{ Appointment | time }}", "12:00", "en_NZ") == "12:00pm"
    assert render("{{ Appointment | time }}", cell, "en_GB") == "14:05"
    assert render("{{ Appointment | time }}", "9:05", "de_DE") == "09:05"


def test_patterns_are_cldr_and_follow_the_locale():
    cell = "2026-12-03 09:30:00"
    assert render('{{ Appointment | date("EEEE d MMMM y") }}', cell) == "Thursday 3 December 2026"
    assert render('{{ Appointment | date("EEE d MMM \'at\' h:mm a") }}', cell) == "Thu 3 Dec at 9:30 am"
    assert render('{{ Appointment | date("short") }}', cell, "en_AU") == "3/12/26"
    assert render('{{ Appointment | date("short") }}', cell, "en_US") == "12/3/26"
    assert render('{{ Appointment | date(pattern="d/M") }}', cell) == "3/12"
    assert render('{{ Appointment | time("HH:mm") }}', cell) == "09:30"
    assert render('{{ Appointment | date("EEE d MMM") }}', cell, "de_DE") == "Do. 3 Dez."


def test_output_has_plain_spaces_never_cldrs_no_break_spaces():
    # CLDR writes "9:30\u202fam"; one such character would make the whole SMS UCS-2.
    text = render('{{ Appointment | time("short") }} / {{ Appointment | date("full") }}', "2026-12-03 09:30:00")
    assert text == "9:30 am / Thursday, 3 December 2026"
    assert text.isascii()


@pytest.mark.parametrize(
    ("source", "cell", "message"),
    [
        ("{{ Appointment | date }}", "next week",
         "{{ Appointment | date }}: 'next week' is not a date; write it like 30/11/2026 14:30"),
        ('{{ Appointment | date("EEE d MMM") }}', "next week",
         "{{ Appointment | date }}: 'next week' is not a date; write it like 30/11/2026 14:30"),
        ("{{ Appointment | time }}", "soon",
         "{{ Appointment | time }}: 'soon' is not a time; write it like 30/11/2026 14:30"),
        ("{{ Appointment | date }}", "",
         "{{ Appointment | date }}: the value is empty, not a date; write it like 30/11/2026 14:30"),
        ("{{ Appointment | time }}", "2026-12-03",
         "{{ Appointment | time }}: '2026-12-03' has no time of day; write it like 30/11/2026 14:30"),
        ("{{ Appointment | date }}", "09:30:00",
         "{{ Appointment | date }}: '09:30:00' is a time with no date; write it like 30/11/2026 14:30"),
        ('{{ Appointment | date("d MMM h:mm a") }}', "2026-12-03",
         "{{ Appointment | date }}: '2026-12-03' has no time of day for 'd MMM h:mm a'"),
        ("{{ row['Appointment'] | trim | date }}", "31/02/2026",
         "{{ row['Appointment'] | trim | date }}: '31/02/2026' is not a date"),
        ("{{ Appointment | date }}", "y" * 500, "'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...' is not a date"),
    ],
)
def test_a_value_that_is_no_date_is_a_plain_render_error(source, cell, message):
    template = MessageTemplate(source, HEADER, locale="en_AU")
    with pytest.raises(RenderError) as info:
        template.render(["Ann", cell])
    assert message in str(info.value)
    assert str(info.value).startswith("{{")  # no "template error: ValueError" in front


def test_the_example_in_the_error_follows_the_locale():
    with pytest.raises(RenderError, match=r"'next week' is not a date; write it like 11/30/2026 2:30pm"):
        render("{{ Appointment | date }}", "next week", "en_US")


def test_a_bad_written_pattern_or_locale_stops_the_template_when_it_is_loaded(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Hi {{ Name }}\nSee you {{ Appointment | date('EEE at h') }}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"t\.txt:2: the date pattern 'EEE at h' has letters that are not date "
                                            r"fields \(t\); put words in single quotes"):
        MessageTemplate.from_file(path, HEADER)
    with pytest.raises(TemplateError, match="opens a ' that it never closes"):
        MessageTemplate("{{ Appointment | time(\"h 'o''clock\") }}", HEADER)
    with pytest.raises(TemplateError, match="the date pattern is 65 characters long; the limit is 64"):
        MessageTemplate("{{ Appointment | date('" + "d" * 65 + "') }}", HEADER)
    with pytest.raises(TemplateError, match="--locale klingon: not a locale Babel knows"):
        MessageTemplate("{{ Appointment | date }}", HEADER, locale="klingon")
    # a template that prints no dates does not need (or load) the locale
    assert MessageTemplate("{{ Appointment | upper }}", HEADER, locale="klingon").render(["", "x"]) == "X"


def test_a_pattern_computed_per_row_is_checked_per_row():
    template = MessageTemplate("{{ Appointment | date(Name) }}", HEADER)
    assert template.render(["d MMM", "2026-12-03"]) == "3 Dec"
    with pytest.raises(RenderError, match="not date fields"):
        template.render(["Tuesday", "2026-12-03"])


def test_the_filters_are_bounded_like_every_other_filter():
    template = MessageTemplate("{{ Appointment | date }}", HEADER)
    assert template._env.filters["date"].__name__ == "bounded_date"
    assert template._env.filters["time"].__name__ == "bounded_time"
    looped = MessageTemplate("{% for i in range(20000) %}{% for j in range(6) %}{{ Appointment | time }}"
                             "{% endfor %}{% endfor %}", HEADER)
    with pytest.raises(RenderError, match="too much work|longer than"):
        looped.render(["Ann", "9:30"])
    many = MessageTemplate("{{ Appointment | date('" + "EEEE d " * 9 + "') }}", HEADER)  # 63 of 64 characters
    assert many.render(["", "2026-12-03"]) == "Thursday 3 " * 9
    with pytest.raises(TemplateError, match=r"the date pattern 'MMMMMM' is not one CLDR knows"):
        MessageTemplate("{{ Appointment | date('MMMMMM') }}", HEADER)


def test_a_long_cell_is_refused_at_once():
    with pytest.raises(RenderError, match=r"'30/11/2026 14:30 30/11/2026 14:30 30/...' is not a date"):
        render("{{ Appointment | date }}", "30/11/2026 14:30 " * 10_000)


def test_filters_work_wherever_jinja_calls_them():
    assert render("{% filter date %}2026-12-03{% endfilter %}", "") == "Thu 3 Dec"
    assert render("{{ ['2026-12-03', '2026-12-04'] | map('date') | join(', ') }}", "") == "Thu 3 Dec, Fri 4 Dec"
    assert render("{% if Appointment %}on {{ Appointment | date }}{% endif %}", "") == ""
    with pytest.raises(RenderError, match=r"^the date filter: 'x' is not a date"):
        render("{{ ['x'] | map('date') | join }}", "")


def test_a_column_named_date_or_time_does_not_clash_with_the_filters():
    template = MessageTemplate("{{ date }} {{ time | time }}", ["date", "time"])
    assert template.render(["3/12/2026", "2026-12-03 16:00:00"]) == "3/12/2026 4:00pm"


def test_the_locale_travels_with_a_pickled_template():
    template = MessageTemplate("{{ Appointment | date }}", HEADER, locale=locale_for("US", None))
    copy = pickle.loads(pickle.dumps(template))
    assert copy.render(["Ann", "3/12/2026"]) == template.render(["Ann", "3/12/2026"]) == "Thu 12 Mar"
    assert pickle.loads(pickle.dumps(MessageTemplate("{{ Appointment | date }}", HEADER))).locale is None


def test_no_locale_is_the_default_country_australia():
    assert MessageTemplate("{{ Appointment | date }} {{ Appointment | time }}", HEADER).render(
        ["", "3/12/2026 9:30"]) == "Thu 3 Dec 9:30am"
