"""`batchsms cancel` run by a person: a mistyped row or an already-cancelled one."""

from click.testing import CliRunner

from batchsms.cli import main
from tests.helpers import send_held


def test_cancel_rows_that_hold_nothing_says_so_and_is_not_exit_0(tmp_path, server, clock):
    env, results = send_held(server, tmp_path)
    r = CliRunner().invoke(main, ["cancel", str(results), "--rows", "30"], env=env)
    print(r.output)
    # row 30 does not exist: the person typed the wrong row and believes it is cancelled
    assert r.exit_code != 0 and "30" in r.output, (r.exit_code, r.output)
