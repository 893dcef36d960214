"""``batchsms watch``: the drop-folder command (the library is :mod:`batchsms.watch`)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click

from .api import SendOptions
from .cli import connected, handle_errors, main, message_options, options_from, preferences
from .watch import SETTLE_SECONDS, Batch, WatchBusy, run_once, watch


@main.command("watch")
@click.argument("inbox", type=click.Path(file_okay=False, path_type=Path))
@message_options
@click.option("--property-sid", help="Property to send from (default: $BATCHSMS_PROPERTY_SID or the config file).")
@click.option("--base-url", help="API base URL (default: $BATCHSMS_BASE_URL or the config file).")
@click.option("--sandbox", "use_sandbox", is_flag=True, help="Send to a built-in sandbox API in this process.")
@click.option("--yes", "-y", is_flag=True, help="Required: watch sends without asking.")
@click.option("--once", is_flag=True, help="Look once, send what is new, and exit (for cron).")
@click.option("--every", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Seconds between looks when watching.")
@click.option("--settle", type=click.FloatRange(min=0), default=SETTLE_SECONDS, show_default=True,
              help="Seconds a file must sit unchanged before it is taken (a copy in progress is left alone).")
@click.option("--send-valid", is_flag=True,
              help="Send the valid rows of a sheet that has errors (default: such a sheet goes to failed/ unsent).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True)
@click.option("--rate", type=click.FloatRange(min=0.01), help="At most this many messages a second.")
@click.option("--allow-insecure", is_flag=True, help="Allow a cleartext http:// --base-url to another host.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per batch.")
@handle_errors
def watch_command(inbox, use_sandbox, property_sid, base_url, yes, once, every, settle, send_valid, concurrency, rate,
                  allow_insecure, as_json, **params) -> None:
    """Send each new sheet dropped in INBOX exactly once.

    A file is known by its content: dropping the same file again sends nothing
    and says so; a new file under yesterday's name is a new batch. Each batch
    moves with its preview, results and journal to INBOX/done/<date>-<name>/, or
    to INBOX/failed/ (unsent) when the check finds errors. A run that dies half-way
    is finished by the next one without sending anything twice. One runner at a
    time; every batch's summary goes to INBOX/batchsms.log.

    Exit code (--once): 0 every batch sent, 1 a batch failed its check or has
    failed or unknown rows, 2 the run could not start (or another runner holds
    the folder).

    From cron, every 5 minutes: */5 * * * * batchsms watch ... --once

    \b
    Example:
      batchsms watch ~/reminders --template templates/appointment_reminder.txt --yes --once
    """
    if not yes:
        raise click.UsageError("watch sends without asking: give --yes")
    options = options_from(params)
    prefs = preferences()
    sending = SendOptions(concurrency=concurrency, rate=rate, allow_insecure=allow_insecure, progress=False)
    failed = []

    def show(batch: Batch) -> None:
        if not batch.ok:
            failed.append(batch)
        if as_json:
            click.echo(json.dumps({"file": batch.name, "state": batch.state, "folder": str(batch.folder),
                                   "ok": batch.ok, "summary": batch.line}))
        else:
            click.echo(batch.line)

    with connected(use_sandbox, base_url, property_sid, quiet=as_json) as target:
        if once:
            try:
                batches = run_once(inbox, options, target, sending, send_valid=send_valid, settle=settle,
                                   preferences=prefs, on_batch=show)
            except WatchBusy as exc:
                click.echo(f"batchsms: {exc}", err=True)
                sys.exit(2)
            if not batches and not as_json:
                click.echo(f"{inbox}: nothing new")
            sys.exit(1 if failed else 0)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo(f"Watching {inbox} every {every:g} s (Ctrl-C to stop)", err=True)
        try:
            watch(inbox, options, target, sending, every=every, send_valid=send_valid, stop=stop.is_set,
                  sleep=stop.wait, settle=settle, preferences=prefs, on_batch=show,
                  on_error=lambda exc: click.echo(f"batchsms: {exc}; looking again in {every:g} s", err=True))
        except KeyboardInterrupt:
            click.echo("Stopped.", err=True)
