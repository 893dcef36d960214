"""The ``batchsms replies`` and ``batchsms receive`` commands: parse options, call the library, print.

Kept apart from cli.py (whose command group imports this module when one of them is named) so the
send/check shell stays one screen shorter; the library parts are :mod:`batchsms.replies`,
:mod:`batchsms.optouts` and :mod:`batchsms.receive`.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import click

from .api import Target, target_from_config
from .cli import count, fail, handle_errors, main, preferences
from .client import DEFAULT_BASE_URL, Client
from .clock import format_local, run_zone
from .errors import ConfigError
from .journal import journal_path
from .optouts import apply_replies, default_optouts_path, history_path
from .phones import PhoneBook
from .receive import (
    LOG_FILE,
    Event,
    Receiver,
    Setup,
    check_public_url,
    choose_secret,
    listening,
    write_setup,
)
from .replies import collect_replies, parse_since, shown_text


def _optouts_file(option: Path | None) -> Path:
    """``--optouts``, else ``optouts`` in the config file, else optouts.csv in the state folder."""
    return option if option is not None else default_optouts_path(preferences())


def _country(value: str) -> str:
    try:
        PhoneBook(value)
    except ValueError as exc:
        raise ConfigError(f"--country {value}: {exc}") from None
    return value.upper()


@main.command()
@click.option("--since", default="7d", show_default=True, metavar="SPAN|DATE",
              help="How far back to look: 30m, 24h, 7d, or a date (2026-11-20, or 2026-11-20 09:00 in the run's zone).")
@click.option("--optouts", "optouts_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The opt-out file to keep (default: optouts in the config file, else optouts.csv in the "
                   "state folder).")
@click.option("--dry-run", is_flag=True, help="Only list the replies; change no file.")
@click.option("--country", default="AU", show_default=True, help="Country for reply numbers without a country code.")
@click.option("--timezone", metavar="ZONE", help="Time zone for the times shown (default: the config's, else this "
                                                 "machine's).")
@click.option("--property-sid", help="Property whose replies to read (default: $BATCHSMS_PROPERTY_SID or the config "
                                     "file).")
@click.option("--base-url", help=f"API base URL (default: $BATCHSMS_BASE_URL or {DEFAULT_BASE_URL}).")
@click.option("--sandbox", "use_sandbox", is_flag=True,
              help="Read from a built-in sandbox API in this process (it holds no replies: a dry run of the command).")
@click.option("--allow-insecure", is_flag=True,
              help="Allow a cleartext http:// --base-url to a host other than this machine (exposes the token).")
@click.option("--connect-timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True)
@click.option("--read-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the replies and the summary as one JSON object.")
@handle_errors
def replies(since, optouts_path, dry_run, country, timezone, property_sid, base_url, use_sandbox, allow_insecure,
            connect_timeout, read_timeout, as_json) -> None:
    """List the replies people sent, and keep the opt-out file from them.

    Reads the property's messages since --since from the API's list call and shows
    each inbound one (newest first): number, time, text and what was done. A reply
    that is wholly an opt-out keyword (STOP, STOP ALL, UNSUBSCRIBE, CANCEL, END, QUIT,
    OPT OUT, OPTOUT, REVOKE; any case, punctuation ignored) puts the number in the
    opt-out file once; START or UNSTOP after it takes the number out again. Replies
    that only mention such a word ("Stop sending me these") are listed for you to
    read, and nothing is done with them.

    \b
    Example:
      batchsms replies --since 24h
      batchsms replies --since 2026-11-20 --optouts ~/clinic/optouts.csv --json
    """
    country = _country(country)
    prefs = preferences()
    zone = run_zone(timezone, prefs)
    until = time.time()
    start = parse_since(since, until, zone)
    optouts = None if dry_run else _optouts_file(optouts_path)
    sandbox = None
    if use_sandbox:
        from .sandbox import Sandbox

        sandbox = Sandbox(port=0).start()
        target = Target(sandbox.url, sandbox.account_sid, sandbox.auth_token, property_sid or "PSANDBOX",
                        name="the built-in sandbox")
    else:
        target = target_from_config(base_url=base_url, property_sid=property_sid)
        for warning in target.warnings:
            click.echo(f"batchsms: warning: {warning}", err=True)
    try:
        client = Client(target.base_url, target.account_sid, target.auth_token, target.property_sid,
                        connect_timeout=connect_timeout, read_timeout=read_timeout, allow_insecure=allow_insecure)
        try:
            apply = None if optouts is None else (lambda found: apply_replies(optouts, found, country=country))
            run = collect_replies(client, start, until, PhoneBook(country), apply)
        finally:
            client.close()
    finally:
        if sandbox is not None:
            sandbox.stop()
    news = sum(1 for r in run.opt_outs if run.did(r) == "opted out")
    summary = {"replies": len(run.replies), "opt_outs": len(run.opt_outs), "new_opt_outs": news,
               "opt_ins": len(run.opt_ins), "near_misses": len(run.near_misses), "complete": run.complete,
               "gaps": list(run.gaps), "optouts": str(optouts) if optouts else None,
               "since": start, "until": until}
    if as_json:
        click.echo(json.dumps({**summary, "items": [
            {"number": r.number, "at": r.at, "time": format_local(r.at, zone), "text": shown_text(r.text),
             "keyword": r.keyword, "done": run.did(r), "message_sid": r.sid} for r in run.replies]}))
        return
    where = target.name or f"property {target.property_sid}"
    click.echo(f"Replies since {format_local(start, zone)} to {where}:")
    if not run.replies:
        click.echo("  none")
    width = max((len(r.number) for r in run.replies), default=0)
    for r in run.replies:
        click.echo(f"  {format_local(r.at, zone)}  {r.number:<{width}}  {run.did(r):<17}  {shown_text(r.text, 70)}")
    if run.near_misses:
        click.echo("Replies that mention stop but are not the keyword (nothing was done; read them, and add the "
                   "number to the opt-out file yourself if they asked to stop):")
        for r, word in run.near_misses:
            click.echo(f"  {format_local(r.at, zone)}  {r.number:<{width}}  mentions {word!r}: "
                       f"{shown_text(r.text, 70)}")
    for gap in run.gaps:
        click.echo(f"batchsms: warning: the list may hold more replies than were read: {gap}", err=True)
    replies_n = f"{len(run.replies):,} repl{'y' if len(run.replies) == 1 else 'ies'}"
    click.echo(f"{replies_n}, "
               f"{count(len(run.opt_outs), 'opt-out')} ({news:,} new), {count(len(run.opt_ins), 'opt-in')}.")
    if optouts is not None:
        click.echo(f"Opt-out file: {optouts} (history: {history_path(optouts)})")
    else:
        click.echo("Dry run: the opt-out file was not changed.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; keep 127.0.0.1 and put a reverse proxy (with TLS) in front.")
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True)
@click.option("--path-secret", default="auto", show_default=True, metavar="SECRET|auto",
              help="The secret in the path /hooks/<secret>: auto keeps the last one (or makes a random one).")
@click.option("--public-url", metavar="URL",
              help="The address the API reaches this receiver at (your reverse proxy), e.g. https://hooks.example.com; "
                   "send --webhook auto then uses it.")
@click.option("--optouts", "optouts_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The opt-out file replies update (default: optouts in the config file, else the state folder's).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path),
              help=f"JSON-lines log of every webhook (default: {LOG_FILE} in the state folder).")
@click.option("--journal", "journal_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Also look for receipts' messages in this journal (repeatable); registered journals are searched "
                   "anyway.")
@click.option("--results", "results_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Also look in the journal of this results file (repeatable).")
@click.option("--country", default="AU", show_default=True, help="Country for reply numbers without a country code.")
@handle_errors
def receive(host, port, path_secret, public_url, optouts_path, log_path, journal_paths, results_paths,
            country) -> None:
    """Receive the API's webhooks: delivery receipts into the journals, STOP replies into the opt-out file.

    Listens on /hooks/<secret> only (every other path is a 404). Give the API that URL
    as DeliveryReceiptWebhookUri and WebhookUri (send --webhook auto does), through a
    reverse proxy: the API must reach it over the internet, and this binds 127.0.0.1.
    Payloads it cannot read are kept raw in the log. Ctrl-C to stop.

    \b
    Example:
      batchsms receive --public-url https://hooks.example.com
      batchsms send contacts.csv --template t.txt --webhook auto --yes
    """
    from .state import journals, state_dir

    country = _country(country)
    public = check_public_url(public_url)
    secret = choose_secret(path_secret)
    optouts = _optouts_file(optouts_path)
    state = Path(state_dir())
    log = log_path or state / LOG_FILE
    extra = [*journal_paths, *(journal_path(r) for r in results_paths)]
    zone = run_zone(None, preferences())

    def show(event: Event) -> None:
        click.echo(f"{format_local(time.time(), zone)}  {event.text}")

    receiver = Receiver(host, port, secret=secret, optouts=optouts, log=log,
                        journals=lambda: [*extra, *journals()], country=country, on_event=show)
    try:
        receiver.start()
    except OSError as exc:
        fail(f"{host}:{port}: cannot listen ({exc.strerror or exc}); choose another --port")
    setup = write_setup(Setup(secret, receiver.base_url, public), state)
    where = listening(receiver, public)
    click.echo(f"Receiving webhooks on {where.local}")
    if where.public:
        click.echo(f"  the API calls: {where.public} (send --webhook auto puts it in DeliveryReceiptWebhookUri and "
                   "WebhookUri)")
    else:
        click.echo("  to take webhooks from the API, serve this address through your reverse proxy (https) and "
                   "restart with --public-url https://<that address>")
    if where.exposed:
        click.echo(f"batchsms: warning: listening on {host}, beyond this machine: only the secret path keeps strangers "
                   "out, and the traffic is not encrypted; prefer --host 127.0.0.1 behind a reverse proxy with TLS",
                   err=True)
    click.echo(f"  opt-outs: {optouts}; log: {log}; setup: {setup}")
    if receiver.pending:
        click.echo(f"  {count(len(receiver.pending), 'receipt')} kept from before, waiting for a free journal")
    click.echo("Ctrl-C to stop.")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        receiver.stop()
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(receiver.counts.items())) or "no webhooks"
        click.echo(f"Stopped: {counts}.")
        if receiver.pending:
            click.echo(f"  {count(len(receiver.pending), 'receipt')} still wait in {log} for a journal in use; the "
                       "next `batchsms receive` or `batchsms status` records them")
