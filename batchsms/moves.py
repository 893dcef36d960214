"""The journal follows a message when rows are inserted or deleted above it.

The journal records each row by its Excel row number and the fingerprint of the exact
request it sent. A person who inserts a late booking at the top of yesterday's sheet
shifts every row down by one: by number alone, row 5 now carries row 4's message, which
looks like "the message sent under row 5 changed" and stopped the run. By fingerprint,
the message already sent is recognised where it now stands, and its record moves there:
it is not sent again, does not block, and the results show it at its new row.

Only a row number whose sent message is nowhere in the sheet any more (changed, or
deleted while another message took its place) is still named, since guessing which text
the person wants could text someone twice.
"""

from __future__ import annotations

from collections import defaultdict

from .codes import Status
from .journal import Entry, request_hash
from .report import Report


def follow_moves(report: Report, entries: dict[int, Entry]) -> dict[int, int]:
    """``{old row: new row}`` for journal records whose message now stands at another row.

    A record stays where it is when its own row still carries its message. When one
    message stands at several rows (the same text to the same number twice), records and
    rows pair up in order. A move onto a row whose record stays (a different message that
    is still recorded there) is not made: that row is then named as changed, as before.
    """
    if not entries:
        return {}
    rows_of: dict[str, list[int]] = defaultdict(list)  # fingerprint -> rows carrying it now
    for r in report.results:
        if r.status == Status.VALID and r.body is not None:  # known by the message as written (quiet hours)
            rows_of[request_hash(r.identity if r.identity is not None else r.body)].append(r.row)
    if not rows_of:
        return {}
    stays: set[int] = set()
    loose: dict[str, list[int]] = defaultdict(list)  # fingerprint -> record rows that must find a new row
    for row, entry in entries.items():
        now_at = rows_of.get(entry.request_hash)
        if now_at is None:
            stays.add(row)  # its message is gone: the record stays put (deleted or changed row)
        elif row in now_at:
            stays.add(row)
            now_at.remove(row)  # this row keeps its record
        else:
            loose[entry.request_hash].append(row)
    moves: dict[int, int] = {}
    taken = set(stays)
    for digest, old_rows in loose.items():
        free = [row for row in rows_of[digest] if row not in taken]
        for old, new in zip(sorted(old_rows), free, strict=False):
            moves[old] = new
            taken.add(new)
    # A record may only land on a row that is free once the moves are made: a record whose own move
    # is called off stays where it is, and so blocks any move onto its row in turn.
    occupied = set(entries) - set(moves)
    while True:
        blocked = {old for old, new in moves.items() if new in occupied}
        if not blocked:
            return moves
        moves = {old: new for old, new in moves.items() if old not in blocked}
        occupied |= blocked
