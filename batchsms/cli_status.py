"""``batchsms status``: what became of the messages a send handed to the API, and settling ``unknown`` rows.

A thin shell over :func:`batchsms.status.status_of`: it parses, calls, prints the
summary and picks the exit code (0 every message delivered, 1 some failed, pending or
unknown, 2 the command could not run).
"""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal
from pathlib import Path

import click

from .cli import connected, count, handle_errors, main, preferences, rows_named
from .client import DEFAULT_BASE_URL
from .clock import run_zone
from .pricing import format_money, missing_prices_hint, run_prices
from .status import DeliverySummary, StatusOptions, StatusOutcome, status_of

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")
#: How many rows each list (lookups that failed, rows left unknown) shows before "and N more".
SHOWN = 10


class Duration(click.ParamType):
    """``90`` (seconds), ``45s``, ``30m``, ``2h``, ``1h30m``, ``1d``."""

    name = "DURATION"

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        match = _DURATION.fullmatch(text)
        if not text or match is None or not any(match.groups()):
            self.fail(f"{value!r}: write seconds (90) or a duration such as 30m, 2h or 1h30m", param, ctx)
        days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _percent(summary: DeliverySummary, n: int) -> str:
    rate = summary.rate(n)
    return "" if rate is None else f"  {rate:6.1%}"


def print_outcome(outcome: StatusOutcome, prices, as_json: bool, watching: bool = False) -> None:
    """The summary a person reads (or one JSON object with ``--json``)."""
    s = outcome.delivery
    cost = s.cost(prices)
    if as_json:
        data = {"results": str(outcome.results), "journal": str(outcome.journal), "rounds": outcome.rounds,
                **s.figures(), "final": s.final,
                "cost": None if cost is None else str(cost.quantize(Decimal("0.01"))),
                "currency": prices.currency if prices is not None else None,
                "settle": outcome.settled.figures() if outcome.settled is not None else None}
        click.echo(json.dumps(data))
        return
    if watching:
        click.echo(f"Round {outcome.rounds}:")
    else:
        click.echo(f"Status of {outcome.results} (journal {outcome.journal.name})")
    width = 22
    lines = [("taken by the API", f"{s.sent:>8,}"),
             ("delivered", f"{s.delivered:>8,}{_percent(s, s.delivered)}"),
             ("failed", f"{s.failed:>8,}{_percent(s, s.failed)}"),
             ("still pending", f"{s.pending:>8,}{_percent(s, s.pending)}"
              + (f"  ({s.submitted:,} submitted without a receipt: final)" if s.submitted else ""))]
    if s.unknown:
        lines.append(("unknown", f"{s.unknown:>8,}" + (f"  ({s.settled_not_sent:,} settled as not sent: "
                                                       "--retry-unknown sends them)" if s.settled_not_sent else "")))
    if s.refused:
        lines.append(("refused at send", f"{s.refused:>8,}"))
    if s.held:
        lines.append(("held or cancelled", f"{s.held:>8,}  (never went to the API: see batchsms due)"))
    lines.append(("segments", f"{s.segments:>8,}"))
    if cost is not None:
        lines.append(("cost", f"{format_money(cost, prices.currency):>8}"))
    else:
        lines.append(("cost", f"not known: {missing_prices_hint(prices, s.segments_by_country)}"))
    for label, value in lines:
        click.echo(f"  {label:<{width}}{value}")
    settled = outcome.settled
    if settled is not None:
        click.echo(f"  {'settled this run':<{width}}{len(settled.sent):>8,} sent, {len(settled.not_sent):,} not sent"
                   + (f", {len(settled.unsettled):,} still unknown" if settled.unsettled else ""))
        for row, why in settled.unsettled[:SHOWN]:
            click.echo(f"    row {row}: {why}")
        if len(settled.unsettled) > SHOWN:
            click.echo(f"    and {len(settled.unsettled) - SHOWN:,} more (see the Error column of the results)")
    elif s.unknown and not s.settled_not_sent:
        click.echo(f"  {count(s.unknown, 'row')} unknown: `batchsms status --settle` looks them up in the API's "
                   "message list")
    if s.errors:
        click.echo(f"  status not read for {rows_named([r for r, _ in s.errors])}:")
        for row, why in s.errors[:3]:
            click.echo(f"    row {row}: {why}")
    if outcome.refreshed is not None:
        click.echo(f"Results: {outcome.results}")
    else:
        click.echo(f"Results: {outcome.results} is gone; run the same `batchsms send` again to rebuild it")


@main.command()
@click.argument("path", metavar="RESULTS_OR_SHEET", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--settle", is_flag=True,
              help="Look up unknown rows in the API's message list and settle them as sent or not sent.")
@click.option("--watch", is_flag=True, help="Ask again until every message is final or --until passes.")
@click.option("--every", type=Duration(), default="60", show_default=True, help="With --watch: time between rounds.")
@click.option("--until", type=Duration(), default="2h", show_default=True, help="With --watch: stop after this long.")
@click.option("--property-sid", help="Property the send used (default: $BATCHSMS_PROPERTY_SID or the config file).")
@click.option("--base-url", help=f"API base URL (default: $BATCHSMS_BASE_URL or {DEFAULT_BASE_URL}).")
@click.option("--sandbox", "use_sandbox", is_flag=True,
              help="Ask a built-in sandbox API in this process (it knows only what was sent to it in this process).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Requests in flight at once.")
@click.option("--rate", type=click.FloatRange(min=0.01), help="At most this many requests a second.")
@click.option("--timezone", metavar="ZONE", help="Time zone for the times shown (default: as for send).")
@click.option("--price", metavar="AMOUNT", help="Price per segment, for the cost (else [prices] in the config).")
@click.option("--allow-insecure", is_flag=True,
              help="Allow a cleartext http:// --base-url to a host other than this machine (exposes the token).")
@click.option("--read-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object (one per round).")
@handle_errors
def status(path: Path, settle: bool, watch: bool, every: float, until: float, property_sid: str | None,
           base_url: str | None, use_sandbox: bool, concurrency: int, rate: float | None, timezone: str | None,
           price: str | None, allow_insecure: bool, read_timeout: float, as_json: bool) -> None:
    """Ask the API what became of the messages a send handed over, and rewrite the results file.

    RESULTS_OR_SHEET is the results file `send` wrote, or the sheet it sent (the
    journal is found beside the results). Every sent or scheduled message whose
    delivery is not final is looked up; the results gain Delivery (Processing,
    Submitted, Delivered, Failed), Delivered at and Delivery error. --settle looks
    each unknown row up in the API's message list: one message to the number with
    the same text settles it sent; none at all, once its send window has closed,
    settles it not sent (then --retry-unknown on send resends only those).

    Exit code 0 when every message is delivered, 1 when some failed, are still
    pending or unknown, 2 when the command could not run.

    \b
    Example:
      batchsms status samples/contacts.csv --settle
      batchsms status contacts.xlsx --watch --every 5m --until 6h --price 0.055
    """
    if use_sandbox:
        click.echo("batchsms: warning: the built-in sandbox starts empty, so it knows no message a send in another "
                   "process handed it; to follow messages, run `batchsms sandbox` and point send and status at it "
                   "with --base-url", err=True)
    prefs = preferences()
    zone = run_zone(timezone, prefs)
    prices = run_prices(price, prefs)
    options = StatusOptions(settle=settle, watch=watch, every=every, until=until, concurrency=concurrency,
                            rate=rate, allow_insecure=allow_insecure, read_timeout=read_timeout)
    with connected(use_sandbox, base_url, property_sid, quiet=as_json) as target:
        outcome = status_of(path, target, options, zone=zone,
                            each_round=(lambda o: print_outcome(o, prices, as_json, watching=True)) if watch else None)
    if not watch:
        print_outcome(outcome, prices, as_json)
    sys.exit(0 if outcome.delivery.all_delivered else 1)
