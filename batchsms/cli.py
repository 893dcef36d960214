"""The ``batchsms`` command line: parses options, calls :mod:`batchsms.api`, prints, and picks exit codes.

It is the only module that knows about click or exits; the library prints nothing but
the sender's progress bar (on stderr, off with ``--quiet`` or ``SendOptions(progress=False)``).

Exit codes: 0 all rows fine, 1 some row has an error (or failed to send), 2 the run
could not start (a missing file, a bad option, refused credentials).
"""

from __future__ import annotations

import functools
import gc
import importlib
import json
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from decimal import Decimal
from pathlib import Path
from typing import NoReturn

import click

from . import __version__
from . import fields as F
from .api import (
    Options,
    SendOptions,
    SendOutcome,
    SendPlan,
    Target,
    check_sheet,
    describe_rows,
    send_sheet,
    target_from_config,
    write_outputs,
)
from .clock import format_local
from .codes import Status
from .config import MAX_BATCH_SIZE, Preferences, load_preferences
from .endpoint import DEFAULT_BASE_URL
from .errors import BatchSmsError, ConfigError
from .paths import check_output
from .perf import gc_paused
from .phones import regions_named
from .preview import Preview, default_preview_path
from .pricing import format_money, parse_amount
from .report import Report
from .report import report_path as report_path_of

#: The sandbox's made-up token (the sandbox package is imported only when a sandbox runs).
DEFAULT_SANDBOX_TOKEN = "sandbox"
SUMMARY_LABELS = (
    ("rows_read", "rows read"),
    ("rows_valid", "rows valid"),
    ("rows_with_errors", "rows with errors"),
    ("rows_with_warnings", "rows with warnings"),
    ("rows_skipped", "rows skipped"),
    ("messages_gsm7", "messages in GSM-7"),
    ("messages_ucs2", "messages in UCS-2"),
    ("segments", "total segments"),
    ("leased_rows", "leased rows (blank From)"),
    ("scheduled_rows", "scheduled rows"),
)


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr, never a traceback."""
    click.echo(f"batchsms: error: {message}", err=True)
    sys.exit(code)


def handle_errors(func):
    """Turn library errors into one line on stderr and their exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BatchSmsError as exc:
            fail(str(exc), exc.exit_code)
        except OSError as exc:  # a full disk, a folder gone read-only mid-run: one line, not a traceback
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}; free some space or choose another path, then run it again")

    return wrapper


def parse_column(ctx, param, values):
    pairs = []
    for value in values:
        name, sep, header = value.partition("=")
        if not sep or not name.strip() or not header.strip():
            raise click.BadParameter(f"{value!r}: write FIELD=HEADER, e.g. --column To='Mobile Phone'")
        pairs.append((name.strip(), header.strip()))
    return pairs


def _field_option(spec: F.FieldOption):
    """The click option for one row of the field table (fields.FIELD_OPTIONS)."""
    if spec.flag:
        name = spec.option.removeprefix("--")
        return click.option(f"--{name}/--no-{name}", spec.param, default=None, help=spec.help)
    kind = click.Choice(spec.choices, case_sensitive=False) if spec.choices else None
    return click.option(spec.option, spec.param, type=kind, metavar=spec.metavar, help=spec.help)


def check_options(func):
    """The SHEET argument and the options shared by ``check`` and ``send``."""
    func = message_options(func)
    return click.argument("sheet_path", metavar="SHEET", type=click.Path(dir_okay=False, path_type=Path))(func)


def message_options(func):
    """The options shared by ``check``, ``send`` and ``watch``: how to read a sheet and build each message."""
    options = [
        click.option("--template", "template_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Jinja2 template file for the message text; columns are variables."),
        click.option("--text", "text_source", help="The message text as an inline Jinja2 template."),
        click.option("--sheet", "sheet_name", help="Workbook sheet to read (default: the first visible one)."),
        click.option("--header-row", type=int,
                     help="Row number of the header (default: row 1, or found below a title or blank rows)."),
        click.option("--encoding", help="CSV encoding, if detection gets it wrong (e.g. cp1252)."),
        click.option("--delimiter", help="CSV delimiter, if detection gets it wrong."),
        click.option("--column", "columns", multiple=True, callback=parse_column, metavar="FIELD=HEADER",
                     help="Feed an API field from a column (repeatable): --column To='Mobile Phone'."),
        click.option("--include-hidden", is_flag=True, help="Also send rows hidden in the workbook."),
        click.option("--country", default="AU", show_default=True,
                     help="Country for numbers written without a country code (a Country column wins per row)."),
        click.option("--countries", metavar="AU,NZ",
                     help="Countries the numbers may be from: a landline or invalid number that would be a mobile "
                          "in one of them names that reading."),
        click.option("--allow-landlines", is_flag=True,
                     help="Send to numbers that are not mobiles (a warning, not an error): SMS to a landline is at "
                          "best read out as a voice call."),
        click.option("--timezone", metavar="ZONE",
                     help="Time zone for times shown and schedule times written without an offset "
                          "(default: timezone in the config file, else this machine's zone)."),
        click.option("--locale", metavar="LOCALE",
                     help="How dates print and read, e.g. en_AU, en_US, de_DE (default: locale in the config "
                          "file, else English as written in --country)."),
        click.option("--where", "where", metavar="EXPRESSION",
                     help="Send only the rows this Jinja expression is true for; the others are skipped: "
                          "--where \"Clinic == 'Parramatta'\"."),
        click.option("--consent-column", metavar="HEADER",
                     help="Skip rows whose cell in this column is not yes/y/true/1 (consent to marketing)."),
        click.option("--skip-empty", is_flag=True,
                     help="Skip rows the template writes no text for, instead of calling them errors."),
        click.option("--marketing/--no-marketing", default=None,
                     help="A marketing campaign: every text must say how to opt out, and 'Reply STOP' must come "
                          "from a number (default: marketing in the config file, else off)."),
        click.option("--late", type=click.Choice(["error", "send-now", "skip"]), default="error", show_default=True,
                     help="Rows whose Schedule passed more than an hour ago: an error, sent now, or skipped."),
        click.option("--quiet-hours", metavar="21:00-08:00",
                     help="No message arrives in these hours of the recipient's own time: its send time moves to "
                          "the next allowed one (default: quiet_hours in the config file)."),
        click.option("--quiet-days", metavar="Sun",
                     help="Whole days of the recipient's week without messages (with --quiet-hours)."),
        click.option("--quiet-hours-policy", type=click.Choice(["move", "skip", "error"]), default="move",
                     show_default=True, help="A send time inside quiet hours: moved, skipped, or an error."),
        click.option("--price", metavar="AMOUNT",
                     help="Price per segment for every number, for the cost estimate (else [prices] in the config)."),
        click.option("--preview", "preview_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Where to write the preview sheet (default <sheet>.preview.xlsx or .csv)."),
        click.option("--no-preview", is_flag=True, help="Do not write the preview sheet."),
        *[_field_option(spec) for spec in F.FIELD_OPTIONS],
        click.option("--external-id-column", metavar="HEADER", help="Column whose value becomes ExternalId."),
        click.option("--max-segments", type=click.IntRange(1, 255), default=10, show_default=True,
                     help="Texts longer than this many segments are errors."),
        click.option("--dedupe", is_flag=True, help="Skip later rows to a recipient already texted."),
        click.option("--suppress", "suppress_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="CSV/XLSX/TXT of numbers never to text (opt-outs)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def options_from(params: dict) -> Options:
    """The library's Options from the command's parameters (everything ``check_options`` added)."""
    if params["template_path"] and params["text_source"] is not None:
        raise click.UsageError("give --template or --text, not both")
    for name, value in params.items():
        if isinstance(value, str) and not _encodable(value):
            option = {"text_source": "--text"}.get(name) or next(
                (o.option for o in F.FIELD_OPTIONS if o.param == name), "--" + name.replace("_", "-"))
            raise ConfigError(f"{option}: holds bytes that are not UTF-8 text; type it again, or put the "
                              "text in a --template file saved as UTF-8")
    columns, country_column = [], None
    for name, header in params["columns"]:  # --column Country=HEADER: no API field, the rows' countries
        if F.header_key(name) == "country":
            country_column = header
        else:
            columns.append((name, header))
    countries: tuple[str, ...] = ()
    if params["countries"]:
        try:
            countries = regions_named(params["countries"], "--countries")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if params["external_id_column"]:
        columns.append((F.EXTERNAL_ID, params["external_id_column"]))
    defaults = {}
    for spec in F.FIELD_OPTIONS:
        value = params[spec.param]
        if spec.flag and value is not None:
            defaults[spec.field] = "true" if value else "false"
        elif value:
            defaults[spec.field] = value
    return Options(
        template=params["template_path"], text=params["text_source"], sheet=params["sheet_name"],
        header_row=params["header_row"], encoding=params["encoding"], delimiter=params["delimiter"],
        columns=columns, include_hidden=params["include_hidden"], country=params["country"],
        timezone=params["timezone"], defaults=defaults, max_segments=params["max_segments"],
        dedupe=params["dedupe"], suppress=params["suppress_path"], price=params["price"],
        country_column=country_column, allow_landlines=params["allow_landlines"], countries=countries,
        locale=params["locale"], where=params["where"], consent_column=params["consent_column"],
        skip_empty=params["skip_empty"], marketing=params["marketing"], late=params["late"],
        quiet_hours=params["quiet_hours"], quiet_days=params["quiet_days"], quiet_policy=params["quiet_hours_policy"],
    )


def preview_target(params: dict) -> Path | bool:
    """``--preview PATH``, ``--no-preview`` (False), or the default beside the sheet (True)."""
    if params["no_preview"]:
        if params["preview_path"] is not None:
            raise click.UsageError("give --preview PATH or --no-preview, not both")
        return False
    return params["preview_path"] or True


def preferences() -> Preferences:
    """The config file's time zone and prices (no credentials), its warnings on stderr."""
    found = load_preferences()
    for warning in found.warnings:
        click.echo(f"batchsms: warning: {warning}", err=True)
    return found


def _encodable(value: str) -> bool:
    """False for text holding bytes the terminal passed that are not UTF-8 (lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def print_summary(report: Report, as_json: bool, extra: dict | None = None, preview: Preview | None = None) -> dict:
    """The check's figures; with a preview also who gets what, when, at what cost, and sample messages."""
    summary = report.summary()
    if preview is not None:
        summary.update(preview.figures())
    if extra:
        summary.update(extra)
    sheet = report.sheet
    if sheet is not None and sheet.header_detected:
        summary["header_row"] = sheet.header_row
    if as_json:
        click.echo(json.dumps(summary))
        return summary
    if sheet is not None and sheet.header_detected:
        click.echo(f"  header found on row {sheet.header_row}; --header-row {sheet.header_row} to be explicit")
    if preview is not None and preview.dominant is not None:
        severity, code, rows = preview.dominant
        first = next(i for i in report.issues() if i.code == code)
        click.echo(f"  ! {code} ({severity}) on {rows:,} of {count(len(report.results), 'row')}, "
                   f"e.g. row {first.row}: {first.message}")
    width = max(len(label) for _, label in SUMMARY_LABELS)
    for key, label in SUMMARY_LABELS:
        click.echo(f"  {label:<{width}}  {summary[key]:>8,}")
    if preview is not None:
        recipients = ", ".join(f"{n:,} {r['country']} {r['line']}" for r in summary["recipients"]
                               for n in [r["rows"]]) or "none"
        click.echo(f"  {'recipients':<{width}}  {recipients}")
        click.echo(f"  {'sends at':<{width}}  {preview.when_text()}")
        click.echo(f"  {'estimated cost':<{width}}  {preview.cost_text()}")
    if summary["top_problems"]:
        click.echo("  most frequent problems:")
        for p in summary["top_problems"]:
            click.echo(f"    {p['count']:>8,}  {p['severity']:<7}  {p['code']}")
    if preview is not None and preview.samples:
        click.echo("  sample messages:")
        for s in preview.samples:
            click.echo(f"    row {s.row} · {s.number} ({s.why}, {count(s.segments, 'segment')})")
            for line in s.text.splitlines() or [""]:
                click.echo(f"      {line}")
    return summary


def default_sibling(sheet_path: Path, kind: str, suffix: str) -> Path:
    """``contacts.csv`` → ``contacts.<kind><suffix>`` beside it."""
    return sheet_path.with_name(f"{sheet_path.stem}.{kind}{suffix}")


#: Commands kept in modules of their own, which register themselves on :func:`main` when imported:
#: imported when one is named or the commands are listed (``--help``), so that ``batchsms check``
#: does not pay for what due, replies, status, summary and watch import.
_ELSEWHERE = {"cancel": "cli_due", "due": "cli_due", "receive": "cli_replies", "replies": "cli_replies",
              "status": "cli_status", "summary": "cli_summary", "watch": "cli_watch"}


class _Commands(click.Group):
    """``main``'s commands, with those of :data:`_ELSEWHERE` imported when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_ELSEWHERE})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _ELSEWHERE:
            importlib.import_module(f"{__package__}.{_ELSEWHERE[cmd_name]}")
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:  # click suggests from the imported commands only
            raise click.exceptions.NoSuchCommand(exc.command_name, possibilities=self.list_commands(ctx),
                                                 ctx=ctx) from None


def every_command() -> dict[str, click.Command]:
    """Every command by name, those kept in modules of their own imported (for walks over all of them)."""
    context = click.Context(main)
    return {name: command for name in main.list_commands(context)
            if (command := main.get_command(context, name)) is not None}


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="batchsms")
def main() -> None:
    """Turn a contact sheet into correct SMS messages via the Fone Dynamics API.

    \b
    Example:
      batchsms check contacts.csv --template templates/reminder.txt
      batchsms send contacts.csv --template templates/reminder.txt --sandbox --yes
    """


@main.command()
@check_options
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the problems (.csv, .xlsx or .json); default <sheet>.report.csv.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@handle_errors
def check(report_path: Path | None, as_json: bool, **params) -> None:
    """Validate every row of SHEET and write a report; sends nothing.

    Exit code 0 when no row has an error, 1 when some row has one, 2 when the
    check cannot start.

    \b
    Example:
      batchsms check samples/contacts.csv --template templates/appointment_reminder.txt \\
          --from "CityDental" --timezone Australia/Sydney --report problems.xlsx
    """
    options = options_from(params)
    prefs = preferences()
    sheet_path = params["sheet_path"]
    inputs = options.inputs(sheet_path)
    report_path = check_output(report_path_of(report_path or default_sibling(sheet_path, "report", ".csv")),
                               "--report", inputs)
    preview_path = preview_target(params)
    if preview_path is not False:
        preview_path = check_output(default_preview_path(sheet_path) if preview_path is True else preview_path,
                                    "--preview", inputs)
    with collector_off():
        report = check_sheet(sheet_path, options, workers=os.cpu_count() or 1, preferences=prefs)
        preview, preview_written = write_outputs(report, options, prefs, report_path=report_path,
                                                 preview_path=None if preview_path is False else preview_path)
        written = {"report": str(report_path)}
        if preview_written is not None:
            written["preview"] = str(preview_written)
        if not as_json:
            click.echo(f"Checked {report.sheet.path} ({count(len(report.sheet.rows), 'row')}); "
                       + "; ".join(f"{k}: {v}" for k, v in written.items()))
        print_summary(report, as_json, written if as_json else None, preview)
        sys.exit(0 if report.ok else 1)


def interactive() -> bool:
    """True when a person can answer a question (tests replace this)."""
    return sys.stdin.isatty()


@main.command()
@check_options
@click.option("--property-sid", help="Property to send from (default: $BATCHSMS_PROPERTY_SID or the config file).")
@click.option("--base-url", help=f"API base URL (default: $BATCHSMS_BASE_URL or {DEFAULT_BASE_URL}).")
@click.option("--sandbox", "use_sandbox", is_flag=True,
              help="Send to a built-in sandbox API in this process: no credentials, nothing leaves the machine.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Requests in flight at once.")
@click.option("--rate", type=click.FloatRange(min=0.01), help="At most this many messages a second.")
@click.option("--batch-size", type=click.IntRange(0, MAX_BATCH_SIZE), metavar="N",
              help="Send through BatchMessages, N messages a request (100 is usual; 0: one message a request). "
                   "An unanswered request leaves up to N rows unknown. Default: batch_size in the config file, "
                   "else one message a request.")
@click.option("--limit", type=click.IntRange(min=0), help="Send at most N messages this run (the rest stay pending).")
@click.option("--results", "results_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file (.csv or .xlsx); default <sheet>.results.<csv|xlsx>. The journal sits beside it.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for cron).")
@click.option("--retry-unknown", is_flag=True, help="Resend rows whose earlier outcome is unknown (may double-send).")
@click.option("--retry-failed", is_flag=True, help="Resend rows the API refused earlier.")
@click.option("--restart", is_flag=True, help="Start over: set the journal aside and send every valid row again.")
@click.option("--yes-resend", is_flag=True,
              help="Allow sending messages that an earlier run (another journal) already sent: texts them twice.")
@click.option("--allow-insecure", is_flag=True,
              help="Allow a cleartext http:// --base-url to a host other than this machine (exposes the token).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--connect-timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True)
@click.option("--read-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to wait for an answer; after that the row is unknown, never resent blindly.")
@click.option("--max-attempts", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Attempts for answers that prove the message was not taken (429, 503, no connection).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the check report here (.csv, .xlsx or .json).")
@click.option("--max-cost", metavar="AMOUNT",
              help="Refuse to send when the estimated cost is above this (needs --price or [prices]).")
@click.option("--hold", is_flag=True,
              help="Keep every scheduled message here until shortly before its time (`batchsms due` hands it "
                   "over), so it can still be cancelled; the API itself has no cancel call.")
@click.option("--submit-ahead", metavar="DURATION", default="15m", show_default=True,
              help="With --hold: hand a message to the API this long before its time (30s, 15m, 2h).")
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON objects.")
@handle_errors
def send(property_sid, base_url, use_sandbox, concurrency, rate, batch_size, limit, results_path, yes, retry_unknown,
         retry_failed, restart, yes_resend, allow_insecure, quiet, connect_timeout, read_timeout, max_attempts,
         report_path, max_cost, hold, submit_ahead, as_json, **params) -> None:
    """Validate SHEET, then send its valid rows exactly once and write the results file.

    Invalid rows are never sent. A journal beside the results file records each
    row before its request goes out, so after Ctrl-C, a crash or a network outage
    the same command sends only the rows never started. Rows whose answer never
    came are 'unknown' and are resent only with --retry-unknown.

    Exit code 0 when every valid row was sent or scheduled, 1 when a row is
    invalid, failed or unknown, 2 when the run could not start, 130 when stopped.

    \b
    Example:
      batchsms send samples/contacts.csv --template templates/appointment_reminder.txt --sandbox --yes
      batchsms send contacts.xlsx --template templates/spring_sale.txt --property-sid PS... --rate 20

    The account SID and token come from ~/.config/batchsms/config.ini (chmod 600)
    or the environment, never from the command line.
    """
    options = options_from(params)
    prefs = preferences()
    sending = SendOptions(concurrency=concurrency, rate=rate, limit=limit, results=results_path, report=report_path,
                          retry_unknown=retry_unknown, retry_failed=retry_failed, restart=restart,
                          yes_resend=yes_resend, allow_insecure=allow_insecure, connect_timeout=connect_timeout,
                          read_timeout=read_timeout, max_attempts=max_attempts, progress=not (quiet or as_json),
                          preview=preview_target(params), hold=hold,
                          submit_ahead=parse_duration(submit_ahead, "--submit-ahead"),
                          max_cost=parse_amount(max_cost, "--max-cost") if max_cost is not None else None,
                          batch_size=batch_size if batch_size is not None else prefs.batch_size,
                          on_notice=lambda text: click.echo(f"batchsms: {text}", err=True))
    with connected(use_sandbox, base_url, property_sid, quiet=as_json) as target:
        outcome = send_sheet(
            params["sheet_path"], options, target, sending, workers=os.cpu_count() or 1, preferences=prefs,
            approve=lambda p: approve_plan(p, yes=yes, as_json=as_json, where=target.name),
            on_interrupt=lambda: click.echo(
                "\nStopping: waiting for the requests in flight (Ctrl-C again to quit at once)...", err=True),
            on_second_interrupt=quit_at_once)
    sys.exit(report_outcome(outcome, as_json))


@contextmanager
def connected(use_sandbox: bool, base_url: str | None, property_sid: str | None, *,
              quiet: bool = False) -> Iterator[Target]:
    """Where messages go: the config's API, or (``--sandbox``) a sandbox in this process for the command's life.

    Credentials are read (and checked) before a long check of the sheet, not after it.
    """
    if not use_sandbox:
        target = target_from_config(base_url=base_url, property_sid=property_sid)
        for warning in target.warnings:
            click.echo(f"batchsms: warning: {warning}", err=True)
        yield target
        return
    from .sandbox import Sandbox

    sandbox = Sandbox(port=0).start()
    try:
        yield Target(sandbox.url, sandbox.account_sid, sandbox.auth_token, property_sid or "PSANDBOX",
                     name="the built-in sandbox")
    finally:
        sandbox.stop()
        if not quiet:
            click.echo(sandbox.summary(), err=True)


def parse_duration(text: str, option: str) -> float:
    """``90``, ``30s``, ``15m``, ``2h``, ``1d`` as seconds; a usage error naming ``option`` otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if found is None:
        raise click.BadParameter(f"{text!r} is not a duration: write it like 30s, 15m, 2h or 1d", param_hint=option)
    return float(found[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[found[2]]


def count(n: int, noun: str) -> str:
    """``1 message``, ``2 messages``, ``1,024 rows``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def rows_named(rows: list[int]) -> str:
    """``row 4`` or ``rows 2, 3 and 9 more``."""
    return f"row{'' if len(rows) == 1 else 's'} {describe_rows(rows)}"


def approve_plan(the_plan: SendPlan, *, yes: bool, as_json: bool, where: str | None) -> bool:
    """Print what the send will do and, unless --yes, ask; without a terminal, refuse (exit 2)."""
    p, report = the_plan.plan, the_plan.report
    where = where or f"property {the_plan.property_sid} via {the_plan.host}"
    if not as_json:
        written = f"; preview: {the_plan.preview_path}" if the_plan.preview_path else ""
        click.echo(f"Checked {report.sheet.path} ({count(len(report.sheet.rows), 'row')}){written}")
        print_summary(report, False, preview=the_plan.preview)
        if the_plan.backup:
            click.echo(f"  restarting: the old journal is kept as {the_plan.backup}")
        if the_plan.recovered:
            click.echo(f"  {count(the_plan.recovered, 'row')} in flight when the last run stopped: now unknown")
        click.echo(f"  to send now: {count(len(p.jobs), 'message')} ({count(the_plan.segments, 'segment')}) "
                   f"from {where}")
        if p.jobs and not the_plan.batch_size:  # which call, and what a request whose answer never comes costs
            click.echo("  via Messages: one row unknown per unanswered request (single sends)")
        elif p.jobs:
            click.echo(f"  via BatchMessages: up to {count(min(the_plan.batch_size, len(p.jobs)), 'row')} unknown "
                       f"per unanswered request (batches of {the_plan.batch_size:,})")
        if p.to_hold:
            first = min(job.due for job in p.to_hold)
            click.echo(f"  to hold: {count(len(p.to_hold), 'message')} kept by batchsms until due (beyond the API's "
                       f"14 days, or --hold); `batchsms due` hands them over from "
                       f"{format_local(first, the_plan.preview.zone)}: run it from cron")
        if p.kept_held:
            click.echo(f"  held by an earlier run, unchanged: {rows_named(p.kept_held)}")
        if p.withdrawn:
            click.echo(f"  held, now not ready (invalid, skipped or removed): withdrawn: {rows_named(p.withdrawn)}")
        if p.cancelled:
            click.echo(f"  cancelled earlier (not sent): {rows_named(p.cancelled)}")
        if p.done:
            click.echo(f"  already sent by an earlier run: {p.done:,}")
        if p.done_changed:
            click.echo(f"  sent earlier, now invalid, skipped or removed (not sent again): "
                       f"{rows_named(p.done_changed)}")
        if the_plan.resent:
            click.echo(f"  sending again (--yes-resend): {count(len(the_plan.resent), 'message')} an earlier run "
                       "already sent")
        if p.held_unknown:
            click.echo(f"  unknown, not resent: {rows_named(p.held_unknown)} (--retry-unknown)")
        if p.held_failed:
            click.echo(f"  failed earlier, not resent: {rows_named(p.held_failed)} (--retry-failed)")
        if p.limited:
            click.echo(f"  left for a later run by --limit: {p.limited:,}")
    if yes or not (p.jobs or p.to_hold):
        return True
    if not interactive():
        raise BatchSmsError("refusing to send without a terminal to confirm on; add --yes (e.g. for cron)")
    cost = the_plan.plan_cost()
    priced = f", est. {format_money(cost, the_plan.preview.prices.currency)}" if cost is not None else ""
    question = (f"Send {count(len(p.jobs), 'message')} ({count(the_plan.segments, 'segment')}{priced}) "
                f"from {where}?")
    if click.confirm(question, err=as_json):
        return True
    click.echo("Nothing sent.", err=as_json)  # with --json, stdout holds only JSON
    return False


def quit_at_once() -> None:
    """The second Ctrl-C: out now; every row in flight is already in the journal as started."""
    sys.stderr.write("\nbatchsms: stopped at once; rows in flight will show as unknown\n")
    sys.stderr.flush()
    os._exit(130)


def report_outcome(outcome: SendOutcome, as_json: bool) -> int:
    """Print what the run did and pick the exit code (0 all done, 1 a row needs a look, 130 stopped)."""
    stats, the_plan = outcome.stats, outcome.sendplan.plan
    counts = {str(k): stats.counts[k] for k in (Status.SENT, Status.SCHEDULED, Status.FAILED, Status.UNKNOWN)}
    if stats.counts[Status.HELD]:
        counts[str(Status.HELD)] = stats.counts[Status.HELD]
    if as_json:
        plan = outcome.sendplan
        cost = plan.plan_cost()
        click.echo(json.dumps({**outcome.report.summary(), **plan.preview.figures(), **counts,
                               "results": str(outcome.results),
                               "preview": str(plan.preview_path) if plan.preview_path else None,
                               "to_send": len(plan.plan.jobs), "segments_to_send": plan.segments,
                               "cost_to_send": None if cost is None else str(cost.quantize(Decimal("0.01"))),
                               "host": plan.host, "property": plan.property_sid,
                               "interrupted": stats.interrupted, "seconds": round(stats.elapsed, 3)}))
    elif outcome.approved:
        sent = len(the_plan.jobs)
        rate_text = f" ({sent / stats.elapsed:,.0f} msg/s)" if stats.elapsed > 0 and sent else ""
        click.echo("This run: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + rate_text)
        click.echo(f"Results: {outcome.results}")
    if not outcome.approved:
        return 1
    if stats.interrupted:
        click.echo(f"Interrupted. To finish, run the same command again:\n  batchsms {shlex.join(sys.argv[1:])}",
                   err=True)
        return 130
    return 0 if outcome.ok else 1


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--account-sid", default="ACSANDBOX", show_default=True, help="The AccountSid it accepts.")
@click.option("--auth-token", default=DEFAULT_SANDBOX_TOKEN, show_default=True,
              help="The token it accepts (made up, not a secret).")
@click.option("--faults", help="Fault rates per request, e.g. 429=0.05,503=0.02,reset=0.01,500=0.01,timeout=0.01,"
              "lost=0.01 (500, timeout and lost take the message and then give no proper answer).")
@click.option("--latency", type=click.FloatRange(min=0), default=0.0,
              help="Milliseconds of round trip: requests are processed halfway, answered at the end.")
@click.option("--max-batch", type=click.IntRange(min=0),
              help="Refuse BatchMessages requests with more messages than this (400 BatchTooLarge).")
@click.option("--rate", type=click.FloatRange(min=0.01), help="Answer 429 with Retry-After above N requests/s.")
@click.option("--seed", type=int, help="Seed for the fault, undelivered and reply draws, to repeat a run.")
@click.option("--timeout-hold", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds a 'timeout' fault holds the connection without answering.")
@click.option("--undelivered", type=click.FloatRange(0, 1), default=0.0, metavar="RATE",
              help="Share of sent messages (with delivery receipts) that end Failed, ErrorCode Undeliverable.")
@click.option("--replies", type=click.FloatRange(0, 1), default=0.0, metavar="RATE",
              help="Share of delivered messages sent from a number that get an inbound reply "
                   "(some say STOP), shown by the list call and sent to the send's WebhookUri.")
def sandbox(host, port, account_sid, auth_token, faults, latency, max_batch, rate, seed, timeout_hold, undelivered,
            replies) -> None:
    """Run a local server that behaves like the Fone Dynamics API (Ctrl-C to stop).

    It takes single sends, BatchMessages, GET /v2/Messages/{sid} and the list call
    GET /v2/Properties/{sid}/Messages?Date_From=&Date_To=&Results_Count=, checks
    Basic auth and every rule of the API page, keeps the 5-lease limit, hands out
    leased numbers, and moves messages from Processing (until their Schedule) to
    Submitted and Delivered or Failed, with inbound replies when asked (calling
    loopback delivery-receipt and reply webhooks). It prints what it did on exit.

    \b
    Example:
      batchsms sandbox --port 8080 --faults 429=0.05,reset=0.01 --latency 50
      batchsms sandbox --undelivered 0.03 --replies 0.02 --seed 7
      BATCHSMS_BASE_URL=http://127.0.0.1:8080 BATCHSMS_ACCOUNT_SID=ACSANDBOX BATCHSMS_AUTH_TOKEN=sandbox \\
          batchsms send samples/contacts.csv --text "Hi {{ First_Name }}" --property-sid PS1 --yes
    """
    from .sandbox import DEFAULT_AUTH_TOKEN, Sandbox, exposure_warning, parse_faults

    try:
        fault_rates = parse_faults(faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    warning = exposure_warning(host, auth_token == DEFAULT_AUTH_TOKEN)
    if warning:
        click.echo(f"batchsms: warning: {warning}", err=True)
    server = Sandbox(host, port, account_sid=account_sid, auth_token=auth_token, faults=fault_rates,
                     latency_ms=latency, rate=rate, seed=seed, timeout_hold=timeout_hold,
                     undelivered=undelivered, replies=replies, max_batch=max_batch)
    try:
        server.start()
    except OSError as exc:
        fail(f"{host}:{port}: cannot listen ({exc}); choose another --port")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or kill from a script or a service manager
        signal.signal(signum, lambda *_: stop.set())  # before the URL is shown: a script may stop it at once
    click.echo(f"Sandbox API on {server.url} (account {account_sid}; token as given by --auth-token). "
               "Ctrl-C to stop.")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        click.echo(server.summary())


#: Set by :func:`run`: this process is the ``batchsms`` program, and ends when the command does.
_as_program = False


def collector_off() -> AbstractContextManager:
    """The cyclic garbage collector off for a command that holds a whole sheet (``check``).

    The sheet's columns are lists of millions of cells, and each collection that finds them
    young walks every cell: at 1M rows that cost 0.25-0.35 s of the check, to find nothing
    (the objects hold no cycles, see :func:`perf.gc_paused`). As the ``batchsms`` program the
    collector stays off, since the process ends with the command (:func:`run`); called from
    Python (a test's CliRunner), it is back on when the command returns.
    """
    if _as_program:
        gc.disable()
        return nullcontext()
    return gc_paused()


def run() -> None:
    """The console entry point: the CLI, then an exit that skips freeing every object one by one.

    A million-row check leaves ~10 million small objects whose one-by-one release
    at interpreter exit took 0.3–0.6 s here. Every file and the journal are closed
    by then, so the process ends as soon as its output is flushed.
    """
    global _as_program
    _as_program = True
    try:
        main()
    except SystemExit as exc:  # leave while the stopped frames (and the report they hold) are still alive
        if isinstance(exc.code, str):
            click.echo(exc.code, err=True)
        _leave(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
    _leave(0)


def _leave(code: int) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover - ``python -m batchsms.cli``
    # This file is then __main__, a copy apart from batchsms.cli, the module the commands kept elsewhere
    # register on when imported: run that one's group.
    from batchsms.cli import run as run_registered

    run_registered()
