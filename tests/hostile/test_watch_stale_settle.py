"""The settle check is made once, when the folder is listed; files are then taken one by one, after
the earlier batches have been sent (minutes). A file being rewritten by then is taken half-written:
the rest of its rows are lost, or — when the exporter finishes writing it again — sent twice."""

from batchsms import Options
from batchsms.api import SendOptions, Target
from batchsms.watch import run_once
from tests.helpers import contacts, drop, taken_ids, write_csv


def test_a_file_rewritten_while_an_earlier_batch_sends_is_not_taken_half_written(tmp_path, server):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    tgt = Target(server.url, server.account_sid, server.auth_token, "PS1")
    drop(inbox / "a.csv", contacts(2, start=100), age=120)
    drop(inbox / "b.csv", contacts(4), age=60)  # yesterday's b.csv, settled

    def exporter_rewrites_b(batch):
        if batch.name == "a.csv":  # while a.csv was sending, the exporter starts writing b.csv again
            write_csv(inbox / "b.csv", contacts(2))  # half-written: 2 of 4 rows so far (mtime: now)

    batches = run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False),
                       on_batch=exporter_rewrites_b)
    # b.csv was modified a moment ago: it has not settled and must be left for the next run
    assert [b.name for b in batches] == ["a.csv"], [b.line for b in batches]


def test_half_written_then_complete_file_sends_nobody_twice(tmp_path, server):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    tgt = Target(server.url, server.account_sid, server.auth_token, "PS1")
    drop(inbox / "a.csv", contacts(2, start=100), age=120)
    drop(inbox / "b.csv", contacts(4), age=60)

    def exporter_rewrites_b(batch):
        if batch.name == "a.csv":
            write_csv(inbox / "b.csv", contacts(2))

    run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False), on_batch=exporter_rewrites_b)
    drop(inbox / "b.csv", contacts(4), age=60)  # the exporter finished: the whole file
    run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False))
    ids = taken_ids(server)
    assert sorted(ids) == sorted(set(ids)), f"sent twice: {sorted(i for i in set(ids) if ids.count(i) > 1)}"
