"""A run killed between moving a finished batch to done/ and recording it in the ledger: the ledger
keeps the batch as `processing` with a folder that no longer exists. It is never finished, and the same
file dropped again is not recognised (state processing) and is sent a second time."""

import pytest

from batchsms import Options
from batchsms.api import SendOptions, Target
from batchsms.watch import DONE, DropFolder, run_once
from tests.helpers import contacts, drop, taken_ids


class Killed(BaseException):
    pass


def test_crash_after_the_move_to_done_then_the_same_file_again(tmp_path, server, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    tgt = Target(server.url, server.account_sid, server.auth_token, "PS1")
    drop(inbox / "r.csv", contacts(3))
    real = DropFolder.record

    def dies_recording_done(self, digest, name, folder, state):
        if state == DONE:
            raise Killed  # kill -9 / power cut right after os.replace(place, final)
        return real(self, digest, name, folder, state)

    monkeypatch.setattr(DropFolder, "record", dies_recording_done)
    with pytest.raises(Killed):
        run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False))
    monkeypatch.setattr(DropFolder, "record", real)
    assert sorted(taken_ids(server)) == ["id0", "id1", "id2"]
    run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False))  # the next cron run
    drop(inbox / "r.csv", contacts(3))  # the same file dropped again
    batches = run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False))
    assert [b.state for b in batches] == ["duplicate"], [b.line for b in batches]
    assert sorted(taken_ids(server)) == ["id0", "id1", "id2"]
