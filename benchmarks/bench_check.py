"""`batchsms check` on generated CSVs, preview and report written: time, rows/s, peak RSS, scaling, a baseline.

    python benchmarks/bench_check.py [--sizes 100000,1000000] [--ten-million] [--runs 3] [--naive-size 100000]

Targets (issue #13), each figure the median of ``--runs`` runs (min-max shown):
- 1M rows checked with the preview and the report written in <= 4 s, in <= 1 GB peak RSS, every run;
- >= 10x the rows/s of the naive baseline measured in the same run (pandas iterrows + phonenumbers
  parse/is_valid/format + a Jinja2 render per row, at ``--naive-size`` rows: its rows/s is flat);
- rows/s (after the start-up a 10-row sheet costs) flat within 20% from 100k rows to the largest size;
- with ``--ten-million``: 10M rows in <= 2 GB peak RSS (a sheet that big is read in chunks).
"""

from __future__ import annotations

import argparse
import statistics
import sys

from common import Measure, compile_bytecode, run_child, table, template_file, verdict, write_contacts_csv

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
    """The real CLI on n rows, writing the report and (by default) the preview, as `batchsms check` does."""
    path = write_contacts_csv(n)
    argv = [sys.executable, "-m", "batchsms", "check", str(path), "--template", str(template_file()),
            "--report", str(path.with_suffix(".report.csv")), "--json"]
    argv += ["--preview", str(path.with_suffix(".preview.csv"))] if preview else ["--no-preview"]
    return run_child(f"batchsms check {n:,}{'' if preview else ' --no-preview'}", n, argv)


def repeated(runs: int, measure) -> list[Measure]:
    return [measure() for _ in range(runs)]


def median(measures: list[Measure]) -> Measure:
    """The run of median wall time (its own RSS), named with the spread of all runs."""
    ordered = sorted(measures, key=lambda m: m.seconds)
    middle = ordered[len(ordered) // 2]
    middle.spread = f"{ordered[0].seconds:.2f}-{ordered[-1].seconds:.2f}"  # type: ignore[attr-defined]
    middle.rss_spread = (f"{min(m.peak_rss_mb for m in measures):,.0f}-"  # type: ignore[attr-defined]
                         f"{max(m.peak_rss_mb for m in measures):,.0f}")
    return middle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--ten-million", action="store_true", help="also 10,000,000 rows (~2 min a run)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive-size", type=int, default=100_000)
    args = parser.parse_args()
    compile_bytecode()
    sizes = [int(s) for s in args.sizes.split(",")] + ([10_000_000] if args.ten_million else [])
    runs = max(1, args.runs)
    startup = median(repeated(runs, lambda: check_cli(10)))  # what any run pays before the first row
    by_size = {n: repeated(runs, lambda n=n: check_cli(n)) for n in sizes}
    naive_path = write_contacts_csv(args.naive_size)
    naive_runs = repeated(runs, lambda: run_child(f"naive baseline {args.naive_size:,}", args.naive_size,
                                                  [sys.executable, "-c", NAIVE, str(naive_path), str(template_file())]))
    naive = median(naive_runs)
    headline = 1_000_000 if 1_000_000 in by_size else sizes[-1]
    bare = check_cli(headline, preview=False)
    bare.spread = f"{bare.seconds:.2f}"  # type: ignore[attr-defined]
    bare.rss_spread = f"{bare.peak_rss_mb:,.0f}"  # type: ignore[attr-defined]
    medians = [median(by_size[n]) for n in sizes]
    rows = [startup] + medians + [naive, bare]
    marginal = ["-"] + [f"{m.rows / max(1e-9, m.seconds - startup.seconds):,.0f}" for m in medians] + ["-", "-"]
    print(table(rows, {"runs: wall s (min-max)": [m.spread for m in rows],  # type: ignore[attr-defined]
                       "runs: peak RSS MB": [m.rss_spread for m in rows],  # type: ignore[attr-defined]
                       "rows/s after start-up": marginal}))
    print(f"\nMedians of {runs} runs each, every run a child process on this machine. The naive baseline "
          f"(per-row pandas iterrows + phonenumbers + Jinja2) ran {args.naive_size:,} rows in the same run; its "
          "rows/s does not depend on the size.")
    big = dict(zip(sizes, medians, strict=True))
    one = by_size[headline]
    checks = []
    if headline == 1_000_000:
        worst = max(m.seconds for m in one)
        checks += [(f"1M rows with preview + report in <= 4 s, every run: {min(m.seconds for m in one):.2f}-"
                    f"{worst:.2f} s over {runs} runs", worst <= 4),
                   (f"1M rows in <= 1 GB peak RSS: {max(m.peak_rss_mb for m in one):,.0f} MB",
                    max(m.peak_rss_mb for m in one) <= 1024)]
    speedup = big[headline].rows_per_s / naive.rows_per_s
    slowest = min(m.rows_per_s for m in one) / max(m.rows_per_s for m in naive_runs)
    checks.append((f">= 10x the naive baseline: {speedup:.1f}x ({headline:,} rows, medians; {slowest:.1f}x "
                   "slowest against fastest)", slowest >= 10))
    rates = {n: n / max(1e-9, big[n].seconds - startup.seconds) for n in sizes if n >= 100_000}
    spread = (max(rates.values()) - min(rates.values())) / max(rates.values()) if rates else 0.0
    checks.append((f"rows/s (after the {startup.seconds:.2f} s start-up) flat within 20% over "
                   f"{', '.join(f'{n:,}' for n in rates)}: spread {spread:.0%} "
                   f"({', '.join(f'{r:,.0f}' for r in rates.values())})", spread <= 0.20))
    steps = [n for n in sizes if n >= 100_000]
    if len(steps) > 1:  # reported, not a target: the rows each step adds over the time it adds
        added = [(b - a) / max(1e-9, big[b].seconds - big[a].seconds) for a, b in zip(steps, steps[1:], strict=False)]
        print("Rows/s each step of size adds (the rows it adds over the time it adds, medians): "
              + ", ".join(f"{a:,} -> {b:,}: {r:,.0f}" for a, b, r in zip(steps, steps[1:], added, strict=False))
              + f" (spread {(max(added) - min(added)) / max(added):.0%}).")
    if 10_000_000 in by_size:
        ten = by_size[10_000_000]
        checks.append((f"10M rows in <= 2 GB peak RSS, every run: {max(m.peak_rss_mb for m in ten):,.0f} MB "
                       f"(median {statistics.median(m.seconds for m in ten):.1f} s)",
                       max(m.peak_rss_mb for m in ten) <= 2048))
    print()
    for text, ok in checks:
        print(f"- {verdict(ok)} {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
