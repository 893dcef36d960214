"""`batchsms due` walks every registered journal; a results file it cannot refresh (the user sorted it in
Excel, so row N no longer carries row N's MessageSid) raises out of submit_due: every later journal's due
messages are not handed over, this run or any run while the first journal still has messages coming due."""
import csv

from batchsms import Options
from batchsms.api import SendOptions, Target, send_sheet
from batchsms.due import submit_due
from tests.helpers import taken_ids, write_csv

DAY, HOUR = 86400, 3600


def target(server):
    return Target(server.url, server.account_sid, server.auth_token, "PS1")


def test_a_sorted_results_file_does_not_stop_other_campaigns(tmp_path, server, clock):
    now = clock()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_csv(tmp_path / "a" / "a.csv", [["Phone", "Name", "Schedule", "ExternalId"],
                                             ["0412 555 120", "Ann", "", "a0"],
                                             ["0412 555 121", "Bo", "", "a1"],
                                             ["0412 555 122", "Cy", str(int(now + 2 * HOUR)), "a2"],
                                             ["0412 555 123", "Di", str(int(now + 2 * DAY)), "a3"]])
    b = write_csv(tmp_path / "b" / "b.csv", [["Phone", "Name", "Schedule", "ExternalId"],
                                             ["0412 555 130", "Ed", str(int(now + 2 * HOUR)), "b0"]])
    for path in (a, b):
        out = send_sheet(path, Options(text="Hi {{ Name }}", timezone="UTC", now=now), target(server),
                         SendOptions(progress=False, hold=True))
        assert out.ok
    # the user sorts a.results.csv by Name descending in Excel and saves it
    res = tmp_path / "a" / "a.results.csv"
    with open(res, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    rows = [rows[0], rows[2], rows[1], *rows[3:]]
    with open(res, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    clock.advance(2 * HOUR - 600)
    try:
        run = submit_due(target(server), now=clock())
        lines = run.lines
    except Exception as exc:  # noqa: BLE001
        lines = [f"raised {type(exc).__name__}: {exc}"]
    assert "b0" in taken_ids(server), lines
