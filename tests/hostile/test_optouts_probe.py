"""The opt-out file: a row typed in by hand without a Date must never be removed by a START (README)."""
import threading

from batchsms.optouts import Entry, Result, add_optouts
from batchsms.replies import OPT_IN, OPT_OUT

N = "+61412345678"


def test_hand_typed_row_survives_start_after_a_stop(tmp_path):
    path = tmp_path / "optouts.csv"
    path.write_text("Number,Date,Reply\r\n+61412345678,,phoned the clinic\r\n", encoding="utf-8")
    [a] = add_optouts(path, [Entry(N, 1_800_000_000, "STOP", OPT_OUT)])
    assert a.result == Result.ALREADY
    [b] = add_optouts(path, [Entry(N, 1_800_000_100, "START", OPT_IN)])
    assert "phoned the clinic" in path.read_text(encoding="utf-8-sig"), b.result
    assert b.result == Result.KEPT


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "optouts.csv"
    errors = []

    def writer(k):
        try:
            for i in range(25):
                add_optouts(path, [Entry(f"+614120{k:02d}{i:03d}", 1_800_000_000 + i, "STOP", OPT_OUT)])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 1 + 6 * 25
