"""The preview of a check by columns: its figures and its CSV file, per distinct value instead of per row.

:class:`batchsms.preview.Preview` builds its figures in one pass over the RowResults and
writes the preview row by row; for a :class:`batchsms.columnar.ColumnarReport` the same
figures and the same file come from the columns (``tests/test_columnar_equivalence.py``
compares them byte for byte). The costly part of a million-row preview is the Will text
column (``AU mobile · +61 412 345 678``): :func:`batchsms.numbers.describe` costs ~4 µs a new
number and a sheet holds a million of them. Numbers that share their length and their first
few digits (as many as decide their region, their type and which format groups their digits,
see :meth:`phonecols.Settler.decisive`) are written the same way with other digits, so one
:func:`describe` per such group gives a pattern the digits of every number in it fill in.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from . import background, tables
from . import fields as F
from .columnar import ACROSS_DEDUPLICATED, ACROSS_OPTED_OUT, FACTORIZE_ROWS, VALID, ColumnarReport
from .numbers import describe
from .phonecols import ALL_DIGITS, Settler, expand
from .segments import ucs2_forcers
from .tables import CsvColumn, cell_text, csv_field, csv_lines

if TYPE_CHECKING:
    from .preview import Preview

_NOT_DIGIT = re.compile(r"\D")


def build(preview: Preview) -> None:
    """Fill ``preview``'s figures from its ColumnarReport (as Preview.build does from RowResults)."""
    from .preview import DOMINANT_SHARE, Sample

    report: ColumnarReport = preview.report  # type: ignore[assignment]
    preview.by_columns = True
    prices = preview.prices
    per_code: Counter = Counter()
    for signature, rows, _ in report.signatures():  # in order of first appearance, as the row-by-row Counter fills
        for pair in {pair for pair in signature}:
            per_code[pair] += rows
    valid = np.flatnonzero(report.status == VALID)
    # each number's (region, kind) only: the labels themselves are made as the file is written, a block at a
    # time by each process writing part of it (1M rows: 0.1 s sooner than making them here and keeping them,
    # and ~60 bytes a row less; 10M rows' labels would not fit the memory)
    labeller = _Labeller(report)
    groups = np.zeros(len(valid), dtype=np.int64)
    for lo in range(0, len(valid), BLOCK):
        groups[lo:lo + BLOCK] = labeller.run(valid[lo:lo + BLOCK], labels_too=False)[1]
    preview.label_kinds = labeller.kinds
    preview.label_groups = groups
    # recipients, in the order they first appear among the rows, as the row-by-row Counter has them
    if len(valid):
        kinds, firsts, counts = np.unique(groups, return_index=True, return_counts=True)
        for k in np.argsort(firsts, kind="stable").tolist():
            preview.recipients[labeller.kinds[int(kinds[k])]] += int(counts[k])
    parts = _per_row(report, valid, lambda counted, text: counted.parts)
    cost = Decimal(0) if prices is not None else None
    if prices is not None and len(valid):
        combo = groups * 1000 + np.minimum(parts, 999)
        distinct, tally = np.unique(combo, return_counts=True)
        for value, rows in zip(distinct.tolist(), tally.tolist(), strict=True):
            g, _ = divmod(value, 1000)
            segment_count = int(parts[np.flatnonzero(combo == value)[0]])
            price = prices.cost(labeller.kinds[g][0], segment_count)
            if price is None:
                preview.unpriced += rows
            else:
                cost += price * rows  # exact: Decimal sums of prices stay far below 28 digits
    preview.cost = cost
    preview.sends_now = len(valid)
    for i, r in sorted(report.special.items()):
        if report.status[i] == VALID and F.SCHEDULE in r.body:
            when = r.body[F.SCHEDULE]
            preview.sends_now -= 1
            preview.first_send = when if preview.first_send is None else min(preview.first_send, when)
            preview.last_send = when if preview.last_send is None else max(preview.last_send, when)
    # the samples: first ready row, longest, first with a warning
    with_issues = report.flagged()
    candidates: list[tuple[str, int | None]] = [("first ready row", None), ("longest", None), ("with a warning", None)]
    if len(valid):
        clean = np.flatnonzero(~with_issues[valid])
        flagged = np.flatnonzero(with_issues[valid])
        lengths = _per_row(report, valid, lambda counted, text: len(text or ""))
        keys = parts * 10**9 + lengths
        candidates = [("first ready row", int(clean[0]) if len(clean) else None),
                      ("longest", int(np.argmax(keys))),
                      ("with a warning", int(flagged[0]) if len(flagged) else None)]
    for why, at in candidates:
        if at is None:
            continue
        index = int(valid[at])
        row = report.sheet.row_numbers[index]
        if any(s.row == row for s in preview.samples):
            continue
        label = describe(report.to_of(index)).label
        preview.samples.append(Sample(why, row, label, report.text(index) or "",
                                      report.segments_of(index).parts))
    if per_code:
        (severity, code), rows = per_code.most_common(1)[0]
        if rows > DOMINANT_SHARE * report.count:
            preview.dominant = (str(severity), code, rows)


def _per_row(report: ColumnarReport, rows: np.ndarray, value) -> np.ndarray:
    """``value(segments, text)`` of each of ``rows``, worked out once per distinct message."""
    messages = report.messages
    table = np.array([value(c, t) if c is not None else 0 for c, t in zip(messages.segments, messages.texts,
                                                                          strict=True)] + [0], dtype=np.int64)
    ids = report.message[rows]
    out = table[np.where(ids >= 0, ids, len(table) - 1)]
    for k in np.flatnonzero(ids < 0).tolist():
        index = int(rows[k])
        out[k] = value(report.segments_of(index), report.text(index))
    return out


# --------------------------------------------------------------------------- Will text


class _Labeller:
    def __init__(self, report: ColumnarReport) -> None:
        self.report = report
        self.delimiter = report.sheet.delimiter or ","  # of the CSV preview: what a plain label must not hold
        self.kinds: list[tuple[str, str]] = []
        self.kind_ids: dict[tuple[str, str], int] = {}
        self.settler = Settler(report.checker.book)

    def kind_id(self, region: str, kind: str) -> int:
        key = (region, kind)
        found = self.kind_ids.get(key)
        if found is None:
            found = self.kind_ids[key] = len(self.kinds)
            self.kinds.append(key)
        return found

    def run(self, rows: np.ndarray, labels_too: bool = True) -> tuple[Labels, np.ndarray]:
        """The label of each of ``rows`` (valid rows), and the index of its (region, kind) in :attr:`kinds`;
        without ``labels_too``, the kinds alone (the labels of numbers settled by columns are not made)."""
        report = self.report
        labels = np.empty(len(rows), dtype=object)
        groups = np.zeros(len(rows), dtype=np.int64)
        self.plain = np.zeros(len(rows), dtype=bool)  # labels known to be CSV fields as they are
        settled = report.settled[rows] if self.settler.ok else np.zeros(len(rows), dtype=bool)
        for k in np.flatnonzero(~settled).tolist():
            dialled = describe(report.to_of(int(rows[k])))
            labels[k] = dialled.label.encode("utf-8")
            groups[k] = self.kind_id(dialled.region, dialled.kind)
        picked = np.flatnonzero(settled)
        if len(picked):
            self._settled(rows, picked, labels, groups, labels_too)
        return Labels(labels.tolist()), groups

    def _settled(self, rows: np.ndarray, picked: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                 labels_too: bool = True) -> None:
        """Home-country mobiles settled by columns: one describe per group of numbers written alike."""
        report, code = self.report, self.settler.code
        keys = report.keys[rows[picked]]
        sizes = np.searchsorted(_POWERS, keys, side="right")  # digits of each key
        for total in np.unique(sizes).tolist():
            part = picked[sizes == total]
            digits = _digits(report.keys[rows[part]], total)
            length = total - len(code)
            shape = digits[:, len(code)].astype(np.int64)
            for first in np.unique(shape).tolist():
                inside = shape == first
                members, block = part[inside], digits[inside]
                p = max(self.settler.decisive(length, first), _format_width(int(code), length))
                heads, representative, at = np.unique(_head_ints(block[:, len(code):], p), return_index=True,
                                                      return_inverse=True)
                at = at.reshape(-1)
                # the label pattern of each head; heads written alike share one
                patterns: dict[tuple, int] = {}
                pattern_of_head = np.zeros(len(heads), dtype=np.int64)
                found: list[tuple] = []
                for h in range(len(heads)):
                    index = int(members[representative[h]])
                    dialled = describe(report.to_of(int(rows[index])))
                    made = _pattern(dialled.label, dialled.label.find(" · "), report.to_of(int(rows[index])))
                    key = (_blanked(made), self.kind_id(dialled.region, dialled.kind)) if made is not None \
                        else ("row", h)
                    pattern_of_head[h] = patterns.setdefault(key, len(patterns))
                    if pattern_of_head[h] == len(found):
                        found.append(key)
                which = pattern_of_head[at]
                order = np.argsort(which, kind="stable")
                bounds = np.searchsorted(which[order], np.arange(len(found) + 1))
                for j, (made, group) in enumerate(found):
                    chosen = order[bounds[j]:bounds[j + 1]]
                    targets = members[chosen]
                    if made == "row":  # pragma: no cover - a label without the number's digits in order
                        for k in targets.tolist():
                            dialled = describe(report.to_of(int(rows[k])))
                            labels[k] = dialled.label.encode("utf-8")
                            groups[k] = self.kind_id(dialled.region, dialled.kind)
                        continue
                    if not labels_too:
                        groups[targets] = group
                        continue
                    raw, slots = made
                    filled = _fill_pattern(raw, slots, block[chosen])
                    check = describe(report.to_of(int(rows[targets[-1]])))
                    if filled[-1] != check.label.encode("utf-8"):  # pragma: no cover - a format not modelled
                        filled = [describe(report.to_of(int(rows[k]))).label.encode("utf-8")
                                  for k in targets.tolist()]
                    labels[targets] = filled
                    groups[targets] = group
                    # digits are neither separators nor formula signs to csv_safe (its \\d reads any
                    # digit alike): numbers written alike are all plain fields or none is
                    self.plain[targets] = _plain_field(filled[0].decode("utf-8"), self.delimiter)


def _blanked(made: tuple[bytes, tuple[int, ...]]) -> tuple[bytes, tuple[int, ...]]:
    """A label pattern with its digits as 0: the key of every label written alike."""
    raw, slots = made
    blank = bytearray(raw)
    for at in slots:
        blank[at] = 48
    return bytes(blank), slots


_POWERS = np.array([10**k for k in range(19)], dtype=np.int64)


def _digits(keys: np.ndarray, total: int) -> np.ndarray:
    out = np.zeros((len(keys), total), dtype=np.uint8)
    value = keys.copy()
    for i in range(total - 1, -1, -1):
        value, out[:, i] = np.divmod(value, 10)
    return out


def _head_ints(digits: np.ndarray, p: int) -> np.ndarray:
    value = np.zeros(len(digits), dtype=np.int64)
    for i in range(min(p, digits.shape[1])):
        value = value * 10 + digits[:, i]
    return value


def _format_width(code: int, size: int) -> int:
    """How many leading digits of a national number choose its format (``size`` when that is not bounded)."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code, ())
    meta = PhoneMetadata.metadata_for_region(regions[0], None) if regions else None
    if meta is None:
        return size
    width = 0
    for number_format in (meta.intl_number_format or meta.number_format):
        sequences = expand(number_format.pattern) if number_format.pattern else None
        if sequences is None or any(any(mask != ALL_DIGITS for mask in s) for s in sequences):
            return size  # a pattern that reads the digits, not only their count
        for leading in number_format.leading_digits_pattern or ():
            found = expand(leading)
            if found is None:
                return size
            width = max([width] + [len(s) for s in found])
    return min(width, size)


def _pattern(label: str, cut: int, e164: str) -> tuple[bytes, tuple[int, ...]] | None:
    """The label as bytes with its number's digits as slots (their byte positions), or None if the label
    does not hold the number's digits in order after its " · "."""
    if cut < 0:
        return None
    number = label[cut + 3:]
    if _NOT_DIGIT.sub("", number) != e164[1:]:
        return None
    raw = label.encode()
    start = len(label[:cut + 3].encode())
    slots = tuple(start + i for i, c in enumerate(number.encode()) if 48 <= c <= 57)
    return raw, slots


def _fill_pattern(raw: bytes, slots: tuple[int, ...], digits: np.ndarray) -> list[bytes]:
    """The label ``raw`` (UTF-8) with its digit ``slots`` filled by each row of ``digits``."""
    width = len(raw) + 1
    block = np.empty((len(digits), width), dtype=np.uint8)
    block[:, :-1] = np.frombuffer(raw, dtype=np.uint8)
    block[:, -1] = 10
    block[:, list(slots)] = digits[:, :len(slots)] + 48
    texts = block.tobytes().split(b"\n")
    texts.pop()
    return texts


class Labels:
    """The Will text of each valid row, kept as UTF-8 (the preview file's bytes); text on demand."""

    def __init__(self, encoded: list[bytes]) -> None:
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, index: int) -> str:
        return self.encoded[index].decode("utf-8")

    def strings(self) -> list[str]:
        return [b.decode("utf-8") for b in self.encoded]


# --------------------------------------------------------------------------- the CSV file


def write_csv(preview: Preview, path: Path, header: list[str], width: int, columns: list[str]) -> None:
    """The preview as CSV, by columns: the bytes Preview.write gives row by row.

    The columns the check made (Message, Characters, Segments, Encoding, Sends at, Cost, Status)
    hold a few distinct values each: each is made a CSV field once (:class:`tables.CsvColumn`).
    """
    from .preview import SKIP_REASONS, _preamble

    report: ColumnarReport = preview.report  # type: ignore[assignment]
    sheet = report.sheet
    if getattr(sheet.rows, "source", None) is not None or getattr(sheet.rows, "streamed", None) is not None:
        _write_from_file(preview, path, header, width, columns)
        return

    count = report.count
    delimiter = sheet.delimiter or ","
    status = report.status
    messages = report.messages
    is_valid = status == VALID
    valid_rows = np.flatnonzero(is_valid)
    texts = [t or "" for t in messages.texts]
    encodings = [_encoding(t, c) for t, c in zip(texts, messages.segments, strict=True)]
    ids = report.message
    # per row, as Preview._extra has it: a valid row shows its count of characters even for an empty text
    values: dict[str, np.ndarray] = {}
    values["Message"] = _take(texts, ids)
    values["Characters"] = np.where(is_valid, _take([str(len(t)) for t in texts], ids),
                                    _take([str(len(t)) if t else "" for t in texts], ids))
    values["Segments"] = _take([str(c.parts) if c is not None else "" for c in messages.segments], ids)
    values["Encoding"] = _take(encodings, ids)
    values["Sends at"] = np.where(is_valid, "now", "").astype(object)
    values["Cost"] = np.full(count, "", dtype=object)
    state = np.where(is_valid, "ready", np.where(status == 1, "error", "skipped")).astype(object)
    problem = np.full(count, "", dtype=object)
    for index, issues in report.issue_rows():
        problem[index] = "; ".join(f"{i.column + ': ' if i.column else ''}{i.message}" for i in issues)
        if status[index] == VALID:
            state[index] = "warning"
        elif status[index] == 2:
            reason = next((SKIP_REASONS[i.code] for i in issues if i.code in SKIP_REASONS), "")
            state[index] = f"skipped ({reason})" if reason else "skipped"
    values["Status"] = state
    will = np.full(count, "", dtype=object)
    labeller = _Labeller(report)
    labels = labeller.run(valid_rows)[0]
    will[valid_rows] = labels.strings()
    if "Cost" in columns:
        prices = preview.prices
        parts = _per_row(report, valid_rows, lambda counted, text: counted.parts)
        priced: dict[tuple[str, int], str] = {}
        for k, index in enumerate(valid_rows.tolist()):
            key = (preview.label_kinds[int(preview.label_groups[k])][0], int(parts[k]))
            text = priced.get(key)
            if text is None:
                price = prices.cost(*key)
                text = priced[key] = cell_text(float(price)) if price is not None else "no price"
            values["Cost"][index] = text
    for index in report.special:  # rows checked row by row: their own text and send time, as _extra gives them
        extra = [cell_text(v) for v in preview._extra(report.result(index, external=False))]
        will[index] = extra[0]
        for name, value in zip(("Message", "Characters", "Segments", "Encoding", "Sends at", "Cost", "Status"),
                               extra[1:], strict=True):
            values[name][index] = value
    made: list = _user_columns(sheet, width)
    made.append(_will_column(will, labeller.plain, valid_rows, delimiter))
    for name in columns[1:-1]:
        codes, uniques = _factorize(values[name])
        made.append(CsvColumn.of_distinct(uniques, codes, delimiter))
    made.append(_sparse_column(problem, [i for i, _ in report.issue_rows()], delimiter))
    lines = csv_lines(made, delimiter)
    numbers = np.asarray(sheet.row_numbers, dtype=np.int64)
    gaps = np.diff(numbers, prepend=sheet.header_row) - 1
    for index in np.flatnonzero(gaps).tolist():
        lines[index] = "\r\n" * int(gaps[index]) + lines[index]
    tables.write_csv_lines(path, header, lines, delimiter, preamble=_preamble(sheet))


def _factorize(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each value's code, numbered in order of first appearance, and the distinct values: by pandas' hash
    tables when pandas is imported already (a sheet of 4 MB and more) or the column is long, else by a dict,
    as importing pandas for it cost a 2,000-row check ~0.15 s (found by a hostile pass)."""
    if "pandas" in sys.modules or len(values) >= FACTORIZE_ROWS:
        import pandas as pd

        codes, uniques = pd.factorize(values, sort=False)
        return codes, list(uniques)
    code: dict[str, int] = {}
    ids = np.fromiter((code.setdefault(v, len(code)) for v in values.tolist()), dtype=np.int64, count=len(values))
    return ids, list(code)


def _encoding(text: str, counted) -> str:
    """The Encoding cell of a text (Preview._extra's), once per distinct text."""
    if counted is None:
        return ""
    if counted.encoding != "UCS-2":
        return counted.encoding
    forcers = ucs2_forcers(text)
    return f"UCS-2 (because of {' '.join(forcers[:8])}{' …' if len(forcers) > 8 else ''})"


def _user_columns(sheet, width: int) -> list:
    rows = sheet.rows
    count = len(rows)
    if hasattr(rows, "columns"):
        found = list(rows.columns[:width])
    else:
        found = [[cells[j] if j < len(cells) else "" for cells in rows] for j in range(width)]
    return found + [[""] * count for _ in range(width - len(found))]


def _will_column(will: np.ndarray, plain: np.ndarray, valid_rows: np.ndarray, delimiter: str) -> CsvColumn:
    """The Will text column: labels written alike share their safety (``plain``, see _Labeller), the others
    are asked."""
    fields = will.copy()
    unsafe = []
    for k in np.flatnonzero(~plain).tolist():
        index = int(valid_rows[k])
        fields[index], changed = csv_field(will[index], delimiter)
        if changed:
            unsafe.append(index)
    return CsvColumn(fields.tolist(), will.tolist(), unsafe)


def _sparse_column(values: np.ndarray, rows: list[int], delimiter: str) -> CsvColumn:
    """A column empty but for ``rows``: each of those made a field (once per distinct text)."""
    fields = values.copy()
    unsafe = []
    made: dict[str, tuple[str, bool]] = {}
    for index in rows:
        value = values[index]
        found = made.get(value)
        if found is None:
            found = made[value] = csv_field(value, delimiter)
        fields[index] = found[0]
        if found[1]:
            unsafe.append(index)
    return CsvColumn(fields.tolist(), values.tolist(), unsafe)


def _take(table: list[str], ids: np.ndarray) -> np.ndarray:
    """``table[id]`` for each id ("" for -1)."""
    values = np.empty(len(table) + 1, dtype=object)
    values[:-1] = table
    values[-1] = ""
    return values[np.where(ids >= 0, ids, len(table))]


def _plain_field(label: str, delimiter: str) -> bool:
    """True when ``label`` is a CSV field as it is in a file of ``delimiter``: inert, and nothing to quote
    (a label has spaces and a middle dot, so a file delimited by either quotes it), as :func:`csv_field`
    (the writer's own rule) says."""
    field, changed = csv_field(label, delimiter)
    return field is label and not changed


# --------------------------------------------------------------------------- the CSV file, from the sheet's own bytes

_ZERO_DIGITS = bytes.maketrans(b"123456789", b"000000000")
#: Rows made into bytes at once (the lines of a block are held, not the whole file's).
BLOCK = 131072


def _write_from_file(preview: Preview, path: Path, header: list[str], width: int, columns: list[str]) -> None:
    """The preview of a sheet read by columns (sheet.Columnar, sheet.Streamed), written from the file's own lines.

    A row's cells, written again as CSV, are its line in the file (they hold no quote, no line
    break and no delimiter: that is how the file was split), padded with delimiters to the
    preview's width. So the preview's row is that line, as bytes, and the check's columns,
    each made a field once per distinct value. A row with a cell ``csv_safe`` changes, or
    checked row by row, is made as :func:`csv_lines` makes it. Rows go a block at a time, so a
    sheet too big to hold is written with the memory of a block.
    """
    from .preview import SKIP_REASONS, _preamble
    from .sheet import StreamedRows

    report: ColumnarReport = preview.report  # type: ignore[assignment]
    sheet = report.sheet
    rows = sheet.rows
    count = report.count
    delimiter = sheet.delimiter or ","
    sep = delimiter.encode()
    status, messages = report.status, report.messages
    with_cost = "Cost" in columns
    numbers = np.asarray(list(sheet.row_numbers) if not hasattr(sheet.row_numbers, "values")
                         else sheet.row_numbers.values, dtype=np.int64)
    if isinstance(rows, StreamedRows):
        def blocks_of(start: int, stop: int):
            return rows.streamed.line_blocks(numbers[start:stop], BLOCK)
    else:
        body = rows.source.body
        if rows.source.crlf:  # every line ends \r\n (the line scan says so): no copy of the body without them
            lines = body.split(b"\r\n")
        elif b"\r" not in body:
            lines = body.split(b"\n")
        else:
            lines = body.replace(b"\r\n", b"\n").split(b"\n")

        def blocks_of(start: int, stop: int):
            return ([lines[n - 1] for n in numbers[lo:min(stop, lo + BLOCK)].tolist()]
                    for lo in range(start, stop, BLOCK))
    flagged = report.flagged()
    states = ["ready", "warning", "error", "skipped"] + sorted({f"skipped ({r})" for r in SKIP_REASONS.values()})
    state = np.where(status == VALID, 0, np.where(status == 1, 2, 3)).astype(np.int64)
    valid_rows = np.flatnonzero(status == VALID)
    valid_at = np.full(count, -1, dtype=np.int64)
    valid_at[valid_rows] = np.arange(len(valid_rows))
    cost_id = np.zeros(count, dtype=np.int64)
    costs = [""]
    if with_cost:
        parts = _per_row(report, valid_rows, lambda counted, text: counted.parts)
        made: dict[tuple[str, int], int] = {}
        keys = np.asarray(preview.label_groups, dtype=np.int64) * 1000 + np.minimum(parts, 999)
        distinct, inverse = np.unique(keys, return_inverse=True)
        for j, key in enumerate(distinct.tolist()):
            region = preview.label_kinds[key // 1000][0]
            segments = int(parts[np.flatnonzero(keys == key)[0]])
            price = preview.prices.cost(region, segments)
            made_id = made.setdefault((region, segments), len(costs))
            if made_id == len(costs):
                costs.append(cell_text(float(price)) if price is not None else "no price")
            distinct[j] = made_id
        cost_id[valid_rows] = distinct[inverse.reshape(-1)]
    middles: dict[int, tuple[bytes, bool]] = {}  # (message, state, cost) -> the fields after Will text

    def middle(key: int) -> tuple[bytes, bool]:
        found = middles.get(key)
        if found is None:
            rest, cost = divmod(key, len(costs))
            message, which = divmod(rest, len(states))
            message -= 1
            text = messages.texts[message] if message >= 0 else None
            counted = messages.segments[message] if message >= 0 else None
            valid = which in (0, 1)
            body = text or ""
            cells = [body, str(len(body)) if valid or text else "",
                     str(counted.parts) if counted is not None else "", _encoding(body, counted),
                     "now" if valid else ""]
            if with_cost:
                cells.append(costs[cost] if valid else "")
            cells.append(states[which])
            fields = [csv_field(c, delimiter) for c in cells]
            found = middles[key] = (sep.join(f.encode("utf-8") for f, _ in fields),
                                    any(changed for _, changed in fields))
        return found

    fields_of: dict[str, tuple[bytes, bool]] = {}
    table = np.zeros(256, dtype=bool)
    table[list(b"=@+-\t")] = True
    gaps = np.diff(numbers, prepend=sheet.header_row) - 1
    head = io.StringIO(newline="")
    writer = csv.writer(head, delimiter=delimiter)
    quoted = csv.writer(head, delimiter=delimiter, quoting=csv.QUOTE_ALL)
    writer.writerows(tables._inert_rows(_preamble(sheet), quoted, False))
    writer.writerows(tables._inert_rows([header], quoted, False))
    changes = tables.changes
    relabel = _Labeller(report)
    shapes: dict[bytes, bool] = {}
    alike_fields: dict[tuple[int, int], tuple[bytes, bool, str]] = {}
    across, leases, special = report.across, report.leases, report.special
    specials = np.array(sorted(special), dtype=np.int64)  # rows checked row by row, in order
    verdict_pieces: dict[int, list[tuple[str, str]]] = {}
    message_pieces: dict[int, list[tuple[str, str]]] = {}

    def own_pieces(verdict: int, message: int) -> list[tuple[str, str]]:
        """The Problem texts (and codes) of a row's own cells: its recipient's verdict, then its message."""
        found = verdict_pieces.get(verdict)
        if found is None:
            label = report.to_label
            found = verdict_pieces[verdict] = [(f"{label + ': ' if label else ''}{p[2]}", p[1])
                                               for p in (report.verdicts[verdict][2] if verdict >= 0 else ())]
        made = message_pieces.get(message)
        if made is None:
            made = message_pieces[message] = [(f"{p[0] + ': ' if p[0] else ''}{p[4]}", p[3])
                                              for p in (report.messages.problems[message] if message >= 0 else ())]
        return found + made

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(codecs.BOM_UTF8 + head.getvalue().encode("utf-8"))
            _in_two(fh, tmp, count, emit)

    def emit(fh, start: int, stop: int) -> None:
        """Write the lines of rows ``start`` to ``stop`` (block by block) to ``fh``."""
        lo = start
        for own in blocks_of(start, stop):
            hi = lo + len(own)
            odd = np.zeros(hi - lo, dtype=bool)
            # a cell csv_safe may change holds one of = @ + - tab: only those lines' cells are asked
            joined = b"\n".join(own)
            hits = np.flatnonzero(table[np.frombuffer(joined, dtype=np.uint8)])
            if len(hits):
                breaks = np.flatnonzero(np.frombuffer(joined, dtype=np.uint8) == 10)
                for k in np.unique(np.searchsorted(breaks, hits)).tolist():
                    # csv_safe reads every digit alike: lines alike but for their digits get the same answer
                    shape = own[k].translate(_ZERO_DIGITS)
                    verdict = shapes.get(shape)
                    if verdict is None:
                        verdict = any(changes(c) for c in own[k].decode("utf-8").split(delimiter))
                        if len(shapes) > 200_000:
                            shapes.clear()
                        shapes[shape] = verdict
                    odd[k] = verdict
            problems = [b"\r\n"] * (hi - lo)  # each row's Problem field and its line end
            states_here = state[lo:hi].copy()
            picked = np.flatnonzero(flagged[lo:hi])
            at_rows = picked + lo
            per_row = zip(picked.tolist(), across[at_rows].tolist(), leases[at_rows].tolist(),
                          report.verdict[at_rows].tolist(), report.message[at_rows].tolist(),
                          status[at_rows].tolist(), strict=True)
            for k, row_across, row_leases, verdict, message, row_status in per_row:
                index = lo + k
                # a row whose issues are its cells' alone reads like every row of the same cells' verdicts
                alike = not row_across and not row_leases and index not in special
                key = (verdict, message) if alike else None
                found = alike_fields.get(key) if alike else None
                if found is None:
                    if index in special:
                        pieces = [_piece(i) for i in special[index].issues]
                    elif row_across in (ACROSS_OPTED_OUT, ACROSS_DEDUPLICATED):
                        pieces = [_piece(report._across_issue(index, row_across))]
                    else:
                        pieces = own_pieces(verdict, message)
                        if row_across:
                            pieces = pieces + [_piece(report._across_issue(index, row_across))]
                        if row_leases:
                            pieces = pieces + [_piece(report._lease_issue(index))]
                    if not pieces:
                        continue
                    text = "; ".join(piece for piece, _ in pieces)
                    found = fields_of.get(text)
                    if found is None:
                        field, changed = csv_field(text, delimiter)
                        if len(fields_of) > 100_000:
                            fields_of.clear()
                        found = fields_of[text] = (field.encode("utf-8") + b"\r\n", changed)
                    reason = next((SKIP_REASONS[code] for _, code in pieces if code in SKIP_REASONS), "")
                    found = (found[0], found[1], reason)
                    if alike:
                        alike_fields[key] = found
                problems[k] = found[0]
                if found[1]:
                    odd[k] = True
                if row_status == VALID:
                    states_here[k] = 1
                elif row_status == 2 and found[2]:
                    states_here[k] = states.index(f"skipped ({found[2]})")
            combo = ((report.message[lo:hi].astype(np.int64) + 1) * len(states) + states_here) * len(costs) \
                + cost_id[lo:hi]
            kinds, at = np.unique(combo, return_inverse=True)
            made_middles = [middle(key) for key in kinds.tolist()]
            mids = [m for m, _ in made_middles]
            for j, (_, changed) in enumerate(made_middles):
                if changed:
                    odd[at.reshape(-1) == j] = True
            mid = np.asarray([sep + m + sep for m in mids] + [b""], dtype=object)[at.reshape(-1)]
            will = np.full(hi - lo, b"", dtype=object)
            here = np.flatnonzero(valid_at[lo:hi] >= 0)
            if len(here):
                labels, _ = relabel.run(here + lo)
                will[here] = labels.encoded
                for n in np.flatnonzero(~relabel.plain).tolist():
                    field, changed = csv_field(labels[n], delimiter)
                    will[here[n]] = field.encode("utf-8")
                    odd[here[n]] |= changed
            for index in specials[np.searchsorted(specials, lo):np.searchsorted(specials, hi)].tolist():
                k = index - lo
                if odd[k]:
                    continue
                # a row checked row by row: its Message ... Status as _extra gives them (its Will text is its
                # label and its Problem its issues', made above as for every row)
                extra = preview._extra(report.result(index, external=False))
                if not with_cost:
                    del extra[6]
                fields = [cell_text(v) for v in extra[1:]]
                if any(changes(field) for field in fields):
                    odd[k] = True  # a field made inert: the whole line is quoted, as _odd_line makes it
                    continue
                mid[k] = sep + sep.join(tables._quoted(field, delimiter).encode("utf-8") for field in fields) + sep
            count_here = hi - lo
            seps = [sep] * count_here
            cells = np.fromiter(map(bytes.count, own, seps), dtype=np.int64, count=count_here)
            short = np.flatnonzero(cells != width - 1)
            if len(short):  # a line with fewer cells than the preview's width: delimiters pad it
                own = list(own)
                for k in short.tolist():
                    own[k] += sep * (width - 1 - int(cells[k]))
            # the block's bytes, interleaved: line k is parts[5k:5k+5] (its cells, the check's fields, its end)
            parts: list[bytes] = [sep] * (5 * count_here)
            parts[0::5] = own
            parts[2::5] = will.tolist()
            parts[3::5] = mid.tolist()
            parts[4::5] = problems
            for k in np.flatnonzero(odd).tolist():
                cells = own[k].decode("utf-8").split(delimiter)
                parts[5 * k:5 * k + 5] = [_odd_line(preview, lo + k, width, columns, cells).encode("utf-8"), b"", b"",
                                          b"", b"\r\n"]
            for k in np.flatnonzero(gaps[lo:hi]).tolist():
                parts[5 * k] = b"\r\n" * int(gaps[lo + k]) + parts[5 * k]
            tables.write_pieces(fh, parts)
            lo = hi

    tables._atomically(Path(path), None, write)


#: Rows from which the preview is written by two processes (this one and a fork writing the second half).
PARALLEL_ROWS = 50_000


def _in_two(fh, tmp: Path, count: int, emit) -> None:
    """``emit(fh, 0, count)``, the second half written by a forked copy of this process to a file of its own
    and appended (:mod:`batchsms.background`). On this 2-core machine it saves 10-20% of the preview (the
    copy's first touches of the shared pages cost it time). Where the copy cannot be made, or the sheet is
    small, this process writes it all (the same bytes)."""
    half = count // 2  # emit goes a block at a time from any row
    if count < PARALLEL_ROWS or half == 0 or not background.can_fork():
        emit(fh, 0, count)
        return
    part = tmp.with_name(tmp.name + ".half")

    def second_half() -> None:
        with open(part, "wb") as out:
            emit(out, half, count)

    try:
        with background.alongside(second_half):
            emit(fh, 0, half)
        tables.append_file(fh, part)
    finally:
        part.unlink(missing_ok=True)


def _piece(issue) -> tuple[str, str]:
    """An issue as the preview's Problem column writes it, and its code."""
    return f"{issue.column + ': ' if issue.column else ''}{issue.message}", issue.code


def _odd_line(preview: Preview, index: int, width: int, columns: list[str], cells: list[str]) -> str:
    """The preview line of one row, made as Preview.write makes it (for the rows the file's line cannot give):
    ``cells`` are the row's cells as its line holds them."""
    report: ColumnarReport = preview.report  # type: ignore[assignment]
    cells = cells + [""] * (width - len(cells))
    r = report.result(index, external=False)
    extra = preview._extra(r)  # its Will text from describe(), which the labels equal
    if "Cost" not in columns:
        del extra[6]
    problem = "; ".join(f"{i.column + ': ' if i.column else ''}{i.message}" for i in r.issues)
    row = [cell_text(v) for v in cells + extra + [problem]]
    return tables.csv_line(row, report.sheet.delimiter or ",")
