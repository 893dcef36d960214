"""`batchsms send` against the sandbox: messages/s against a bare requests loop, and with latency.

    python benchmarks/bench_send.py [--messages 5000] [--latency-messages 10000]

Targets (issue #4), single-message endpoint, journal on:
1. no added latency: >= 70% of the messages/s of a bare loop of requests.Session.post over the
   same rows in the same run;
2. 50 ms added latency and --concurrency 64: >= 90% of the ideal 64 / 0.05 s = 1,280 msg/s.
The sandbox runs in its own process; its own ceiling is measured with a raw asyncio load generator
so that it is known not to be the bottleneck.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import DATA, ROOT, Measure, run_child, table, verdict

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
    for leftover in DATA.glob(f"{results.name}*"):
        leftover.unlink()
    env = {"BATCHSMS_BASE_URL": box.url, "BATCHSMS_ACCOUNT_SID": ACCOUNT, "BATCHSMS_AUTH_TOKEN": TOKEN,
           "BATCHSMS_PROPERTY_SID": "PS1"}
    argv = [sys.executable, "-m", "batchsms", "send", str(path), "--text", "Hi {{ Name }}", "--from", "CityDental",
            "--yes", "--json", "--results", str(results), *extra]
    measure = run_child(f"batchsms send {n:,} {' '.join(extra)}".strip(), n, argv, env=env)
    info = json.loads(measure.output.strip().splitlines()[-1])
    assert info["sent"] == n, info
    return measure, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency-messages", type=int, default=10000)
    args = parser.parse_args()
    n = args.messages
    rows, extra = [], {"msg/s (sending only)": []}

    box = SandboxProcess()
    try:
        load = run_child("sandbox ceiling (asyncio load, 32 connections, 3 s)", 0,
                         [sys.executable, "-c", LOAD, "127.0.0.1", str(box.port), ACCOUNT, TOKEN, "3", "32"])
        info = json.loads(load.output)
        ceiling = info["requests"] / info["seconds"]
        load.rows = info["requests"]
        rows.append(load)
        extra["msg/s (sending only)"].append(f"{ceiling:,.0f}")
        bare = run_child(f"bare requests.Session.post loop {n:,}", n,
                         [sys.executable, "-c", BARE_LOOP, f"{box.url}/v2/Properties/PS1/Messages", ACCOUNT, TOKEN,
                          str(n)])
        bare_rate = n / json.loads(bare.output)["seconds"]
        rows.append(bare)
        extra["msg/s (sending only)"].append(f"{bare_rate:,.0f}")
        ours, ours_info = send(box, n)
        ours_rate = n / ours_info["seconds"]
        rows.append(ours)
        extra["msg/s (sending only)"].append(f"{ours_rate:,.0f}")
        summary = box.stop()
    finally:
        if box.proc.poll() is None:
            box.proc.kill()

    slow = SandboxProcess(latency_ms=50)
    try:
        m = args.latency_messages
        lat, lat_info = send(slow, m, "--concurrency", "64")
        lat_rate = m / lat_info["seconds"]
        lat.name += " (sandbox +50 ms)"
        rows.append(lat)
        extra["msg/s (sending only)"].append(f"{lat_rate:,.0f}")
        slow.stop()
    finally:
        if slow.proc.poll() is None:
            slow.proc.kill()

    print(table(rows, extra))
    print(f"\n{summary}\n")
    checks = [
        (f"sandbox ceiling above the client: {ceiling:,.0f} req/s vs bare loop {bare_rate:,.0f}", ceiling > bare_rate),
        (f">= 70% of the bare loop: {ours_rate:,.0f} / {bare_rate:,.0f} msg/s = {ours_rate / bare_rate:.0%}",
         ours_rate >= 0.7 * bare_rate),
        (f">= 90% of 1,280 msg/s with 50 ms latency and --concurrency 64: {lat_rate:,.0f} msg/s "
         f"= {lat_rate / 1280:.0%}", lat_rate >= 0.9 * 1280),
    ]
    for text, ok in checks:
        print(f"- {verdict(ok)} {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
