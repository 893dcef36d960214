"""``batchsms summary``: the manager's one-page HTML summary (the library is :mod:`batchsms.summary`)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .cli import count, handle_errors, main, preferences
from .clock import run_zone
from .paths import check_output
from .pricing import format_money, run_prices
from .summary import figures, rows_from_results, write_html


@main.command()
@click.argument("results_path", metavar="RESULTS", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the page (default: <sheet>.summary.html beside RESULTS).")
@click.option("--timezone", metavar="ZONE",
              help="Time zone for the times shown (default: timezone in the config file, else this machine's).")
@click.option("--title", help="The page's heading (default: the results file's name).")
@handle_errors
def summary(results_path: Path, html_path: Path | None, timezone: str | None, title: str | None) -> None:
    """Write a one-page HTML summary of a campaign from its RESULTS file, for a manager.

    The page holds recipients by country and line type, the funnel from rows to
    delivered messages, segments and cost by country, problems by code and deliveries
    over time, as charts with their numbers beside them. It loads nothing from anywhere,
    so it opens from a file or an e-mail attachment, and prints. Run 'batchsms status'
    first for delivery figures; without a Cost column, [prices] in the config file
    price the segments.

    \b
    Example:
      batchsms summary contacts.results.csv --html campaign.html --timezone Australia/Sydney
    """
    prefs = preferences()
    zone = run_zone(timezone, prefs)
    stem = results_path.stem.removesuffix(".results")
    html_path = check_output(html_path or results_path.with_name(f"{stem}.summary.html"), "--html",
                             [("the results file", results_path)])
    rows = rows_from_results(results_path, zone=zone, prices=run_prices(None, prefs), currency=prefs.currency)
    found = figures(rows, zone=zone, title=title or results_path.name, generated_at=time.time(),
                    source=results_path.name)
    write_html(html_path, found)
    rate = (f"delivery rate {found.delivery_rate:.1%} of {found.final:,} with a final report"
            if found.delivery_rate is not None else "no delivery rate yet: `batchsms status` asks for the reports")
    cost = " + ".join(format_money(total, currency) for currency, total in found.costs) or "not known"
    click.echo(f"Summary of {results_path} ({count(found.rows, 'row')}): {html_path}")
    click.echo(f"  sent {found.sent:,} of {found.valid:,} valid; delivered {found.delivered:,}, "
               f"delivery failed {found.undelivered:,}, no final report {found.awaiting:,} ({rate}); "
               f"failed {found.failed:,}, unknown {found.unknown:,}")
    click.echo(f"  {count(found.segments, 'segment')} sent, cost {cost}")
