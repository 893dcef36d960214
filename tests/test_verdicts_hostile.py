"""Hostile templates are bounded, and five smaller verdicts are right (issue 7).

Templates built to hang or eat memory (``{{ 7**(7**10) }}``, ``{{ 'x'*10**9 }}``,
nested ``range()`` loops, doubling strings…) run in a child process with a hard
timeout, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from batchsms import rules
from batchsms.cells import csv_safe
from batchsms.cli import main
from batchsms.phones import PhoneBook
from batchsms.template import MessageTemplate

from .helpers import write_csv

ROOT = Path(__file__).resolve().parent.parent
BOOK = PhoneBook("AU")
SYD = ZoneInfo("Australia/Sydney")



def send(sandbox, tmp_path, *args):
    """``batchsms send … --yes`` through CliRunner against the sandbox fixture, no config file read."""
    env = {"BATCHSMS_BASE_URL": sandbox.url, "BATCHSMS_ACCOUNT_SID": sandbox.account_sid,
           "BATCHSMS_AUTH_TOKEN": sandbox.auth_token, "BATCHSMS_PROPERTY_SID": "PS1",
           "XDG_CONFIG_HOME": str(tmp_path), "BATCHSMS_CONFIG": ""}
    return CliRunner().invoke(main, ["send", *[str(a) for a in args], "--yes"], env=env, catch_exceptions=False)


# --------------------------------------------------------------------------- templates made to hurt

#: (name, template, how it must end): "load" = TemplateError when the template is read,
#: "row" = RenderError on the row (the cells below make the breach), "ok" = renders.
HOSTILE = [
    ("power tower", "{{ 7**(7**10) }}", "load", "computes a number too large to be a message"),
    ("huge repeat", "{{ 'x'*10**9 }}", "load", "too long to be a message"),
    ("nested million ranges",
     "{% for a in range(10**6) %}{% for b in range(10**6) %}x{% endfor %}{% endfor %}", "load", "range()"),
    ("nested ranges under the range limit",
     "{% for a in range(20000) %}{% for b in range(20000) %}{% endfor %}{% endfor %}", "load", "too much work"),
    ("output flood", "{% for a in range(20000) %}{{ 'y' * 20000 }}{% endfor %}", "load", "longer than 20,000"),
    ("doubling string",
     "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
     "load", "characters"),
    ("captured flood", "{% set x %}{% for i in range(20000) %}{{ Notes }}{% endfor %}{% endset %}{{ x|length }}",
     "row", "characters of text"),
    ("exponential macro",
     "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}", "load", "too much work"),
    ("center filter", "{{ 'x'|center(10**9) }}", "load", "center()"),
    ("center method", "{{ 'x'.center(10**9) }}", "load", "center()"),
    ("printf width", "{{ '%999999999d' % 1 }}", "load", "width"),
    ("format width", "{{ '{:>999999999}'.format(1) }}", "load", "width"),
    ("replace growth", "{{ 'x'|replace('', 'y'*5000)|replace('', 'y'*5000) }}", "load", "replace()"),
    ("to_bytes", "{{ (1).to_bytes(10**9, 'big') }}", "load", "to_bytes()"),
    ("list of long texts", "{{ ['y'*20000]*20000 }}", "load", "too long to be a message"),
    ("data-driven repeat", "{{ '-' * (Count|int) }}", "row", "too long to be a message"),
    ("data-driven loops",
     "{% for a in range(Count|int) %}{% for b in range(Count|int) %}.{% endfor %}{% endfor %}", "row", ""),
    ("a fair template", "Hi {{ First_Name|title }}{% for x in 'ab' %} {{ x ~ loop.index }}{% endfor %}", "ok",
     "Hi Ann a1 b2"),
]

_CHILD = textwrap.dedent("""
    import json, sys, time
    from batchsms.errors import TemplateError
    from batchsms.template import MessageTemplate, RenderError
    out = {}
    for name, source in json.load(sys.stdin):
        start = time.perf_counter()
        try:
            template = MessageTemplate(source, ["First Name", "Count", "Notes"], name="templates/x.txt")
            text = template.render(["ann", "1000000000", "n" * 1000])
            outcome, message = "ok", text[:200]
        except TemplateError as exc:
            outcome, message = "load", str(exc)
        except RenderError as exc:
            outcome, message = "row", str(exc)
        out[name] = [outcome, message, time.perf_counter() - start]
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def hostile_outcomes():
    """Every hostile template, rendered in one child process that is killed after 60 s."""
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps([(n, s) for n, s, *_ in HOSTILE]),
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("hostile templates still hang: the child was killed after 60 s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize(("name", "source", "expected", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_template_is_bounded(hostile_outcomes, name, source, expected, words):
    outcome, message, seconds = hostile_outcomes[name]
    assert (outcome, seconds < 2.0) == (expected, True), (message, seconds)
    assert words in message
    if expected == "load":
        assert message.startswith("templates/x.txt")


def test_compile_time_breach_names_file_and_line(tmp_path):
    child = textwrap.dedent("""
        import sys
        from batchsms.errors import TemplateError
        from batchsms.template import MessageTemplate
        try:
            MessageTemplate.from_file(sys.argv[1], ["Name"])
        except TemplateError as exc:
            print(exc)
    """)
    path = tmp_path / "x.txt"
    path.write_text("Hello {{ Name }}\n\n{{ 7**(7**10) }}\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True, timeout=30,
                          cwd=ROOT)
    assert proc.stdout.startswith(f"{path}:3: the template computes a number too large to be a message"), proc


def test_cli_stops_on_a_hostile_template_and_flags_rows_that_breach(tmp_path):
    """The real CLI in a child: a template that breaches on every row stops the run (exit 2, one line);
    one that breaches only on some rows makes those rows errors in the report."""
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "Count"], ["0412345677", "3"], ["0412345679", "999999999"]])
    template = tmp_path / "t.txt"
    template.write_text("Hi\n{{ 'x' * 10**9 }}\n", encoding="utf-8")
    run = [sys.executable, "-m", "batchsms", "check", str(sheet)]
    proc = subprocess.run([*run, "--template", str(template)], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and f"{template}:2: the template builds" in proc.stderr

    template.write_text("Hi {{ '.' * (Count|int) }}", encoding="utf-8")
    proc = subprocess.run([*run, "--template", str(template), "--report", str(tmp_path / "r.csv")],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr
    rows = list(csv.reader(io.StringIO((tmp_path / "r.csv").read_text(encoding="utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["3"] and rows[1][4] == "template-error"
    assert "too long to be a message" in rows[1][5]


def test_render_deadline_is_a_backstop(monkeypatch):
    import batchsms.template as template_module

    monkeypatch.setattr(template_module, "MAX_SECONDS", 0.0)
    with pytest.raises(template_module.RenderError, match="took more than"):
        MessageTemplate("{% for i in range(Count|int) %}.{% endfor %}", ["Count"]).render(["1000"])


# --------------------------------------------------------------------------- one naming rule for both renderers

NAMES = ["Mobile", "self", "row", "loop", "range", "True", "Name", "Name", "First Name", "First_Name"]
CELLS = ["0412345677", "S", "R", "L", "G", "T", "N1", "N2", "F-space", "F-under"]


AWKWARD = [
    ("{{ self }}", "S"),
    ("{{ loop }}|{{ range }}", "L|G"),
    ("{{ Name }}", "N1"),
    ("{{ row['Name'] }}", "N1"),
    ("{{ First_Name }}", "F-under"),
    ("{{ row['First_Name'] }}/{{ row['First Name'] }}", "F-under/F-space"),
    ("{{ True }} {{ row['True'] }} {{ row['row'] }} {{ row.self }}", "True T R S"),
    ("{% for x in 'ab' %}{{ self }}{% endfor %}", "SS"),
]


def test_fast_path_and_jinja_agree_on_awkward_headers():
    """A column wins over Jinja's names (self, loop, range); the first of two same-named columns wins;
    a header's own name wins over another header's identifier form."""
    got = []
    for source, _ in AWKWARD:
        fast = MessageTemplate(source, NAMES)
        slow = MessageTemplate(source, NAMES)
        slow.render_plain = None
        got.append((source, fast.render(CELLS), slow.render(CELLS)))
    assert got == [(source, expected, expected) for source, expected in AWKWARD]


def test_awkward_headers_end_to_end(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "self", "Name", "Name"], ["0412345677", "S", "N1", "N2"]])
    result = send(sandbox, tmp_path, sheet, "--text", "{{ self }} {{ Name }} {{ row['Name'] }}")
    assert result.exit_code == 0, result.output
    assert [m["Text"] for m in sandbox.state.taken] == ["S N1 N1"]


# --------------------------------------------------------------------------- two numbers in one cell


@pytest.mark.parametrize(
    "raw",
    ["0412345677;0412345679", "0412345677 / 0412345679", "0412345677,0412345679", "0412345677 or 0412345679",
     "0412345677 & 0412345679", "0412345677\n0412345679", "+61 412 345 677 | +61 412 345 679"],
)
def test_a_cell_with_two_numbers_is_an_error(raw):
    value, problems = rules.check_to(raw, BOOK)
    assert value is None and [(p.severity, p.code) for p in problems] == [("error", "two-numbers")]
    assert "holds two numbers (" in problems[0].message and "put one number per row" in problems[0].message


def test_two_numbers_message_names_them():
    assert rules.check_to("0412345677;0412345679", BOOK)[1][0].message == (
        "this cell holds two numbers (0412345677 and 0412345679); put one number per row"
    )


def test_one_number_however_formatted_is_not_two():
    singles = {"+61 (0)412 345 677": "+61412345677", "0412-345-677": "+61412345677", "(02) 9876 5432": "+61298765432",
               "+61 2 9876 5432,123": "+61298765432", "0412.345.677": "+61412345677",
               "0412345677;0412345679": None}
    got = {raw: rules.check_to(raw, BOOK)[0] for raw in singles}
    assert got == singles  # the last is two numbers: no value


def test_two_numbers_end_to_end(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "Name", "Clinic"], ["0412345677;0412345679", "Ann", "Bondi"],
                                           ["0412345670", "Bo", "Manly"]])
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "Hi {{ Name }}",
                                       "--report", str(tmp_path / "r.csv")])
    assert result.exit_code == 1, result.output
    rows = list(csv.reader(io.StringIO((tmp_path / "r.csv").read_text(encoding="utf-8-sig"))))
    assert [r[:5] for r in rows[1:]] == [["2", "Mobile", "0412345677;0412345679", "error", "two-numbers"]]


# --------------------------------------------------------------------------- invisible text


@pytest.mark.parametrize(
    "text", ["\u200b", "\ufeff", "\x00", "\u2060\u200c\u200d", "\u00ad", "\u200b \u200b\n", "\u3164", "\ufe0f"]
)
def test_a_text_of_invisible_characters_is_empty(text):
    _, problems = rules.check_text(text, 10)
    assert [(p.severity, p.code) for p in problems] == [("error", "empty-text")]
    assert "holds only invisible characters" in problems[0].message


def test_a_text_with_something_visible_is_a_message():
    texts = ["Hi\u200b", "\u200bHi", "🌸", "é", "\u00a0.\u00a0", "\u200b"]
    assert [bool(rules.check_text(t, 10)[1]) for t in texts] == [False] * 5 + [True]


def test_invisible_text_end_to_end(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["To", "Text"], ["0412345677", "\u200b\ufeff"], ["0412345679", "hi"]])
    result = CliRunner().invoke(main, ["check", str(sheet), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 1, result.output
    issues = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["issues"]
    assert [(i["row"], i["code"]) for i in issues] == [(2, "empty-text")]
    assert "holds only invisible characters" in issues[0]["message"]


# --------------------------------------------------------------------------- daylight-saving gaps and overlaps


def test_a_time_the_clocks_show_twice_is_an_error():
    now = dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc).timestamp()
    value, problems = rules.check_schedule("2026-04-05 02:30", SYD, now)
    assert value is None and [(p.severity, p.code) for p in problems] == [("error", "ambiguous-time")]
    assert problems[0].message == (
        "2026-04-05 02:30 happens twice in Australia/Sydney: first at +11:00 (AEDT), then at +10:00 (AEST); "
        "write the offset, e.g. 2026-04-05T02:30+10:00"
    )
    suggested = problems[0].message.rsplit("e.g. ", 1)[1]
    assert rules.check_schedule(suggested, SYD, now) == (
        int(dt.datetime(2026, 4, 4, 16, 30, tzinfo=dt.timezone.utc).timestamp()), ()
    )


def test_a_time_the_clocks_skip_is_an_error_naming_both_readings():
    now = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc).timestamp()
    value, problems = rules.check_schedule("2026-10-04 02:30", SYD, now)
    assert value is None and [(p.severity, p.code) for p in problems] == [("error", "nonexistent-time")]
    assert "could mean Sun 4 Oct 2026 03:30 AEDT (+11:00) or Sun 4 Oct 2026 01:30 AEST (+10:00)" in problems[0].message
    assert rules.check_schedule("2026-10-04 03:30", SYD, now)[1] == ()  # just after the gap: fine


def test_clock_change_end_to_end(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["To", "Text", "Schedule"], ["0412345677", "hi", "2026-04-05 02:30"],
                                           ["0412345679", "hi", "2026-10-04 02:30"]])
    result = CliRunner().invoke(main, ["check", str(sheet), "--timezone", "Australia/Sydney", "--report",
                                       str(tmp_path / "r.json")])
    assert result.exit_code == 1, result.output
    issues = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["issues"]
    assert [(i["row"], i["code"]) for i in issues] == [(2, "ambiguous-time"), (3, "nonexistent-time")]


# --------------------------------------------------------------------------- formulas, whatever the delimiter


def _live_formulas(text: str) -> list[str]:
    """Fields a spreadsheet would run, reading ``text`` with each list separator in use.

    Python's csv reader, like Excel, honours a quote only at the start of a field.
    """
    found = []
    for delimiter in (",", ";", "\t", "|"):
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            for field in row:
                start = field.lstrip(' "')
                if start[:1] in ("=", "@") or (start[:1] in "+-" and start[:1] and not
                                               start[1:].replace(" ", "").replace(".", "").isdigit()):
                    found.append(field)
    return found


@pytest.mark.parametrize(
    "value",
    ["Bob;=cmd|' /C calc'!A0", "x\t=1", "a\n=HYPERLINK(\"http://evil\")", "Bob; \"=cmd\"", "ok|+SUM(A1)", "\t=1",
     "Bob,@SUM(1)"],
)
def test_formula_text_anywhere_is_made_inert(value):
    safe = csv_safe(value)
    assert safe.startswith("'")
    line = io.StringIO()
    csv.writer(line, quoting=csv.QUOTE_ALL).writerow(["12", safe, "x"])
    assert _live_formulas(line.getvalue()) == []
    assert csv_safe(safe) == safe  # already inert: left alone


def test_plain_numbers_and_text_stay_as_written():
    """No ' before a plain number. ``+1 (555) 010-9999`` stays too: without a letter a formula can call
    no function and name no cell, and a ' would change the number for every program reading the file."""
    values = ["-12.50", "+61 412 345 677", "-5", "+1 (555) 010-9999", "2026-12-01", "ann@example.com", "a=b",
              "x;-1.5;+2", "Hi - bye"]
    assert [v for v in values if csv_safe(v) is not v] == []
    assert [csv_safe(v) for v in ("=1+2", "@SUM(1)", "-2+3", "=123")] == ["'=1+2", "'@SUM(1)", "'-2+3", "'=123"]


def test_report_and_results_stay_inert_for_any_list_separator(sandbox, tmp_path):
    evil = "Bob;=cmd|' /C calc'!A0"
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "Name", "Amount"], ["0412345677", evil, "-12.50"],
                                           [evil, "Ann", "+61 412 345 677"]])
    result = send(sandbox, tmp_path, sheet, "--text", "Hi")
    assert result.exit_code == 1, result.output
    results = (tmp_path / "c.results.csv").read_text(encoding="utf-8-sig")
    assert _live_formulas(results) == []
    rows = list(csv.reader(io.StringIO(results)))
    assert rows[1][1:3] == ["'Bob;'=cmd|' /C calc'!A0", "-12.50"] and rows[2][2] == "+61 412 345 677"

    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "Hi", "--report", str(tmp_path / "r.csv")])
    assert result.exit_code == 1
    report = (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
    assert _live_formulas(report) == [] and "'Bob;'=cmd" in report
