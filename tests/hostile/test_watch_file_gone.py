"""A file listed at the start of a run and moved away (renamed, deleted) while an earlier batch sent:
run_once crashes with FileNotFoundError, and every file after it is left for the next run."""
import os

from batchsms import Options
from batchsms.api import SendOptions, Target
from batchsms.watch import run_once
from tests.helpers import contacts, drop, taken_ids


def test_a_file_renamed_away_mid_run_is_skipped_not_a_crash(tmp_path, server):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    tgt = Target(server.url, server.account_sid, server.auth_token, "PS1")
    drop(inbox / "a.csv", contacts(1, start=100), age=180)
    drop(inbox / "b.csv", contacts(1, start=200), age=120)
    drop(inbox / "c.csv", contacts(1, start=300), age=60)

    def user_moves_b(batch):
        if batch.name == "a.csv":
            os.rename(inbox / "b.csv", tmp_path / "b-kept.csv")

    batches = run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False), on_batch=user_moves_b)
    assert [b.name for b in batches] == ["a.csv", "c.csv"]
    assert sorted(taken_ids(server)) == ["id100", "id300"]
