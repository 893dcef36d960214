"""`batchsms status` counts held and cancelled rows as `unknown` (status.summarise: every state that is not
sent/scheduled/failed falls into unknown): a campaign with one cancelled row exits 1 for ever and tells
the person to run --settle for rows that never went to the API."""
import time

from click.testing import CliRunner

from batchsms.cli import main
from tests.helpers import env_for, write_csv


def test_status_does_not_call_held_or_cancelled_rows_unknown(tmp_path, server):
    at = int(time.time() + 3 * 3600)
    path = write_csv(tmp_path / "c.csv", [["Phone", "Name", "Schedule"], ["0412 555 120", "Ann", str(at)],
                                         ["0412 555 121", "Bo", str(at)]])
    env = env_for(server, tmp_path)
    r = CliRunner().invoke(main, ["send", str(path), "--text", "Hi {{ Name }}", "--yes", "--quiet", "--hold",
                                  "--timezone", "UTC"], env=env)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["cancel", str(tmp_path / "c.results.csv"), "--rows", "2"], env=env)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["status", str(tmp_path / "c.results.csv"), "--json"], env=env)
    print(r.output)
    assert '"unknown": 0' in r.output, r.output
