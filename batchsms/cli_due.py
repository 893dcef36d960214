"""``batchsms due`` and ``batchsms cancel``: held messages (the library is :mod:`batchsms.due`)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click

from .cli import connected, count, handle_errors, main, parse_duration, preferences, rows_named
from .clock import format_local, run_zone
from .due import DueRun, cancel_held, parse_rows, submit_due, watch_due
from .state import RunLocked
from .status import locate


@main.command()
@click.option("--watch", is_flag=True, help="Keep running: look for due messages every --every.")
@click.option("--every", default="1m", show_default=True, metavar="DURATION", help="With --watch: how often.")
@click.option("--property-sid", help="Property the held messages go from (default: as send takes it).")
@click.option("--base-url", help="API base URL (default: as send takes it).")
@click.option("--allow-insecure", is_flag=True, help="Allow a cleartext http:// --base-url to another host.")
@click.option("--timezone", metavar="ZONE", help="Time zone for the times shown.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run.")
@handle_errors
def due(watch, every, property_sid, base_url, allow_insecure, timezone, as_json) -> None:
    """Hand every held message that is due to the API, once.

    A message scheduled beyond the API's 14 days (or sent with --hold) is kept
    in its journal as 'held'. This command, run from cron every few minutes,
    finds every journal with held messages (in the state folder), sends each
    message once it is due (with its Schedule) and updates the results file.
    One runner at a time; a journal a send is using is left for the next run.

    Exit code: 0 nothing failed, 1 a message failed or is unknown, 2 it could
    not run (another 'batchsms due' is running, no credentials).

    From cron every 5 minutes: */5 * * * * batchsms due

    \b
    Example:
      batchsms due --timezone Australia/Sydney
    """
    zone = run_zone(timezone, preferences())

    def show(run: DueRun) -> None:
        if as_json:
            click.echo(json.dumps({"handed_over": {str(k): v for k, v in run.counts.items()},
                                   "waiting": run.waiting, "next_due": run.next_due, "journals": run.lines}))
            return
        for line in run.lines:
            click.echo(line)
        done = ", ".join(f"{status} {n:,}" for status, n in run.counts.items() if n)
        later = f"; next due {format_local(run.next_due, zone)}" if run.next_due is not None else ""
        click.echo(f"Due now: {done or 'nothing'}; still held: {count(run.waiting, 'message')}{later}")

    with connected(False, base_url, property_sid, quiet=True) as target:
        try:
            if watch:
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                try:
                    watch_due(target, every=parse_duration(every, "--every"), stop=stop.is_set, sleep=stop.wait,
                              on_run=show, zone=zone, allow_insecure=allow_insecure)
                except KeyboardInterrupt:
                    click.echo("Stopped.", err=True)
                return
            run = submit_due(target, zone=zone, allow_insecure=allow_insecure)
        except RunLocked as exc:
            click.echo(f"batchsms: {exc}", err=True)
            sys.exit(2)
    show(run)
    sys.exit(0 if run.ok else 1)


@main.command()
@click.argument("path", metavar="RESULTS", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rows", metavar="5-40,52", help="Only these rows (default: every held message).")
@click.option("--timezone", metavar="ZONE", help="Time zone for the times shown.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
@handle_errors
def cancel(path, rows, timezone, as_json) -> None:
    """Withdraw held messages before they go.

    RESULTS is the results file of the send (or its sheet, as send takes it).
    Only messages batchsms still holds can be cancelled: one already handed to
    the API cannot be withdrawn (the API has no cancel call), and is named.

    Exit code: 0 every chosen held message is cancelled, 1 some chosen rows were
    already handed to the API or hold nothing, 2 it could not run.

    \b
    Example:
      batchsms cancel contacts.results.csv --rows 5-40
    """
    try:
        chosen = parse_rows(rows)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rows") from None
    zone = run_zone(timezone, preferences())
    _, journal_file = locate(path)
    outcome = cancel_held(journal_file, chosen, zone=zone)
    if as_json:
        click.echo(json.dumps({"cancelled": outcome.cancelled, "handed_over": [r for r, _ in outcome.handed_over],
                               "nothing_held": outcome.nothing,
                               "results": str(outcome.results) if outcome.results else None}))
    else:
        click.echo(f"Cancelled: {count(len(outcome.cancelled), 'held message')}"
                   + (f" ({rows_named(outcome.cancelled)})" if outcome.cancelled else ""))
        if outcome.handed_over:
            rows_given = [r for r, _ in outcome.handed_over]
            states = ", ".join(sorted({s for _, s in outcome.handed_over}))
            click.echo(f"Not cancellable: {rows_named(rows_given)} already went to the API ({states}); the API "
                       "has no call to withdraw a message")
        if outcome.nothing:
            click.echo(f"Nothing held at {rows_named(outcome.nothing)}: check the row numbers (they are the "
                       "sheet's, as Excel shows them)")
        if outcome.results:
            click.echo(f"Results: {outcome.results}")
    sys.exit(1 if outcome.handed_over or outcome.nothing else 0)

