"""How cost grows: `pds audit verify` at 100k, 1M and 10M log entries; API reads at 10k and 1M
records.

Run it as a script (``python benchmarks/growth.py [--part verify|api] [--rows N]``) or through
``benchmarks/run.py`` (``make bench``), which passes ``--rows N``: here that means the largest
log, verified beside logs of N/100 and N/10 entries. Never part of the test suite.

What one run does (see docs/benchmarks.md, section "How cost grows"):

**verify** (should be linear in the log):

1. Equivalence first. Appending 10 million entries through ``vault.audit`` would take most of
   an hour, so the logs here are built by :func:`fast_fill`: the same entries
   (``pds.audit.log.make_entry``, ``canonical``), their leaves and the perfect subtrees they
   complete (``pds.audit.merkle.RootAccumulator``), written with ``pds.db.audit.append`` in
   transactions of ``--batch`` entries, and a checkpoint signed with the vault's key every
   ``AuditLog.every`` entries, as the vault signs them. It skips only what the vault does
   per append to protect itself from other writers (re-reading the right edge) and the
   consistency proof it checks before signing. To show that the result is what real appends
   make, a vault is created and copied (same keys, same first entry); ``--check`` entries are
   appended to one copy through ``vault.audit`` and the same entries (same times) to the other
   by :func:`fast_fill`. The run stops unless both hold the same ``audit_log`` rows, the same
   ``audit_nodes`` rows and the same checkpoints (size, root and signed note, byte for byte),
   and ``verify`` passes on the fast-built copy.
2. One vault per size (default 100,000, 1,000,000 and 10,000,000 entries; each is a copy of
   the previous one extended), ``vault.init`` included in the count.
3. ``--repeats`` rounds, the sizes in turn (forward, then backward, ...): the plain-loop
   floor of benchmarks/audit.py (``SELECT entry`` + RFC 9162 root), ``verify(
   vault.log_source())`` in-process, and the real CLI ``pds audit verify --json`` in a
   subprocess (start and Argon2id unlock included; ``pds audit key`` is timed beside it as
   that fixed cost). Time per entry and the ratio to the next smaller size.
4. Peak memory of verify, once per size: a child process opens the vault database without
   unlocking it and runs ``verify(VaultSource(...))`` with the verifier key given; its max
   RSS (``getrusage``) before and after, and that of the CLI runs.

**api** (should be flat in the vault's size): two vaults made as benchmarks/api.py makes
them (``make_vault``, ``obtain_token``), ``--api-rows`` transactions each (default: a
thousandth and a tenth of ``--rows``, 10,000 and 1,000,000), then, the vaults alternating
each round:

1. over HTTP: ``pds serve`` (its default workers and threads) on each, ``wrk`` with
   ``--connections`` connections for ``--http-seconds`` on the first page
   (``GET /api/v1/records?category=transactions&limit=50``); requests/s, p50, p99;
2. in-process (Flask test client, audited, no HTTP): ``--requests`` reads of the first page
   and as many of the page at the far end (a keyset cursor 51 records before the last);
   each timed, p50/p99;
3. the parts of a read alone: the records query as the API calls it (``Vault.page_plain``)
   for each page, and one auto-committed ``vault.audit`` append.

Longer than most modules: it holds both halves of the question (the log and the API), which
share the run, the machine report and the summary that ``run.py`` reads.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from _common import MB, PASSPHRASE, finish, load_helper, machine, pds_env, pds_executable, spread

NAME = "growth"
DEFAULT_LARGEST = 10_000_000
DEFAULT_BATCH = 100_000
DEFAULT_CHECK = 5_000
ACTION = "api.records.read"

auditbench = load_helper("audit")
log = auditbench.log


# -- building a large log fast ----------------------------------------------------------------


def fast_fill(vault: Any, entries: Iterable[dict[str, Any]], batch: int) -> int:
    """Append ``entries`` to ``vault``'s log as its appends would, ``batch`` per transaction.

    Per entry: ``canonical`` bytes, the leaf hash, the accumulator's completed perfect
    subtrees, one ``pds.db.audit.append``; a checkpoint signed with the vault's key each time
    the log has grown by ``vault.log.every`` since the newest one. Returns the entries added.
    """
    from pds import clock
    from pds import db as dbmod
    from pds.audit import checkpoint as cpmod
    from pds.audit import merkle
    from pds.audit.log import canonical
    from pds.db import audit as store

    conn, alog = vault.conn, vault.log
    acc = merkle.RootAccumulator.resume(alog.size(), alog.perfect)
    latest = alog.latest_checkpoint()
    signed = latest.size if latest else 0
    key = vault.keyring.signing_key(conn)
    origin, every = alog.origin, alog.every
    leaf_hash, append = merkle.leaf_hash, store.append
    added = 0
    it = iter(entries)
    while True:
        chunk = [e for _, e in zip(range(batch), it, strict=False)]
        if not chunk:
            break
        with dbmod.transaction(conn):
            for entry in chunk:
                data = canonical(entry)
                leaf = leaf_hash(data)
                completed = acc.append(leaf)
                append(conn, completed[0][1], data.decode("utf-8"), leaf, completed[1:])
                if acc.size - signed >= every:
                    root = acc.root()
                    note = cpmod.sign_checkpoint(
                        cpmod.Checkpoint(origin, acc.size, root), origin, key
                    )
                    store.add_checkpoint(conn, acc.size, root, note, clock.now_iso_ms())
                    signed = acc.size
        added += len(chunk)
    return added


def read_entries(make: Any, start: int, count: int) -> Iterator[dict[str, Any]]:
    """``count`` realistic API-read entries (benchmarks/audit.py's ``EntryMaker``), time now."""
    from pds.audit.log import make_entry

    for i in range(start, start + count):
        yield make_entry(ACTION, **make(i))


def _tables(db_path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return {
            "audit_log": conn.execute(
                "SELECT idx, entry, leaf FROM audit_log ORDER BY idx"
            ).fetchall(),
            "audit_nodes": conn.execute(
                "SELECT level, idx, hash FROM audit_nodes ORDER BY level, idx"
            ).fetchall(),
            "audit_checkpoints": conn.execute(
                "SELECT size, root, note FROM audit_checkpoints ORDER BY size"
            ).fetchall(),
        }
    finally:
        conn.close()


def check_equivalence(tmp: Path, count: int, batch: int, seed: int) -> dict[str, Any]:
    """``count`` entries through ``vault.audit`` on one copy of a vault and through
    :func:`fast_fill` on another: the same rows, subtrees and signed checkpoints, or stop."""
    from pds import db as dbmod
    from pds.audit.log import make_entry
    from pds.audit.verify import verify
    from pds.settings import Settings
    from pds.vault import Vault

    real_home, fast_home = tmp / "check-real", tmp / "check-fast"
    Vault.create(Settings(home=real_home), PASSPHRASE).close()
    shutil.copytree(real_home, fast_home)
    make = auditbench.EntryMaker(seed)
    times = [
        f"2026-12-01T{i // 3_600_000 % 24:02d}:{i // 60_000 % 60:02d}:"
        f"{i // 1000 % 60:02d}.{i % 1000:03d}Z"
        for i in range(count)
    ]
    with Vault.open(Settings(home=real_home), PASSPHRASE) as real:
        for start in range(0, count, batch):
            with dbmod.transaction(real.conn):
                for i in range(start, min(count, start + batch)):
                    real.audit(ACTION, at=times[i], **make(i))
        real_root = real.log.root()
    with Vault.open(Settings(home=fast_home), PASSPHRASE) as fast:
        fast_fill(fast, (make_entry(ACTION, at=times[i], **make(i)) for i in range(count)), batch)
        fast_root = fast.log.root()
        report = verify(fast.log_source())
    a, b = _tables(real_home / "vault.db"), _tables(fast_home / "vault.db")
    for table in a:
        if a[table] != b[table]:
            diff = next(
                (i for i, (x, y) in enumerate(zip(a[table], b[table], strict=False)) if x != y),
                min(len(a[table]), len(b[table])),
            )
            raise RuntimeError(
                f"fast_fill differs from vault.audit in {table} at row {diff}"
                f" ({len(a[table])} rows against {len(b[table])})"
            )
    if real_root != fast_root or not report.ok or report.size != count + 1:
        raise RuntimeError(f"fast_fill's log does not verify: {report.as_dict()}")
    shutil.rmtree(real_home)
    shutil.rmtree(fast_home)
    return {
        "entries": count + 1,
        "audit_log_rows": len(a["audit_log"]),
        "audit_nodes_rows": len(a["audit_nodes"]),
        "checkpoints": len(a["audit_checkpoints"]),
        "root": real_root.hex(),
        "identical": True,
    }


# -- verify at each size ----------------------------------------------------------------------

# Run in a child: open the vault's database without the passphrase and verify the log with the
# verifier key given, reporting max RSS (KiB) after the imports and the opening, and at the end.
_RSS_CHILD = """
import json, resource, sys
from pathlib import Path
from pds.db import open_db, keys
from pds.audit.log import AuditLog
from pds.audit.verify import VaultSource, verify
conn = open_db(Path(sys.argv[1])).conn
source = VaultSource(AuditLog(conn, keys.audit_origin(conn)), keys.audit_origin(conn), sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = verify(source)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps([report.ok, report.size, len(report.checkpoints), before, after]))
"""


def build_logs(tmp: Path, sizes: Sequence[int], batch: int, seed: int) -> list[dict[str, Any]]:
    """One vault per size, each a copy of the previous one extended by :func:`fast_fill`."""
    from pds.settings import Settings
    from pds.vault import Vault

    make = auditbench.EntryMaker(seed)
    built: list[dict[str, Any]] = []
    prev: Path | None = None
    for size in sizes:
        home = tmp / f"log-{size}"
        if prev is None:
            Vault.create(Settings(home=home), PASSPHRASE).close()
        else:
            shutil.copytree(prev, home)
        with Vault.open(Settings(home=home), PASSPHRASE) as vault:
            have = vault.log.size()
            log(f"[growth] filling {home.name}: {have:,} -> {size:,} entries ...")
            start = time.perf_counter()
            added = fast_fill(vault, read_entries(make, have, size - have), batch)
            took = time.perf_counter() - start
            assert vault.log.size() == size, (vault.log.size(), size)
            root = vault.log.root()
            checkpoints = len(vault.log.checkpoints())
            vkey = vault.log_verifier_key()
        db_bytes = sum(p.stat().st_size for p in home.iterdir() if p.is_file())
        log(
            f"[growth]   {added:,} added in {took:.0f} s ({added / took:,.0f} entries/s),"
            f" {db_bytes / MB:,.0f} MB"
        )
        built.append(
            {
                "size": size,
                "home": home,
                "root": root,
                "checkpoints": checkpoints,
                "verifier_key": vkey,
                "db_mb": db_bytes / MB,
                "fill_s": took,
                "fill_entries": added,
            }
        )
        prev = home
    return built


def verify_rss(db_path: Path, vkey: str, size: int) -> dict[str, Any]:
    res = auditbench.run_measured([sys.executable, "-c", _RSS_CHILD, str(db_path), vkey])
    ok, n, cps, before, after = json.loads(res["stdout"])
    if not ok or n != size:
        raise RuntimeError(f"verify in the child did not pass on {size:,} entries")
    return {
        "checkpoints": cps,
        "before_verify_mb": before * 1024 / MB,
        "after_verify_mb": after * 1024 / MB,
        "child_wall_s": res["wall_s"],
    }


def run_verify(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from pds.settings import Settings
    from pds.vault import Vault

    pds = pds_executable()
    log(f"[growth] equivalence: {args.check:,} entries by vault.audit and by fast_fill ...")
    check = check_equivalence(tmp, args.check, min(args.batch, 1000), args.seed)
    log(f"[growth]   identical: {check}")
    built = build_logs(tmp, args.sizes, args.batch, args.seed)
    vaults = {b["size"]: Vault.open(Settings(home=b["home"]), PASSPHRASE) for b in built}
    rounds: dict[int, list[dict[str, float]]] = {b["size"]: [] for b in built}
    cli_rss: dict[int, float] = {}
    loads: list[list[float]] = []
    try:
        for r in range(args.repeats):
            order = built if r % 2 == 0 else built[::-1]
            for b in order:
                size, home = b["size"], b["home"]
                env = pds_env(home)
                cpu = time.process_time()
                n, root, floor_s = auditbench.floor(home / "vault.db")
                if n != size or root != b["root"]:
                    raise RuntimeError(f"the floor's root of {n:,} entries differs")
                one = {"floor_s": floor_s, "floor_cpu_s": time.process_time() - cpu}
                cpu = time.process_time()
                one["verify_s"] = auditbench.timed_verify(vaults[size].log_source(), size)
                one["verify_cpu_s"] = time.process_time() - cpu
                key = auditbench.run_measured([pds, "audit", "key"], env)
                cli = auditbench.cli_verify(pds, env, size)
                one["cli_fixed_s"] = key["wall_s"]
                one["cli_verify_s"] = cli["wall_s"]
                one["cli_verify_cpu_s"] = cli["cpu_s"]
                cli_rss[size] = max(cli_rss.get(size, 0.0), cli["max_rss_mb"])
                rounds[size].append(one)
                loads.append(list(_loadavg()))
                log(
                    f"[growth] round {r + 1} {size:,}: "
                    + ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in one.items())
                    + f"; load {loads[-1][0]:.2f}"
                )
        rss = {}
        for b in built:
            log(f"[growth] peak RSS of verify over {b['size']:,} entries (child) ...")
            rss[b["size"]] = verify_rss(b["home"] / "vault.db", b["verifier_key"], b["size"])
            rss[b["size"]]["cli_verify_mb"] = cli_rss[b["size"]]
    finally:
        for v in vaults.values():
            v.close()
    sizes = []
    for b in built:
        size = b["size"]
        per = {k: spread([x[k] for x in rounds[size]]) for k in rounds[size][0]}
        net = [x["cli_verify_s"] - x["cli_fixed_s"] for x in rounds[size]]
        per["cli_net_s"] = spread(net)
        sizes.append(
            {
                "size": size,
                "checkpoints": b["checkpoints"],
                "db_mb": b["db_mb"],
                "fill_s": b["fill_s"],
                "fill_entries": b["fill_entries"],
                "times": per,
                "us_per_entry": {k: v["median"] / size * 1e6 for k, v in per.items()},
                "rss": rss[size],
            }
        )
    small, big = sizes[-2] if len(sizes) > 1 else sizes[0], sizes[-1]
    growth = (big["times"]["verify_s"]["median"] / small["times"]["verify_s"]["median"]) / (
        big["size"] / small["size"]
    )
    growth_cpu = (
        big["times"]["verify_cpu_s"]["median"] / small["times"]["verify_cpu_s"]["median"]
    ) / (big["size"] / small["size"])
    for s in sizes:  # each round's verify over the floor of the same round
        s["verify_over_floor"] = spread([x["verify_s"] / x["floor_s"] for x in rounds[s["size"]]])
    return {
        "check": check,
        "sizes": sizes,
        "loadavg": loads,
        "per_entry_growth": growth,
        "per_entry_growth_cpu": growth_cpu,
    }


def _loadavg() -> tuple[float, float, float]:
    with open("/proc/loadavg") as fh:
        a, b, c = fh.read().split()[:3]
    return float(a), float(b), float(c)


# -- API reads at two sizes -------------------------------------------------------------------


def _deep_cursor(db_path: Path, from_end: int) -> tuple[str, int, tuple[str, int]]:
    """The keyset cursor of the transaction ``from_end`` records before the last, in the
    API's (occurred_at, id) order, how many transactions there are, and the cursor's key."""
    from pds.http.api.records import encode_cursor

    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        (count,) = conn.execute(
            "SELECT count(*) FROM records WHERE category = 'transactions'"
        ).fetchone()
        at, rid = conn.execute(
            "SELECT occurred_at, id FROM records WHERE category = 'transactions'"
            " ORDER BY occurred_at, id LIMIT 1 OFFSET ?",
            (max(0, count - from_end),),
        ).fetchone()
    finally:
        conn.close()
    return encode_cursor("transactions", at, rid), count, (at, rid)


def run_api(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from pds.http.app import create_app
    from pds.settings import Settings
    from pds.vault import Vault

    apibench = load_helper("api")
    sides = []
    for rows in args.api_rows:
        home = tmp / f"api-{rows}"
        log(f"[growth] vault of {rows:,} transactions (import, token) ...")
        made = apibench.make_vault(home, rows, tmp)
        apibench.raise_rate_limit(home)
        token = apibench.obtain_token(home)["access_token"]
        cursor, count, key = _deep_cursor(home / "vault.db", 51)
        settings = Settings(home=home)
        with Vault.open(settings, PASSPHRASE) as vault:
            app = create_app(settings, vault.keyring)
        sides.append(
            {
                "rows": rows,
                "records": made["records"],
                "transactions": count,
                "setup_s": made["setup_s"],
                "home": home,
                "token": token,
                "client": app.test_client(),
                "headers": {"Authorization": f"Bearer {token}"},
                "paths": {
                    "first page": apibench.PATH,
                    "far end": f"{apibench.PATH}&cursor={cursor}",
                },
                "times": {"first page": [], "far end": []},
                "keys": {"first page": None, "far end": key},
                "parts": {"query first page": [], "query far end": [], "audit append": []},
            }
        )

    def loop(side: dict[str, Any], kind: str, n: int) -> list[float]:
        client, path, headers = side["client"], side["paths"][kind], side["headers"]
        out = []
        for _ in range(n):
            start = time.perf_counter()
            resp = client.get(path, headers=headers)
            out.append(time.perf_counter() - start)
            if resp.status_code != 200 or len(resp.json["records"]) not in (50, 51):
                raise RuntimeError(f"{path}: {resp.status_code} {resp.text[:300]}")
        return out

    def parts(side: dict[str, Any], n: int) -> None:
        """The records query alone (``Vault.page_plain``, as the API calls it) for each page,
        and one auto-committed access-log append (``vault.audit``), ``n`` times each."""
        with Vault.open(Settings(home=side["home"]), PASSPHRASE) as vault:
            for kind, key in side["keys"].items():
                out = side["parts"][f"query {kind}"]
                for _ in range(n):
                    start = time.perf_counter()
                    rows = vault.page_plain("transactions", after=key, limit=51)
                    out.append(time.perf_counter() - start)
                    if len(rows) not in (50, 51):
                        raise RuntimeError(f"{kind}: {len(rows)} rows")
            out = side["parts"]["audit append"]
            for _ in range(n):
                start = time.perf_counter()
                vault.audit(ACTION, actor="client:bench", client_id="bench", count=50)
                out.append(time.perf_counter() - start)

    http = run_http(args, apibench, sides, tmp)
    for side in sides:  # warm
        for kind in side["paths"]:
            loop(side, kind, 50)
    loads = []
    for r in range(args.repeats):
        order = sides if r % 2 == 0 else sides[::-1]
        for side in order:
            for kind in side["paths"]:
                side["times"][kind] += loop(side, kind, args.requests)
        loads.append(list(_loadavg()))
        log(f"[growth] api round {r + 1}/{args.repeats} done; load {loads[-1][0]:.2f}")
    for r in range(args.repeats):  # the parts of a request, each on its own
        for side in sides if r % 2 == 0 else sides[::-1]:
            parts(side, args.requests)
    result = []
    for side in sides:
        lat = {
            k: {q: v * 1e3 for q, v in auditbench.percentiles(t).items()}
            for k, t in side["times"].items()
        }
        result.append(
            {
                "rows": side["rows"],
                "records": side["records"],
                "transactions": side["transactions"],
                "setup_s": side["setup_s"],
                "requests_each": len(side["times"]["first page"]),
                "latency_ms": lat,
                "parts_ms": {
                    k: {q: v * 1e3 for q, v in auditbench.percentiles(t).items()}
                    for k, t in side["parts"].items()
                },
            }
        )
    return {"sides": result, "loadavg": loads, "http": http}


def run_http(
    args: argparse.Namespace, apibench: Any, sides: list[dict[str, Any]], tmp: Path
) -> dict[str, Any]:
    """``pds serve`` (its default workers and threads) on each vault, ``wrk`` with
    ``--connections`` connections for ``--http-seconds`` on each in turn, ``--repeats`` rounds
    alternating; requests/s, p50 and p99 of each run."""
    wrk, _ = apibench.ensure_wrk()
    if wrk is None or args.http_seconds <= 0:
        return {"note": "skipped (no wrk)" if wrk is None else "skipped", "runs": {}}
    servers = []
    try:
        for side in sides:
            port = apibench.free_port()
            cmd = [pds_executable(), "serve", "--port", str(port)]
            srv = apibench.Server(f"pds-{side['rows']}", cmd, port, pds_env(side["home"]), tmp)
            servers.append(srv)
            script = tmp / f"bearer-{side['rows']}.lua"
            script.write_text(apibench.LUA % {"token": side["token"]})
            side["http"] = (srv, script)
        for side in sides:
            side["http"][0].wait_ready(apibench.PATH, side["headers"], timeout=60)

        def load(side: dict[str, Any], seconds: float) -> dict[str, Any]:
            srv, script = side["http"]
            r = apibench.run_wrk(
                wrk,
                f"http://127.0.0.1:{srv.port}{apibench.PATH}",
                script,
                threads=2,
                connections=args.connections,
                seconds=seconds,
            )
            time.sleep(1.0)
            bad = r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
            if bad:
                raise RuntimeError(f"{srv.name}: {bad} errors or non-2xx answers")
            return {
                "rps": r["rps"],
                "p50_ms": r["p50_us"] / 1000,
                "p99_ms": r["p99_us"] / 1000,
                "load1": _loadavg()[0],
            }

        for side in sides:
            load(side, args.http_warmup)
        runs: dict[int, list[dict[str, float]]] = {side["rows"]: [] for side in sides}
        for r in range(args.repeats):
            for side in sides if r % 2 == 0 else sides[::-1]:
                one = load(side, args.http_seconds)
                runs[side["rows"]].append(one)
                log(
                    f"[growth] http round {r + 1} {side['rows']:,}: {one['rps']:,.0f} req/s,"
                    f" p50 {one['p50_ms']:.2f} ms, p99 {one['p99_ms']:.2f} ms;"
                    f" load {one['load1']:.2f}"
                )
    finally:
        for srv in servers:
            srv.stop()
        for side in sides:
            side.pop("http", None)
    return {
        "connections": args.connections,
        "seconds": args.http_seconds,
        "runs": {str(k): v for k, v in runs.items()},
        "median": {
            str(k): {m: statistics.median(x[m] for x in v) for m in ("rps", "p50_ms", "p99_ms")}
            for k, v in runs.items()
        },
    }


# -- the run ----------------------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    info = machine(rfc8785="rfc8785")
    result: dict[str, Any] = {
        "name": NAME,
        "command": " ".join(["python", "benchmarks/growth.py", *sys.argv[1:]]),
        "machine": info,
    }
    with tempfile.TemporaryDirectory(prefix="pds-bench-growth-", dir=args.tmpdir) as tmp_s:
        tmp = Path(tmp_s)
        if args.part in ("verify", "all"):
            result["verify"] = run_verify(args, tmp)
        if args.part in ("api", "all"):
            result["api"] = run_api(args, tmp)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB
    result["summary"] = summary(result)
    return result


def summary(r: dict[str, Any]) -> list[dict[str, Any]]:
    items = []
    if "verify" in r:
        sizes = r["verify"]["sizes"]
        small, big = sizes[-2] if len(sizes) > 1 else sizes[0], sizes[-1]
        ratio = big["times"]["verify_s"]["median"] / small["times"]["verify_s"]["median"]
        items.append(
            {
                "metric": f"verify time {big['size']:,} / {small['size']:,} entries"
                f" (x{big['size'] / small['size']:g} entries)",
                "value": f"{ratio:.2f}x ({big['us_per_entry']['verify_s']:.2f} against"
                f" {small['us_per_entry']['verify_s']:.2f} us/entry:"
                f" {r['verify']['per_entry_growth']:.2f}x per entry; CPU time"
                f" {r['verify']['per_entry_growth_cpu']:.2f}x per entry)",
                "target": "linear",
                "met": None,
            }
        )
        items.append(
            {
                "metric": "peak RSS of verify (child, no unlock), smallest / largest log",
                "value": f"{sizes[0]['rss']['after_verify_mb']:.0f} /"
                f" {big['rss']['after_verify_mb']:.0f} MB",
                "target": "flat",
                "met": None,
            }
        )
    if "api" in r:
        a, b = r["api"]["sides"][0], r["api"]["sides"][-1]
        for kind in ("first page", "far end"):
            la, lb = a["latency_ms"][kind], b["latency_ms"][kind]
            items.append(
                {
                    "metric": f"in-process read, {kind}: {b['rows']:,} / {a['rows']:,} records",
                    "value": f"p50 {lb['p50']:.2f} / {la['p50']:.2f} ms"
                    f" ({lb['p50'] / la['p50']:.2f}x), p99 {lb['p99']:.2f} /"
                    f" {la['p99']:.2f} ms ({lb['p99'] / la['p99']:.2f}x)",
                    "target": "flat",
                    "met": None,
                }
            )
        for kind in ("query first page", "query far end", "audit append"):
            pa, pb = a["parts_ms"][kind], b["parts_ms"][kind]
            items.append(
                {
                    "metric": f"{kind} alone: {b['rows']:,} / {a['rows']:,} records",
                    "value": f"p50 {pb['p50']:.3f} / {pa['p50']:.3f} ms"
                    f" ({pb['p50'] / pa['p50']:.2f}x)",
                    "target": "flat",
                    "met": None,
                }
            )
        http = r["api"]["http"]
        if http.get("runs"):
            ka, kb = str(a["rows"]), str(b["rows"])
            ma, mb = http["median"][ka], http["median"][kb]
            items.append(
                {
                    "metric": f"HTTP first page, {http['connections']} connections:"
                    f" {b['rows']:,} / {a['rows']:,} records",
                    "value": f"p50 {mb['p50_ms']:.1f} / {ma['p50_ms']:.1f} ms"
                    f" ({mb['p50_ms'] / ma['p50_ms']:.2f}x), p99 {mb['p99_ms']:.1f} /"
                    f" {ma['p99_ms']:.1f} ms ({mb['p99_ms'] / ma['p99_ms']:.2f}x),"
                    f" {mb['rps']:,.0f} / {ma['rps']:,.0f} req/s",
                    "target": "flat",
                    "met": None,
                }
            )
    return items


def report(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "How cost grows",
        f"  machine: {m['nproc']} CPUs, {m['cpu']}, {m['memory']}, Python {m['python']},"
        f" SQLite {m['sqlite']}, {m['date']}",
    ]
    if "verify" in r:
        v = r["verify"]
        c = v["check"]
        lines += [
            f"  fast_fill = vault.audit: {c['entries']:,} entries, {c['audit_nodes_rows']:,}"
            f" subtrees, {c['checkpoints']} checkpoints identical; root {c['root'][:16]}...",
            "",
            f"  {'entries':>11} {'ckpts':>6} {'MB':>6} {'floor s':>8} {'verify s':>9}"
            f" {'us/e':>6} {'CLI s':>7} {'CLI net':>8} {'x prev':>7}"
            f" {'RSS before/after':>17} {'CLI RSS':>8}",
        ]
        prev = None
        for s in v["sizes"]:
            t = s["times"]
            grow = (
                f"{t['verify_s']['median'] / prev['times']['verify_s']['median']:.2f}x"
                if prev
                else "-"
            )
            rss = s["rss"]
            lines.append(
                f"  {s['size']:>11,} {s['checkpoints']:>6,} {s['db_mb']:>6,.0f}"
                f" {t['floor_s']['median']:>8.2f} {t['verify_s']['median']:>9.2f}"
                f" {s['us_per_entry']['verify_s']:>6.2f} {t['cli_verify_s']['median']:>7.2f}"
                f" {t['cli_net_s']['median']:>8.2f} {grow:>7}"
                f" {rss['before_verify_mb']:>8.0f}/{rss['after_verify_mb']:<8.0f}"
                f" {rss['cli_verify_mb']:>8.0f}"
            )
            prev = s
        lines.append("")
        lines.append(
            f"  {'entries':>11} {'floor cpu s':>12} {'verify cpu s':>13} {'us/e cpu':>9}"
            f" {'CLI cpu s':>10} {'verify/floor, each round':>26}"
        )
        for s in v["sizes"]:
            t = s["times"]
            each = ", ".join(f"{x:.2f}" for x in s["verify_over_floor"]["runs"])
            lines.append(
                f"  {s['size']:>11,} {t['floor_cpu_s']['median']:>12.2f}"
                f" {t['verify_cpu_s']['median']:>13.2f} {s['us_per_entry']['verify_cpu_s']:>9.2f}"
                f" {t['cli_verify_cpu_s']['median']:>10.2f} {each:>26}"
            )
        lines.append(
            "  load average (1 min) during the rounds: "
            + ", ".join(f"{x[0]:.2f}" for x in v["loadavg"])
        )
    if "api" in r:
        lines.append("")
        lines.append(f"  {'records':>11} {'page':<11} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
        for side in r["api"]["sides"]:
            for kind, lat in side["latency_ms"].items():
                lines.append(
                    f"  {side['rows']:>11,} {kind:<11} {lat['p50']:>7.2f} {lat['p99']:>7.2f}"
                    f" {lat['max']:>7.2f}"
                )
        for side in r["api"]["sides"]:
            for kind, lat in side.get("parts_ms", {}).items():
                lines.append(
                    f"  {side['rows']:>11,} {kind:<18} p50 {lat['p50']:.3f} ms,"
                    f" p99 {lat['p99']:.3f} ms, max {lat['max']:.3f} ms"
                )
        lines.append(
            "  load average (1 min) after each round: "
            + ", ".join(f"{x[0]:.2f}" for x in r["api"]["loadavg"])
        )
        http = r["api"]["http"]
        if http.get("runs"):
            lines.append("")
            lines.append(
                f"  HTTP, pds serve, wrk {http['connections']} connections,"
                f" {http['seconds']:g} s a run (median of rounds; each run's figures)"
            )
            for rows, med in http["median"].items():
                each = "; ".join(
                    f"{x['rps']:,.0f}/s {x['p50_ms']:.1f}/{x['p99_ms']:.1f} ms"
                    f" (load {x['load1']:.1f})"
                    for x in http["runs"][rows]
                )
                lines.append(
                    f"  {int(rows):>11,} {med['rps']:>8,.0f} req/s  p50 {med['p50_ms']:.2f} ms"
                    f"  p99 {med['p99_ms']:.2f} ms   [{each}]"
                )
    lines.append("")
    for item in r["summary"]:
        lines.append(f"  {item['metric']}: {item['value']} (expected {item['target']})")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return sorted({int(x.replace("_", "")) for x in text.split(",")})


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["verify", "api", "all"], default="all")
    ap.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_LARGEST,
        help="largest log, verified beside N/100 and N/10 (10,000,000); run.py passes --rows",
    )
    ap.add_argument("--sizes", type=_ints, help="log sizes instead, e.g. 100000,1000000")
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="entries per transaction")
    ap.add_argument("--check", type=int, default=DEFAULT_CHECK, help="entries of the equivalence")
    ap.add_argument("--repeats", type=int, default=3, help="rounds (3)")
    ap.add_argument(
        "--api-rows",
        type=_ints,
        help="vault sizes for the API (default N/1000 and N/10 of --rows: 10,000 and 1,000,000)",
    )
    ap.add_argument("--requests", type=int, default=500, help="in-process reads per page a round")
    ap.add_argument("--http-seconds", type=float, default=10.0, help="wrk seconds a run (0: none)")
    ap.add_argument("--http-warmup", type=float, default=3.0, help="wrk warm-up seconds a vault")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    ap.add_argument("--seed", type=int, default=9162)
    ap.add_argument("--tmpdir", help="where to put the temporary files (default: $TMPDIR)")
    ap.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if args.api_rows is None:
        large = max(1_000, min(1_000_000, args.rows // 10))
        args.api_rows = [max(100, large // 100), large]
    if args.sizes is None:
        args.sizes = sorted({max(2, args.rows // 100), max(2, args.rows // 10), max(2, args.rows)})
    if min(*args.sizes, args.batch, args.check, args.repeats, args.requests) < 1:
        ap.error("sizes, --batch, --check, --repeats and --requests must be at least 1")
    result = run_benchmark(args)
    return finish(result, report(result), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
