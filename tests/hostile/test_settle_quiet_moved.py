"""An unknown row whose send time quiet hours moved can never be settled: the journal keys it by the
message as written (identity), settle_unknown compares request_hash(body as sent) with that key, finds them
different and says 'sent by an older batchsms: compare it by hand'."""
from batchsms import Options
from batchsms.api import SendOptions, Target, send_sheet
from batchsms.client import Client
from batchsms.journal import Journal
from batchsms.sandbox import Sandbox
from batchsms.status import settle_unknown
from tests.helpers import write_csv

DAY, HOUR = 86400, 3600


def test_quiet_moved_unknown_row_settles(tmp_path, clock):
    with Sandbox(port=0, seed=1, clock=clock, faults={"lost": 1.0}) as server:
        tgt = Target(server.url, server.account_sid, server.auth_token, "PS1")
        at = int(clock() // DAY * DAY) + 2 * DAY + 16 * HOUR  # 03:00 AEDT: quiet in every AU zone
        path = write_csv(tmp_path / "c.csv", [["Phone", "Name", "Schedule"], ["0412 555 120", "Ann", str(at)]])
        out = send_sheet(path, Options(text="Hi {{ Name }}", timezone="UTC", now=clock(), quiet_hours="21:00-08:00"),
                         tgt, SendOptions(progress=False, max_attempts=1))
        assert out.stats.counts["unknown"] == 1
        clock.advance(HOUR)
        client = Client(server.url, server.account_sid, server.auth_token, "PS1")
        with Journal(tmp_path / "c.results.csv.journal") as journal:
            found = settle_unknown(journal, client, now=clock())
        client.close()
        reasons = [why for _, why in found.unsettled]
        assert not any("older batchsms" in w for w in reasons), reasons
