"""`batchsms send` against the sandbox: messages/s against baselines of the same run, with and without latency.

    python benchmarks/bench_send.py [--runs 3] [--messages 5000] [--latency-messages 10000]
                                    [--batch-messages 60000]

Targets, journal on, each in every run:
1. single messages (issue #4), no added latency: >= 70% of the messages/s of a bare loop of
   requests.Session.post over the same rows in the same run;
2. single messages, 50 ms added latency and --concurrency 64: >= 90% of the ideal 64 / 0.05 s = 1,280 msg/s;
3. BatchMessages (issue #13), --batch-size 100, no added latency: >= 10,000 msg/s;
4. BatchMessages, 50 ms added latency, --concurrency 8 --batch-size 100: >= 90% of the ideal
   8 x 100 / 0.05 s = 16,000 msg/s.
The sandbox runs in its own process. Its own ceiling is measured in the same run with a raw asyncio
load generator (single sends, and batches of 100 on 8 connections), and batchsms's own client is
measured without the journal (8 threads posting batches of 100 through ``Client.send_batch``), so
the cost of the journal and of the rest of ``send`` shows as the gap between the two.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import DATA, ROOT, Measure, compile_bytecode, run_child, table, verdict

TOKEN = "bench-token"
ACCOUNT = "ACBENCH"

BARE_LOOP = r"""
import json, sys, time, requests
url, account, token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
session = requests.Session()
session.auth = (account, token)
bodies = [json.dumps({"From": "CityDental", "To": f"+6141{i:07d}", "Text": f"Hi {i}"}) for i in range(n)]
t = time.perf_counter()
for body in bodies:
    r = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
print(json.dumps({"seconds": time.perf_counter() - t}))
"""

LOAD = r"""
import asyncio, base64, json, sys, time
host, port, account, token, seconds, conns = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], \
    float(sys.argv[5]), int(sys.argv[6])
auth = base64.b64encode(f"{account}:{token}".encode()).decode()
body = json.dumps({"From": "CityDental", "To": "+61412345678", "Text": "load"}).encode()
req = (f"POST /v2/Properties/PS1/Messages HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
done = 0
async def worker(deadline):
    global done
    reader, writer = await asyncio.open_connection(host, port)
    while time.perf_counter() < deadline:
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        done += 1
    writer.close()
async def main():
    t = time.perf_counter()
    await asyncio.gather(*[worker(t + seconds) for _ in range(conns)])
    print(json.dumps({"requests": done, "seconds": time.perf_counter() - t}))
asyncio.run(main())
"""


LOAD_BATCH = r"""
import asyncio, base64, json, sys, time
host, port, account, token, seconds, conns, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], \
    float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
auth = base64.b64encode(f"{account}:{token}".encode()).decode()
def request(k):
    body = json.dumps({"Messages": [{"From": "CityDental", "To": f"+614{k:02d}{i:06d}", "Text": f"Hi Name{i}"}
                                    for i in range(size)]}).encode()
    return (f"POST /v2/Properties/PS1/BatchMessages HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
done = 0
async def worker(k, deadline):
    global done
    req = request(k)
    reader, writer = await asyncio.open_connection(host, port)
    while time.perf_counter() < deadline:
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        done += size
    writer.close()
async def main():
    t = time.perf_counter()
    await asyncio.gather(*[worker(k, t + seconds) for k in range(conns)])
    print(json.dumps({"messages": done, "seconds": time.perf_counter() - t}))
asyncio.run(main())
"""

CLIENT_BATCHES = r"""
import json, sys, threading, time
from batchsms.client import Client, Decision
url, account, token, n, size, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), \
    int(sys.argv[5]), int(sys.argv[6])
client = Client(url, account, token, "PS1")
bodies = [{"From": "CityDental", "To": f"+6141{i:07d}", "Text": f"Hi Name{i}", "DeliveryReceipt": True}
          for i in range(n)]
batches = [bodies[i:i + size] for i in range(0, n, size)]
lock = threading.Lock()
def work():
    while True:
        with lock:
            if not batches:
                return
            batch = batches.pop()
        outcome = client.send_batch(batch)
        assert [i.decision for i in outcome.items] == [Decision.ACCEPTED] * len(batch), outcome.error_text
workers = [threading.Thread(target=work) for _ in range(threads)]
t = time.perf_counter()
for w in workers:
    w.start()
for w in workers:
    w.join()
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SandboxProcess:
    def __init__(self, latency_ms: float = 0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "batchsms", "sandbox", "--port", str(self.port), "--account-sid", ACCOUNT,
             "--auth-token", TOKEN, "--latency", str(latency_ms)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the sandbox did not start")

    def stop(self) -> str:
        self.proc.send_signal(2)
        out, _ = self.proc.communicate(timeout=20)
        return out.strip().splitlines()[-1]


def sheet(n: int) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"send_{n}.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Mobile", "Name"])
        writer.writerows([f"+6141{i:07d}", f"Name{i}"] for i in range(n))
    return path


def send(box: SandboxProcess, n: int, *extra: str) -> tuple[Measure, dict]:
    path = sheet(n)
    results = path.with_suffix(".results.csv")
    for leftover in DATA.glob("send_*.results.csv*"):  # every send's journal: the sheets share their first rows
        leftover.unlink()
    env = {"BATCHSMS_BASE_URL": box.url, "BATCHSMS_ACCOUNT_SID": ACCOUNT, "BATCHSMS_AUTH_TOKEN": TOKEN,
           "BATCHSMS_PROPERTY_SID": "PS1"}
    argv = [sys.executable, "-m", "batchsms", "send", str(path), "--text", "Hi {{ Name }}", "--from", "CityDental",
            "--yes", "--json", "--results", str(results), *extra]
    measure = run_child(f"batchsms send {n:,} {' '.join(extra)}".strip(), n, argv, env=env)
    info = json.loads(measure.output.strip().splitlines()[-1])
    assert info["sent"] == n, info
    return measure, info


def ceiling(box: SandboxProcess, name: str, code: str, *args: str) -> tuple[Measure, float]:
    """The sandbox's own ceiling under a raw asyncio load generator, in requests or messages a second."""
    measure = run_child(name, 0, [sys.executable, "-c", code, "127.0.0.1", str(box.port), ACCOUNT, TOKEN, *args])
    info = json.loads(measure.output)
    count = info.get("messages", info.get("requests"))
    measure.rows = count
    return measure, count / info["seconds"]


def client_batches(box: SandboxProcess, n: int, threads: int) -> tuple[Measure, float]:
    """batchsms's client without the journal: ``threads`` threads posting batches of 100."""
    measure = run_child(f"Client.send_batch, no journal, {threads} threads, {n:,}", n,
                        [sys.executable, "-c", CLIENT_BATCHES, box.url, ACCOUNT, TOKEN, str(n), "100", str(threads)])
    return measure, n / json.loads(measure.output)["seconds"]


def one_run(args: argparse.Namespace, rows: list[Measure], rates: list[str]) -> tuple[dict[str, float], str]:
    """Every figure once: the no-latency sandbox, then the 50 ms one. Returns msg/s by figure."""
    n, b = args.messages, args.batch_messages
    figures: dict[str, float] = {}

    def keep(key: str, measure: Measure, rate: float) -> None:
        figures[key] = rate
        rows.append(measure)
        rates.append(f"{rate:,.0f}")

    box = SandboxProcess()
    try:
        keep("ceiling", *ceiling(box, "sandbox ceiling, single sends (asyncio, 32 connections, 3 s)", LOAD, "3", "32"))
        bare = run_child(f"bare requests.Session.post loop {n:,}", n,
                         [sys.executable, "-c", BARE_LOOP, f"{box.url}/v2/Properties/PS1/Messages", ACCOUNT, TOKEN,
                          str(n)])
        keep("bare", bare, n / json.loads(bare.output)["seconds"])
        ours, info = send(box, n)
        keep("single", ours, n / info["seconds"])
        keep("batch ceiling", *ceiling(box, "sandbox ceiling, batches of 100 (asyncio, 8 connections, 3 s)",
                                       LOAD_BATCH, "3", "8", "100"))
        keep("batch client", *client_batches(box, b, 8))
        ours, info = send(box, b, "--batch-size", "100")
        keep("batch", ours, b / info["seconds"])
        summary = box.stop()
    finally:
        if box.proc.poll() is None:
            box.proc.kill()

    slow = SandboxProcess(latency_ms=50)
    try:
        m = args.latency_messages
        lat, info = send(slow, m, "--concurrency", "64")
        lat.name += " (sandbox +50 ms)"
        keep("single 50ms", lat, m / info["seconds"])
        keep("batch ceiling 50ms", *ceiling(slow, "sandbox ceiling +50 ms, batches of 100 (asyncio, 8 connections, "
                                            "3 s)", LOAD_BATCH, "3", "8", "100"))
        measure, rate = client_batches(slow, b, 8)
        measure.name += " (sandbox +50 ms)"
        keep("batch client 50ms", measure, rate)
        lat, info = send(slow, b, "--concurrency", "8", "--batch-size", "100")
        lat.name += " (sandbox +50 ms)"
        keep("batch 50ms", lat, b / info["seconds"])
        slow.stop()
    finally:
        if slow.proc.poll() is None:
            slow.proc.kill()
    return figures, summary


def spread(values: list[float], ideal: float | None = None) -> str:
    """``14,210 (13,980-14,330)``, or with ``ideal`` the share of it: ``89% (87-90%)``."""
    if ideal is not None:
        shares = sorted(v / ideal for v in values)
        return f"{statistics.median(shares):.1%} ({shares[0]:.1%}-{shares[-1]:.1%})"
    ordered = sorted(values)
    return f"{statistics.median(ordered):,.0f} ({ordered[0]:,.0f}-{ordered[-1]:,.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of every figure (targets must pass in each)")
    parser.add_argument("--messages", type=int, default=5000, help="rows for the single-send figures")
    parser.add_argument("--latency-messages", type=int, default=10000, help="rows for single sends at +50 ms")
    parser.add_argument("--batch-messages", type=int, default=60000, help="rows for every batch figure")
    args = parser.parse_args()
    compile_bytecode()
    runs: list[dict[str, float]] = []
    rows: list[Measure] = []
    rates: list[str] = []
    for number in range(1, args.runs + 1):
        start = len(rows)
        figures, summary = one_run(args, rows, rates)
        for measure in rows[start:]:
            measure.name = f"run {number}: {measure.name}"
        runs.append(figures)

    def each(key: str) -> list[float]:
        return [figures[key] for figures in runs]

    print(table(rows, {"msg/s (sending only)": rates}))
    print(f"\n{summary} (last run, no latency)\n")
    print(f"Over {args.runs} runs, median (min-max) msg/s:\n")
    print("| figure | no added latency | sandbox +50 ms |\n|---|---|---|")
    print(f"| sandbox ceiling, single sends / batches of 100 on 8 connections | {spread(each('ceiling'))} req/s; "
          f"{spread(each('batch ceiling'))} | {spread(each('batch ceiling 50ms'))} "
          f"= {spread(each('batch ceiling 50ms'), 16000)} of 16,000 |")
    print(f"| Client.send_batch, no journal, 8 threads | {spread(each('batch client'))} | "
          f"{spread(each('batch client 50ms'))} = {spread(each('batch client 50ms'), 16000)} |")
    print(f"| batchsms send --batch-size 100 (journal on) | {spread(each('batch'))} | "
          f"{spread(each('batch 50ms'))} = {spread(each('batch 50ms'), 16000)} |")
    print(f"| batchsms send, single sends (journal on) | {spread(each('single'))} (bare loop "
          f"{spread(each('bare'))}) | {spread(each('single 50ms'))} (--concurrency 64) |\n")
    journal_cost = [1 - r["batch 50ms"] / r["batch client 50ms"] for r in runs]
    print(f"At +50 ms the journal and the rest of send cost {statistics.median(journal_cost):.1%} "
          f"({min(journal_cost):.1%}-{max(journal_cost):.1%}) of the journal-free client's rate; "
          f"the sandbox's own ceiling is {spread(each('batch ceiling 50ms'), 16000)} of the ideal.\n")
    checks = [
        ("sandbox ceiling above the client, single sends: "
         + ", ".join(f"{r['ceiling']:,.0f} vs {r['bare']:,.0f}" for r in runs),
         all(r["ceiling"] > r["bare"] for r in runs)),
        (">= 70% of the bare loop, single sends: " + ", ".join(f"{r['single'] / r['bare']:.0%}" for r in runs),
         all(r["single"] >= 0.7 * r["bare"] for r in runs)),
        (">= 90% of 1,280 msg/s with 50 ms latency and --concurrency 64, single sends: "
         + ", ".join(f"{r['single 50ms'] / 1280:.0%}" for r in runs),
         all(r["single 50ms"] >= 0.9 * 1280 for r in runs)),
        (">= 10,000 msg/s with --batch-size 100, journal on: " + ", ".join(f"{r['batch']:,.0f}" for r in runs),
         all(r["batch"] >= 10000 for r in runs)),
        (">= 90% of 16,000 msg/s with 50 ms latency, --concurrency 8 --batch-size 100: "
         + ", ".join(f"{r['batch 50ms']:,.0f} ({r['batch 50ms'] / 16000:.1%})" for r in runs),
         all(r["batch 50ms"] >= 0.9 * 16000 for r in runs)),
    ]
    for text, ok in checks:
        print(f"- {verdict(ok)} {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
