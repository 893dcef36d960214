"""Which checked rows go out: ``--where``, ``--consent-column`` and ``--skip-empty``.

A person often sends to part of a sheet: one clinic, the customers who agreed to
marketing, the rows whose template had something to say. Rows left out this way are
``skipped`` with the reason, never errors, so that a sheet with a thousand other
customers is not "invalid" because of them. The choice is made after every row was
checked, in sheet order, and before the rules across rows (duplicates, leases), which
only count the rows that go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jinja2.meta

from . import codes as C
from . import fields as F
from .codes import Status
from .errors import ConfigError, TemplateError
from .report import Issue, RowResult
from .sheet import Sheet
from .template import MessageTemplate, MissingVariable, RenderError, closest_name

#: What a consent cell says when the person agreed (case and surrounding spaces ignored).
CONSENT_WORDS = frozenset({"yes", "y", "true", "1", "t", "x", "✓", "✔", "agreed", "opted in", "opt in", "opt-in"})


@dataclass
class Selection:
    """The run's choices; :meth:`apply` marks the rows they leave out as skipped."""

    where: MessageTemplate | None = None  # --where EXPRESSION, compiled as {% if EXPRESSION %}
    where_source: str = ""
    consent_index: int | None = None  # the --consent-column's index in the header
    consent_label: str = ""
    skip_empty: bool = False

    @classmethod
    def of(cls, sheet: Sheet, *, where: str | None, consent_column: str | None, skip_empty: bool,
           locale: str | None = None, country: str = "AU") -> Selection:
        """The selection for ``sheet``; ConfigError (one line, exit 2) for an expression or column that
        cannot work, before any row is looked at."""
        selection = cls(skip_empty=skip_empty)
        if where is not None and where.strip():
            selection.where_source = where.strip()
            selection.where = compile_where(selection.where_source, sheet.header, locale, country)
        if consent_column is not None:
            index = consent_index(sheet.header, consent_column)
            selection.consent_index, selection.consent_label = index, sheet.header[index]
        return selection

    @property
    def active(self) -> bool:
        return self.where is not None or self.consent_index is not None or self.skip_empty

    def apply(self, results: list[RowResult], sheet: Sheet) -> None:
        """Mark the rows this selection leaves out as ``skipped`` (rows already skipped stay as they are).

        An error found by the check does not keep a row in: a row not chosen is not sent,
        so its problems are not the person's concern this run.
        """
        if not self.active:
            return
        skipped = Status.SKIPPED
        for r in results:
            if r.status == skipped:
                continue
            cells = sheet.rows[r.index]
            reason = self._left_out(cells, r)
            if reason is not None:
                r.status, r.body = skipped, None
                r.issues = [reason]

    def _left_out(self, cells: Sequence[str], r: RowResult) -> Issue | None:
        if self.where is not None:
            try:
                chosen = self.where.render(cells) == "1"
            except (MissingVariable, RenderError) as exc:
                r.issues.append(Issue.of(r.row, "--where", self.where_source, C.TEMPLATE_ERROR,
                                         f"--where cannot be worked out for this row: {exc}"))
                r.status, r.body = Status.INVALID, None
                return None
            if not chosen:
                return Issue.of(r.row, "--where", self.where_source, C.NOT_SELECTED,
                                f"skipped: --where {self.where_source} is false for this row")
        if self.consent_index is not None:
            value = cells[self.consent_index]
            if value.strip().casefold() not in CONSENT_WORDS:
                shown = f"is {value.strip()!r}" if value.strip() else "is empty"
                return Issue.of(r.row, self.consent_label, value, C.NO_CONSENT,
                                f"skipped: {self.consent_label} {shown}, not yes; only rows with yes, y, true "
                                "or 1 are sent (--consent-column)")
        if self.skip_empty and r.status == Status.INVALID and _only_empty_text(r):
            return Issue.of(r.row, r.issues[0].column, "", C.EMPTY_MESSAGE,
                            "skipped: the template writes no text for this row (--skip-empty)")
        return None


def _only_empty_text(r: RowResult) -> bool:
    """The row's one error is its empty text (warnings, like an empty variable, come with it)."""
    errors = [i for i in r.issues if i.severity == C.ERROR]
    return len(errors) == 1 and errors[0].code == C.EMPTY_TEXT.code


def compile_where(source: str, header: Sequence[str], locale: str | None = None,
                  country: str = "AU") -> MessageTemplate:
    """``--where`` as a template that prints ``1`` for a chosen row, in the same sandbox as the text.

    Its names are the template's (columns, ``row['…']``), checked now: an unknown column is
    one error with the closest name, not an error on every row.
    """
    try:
        compiled = MessageTemplate("{% if " + source + " %}1{% endif %}", header, name="--where", locale=locale,
                                    country=country)
    except TemplateError as exc:
        raise ConfigError(f"--where {source}: not an expression batchsms can read "
                          f"({str(exc).removeprefix('--where:1: ')}); "
                          "write it like: Clinic == 'Parramatta' and Balance != ''") from None
    names = jinja2.meta.find_undeclared_variables(compiled._env.parse("{{ " + source + " }}"))
    known = set(compiled.columns_of_variables()) | {"row"}
    for name in sorted(names - known):
        if name in compiled._env.globals:
            continue
        near = closest_name(name, sorted(known - {"row"}))
        hint = f"; did you mean {near}?" if near else ""
        raise ConfigError(f"--where {source}: the sheet has no column {name}{hint} "
                          "(a header with spaces is written with _, or as row['First Name'])")
    return compiled


def consent_index(header: Sequence[str], name: str) -> int:
    """The column headed ``name`` (spaces, case and invisible characters ignored); ConfigError if none."""
    wanted = F.header_key(name)
    for index, h in enumerate(header):
        if F.header_key(h) == wanted:
            return index
    near = closest_name(name, [h for h in header if h])
    hint = f"; did you mean {near!r}?" if near else ""
    raise ConfigError(f"--consent-column {name!r}: the sheet has no such column{hint} "
                      f"(columns: {', '.join(repr(h) for h in header if h)})")
