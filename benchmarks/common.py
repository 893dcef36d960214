"""Shared pieces of the benchmarks: seeded contact data, timing of child processes, Markdown tables.

Every figure comes from a child process (wall time and its own peak RSS from
``wait4``), so one benchmark's memory never inflates another's.
"""

from __future__ import annotations

import csv
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
TEMPLATE = "Hi {{ First_Name }}, your {{ Clinic }} appointment is confirmed. Reply STOP to opt out."
HEADER = ["First Name", "Last Name", "Mobile", "Clinic", "ExternalId"]

FIRST = ["Olivia", "Jack", "Charlotte", "William", "Amelia", "Noah", "Isla", "Oliver", "Mia", "Leo", "Ava",
         "Henry", "Grace", "Lucas", "Chloe", "Thomas", "Zoe", "James", "Ruby", "Ethan"]
UCS2_FIRST = ["Zoë 🌸", "Łukasz", "Nguyễn", "José’s", "Chloé ❤"]
LAST = ["Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin", "White"]
CLINICS = ["Bondi Dental", "Parramatta Dental", "Newtown Dental", "Manly Dental"]


def contact_rows(n: int, seed: int = 42, *, invalid: float = 0.10, ucs2: float = 0.20, dupes: float = 0.02):
    """n realistic rows: mixed national/international formats, ~10% invalid, ~20% UCS-2, some duplicates.

    A duplicate repeats one of the last 1,000 numbers (as a re-exported list does), so every size of
    sheet has the same share of duplicates, repeats and lease-limit errors: rows/s compare across sizes.
    """
    rng = random.Random(seed)
    recent: list[str] = []
    slot = 0
    fresh = 0  # the valid numbers made so far: each new one is another (see below)
    for i in range(n):
        r = rng.random()
        if r < dupes and recent:
            mobile = rng.choice(recent)
        elif r < dupes + invalid:
            mobile = rng.choice([f"0412 345 6{rng.randint(0, 9)}", f"12345{rng.randint(0, 99)}",
                                 f"04{rng.randint(0, 99999999):08d}X", "", f"+61 2{rng.randint(0, 999):03d}"])
        else:
            # 4[0-3] and 7 digits, never drawn twice: an affine map of [0, 40M) onto itself (7,654,321
            # shares no factor with 40M = 2^9 * 5^7). Drawn at random, numbers collided as a sheet grew
            # (the birthday problem): 11% of 10M rows were duplicates against 3% of 1M, so the sizes
            # did not measure the same work (v2 of the data, issue #13).
            number = (fresh * 7_654_321 + 1_234_567) % 40_000_000
            fresh += 1
            digits = f"4{number // 10_000_000}{number % 10_000_000:07d}"
            form = rng.randrange(4)
            mobile = (f"0{digits[:3]} {digits[3:6]} {digits[6:]}", f"+61 {digits[:3]} {digits[3:6]} {digits[6:]}",
                      f"61{digits}", f"0{digits}")[form]
            if len(recent) < 1000:
                recent.append(mobile)
            else:  # the last 1,000 numbers
                recent[slot] = mobile
                slot = (slot + 1) % 1000
        first = rng.choice(UCS2_FIRST) if rng.random() < ucs2 else rng.choice(FIRST)
        yield [first, rng.choice(LAST), mobile, rng.choice(CLINICS), f"c{i}"]


def write_contacts_csv(n: int, seed: int = 42) -> Path:
    """The CSV for n rows, made once and kept in benchmarks/data/."""
    DATA.mkdir(exist_ok=True)
    # v2: duplicates among the last 1,000 numbers; v3: no number drawn twice (issue #13)
    path = DATA / f"contacts_{n}_{seed}_v3.csv"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(HEADER)
            writer.writerows(contact_rows(n, seed))
        tmp.rename(path)
    return path


def template_file() -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / "bench_template.txt"
    path.write_text(TEMPLATE + "\n", encoding="utf-8")
    return path


@dataclass
class Measure:
    name: str
    rows: int
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run_child(name: str, rows: int, argv: list[str], env: dict | None = None, ok=(0, 1)) -> Measure:
    """Run argv as a child; wall time and the child's own peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, cwd=ROOT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        sys.stderr.write(out)
        raise SystemExit(f"{name}: exit code {proc.returncode}")
    return Measure(name, rows, seconds, usage.ru_maxrss / 1024, proc.returncode, out)


def compile_bytecode() -> None:
    """Write batchsms's bytecode (``__pycache__``), as installing the package does (pip compiles it).

    This machine sets PYTHONDONTWRITEBYTECODE, so a checkout's modules were compiled again by every
    run: ~0.08 s of start-up (a 10-row check 0.31 -> 0.23 s) that an installed package never pays.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "batchsms")], check=True)


def python_child(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def table(measures: list[Measure], extra: dict[str, list[str]] | None = None) -> str:
    extra = extra or {}
    head = ["benchmark", "rows", "wall s", "rows/s", "peak RSS MB", *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, m in enumerate(measures):
        cells = [m.name, f"{m.rows:,}", f"{m.seconds:.2f}", f"{m.rows_per_s:,.0f}", f"{m.peak_rss_mb:,.0f}"]
        cells += [values[i] for values in extra.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
