"""Import benchmark: `pds import` of a midata CSV against sqlite-utils `insert_all` of its rows.

Run it as a script (``python benchmarks/import.py [--rows N]``) or through
``benchmarks/run.py`` (``make bench``). The file is named after the command it measures;
``import`` is a Python keyword, so it is never imported as a module: run.py runs every
benchmark as a script in a fresh interpreter (a subprocess), which also keeps one
benchmark's memory and crashes out of the next one's figures.

What one run does (see docs/benchmarks.md, section "Import"):

1. Writes one synthetic midata file with ``pds.demo.write_synthetic_midata`` (not timed).
2. ``--repeats`` times, alternating:
   - baseline: a fresh interpreter parses the CSV with ``csv.DictReader`` into dicts with the
     five midata columns, then ``Database(path)["rows"].insert_all(dicts)`` into a fresh
     plaintext SQLite file, sqlite-utils defaults; then the same dicts into a second fresh
     file in WAL mode (``enable_wal()``, pds's journal mode). Parse and inserts are timed
     separately, giving two framings for each: parse + insert_all (what a user would do)
     and insert_all alone.
   - pds: ``pds init`` (not timed) in a fresh PDS_HOME, ``pds status`` (timed: the fixed
     cost of starting the CLI and unlocking the vault with Argon2id), ``pds import FILE``
     (timed, wall clock of the whole CLI process), then ``pds import FILE`` again (every
     row a duplicate, timed).
3. Peak memory (max RSS) of every ``pds import`` process, from ``os.wait4``: the kernel's
   per-child rusage, the same figure ``/usr/bin/time -v`` prints. (``getrusage(
   RUSAGE_CHILDREN)`` would give the maximum over every child so far, including the
   baseline processes, which hold all rows in memory.) Imports of files 0.1x and 3x the
   size (``--memory-factors``) show whether memory grows with the file.
4. A profile of ``pds.importer.import_file`` on ``--profile-rows`` rows in a fresh
   interpreter: cProfile self-time grouped by stage, and each stage timed on its own
   without the profiler.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import gc
import json
import os
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import (
    MB,
    PASSPHRASE,
    filesystem,
    finish,
    machine,
    pds_env,
    pds_executable,
    run_measured,
    spread,
    verdicts,
)

from pds import clock

NAME = "import"
DEFAULT_ROWS = 1_000_000
DEFAULT_PROFILE_ROWS = 200_000
TARGET_RATIO = 0.40
TARGET_RSS_MB = 150.0

# -- the baseline (runs in its own interpreter: --worker baseline) ----------------------------


def baseline_worker(csv_path: Path, db_path: Path) -> dict[str, Any]:
    """Parse the CSV into dicts with the csv module, then insert_all them, sqlite-utils defaults."""
    from sqlite_utils import Database

    start = time.perf_counter()
    with csv_path.open(encoding="utf-8", newline="") as fh:
        dicts = []
        for row in csv.DictReader(fh):
            if row["Date"].startswith("Arranged overdraft limit"):
                break  # the midata trailer: not a transaction
            dicts.append(row)
    parsed = time.perf_counter()
    Database(db_path)["rows"].insert_all(dicts)
    done = time.perf_counter()
    # The same rows into a second fresh file in WAL mode (pds's journal mode), timed alone.
    wal_path = db_path.with_name(db_path.stem + "-wal.db")
    wal = Database(wal_path)
    wal.enable_wal()
    wal_start = time.perf_counter()
    wal["rows"].insert_all(dicts)
    wal_done = time.perf_counter()
    wal.close()
    return {
        "rows": len(dicts),
        "parse_s": parsed - start,
        "insert_s": done - parsed,
        "insert_wal_s": wal_done - wal_start,
    }


# -- the profile (runs in its own interpreter: --worker profile) ------------------------------

PARSE = "Connector parsing (readline, decode, csv, dates, money)"
VALIDATE = "Fast validation (schemas.fast_validator)"
JSON = "Canonical JSON (json.dumps, sort_keys)"
HMAC = "Dedup key HMAC-SHA256 (records.dedup_key)"
AES = "AES-256-GCM seal (nonce, AD, encrypt)"
SQLITE = "SQLite executemany (INSERT OR IGNORE)"
DATACLASS = "Per-row dataclasses (Record, Prepared)"
OCCUR = "Repeat counting (_Occurrences.nth)"
GLUE = "Python glue (prepare/ingest loops, generators)"
STAGES = (PARSE, VALIDATE, JSON, HMAC, AES, SQLITE, DATACLASS, OCCUR, GLUE)

_READER_METHODS = {"read", "readline", "readinto", "__iter__", "__getattr__"}
_RECORDS_FUNCS = {
    "canonical": JSON,
    "dedup_key": HMAC,
    "seal": AES,
    "associated_data": AES,
    "insert_rows": SQLITE,
}


def _py_stage(filename: str, func: str) -> str:
    """The stage a Python function's own time belongs to, by its file and name."""
    f = filename.replace("\\", "/")
    if "/connectors/" in f:
        return PARSE
    if f.endswith("pds/importer.py"):
        if func in _READER_METHODS:
            return PARSE  # _CountingReader wraps the file the connector reads
        return OCCUR if func == "nth" else GLUE
    if f.endswith("pds/payloads.py") or "/marshmallow/" in f:
        return VALIDATE
    if f.endswith(("pds/vault/records.py", "pds/db/records.py")):
        return _RECORDS_FUNCS.get(func, GLUE)
    if "/json/" in f:
        return JSON
    if f.endswith("/hmac.py"):
        return HMAC
    if "/cryptography/" in f:
        return AES
    if f == "<string>" and func == "__init__":
        return DATACLASS  # dataclass-generated __init__
    return GLUE


def _short(where: str) -> str:
    for marker in ("/site-packages/", f"/python{sys.version_info[0]}.{sys.version_info[1]}/"):
        if marker in where:
            return where.split(marker, 1)[1]
    return where.replace(str(Path(__file__).resolve().parent.parent) + "/", "")


def attribute(stats: dict) -> tuple[dict[str, float], float]:
    """Self time per stage: Python functions by their file, builtins by who called them."""

    def stage(key: tuple) -> str:
        filename, _, func = key
        return GLUE if filename == "~" else _py_stage(filename, func)

    totals = dict.fromkeys(STAGES, 0.0)
    grand = 0.0
    for key, (_cc, _nc, tt, _ct, callers) in stats.items():
        grand += tt
        if key[0] != "~":
            totals[stage(key)] += tt
            continue
        split = sum(c[2] for c in callers.values())
        for caller, (_c, _n, ctt, _cct) in callers.items():
            totals[stage(caller)] += ctt
        totals[GLUE] += max(0.0, tt - split)  # builtin time with no recorded caller
    return totals, grand


def _best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def profile_worker(rows: int, tmp: Path, repeats: int) -> dict[str, Any]:
    """In-process import of ``rows`` rows: plain timing, cProfile, and stages on their own."""
    import click

    from pds import db as dbmod
    from pds.db import records as dbrecords
    from pds.demo import write_synthetic_midata
    from pds.importer import _Occurrences, choose_connector, import_file
    from pds.payloads import fast_validator, schema_for
    from pds.settings import Settings
    from pds.vault import Prepared, Vault
    from pds.vault import records as recmod

    path = write_synthetic_midata(tmp / "profile-midata.csv", rows)
    vaults = iter(range(1_000_000))

    def fresh_vault() -> Vault:
        return Vault.create(Settings(home=tmp / f"vault-{next(vaults)}"), PASSPHRASE)

    # 1. The whole import_file, no profiler: best of ``repeats``, a fresh vault each time.
    full = []
    for _ in range(repeats):
        with fresh_vault() as vault:
            start = time.perf_counter()
            summary = import_file(vault, path)
            full.append(time.perf_counter() - start)
        assert summary.new == rows, summary
    # 2. The same under cProfile.
    with fresh_vault() as vault:
        prof = cProfile.Profile()
        start = time.perf_counter()
        prof.enable()
        import_file(vault, path)
        prof.disable()
        profiled_s = time.perf_counter() - start
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    by_stage, grand = attribute(stats)
    top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:15]
    top_funcs = [
        {
            "function": _short(pstats.func_std_string(key)),
            "calls": v[1],
            "self_us_per_row": v[2] / rows * 1e6,
        }
        for key, v in top
    ]

    # 3. Each stage on its own, without the profiler (best of ``repeats``).
    conn = choose_connector(path, None)
    with path.open("rb") as fh:
        records = list(conn.parse(fh, path.name))
    schema = schema_for("transactions")
    fast = fast_validator(schema)
    plains = [recmod.canonical(r.payload) for r in records]

    def parse() -> None:
        with path.open("rb") as fh:
            for _ in conn.parse(fh, path.name):
                pass

    # Results are dropped as they are made and the records list is frozen out of the
    # garbage collector, so a stage pays for its own work, not for walking 200,000 live
    # records (the real import streams: only one batch is alive at a time).
    gc.collect()
    gc.freeze()

    def validate() -> None:
        for r in records:
            fast(r.payload)

    def encode() -> None:
        for r in records:
            recmod.canonical(r.payload)

    def dataclasses() -> None:
        record = type(records[0])
        for r, p in zip(records, plains, strict=True):
            record(r.category, r.occurred_at, r.payload, r.identity, r.where)
            Prepared(r.category, r.occurred_at, p, None, 0)

    def count_repeats() -> None:
        occ = _Occurrences()
        for r, p in zip(records, plains, strict=True):
            occ.nth(r.occurred_at, p)

    iso: dict[str, float] = {}
    iso[PARSE] = _best(parse, repeats)
    iso[VALIDATE] = _best(validate, repeats)
    iso[JSON] = _best(encode, repeats)
    with fresh_vault() as vault:
        dkey = vault.keyring.dedup_key
        with dbmod.transaction(vault.conn):
            version, aead = vault.keyring.category_aead(vault.conn, "transactions")

        def hmacs() -> None:
            for p in plains:
                recmod.dedup_key(dkey, "transactions", None, p, 0)

        def seals() -> None:
            for i, p in enumerate(plains):
                recmod.seal(aead, i, "transactions", version, p)

        iso[HMAC] = _best(hmacs, repeats)
        iso[AES] = _best(seals, repeats)
    iso[DATACLASS] = _best(dataclasses, repeats)
    iso[OCCUR] = _best(count_repeats, repeats)

    # SQLite: the sealed rows exactly as Vault.ingest builds them, in batches, one transaction.
    sqlite_times = []
    for _ in range(repeats):
        with fresh_vault() as vault:
            c = vault.conn
            dkey = vault.keyring.dedup_key
            with dbmod.transaction(c):
                version, aead = vault.keyring.category_aead(c, "transactions")
                source_id = c.execute(
                    "INSERT INTO sources (connector, filename, digest, imported_at) "
                    "VALUES ('midata', 'x', x'00', '') RETURNING id"
                ).fetchone()[0]
            created = clock.now_iso()
            sealed = []
            for i, (r, p) in enumerate(zip(records, plains, strict=True), 1):
                nonce, ct = recmod.seal(aead, i, r.category, version, p)
                key = recmod.dedup_key(dkey, r.category, None, p, i)
                sealed.append(
                    (i, r.category, source_id, r.occurred_at, key, version, nonce, ct, created)
                )
            batch = 5000
            start = time.perf_counter()
            with dbmod.transaction(c):
                for j in range(0, len(sealed), batch):
                    dbrecords.insert_rows(c, sealed[j : j + batch])
            sqlite_times.append(time.perf_counter() - start)
    iso[SQLITE] = min(sqlite_times)
    gc.unfreeze()
    iso[GLUE] = max(0.0, min(full) - sum(iso.values()))

    # The CLI passes a click progress bar's update() as the per-line progress callback;
    # import_file above ran without one. Its cost, per line, on its own:
    size = path.stat().st_size
    with open(os.devnull, "w") as sink, click.progressbar(length=size, file=sink) as bar:
        lines = [len(line) for line in path.open("rb")]
        start = time.perf_counter()
        for n in lines:
            bar.update(n)
        progress_s = time.perf_counter() - start

    per_row = 1e6 / rows
    return {
        "rows": rows,
        "import_file_s": min(full),
        "import_file_runs_s": full,
        "import_file_us_per_row": min(full) * per_row,
        "profiled_s": profiled_s,
        "profiled_self_s": grand,
        "stages": [
            {
                "stage": s,
                "profiled_us_per_row": by_stage[s] * per_row,
                "profiled_share": by_stage[s] / grand if grand else 0.0,
                "isolated_us_per_row": iso[s] * per_row,
            }
            for s in STAGES
        ],
        "cli_progress_us_per_row": progress_s * per_row,
        "top_functions": top_funcs,
    }


# -- orchestration ----------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def worker_cmd(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def run_pds_side(
    pds: str, csv_path: Path, home: Path, rows: int, *, reimport: bool = True
) -> dict[str, Any]:
    env = pds_env(home)
    run_measured([pds, "init", "--json"], env)  # not timed
    status = run_measured([pds, "status", "--json"], env)
    first = run_measured([pds, "import", "--json", str(csv_path)], env)
    doc = json.loads(first["stdout"])
    if (doc["new"], doc["duplicate"], doc["rejected"]) != (rows, 0, 0):
        raise RuntimeError(f"pds import stored the wrong rows: {doc}")
    again = None
    if reimport:
        again = run_measured([pds, "import", "--json", str(csv_path)], env)
        doc = json.loads(again["stdout"])
        if (doc["new"], doc["duplicate"]) != (0, rows):
            raise RuntimeError(f"pds re-import was not all duplicates: {doc}")
    size = sum(p.stat().st_size for p in home.iterdir())
    shutil.rmtree(home)
    return {"status": status, "import": first, "reimport": again, "vault_bytes": size}


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from pds.demo import write_synthetic_midata

    rows, repeats = args.rows, args.repeats
    pds = pds_executable()
    info = machine(sqlite_utils="sqlite-utils")
    with tempfile.TemporaryDirectory(prefix="pds-bench-import-", dir=args.tmpdir) as tmp_s:
        tmp = Path(tmp_s)
        info["filesystem"] = filesystem(tmp)
        log(f"[import] writing {rows:,} synthetic midata rows to {tmp} ...")
        csv_path = write_synthetic_midata(tmp / "bench-midata.csv", rows)
        csv_bytes = csv_path.stat().st_size

        baseline: list[dict[str, Any]] = []
        side: list[dict[str, Any]] = []
        for i in range(repeats):
            db_path = tmp / "baseline.db"
            log(f"[import] run {i + 1}/{repeats}: baseline (csv + sqlite-utils insert_all) ...")
            res = run_measured(worker_cmd("--worker", "baseline", str(csv_path), str(db_path)))
            res.update(json.loads(res.pop("stdout")))
            with sqlite3.connect(db_path) as check:
                stored = check.execute("SELECT count(*) FROM rows").fetchone()[0]
            check.close()
            if res["rows"] != rows or stored != rows:
                raise RuntimeError(f"baseline stored {stored} of {rows} rows")
            res["db_bytes"] = db_path.stat().st_size
            db_path.unlink()
            for extra in tmp.glob("baseline-wal.db*"):
                extra.unlink()
            baseline.append(res)
            log(
                f"[import]   parse {res['parse_s']:.2f} s + insert_all {res['insert_s']:.2f} s"
                f" ({rows / (res['parse_s'] + res['insert_s']):,.0f} rows/s);"
                f" in WAL insert_all {res['insert_wal_s']:.2f} s"
            )
            log(f"[import] run {i + 1}/{repeats}: pds import ...")
            one = run_pds_side(pds, csv_path, tmp / f"home-{i}", rows)
            side.append(one)
            log(
                f"[import]   import {one['import']['wall_s']:.2f} s"
                f" ({rows / one['import']['wall_s']:,.0f} rows/s,"
                f" max RSS {one['import']['max_rss_mb']:.0f} MB);"
                f" re-import {one['reimport']['wall_s']:.2f} s"
            )

        sizes = [max(1, round(rows * f)) for f in args.memory_factors]
        memory: list[dict[str, Any]] = []
        for n in sizes:
            log(f"[import] memory check: pds import of {n:,} rows ...")
            mem_csv = write_synthetic_midata(tmp / "memory-midata.csv", n)
            mem = run_pds_side(pds, mem_csv, tmp / "home-memory", n, reimport=False)
            mem_csv.unlink()
            memory.append(
                {
                    "rows": n,
                    "max_rss_mb": mem["import"]["max_rss_mb"],
                    "rows_per_s": n / mem["import"]["wall_s"],
                }
            )
            log(f"[import]   max RSS {mem['import']['max_rss_mb']:.0f} MB")

        profile_rows = min(args.profile_rows, rows)
        log(f"[import] profiling import_file on {profile_rows:,} rows (in-process) ...")
        prof_dir = tmp / "profile"
        prof_dir.mkdir()
        prof_run = run_measured(
            worker_cmd(
                "--worker",
                "profile",
                str(prof_dir),
                "--profile-rows",
                str(profile_rows),
                "--repeats",
                str(repeats),
            )
        )
        profile = json.loads(prof_run["stdout"])

    return summarise(args, info, csv_bytes, baseline, side, memory, profile)


def summarise(
    args: argparse.Namespace,
    info: dict[str, Any],
    csv_bytes: int,
    baseline: list[dict[str, Any]],
    side: list[dict[str, Any]],
    memory: list[dict[str, Any]],
    profile: dict[str, Any],
) -> dict[str, Any]:
    rows = args.rows
    base_total = [rows / (b["parse_s"] + b["insert_s"]) for b in baseline]
    base_insert = [rows / b["insert_s"] for b in baseline]
    wal_total = [rows / (b["parse_s"] + b["insert_wal_s"]) for b in baseline]
    wal_insert = [rows / b["insert_wal_s"] for b in baseline]
    pds_rate = [rows / s["import"]["wall_s"] for s in side]
    re_rate = [rows / s["reimport"]["wall_s"] for s in side]
    fixed = [s["status"]["wall_s"] for s in side]
    net_rate = [
        rows / (s["import"]["wall_s"] - s["status"]["wall_s"])
        for s in side
        if s["import"]["wall_s"] > s["status"]["wall_s"]
    ]
    # Ratio of medians, and the per-pair ratios (each baseline with the pds run beside it).
    ratio_total = statistics.median(pds_rate) / statistics.median(base_total)
    ratio_insert = statistics.median(pds_rate) / statistics.median(base_insert)
    pair_total = [p / b for p, b in zip(pds_rate, base_total, strict=True)]
    pair_insert = [p / b for p, b in zip(pds_rate, base_insert, strict=True)]
    ratio_wal_total = statistics.median(pds_rate) / statistics.median(wal_total)
    ratio_wal_insert = statistics.median(pds_rate) / statistics.median(wal_insert)
    rss = [s["import"]["max_rss_mb"] for s in side] + [s["reimport"]["max_rss_mb"] for s in side]
    peak_rss = max(rss + [m["max_rss_mb"] for m in memory])
    sizes_rss = ", ".join(
        [f"{m['rows']:,}: {m['max_rss_mb']:.0f}" for m in memory if m["rows"] < rows]
        + [f"{rows:,}: {max(rss):.0f}"]
        + [f"{m['rows']:,}: {m['max_rss_mb']:.0f}" for m in memory if m["rows"] > rows]
    )
    result = {
        "name": NAME,
        "command": " ".join(["python", "benchmarks/import.py", *sys.argv[1:]]),
        "machine": info,
        "rows": rows,
        "repeats": args.repeats,
        "csv_bytes": csv_bytes,
        "baseline": {
            "parse_plus_insert_rows_per_s": spread(base_total),
            "insert_all_only_rows_per_s": spread(base_insert),
            "wal_parse_plus_insert_rows_per_s": spread(wal_total),
            "wal_insert_all_only_rows_per_s": spread(wal_insert),
            "parse_s": spread([b["parse_s"] for b in baseline]),
            "insert_s": spread([b["insert_s"] for b in baseline]),
            "max_rss_mb": spread([b["max_rss_mb"] for b in baseline]),
            "db_bytes": baseline[-1]["db_bytes"],
        },
        "pds": {
            "import_rows_per_s": spread(pds_rate),
            "import_wall_s": spread([s["import"]["wall_s"] for s in side]),
            "reimport_rows_per_s": spread(re_rate),
            "reimport_wall_s": spread([s["reimport"]["wall_s"] for s in side]),
            "fixed_cost_s": spread(fixed),
            "fixed_cost_max_rss_mb": spread([s["status"]["max_rss_mb"] for s in side]),
            "import_rows_per_s_net_of_fixed": spread(net_rate) if net_rate else None,
            "import_max_rss_mb": spread([s["import"]["max_rss_mb"] for s in side]),
            "reimport_max_rss_mb": spread([s["reimport"]["max_rss_mb"] for s in side]),
            "memory_by_file_size": memory,
            "max_rss_by_rows": sizes_rss,
            "peak_rss_mb": peak_rss,
            "vault_bytes": side[-1]["vault_bytes"],
        },
        "ratio_vs_parse_plus_insert_all": ratio_total,
        "ratio_vs_parse_plus_insert_all_pairs": pair_total,
        "ratio_vs_insert_all_only": ratio_insert,
        "ratio_vs_insert_all_only_pairs": pair_insert,
        "ratio_vs_wal_parse_plus_insert_all": ratio_wal_total,
        "ratio_vs_wal_insert_all_only": ratio_wal_insert,
        "profile": profile,
    }
    result["summary"] = [
        {
            "metric": "pds import rate vs csv + insert_all rate, WAL",
            "value": f"{ratio_wal_total:.0%}",
            "target": f">= {TARGET_RATIO:.0%}",
            "met": ratio_wal_total >= TARGET_RATIO,
        },
        {
            "metric": "pds import rate vs insert_all alone (pre-parsed), WAL",
            "value": f"{ratio_wal_insert:.0%}",
            "target": f">= {TARGET_RATIO:.0%}",
            "met": ratio_wal_insert >= TARGET_RATIO,
        },
        {
            "metric": "pds import rate vs csv + insert_all rate, sqlite-utils defaults",
            "value": f"{ratio_total:.0%} (pairs {min(pair_total):.0%}-{max(pair_total):.0%})",
            "target": "none: the framing of the earlier runs",
            "met": None,
        },
        {
            "metric": "pds import peak RSS (every run and file size tried)",
            "value": f"{peak_rss:.0f} MB (rows: MB {sizes_rss})",
            "target": f"< {TARGET_RSS_MB:.0f} MB",
            "met": peak_rss < TARGET_RSS_MB,
        },
    ]
    return result


def fmt(s: dict[str, Any], unit: str = "", digits: int = 0) -> str:
    return (
        f"{s['median']:,.{digits}f}{unit} (min {s['min']:,.{digits}f}, max {s['max']:,.{digits}f},"
        f" spread {s['spread_pct']:.0f}%)"
    )


def report(r: dict[str, Any]) -> str:
    b, p, prof = r["baseline"], r["pds"], r["profile"]
    m = r["machine"]
    lines = [
        f"Import benchmark: {r['rows']:,} midata rows ({r['csv_bytes'] / MB:.0f} MB CSV),"
        f" {r['repeats']} runs per side, alternating",
        f"  machine: {m['nproc']} CPUs, {m['cpu']}, {m['memory']}, Python {m['python']},"
        f" SQLite {m['sqlite']}, sqlite-utils {m['sqlite_utils']}, {m['date']}",
        f"  temp files on: {m.get('filesystem', 'unknown')}",
        "  rates are rows/s: median (min, max, spread = (max-min)/median)",
        f"  baseline csv + insert_all : {fmt(b['parse_plus_insert_rows_per_s'])}",
        f"  baseline insert_all alone : {fmt(b['insert_all_only_rows_per_s'])}",
        f"  baseline, WAL: csv + insert_all : {fmt(b['wal_parse_plus_insert_rows_per_s'])}",
        f"  baseline, WAL: insert_all alone : {fmt(b['wal_insert_all_only_rows_per_s'])}",
        f"  pds import (CLI, wall)    : {fmt(p['import_rows_per_s'])}",
        f"  pds re-import (all dups)  : {fmt(p['reimport_rows_per_s'])}",
        f"  pds fixed cost (start + unlock, `pds status`): {fmt(p['fixed_cost_s'], ' s', 2)}",
        f"  ratio vs csv + insert_all : {r['ratio_vs_parse_plus_insert_all']:.0%}",
        f"  ratio vs insert_all alone : {r['ratio_vs_insert_all_only']:.0%}",
        f"  ratio vs csv + insert_all, WAL : {r['ratio_vs_wal_parse_plus_insert_all']:.0%}",
        f"  ratio vs insert_all alone, WAL : {r['ratio_vs_wal_insert_all_only']:.0%}",
        f"  pds import max RSS        : {fmt(p['import_max_rss_mb'], ' MB')}",
        f"  pds re-import max RSS     : {fmt(p['reimport_max_rss_mb'], ' MB')}",
        f"  pds status max RSS (start + Argon2id unlock only): "
        f"{p['fixed_cost_max_rss_mb']['median']:.0f} MB",
        f"  pds import max RSS by file size (rows: MB): {p['max_rss_by_rows']}",
        f"  baseline max RSS (all rows in a list): {fmt(b['max_rss_mb'], ' MB')}",
        f"  sizes: vault {p['vault_bytes'] / MB:.0f} MB, plaintext db {b['db_bytes'] / MB:.0f} MB",
        "",
        f"Profile of import_file, {prof['rows']:,} rows in-process:"
        f" {prof['import_file_us_per_row']:.1f} us/row without the profiler"
        f" ({prof['rows'] / prof['import_file_s']:,.0f} rows/s),"
        f" {prof['profiled_s'] / prof['rows'] * 1e6:.1f} us/row under cProfile",
        f"  {'stage':<56} {'cProfile':>9} {'share':>6} {'isolated':>9}",
    ]
    for s in prof["stages"]:
        lines.append(
            f"  {s['stage']:<56} {s['profiled_us_per_row']:>9.2f}"
            f" {s['profiled_share']:>6.0%} {s['isolated_us_per_row']:>9.2f}"
        )
    lines.append(
        f"  CLI only: progress-bar callback per line {prof['cli_progress_us_per_row']:.2f} us/row"
    )
    lines.append("  top functions by self time (us/row under cProfile):")
    for f in prof["top_functions"][:10]:
        lines.append(f"    {f['self_us_per_row']:7.2f}  {f['calls']:>9,}  {f['function']}")
    lines.append("")
    lines.extend(verdicts(r["summary"]))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows in the file (1,000,000)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per side (3)")
    ap.add_argument(
        "--profile-rows", type=int, default=DEFAULT_PROFILE_ROWS, help="rows to profile (200,000)"
    )
    ap.add_argument(
        "--memory-factors",
        type=lambda text: [float(f) for f in text.split(",") if f],
        default=[0.1, 3.0],
        help="also import files this many times --rows, for max RSS only (0.1,3)",
    )
    ap.add_argument("--tmpdir", help="where to put the temporary files (default: $TMPDIR)")
    ap.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    ap.add_argument("--worker", choices=["baseline", "profile"], help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker == "baseline":
        print(json.dumps(baseline_worker(Path(args.paths[0]), Path(args.paths[1]))))
        return 0
    if args.worker == "profile":
        print(json.dumps(profile_worker(args.profile_rows, Path(args.paths[0]), args.repeats)))
        return 0
    if args.rows < 1 or args.repeats < 1:
        ap.error("--rows and --repeats must be at least 1")
    result = run_benchmark(args)
    return finish(result, report(result), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
