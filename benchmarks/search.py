"""Search benchmark: a page of matches across every category of a 1,000,000-record vault,
against SQLite FTS5 over the same plaintext and the decrypt-and-scan it replaces.

Run it as a script (``python benchmarks/search.py [--rows N]``) or through
``benchmarks/run.py`` (``make bench``), which passes ``--rows N``: here that means records
in the vault. Never part of the test suite.

What one run does (see docs/benchmarks.md, section "Search"):

1. Setup (timed, reported, not judged): a vault made with ``Vault.create`` (a cheap KDF:
   unlocking is not measured) and filled through ``Vault.ingest`` (what ``pds import``
   calls), ten sources of ``--rows / 10`` synthetic records each, in batches of 5,000,
   over five categories (transactions, events, contacts, health, energy) with words drawn
   from a Zipf-distributed vocabulary of 20,000 made-up words, plus three planted words:
   ``zanzibarite`` in 25 records (rare), ``groceries`` in about one record in five
   (common), and ``harbour`` and ``lantern`` each in about one in fifty (the two-word
   query). The vault is kept under ``--cache`` (default: the temp dir) and reused by the
   next run with the same ``--rows`` and ``--seed``.
2. ``Vault.search(query)`` (what ``/search`` and ``pds search`` call): every matching
   category with its count and its 10 newest matches, decrypted; and the whole page,
   ``GET /search?q=`` through the Flask app in-process (test client, the owner signed in),
   rendered. ``--repeats`` runs per query after one warm-up; the median.
3. Baseline, same data: an FTS5 table (``unicode61``, ``remove_diacritics 2``) over the
   plaintext of every record with its category and time, in its own database; the same
   page (counts per category, 10 newest per category) by ``MATCH``.
4. The old per-category filter: decrypt and match a substring, over the first 50,000
   transactions, scaled to the vault's transactions.
5. Indexing an older vault on first unlock: ``--fill-rows`` records (100,000) in a vault of
   their own, its index emptied, then timed through ``Vault.open``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from _common import PASSPHRASE, finish, machine, spread, verdicts  # noqa: I001 - first: fixes sys.path

from pds import db as dbmod
from pds.settings import KdfParams, Settings
from pds.vault import Prepared, SourceInfo, Vault
from pds.vault import search as search_words
from pds.vault.records import canonical

DEFAULT_ROWS = 1_000_000
BATCH = 5_000
SCAN_SLICE = 50_000
TARGET_SECONDS = 1.0
CHEAP_KDF = KdfParams(memory_kib=8 * 1024, iterations=1, lanes=1)
RARE, COMMON, PAIR = "zanzibarite", "groceries", ("harbour", "lantern")
QUERIES = {"rare word": RARE, "common word": COMMON, "two words": " ".join(PAIR)}
CATEGORIES = ["transactions", "events", "contacts", "health", "energy"]


def log(message: str) -> None:
    print(f"[search] {message}", file=sys.stderr, flush=True)


class Words:
    """Made-up words, drawn Zipf-like (a few very common, a long tail)."""

    def __init__(self, rng: random.Random, size: int = 20_000):
        letters = "bcdfghjklmnprstvwz"
        vowels = "aeiou"
        seen: dict[str, None] = {}
        while len(seen) < size:
            n = rng.randint(2, 4)
            seen["".join(rng.choice(letters) + rng.choice(vowels) for _ in range(n))] = None
        self.vocab = list(seen)
        self.cumulative = list(itertools.accumulate(1 / (i + 1) for i in range(size)))
        self.rng = rng

    def some(self, k: int) -> str:
        return " ".join(self.rng.choices(self.vocab, cum_weights=self.cumulative, k=k))


def payload(rng: random.Random, words: Words, category: str, n: int) -> dict[str, Any]:
    text = words.some(rng.randint(2, 5))
    if rng.random() < 0.2:
        text += f" {COMMON}"
    for word in PAIR:
        if rng.random() < 0.02:
            text += f" {word}"
    if category == "transactions":
        return {
            "description": text.upper(),
            "counterparty": words.some(2).title(),
            "amount": f"{rng.uniform(-500, 500):.2f}",
            "currency": "GBP",
            "account": f"acct-{n % 7}",
        }
    if category == "events":
        return {"summary": text.capitalize(), "location": words.some(1).title(), "uid": f"e{n}"}
    if category == "contacts":
        name = words.some(2).title()
        return {"name": name, "email": f"{name.split()[0].lower()}@example.org", "note": text}
    if category == "health":
        return {"type": "Observation", "code": "29463-7", "display": text, "value": n % 90}
    return {"commodity": "electricity", "unit": "kWh", "value": f"{n % 40}.5", "meter": text}


def records(rows: int, seed: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
    rng = random.Random(seed)
    words = Words(rng)
    rare_at = set(rng.sample(range(rows), min(25, rows)))
    for n in range(rows):
        category = CATEGORIES[n % len(CATEGORIES)]
        day = f"20{10 + n * 15 // rows:02d}-{1 + n % 12:02d}-{1 + n % 28:02d}"
        body = payload(rng, words, category, n)
        if n in rare_at:
            first = next(iter(body))
            body[first] = f"{body[first]} {RARE}"
        yield category, day, body


def build(home: Path, rows: int, seed: int) -> dict[str, float]:
    """The benchmark's vault in ``home`` (reused when already complete), and the plaintext
    FTS5 database beside it; their build times (0 when reused)."""
    settings = Settings(home=home, kdf=CHEAP_KDF)
    done = home / "complete"
    if done.exists():
        return json.loads(done.read_text())
    shutil.rmtree(home, ignore_errors=True)
    fts = sqlite3.connect(home.parent / f"{home.name}-fts.db")
    fts.execute("DROP TABLE IF EXISTS fts")
    fts.execute(
        "CREATE VIRTUAL TABLE fts USING fts5(category UNINDEXED, occurred_at UNINDEXED, "
        "body, tokenize = 'unicode61 remove_diacritics 2')"
    )
    per_source = max(1, rows // 10)
    vault_s = fts_s = 0.0
    stream = records(rows, seed)
    with Vault.create(settings, PASSPHRASE) as vault:
        made = 0
        while made < rows:
            count = min(per_source, rows - made)
            chunk = [next(stream) for _ in range(count)]
            made += count
            start = time.perf_counter()
            batches = (
                [
                    Prepared(c, d, canonical(p), f"{made}-{i + j}", 0, p)
                    for j, (c, d, p) in enumerate(chunk[i : i + BATCH])
                ]
                for i in range(0, count, BATCH)
            )
            vault.ingest(SourceInfo("bench", f"part-{made}.json", made.to_bytes(8)), batches)
            vault_s += time.perf_counter() - start
            start = time.perf_counter()
            fts.executemany(
                "INSERT INTO fts (category, occurred_at, body) VALUES (?, ?, ?)",
                [(c, d, " ".join(search_words.payload_words(p, c))) for c, d, p in chunk],
            )
            fts.commit()
            fts_s += time.perf_counter() - start
            log(f"built {made:,} of {rows:,} records")
    fts.close()
    times = {"vault_build_s": vault_s, "fts_build_s": fts_s}
    done.write_text(json.dumps(times))
    return times


def timed(fn: Any, repeats: int) -> tuple[dict[str, Any], Any]:
    fn()  # warm-up
    runs, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - start)
    return spread(runs), out


def fts_page(conn: sqlite3.Connection, query: str) -> list[tuple[str, int, list[int]]]:
    match = " AND ".join(f'"{w}"' for w in query.split())
    counts = conn.execute(
        "SELECT category, count(*) FROM fts WHERE fts MATCH ? GROUP BY 1 ORDER BY 1", (match,)
    ).fetchall()
    return [
        (
            cat,
            n,
            [
                r[0]
                for r in conn.execute(
                    "SELECT rowid FROM fts WHERE fts MATCH ? AND category = ? "
                    "ORDER BY occurred_at DESC, rowid DESC LIMIT 10",
                    (match, cat),
                )
            ],
        )
        for cat, n in counts
    ]


def old_scan(vault: Vault, needle: str) -> int:
    found = 0
    for n, rec in enumerate(vault.records("transactions")):
        if n == SCAN_SLICE:
            break
        if any(needle in str(v).lower() for v in rec.payload.values() if v is not None):
            found += 1
    return found


def fill_time(tmp: Path, rows: int, seed: int) -> dict[str, Any]:
    home = tmp / f"fill-{rows}"
    shutil.rmtree(home, ignore_errors=True)
    build(home, rows, seed)
    settings = Settings(home=home, kdf=CHEAP_KDF)
    with Vault.open(settings, PASSPHRASE) as vault, dbmod.transaction(vault.conn):
        vault.conn.execute("DELETE FROM search_terms")
        vault.conn.execute("DELETE FROM meta WHERE key = ?", (search_words.DONE,))
    start = time.perf_counter()
    Vault.open(settings, PASSPHRASE).close()
    took = time.perf_counter() - start
    shutil.rmtree(home, ignore_errors=True)
    (tmp / f"fill-{rows}-fts.db").unlink(missing_ok=True)
    return {"records": rows, "seconds": took}


def signed_in(settings: Settings, vault: Vault) -> Any:
    """A Flask test client of the pds app on ``vault``, the owner signed in."""
    from pds.http.app import create_app

    client = create_app(settings, vault.keyring).test_client()
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    answer = client.post("/login", data={"passphrase": PASSPHRASE, "csrf_token": token})
    if answer.status_code != 303:
        raise RuntimeError(f"signing in answered {answer.status_code}")
    return client


def web_page(client: Any, query: str) -> int:
    answer = client.get("/search", query_string={"q": query})
    if answer.status_code != 200:
        raise RuntimeError(f"/search answered {answer.status_code}")
    return len(answer.data)


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    cache = Path(args.cache or tempfile.gettempdir()) / "pds-bench-search"
    cache.mkdir(parents=True, exist_ok=True)
    home = cache / f"vault-{args.rows}-{args.seed}"
    log(f"vault of {args.rows:,} records in {home}")
    built = build(home, args.rows, args.seed)
    settings = Settings(home=home, kdf=CHEAP_KDF)
    result: dict[str, Any] = {"name": "search", "machine": machine(), "rows": args.rows}
    result["build"] = built
    result["size_mb"] = {
        "vault": (home / "vault.db").stat().st_size / 2**20,
        "fts": (cache / f"{home.name}-fts.db").stat().st_size / 2**20,
    }
    queries: dict[str, Any] = {}
    with Vault.open(settings, PASSPHRASE) as vault:
        terms = vault.conn.execute("SELECT count(*) FROM search_terms").fetchone()[0]
        result["index_rows"] = terms
        fts = sqlite3.connect(cache / f"{home.name}-fts.db")
        client = signed_in(settings, vault)
        for label, query in QUERIES.items():
            ours, page = timed(lambda q=query: vault.search(q), args.repeats)
            web, _ = timed(lambda q=query: web_page(client, q), args.repeats)
            theirs, fpage = timed(lambda q=query: fts_page(fts, q), args.repeats)
            queries[label] = {
                "query": query,
                "matches": {c: n for c, n, _ in page},
                "fts_matches": {c: n for c, n, _ in fpage},
                "pds_s": ours,
                "web_s": web,
                "fts_s": theirs,
            }
            log(f"{label}: pds {ours['median']:.3f} s, page {web['median']:.3f} s")
        fts.close()
        start = time.perf_counter()
        old_scan(vault, RARE)
        scanned = time.perf_counter() - start
        transactions = vault.status()["categories"].get("transactions", 0)
        slice_n = min(SCAN_SLICE, transactions)
        result["old_scan"] = {
            "records": slice_n,
            "seconds": scanned,
            "scaled_to": transactions,
            "scaled_s": scanned * transactions / max(1, slice_n),
        }
    result["queries"] = queries
    result["fill"] = fill_time(cache, args.fill_rows, args.seed) if args.fill_rows else None
    worst = max(q["web_s"]["median"] for q in queries.values())
    result["summary"] = [
        {
            "metric": f"slowest /search page, {args.rows:,} records (s)",
            "value": round(worst, 4),
            "target": f"< {TARGET_SECONDS}",
            "met": worst < TARGET_SECONDS,
        }
    ]
    return result


def report(result: dict[str, Any]) -> str:
    lines = [f"Search over {result['rows']:,} records ({result['index_rows']:,} index rows)"]
    b = result["build"]
    if b.get("vault_build_s"):
        lines.append(f"  built: vault {b['vault_build_s']:.0f} s, fts5 {b['fts_build_s']:.0f} s")
    size = result["size_mb"]
    lines.append(f"  size: vault {size['vault']:.0f} MB, fts5 {size['fts']:.0f} MB")
    for label, q in result["queries"].items():
        ours, theirs = q["pds_s"]["median"], q["fts_s"]["median"]
        lines.append(
            f"  {label} ({q['query']!r}, {sum(q['matches'].values()):,} matches): "
            f"pds {ours * 1000:.1f} ms (page {q['web_s']['median'] * 1000:.1f} ms), "
            f"fts5 {theirs * 1000:.1f} ms (x{ours / theirs if theirs else 0:.2f})"
        )
    old = result["old_scan"]
    lines.append(
        f"  decrypt-and-scan: {old['records']:,} transactions in {old['seconds']:.2f} s, "
        f"{old['scaled_s']:.1f} s for all {old['scaled_to']:,}"
    )
    if result["fill"]:
        f = result["fill"]
        lines.append(f"  indexing an older vault: {f['records']:,} records in {f['seconds']:.1f} s")
    return "\n".join([*lines, *verdicts(result["summary"])])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="records (1,000,000)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per query (5)")
    ap.add_argument("--seed", type=int, default=16, help="seed of the synthetic records")
    ap.add_argument("--fill-rows", type=int, default=100_000, help="older vault to index")
    ap.add_argument("--cache", help="where the vault is kept between runs (default: $TMPDIR)")
    ap.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if min(args.rows, args.repeats) < 1 or args.fill_rows < 0:
        ap.error("--rows and --repeats must be at least 1, --fill-rows at least 0")
    result = run_benchmark(args)
    return finish(result, report(result), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
