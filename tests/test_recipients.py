"""Recipients as a careful colleague reads them (issue #10, "Recipients"): each row's country, country
codes without their +, landlines as errors, the mobile a landline would be in the sheet's other
countries, placeholders, and exact reasons. Rules are tested alone; the behaviours end to end, through
the real CLI on real CSV and XLSX files."""

import json

import pytest
from click.testing import CliRunner

from batchsms import Options, check_sheet, rules
from batchsms.check import RowChecker, check
from batchsms.cli import main
from batchsms.phones import PhoneBook, line_in, region_for, regions_named
from batchsms.sheet import load

from .helpers import read_results, write_csv, write_xlsx

AU, NZ = PhoneBook("AU"), PhoneBook("NZ")


def codes(problems):
    return [(str(p.severity), p.code) for p in problems]


# --------------------------------------------------------------------------- the rules alone


@pytest.mark.parametrize(
    ("raw", "book", "value", "expected"),
    [
        ("0412 555 123", AU, "+61412555123", []),
        ("027 338 7500", NZ, "+64273387500", []),  # national New Zealand mobile, read in NZ
        ("61412555123", AU, "+61412555123", []),  # the default country's own code: phonenumbers reads it
        ("64218250671", AU, "+64218250671", [("warning", "read-as-international")]),
        ("0064 21 825 0671", AU, "+64218250671", [("warning", "read-as-international")]),
        ("027 338 7500", AU, "+61273387500", [("error", "not-mobile")]),  # read in AU: a Sydney landline
        ("1800 123 456", AU, "+611800123456", [("error", "not-mobile")]),
        ("0400 000 000", AU, "+61400000000", [("warning", "placeholder-number")]),
        ("0412 345 678", AU, "+61412345678", [("warning", "placeholder-number")]),  # the example number
        ("0423 456 789", AU, "+61423456789", [("warning", "placeholder-number")]),  # digits counting up
        ("021 123 4567", NZ, "+64211234567", [("warning", "placeholder-number")]),  # NZ's example mobile
        ("0412 000 000", AU, "+61412000000", []),  # six zeros are a real number's, seven are a placeholder's
        ("n/a", AU, None, [("error", "invalid-phone")]),
        ("12345", AU, None, [("error", "invalid-phone")]),
        ("0412 555 123; 0412 555 124", AU, None, [("error", "two-numbers")]),
    ],
)
def test_check_to(raw, book, value, expected):
    got, problems = rules.check_to(raw, book)
    assert (got, codes(problems)) == (value, expected)


def test_a_country_code_without_its_plus_names_the_reading():
    _, problems = rules.check_to("64218250671", AU)
    assert problems[0].message == ("read as +64 21 825 0671 (a New Zealand mobile): the digits start with its "
                                   "country code; write +64 to be sure")


def test_not_a_mobile_is_an_error_unless_landlines_are_allowed():
    _, (error,) = rules.check_to("(02) 9876 5432", AU)
    assert (str(error.severity), error.message) == (
        "error", "this is an Australian landline (+61 2 9876 5432); SMS to it is at best read out as a voice call; "
        "use the person's mobile number, or --allow-landlines to send anyway")
    value, (warning,) = rules.check_to("(02) 9876 5432", AU, allow_landlines=True)
    assert (value, str(warning.severity), warning.code) == ("+61298765432", "warning", "not-mobile")
    assert "--allow-landlines" in warning.message


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("n/a", "not a phone number: the cell says 'n/a'"),
        ("none", "not a phone number: the cell says 'none'"),
        ("-", "not a phone number: the cell says '-'"),
        ("041234567", "it is too short (9 digits; an Australian mobile has 10, as in 0412 345 678)"),
        ("04123456789", "it is too long (11 digits; an Australian mobile has 10, as in 0412 345 678)"),
        ("+61 4123", "it is too short (6 digits; an Australian mobile has 11, as in +61 412 345 678)"),
        ("0512 345 678", "it is not a number in use in Australia"),
        ("0412 345 67X", "it contains letters (X)"),
    ],
)
def test_reasons_are_exact(raw, reason):
    _, (problem,) = rules.check_to(raw, AU)
    assert problem.code == "invalid-phone" and reason in problem.message, problem.message


def test_a_national_number_read_in_the_wrong_country_says_so():
    _, (problem,) = rules.check_to("12345", AU)
    assert problem.message.endswith("without a country code it was read as AU (Australia): write +<country code>, "
                                    "or set the row's Country column or --country")
    _, (problem,) = rules.check_to("+61 4123", AU)  # it has a country code: nothing was guessed
    assert "read as" not in problem.message


def test_other_readings_name_the_mobile_it_would_be_elsewhere():
    books = [AU, NZ, PhoneBook("GB")]
    assert rules.other_readings("027 338 7500", "AU", books, "add a Country column") == (
        "if this is a New Zealand mobile (+64 27 338 7500), write +64 or add a Country column")
    assert rules.other_readings("+61 2 7338 7500", "AU", books, "x") == ""  # written with its country code
    assert rules.other_readings("0412 555 123", "AU", books, "x") == ""  # nothing elsewhere


def test_placeholder_message_names_why():
    _, (problem,) = rules.check_to("0400 000 000", AU)
    assert problem.message == ("this looks like a placeholder, not a person's number (+61 400 000 000): it ends in "
                               "seven 0s; write the real number, or ignore this if it is one")


@pytest.mark.parametrize(
    ("value", "region"),
    [("NZ", "NZ"), ("nz", "NZ"), (" New Zealand ", "NZ"), ("new zealand", "NZ"), ("UK", "GB"), ("England", "GB"),
     ("United States of America", "US"), ("Côte d’Ivoire", "CI"), ("Cote d'Ivoire", "CI"), ("St Lucia", "LC"),
     ("the Netherlands", "NL"), ("+64", "NZ"), ("Atlantis", None), ("XX", None), ("", None), ("+999", None)],
)
def test_countries_by_code_name_or_calling_code(value, region):
    assert region_for(value) == region


def test_regions_named_refuses_what_is_no_country_once():
    assert regions_named("AU, nz,New Zealand", "--countries") == ("AU", "NZ")
    with pytest.raises(ValueError, match=r"--countries: 'XX', 'Mars' are not a country"):
        regions_named("AU,XX,Mars", "--countries")


def test_line_in_reads_as_english():
    assert [line_in("landline", "AU"), line_in("mobile", "NZ"), line_in("mobile", "IE"), line_in("toll-free", "KE"),
            line_in("mobile", "US")] == ["an Australian landline", "a New Zealand mobile", "an Irish mobile",
                                         "a toll-free number in Kenya", "a US mobile"]


def test_one_phone_book_per_country_keeps_its_cache(tmp_path):
    rows = [["Mobile", "Country"]] + [["027 338 7500", c] for c in ("NZ", "New Zealand", "nz", "", "AU")] * 20
    sheet = load(write_csv(tmp_path / "c.csv", rows))
    checker = RowChecker(sheet, check_options())
    results = [checker.check(i) for i in range(len(sheet.rows))]
    assert sorted(checker.books) == ["AU", "NZ"]
    assert checker.book_of_cell("NZ") is checker.book_of_cell("New Zealand") is checker.books["NZ"]
    assert len(checker.books["NZ"]._cache) == 1  # one verdict for 60 rows
    assert [r.to for r in results[:5]] == ["+64273387500"] * 3 + ["+61273387500"] * 2


def check_options(**kwargs):
    from batchsms.check import CheckOptions
    from batchsms.template import MessageTemplate

    return CheckOptions(timezone="UTC", template=MessageTemplate("hi", []), now=0, **kwargs)


def test_the_batch_step_names_readings_in_the_sheets_other_countries(tmp_path):
    """The other countries are known after every row: +64 on one row makes a landline on another name NZ."""
    rows = [["Mobile"], ["+64 21 825 0671"], ["027 338 7500"], ["(02) 9876 5432"]]
    report = check(load(write_csv(tmp_path / "c.csv", rows)), check_options())
    messages = {i.row: i.message for i in report.issues() if i.code == "not-mobile"}
    assert messages[3] == ("this is an Australian landline (+61 2 7338 7500); if this is a New Zealand mobile "
                           "(+64 27 338 7500), write +64 or add a Country column")
    assert "if this is" in messages[4]  # +64 29 876 5432 is a New Zealand mobile too


def test_the_batch_step_costs_nothing_without_a_bad_number(tmp_path, monkeypatch):
    rows = [["Mobile"], ["0412 555 123"], ["+64 21 825 0671"]]
    sheet = load(write_csv(tmp_path / "c.csv", rows))
    monkeypatch.setattr(rules, "other_readings", lambda *a: pytest.fail("looked for readings"))
    assert check(sheet, check_options()).ok


# --------------------------------------------------------------------------- end to end, through the CLI


def run(*args):
    return CliRunner().invoke(main, ["check", *map(str, args)], catch_exceptions=False)


def report_of(path):
    return [(r["Row"], r["Column"], r["Severity"], r["Code"]) for r in read_results(path)]


CLINICS = [
    ["Mobile", "Name", "Country"],
    ["027 338 7500", "Aroha", "New Zealand"],  # row 2: NZ mobile, read in NZ
    ["021 825 0671", "Tama", "nz"],  # row 3
    ["0412 555 123", "Ann", ""],  # row 4: empty: --country (AU)
    ["0412 555 124", "Bo", "AU"],  # row 5
    ["027 338 7501", "Cy", "Atlantis"],  # row 6: no such country, read in AU: a landline too
]


def test_a_country_column_gives_each_row_its_country(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", CLINICS)
    result = run(sheet, "--text", "Hi {{ Name }}", "--report", tmp_path / "r.csv", "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert summary["recipients"] == [{"country": "NZ", "line": "mobile", "rows": 2},
                                     {"country": "AU", "line": "mobile", "rows": 2}]
    assert report_of(tmp_path / "r.csv") == [("6", "Country", "error", "invalid-country"),
                                             ("6", "Mobile", "error", "not-mobile")]
    country, landline = read_results(tmp_path / "r.csv")
    assert country["Message"] == ("no country is called 'Atlantis': write a two-letter ISO code (NZ) or the English "
                                  "name (New Zealand), or leave it empty for AU (--country)")
    assert landline["Message"].endswith("if this is a New Zealand mobile (+64 27 338 7501), write +64 or correct "
                                        "the Country cell")
    preview = read_results(tmp_path / "c.preview.csv")
    assert [p["Will text"] for p in preview] == ["NZ mobile · +64 27 338 7500", "NZ mobile · +64 21 825 0671",
                                                 "AU mobile · +61 412 555 123", "AU mobile · +61 412 555 124", ""]


def test_a_country_column_in_a_workbook_named_by_column_option(tmp_path):
    rows = [["Phone", "Land"], ["027 338 7500", "NZ"], [64218250671, ""], [61412555123, ""]]
    sheet = write_xlsx(tmp_path / "c.xlsx", rows)
    result = run(sheet, "--text", "hi", "--column", "Country=Land", "--report", tmp_path / "r.csv")
    assert result.exit_code == 0, result.output
    assert report_of(tmp_path / "r.csv") == [("3", "Phone", "warning", "read-as-international")]
    assert [p["Will text"] for p in read_results(tmp_path / "c.preview.xlsx")] == [
        "NZ mobile · +64 27 338 7500", "NZ mobile · +64 21 825 0671", "AU mobile · +61 412 555 123"]


def test_country_column_option_naming_no_column_exits_2(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["Mobile"], ["0412 555 123"]])
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "x", "--column", "Country=Land"])
    assert result.exit_code == 2
    assert result.stderr.startswith("batchsms: error: --column Country=Land: ") and "has no column 'Land'" in \
        result.stderr and result.stderr.count("\n") == 1


def test_landlines_are_errors_unless_allowed_and_name_the_mobile_elsewhere(tmp_path):
    sheet = write_csv(tmp_path / "c.csv", [["Mobile", "Name"], ["0412 555 123", "Ann"], ["027 338 7500", "Aroha"]])
    result = run(sheet, "--text", "Hi {{ Name }}", "--report", tmp_path / "r.csv")
    assert result.exit_code == 1
    (landline,) = read_results(tmp_path / "r.csv")
    assert (landline["Severity"], landline["Code"]) == ("error", "not-mobile")
    assert "if this is" not in landline["Message"]  # no other country in sight

    result = run(sheet, "--text", "Hi {{ Name }}", "--report", tmp_path / "r.csv", "--countries", "AU,NZ")
    (landline,) = read_results(tmp_path / "r.csv")
    assert landline["Message"] == ("this is an Australian landline (+61 2 7338 7500); if this is a New Zealand "
                                   "mobile (+64 27 338 7500), write +64 or add a Country column")

    result = run(sheet, "--text", "Hi {{ Name }}", "--report", tmp_path / "r.csv", "--allow-landlines", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows_valid"] == 2
    assert report_of(tmp_path / "r.csv") == [("3", "Mobile", "warning", "not-mobile")]


@pytest.mark.parametrize("countries", ["AU,XX", "Mars"])
def test_unknown_countries_are_one_exit_2_line(tmp_path, countries):
    sheet = write_csv(tmp_path / "c.csv", [["Mobile"], ["0412 555 123"]])
    result = CliRunner().invoke(main, ["check", str(sheet), "--text", "x", "--countries", countries])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("batchsms: error: --countries: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "c.report.csv").exists()  # refused before the sheet was checked


def test_placeholders_warn_and_words_are_not_numbers(tmp_path):
    rows = [["Mobile"], ["0400 000 000"], ["0412 345 678"], ["n/a"], ["none"], ["-"], ["0412 555 123"]]
    result = run(write_csv(tmp_path / "c.csv", rows), "--text", "hi", "--report", tmp_path / "r.csv")
    assert result.exit_code == 1
    issues = read_results(tmp_path / "r.csv")
    assert [(i["Row"], i["Severity"], i["Code"]) for i in issues] == [
        ("2", "warning", "placeholder-number"), ("3", "warning", "placeholder-number"),
        ("4", "error", "invalid-phone"), ("5", "error", "invalid-phone"), ("6", "error", "invalid-phone")]
    assert all("not a phone number" in i["Message"] for i in issues[2:])
    assert [p["Status"] for p in read_results(tmp_path / "c.preview.csv")] == [
        "warning", "warning", "error", "error", "error", "ready"]


def test_a_placeholder_that_is_also_a_duplicate_marks_its_cell_once(tmp_path):
    rows = [["Mobile"], ["0400 000 000"], ["0400 000 000"]]
    result = run(write_xlsx(tmp_path / "c.xlsx", rows), "--text", "hi")
    assert result.exit_code == 0, result.output
    assert [p["Status"] for p in read_results(tmp_path / "c.preview.xlsx")] == ["warning", "warning"]


def test_the_parallel_check_names_readings_and_reads_countries_too(tmp_path, monkeypatch):
    """Rows checked in helper processes (Country column and all) come back the same; the batch step after."""
    from batchsms import parallel

    monkeypatch.setattr(parallel, "PARALLEL_MIN_ROWS", 50)
    rows = [["Mobile", "Country"]]
    for i in range(40):  # distinct numbers: no duplicates to muddle the verdicts
        rows += [[f"027 338 75{i:02d}", "NZ"], [f"027 338 76{i:02d}", ""], [f"642182506{i:02d}", "AU"],
                 [f"0412 555 1{i:02d}", "Mars"]]
    path = write_csv(tmp_path / "c.csv", rows)
    one = check_sheet(path, Options(text="hi"), workers=1)
    two = check_sheet(path, Options(text="hi"), workers=2)
    assert [(r.status, r.to) for r in one.results] == [(r.status, r.to) for r in two.results]
    assert list(one.issues()) == list(two.issues())
    assert {i.code for i in two.issues()} == {"not-mobile", "read-as-international", "invalid-country"}
    assert all("New Zealand mobile" in i.message for i in two.issues() if i.code == "not-mobile")
