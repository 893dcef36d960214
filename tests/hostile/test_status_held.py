"""`batchsms status` counts held and cancelled rows as `unknown` (status.summarise: every state that is not
sent/scheduled/failed falls into unknown): a campaign with one cancelled row exits 1 for ever and tells
the person to run --settle for rows that never went to the API."""

from click.testing import CliRunner

from batchsms.cli import main
from tests.helpers import send_held


def test_status_does_not_call_held_or_cancelled_rows_unknown(tmp_path, server):
    env, results = send_held(server, tmp_path)
    r = CliRunner().invoke(main, ["cancel", str(results), "--rows", "2"], env=env)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["status", str(results), "--json"], env=env)
    print(r.output)
    assert '"unknown": 0' in r.output, r.output
