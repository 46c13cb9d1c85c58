"""Access-log group commit: appends per second from T threads of one process, against one.

Run it as a script (``python benchmarks/group_commit.py``) or through ``benchmarks/run.py``
(``make bench``), which passes ``--rows N``: here, the appends timed per measurement.

What one run does (see docs/benchmarks.md, section "Access-log group commit"), in-process on
one vault created with ``Vault.create`` in a temp dir (cheap Argon2id: the unlock is not
measured):

1. For each thread count in ``--threads`` (1 first: the baseline, what a single-threaded
   ``pds serve`` worker pays), ``--repeats`` rounds: T threads, each with its own
   connection (``Vault.with_keyring``, as ``pds serve --threads T`` gives each thread), make
   ``--rows`` API-read entries between them, each ``vault.audit(...)`` outside any
   transaction, so each call returns only once its entry is committed
   (``synchronous=FULL``). Rounds of the thread counts alternate.
2. Reported per thread count: appends/s (median of the rounds), the ratio to one thread, and
   the mean entries per commit (``GroupCommit.entries / GroupCommit.batches``).
3. Then the whole log is verified (``pds.audit.verify``): no gap, no fork, every entry.

The ratio depends on the disk: where one fsync is cheap (a few hundred microseconds) the
appends are mostly CPU work under one interpreter lock, and threads gain little; where it
is slow (an SD card, a network volume) each commit carries up to T entries for one fsync.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import filesystem, finish, machine, verdicts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pds.audit.log import GroupCommit  # noqa: E402
from pds.audit.verify import verify  # noqa: E402
from pds.settings import KdfParams, Settings  # noqa: E402
from pds.vault import Vault  # noqa: E402

NAME = "group_commit"
DEFAULT_APPENDS = 4_000
ENTRY = {
    "actor": "client:pds-SjHjUGLcL90I_TlclQLyAg",
    "client_id": "pds-SjHjUGLcL90I_TlclQLyAg",
    "grant_id": 1,
    "purpose": "dpv:ServiceProvision",
    "category": "transactions",
    "count": 50,
}


def one_round(settings: Settings, keyring: Any, threads: int, appends: int) -> dict[str, float]:
    vaults = [Vault.with_keyring(settings, keyring) for _ in range(threads)]
    group = GroupCommit.of(vaults[0].conn)
    batches, entries = group.batches, group.entries
    share = [appends // threads + (i < appends % threads) for i in range(threads)]
    start = threading.Barrier(threads + 1)

    def work(v: Vault, n: int) -> None:
        start.wait()
        for _ in range(n):
            v.audit("api.records.read", **ENTRY)

    pool = [threading.Thread(target=work, args=(v, n)) for v, n in zip(vaults, share, strict=True)]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - began
    for v in vaults:
        v.close()
    return {
        "per_s": appends / seconds,
        "per_commit": (group.entries - entries) / (group.batches - batches),
    }


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    counts = sorted(set(args.threads) | {1})
    with tempfile.TemporaryDirectory(prefix="pds-bench-gc-", dir=args.tmpdir) as tmp:
        settings = Settings(
            home=Path(tmp) / "vault", kdf=KdfParams(memory_kib=8 * 1024, iterations=1, lanes=4)
        )
        with Vault.create(settings, "benchmark passphrase: group commit") as vault:
            rounds: dict[int, list[dict[str, float]]] = {t: [] for t in counts}
            for r in range(args.repeats):
                for t in counts if r % 2 == 0 else reversed(counts):
                    got = one_round(settings, vault.keyring, t, args.rows)
                    rounds[t].append(got)
                    print(
                        f"round {r + 1} threads {t:>2}: {got['per_s']:8,.0f} appends/s,"
                        f" {got['per_commit']:.1f} entries per commit",
                        flush=True,
                    )
            size = vault.log.size()
            report = verify(vault.log_source())
            fs = filesystem(Path(tmp))
    expected = 1 + args.rows * args.repeats * len(counts)  # the vault's own first entry
    per = {
        t: {
            "per_s": statistics.median(x["per_s"] for x in rs),
            "min": min(x["per_s"] for x in rs),
            "max": max(x["per_s"] for x in rs),
            "per_commit": statistics.median(x["per_commit"] for x in rs),
        }
        for t, rs in rounds.items()
    }
    base = per[1]["per_s"]
    top = max(counts)
    summary = [
        {
            "metric": f"appends/s, {t} threads / 1 thread",
            "value": f"{per[t]['per_s'] / base:.2f}x ({per[t]['per_commit']:.1f} per commit)",
            "target": "none: it depends on the disk's fsync",
            "met": None,
        }
        for t in counts
        if t != 1
    ]
    summary.append(
        {
            "metric": "log after the run: verified, one entry per append",
            "value": f"{'verified' if report.ok else 'NOT verified'}, {size:,} of {expected:,}",
            "target": "verified, all",
            "met": report.ok and size >= expected,
        }
    )
    return {
        "name": NAME,
        "machine": machine(),
        "filesystem": fs,
        "settings": {"appends": args.rows, "repeats": args.repeats, "threads": counts},
        "per_threads": per,
        "largest": top,
        "summary": summary,
    }


def report(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"Access-log group commit ({m.get('date', '')})",
        f"  machine: {m.get('nproc')} CPUs ({m.get('cpu')}), Python {m.get('python')},"
        f" SQLite {m.get('sqlite')}; vault on {r['filesystem']}",
        f"  {r['settings']['appends']:,} appends per measurement,"
        f" {r['settings']['repeats']} rounds, each thread its own connection",
        "",
        f"  {'threads':>7} {'appends/s median (min-max)':>30} {'vs 1':>6} {'per commit':>11}",
    ]
    base = r["per_threads"][1]["per_s"]
    for t, p in r["per_threads"].items():
        spread = f"{p['per_s']:,.0f} ({p['min']:,.0f}-{p['max']:,.0f})"
        lines.append(f"  {t:>7} {spread:>30} {p['per_s'] / base:>5.2f}x {p['per_commit']:>11.1f}")
    lines += ["", *verdicts(r["summary"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rows", type=int, default=DEFAULT_APPENDS, help="appends per measurement (4,000)"
    )
    ap.add_argument("--repeats", type=int, default=3, help="rounds per thread count (3)")
    ap.add_argument(
        "--threads", type=int, nargs="+", default=[2, 4, 8, 16], help="thread counts (2 4 8 16)"
    )
    ap.add_argument("--tmpdir", help="where to put the vault (default: $TMPDIR)")
    ap.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if args.rows < 16 or args.repeats < 1 or min(args.threads) < 1:
        ap.error("--rows must be at least 16, --repeats and every thread count at least 1")
    result = run_benchmark(args)
    return finish(result, report(result), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
