"""`batchsms check` on generated CSVs: wall time, rows/s, peak RSS, scaling, and a naive baseline.

    python benchmarks/bench_check.py [--sizes 10000,100000,1000000] [--naive-size 100000]

Targets (issue #4): 1M rows in <= 10 s and <= 1.5 GB peak RSS; >= 3x the rows/s of the naive
baseline (pandas iterrows + phonenumbers parse/is_valid/format + a Jinja2 render per row) at
the same size; rows/s constant within 20% from 10k to 1M.
"""

from __future__ import annotations

import argparse
import sys

from common import Measure, run_child, table, template_file, verdict, write_contacts_csv

NAIVE = r"""
import sys, jinja2, pandas as pd, phonenumbers
from jinja2.sandbox import SandboxedEnvironment
path, template = sys.argv[1], open(sys.argv[2], encoding="utf-8").read()
df = pd.read_csv(path, dtype=str, keep_default_na=False)
tpl = SandboxedEnvironment(undefined=jinja2.StrictUndefined).from_string(template)
out = []
for _, row in df.iterrows():
    try:
        number = phonenumbers.parse(row["Mobile"], "AU")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) \
            if phonenumbers.is_valid_number(number) else None
    except phonenumbers.NumberParseException:
        e164 = None
    text = tpl.render({k.replace(" ", "_"): v for k, v in row.items()})
    out.append((e164, text))
print(len(out))
"""


def check_cli(n: int, preview: bool = True) -> Measure:
    """The real CLI on n rows; by default it also writes the preview (as `batchsms check` does)."""
    path = write_contacts_csv(n)
    argv = [sys.executable, "-m", "batchsms", "check", str(path), "--template", str(template_file()),
            "--report", str(path.with_suffix(".report.csv")), "--json"]
    argv += ["--preview", str(path.with_suffix(".preview.csv"))] if preview else ["--no-preview"]
    return run_child(f"batchsms check {n:,}{'' if preview else ' --no-preview'}", n, argv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--naive-size", type=int, default=100_000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    startup = check_cli(10)  # a 10-row sheet: what any run pays before the first row (imports, start-up)
    measures = [check_cli(n) for n in sizes]
    naive_path = write_contacts_csv(args.naive_size)
    naive = run_child(f"naive baseline {args.naive_size:,}", args.naive_size,
                      [sys.executable, "-c", NAIVE, str(naive_path), str(template_file())])
    same = next((m for m in measures if m.rows == args.naive_size), None) or check_cli(args.naive_size)
    marginal = [f"{m.rows / max(1e-9, m.seconds - startup.seconds):,.0f}" for m in measures + [naive]]
    marginal[-1] = "-"
    bare = check_cli(biggest_size := sizes[-1], preview=False)
    print(table([startup] + measures + [naive, bare], {"rows/s after start-up": ["-"] + marginal + ["-"]}))
    print(f"\nThe preview (CSV) at {biggest_size:,} rows costs {measures[-1].seconds - bare.seconds:.1f} s: "
          f"{bare.seconds:.1f} s without it, {measures[-1].seconds:.1f} s with it "
          "(no target here: issue #13 sets one).")
    print()
    biggest = measures[-1]
    rates = [m.rows / max(1e-9, m.seconds - startup.seconds) for m in measures]
    spread = (max(rates) - min(rates)) / max(rates) if rates else 0.0
    speedup = same.rows_per_s / naive.rows_per_s
    checks = []
    if biggest.rows >= 1_000_000:
        checks += [(f"1M rows in <= 10 s: {biggest.seconds:.1f} s", biggest.seconds <= 10),
                   (f"1M rows in <= 1.5 GB: {biggest.peak_rss_mb:,.0f} MB", biggest.peak_rss_mb <= 1536)]
    checks += [(f">= 3x naive at {args.naive_size:,} rows: {speedup:.1f}x", speedup >= 3),
               (f"rows/s (after the {startup.seconds:.2f} s start-up) constant within 20% over "
                f"{', '.join(f'{m.rows:,}' for m in measures)}: spread {spread:.0%}", spread <= 0.20)]
    for text, ok in checks:
        print(f"- {verdict(ok)} {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
