"""Workbooks: loading a 200,000-row .xlsx, and writing its results .xlsx.

    python benchmarks/bench_xlsx.py [--rows 200000]

Targets (issue #4): load >= 100,000 rows/s; the results .xlsx for it written in <= 8 s.
The baseline in the same run is openpyxl's read-only reader over the same file.
"""

from __future__ import annotations

import argparse
import json
import sys

from common import DATA, Measure, contact_rows, run_child, table, verdict

STEPS = r"""
import json, sys, time
from batchsms.sheet import load
from batchsms.check import CheckOptions, check
from batchsms.results import write_results
from batchsms.template import MessageTemplate
t0 = time.perf_counter()
sheet = load(sys.argv[1])
t1 = time.perf_counter()
report = check(sheet, CheckOptions(template=MessageTemplate("Hi {{ First_Name }}", sheet.header)))
t2 = time.perf_counter()
write_results(sys.argv[2], sheet, report, {})
t3 = time.perf_counter()
print(json.dumps({"rows": len(sheet.rows), "load": t1 - t0, "check": t2 - t1, "write": t3 - t2}))
"""

OPENPYXL = r"""
import sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1], read_only=True, data_only=True)
rows = [["" if v is None else str(v) for v in row] for row in wb.active.iter_rows(values_only=True)]
print(len(rows))
"""


def workbook(n: int):
    """A .xlsx like Excel writes it: numbers as numeric cells (phones typed without spaces included)."""
    import openpyxl

    DATA.mkdir(exist_ok=True)
    path = DATA / f"contacts_{n}.xlsx"
    if not path.exists():
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("Contacts")
        ws.append(["First Name", "Last Name", "Mobile", "Clinic", "ExternalId"])
        for first, last, mobile, clinic, ext in contact_rows(n, seed=7):
            compact = mobile.replace(" ", "")
            ws.append([first, last, int(compact) if compact.isdigit() else mobile, clinic, ext])
        wb.save(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    path = workbook(args.rows)
    out = DATA / f"contacts_{args.rows}.results.xlsx"
    steps = run_child(f"load + check + write results ({args.rows:,} rows)", args.rows,
                      [sys.executable, "-c", STEPS, str(path), str(out)])
    timings = json.loads(steps.output.strip().splitlines()[-1])
    baseline = run_child("openpyxl read-only load (baseline)", args.rows, [sys.executable, "-c", OPENPYXL, str(path)])
    load = Measure("batchsms load (python-calamine)", args.rows, timings["load"], steps.peak_rss_mb, 0)
    write = Measure("results .xlsx write", args.rows, timings["write"], steps.peak_rss_mb, 0)
    print(table([load, write, steps, baseline]))
    print()
    checks = [
        (f"load >= 100,000 rows/s: {load.rows_per_s:,.0f} rows/s "
         f"({baseline.seconds / load.seconds:.1f}x openpyxl)", load.rows_per_s >= 100_000),
        (f"results .xlsx in <= 8 s: {write.seconds:.1f} s", write.seconds <= 8),
    ]
    for text, ok in checks:
        print(f"- {verdict(ok)} {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
