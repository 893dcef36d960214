"""Run every benchmark and write benchmarks/RESULTS.md with the machine it ran on.

    python benchmarks/run_all.py [--ten-million] [--runs 3]

Each benchmark generates its own seeded data (kept in benchmarks/data/, git-ignored), runs the
real CLI or library entry point in child processes, measures a baseline in the same run, and
prints PASS or MISS for each target (issues #4, #9 and #13). The exit code is 1 when any target
is missed. ``--ten-million`` adds the 10M-row check (slow: ~2 minutes a run, a 2 GB preview).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from pathlib import Path

from common import machine

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("Check: a contact sheet of 100k and 1M rows (and 10M with --ten-million), preview and report written",
     "bench_check.py"),
    ("Workbooks: 200k-row .xlsx in and out", "bench_xlsx.py"),
    ("Send: against the sandbox, journal on", "bench_send.py"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ten-million", action="store_true", help="also check 10M rows (slow)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each check figure (median, min-max)")
    args = parser.parse_args()
    sections, failed = [], False
    for title, script in BENCHMARKS:
        print(f"== {script}", flush=True)
        extra = (["--runs", str(args.runs)] + (["--ten-million"] if args.ten_million else [])
                 if script == "bench_check.py" else [])
        proc = subprocess.run([sys.executable, script, *extra], cwd=HERE, capture_output=True, text=True)
        output = proc.stdout.strip()
        print(output, flush=True)
        if proc.returncode not in (0, 1):
            print(proc.stderr, file=sys.stderr)
            return 2
        failed |= proc.returncode != 0
        sections.append(f"## {title}\n\n`python benchmarks/{script} {' '.join(extra)}`\n\n{output}\n")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"# Benchmark results\n\nMeasured {stamp} on {machine()}.\n"
              "Regenerate with `python benchmarks/run_all.py`; each figure comes from a child process, "
              "and each ratio is against a baseline measured in the same run.\n")
    notes = (HERE / "NOTES.md").read_text(encoding="utf-8") if (HERE / "NOTES.md").exists() else ""
    (HERE / "RESULTS.md").write_text("\n".join([header, *sections, notes]).rstrip() + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
