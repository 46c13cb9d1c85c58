"""Access-log benchmark: appends, `pds audit verify` against a plain-loop floor, proof latency.

Run it as a script (``python benchmarks/audit.py [--entries N]``) or through
``benchmarks/run.py`` (``make bench``), which passes ``--rows N``: here that means entries.
Never part of the test suite.

What one run does (see docs/benchmarks.md, section "Access log"), all on one vault created
with ``Vault.create(settings, passphrase)`` and the default Argon2id cost in a temp dir:

1. Appends: ``--entries`` realistic API-read entries (actor ``client:<id>``, action
   ``api.records.read``, client, grant, category ``transactions``, count 50, purpose)
   through ``vault.audit(...)``, ``--batch`` entries per ``pds.db.transaction``
   (``record()`` joins it). Then ``--single`` more, each one ``vault.audit(...)`` on its own:
   its own ``BEGIN IMMEDIATE`` ... ``COMMIT`` with ``synchronous=FULL`` (WAL), which is what
   one API request pays. Both include the checkpoints the vault signs every 1,000 entries.
2. The floor: ``SELECT entry FROM audit_log ORDER BY idx`` and the RFC 9162 root in a plain
   loop (``SHA-256(0x00 || entry)`` leaves, then the stack fold); its root must equal
   ``vault.log.root()``.
3. Verification, ``--repeats`` rounds alternating with the floor: ``verify(
   vault.log_source())`` in-process; ``verify(BundleSource(path))`` of a bundle written once
   with ``write_bundle`` (after ``vault.log.checkpoint()``: a bundle holds what the newest
   checkpoint covers); and the real CLI in subprocesses, ``pds audit verify`` (PDS_HOME and
   PDS_PASSPHRASE set: the process start and one Argon2id unlock are included) and
   ``pds audit verify --bundle`` (no unlock). ``pds audit key`` (start + unlock) and
   ``pds --version`` (start only) are timed too, so each CLI figure can be read net of its
   fixed cost.
4. Inclusion proofs: ``--proofs`` random indexes of the full tree, each
   ``vault.log.inclusion_proof(i, size)`` + ``merkle.verify_inclusion`` against
   ``vault.log.root(size)``; latency p50/p99/max.

Memory stays bounded: entries are made and appended one at a time and every reader streams.
The script's own max RSS and every CLI command's (``os.wait4``, from a small launcher) are
reported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import PASSPHRASE, filesystem, finish, machine, pds_env, pds_executable, spread

NAME = "audit"
DEFAULT_ENTRIES = 1_000_000
DEFAULT_BATCH = 10_000
DEFAULT_SINGLE = 2_000
DEFAULT_PROOFS = 1_000
TARGET_VERIFY_RATIO = 2.0
TARGET_PROOF_MS = 5.0
MB = 1024 * 1024
PURPOSES = (
    "budgeting",
    "monthly spending summary",
    "tax return preparation",
    "mortgage affordability check",
)

# -- helpers (as in import.py) ----------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# A tiny interpreter (no site, no imports beyond the built-ins) forks and times the command.
# Started straight from this process, the command's ru_maxrss would start at this process's
# own peak (vfork + exec hands the parent's high-water mark to the child; this process ran
# Argon2id in Vault.create), so every child would read as at least ~100 MB.
_LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as fh:
    json.dump([wall, os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime,
               usage.ru_maxrss], fh)
"""


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; its wall time, exit code, max RSS (kernel rusage via wait4) and output.

    The command runs under :data:`_LAUNCHER`, which times it and reads its rusage, so the
    launcher's own start-up is not in the wall time.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        result = Path(tmp) / "rusage.json"
        subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(result), *cmd],
            env=env,
            stdout=out,
            stderr=err,
            check=False,
        )
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        if not result.exists():
            raise RuntimeError(f"could not run {' '.join(cmd)}:\n{stderr}")
        wall, code, cpu, maxrss_kib = json.loads(result.read_text(encoding="utf-8"))
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}:\n{stdout}\n{stderr}")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "max_rss_mb": maxrss_kib * 1024 / MB,  # ru_maxrss is in KiB on Linux
        "stdout": stdout,
    }


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 (nearest rank), max and mean of ``values``."""
    ordered = sorted(values)
    n = len(ordered)

    def rank(p: float) -> float:
        return ordered[min(n - 1, max(0, -(-n * p // 100) - 1))]

    return {
        "p50": rank(50),
        "p99": rank(99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def self_max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


# -- the measured pieces ----------------------------------------------------------------------


class EntryMaker:
    """Realistic API-read entries: a few clients, each with a grant, reading transactions."""

    def __init__(self, seed: int, clients: int = 24) -> None:
        rng = random.Random(seed)
        self.fields = []
        for n in range(clients):
            client_id = f"c_{rng.getrandbits(64):016x}"
            self.fields.append(
                {
                    "actor": f"client:{client_id}",
                    "client_id": client_id,
                    "grant_id": 100 + n,
                    "category": "transactions",
                    "count": 50,
                    "purpose": PURPOSES[n % len(PURPOSES)],
                }
            )

    def __call__(self, i: int) -> dict[str, Any]:
        return self.fields[i % len(self.fields)]


def append_batched(vault: Any, make: EntryMaker, entries: int, batch: int) -> dict[str, Any]:
    """``entries`` appends through ``vault.audit``, ``batch`` per transaction."""
    from pds import db as dbmod

    conn = vault.conn
    batch_rates: list[float] = []
    total = 0.0
    done = 0
    next_report = entries // 10
    while done < entries:
        n = min(batch, entries - done)
        start = time.perf_counter()
        with dbmod.transaction(conn):
            for i in range(done, done + n):
                vault.audit("api.records.read", **make(i))
        took = time.perf_counter() - start
        total += took
        batch_rates.append(n / took)
        done += n
        if done >= next_report and done < entries:
            log(f"[audit]   {done:,} appended ({done / total:,.0f} entries/s so far)")
            next_report += entries // 10
    tenth = max(1, len(batch_rates) // 10)
    return {
        "entries": entries,
        "batch": batch,
        "seconds": total,
        "entries_per_s": entries / total,
        "us_per_entry": total / entries * 1e6,
        "first_tenth_entries_per_s": statistics.fmean(batch_rates[:tenth]),
        "last_tenth_entries_per_s": statistics.fmean(batch_rates[-tenth:]),
    }


def append_single(vault: Any, make: EntryMaker, calls: int, offset: int) -> dict[str, Any]:
    """``calls`` appends, each ``vault.audit`` committing its own short transaction."""
    assert not vault.conn.in_transaction
    times = []
    for i in range(offset, offset + calls):
        start = time.perf_counter()
        vault.audit("api.records.read", **make(i))
        times.append(time.perf_counter() - start)
    total = sum(times)
    return {
        "calls": calls,
        "seconds": total,
        "entries_per_s": calls / total,
        "us_per_entry": total / calls * 1e6,
        "latency_us": {k: v * 1e6 for k, v in percentiles(times).items()},
    }


def floor(db_path: Path) -> tuple[int, bytes, float]:
    """Read every entry in order and compute the RFC 9162 root in a plain loop."""
    sha = hashlib.sha256
    conn = sqlite3.connect(db_path)
    try:
        start = time.perf_counter()
        stack: list[bytes] = []
        n = 0
        for (entry,) in conn.execute("SELECT entry FROM audit_log ORDER BY idx"):
            h = sha(b"\x00" + entry.encode("utf-8")).digest()
            k = n
            while k & 1:  # one merge per trailing 1 bit of the leaf's index
                h = sha(b"\x01" + stack.pop() + h).digest()
                k >>= 1
            stack.append(h)
            n += 1
        root = stack[-1] if stack else sha(b"").digest()
        for left in reversed(stack[:-1]):
            root = sha(b"\x01" + left + root).digest()
        took = time.perf_counter() - start
    finally:
        conn.close()
    return n, root, took


def timed_verify(source: Any, size: int) -> float:
    from pds.audit.verify import verify

    start = time.perf_counter()
    report = verify(source)
    took = time.perf_counter() - start
    if not report.ok or report.size != size:
        raise RuntimeError(f"verify did not pass on {size} entries: {report.as_dict()}")
    return took


def proofs(vault: Any, size: int, count: int, seed: int) -> dict[str, Any]:
    """Inclusion proof + RFC 9162 verification for ``count`` random leaves of the full tree."""
    from pds.audit import merkle

    root = vault.log.root(size)
    rng = random.Random(seed)
    indexes = rng.sample(range(size), min(count, size))
    times = []
    lengths = []
    for i in indexes:
        leaf = vault.log.perfect(0, i)  # what the entry hashed to (not timed)
        start = time.perf_counter()
        path = vault.log.inclusion_proof(i, size)
        ok = merkle.verify_inclusion(leaf, i, size, path, root)
        times.append(time.perf_counter() - start)
        if not ok:
            raise RuntimeError(f"the inclusion proof of entry {i} in {size} does not verify")
        lengths.append(len(path))
    return {
        "proofs": len(indexes),
        "size": size,
        "path_length": {"min": min(lengths), "max": max(lengths)},
        "latency_ms": {k: v * 1e3 for k, v in percentiles(times).items()},
    }


def cli_verify(pds: str, env: dict[str, str], size: int, *extra: str) -> dict[str, Any]:
    res = run_measured([pds, "audit", "verify", "--json", *extra], env)
    doc = json.loads(res.pop("stdout"))
    if not doc["ok"] or doc["entries"] != size:
        raise RuntimeError(f"pds audit verify {' '.join(extra)} did not pass: {doc}")
    return res


# -- the run ----------------------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from pds.audit.verify import BundleSource, write_bundle
    from pds.settings import Settings
    from pds.vault import Vault

    pds = pds_executable()
    info = machine(rfc8785="rfc8785")
    repeats = args.repeats
    with tempfile.TemporaryDirectory(prefix="pds-bench-audit-", dir=args.tmpdir) as tmp_s:
        tmp = Path(tmp_s)
        info["filesystem"] = filesystem(tmp)
        home = tmp / "home"
        settings = Settings(home=home)  # the default Argon2id cost, as `pds init` makes
        log(f"[audit] creating a vault in {home} (default Argon2id cost) ...")
        vault = Vault.create(settings, PASSPHRASE)
        make = EntryMaker(args.seed)
        try:
            log(f"[audit] appending {args.entries:,} entries, {args.batch:,} per transaction ...")
            batched = append_batched(vault, make, args.entries, args.batch)
            log(
                f"[audit]   {batched['entries_per_s']:,.0f} entries/s"
                f" ({batched['us_per_entry']:.1f} us/entry)"
            )
            log(f"[audit] {args.single:,} single auto-committed appends ...")
            single = append_single(vault, make, args.single, args.entries)
            log(
                f"[audit]   {single['entries_per_s']:,.0f} entries/s"
                f" ({single['us_per_entry']:.0f} us/entry)"
            )
            # A bundle holds what the newest checkpoint covers: sign one for the whole log
            # first, as `pds audit export` does.
            vault.log.checkpoint()
            size = vault.log.size()
            root = vault.log.root()
            checkpoints = len(vault.log.checkpoints())
            db_bytes = sum(p.stat().st_size for p in home.iterdir())

            bundle = tmp / "log.bundle"
            log("[audit] writing a bundle (write_bundle) ...")
            start = time.perf_counter()
            with bundle.open("xb") as out:
                written = write_bundle(out, vault.log_source())
            export_s = time.perf_counter() - start
            assert written == size, (written, size)
            bundle_bytes = bundle.stat().st_size

            env = pds_env(home)
            rounds: list[dict[str, float]] = []
            cli_rss: dict[str, float] = {}
            for r in range(repeats):
                log(f"[audit] round {r + 1}/{repeats}: floor, verify (vault, bundle, CLI) ...")
                n, floor_root, floor_s = floor(settings.db_path)
                if n != size or floor_root != root:
                    raise RuntimeError(
                        f"the floor's root of {n} entries is {floor_root.hex()},"
                        f" vault.log.root() of {size} is {root.hex()}"
                    )
                one = {"floor_s": floor_s}
                one["verify_vault_s"] = timed_verify(vault.log_source(), size)
                one["verify_bundle_s"] = timed_verify(BundleSource(bundle), size)
                start_only = run_measured([pds, "--version"], env)
                key = run_measured([pds, "audit", "key"], env)
                cli = cli_verify(pds, env, size)
                cli_b = cli_verify(pds, env, size, "--bundle", str(bundle))
                one["cli_start_s"] = start_only["wall_s"]
                one["cli_fixed_s"] = key["wall_s"]
                one["cli_verify_s"] = cli["wall_s"]
                one["cli_verify_bundle_s"] = cli_b["wall_s"]
                for what, res in (
                    ("pds --version", start_only),
                    ("pds audit key", key),
                    ("pds audit verify", cli),
                    ("pds audit verify --bundle", cli_b),
                ):
                    cli_rss[what] = max(cli_rss.get(what, 0.0), res["max_rss_mb"])
                rounds.append(one)
                log(
                    "[audit]   "
                    + ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in one.items())
                )

            log(f"[audit] {args.proofs:,} inclusion proofs in the tree of {size:,} ...")
            proof = proofs(vault, size, args.proofs, args.seed)
            log(
                f"[audit]   p50 {proof['latency_ms']['p50']:.3f} ms,"
                f" p99 {proof['latency_ms']['p99']:.3f} ms, max {proof['latency_ms']['max']:.3f} ms"
            )
        finally:
            vault.close()

    return summarise(
        args,
        info,
        batched=batched,
        single=single,
        size=size,
        root=root,
        checkpoints=checkpoints,
        db_bytes=db_bytes,
        bundle_bytes=bundle_bytes,
        export_s=export_s,
        rounds=rounds,
        proof=proof,
        cli_rss=cli_rss,
    )


def summarise(args: argparse.Namespace, info: dict[str, Any], **m: Any) -> dict[str, Any]:
    rounds, size = m["rounds"], m["size"]

    def col(key: str) -> list[float]:
        return [r[key] for r in rounds]

    floor_med = statistics.median(col("floor_s"))

    def timing(key: str) -> dict[str, Any]:
        s = spread(col(key))
        s["entries_per_s"] = size / s["median"]
        s["ratio_to_floor"] = s["median"] / floor_med
        s["ratio_pairs"] = [r[key] / r["floor_s"] for r in rounds]
        return s

    fixed = spread(col("cli_fixed_s"))
    cli = timing("cli_verify_s")
    net = [r["cli_verify_s"] - r["cli_fixed_s"] for r in rounds]
    cli["net_of_fixed"] = spread(net)
    cli["net_ratio_to_floor"] = statistics.median(net) / floor_med
    cli_b = timing("cli_verify_bundle_s")
    net_b = [r["cli_verify_bundle_s"] - r["cli_start_s"] for r in rounds]
    cli_b["net_of_start"] = spread(net_b)
    cli_b["net_ratio_to_floor"] = statistics.median(net_b) / floor_med
    verify = {
        "floor_s": timing("floor_s"),
        "vault_s": timing("verify_vault_s"),
        "bundle_s": timing("verify_bundle_s"),
        "cli_s": cli,
        "cli_bundle_s": cli_b,
        "cli_fixed_s": fixed,
        "cli_start_s": spread(col("cli_start_s")),
    }
    lat = m["proof"]["latency_ms"]

    def ratio_value(t: dict[str, Any]) -> str:
        pairs = t["ratio_pairs"]
        return f"{t['ratio_to_floor']:.2f}x (rounds {min(pairs):.2f}-{max(pairs):.2f}x)"

    result: dict[str, Any] = {
        "name": NAME,
        "command": " ".join(["python", "benchmarks/audit.py", *sys.argv[1:]]),
        "machine": info,
        "entries_requested": args.entries,
        "log_size": size,
        "root": m["root"].hex(),
        "checkpoints": m["checkpoints"],
        "repeats": args.repeats,
        "append_batched": m["batched"],
        "append_single": m["single"],
        "vault_bytes": m["db_bytes"],
        "bundle_bytes": m["bundle_bytes"],
        "export_s": m["export_s"],
        "verify": verify,
        "inclusion": m["proof"],
        "max_rss_mb": {"benchmark": self_max_rss_mb(), "cli": m["cli_rss"]},
    }
    b, s = m["batched"], m["single"]
    result["summary"] = [
        {
            "metric": f"append through vault.audit, {b['batch']:,} per transaction",
            "value": f"{b['entries_per_s']:,.0f} entries/s ({b['us_per_entry']:.1f} us/entry)",
            "target": "none",
            "met": None,
        },
        {
            "metric": "append through vault.audit, auto-committed (one API request)",
            "value": f"{s['entries_per_s']:,.0f} entries/s ({s['us_per_entry']:.0f} us/entry,"
            f" p99 {s['latency_us']['p99']:.0f} us)",
            "target": "none",
            "met": None,
        },
        {
            "metric": "verify(vault.log_source()) time / floor",
            "value": ratio_value(verify["vault_s"]),
            "target": f"<= {TARGET_VERIFY_RATIO:g}x",
            "met": verify["vault_s"]["ratio_to_floor"] <= TARGET_VERIFY_RATIO,
        },
        {
            "metric": "verify(BundleSource(bundle)) time / floor",
            "value": ratio_value(verify["bundle_s"]),
            "target": f"<= {TARGET_VERIFY_RATIO:g}x",
            "met": verify["bundle_s"]["ratio_to_floor"] <= TARGET_VERIFY_RATIO,
        },
        {
            "metric": "`pds audit verify` CLI wall (start + Argon2id unlock included) / floor",
            "value": f"{ratio_value(cli)}; net of `pds audit key` {cli['net_ratio_to_floor']:.2f}x",
            "target": f"<= {TARGET_VERIFY_RATIO:g}x",
            "met": cli["ratio_to_floor"] <= TARGET_VERIFY_RATIO,
        },
        {
            "metric": "`pds audit verify --bundle` CLI wall / floor",
            "value": f"{ratio_value(cli_b)}; net of `pds --version`"
            f" {cli_b['net_ratio_to_floor']:.2f}x",
            "target": f"<= {TARGET_VERIFY_RATIO:g}x",
            "met": verify["cli_bundle_s"]["ratio_to_floor"] <= TARGET_VERIFY_RATIO,
        },
        {
            "metric": f"inclusion proof + verify, {m['proof']['proofs']:,} random leaves"
            f" of {size:,}",
            "value": f"p50 {lat['p50']:.3f} ms, p99 {lat['p99']:.3f} ms, max {lat['max']:.3f} ms",
            "target": f"< {TARGET_PROOF_MS:g} ms",
            "met": lat["max"] < TARGET_PROOF_MS,
        },
    ]
    return result


def fmt(s: dict[str, Any], unit: str = " s", digits: int = 2) -> str:
    return (
        f"{s['median']:,.{digits}f}{unit} (min {s['min']:,.{digits}f}, max {s['max']:,.{digits}f},"
        f" spread {s['spread_pct']:.0f}%)"
    )


def report(r: dict[str, Any]) -> str:
    m, b, s, v, p = (
        r["machine"],
        r["append_batched"],
        r["append_single"],
        r["verify"],
        r["inclusion"],
    )
    size = r["log_size"]
    batch_label = f"batched, {b['batch']:,} per transaction (vault.audit)"
    sl = s["latency_us"]
    lat = p["latency_ms"]
    lines = [
        f"Access-log benchmark: {r['entries_requested']:,} batched + {s['calls']:,} single"
        f" appends; the log then holds {size:,} entries, {r['checkpoints']:,} signed checkpoints",
        f"  machine: {m['nproc']} CPUs, {m['cpu']}, {m['memory']}, Python {m['python']},"
        f" SQLite {m['sqlite']}, cryptography {m['cryptography']}, rfc8785 {m['rfc8785']},"
        f" {m['date']}",
        f"  temp files on: {m.get('filesystem', 'unknown')}",
        f"  sizes: vault {r['vault_bytes'] / MB:,.0f} MB, bundle {r['bundle_bytes'] / MB:,.0f} MB"
        f" (write_bundle {r['export_s']:.1f} s)",
        "",
        f"  {'append':<52} {'entries/s':>10} {'us/entry':>9}",
        f"  {batch_label:<52} {b['entries_per_s']:>10,.0f} {b['us_per_entry']:>9.1f}",
        f"  {'  first / last tenth of the batches':<52}"
        f" {b['first_tenth_entries_per_s']:>10,.0f}"
        f" {1e6 / b['first_tenth_entries_per_s']:>9.1f}",
        f"  {'':<52} {b['last_tenth_entries_per_s']:>10,.0f}"
        f" {1e6 / b['last_tenth_entries_per_s']:>9.1f}",
        f"  {'single, auto-committed (BEGIN IMMEDIATE/COMMIT, FULL)':<52}"
        f" {s['entries_per_s']:>10,.0f} {s['us_per_entry']:>9.0f}",
        f"    single-append latency: p50 {sl['p50']:.0f} us, p99 {sl['p99']:.0f} us,"
        f" max {sl['max']:.0f} us",
        "",
        f"  read + root of {size:,} entries: median of {r['repeats']} (min, max, spread)",
        f"  {'':<44} {'seconds':>34} {'entries/s':>10} {'/ floor':>8}",
    ]
    rows = [
        ("floor: SELECT entry + plain-loop root", v["floor_s"]),
        ("verify(vault.log_source())", v["vault_s"]),
        ("verify(BundleSource(bundle))", v["bundle_s"]),
        ("CLI `pds audit verify` (start+unlock incl.)", v["cli_s"]),
        ("CLI `pds audit verify --bundle`", v["cli_bundle_s"]),
    ]
    for label, t in rows:
        lines.append(
            f"  {label:<44} {fmt(t):>34} {t['entries_per_s']:>10,.0f} {t['ratio_to_floor']:>7.2f}x"
        )
    cli = v["cli_s"]
    cli_b = v["cli_bundle_s"]
    lines += [
        f"  CLI start only (`pds --version`): {fmt(v['cli_start_s'])}",
        f"  CLI `pds audit verify --bundle` net of that: {fmt(cli_b['net_of_start'])}"
        f" = {cli_b['net_ratio_to_floor']:.2f}x floor",
        f"  CLI fixed cost (`pds audit key`: start + Argon2id unlock): {fmt(v['cli_fixed_s'])}",
        f"  CLI `pds audit verify` net of that: {fmt(cli['net_of_fixed'])}"
        f" = {cli['net_ratio_to_floor']:.2f}x floor",
        "",
        f"  inclusion proof + verify, {p['proofs']:,} random leaves of {p['size']:,}"
        f" (path {p['path_length']['min']}-{p['path_length']['max']} hashes):"
        f" p50 {lat['p50']:.3f} ms, p99 {lat['p99']:.3f} ms, max {lat['max']:.3f} ms,"
        f" mean {lat['mean']:.3f} ms",
        f"  max RSS: this script {r['max_rss_mb']['benchmark']:.0f} MB (with the Argon2id of"
        " Vault.create); CLI: "
        + ", ".join(f"`{k}` {v:.0f} MB" for k, v in r["max_rss_mb"]["cli"].items()),
        "",
    ]
    for item in r["summary"]:
        verdict = {True: "met", False: "NOT met", None: "no target"}[item["met"]]
        lines.append(f"  {item['metric']}: {item['value']} (target {item['target']}): {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--entries",
        "--rows",
        dest="entries",
        type=int,
        default=DEFAULT_ENTRIES,
        help="entries appended in batches (1,000,000); run.py passes --rows",
    )
    ap.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH, help="appends per transaction (10,000)"
    )
    ap.add_argument(
        "--single", type=int, default=DEFAULT_SINGLE, help="auto-committed appends (2,000)"
    )
    ap.add_argument("--proofs", type=int, default=DEFAULT_PROOFS, help="inclusion proofs (1,000)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of floor and verify (3)")
    ap.add_argument("--seed", type=int, default=9162, help="seed for clients and proof indexes")
    ap.add_argument("--tmpdir", help="where to put the temporary files (default: $TMPDIR)")
    ap.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if min(args.entries, args.batch, args.single, args.proofs, args.repeats) < 1:
        ap.error("--entries, --batch, --single, --proofs and --repeats must be at least 1")
    result = run_benchmark(args)
    return finish(result, report(result), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
