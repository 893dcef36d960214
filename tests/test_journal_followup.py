"""The journal after the send: the migration of older journals, the request body and first-attempt time kept
at start, delivery answers that never go backwards, and settling unknown rows (and what a re-run does then)."""

import json
import sqlite3

import pytest

from batchsms.codes import Status
from batchsms.errors import JournalError
from batchsms.journal import _SCHEMA, SETTLED_NOT_SENT, SETTLED_SENT, Finish, Journal, request_hash
from batchsms.report import Report, RowResult
from batchsms.segments import Segments
from batchsms.sender import plan

NEW_COLUMNS = ["body", "started", "due", "delivery", "delivered_at", "delivery_error", "delivery_checked", "settled"]
OLD_ROWS = [  # row, request_hash, state, attempts, message_sid, sender_id, segments, error, http_status, updated
    (2, "h2", "sent", 1, "MS2", "+61400000001", 1, None, 200, 1000.0),
    (3, "h3", "unknown", 1, None, None, 2, "no answer: timed out waiting for the answer", None, 1001.0),
    (4, "h4", "failed", 3, None, None, 1, "400: bad number", 400, 1002.0),
    (5, "h5", "started", 0, None, None, None, None, None, 1003.0),
    (6, "h6", "scheduled", 1, "MS6", "CityDental", 1, None, 200, 1004.0),
]


def old_journal(path):
    """A journal as batchsms wrote it before this change: the schema SQL of the code (no new columns), rows in it."""
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("target", "http://127.0.0.1:1/v2/Properties/PS1"),
                                                     ("sheet", "c.csv")])
    db.executemany("INSERT INTO rows (row, request_hash, state, attempts, message_sid, sender_id, segments, error, "
                   "http_status, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", OLD_ROWS)
    db.commit()
    db.close()
    return path


def columns(path):
    db = sqlite3.connect(path)
    try:
        return [r[1] for r in db.execute("PRAGMA table_info(rows)")]
    finally:
        db.close()


def test_an_old_journal_gains_the_new_columns_and_keeps_every_row(tmp_path):
    path = old_journal(tmp_path / "c.results.csv.journal")
    assert not set(NEW_COLUMNS) & set(columns(path))
    with Journal(path) as journal:
        entries = journal.entries()
        assert journal.get_meta("target") == "http://127.0.0.1:1/v2/Properties/PS1"
    assert columns(path)[-len(NEW_COLUMNS):] == NEW_COLUMNS
    assert [(e.row, e.request_hash, e.state, e.attempts, e.message_sid, e.sender_id, e.segments, e.error,
             e.http_status, e.updated) for e in entries.values()] == OLD_ROWS
    assert all(getattr(e, name) is None for e in entries.values() for name in NEW_COLUMNS)
    with Journal(path) as journal:  # opening it again changes nothing
        assert journal.entries() == entries
    assert columns(path)[-len(NEW_COLUMNS):] == NEW_COLUMNS


def test_a_new_journal_has_the_new_columns_and_a_foreign_file_is_still_refused(tmp_path):
    with Journal(tmp_path / "new.journal"):
        pass
    assert set(NEW_COLUMNS) <= set(columns(tmp_path / "new.journal"))
    foreign = tmp_path / "other.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE rows (row INTEGER PRIMARY KEY, name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="is a SQLite file but not a batchsms journal"):
        Journal(foreign)
    assert columns(foreign) == ["row", "name"]  # nothing was added to someone else's file


def test_start_keeps_the_body_as_sent_and_the_first_attempts_time(tmp_path, monkeypatch):
    body = {"To": "+61412000001", "Text": "Grüße, 50% off", "Schedule": 1893456000}
    clock = iter([100.0, 200.0, 300.0, 400.0])
    monkeypatch.setattr("batchsms.journal.time.time", lambda: next(clock))
    with Journal(tmp_path / "j") as journal:
        journal.commit(starts=[(2, request_hash(body), body)])  # at 100
        journal.commit(finishes=[Finish(2, Status.UNKNOWN, 1, error="no answer")])  # at 200
        journal.commit(starts=[(2, request_hash(body), body)])  # --retry-unknown, at 300
        entry = journal.entries()[2]
    assert entry.body == '{"To": "+61412000001", "Text": "Gr\\u00fc\\u00dfe, 50% off", "Schedule": 1893456000}'
    assert entry.body.encode() == json.dumps(body).encode("utf-8")  # the bytes the client POSTs
    assert entry.request() == body and "auth" not in entry.body.lower()
    assert (entry.started, entry.updated, entry.state) == (100.0, 300.0, Status.STARTED)


def test_many_starts_in_one_commit_are_each_kept_as_one_at_a_time(tmp_path, monkeypatch):
    """Starts go in statements of several rows: across their chunks, new rows and rows going
    again (whose earlier state and error are kept) end as one commit a row at a time left them."""
    clock = iter(float(t) for t in range(100, 200))
    monkeypatch.setattr("batchsms.journal.time.time", lambda: next(clock))
    bodies = {row: {"To": f"+614120{row:05d}", "Text": f"Hi {row} – ünï"} for row in range(2, 502)}
    given = {row: (json.dumps(body).encode() if row % 2 else body) for row, body in bodies.items()}  # bytes or dict
    with Journal(tmp_path / "j") as journal:
        journal.commit(starts=[(row, f"h{row}", given[row]) for row in range(2, 302)])  # at 100
        journal.commit(finishes=[Finish(row, Status.UNKNOWN, 1, error=f"lost {row}") for row in range(2, 302)])
        journal.commit(starts=[(row, f"g{row}", given[row]) for row in range(152, 502)] + [(600, "x")])  # at 102
        entries = journal.entries()
    assert sorted(entries) == [*range(2, 502), 600]
    for row in range(2, 502):
        e = entries[row]
        assert e.body.encode() == json.dumps(bodies[row]).encode() and e.request() == bodies[row]
        if row < 152:
            assert (e.state, e.request_hash, e.error, e.updated, e.started) == (Status.UNKNOWN, f"h{row}",
                                                                                 f"lost {row}", 101.0, 100.0)
        elif row < 302:  # going again: its first attempt's time stays, the unknown it was is kept aside
            assert (e.state, e.request_hash, e.error, e.updated, e.started) == (Status.STARTED, f"g{row}", None,
                                                                                 102.0, 100.0)
        else:
            assert (e.state, e.request_hash, e.error, e.updated, e.started) == (Status.STARTED, f"g{row}", None,
                                                                                 102.0, 102.0)
    assert (entries[600].body, entries[600].state) == (None, Status.STARTED)
    with Journal(tmp_path / "j") as journal:  # released, a row going again is what it was before
        journal.commit(releases=range(152, 502))
        entries = journal.entries()
    assert sorted(entries) == [*range(2, 302), 600]
    assert all((entries[row].state, entries[row].error) == (Status.UNKNOWN, f"lost {row}") for row in range(152, 302))


def test_deliveries_are_recorded_by_message_sid_and_never_go_backwards(tmp_path):
    with Journal(tmp_path / "j") as journal:
        journal.commit(starts=[(2, "h"), (3, "h")])
        journal.commit(finishes=[Finish(2, Status.SENT, 1, "MS2"), Finish(3, Status.SENT, 1, "MS3")])
        assert journal.record_delivery("MS2", "Submitted", None, None, 10.0) == 1
        assert journal.record_delivery("MS2", "Processing", None, None, 11.0) == 1  # late answer: not backwards
        e = journal.entries()[2]
        assert (e.delivery, e.delivery_checked) == ("Submitted", 11.0)
        journal.record_delivery("MS2", "Delivered", 1_800_000_000, None, 12.0)
        journal.record_delivery("MS2", "Delivered", 1_800_000_000, None, 12.0)  # idempotent
        journal.record_delivery("MS2", "Submitted", None, None, 13.0)
        journal.record_delivery("MS2", None, None, "could not read the status: timed out", 14.0)
        e = journal.entries()[2]
        assert (e.delivery, e.delivered_at, e.delivery_error, e.delivery_final) == (
            "Delivered", 1_800_000_000, None, True)
        journal.record_delivery("MS3", None, None, "could not read the status: HTTP 502", 15.0)
        e = journal.entries()[3]
        assert (e.delivery, e.delivery_error, e.delivery_checked) == (None, "could not read the status: HTTP 502", 15.0)
        journal.record_delivery("MS3", "Failed", None, "Undeliverable", 16.0)
        assert (journal.entries()[3].delivery, journal.entries()[3].delivery_error) == ("Failed", "Undeliverable")
        assert journal.record_delivery("MS-unknown", "Delivered", 1.0, None, 17.0) == 0


def test_a_new_outcome_clears_what_was_known_of_the_last_message(tmp_path):
    with Journal(tmp_path / "j") as journal:
        journal.commit(starts=[(2, "h")])
        journal.commit(finishes=[Finish(2, Status.UNKNOWN, 1, error="no answer")])
        journal.settle(2, None, "settled as not sent")
        journal.commit(starts=[(2, "h")])
        journal.commit(finishes=[Finish(2, Status.SENT, 1, "MS9")])
        e = journal.entries()[2]
        assert (e.state, e.settled, e.error, e.delivery) == (Status.SENT, None, None, None)


def result(row, body):
    return RowResult(row - 2, row, Status.VALID, body, Segments("GSM-7", 5, 1))


def test_settle_sent_and_not_sent_and_what_a_rerun_does_then(tmp_path):
    bodies = {r: {"To": f"+6141200000{r}", "Text": "x"} for r in (2, 3, 4, 5)}
    bodies[4]["Schedule"] = 4_000_000_000  # still ahead: settled as scheduled
    with Journal(tmp_path / "j") as journal:
        journal.commit(starts=[(r, request_hash(b), b) for r, b in bodies.items()])
        journal.commit(finishes=[Finish(r, Status.UNKNOWN, 1, error="no answer", segments=1) for r in (2, 3, 4)]
                       + [Finish(5, Status.FAILED, 1, error="400: no")])
        assert journal.settle(2, "MS2", "settled as sent: the list holds MS2", sender_id="+61400000001", segments=2)
        assert journal.settle(3, None, "settled as not sent: the list holds nothing")
        assert journal.settle(4, "MS4", "settled as sent")
        assert not journal.settle(5, None, "a failed row is not unknown")
        assert not journal.settle(2, None, "already settled")
        entries = journal.entries()
    assert [(e.state, e.message_sid, e.sender_id, e.segments, e.error, e.settled) for e in entries.values()] == [
        (Status.SENT, "MS2", "+61400000001", 2, "settled as sent: the list holds MS2", SETTLED_SENT),
        (Status.UNKNOWN, None, None, 1, "settled as not sent: the list holds nothing", SETTLED_NOT_SENT),
        (Status.SCHEDULED, "MS4", None, 1, "settled as sent", SETTLED_SENT),
        (Status.FAILED, None, None, None, "400: no", None),
    ]
    report = Report([result(r, b) for r, b in bodies.items()])
    assert [j.row for j in plan(report, entries).jobs] == []
    assert [j.row for j in plan(report, entries, retry_failed=True).jobs] == [5]  # not the settled row 3
    assert [j.row for j in plan(report, entries, retry_unknown=True).jobs] == [3]
