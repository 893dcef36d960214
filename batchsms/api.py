"""The public Python API: check a sheet (or a DataFrame), send it exactly once. The CLI calls only this.

    import batchsms
    options = batchsms.Options(template="templates/appointment_reminder.txt", timezone="Australia/Sydney")
    report = batchsms.check_sheet("contacts.xlsx", options)
    print(report.summary()["rows_valid"], "rows would be sent")
    outcome = batchsms.send_sheet("contacts.xlsx", options, batchsms.target_from_config(),
                                  batchsms.SendOptions(rate=20))

Nothing here prints or exits: problems in rows are in the Report, what stops a run is
a :class:`~batchsms.errors.BatchSmsError` whose message says where and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import background, dates
from . import fields as F
from .check import CheckOptions, check, check_option_values
from .clock import run_zone
from .codes import MAYBE_SENT, Status
from .config import Preferences, Settings, load_preferences, load_settings
from .endpoint import is_loopback_host
from .errors import AuthError, BatchSmsError, ConfigError, JournalError
from .journal import Journal, earlier_sends, journal_path, journals_near
from .moves import follow_moves
from .optouts import default_optouts_path, load_optouts
from .paths import check_output
from .preview import Preview, default_preview_path
from .pricing import check_budget, run_prices
from .report import Report
from .report import report_path as report_path_of
from .results import default_results_path_for, write_results
from .sender import Job, Plan, Sender, SendStats, plan
from .sheet import Sheet, load
from .state import register
from .template import MessageTemplate

if TYPE_CHECKING:
    import pandas

    from .client import Client
    from .parallel import Helpers

Target = Settings  # where messages go: base URL, account SID, token, property


@dataclass
class Options:
    """How to read a sheet and build each row's message: everything ``check`` and ``send`` share.

    ``template`` is a Jinja2 template file, ``text`` an inline template (not both);
    with neither, the sheet's Text column is sent as it is. ``defaults`` gives an API
    field to every row (a non-empty cell wins), e.g. ``{"From": "CityDental"}``.
    """

    template: str | Path | None = None
    text: str | None = None
    sheet: str | None = None  # workbook sheet name (default: the first visible one)
    header_row: int | None = None  # None: row 1, or the first row naming a recipient below a title/blank rows
    encoding: str | None = None
    delimiter: str | None = None
    columns: Sequence[tuple[str, str]] = ()  # (API field, header) mappings that win over header names
    include_hidden: bool = False  # send rows hidden in Excel too
    country: str = "AU"
    timezone: str | None = None  # naive times are read here; None: timezone in the config, else this machine's
    defaults: Mapping[str, str] = field(default_factory=dict)
    max_segments: int = 10
    dedupe: bool = False
    suppress: str | Path | None = None  # opt-out list (CSV/XLSX/TXT)
    now: float | None = None  # the clock schedules are judged against (tests and replays)
    price: str | None = None  # one price per segment for every number (--price); else [prices] in the config
    country_column: str | None = None  # header of each row's country (ISO code or name); None: a column headed Country
    allow_landlines: bool = False  # a valid number that is no mobile is a warning (sent), not an error
    countries: Sequence[str] = ()  # countries the numbers may be from (["AU", "NZ"]): a landline or invalid
    #                                number that is a mobile in one of them names that reading
    locale: str | None = None  # how dates print and read (en_AU); None: locale in the config, else --country's
    where: str | None = None  # a Jinja expression over the row: rows it is false for are skipped
    consent_column: str | None = None  # header of the consent column: rows without yes/y/true/1 are skipped
    skip_empty: bool = False  # a row whose template writes no text is skipped, not an error
    marketing: bool | None = None  # the law's marketing rules; None: marketing in the config (default off)
    late: str = "error"  # a Schedule more than an hour past: "error", "send-now" or "skip"
    quiet_hours: str | None = None  # "21:00-08:00" in each recipient's zones; None: quiet_hours in the config
    quiet_days: str | None = None  # "Sun": whole days without sends; None: quiet_days in the config
    quiet_policy: str = "move"  # a send time inside quiet hours: "move" to the next allowed time, "skip", "error"

    def inputs(self, sheet_path: Path) -> list[tuple[str, Path | None]]:
        """The files this run reads, named as the user knows them: no output may be one of them."""
        template = Path(self.template) if self.template is not None else None
        suppress = Path(self.suppress) if self.suppress is not None else None
        return [("the contact sheet", sheet_path), ("the --suppress file", suppress),
                ("the --template file", template), ("the opt-out file", default_optouts_path())]


def _check_options(options: Options, header: Sequence[str], preferences: Preferences) -> CheckOptions:
    if options.template is not None and options.text is not None:
        raise ConfigError("give a template file or an inline text, not both (--template or --text)")
    unknown = [name for name in options.defaults if name not in F.FIELDS]
    if unknown:
        raise ConfigError(f"defaults: {', '.join(unknown)} are not API fields; use {', '.join(F.FIELDS)}")
    locale = options.locale or preferences.locale  # None: English as written in each --country (Babel, lazily)
    if locale is not None:
        try:
            dates.locale_for(options.country, locale)
        except ValueError as exc:
            raise ConfigError(str(exc) if options.locale else f"{preferences.path}: [batchsms] {exc}") from None
    template = None
    if options.template is not None:
        template = MessageTemplate.from_file(options.template, header, locale=locale, country=options.country)
    elif options.text is not None:
        template = MessageTemplate(options.text, header, locale=locale, country=options.country)
    suppress = load_optouts(options.suppress, options.country) if options.suppress is not None else frozenset()
    kept = default_optouts_path(preferences)  # config `optouts`, else <state>/optouts.csv: where STOP replies land
    suppress = suppress | load_optouts(kept, options.country, what="the opt-out file", missing_ok=True)
    checked = CheckOptions(
        country=options.country, timezone=run_zone(options.timezone, preferences).key, template=template,
        defaults={k: v for k, v in options.defaults.items() if v}, max_segments=options.max_segments,
        dedupe=options.dedupe, suppress=suppress, now=options.now,
        country_column=options.country_column, allow_landlines=options.allow_landlines,
        countries=tuple(options.countries), where=options.where, consent_column=options.consent_column,
        skip_empty=options.skip_empty,
        marketing=options.marketing if options.marketing is not None else preferences.marketing,
        locale=locale, late=options.late,
        quiet_hours=options.quiet_hours or preferences.quiet_hours,
        quiet_days=options.quiet_days or preferences.quiet_days, quiet_policy=options.quiet_policy,
    )
    check_option_values(checked)
    return checked


def load_sheet(path: str | Path, options: Options) -> Sheet:
    """The sheet as text cells with Excel row numbers and its API-field mapping (see :mod:`batchsms.sheet`)."""
    return load(path, sheet=options.sheet, header_row=options.header_row, encoding=options.encoding,
                delimiter=options.delimiter, columns=options.columns, include_hidden=options.include_hidden)


def check_sheet(path: str | Path, options: Options | None = None, *, workers: int = 1,
                helpers: Helpers | None = None, preferences: Preferences | None = None) -> Report:
    """Load and validate every row of the sheet at ``path``; sends nothing.

    ``report.ok`` is False when any row has an error; ``report.sheet`` is the sheet read.
    ``workers > 1`` checks large sheets on several processes (only from a program whose
    ``__main__`` is guarded, since the helpers import it). ``preferences`` (the config
    file's time zone and prices) are read from the config file when not given.
    """
    options = options or Options()
    preferences = preferences if preferences is not None else load_preferences()
    sheet = load_sheet(path, options)
    options = resolve_webhooks(options, sheet, public=False)
    return check(sheet, _check_options(options, sheet.header, preferences), workers, helpers)


#: ``--webhook auto``: the URL of this machine's ``batchsms receive``.
AUTO = "auto"


def resolve_webhooks(options: Options, sheet: Sheet, *, public: bool) -> Options:
    """``--webhook auto`` / ``--delivery-receipt-webhook auto`` filled with the receiver's URL.

    ``--webhook auto`` fills both fields; the reply webhook (WebhookUri) only when the sheet
    sends from leased numbers (no From column or --from), since the API calls it for those
    only, and a WebhookUri beside a From is refused. ``public`` (a real API) refuses a URL
    that only this machine can reach. ConfigError, saying what to run, without a receiver.
    """
    defaults = dict(options.defaults)
    replies = defaults.get(F.WEBHOOK_URI, "").strip().lower() == AUTO
    receipts = replies or defaults.get(F.DR_WEBHOOK_URI, "").strip().lower() == AUTO
    if not receipts:
        return options
    from .receive import webhook_url

    url = webhook_url(public=public)
    defaults[F.DR_WEBHOOK_URI] = url
    if replies:
        leased = F.FROM not in sheet.columns and not defaults.get(F.FROM)
        if leased:
            defaults[F.WEBHOOK_URI] = url
        else:
            del defaults[F.WEBHOOK_URI]
    return replace(options, defaults=defaults)


def preview_of(report: Report, options: Options | None = None, preferences: Preferences | None = None) -> Preview:
    """What the report means for a person about to send: numbers as dialled, times in the run's zone,
    cost, samples; ``.write(path)`` writes the preview sheet (see :mod:`batchsms.preview`)."""
    options = options or Options()
    preferences = preferences if preferences is not None else load_preferences()
    return Preview.build(report, run_zone(options.timezone, preferences), run_prices(options.price, preferences))


def write_outputs(report: Report, options: Options | None = None, preferences: Preferences | None = None, *,
                  report_path: Path | None = None, preview_path: Path | None = None) -> tuple[Preview, Path | None]:
    """The report written to ``report_path`` and the preview made (and written to ``preview_path``) at once.

    The report is written by a forked copy of this process while this one makes the
    preview (:func:`background.alongside`; at 1M rows the two take ~0.5 and ~0.8 s). Returns
    the preview and the path it was written to (None when it was not). Neither path may be
    a file the check read (the sheet, the template, the opt-out list): a ConfigError says so,
    before anything is written.
    """
    inputs = (options or Options()).inputs(report.sheet.path)
    if report_path is not None:
        report_path = check_output(report_path_of(report_path), "the report", inputs)
    if preview_path is not None:
        preview_path = check_output(Path(preview_path), "the preview", inputs)
    written = None
    with background.alongside((lambda: report.write(report_path)) if report_path is not None else None,
                              rows=len(report.sheet.rows), leaves=[report_path] if report_path else []):
        preview = preview_of(report, options, preferences)
        if preview_path is not None:
            written = preview.write(preview_path)
    return preview, written


def check_frame(frame: pandas.DataFrame, options: Options | None = None) -> FrameCheck:
    """Validate a pandas DataFrame of contacts as if it were a sheet (header row 1, data from row 2).

    Every cell is read as the text ``str()`` gives it (NaN and None as empty), so keep
    phone numbers as text columns. Returns the rows with their verdicts and the problems,
    both as DataFrames, and the Report itself.
    """
    import pandas as pd

    options = options or Options()
    header = [str(c) for c in frame.columns]
    rows = [["" if _missing(v) else str(v) for v in record] for record in frame.itertuples(index=False, name=None)]
    sheet = Sheet(Path("<DataFrame>"), header, rows, list(range(2, len(rows) + 2)), "frame", raw_header=header)
    from .sheet import map_columns

    sheet.columns = map_columns(sheet, options.columns)
    report = check(sheet, _check_options(options, header, load_preferences()))
    verdicts = pd.DataFrame(
        [{"Status": str(r.status), "To": r.to or "", "Text": (r.body or {}).get(F.TEXT, ""),
          "Segments": r.segments.parts if r.segments else 0,
          "Problems": "; ".join(f"{i.code}: {i.message}" for i in r.issues)} for r in report.results],
        index=frame.index,
    )
    issues = pd.DataFrame([i.record() for i in report.issues()],
                          columns=["row", "column", "value", "severity", "code", "message"])
    issues.columns = ["Row", "Column", "Value", "Severity", "Code", "Message"]
    taken = {str(c) for c in frame.columns}  # a sheet's own Status or Text column stays as it is
    verdicts.columns = [c if c not in taken else f"batchsms {c}" for c in verdicts.columns]
    return FrameCheck(pd.concat([frame, verdicts], axis=1), issues, report)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


@dataclass
class FrameCheck:
    """What :func:`check_frame` found: ``rows`` (the frame plus Status, To, Text, Segments, Problems),
    ``issues`` (one row per problem) and the :class:`Report`."""

    rows: pandas.DataFrame
    issues: pandas.DataFrame
    report: Report


# --------------------------------------------------------------------------- sending


@dataclass
class SendOptions:
    """How to send: pace, retries, where the results go, and what a re-run may do."""

    concurrency: int = 8
    rate: float | None = None  # messages a second at most
    limit: int | None = None  # send at most this many this run
    results: str | Path | None = None  # default <sheet>.results.csv/.xlsx; the journal sits beside it
    report: str | Path | None = None  # also write the check report here
    preview: str | Path | bool = True  # the preview sheet before sending: True <sheet>.preview.*, False none
    max_cost: Decimal | None = None  # refuse to send when the estimated cost is above this
    retry_unknown: bool = False
    retry_failed: bool = False
    restart: bool = False
    yes_resend: bool = False  # allow sending what another journal records as sent
    allow_insecure: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 5
    progress: bool = True  # a progress bar on stderr
    handle_signals: bool = True  # Ctrl-C drains (main thread only)
    hold: bool = False  # keep every scheduled message locally until shortly before it is due (cancellable)
    submit_ahead: float = 900.0  # with hold: hand a message to the API this many seconds before its time
    batch_size: int | None = None  # N: through BatchMessages, N messages a request (100 is usual); None/0: one each
    on_notice: Callable[[str], None] | None = None  # told what changed during the run (a batch size halved)


@dataclass
class SendPlan:
    """What a send is about to do, for the person (or script) that approves it."""

    report: Report
    plan: Plan
    target: str  # what the journal is tied to: API and property
    host: str
    property_sid: str
    results: Path
    recovered: int  # rows in flight when the last run died, now unknown
    backup: Path | None  # the old journal, set aside by restart
    resent: list[Job]  # messages another journal already sent, sent again with yes_resend
    preview: Preview  # numbers as dialled, send times, cost and samples
    preview_path: Path | None  # where the preview sheet was written
    batch_size: int | None = None  # messages a BatchMessages request; None: single sends

    @property
    def segments(self) -> int:
        return sum(job.segments for job in self.plan.jobs)

    def plan_cost(self) -> Decimal | None:
        """The estimated cost of the messages this run sends (None without a price for each)."""
        return _plan_cost(self.plan.jobs, self.preview)


@dataclass
class SendOutcome:
    """What a send did; ``ok`` is True when every valid row is sent or scheduled and no row is invalid."""

    sendplan: SendPlan
    stats: SendStats
    results: Path
    approved: bool
    ok: bool

    @property
    def report(self) -> Report:
        return self.sendplan.report


def send_sheet(path: str | Path, options: Options, target: Target, send: SendOptions | None = None, *,
               approve: Callable[[SendPlan], bool] | None = None, on_interrupt: Callable[[], None] | None = None,
               on_second_interrupt: Callable[[], None] | None = None,
               workers: int = 1, helpers: Helpers | None = None,
               preferences: Preferences | None = None) -> SendOutcome:
    """Check the sheet, then send its valid rows exactly once and write the results file.

    ``approve`` sees the plan (even one with nothing to send) before any request goes
    out and returns False to send nothing (the CLI prints the plan and asks); without
    it the plan is sent. Raises
    :class:`~batchsms.errors.AuthError` after writing the results when the API refuses the
    credentials, and :class:`~batchsms.errors.JournalError` when the journal disagrees.
    ``workers`` and ``helpers`` are :func:`check_sheet`'s, for the check before the send.
    """
    send = send or SendOptions()
    preferences = preferences if preferences is not None else load_preferences()
    sheet_path = Path(path)
    inputs = options.inputs(sheet_path)
    report_path = check_output(report_path_of(send.report), "--report", inputs) if send.report is not None else None
    preview_path = None
    if send.preview is not False:
        preview_path = default_preview_path(sheet_path) if send.preview is True else Path(send.preview)
        preview_path = check_output(preview_path, "--preview", inputs)
    results = check_output(Path(send.results) if send.results is not None else default_results_path_for(sheet_path),
                           "--results", inputs)
    journal_file = check_output(journal_path(results), "the journal", inputs)
    from .client import Client  # the HTTP stack loads when a run sends: a check never needs it

    client = Client(target.base_url, target.account_sid, target.auth_token, target.property_sid,
                    connect_timeout=send.connect_timeout, read_timeout=send.read_timeout,
                    max_attempts=send.max_attempts, allow_insecure=send.allow_insecure)
    try:
        if AUTO in (options.defaults.get(F.WEBHOOK_URI, "").strip().lower(),
                    options.defaults.get(F.DR_WEBHOOK_URI, "").strip().lower()):
            options = resolve_webhooks(options, load_sheet(sheet_path, options),
                                       public=not is_loopback_host(urlsplit(target.base_url).hostname or ""))
        report = check_sheet(sheet_path, options, workers=workers, helpers=helpers, preferences=preferences)
        if helpers is not None:  # checked: idle helpers would hold memory through the send, and their threads
            helpers.close()      # would keep the report below from a forked copy (a process with threads never forks)
        preview, _ = write_outputs(report, options, preferences, report_path=report_path, preview_path=preview_path)
        earlier = earlier_sends([p for p in journals_near(sheet_path.parent, results.parent)
                                 if send.restart or p != journal_file.resolve()], target.target)
        if send.restart:  # refuse before the old journal is set aside
            refuse_resend(plan(report, {}).jobs, earlier, send.yes_resend, "--restart")
        if send.batch_size is None:  # batch_size in the config file, for the Python API as for the CLI (0: single)
            send = replace(send, batch_size=preferences.batch_size)
        with Journal(journal_file, restart=send.restart) as journal:
            journal.set_meta(late=options.late)  # how `batchsms due` treats a held message it finds late
            return _send_with_journal(report, journal, client, target, results, send, earlier, approve,
                                      on_interrupt, on_second_interrupt, preview, preview_path)
    finally:
        client.close()


def describe_rows(rows: Sequence[int], limit: int = 10) -> str:
    """``2, 3, 4 and 7 more``: a row list a person can read."""
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def refuse_resend(jobs: list[Job], earlier: dict, yes_resend: bool, how: str) -> list[Job]:
    """The jobs an earlier run (another journal) already sent; refuses them without ``yes_resend``."""
    again = [job for job in jobs if job.digest in earlier]
    if again and not yes_resend:
        names = sorted({earlier[job.digest][0].name for job in again})
        raise JournalError(
            f"{how} would send {len(again):,} message{'s' if len(again) != 1 else ''} again that an earlier "
            f"run already sent or may have sent (rows {describe_rows([j.row for j in again])}; recorded in "
            f"{', '.join(names)}): those people would get them twice. Nothing was sent. To carry on where "
            "that run stopped, run it with its own --results path; to send them again anyway, add --yes-resend"
        )
    return again


def _send_with_journal(report: Report, journal: Journal, client: Client, target: Target, results: Path,
                       send: SendOptions, earlier: dict, approve, on_interrupt, on_second_interrupt,
                       preview: Preview, preview_path: Path | None) -> SendOutcome:
    sheet = report.sheet
    recorded = journal.get_meta("target")
    if recorded is None:
        journal.set_meta(target=target.target, sheet=str(sheet.path))
    elif recorded != target.target:
        raise JournalError(
            f"{journal.path}: this journal records a send to {recorded}, and this run targets {target.target}; "
            "use --restart to start over or --results NEW.csv for a separate run"
        )
    recovered = journal.recover()
    journal.renumber(follow_moves(report, journal.entries()))  # rows inserted or deleted above sent ones
    the_plan = plan(report, journal.entries(), retry_unknown=send.retry_unknown, retry_failed=send.retry_failed,
                    limit=send.limit, hold=send.hold, submit_ahead=send.submit_ahead)
    if the_plan.mismatched:
        raise JournalError(
            f"{journal.path}: rows {describe_rows(the_plan.mismatched)} now hold other messages than the ones "
            "this journal sent or may have sent under those row numbers (the sheet or template changed "
            "since); put the sheet back, or start a new campaign with --restart (rows already sent are "
            "not sent again without --yes-resend)"
        )
    resent = refuse_resend(the_plan.jobs + the_plan.to_hold, earlier, send.yes_resend, "this run")
    if send.max_cost is not None and the_plan.jobs:  # before any request, and before asking
        prices = preview.prices
        check_budget(_plan_cost(the_plan.jobs, preview), send.max_cost,
                     prices.currency if prices is not None else "AUD",
                     unpriced=_unpriced(the_plan.jobs, preview))
    host = urlsplit(client.base_url).netloc
    sendplan = SendPlan(report, the_plan, target.target, host, target.property_sid, results, recovered,
                        journal.backup, resent, preview, preview_path, send.batch_size or None)
    if approve is not None and not approve(sendplan):
        write_results(results, sheet, report, journal.entries(), preview.zone)
        return SendOutcome(sendplan, SendStats(), results, approved=False, ok=False)
    _hold(journal, the_plan, report)
    sender = Sender(client, journal, concurrency=send.concurrency, rate=send.rate, quiet=not send.progress,
                    drain_timeout=send.read_timeout + send.connect_timeout + 1,
                    handle_signals=send.handle_signals, batch_size=send.batch_size or None)
    sender.on_interrupt = on_interrupt
    sender.on_second_interrupt = on_second_interrupt
    sender.on_notice = send.on_notice
    try:
        stats = sender.run(the_plan.jobs)
    finally:
        write_results(results, sheet, report, journal.entries(), preview.zone)
    stats.counts[Status.HELD] += len(the_plan.to_hold)
    if stats.auth_error:
        raise AuthError(stats.auth_error + f"; nothing more was sent (results: {results})")
    return SendOutcome(sendplan, stats, results, approved=True, ok=_all_done(report, journal))


def _hold(journal: Journal, the_plan: Plan, report: Report) -> None:
    """Keep this run's held messages, withdraw held ones whose rows are no longer ready, and make the
    journal known to ``batchsms due`` (and to ``batchsms receive``, which finds receipts' journals there)."""
    if the_plan.to_hold:
        journal.hold([(j.row, j.digest, j.body, j.due, j.segments) for j in the_plan.to_hold])
    if the_plan.withdrawn:
        journal.cancel(the_plan.withdrawn, "withdrawn before it went: the row is no longer ready to send "
                                           "(invalid, skipped or deleted)")
    try:
        register(journal.path)
    except (OSError, BatchSmsError) as exc:
        if the_plan.to_hold or journal.entries_in(Status.HELD):
            raise JournalError(f"{journal.path}: held messages need the state folder, and it cannot be written "
                               f"({exc}); set BATCHSMS_STATE to a folder you can write") from None


def _plan_cost(jobs: list[Job], preview: Preview) -> Decimal | None:
    """What the messages this run sends would cost; None when some country has no price."""
    if preview.prices is None:
        return None
    total = Decimal(0)
    for job in jobs:
        price = preview.prices.cost(preview.region_of(job.row), job.segments)
        if price is None:
            return None
        total += price
    return total


def _unpriced(jobs: list[Job], preview: Preview) -> list[str]:
    if preview.prices is None:
        return []
    regions = {preview.region_of(job.row) for job in jobs}
    return sorted(region or "?" for region in regions if preview.prices.price(region) is None)


def _all_done(report: Report, journal: Journal) -> bool:
    """True when no row is invalid (and unsent), failed or maybe sent."""
    entries = journal.entries()
    if any(e.state == Status.FAILED or e.state in MAYBE_SENT for e in entries.values()):
        return False
    return not any(r.status == Status.INVALID and (r.row not in entries or entries[r.row].state == Status.FAILED)
                   for r in report.results)


def target_from_config(*, base_url: str | None = None, property_sid: str | None = None) -> Target:
    """Credentials and target from the environment and the config file (see :mod:`batchsms.config`)."""
    return load_settings(base_url=base_url, property_sid=property_sid)


__all__ = [
    "BatchSmsError", "FrameCheck", "Options", "Report", "SendOptions", "SendOutcome", "SendPlan", "Target",
    "check_frame", "check_sheet", "preview_of", "send_sheet", "target_from_config", "write_outputs",
]
