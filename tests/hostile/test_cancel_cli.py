"""`batchsms cancel` run by a person: a mistyped row or an already-cancelled one."""
import time

from click.testing import CliRunner

from batchsms.cli import main
from tests.helpers import env_for, write_csv


def test_cancel_rows_that_hold_nothing_says_so_and_is_not_exit_0(tmp_path, server, clock):
    at = int(time.time() + 3 * 3600)
    path = write_csv(tmp_path / "c.csv", [["Phone", "Name", "Schedule"], ["0412 555 120", "Ann", str(at)],
                                         ["0412 555 121", "Bo", str(at)]])
    env = env_for(server, tmp_path)
    r = CliRunner().invoke(main, ["send", str(path), "--text", "Hi {{ Name }}", "--yes", "--quiet", "--hold",
                                  "--timezone", "UTC"], env=env)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["cancel", str(tmp_path / "c.results.csv"), "--rows", "30"], env=env)
    print(r.output)
    # row 30 does not exist: the person typed the wrong row and believes it is cancelled
    assert r.exit_code != 0 and "30" in r.output, (r.exit_code, r.output)
