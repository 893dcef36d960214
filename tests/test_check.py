"""Row rules across fields, and batch rules (suppression, duplicates, leases) over real sheets."""

import datetime as dt

import pytest

from batchsms import Options, check_sheet
from batchsms.errors import ConfigError, SheetError
from batchsms.optouts import load_optouts

from .helpers import write_csv, write_xlsx

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc).timestamp()


def run(tmp_path, rows, **options):
    return check_sheet(write_csv(tmp_path / "c.csv", rows), Options(now=NOW, **options))


def flat(report):
    return [(i.row, i.column, i.severity, i.code) for i in report.issues()]


def test_valid_row_builds_the_api_body(tmp_path):
    report = run(tmp_path, [
        ["Mobile", "Name", "From", "Schedule", "DeliveryReceipt", "ExternalId"],
        ["0412 345 677", "Ann", "CityDental", "2026-11-27 09:00", "no", "A1"],
    ], text="Hi {{ Name }}")
    assert flat(report) == []
    assert report.results[0].body == {
        "From": "CityDental", "To": "+61412345677", "Text": "Hi Ann",
        "Schedule": int(dt.datetime(2026, 11, 27, 9, tzinfo=dt.timezone.utc).timestamp()),
        "DeliveryReceipt": False, "ExternalId": "A1",
    }


def test_blank_from_is_leased_and_left_out_of_the_body(tmp_path):
    report = run(tmp_path, [["To", "Text", "WebhookUri"], ["0412345677", "hi", "https://h.example.com/r"]])
    assert report.results[0].body == {"To": "+61412345677", "Text": "hi", "WebhookUri": "https://h.example.com/r"}
    assert report.summary()["leased_rows"] == 1


def test_cell_wins_over_batch_default_and_defaults_fill_blanks(tmp_path):
    report = run(tmp_path, [["To", "Text", "From"], ["0412345677", "a", "Shop"], ["0413000111", "b", ""]],
                 defaults={"From": "CityDental"})
    assert [r.body["From"] for r in report.results] == ["Shop", "CityDental"]


def test_issue_names_the_option_when_the_value_came_from_it(tmp_path):
    report = run(tmp_path, [["To", "Text"], ["+1 415 555 2671", "a"]], defaults={"From": "CityDental"})
    assert flat(report) == [(2, "--from", "warning", "alphanumeric-sender-us")]


def test_a_bad_option_value_is_one_error_not_one_per_row(tmp_path):
    with pytest.raises(ConfigError, match=r"^--from 'Way Too Long Name': From is not a valid sender ID: it is 17"):
        run(tmp_path, [["To", "Text"], ["0412345677", "a"]] * 50, defaults={"From": "Way Too Long Name"})
    with pytest.raises(ConfigError, match=r"^--schedule 'soon': not a time"):
        run(tmp_path, [["To", "Text"], ["0412345677", "a"]], defaults={"Schedule": "soon"})


def test_lease_only_fields_with_a_sender_are_errors(tmp_path):
    report = run(tmp_path, [
        ["To", "Text", "From", "ForwardToEmail", "WebhookUri"],
        ["0412345677", "a", "CityDental", "ops@example.com", "https://h.example.com"],
    ])
    assert flat(report) == [
        (2, "ForwardToEmail", "error", "lease-only-field"),
        (2, "WebhookUri", "error", "lease-only-field"),
    ]


def test_alphanumeric_sender_to_north_america_warns(tmp_path):
    report = run(tmp_path, [["To", "Text", "From"], ["+1 415 555 2671", "a", "CityDental"]])
    assert flat(report) == [(2, "From", "warning", "alphanumeric-sender-us")]


def test_receipt_webhook_with_receipts_off_warns(tmp_path):
    report = run(tmp_path, [["To", "Text", "DeliveryReceipt", "DeliveryReceiptWebhookUri"],
                            ["0412345677", "a", "false", "https://h.example.com"]])
    assert flat(report) == [(2, "DeliveryReceiptWebhookUri", "warning", "receipt-webhook-unused")]


def test_sixth_lease_to_one_recipient_is_an_error(tmp_path):
    rows = [["To", "Text", "From"]] + [["0412345677", f"m{i}", ""] for i in range(7)]
    rows.insert(3, ["0412345677", "from a number", "+61413000111"])  # not leased: does not count
    report = run(tmp_path, rows)
    lease_errors = [i.row for i in report.issues() if i.code == "lease-limit"]
    assert lease_errors == [8, 9]
    assert report.summary()["rows_with_errors"] == 2


def test_duplicates_warn_and_dedupe_skips(tmp_path):
    rows = [["To", "Text"], ["0412345677", "a"], ["+61412345677", "a"], ["61412345677", "b"], ["0413000111", "a"]]
    report = run(tmp_path, rows)
    assert flat(report) == [(3, "To", "warning", "duplicate-message"), (4, "To", "warning", "duplicate-recipient")]
    report = run(tmp_path, rows, dedupe=True)
    assert [r.status for r in report.results] == ["valid", "skipped", "skipped", "valid"]
    assert report.ok


def test_dedupe_keeps_the_first_valid_row(tmp_path):
    rows = [["To", "Text"], ["0412345677", ""], ["0412345677", "second"]]
    report = run(tmp_path, rows, dedupe=True)
    assert [r.status for r in report.results] == ["invalid", "valid"]


def test_suppressed_rows_are_skipped(tmp_path):
    supp = write_csv(tmp_path / "optout.csv", [["Number", "Name"], ["+61 412 345 677", "Ann"], ["garbage", "x"]])
    assert load_optouts(supp, "AU") == {"+61412345677"}
    report = run(tmp_path, [["To", "Text"], ["0412345677", "a"], ["0413000111", "b"]], suppress=supp)
    assert [r.status for r in report.results] == ["skipped", "valid"]
    assert flat(report) == [(2, "To", "warning", "suppressed")]


def test_suppression_from_xlsx_and_txt(tmp_path):
    assert load_optouts(write_xlsx(tmp_path / "s.xlsx", [["Phone"], [61412345677]]), "AU") == {"+61412345677"}
    txt = tmp_path / "s.txt"
    txt.write_text("0412345677\n0413 000 111\n", encoding="utf-8")
    assert load_optouts(txt, "AU") == {"+61412345677", "+61413000111"}


def test_missing_template_variable_is_a_row_error(tmp_path):
    report = run(tmp_path, [["To", "Name"], ["0412345677", "Ann"]], text="Hi {{ name }}")
    issue = next(report.issues())
    assert (issue.row, issue.code) == (2, "missing-variable")
    assert "{{ name }}" in issue.message and "'To', 'Name'" in issue.message


def test_no_text_source_stops_the_run(tmp_path):
    with pytest.raises(SheetError, match="no message text"):
        run(tmp_path, [["To"], ["0412345677"]])


def test_summary_counts(tmp_path):
    report = run(tmp_path, [
        ["To", "Text", "Schedule"],
        ["0412345677", "plain", ""],
        ["0413000111", "emoji 😀", "2026-11-27 10:00"],
        ["12345", "x", ""],
        ["0414000222", "a" * 200, ""],
    ])
    s = report.summary()
    assert {k: s[k] for k in ("rows_read", "rows_valid", "rows_with_errors", "messages_gsm7", "messages_ucs2",
                               "segments", "scheduled_rows")} == {
        "rows_read": 4, "rows_valid": 3, "rows_with_errors": 1, "messages_gsm7": 2, "messages_ucs2": 1,
        "segments": 4, "scheduled_rows": 1}
    assert s["top_problems"] == [{"severity": "error", "code": "invalid-phone", "count": 1}]


def test_parallel_check_gives_the_same_report(tmp_path):
    """Helper processes check the tail of a large sheet; the report must not change by a byte."""
    import random

    from batchsms.parallel import PARALLEL_MIN_ROWS

    rng = random.Random(5)
    rows = [["Mobile", "Name"]]
    for i in range(PARALLEL_MIN_ROWS + 5000):
        mobile = rng.choice([f"04{rng.randint(0, 99999999):08d}", "12345", "", f"+61 4{i % 10}0 000 00{i % 7}"])
        rows.append([mobile, rng.choice(["Ann", "Zoë 🌸", "{{ 7*7 }}"])])
    path = write_csv(tmp_path / "big.csv", rows)
    options = Options(now=NOW, text="Hi {{ Name }}")
    one = check_sheet(path, options, workers=1)
    two = check_sheet(path, options, workers=2)
    assert [(r.index, r.row, r.status, r.body, r.segments, r.to) for r in one.results] == \
        [(r.index, r.row, r.status, r.body, r.segments, r.to) for r in two.results]
    assert list(one.issues()) == list(two.issues())
    assert one.summary() == two.summary()


def test_excel_date_cells_feed_the_schedule(tmp_path):
    import datetime as dt_

    path = write_xlsx(tmp_path / "c.xlsx", [["To", "Text", "Schedule"],
                                            ["0412345677", "hi", dt_.datetime(2026, 11, 27, 9, 30)]])
    report = check_sheet(path, Options(now=NOW, timezone="Australia/Sydney"))
    expected = int(dt_.datetime(2026, 11, 26, 22, 30, tzinfo=dt_.timezone.utc).timestamp())
    assert report.results[0].body["Schedule"] == expected


def test_an_empty_variable_is_a_warning_naming_the_column(tmp_path):
    report = run(tmp_path, [["To", "First Name"], ["0412345677", ""], ["0412345679", "Bo"]],
                 text="Hi {{ First_Name }}, see you soon")
    assert flat(report) == [(2, "First Name", "warning", "empty-variable")]
    assert report.results[0].issues[0].message == (
        '{{ First_Name }} is empty on this row, so the text reads "Hi , see you soon"; fill the cell, or '
        'write {{ First_Name | default("there", true) }} in the template')
    fallback = run(tmp_path, [["To", "First Name"], ["0412345677", ""]],
                   text='Hi {{ First_Name | default("there", true) }}')
    assert flat(fallback) == [] and fallback.results[0].body["Text"] == "Hi there"
