"""A scaled-down run of every benchmark, its ratios beside the last full run's (`make bench-quick`).

Each benchmark in benchmarks/ runs as ``make bench`` runs it (a script in its own
interpreter, ``--json`` for its results), with the smaller sizes, rounds and durations in
``PLAN``, so the whole run takes about two minutes on a 2-core machine. Every benchmark
reports ratios against a baseline measured in the same run; ``FIGURES`` says which ratio
of which benchmark is compared, how to read it from the benchmark's JSON, and whether
higher or lower is better. docs/benchmarks.md holds the last full run's figures, each
marked on its line with an HTML comment that names it::

    | 51%, 47% <!-- bench: import.vs_csv_insert_all = 0.49 (commit 61db9a4) --> |

A figure more than ``DROP`` (20%) slower than the documented one is flagged, e.g.
``SLOWER by 27%: import.vs_csv_insert_all 0.36 vs 0.49 in docs (commit 61db9a4)``.
The scaled-down ratios are noisier than the full runs': this compares, it does not
certify. It never fails a build: the exit code is 0 unless this script itself crashed,
whatever the figures and whether a benchmark failed.

    python benchmarks/quick.py                 # every benchmark
    python benchmarks/quick.py --only policy   # one (repeatable)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"
NOT_BENCHMARKS = {"run.py", "quick.py", "__init__.py"}
DROP = 0.20  # a figure this much slower than the documented one is flagged
TIMEOUT_S = 90.0  # one benchmark's limit: past it, it is stopped and reported

# What each benchmark runs with here (the full run's sizes are in each script's --help).
PLAN: dict[str, list[str]] = {
    "api": [
        "--rows", "200", "--repeats", "1", "--duration", "2", "--warmup", "1",
        "--settle", "0.2", "--profile-requests", "50", "--spy-seconds", "0", "--no-peer",
    ],
    "audit": [
        "--rows", "10000", "--batch", "5000", "--single", "100", "--proofs", "100",
        "--repeats", "2",
    ],
    "connectors": ["--rows", "3000", "--repeats", "1", "--health-mb", "1"],
    "group_commit": ["--rows", "500", "--repeats", "2", "--threads", "4"],
    "growth": [
        "--part", "verify", "--sizes", "20000,200000", "--repeats", "2", "--check", "1000",
    ],
    "import": [
        "--rows", "3000", "--repeats", "2", "--memory-factors=", "--profile-rows", "1000",
    ],
    "policy": ["--rows", "5000", "--repeats", "3"],
    "search": ["--rows", "10000", "--repeats", "3", "--fill-rows", "1000"],
    "web_import": ["--rows", "2000", "--repeats", "1", "--workers", "2"],
}  # fmt: skip

# Why a part of a benchmark is left out here, printed with its results.
SKIPPED: dict[str, str] = {
    "api": "the Community Solid Server peer is skipped (--no-peer): its npm install alone "
    "takes minutes",
}

# A benchmark this script has no plan for runs with these (and its figures are not compared).
FALLBACK = ["--rows", "1000", "--repeats", "1"]


@dataclass(frozen=True)
class Figure:
    """One compared ratio: its benchmark, what it is, which way is better, how to read it."""

    bench: str
    what: str
    higher_is_better: bool
    read: Callable[[dict[str, Any]], float]


def _median_pairs(doc: dict[str, Any], top: str, bottom: str) -> float:
    """Median over the connectors benchmark's pairs of ``top`` wall time / ``bottom``'s."""
    return statistics.median(p[top]["wall_s"] / p[bottom]["wall_s"] for p in doc["pairs"])


def _import(doc: dict[str, Any], baseline: str) -> float:
    """pds import's rate net of its fixed cost (start + Argon2id unlock, ``pds status``)
    over a baseline rate. A full run's 1,000,000 rows make the fixed cost about 1% of the
    import, so its plain ratio is the same figure; a few thousand rows would make it most."""
    net = doc["pds"]["import_rows_per_s_net_of_fixed"]["median"]
    return net / doc["baseline"][baseline]["median"]


def _search(doc: dict[str, Any]) -> float:
    q = doc["queries"]["two words"]
    return q["pds_s"]["median"] / q["fts_s"]["median"]


def _group_commit(doc: dict[str, Any]) -> float:
    per = doc["per_threads"]
    return per["4"]["per_s"] / per["1"]["per_s"]


FIGURES: dict[str, Figure] = {
    "import.vs_csv_insert_all": Figure(
        "import",
        "pds import rate net of its fixed cost / csv + insert_all rate",
        True,
        lambda d: _import(d, "parse_plus_insert_rows_per_s"),
    ),
    "connectors.bank_vs_midata": Figure(
        "connectors",
        "bank CSV import rate / midata import rate",
        True,
        lambda d: _median_pairs(d, "midata", "bank_csv"),
    ),
    "audit.verify_vs_floor": Figure(
        "audit",
        "verify(vault.log_source()) time / floor",
        False,
        lambda d: d["verify"]["vault_s"]["ratio_to_floor"],
    ),
    "audit.bundle_verify_vs_floor": Figure(
        "audit",
        "verify(BundleSource) time / floor",
        False,
        lambda d: d["verify"]["bundle_s"]["ratio_to_floor"],
    ),
    "group_commit.threads_4_vs_1": Figure(
        "group_commit", "appends/s, 4 threads / 1 thread", True, _group_commit
    ),
    "policy.decide_vs_call": Figure(
        "policy", "decide() / a plain call (time)", False, lambda d: d["ratio_vs_call"]
    ),
    "policy.evaluate_vs_decide": Figure(
        "policy",
        "evaluate() / decide() (time; the speedup)",
        True,
        lambda d: d["speedup_vs_evaluate"],
    ),
    "api.audited_vs_bare": Figure(
        "api",
        "audited read req/s / bare Flask req/s",
        True,
        lambda d: d["ratios"]["pds_over_bare"],
    ),
    "growth.verify_per_entry_10x": Figure(
        "growth",
        "verify CPU time per entry at 10x the entries / at 1x (1.00: linear)",
        False,
        lambda d: d["verify"]["per_entry_growth_cpu"],
    ),
    "search.two_words_vs_fts5": Figure(
        "search", "two-word query: Vault.search time / FTS5 time", False, _search
    ),
    "web_import.web_vs_cli": Figure(
        "web_import",
        "web import / pds import wall time",
        False,
        lambda d: statistics.median(d["web"]["ratios"]),
    ),
    "web_import.export_web_vs_cli": Figure(
        "web_import",
        "web export / pds export wall time",
        False,
        lambda d: statistics.median(d["export"]["ratios"]),
    ),
}

MARKER = re.compile(r"<!--\s*bench:(?P<body>.*?)-->")
MARKER_BODY = re.compile(
    r"^\s*(?P<name>[a-z_]+\.[a-z0-9_]+)\s*=\s*(?P<value>[0-9]+(?:\.[0-9]+)?)"
    r"\s*\(commit (?P<commit>[0-9a-f]{7,40})\)\s*$"
)


@dataclass(frozen=True)
class Documented:
    """A figure as docs/benchmarks.md gives it: its value, commit, and line."""

    name: str
    value: float
    commit: str
    line: int


def read_markers(text: str) -> dict[str, Documented]:
    """Every ``<!-- bench: NAME = VALUE (commit HASH) -->`` marker in ``text``, by name.

    A marker that does not parse, or a name marked twice, raises ValueError with its line."""
    found: dict[str, Documented] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        for marker in MARKER.finditer(line):
            m = MARKER_BODY.match(marker.group("body"))
            if m is None:
                raise ValueError(f"line {number}: unreadable bench marker {marker.group(0)!r}")
            name = m.group("name")
            if name in found:
                raise ValueError(f"line {number}: {name} is marked twice (first: line "
                                 f"{found[name].line})")  # fmt: skip
            found[name] = Documented(name, float(m.group("value")), m.group("commit"), number)
    return found


def compare(name: str, now: float, doc: Documented | None, higher_is_better: bool) -> str:
    """The verdict on one figure: ``ok``, ``faster by N%``, ``SLOWER by N%: ...`` or
    ``no figure in docs``. Speed is the ratio (higher is better) or its inverse (a time
    ratio); a drop of more than ``DROP`` is flagged."""
    if doc is None:
        return "no figure in docs"
    if now <= 0 or doc.value <= 0:
        return "not comparable (a zero ratio)"
    speed = now / doc.value if higher_is_better else doc.value / now
    if speed < 1 - DROP:
        return (
            f"SLOWER by {1 - speed:.0%}: {name} {now:.2f} vs {doc.value:.2f} in docs "
            f"(commit {doc.commit})"
        )
    if speed > 1 + DROP:
        return f"faster by {speed - 1:.0%}"
    return "ok"


def discover() -> list[str]:
    """The benchmarks, as run.py finds them."""
    return sorted(
        p.stem
        for p in HERE.glob("*.py")
        if p.name not in NOT_BENCHMARKS and not p.name.startswith("_")
    )


def run_one(name: str, folder: Path) -> tuple[dict[str, Any] | None, float, str]:
    """Run one benchmark; its JSON results (None when it failed), wall time and a note."""
    out = folder / f"{name}.json"
    cmd = [sys.executable, str(HERE / f"{name}.py"), "--json", str(out), *PLAN.get(name, FALLBACK)]
    print(f"==> {name}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        code = proc.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 15)
        proc.wait()
        return None, time.perf_counter() - start, f"stopped after {TIMEOUT_S:.0f} s"
    took = time.perf_counter() - start
    if code != 0 or not out.exists():
        return None, took, f"failed (exit {code}; see its output above)"
    return json.loads(out.read_text(encoding="utf-8")), took, ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", help="run only this benchmark (repeatable)")
    ap.add_argument("--doc", type=Path, default=DOC, help="where the full run's figures are")
    args = ap.parse_args(argv)
    names = discover()
    if args.only:
        names = [n for n in names if n in args.only]
        if not names:
            ap.error(f"no benchmark named {', '.join(args.only)} in {HERE}")
    try:
        documented = read_markers(args.doc.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        ap.exit(1, f"{args.doc}: {exc}\n")
    began, load = time.perf_counter(), os.getloadavg()[0]
    rows: list[tuple[str, str, str, str]] = []  # figure, now, docs, verdict
    timings: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="pds-bench-quick-"))
    try:
        for name in names:
            if name in SKIPPED:
                print(f"(skipped in {name}: {SKIPPED[name]})", flush=True)
            result, took, note = run_one(name, folder)
            timings.append(f"{name} {took:.0f} s" + (f" ({note})" if note else ""))
            figures = [(k, f) for k, f in FIGURES.items() if f.bench == name]
            if name not in PLAN:
                rows.append((name, "-", "-", "no plan here: run with " + " ".join(FALLBACK)))
            for key, figure in figures:
                doc = documented.get(key)
                docs = f"{doc.value:g} ({doc.commit})" if doc else "-"
                if result is None:
                    rows.append((key, "-", docs, f"not measured: {name} {note}"))
                    continue
                try:
                    now = figure.read(result)
                except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
                    rows.append((key, "-", docs, f"not in {name}'s results ({exc!r})"))
                    continue
                verdict = compare(key, now, doc, figure.higher_is_better)
                rows.append((key, f"{now:.3g}", docs, verdict))
                print(f"  {key} ({figure.what}): {now:.3g}, docs {docs}: {verdict}", flush=True)
            print(flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    took = time.perf_counter() - began
    print(
        "Summary (scaled down; noisier than the full runs: it compares, it does not certify;"
        f" {took:.0f} s, load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)"
    )
    head = ("figure", "now", "docs (commit)", "verdict")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    for row in [head, *rows]:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)), row[3])
    slower = sum(r[3].startswith("SLOWER") for r in rows)
    print(f"  {slower} figure(s) more than {DROP:.0%} slower than docs/benchmarks.md")
    print("  took: " + ", ".join(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
