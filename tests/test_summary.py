"""The campaign summary: figures counted from rows, the Summary sheet's label/value pairs, the HTML page
(escaped, self-contained), and rows read back from real results files that ``batchsms send`` wrote."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from batchsms.errors import SheetError
from batchsms.pricing import Prices
from batchsms.summary import (
    Bucket,
    CampaignRow,
    ProblemCount,
    Spend,
    figures,
    percent_text,
    read_time,
    render_html,
    rows_from_results,
)

from .helpers import send, write_csv, write_xlsx

SYDNEY = ZoneInfo("Australia/Sydney")
T0 = 1796083200  # Tue 1 Dec 2026 00:00 UTC = 11:00 AEDT


def campaign() -> list[CampaignRow]:
    """Every kind of row: delivered, awaiting a report, not delivered, failed, unknown, pending, invalid …"""
    R = CampaignRow
    rows = [R(2 + i, "sent", "AU", "mobile", 1, D("0.055"), "AUD", "Delivered", T0 + t)
            for i, t in enumerate((0, 600, 1200, 3600, 3700, 7300))]
    return rows + [
        R(8, "scheduled", "AU", "mobile", 2, D("0.11"), "AUD", "Submitted", None, T0 + 7200),
        R(9, "sent", "NZ", "mobile", 2, D("0.18"), "AUD", "Failed", error="absent subscriber"),
        R(10, "sent", "NZ", "mobile", 2, D("0.18"), "AUD", "Failed"),
        R(11, "sent", "AU", "landline", 1),  # no price, no report
        R(12, "failed", "AU", "mobile", 1, error="400 invalid number"),
        R(13, "unknown", "AU", "mobile", 1), R(14, "pending", "AU", "mobile", 1),
        R(15, "invalid", problems=("invalid-phone",)), R(16, "invalid", problems=("invalid-phone", "empty-text")),
        R(17, "skipped", "AU", "mobile", 1, problems=("suppressed",)), R(18, "weird"),
    ]


def summary(rows=None, **kwargs):
    options = {"zone": SYDNEY, "title": "Spring sale", "generated_at": T0 + 86400, "source": "c.results.csv"}
    return figures(campaign() if rows is None else rows, **{**options, **kwargs})


# --------------------------------------------------------------------------- figures


def test_figures_count_every_outcome_rate_and_cost():
    f = summary()
    assert (f.rows, f.valid, f.sent, f.scheduled) == (17, 14, 10, 1)
    assert (f.delivered, f.undelivered, f.awaiting, f.final) == (6, 2, 2, 8)
    assert (f.failed, f.unknown, f.pending, f.held, f.cancelled, f.skipped, f.invalid, f.other) == (
        1, 1, 1, 0, 0, 1, 2, 1)
    partition = (f.delivered + f.awaiting + f.undelivered + f.failed + f.unknown + f.pending + f.held
                 + f.cancelled + f.skipped + f.invalid + f.other)
    assert partition == f.rows
    assert f.delivery_rate == 0.75  # 6 delivered of the 8 sent messages with Delivered or Failed
    assert f.by_country == (("AU", 11), ("NZ", 2), ("", 1))
    assert f.by_line_type == (("mobile", 12), ("landline", 1), ("", 1))
    assert f.spend == (Spend("AU", "AUD", 8, 9, D("0.440"), 1), Spend("NZ", "AUD", 2, 4, D("0.36"), 0))
    assert (f.segments, f.costs, f.unpriced) == (13, (("AUD", D("0.800")),), 1)
    assert f.problems == (
        ProblemCount("invalid-phone", "error", "the recipient is not a valid phone number", 2),
        ProblemCount("empty-text", "error", "the message text is empty or only invisible characters", 1),
        ProblemCount("suppressed", "warning",
                     "skipped: the number is on the opt-out list (--suppress or the opt-out file)", 1),
    )
    assert f.reasons == (("400 invalid number", 1), ("absent subscriber", 1),
                         ("delivery failed, no reason given", 1))
    assert f.deliveries == (Bucket(T0, 3), Bucket(T0 + 3600, 2), Bucket(T0 + 7200, 1)) and not f.daily


def test_summary_sheet_pairs():
    assert summary().as_table() == [
        ("Campaign", "Spring sale"), ("Summary made", "Wed 2 Dec 2026 11:00 AEDT"), ("Time zone", "Australia/Sydney"),
        ("Rows", 17), ("Rows valid", 14), ("Rows sent", 9), ("Rows scheduled", 1), ("Delivered", 6),
        ("Delivery failed", 2), ("Delivery pending", 2),
        ("Delivery rate, % of sent messages with a final report", 75.0), ("Rows failed", 1), ("Rows unknown", 1),
        ("Rows pending", 1), ("Rows skipped", 1), ("Rows invalid", 2), ("Rows with another status", 1),
        ("Segments sent", 13), ("Cost of messages sent (AUD)", 0.8), ("Messages sent without a cost", 1),
        ("Recipients: AU", 11), ("Recipients: NZ", 2), ("Recipients: country not known", 1),
        ("Line type: mobile", 12), ("Line type: landline", 1), ("Line type: not known", 1),
        ("Messages sent: AU", 8), ("Segments sent: AU", 9), ("Cost: AU (AUD)", 0.44),
        ("Messages sent: NZ", 2), ("Segments sent: NZ", 4), ("Cost: NZ (AUD)", 0.36),
        ("Problem: invalid-phone (error)", 2), ("Problem: empty-text (error)", 1),
        ("Problem: suppressed (warning)", 1),
        ("Failure reason: 400 invalid number", 1), ("Failure reason: absent subscriber", 1),
        ("Failure reason: delivery failed, no reason given", 1),
        ("Delivered: Tue 1 Dec 2026 11:00 AEDT", 3), ("Delivered: Tue 1 Dec 2026 12:00 AEDT", 2),
        ("Delivered: Tue 1 Dec 2026 13:00 AEDT", 1),
    ]


def test_no_rows_and_no_reports_say_so():
    f = summary([])
    assert (f.rows, f.delivery_rate, f.deliveries, f.costs) == (0, None, (), ())
    assert ("Delivery rate, % of sent messages with a final report", "no final delivery report yet") in f.as_table()
    page = render_html(f)
    assert "No row passed the check." in page and "No message was sent." in page and "No row has a problem." in page
    assert "No delivery report with a time yet." in page


def test_deliveries_are_daily_over_three_days_with_empty_days_kept():
    rows = [CampaignRow(2 + i, "sent", "AU", "mobile", 1, delivery="Delivered", delivered_at=T0 + t)
            for i, t in enumerate((0, 60, 4 * 86400))]  # Tue 11:00 AEDT twice, then Sat
    f = summary(rows)
    midnight = T0 - 11 * 3600  # Tue 1 Dec 00:00 AEDT
    assert f.daily
    assert f.deliveries == tuple(Bucket(midnight + day * 86400, n) for day, n in enumerate((2, 0, 0, 0, 1)))
    assert [label for label, _ in summary(rows).as_table() if label.startswith("Delivered:")] == [
        "Delivered: Tue 1 Dec 2026", "Delivered: Sat 5 Dec 2026"]


def test_the_repeated_hour_of_a_clock_change_is_its_own_bucket():
    # Sydney, Sun 5 Apr 2026: at 03:00 AEDT (16:00 UTC) the clocks go back to 02:00 AEST.
    first, second = 1775316600, 1775320200  # 02:30 AEDT, 02:30 AEST
    rows = [CampaignRow(2, "sent", delivery="Delivered", delivered_at=first),
            CampaignRow(3, "sent", delivery="Delivered", delivered_at=second)]
    f = summary(rows)
    assert f.deliveries == (Bucket(first - 1800, 1), Bucket(second - 1800, 1))
    assert [f.bucket_label(b.start) for b in f.deliveries] == ["Sun 5 Apr 2026 02:00 AEDT",
                                                               "Sun 5 Apr 2026 02:00 AEST"]


def test_percentages_never_round_to_all_or_none():
    assert [percent_text(*p) for p in ((1, 3), (2, 3), (0, 5), (5, 5), (1, 2000), (1999, 2000), (1, 0))] == [
        "33.3%", "66.7%", "0.0%", "100%", "<0.1%", ">99.9%", "–"]


# --------------------------------------------------------------------------- the page


def test_the_page_shows_the_figures_formatted_for_a_person():
    page = render_html(summary())
    assert page.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert "<title>Spring sale: campaign summary</title>" in page
    for text in ("75.0%", "A$0.80", "A$0.44", "A$0.36", "Australia (AU)", "New Zealand (NZ)", "Country not known",
                 "<code>invalid-phone</code>", "the recipient is not a valid phone number", "absent subscriber",
                 "Tue 1 Dec 2026 11:00 AEDT", "Wed 2 Dec 2026 11:00 AEDT", "from c.results.csv",
                 "Times are in Australia/Sydney", "6 of 8"):
        assert text in page, text
    charts = re.findall(r'<svg class="chart" role="img" aria-labelledby="([\w-]+)"', page)
    assert len(charts) == 6
    for chart in charts:
        assert f'<title id="{chart}">' in page
    big = [CampaignRow(i, "sent", "AU", "mobile", 1, D("1.5"), delivery="Delivered") for i in range(1234)]
    assert ">1,234<" in render_html(summary(big)) and "A$1,851.00" in render_html(summary(big))


def test_hostile_cells_show_as_text():
    rows = [CampaignRow(2, "sent", '<script>alert("x")</script>', "<b>mobile</b>", 1, D("0.1"), "AUD", "Failed",
                        error="<img src=x onerror=alert(1)>"),
            CampaignRow(3, "failed", "AU", "mobile", 1, error="</td></tr></table><h1>pwned</h1>"),
            CampaignRow(4, "invalid", problems=("<svg onload=alert(1)>",))]
    page = render_html(summary(rows, title="<script>alert(1)</script>", source='"><script>x</script>'))
    assert "<script" not in page and "<img" not in page and "<h1>pwned" not in page and "<svg onload" not in page
    for text in ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;",
                 "&lt;b&gt;mobile&lt;/b&gt;", "&lt;img src=x onerror=alert(1)&gt;",
                 "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;h1&gt;pwned&lt;/h1&gt;", "&lt;svg onload=alert(1)&gt;"):
        assert text in page, text


def test_the_page_loads_nothing_from_anywhere():
    page = render_html(summary())
    assert "http://" not in page and "https://" not in page and "//" not in page.replace("<!--", "")
    assert re.search(r"<[^>]*\s(?:src|href|xlink:href|srcset|action|data)\s*=", page) is None
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert "<link" not in page and "<img" not in page and "<iframe" not in page
    assert "default-src 'none'" in page  # and the browser is told to refuse anything that slips in


# --------------------------------------------------------------------------- reading results files


def contacts():
    # A column of the user's named Status and one named Cost: the results' own are the ones after them.
    return [["Mobile", "Name", "Status", "Cost"], ["0412000001", "A", "vip", "9.99"],
            ["+64 21 234 5678", "B", "", ""], ["12345", "C", "", ""], ["+61 2 9999 9999", "D", "", ""]]


def test_rows_from_a_csv_that_send_wrote(sandbox, tmp_path):
    sheet = write_csv(tmp_path / "c.csv", contacts())
    assert send(sandbox, tmp_path, sheet, "--text", "Hi {{ Name }}", "--quiet", "--allow-landlines").exit_code == 1
    rows = rows_from_results(tmp_path / "c.results.csv")
    assert rows == [
        CampaignRow(2, "sent", "AU", "mobile", 1),
        CampaignRow(3, "sent", "NZ", "mobile", 1),
        CampaignRow(4, "invalid", segments=1, problems=("invalid-phone",)),
        CampaignRow(5, "sent", "AU", "landline", 1),
    ]
    priced = rows_from_results(tmp_path / "c.results.csv", prices=Prices(by_country={"AU": D("0.055")},
                                                                           default=D("0.1"), currency="NZD"))
    assert [(r.cost, r.currency) for r in priced] == [(D("0.055"), "NZD"), (D("0.1"), "NZD"), (D("0.1"), "NZD"),
                                                      (D("0.055"), "NZD")]


def test_rows_from_a_workbook_with_a_title_row_that_send_wrote(sandbox, tmp_path):
    sheet = write_xlsx(tmp_path / "c.xlsx", [["Spring sale"], *contacts()])
    result = send(sandbox, tmp_path, sheet, "--text", "Hi {{ Name }}", "--quiet", "--header-row", "2")
    assert result.exit_code == 1, result.output
    rows = rows_from_results(tmp_path / "c.results.xlsx")
    assert rows == [
        CampaignRow(3, "sent", "AU", "mobile", 1),
        CampaignRow(4, "sent", "NZ", "mobile", 1),
        CampaignRow(5, "invalid", segments=1, problems=("invalid-phone",)),
        CampaignRow(6, "invalid", "AU", "landline", 1, problems=("not-mobile",)),
    ]
    f = figures(rows, zone=SYDNEY, title="c", generated_at=T0)
    assert (f.rows, f.valid, f.sent, f.awaiting, f.invalid, f.by_country) == (4, 2, 2, 2, 2, (("AU", 1), ("NZ", 1)))


def test_delivery_columns_are_read_and_odd_cells_are_empty(tmp_path):
    header = ["Mobile", "Delivery", "batchsms Status", "MessageSid", "SenderId", "To", "Text", "Sends at",
              "Segments", "Error", "Attempts", "batchsms Delivery", "Delivered at", "Delivery error", "Cost",
              "Problem"]
    rows = [
        ["0412000001", "Delivered", "sent", "M1", "S", "+61412000001", "Hi", "now", "1", "", "1",
         "Delivered", "Tue 1 Dec 2026 11:00 AEDT", "", "A$0.055", ""],
        ["0412000002", "", "sent", "M2", "S", "+61412000002", "Hi", "Tue 1 Dec 2026 10:00 AEDT", "2", "", "1",
         "FAILED", "", "absent subscriber", "0.11", ""],
        ["0412000003", "", "scheduled", "M3", "S", "+61412000003", "Hi", "2026-12-01 10:00:00", "1", "", "1",
         "in the van", "yesterday", "", "no price", "duplicate-recipient: an earlier row; placeholder-number"],
        ["0412000004", "", "failed", "", "", "+61412000004", "Hi", "now", "x", "400: <b>no</b>", "3",
         "", "", "", "", ""],
        ["n/a", "", "started", "", "", "", "Hi", "now", "1", "", "1", "", "", "", "", "not a code"],
    ]
    path = write_csv(tmp_path / "r.csv", [["Campaign: spring"], [], header, *rows])
    assert rows_from_results(path, zone=SYDNEY) == [
        CampaignRow(4, "sent", "AU", "mobile", 1, D("0.055"), delivery="Delivered", delivered_at=T0),
        CampaignRow(5, "sent", "AU", "mobile", 2, D("0.11"), delivery="Failed", sent_at=T0 - 3600,
                    error="absent subscriber"),
        CampaignRow(6, "scheduled", "AU", "mobile", 1, sent_at=T0 - 3600,
                    problems=("duplicate-recipient", "placeholder-number")),
        CampaignRow(7, "failed", "AU", "mobile", error="400: <b>no</b>"),
        CampaignRow(8, "unknown", segments=1),
    ]


def test_a_contact_sheet_is_no_results_file(tmp_path):
    path = write_csv(tmp_path / "c.csv", contacts())
    with pytest.raises(SheetError, match=r"c\.csv: no Status and MessageSid columns, so this is not a results "
                                         r"file batchsms wrote; give the <sheet>\.results\.csv"):
        rows_from_results(path)


@pytest.mark.parametrize(("text", "expected"), [
    ("Tue 1 Dec 2026 11:00 AEDT", T0),
    ("Tue 1 Dec 2026 11:00:30 AEDT", T0 + 30),
    ("Sun 5 Apr 2026 02:30 AEDT", 1775316600),  # the hour that happens twice: the abbreviation decides
    ("Sun 5 Apr 2026 02:30 AEST", 1775320200),
    ("Tue 1 Dec 2026 04:00 +04", T0),  # a zone without letters shows its offset
    ("2026-12-01 11:00:00", T0),  # an Excel date cell, in the run's zone
    ("2026-12-01T00:00:00Z", T0),
    (str(T0), T0),
    (dt.datetime(2026, 12, 1, 11, 0), T0),
    ("now", None), ("", None), ("soon", None), ("12", None),
])
def test_times_as_results_files_hold_them(text, expected):
    assert read_time(text, SYDNEY) == expected


def test_the_sheet_rate_never_rounds_to_all_or_none():
    delivered = [CampaignRow(i, "sent", delivery="Delivered") for i in range(1999)]
    rate = "Delivery rate, % of sent messages with a final report"
    assert dict(summary([*delivered, CampaignRow(9999, "sent", delivery="Failed")]).as_table())[rate] == 99.9
    assert dict(summary([delivered[0], *[CampaignRow(i, "sent", delivery="Failed") for i in range(1999)]])
                .as_table())[rate] == 0.1


def share_sections(page: str) -> str:
    """The page's country and line-type sections as written, with each chart's bars (``hbars``' own) left out."""
    part = page[page.index('<section aria-labelledby="countries">'):page.index('<section aria-labelledby="spend">')]
    return re.sub(r'<g class="bar[^"]*">\n.*?</g>\n', "", part, flags=re.S)


def test_the_country_and_line_type_sections_are_written_exactly():
    rows = [CampaignRow(2, "sent", "AU", "mobile", 1), CampaignRow(3, "sent", "NZ", "landline", 1),
            CampaignRow(4, "sent", "NZ", "mobile", 1), CampaignRow(5, "invalid", problems=("invalid-phone",))]
    head = '<th scope="col" class="n">Recipients</th><th scope="col" class="n">Share</th></tr></thead>\n'
    svg = '<svg class="chart" role="img" aria-labelledby="{}-chart-title" viewBox="0 0 720 64" ' \
          'preserveAspectRatio="xMinYMin meet">\n<title id="{}-chart-title">{}</title>\n</svg>\n\n'
    row = '<tr><th scope="row">{}</th><td class="n">{}</td><td class="n">{}</td></tr>\n'
    assert share_sections(render_html(summary(rows))) == (
        '<section aria-labelledby="countries">\n<h2 id="countries">Recipients by country</h2>\n'
        + svg.format("country", "country", "Recipients by country")
        + "<table>\n<caption>Recipients (rows that passed the check) by country</caption>\n"
        + '<thead><tr><th scope="col">Country</th>' + head + "<tbody>\n"
        + row.format("New Zealand (NZ)", 2, "66.7%") + row.format("Australia (AU)", 1, "33.3%")
        + "</tbody>\n</table>\n</section>\n\n"
        + '<section aria-labelledby="line-types">\n<h2 id="line-types">Line types</h2>\n'
        + svg.format("line", "line", "Recipients by line type")
        + "<table>\n<caption>Recipients by line type</caption>\n"
        + '<thead><tr><th scope="col">Line type</th>' + head + "<tbody>\n"
        + row.format("Mobile", 2, "66.7%") + row.format("Landline", 1, "33.3%")
        + "</tbody>\n</table>\n</section>\n\n")
    assert share_sections(render_html(summary(rows[3:]))) == (
        '<section aria-labelledby="countries">\n<h2 id="countries">Recipients by country</h2>\n'
        "<p>No row passed the check.</p>\n</section>\n\n"
        '<section aria-labelledby="line-types">\n<h2 id="line-types">Line types</h2>\n'
        "<p>No row passed the check.</p>\n</section>\n\n")


def test_the_summary_command_says_the_delivery_rate_or_how_to_get_it(tmp_path):
    """The line a manager reads after `batchsms summary`, whole: before any delivery report (the rate is not
    known: it says what gives it), and after some."""
    from click.testing import CliRunner

    from batchsms.cli import main

    header = ["Mobile", "Status", "MessageSid", "Segments", "Delivery"]
    for reports, expected in [
        (["", ""], "  sent 2 of 2 valid; delivered 0, delivery failed 0, no final report 2 (no delivery rate yet: "
                   "`batchsms status` asks for the reports); failed 0, unknown 0"),
        (["Delivered", "Failed"], "  sent 2 of 2 valid; delivered 1, delivery failed 1, no final report 0 (delivery "
                                  "rate 50.0% of 2 with a final report); failed 0, unknown 0"),
    ]:
        results = tmp_path / "c.results.csv"
        rows = [["0412 345 601", "sent", "M1", "1", reports[0]], ["0412 345 602", "sent", "M2", "1", reports[1]]]
        results.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
        done = CliRunner().invoke(main, ["summary", str(results), "--html", str(tmp_path / "s.html")])
        assert done.exit_code == 0, done.output
        assert done.output.splitlines()[1] == expected
