"""A watch batch with a held row (Schedule > 14 days ahead): its journal is registered under
processing/…, then the batch folder moves to done/…; `batchsms due` never finds it again."""
import os
import time

from batchsms import Options
from batchsms.api import SendOptions, Target
from batchsms.due import submit_due
from batchsms.state import journals
from batchsms.watch import run_once
from tests.helpers import read_results, taken_ids, write_csv

DAY = 86400


def test_held_row_of_a_watch_batch_is_handed_over_by_due(tmp_path, server, clock):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    at = int(clock() + 21 * DAY)
    path = write_csv(inbox / "r.csv", [["Phone", "Name", "Schedule", "ExternalId"],
                                       ["0412 555 120", "Ann", str(at), "id0"],
                                       ["0412 555 121", "Bo", "", "id1"]])
    os.utime(path, (time.time() - 60, time.time() - 60))
    tgt = Target(server.url, server.account_sid, server.auth_token, "PS1")
    [batch] = run_once(inbox, Options(text="Hi {{ Name }}", timezone="UTC"), tgt, SendOptions(progress=False))
    assert batch.state == "done"
    assert taken_ids(server) == ["id1"]
    results = batch.folder / "r.results.csv"
    assert [r["Status"] for r in read_results(results)] == ["held", "sent"]
    # the registry must point at the journal where it now is
    assert journals() == [(batch.folder / "r.results.csv.journal").resolve()]
    clock.advance(8 * DAY)
    run = submit_due(tgt, now=clock())
    assert run.counts["scheduled"] == 1, run.lines
    assert taken_ids(server) == ["id1", "id0"]


def test_registry_points_at_done_folder(tmp_path, server, clock):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    at = int(clock() + 21 * DAY)
    path = write_csv(inbox / "r.csv", [["Phone", "Name", "Schedule", "ExternalId"],
                                       ["0412 555 120", "Ann", str(at), "id0"]])
    os.utime(path, (time.time() - 60, time.time() - 60))
    tgt = Target(server.url, server.account_sid, server.auth_token, "PS1")
    [batch] = run_once(inbox, Options(text="Hi {{ Name }}", timezone="UTC"), tgt, SendOptions(progress=False))
    assert [str(p) for p in journals()] == [str((batch.folder / "r.results.csv.journal").resolve())]
