"""Run every benchmark in benchmarks/ in turn and print a summary (`make bench` runs this).

A benchmark is any ``benchmarks/*.py`` other than this file, ``quick.py`` (``make
bench-quick``, which runs them all scaled down) and ``__init__.py`` (and names starting
with ``_``). Each runs as a script in its own interpreter (a subprocess): benchmark
files are named after the command they measure, and ``import.py`` cannot be imported as a
module (``import`` is a keyword); a fresh process also keeps one benchmark's memory, caches
and crashes out of the next one's figures.

The contract for a benchmark script: it accepts ``--rows N`` (scale; its own default when
absent), ``--repeats N`` and ``--json PATH``, prints its own report, and writes to PATH a
JSON document with ``name`` and ``summary``, a list of ``{metric, value, target, met}``.

    python benchmarks/run.py                 # the full run (1,000,000 rows or entries each;
                                             # growth.py: a 10,000,000-entry log)
    python benchmarks/run.py --only audit    # the access log: audit.py, --rows = log entries
    python benchmarks/run.py --only policy   # policy decisions: policy.py, --rows = calls a round
    python benchmarks/run.py --only api      # API reads over HTTP: api.py, --rows = transactions
    python benchmarks/run.py --only web_import   # upload + job vs pds import, --rows = records
    python benchmarks/run.py --only search   # search vs FTS5: search.py, --rows = records
    python benchmarks/run.py --only growth   # verify at N/100, N/10, N entries; API at 10k, 1M
    python benchmarks/run.py --rows 50000    # a quick run
    python benchmarks/run.py --only import --out results/   # keep the JSON
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"run.py", "quick.py", "__init__.py"}  # quick.py: make bench-quick


def discover() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name not in SKIP and not p.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run every pds benchmark and summarise.")
    ap.add_argument("--rows", type=int, help="scale each benchmark down (or up) to N rows")
    ap.add_argument("--repeats", type=int, help="runs per side (each benchmark's default: 3)")
    ap.add_argument("--only", action="append", help="run only this benchmark (repeatable)")
    ap.add_argument("--out", type=Path, help="keep each benchmark's JSON results in this folder")
    ap.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed, not only on errors"
    )
    args = ap.parse_args(argv)

    benches = discover()
    if args.only:
        benches = [p for p in benches if p.stem in args.only]
        if not benches:
            ap.error(f"no benchmark named {', '.join(args.only)} in {HERE}")
    results: list[tuple[str, float, dict | None]] = []
    with tempfile.TemporaryDirectory(prefix="pds-bench-") as tmp:
        for path in benches:
            folder = args.out or Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            out = folder / f"{path.stem}.json"
            out.unlink(missing_ok=True)  # never report a previous run's figures
            cmd = [sys.executable, str(path), "--json", str(out)]
            if args.rows is not None:
                cmd += ["--rows", str(args.rows)]
            if args.repeats is not None:
                cmd += ["--repeats", str(args.repeats)]
            print(f"==> {path.stem}: {' '.join(cmd[1:])}", flush=True)
            start = time.perf_counter()
            proc = subprocess.run(cmd, check=False)
            took = time.perf_counter() - start
            doc = None
            if proc.returncode == 0 and out.exists():
                doc = json.loads(out.read_text(encoding="utf-8"))
            results.append((path.stem, took, doc))
            print(flush=True)

    failed = missed = 0
    print("Summary")
    for name, took, doc in results:
        if doc is None:
            failed += 1
            print(f"  {name}: FAILED after {took:.0f} s (see its output above)")
            continue
        print(f"  {name} ({took:.0f} s):")
        for item in doc.get("summary", []):
            verdict = {True: "met", False: "NOT met", None: "no target"}[item.get("met")]
            missed += item.get("met") is False
            print(f"    {item['metric']}: {item['value']}  [target {item['target']}: {verdict}]")
    if failed:
        return 2
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
