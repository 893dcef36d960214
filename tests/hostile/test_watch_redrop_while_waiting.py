"""A batch is left in processing/ ('waiting') after the API refused the token half-way (some rows sent).
The person drops the same file again while the API is still refusing: the copy is not a duplicate
(ledger state 'processing'), becomes a second batch, and the ledger now points at the copy's folder.
When the API is back, the copy is sent whole: the rows the first attempt sent go twice, and the first
folder is never finished."""
import base64
import threading
import time

from batchsms import Options
from batchsms.api import SendOptions, Target
from batchsms.watch import run_once
from tests.helpers import contacts, drop, taken_ids


def test_redrop_while_a_batch_waits_sends_nobody_twice(tmp_path, server):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    tgt = Target(server.url, server.account_sid, server.auth_token, "PS1")
    good = server._expected_auth
    drop(inbox / "r.csv", contacts(20))

    def revoke_after_three():
        while len(taken_ids(server)) < 3:
            time.sleep(0.001)
        server._expected_auth = "Basic " + base64.b64encode(b"x:y").decode()

    t = threading.Thread(target=revoke_after_three, daemon=True)
    t.start()
    [first] = run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False, concurrency=1, rate=50))
    t.join(5)
    assert first.state == "waiting", first.line
    sent_before = len(taken_ids(server))
    assert 0 < sent_before < 20
    drop(inbox / "r.csv", contacts(20))  # "it did not go, let me drop it again"
    run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False))  # API still refusing
    server._expected_auth = good  # the token works again
    run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False))
    run_once(inbox, Options(text="Hi {{ Name }}"), tgt, SendOptions(progress=False))
    ids = taken_ids(server)
    assert sorted(set(ids)) == sorted(f"id{i}" for i in range(20)), "a row never went"
    assert len(ids) == 20, f"sent twice: {sorted(i for i in set(ids) if ids.count(i) > 1)}"
