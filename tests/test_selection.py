"""Which rows go and what the law asks (issue #10): --where, --consent-column, --skip-empty, --marketing,
"Reply STOP" from a sender ID, the sender-ID register's length, --locale; and invisible characters in
cell values (issue #14). End to end through the real CLI on real CSV files."""

import json

import pytest
from click.testing import CliRunner

from batchsms import Options, check_sheet, rules
from batchsms.cli import main
from batchsms.phones import PhoneBook

from .helpers import write_csv

HEADER = ["Phone", "First Name", "Clinic", "Consent", "From"]
ROWS = [
    ["0412 555 120", "Ann", "Parramatta", "yes", "0412 555 999"],
    ["0412 555 121", "Bo", "Penrith", "Y", "0412 555 999"],
    ["0412 555 122", "Cy", "Parramatta", "no", "0412 555 999"],
    ["0412 555 123", "Di", "Parramatta", "", "0412 555 999"],
    ["0412 555 124", "Ed", "Parramatta", "TRUE", "0412 555 999"],
]


def sheet(tmp_path, rows=ROWS, header=HEADER, name="contacts.csv"):
    return write_csv(tmp_path / name, [header, *rows])


def run_check(path, *args):
    result = CliRunner().invoke(main, ["check", str(path), "--no-preview", "--json", *args])
    return result


def verdicts(path, *args, text="Hi {{ First_Name }}, reply STOP to opt out"):
    result = run_check(path, "--text", text, *args)
    assert result.exit_code in (0, 1), result.output
    report = path.with_name(path.stem + ".report.csv").read_text(encoding="utf-8-sig")
    return result, report


def statuses(path, *args, **kwargs):
    report = check_sheet(path, Options(text=kwargs.get("text", "Hi {{ First_Name }}, reply STOP to opt out"),
                                       **{k: v for k, v in kwargs.items() if k != "text"}), *args)
    return {r.row: (str(r.status), [i.code for i in r.issues]) for r in report.results}


# --------------------------------------------------------------------------- --where


def test_where_skips_the_rows_it_is_false_for(tmp_path):
    path = sheet(tmp_path)
    got = statuses(path, where="Clinic == 'Parramatta' and First_Name != 'Di'")
    assert got == {
        2: ("valid", []), 3: ("skipped", ["not-selected"]), 4: ("valid", []),
        5: ("skipped", ["not-selected"]), 6: ("valid", []),
    }


def test_a_row_not_selected_is_not_an_error_even_when_invalid(tmp_path):
    path = sheet(tmp_path, rows=[*ROWS, ["not a number", "Fi", "Penrith", "yes", ""]])
    got = statuses(path, where="Clinic == 'Parramatta'")
    assert got[7] == ("skipped", ["not-selected"])
    result = run_check(path, "--text", "Hi", "--where", "Clinic == 'Parramatta'")
    assert result.exit_code == 0, result.output


def test_where_reads_headers_as_the_template_does_and_row(tmp_path):
    path = sheet(tmp_path)
    got = statuses(path, where="row['First Name'] in ('Ann', 'Ed')")
    assert [row for row, (status, _) in got.items() if status == "valid"] == [2, 6]


@pytest.mark.parametrize(("where", "message"), [
    ("Clinc == 'x'", "batchsms: error: --where Clinc == 'x': the sheet has no column Clinc; did you mean "
                     "Clinic? (a header with spaces is written with _, or as row['First Name'])\n"),
    ("Clinic ==", "batchsms: error: --where Clinic ==: not an expression batchsms can read"),
])
def test_a_where_that_cannot_work_is_one_line_before_any_row(tmp_path, where, message):
    result = run_check(sheet(tmp_path), "--text", "Hi", "--where", where)
    assert result.exit_code == 2
    assert result.output.startswith(message)
    assert result.output.count("\n") == 1


def test_where_runs_in_the_sandbox(tmp_path):
    report = check_sheet(sheet(tmp_path), Options(text="Hi", where="Clinic.__class__.__mro__[1].__subclasses__()"))
    assert {str(r.status) for r in report.results} == {"invalid"}
    issue = report.results[0].issues[-1]
    assert (issue.code, issue.column) == ("template-error", "--where")
    assert issue.message.startswith("--where cannot be worked out for this row: ")


# --------------------------------------------------------------------------- --consent-column, --skip-empty


def test_consent_column_skips_rows_without_a_yes(tmp_path):
    got = statuses(sheet(tmp_path), consent_column="consent")  # case and spaces do not matter
    assert got == {
        2: ("valid", []), 3: ("valid", []), 4: ("skipped", ["no-consent"]),
        5: ("skipped", ["no-consent"]), 6: ("valid", []),
    }


def test_the_consent_message_quotes_the_cell(tmp_path):
    path = sheet(tmp_path)
    report = check_sheet(path, Options(text="Hi", consent_column="Consent"))
    assert [i.message for i in report.results[2].issues] == [
        "skipped: Consent is 'no', not yes; only rows with yes, y, true or 1 are sent (--consent-column)"]
    assert [i.message for i in report.results[3].issues] == [
        "skipped: Consent is empty, not yes; only rows with yes, y, true or 1 are sent (--consent-column)"]


def test_a_missing_consent_column_stops_the_run(tmp_path):
    result = run_check(sheet(tmp_path), "--text", "Hi", "--consent-column", "Agreed")
    assert result.exit_code == 2
    assert result.output == ("batchsms: error: --consent-column 'Agreed': the sheet has no such column "
                             "(columns: 'Phone', 'First Name', 'Clinic', 'Consent', 'From')\n")


def test_skip_empty_skips_rows_the_template_writes_nothing_for(tmp_path):
    text = "{% if Clinic == 'Penrith' %}Penrith is closed on Friday{% endif %}"
    assert statuses(sheet(tmp_path), text=text)[2] == ("invalid", ["empty-text"])
    got = statuses(sheet(tmp_path), text=text, skip_empty=True)
    assert got == {2: ("skipped", ["empty-message"]), 3: ("valid", []), 4: ("skipped", ["empty-message"]),
                   5: ("skipped", ["empty-message"]), 6: ("skipped", ["empty-message"])}


def test_skip_empty_keeps_other_errors(tmp_path):
    rows = [["0412", "Ann", "Penrith", "yes", ""]]
    got = statuses(sheet(tmp_path, rows=rows), text="{{ '' }}", skip_empty=True)
    assert got[2][0] == "invalid"


# --------------------------------------------------------------------------- the law


def test_marketing_needs_an_opt_out_in_every_text(tmp_path):
    path = sheet(tmp_path)
    got = statuses(path, text="Hi {{ First_Name }}, 20% off this week", marketing=True)
    assert {s for s, _ in got.values()} == {"invalid"}
    assert got[2][1] == ["no-opt-out"]
    for text in ("20% off. Reply STOP to opt out", "20% off. Opt-out: example.com/u/1", "20% off. Unsubscribe",
                 "20% off https://ex.co/x", "20% off. Text OPTOUT to stop"):
        assert {s for s, _ in statuses(path, text=text, marketing=True).values()} == {"valid"}, text


def test_without_marketing_no_opt_out_is_needed(tmp_path):
    assert {s for s, _ in statuses(sheet(tmp_path), text="20% off").values()} == {"valid"}


def test_reply_stop_from_a_sender_id_is_a_warning_then_an_error_when_marketing(tmp_path):
    rows = [["0412 555 120", "Ann", "Parramatta", "yes", "CityDental"],
            ["0412 555 121", "Bo", "Penrith", "yes", ""],  # leased: replies reach it
            ["0412 555 122", "Cy", "Penrith", "yes", "+61412555999"]]
    path = sheet(tmp_path, rows=rows)
    got = statuses(path)
    assert got == {2: ("valid", ["opt-out-unreachable"]), 3: ("valid", []), 4: ("valid", [])}
    report = check_sheet(path, Options(text="Hi {{ First_Name }}, reply STOP to opt out"))
    issue = report.results[0].issues[0]
    assert (issue.column, issue.value, str(issue.severity)) == ("From", "CityDental", "warning")
    assert issue.message == (
        "the text asks for a reply ('reply STOP') but comes from the sender ID 'CityDental', which cannot receive "
        "replies: send from a number (or leave From blank for a leased one), or give a link to opt out")
    got = statuses(path, marketing=True)
    assert got[2] == ("invalid", ["opt-out-unreachable"])
    assert got[3] == ("valid", [])


def test_marketing_from_the_config_file(tmp_path, monkeypatch):
    config = tmp_path / "batchsms.ini"
    config.write_text("[batchsms]\nmarketing = true\n", encoding="utf-8")
    monkeypatch.setenv("BATCHSMS_CONFIG", str(config))
    path = sheet(tmp_path)
    result = run_check(path, "--text", "20% off")
    assert result.exit_code == 1
    assert json.loads(result.output)["rows_with_errors"] == 5
    result = run_check(path, "--text", "20% off", "--no-marketing")
    assert result.exit_code == 0, result.output


def test_a_bad_marketing_value_in_the_config_is_one_line(tmp_path, monkeypatch):
    config = tmp_path / "batchsms.ini"
    config.write_text("[batchsms]\nmarketing = maybe\n", encoding="utf-8")
    monkeypatch.setenv("BATCHSMS_CONFIG", str(config))
    result = run_check(sheet(tmp_path), "--text", "Hi")
    assert result.exit_code == 2
    assert result.output == f"batchsms: error: {config}: [batchsms] marketing = 'maybe': write true or false\n"


@pytest.mark.parametrize(("raw", "value", "code"), [
    ("CityDental", "CityDental", None),
    ("AB", "AB", None),
    ("C", None, "invalid-sender"),
    ("12345", None, "invalid-sender"),
    ("CityDentalClinic", None, "invalid-sender"),
])
def test_sender_ids_follow_the_register_format(raw, value, code):
    got, problems = rules.check_from(raw, PhoneBook("AU"))
    assert got == value
    assert [p.code for p in problems] == ([code] if code else [])


def test_a_one_character_sender_names_the_rule():
    _, problems = rules.check_from("C", PhoneBook("AU"))
    assert problems[0].message == ("From is not a valid sender ID: 'C' is 1 character; sender IDs take 2 to 11 "
                                   "(the Australian sender-ID register's rule, from July 2026)")


# --------------------------------------------------------------------------- --locale


def test_locale_decides_how_dates_read_and_print(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Phone", "When"], ["0412 555 120", "3/12/2026 9:30"]])
    text = "See you {{ When | date }} at {{ When | time }}"
    au = check_sheet(path, Options(text=text))
    us = check_sheet(path, Options(text=text, locale="en_US"))
    assert au.results[0].text == "See you Thu 3 Dec at 9:30am"
    assert us.results[0].text == "See you Thu 12 Mar at 9:30am"


def test_locale_from_the_config_file_and_a_bad_one(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "c.csv", [["Phone", "When"], ["0412 555 120", "3/12/2026"]])
    config = tmp_path / "batchsms.ini"
    config.write_text("[batchsms]\nlocale = en_US\n", encoding="utf-8")
    monkeypatch.setenv("BATCHSMS_CONFIG", str(config))
    assert check_sheet(path, Options(text="{{ When | date }}")).results[0].text == "Thu 12 Mar"
    result = run_check(path, "--text", "Hi", "--locale", "zz_ZZ")
    assert result.exit_code == 2
    assert result.output == ("batchsms: error: --locale zz_ZZ: not a locale Babel knows; write it like en_AU, "
                             "en_US or de_DE\n")


# --------------------------------------------------------------------------- invisible characters in cells (#14)


@pytest.mark.parametrize(("column", "raw", "sent", "field"), [
    ("From", "\u200bCityDental", "CityDental", "From"),
    ("From", "City\u2060Dental", "CityDental", "From"),
    ("ForwardToEmail", "ann@example.com\ufeff", "ann@example.com", "ForwardToEmail"),
    ("WebhookUri", "https://exa\u200dmple.com/hook", "https://example.com/hook", "WebhookUri"),
])
def test_a_value_with_invisible_characters_is_read_clean_with_a_warning(tmp_path, column, raw, sent, field):
    path = write_csv(tmp_path / "c.csv", [["Phone", column], ["0412 555 120", raw]])
    report = check_sheet(path, Options(text="Hello there"))
    result = report.results[0]
    assert str(result.status) == "valid"
    assert result.body[field] == sent
    assert [i.code for i in result.issues] == ["invisible-character"]
    assert "U+" in result.issues[0].message and repr(sent) in result.issues[0].message


def test_a_phone_number_with_invisible_characters_needs_no_warning(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Phone"], ["\u200b0412\u2060555 120\ufeff"]])
    result = check_sheet(path, Options(text="Hello there")).results[0]
    assert (str(result.status), result.body["To"], result.issues) == ("valid", "+61412555120", [])


def test_the_warning_names_the_character():
    _, problems = rules.check_from("City\u200bDental", PhoneBook("AU"))
    assert problems[0].message == (
        "From holds a zero width space (U+200B), which nobody can see; it is read and sent as 'CityDental'. "
        "Retype the cell to remove it")
