"""The ``batchsms`` command line: the only module that knows about click, prints, or exits.

Exit codes: 0 all rows fine, 1 some row has an error (or failed to send), 2 the run
could not start (a missing file, a bad option, refused credentials).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from . import __version__
from . import fields as F
from .check import CheckOptions, check_sheet, load_suppression
from .errors import BatchSmsError
from .report import Report
from .sheet import Sheet, load
from .template import MessageTemplate

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

    return wrapper


def parse_column(ctx, param, values):
    pairs = []
    for value in values:
        name, sep, header = value.partition("=")
        if not sep or not name.strip() or not header.strip():
            raise click.BadParameter(f"{value!r}: write FIELD=HEADER, e.g. --column To='Mobile Phone'")
        pairs.append((name.strip(), header.strip()))
    return pairs


def check_options(func):
    """The options shared by ``check`` and ``send``: how to read the sheet and build each message."""
    options = [
        click.argument("sheet_path", metavar="SHEET", type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--template", "template_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Jinja2 template file for the message text; columns are variables."),
        click.option("--text", "text_source", help="The message text as an inline Jinja2 template."),
        click.option("--sheet", "sheet_name", help="Workbook sheet to read (default: the first)."),
        click.option("--header-row", type=int, default=1, show_default=True,
                     help="Row number of the header, for sheets with a title above it."),
        click.option("--encoding", help="CSV encoding, if detection gets it wrong (e.g. cp1252)."),
        click.option("--delimiter", help="CSV delimiter, if detection gets it wrong."),
        click.option("--column", "columns", multiple=True, callback=parse_column, metavar="FIELD=HEADER",
                     help="Feed an API field from a column (repeatable): --column To='Mobile Phone'."),
        click.option("--country", default="AU", show_default=True,
                     help="Country for numbers written without a country code."),
        click.option("--timezone", default="UTC", show_default=True,
                     help="Time zone of schedule times written without an offset."),
        click.option("--from", "sender", help="Sender ID for every row: +E.164, alphanumeric, or blank for leased."),
        click.option("--schedule", help="Send time for every row (ISO 8601 or epoch seconds)."),
        click.option("--delivery-receipt/--no-delivery-receipt", default=None,
                     help="Ask for delivery receipts (the API's default is yes)."),
        click.option("--delivery-receipt-webhook", metavar="URL", help="URL called with each delivery receipt."),
        click.option("--delivery-receipt-webhook-method", type=click.Choice(["POST", "GET"], case_sensitive=False)),
        click.option("--webhook", metavar="URL", help="URL called with replies (leased numbers only)."),
        click.option("--webhook-method", type=click.Choice(["POST", "GET"], case_sensitive=False)),
        click.option("--forward-to-sms", help="Forward replies to this number (leased only)."),
        click.option("--forward-from-sms", help="Sender for forwarded replies (leased only)."),
        click.option("--forward-to-email", help="Forward replies to this address (leased only)."),
        click.option("--forward-from-email", help="Sender address for forwarded replies (leased only)."),
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


def prepare(params: dict) -> tuple[Sheet, CheckOptions]:
    """Load the sheet and template and gather the check options from the command's parameters."""
    if params["template_path"] and params["text_source"]:
        raise click.UsageError("give --template or --text, not both")
    columns = list(params["columns"])
    if params["external_id_column"]:
        columns.append((F.EXTERNAL_ID, params["external_id_column"]))
    sheet = load(params["sheet_path"], sheet=params["sheet_name"], header_row=params["header_row"],
                 encoding=params["encoding"], delimiter=params["delimiter"], columns=columns)
    template = None
    if params["template_path"]:
        template = MessageTemplate.from_file(params["template_path"], sheet.header)
    elif params["text_source"] is not None:
        template = MessageTemplate(params["text_source"], sheet.header)
    defaults = {
        F.FROM: params["sender"],
        F.SCHEDULE: params["schedule"],
        F.DR_WEBHOOK_URI: params["delivery_receipt_webhook"],
        F.DR_WEBHOOK_METHOD: params["delivery_receipt_webhook_method"],
        F.WEBHOOK_URI: params["webhook"],
        F.WEBHOOK_METHOD: params["webhook_method"],
        F.FORWARD_TO_SMS: params["forward_to_sms"],
        F.FORWARD_FROM_SMS: params["forward_from_sms"],
        F.FORWARD_TO_EMAIL: params["forward_to_email"],
        F.FORWARD_FROM_EMAIL: params["forward_from_email"],
    }
    if params["delivery_receipt"] is not None:
        defaults[F.DELIVERY_RECEIPT] = "true" if params["delivery_receipt"] else "false"
    suppress = frozenset()
    if params["suppress_path"]:
        suppress = load_suppression(params["suppress_path"], params["country"])
    options = CheckOptions(
        country=params["country"], timezone=params["timezone"],
        defaults={k: v for k, v in defaults.items() if v}, template=template,
        max_segments=params["max_segments"], dedupe=params["dedupe"], suppress=suppress,
    )
    return sheet, options


def print_summary(report: Report, as_json: bool, extra: dict | None = None) -> dict:
    summary = report.summary()
    if extra:
        summary.update(extra)
    if as_json:
        click.echo(json.dumps(summary))
        return summary
    width = max(len(label) for _, label in SUMMARY_LABELS)
    for key, label in SUMMARY_LABELS:
        click.echo(f"  {label:<{width}}  {summary[key]:>8,}")
    if summary["top_problems"]:
        click.echo("  most frequent problems:")
        for p in summary["top_problems"]:
            click.echo(f"    {p['count']:>8,}  {p['severity']:<7}  {p['code']}")
    return summary


def default_sibling(sheet_path: Path, kind: str, suffix: str) -> Path:
    """``contacts.csv`` → ``contacts.<kind><suffix>`` beside it."""
    return sheet_path.with_name(f"{sheet_path.stem}.{kind}{suffix}")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    sheet, options = prepare(params)
    report = check_sheet(sheet, options)
    path = report.write(report_path or default_sibling(sheet.path, "report", ".csv"))
    if not as_json:
        click.echo(f"Checked {sheet.path} ({len(sheet.rows):,} rows); report: {path}")
    print_summary(report, as_json, {"report": str(path)} if as_json else None)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
