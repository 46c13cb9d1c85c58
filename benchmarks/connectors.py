"""Connector benchmark: a 1,000,000-row bank CSV and a 1 GB Apple Health export imported.

Run it as a script (``python benchmarks/connectors.py [--rows N]``) or through
``benchmarks/run.py`` (``make bench``). What one run does (docs/benchmarks.md, "Connectors"):

1. Writes a synthetic midata file and a synthetic Charles Schwab checking CSV of ``--rows``
   rows each (the Schwab layout: quoted fields, ``MM/DD/YYYY``, ``$1,036.47`` amounts in
   separate Withdrawal/Deposit columns, a running balance), and a synthetic Apple Health
   ``export.xml`` of ``--health-mb`` megabytes (the real export's internal DTD, ``Record``
   elements of four types, some with ``MetadataEntry`` children, a ``Workout`` every 500
   records and an ``ActivitySummary`` a day). Not timed.
2. ``--repeats`` times, alternating: ``pds import`` of the midata file (the baseline: the
   import rate the vault issue measured) and of the bank CSV, each into a fresh vault; the
   wall clock and the peak RSS of the whole CLI process (kernel rusage via ``wait4``).
3. Once: ``pds import`` of the Apple Health export into a fresh vault; records/s, MB/s and
   peak RSS.

Targets: peak RSS under 200 MB for both; the bank CSV import within 1.5x of the midata
import rate (rate ratio >= 0.667).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    MB,
    filesystem,
    finish,
    machine,
    pds_env,
    pds_executable,
    run_measured,
    spread,
    verdicts,
)

NAME = "connectors"
DEFAULT_ROWS = 1_000_000
DEFAULT_HEALTH_MB = 1024
TARGET_RATE_RATIO = 1 / 1.5
TARGET_RSS_MB = 200.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- synthetic files ----------------------------------------------------------------------------


def _money(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def write_schwab_csv(path: Path, rows: int, seed: int = 7) -> Path:
    """A Charles Schwab checking export of ``rows`` transactions, newest first."""
    rng = random.Random(seed)
    kinds = ["ACH", "ATM", "DEPOSIT", "CHECK", "VISA", "TRANSFER"]
    payees = ["BMO HARRIS BANK", "PAYPAL INST XFER", "WHOLE FOODS #102", "CITY WATER", "SHELL"]
    day = datetime(2030, 12, 31)
    balance = 5_000_000
    header = '"Date","Status","Type","CheckNumber","Description","Withdrawal","Deposit",'
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(header + '"RunningBalance"\n')
        for i in range(rows):
            if i % 7 == 0:
                day -= timedelta(days=1)
            cents = rng.randint(1, 250_000)
            kind = kinds[i % len(kinds)]
            out = kind != "DEPOSIT"
            check = str(1000 + i) if kind == "CHECK" else ""
            fh.write(
                f'"{day:%m/%d/%Y}","Posted","{kind}","{check}","{payees[i % len(payees)]} {i}",'
                f'"{_money(cents) if out else ""}","{"" if out else _money(cents)}",'
                f'"{_money(balance)}"\n'
            )
            balance += cents if out else -cents  # newest first: walk the balance backwards
    return path


_HEALTH_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 11 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Me EMPTY>
<!ATTLIST Me
  HKCharacteristicTypeIdentifierDateOfBirth         CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBiologicalSex       CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBloodType           CDATA #REQUIRED
  HKCharacteristicTypeIdentifierFitzpatrickSkinType CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry
  key   CDATA #REQUIRED
  value CDATA #REQUIRED
>
]>
<HealthData locale="en_GB">
 <ExportDate value="2031-01-01 09:00:00 +0000"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1980-01-01" \
HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexNotSet" \
HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" \
HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet"/>
"""

_TYPES = (
    ("HKQuantityTypeIdentifierStepCount", "count", lambda r: str(r.randint(1, 900))),
    ("HKQuantityTypeIdentifierHeartRate", "count/min", lambda r: str(r.randint(45, 180))),
    (
        "HKQuantityTypeIdentifierDistanceWalkingRunning",
        "km",
        lambda r: f"{r.randint(1, 99999) / 10000:.4f}",
    ),
    ("HKQuantityTypeIdentifierActiveEnergyBurned", "Cal", lambda r: f"{r.randint(1, 999) / 10}"),
)


def write_health_export(path: Path, megabytes: int, seed: int = 11) -> dict[str, int]:
    """An Apple Health export.xml of about ``megabytes`` MB; the count of each element kind."""
    rng = random.Random(seed)
    target = megabytes * MB
    counts = {"Record": 0, "Workout": 0, "ActivitySummary": 0}
    when = datetime(2020, 1, 1, 6, 0, 0)
    day = when.date()
    written = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        written += fh.write(_HEALTH_HEAD.replace("\\\n", ""))
        while written < target:
            kind, unit, value = _TYPES[counts["Record"] % len(_TYPES)]
            start = f"{when:%Y-%m-%d %H:%M:%S} +0100"
            end = f"{when + timedelta(seconds=59):%Y-%m-%d %H:%M:%S} +0100"
            meta = counts["Record"] % 10 == 0
            written += fh.write(
                f' <Record type="{kind}" sourceName="Sam\u2019s Apple\u00a0Watch" '
                f'sourceVersion="10.1" unit="{unit}" creationDate="{end}" startDate="{start}" '
                f'endDate="{end}" value="{value(rng)}"' + (">\n" if meta else "/>\n")
            )
            if meta:
                written += fh.write(
                    '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="1"/>\n'
                    " </Record>\n"
                )
            counts["Record"] += 1
            if counts["Record"] % 500 == 0:
                written += fh.write(
                    f' <Workout workoutActivityType="HKWorkoutActivityTypeRunning" '
                    f'duration="31.5" durationUnit="min" totalDistance="5.1" '
                    f'totalDistanceUnit="km" totalEnergyBurned="402" totalEnergyBurnedUnit="Cal" '
                    f'sourceName="Sam\u2019s Apple\u00a0Watch" sourceVersion="10.1" '
                    f'creationDate="{end}" startDate="{start}" endDate="{end}"/>\n'
                )
                counts["Workout"] += 1
            when += timedelta(seconds=61)
            if when.date() != day:
                written += fh.write(
                    f' <ActivitySummary dateComponents="{day:%Y-%m-%d}" '
                    f'activeEnergyBurned="512.3" activeEnergyBurnedGoal="600" '
                    f'activeEnergyBurnedUnit="Cal" appleExerciseTime="34" '
                    f'appleExerciseTimeGoal="30" appleStandHours="11" appleStandHoursGoal="12"/>\n'
                )
                counts["ActivitySummary"] += 1
                day = when.date()
        fh.write("</HealthData>\n")
    return counts


# -- the runs ----------------------------------------------------------------------------------


def import_once(pds: str, path: Path, home: Path) -> dict[str, Any]:
    """``pds init`` (not timed) then ``pds import --json PATH`` (timed) in a fresh vault."""
    env = pds_env(home)
    run_measured([pds, "init", "--json"], env)
    res = run_measured([pds, "import", "--json", str(path)], env)
    doc = json.loads(res.pop("stdout"))
    res.update(new=doc["new"], duplicate=doc["duplicate"], rejected=doc["rejected"])
    res["connector"] = doc["files"][0]["connector"]
    shutil.rmtree(home)
    return res


def _check(res: dict[str, Any], expected: int, what: str) -> None:
    if (res["new"], res["duplicate"], res["rejected"]) != (expected, 0, 0):
        raise RuntimeError(f"{what}: pds import stored the wrong records: {res}")


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from pds.demo import write_synthetic_midata

    pds = pds_executable()
    info = machine(defusedxml="defusedxml")
    rows = args.rows
    with tempfile.TemporaryDirectory(prefix="pds-bench-connectors-", dir=args.tmpdir) as tmp_s:
        tmp = Path(tmp_s)
        info["filesystem"] = filesystem(tmp)
        log(f"[connectors] writing {rows:,} midata rows and {rows:,} Schwab CSV rows ...")
        midata = write_synthetic_midata(tmp / "midata.csv", rows)
        bank = write_schwab_csv(tmp / "schwab-checking.csv", rows)
        pairs: list[dict[str, Any]] = []
        for i in range(args.repeats):
            log(f"[connectors] run {i + 1}/{args.repeats}: midata ...")
            base = import_once(pds, midata, tmp / f"home-midata-{i}")
            _check(base, rows, "midata")
            log(f"[connectors]   {rows / base['wall_s']:,.0f} rows/s, {base['max_rss_mb']:.0f} MB")
            log(f"[connectors] run {i + 1}/{args.repeats}: bank CSV ...")
            csv_run = import_once(pds, bank, tmp / f"home-bank-{i}")
            _check(csv_run, rows, "bank CSV")
            log(
                f"[connectors]   {rows / csv_run['wall_s']:,.0f} rows/s, "
                f"{csv_run['max_rss_mb']:.0f} MB ({csv_run['connector']})"
            )
            pairs.append({"midata": base, "bank_csv": csv_run})
        midata.unlink()
        bank_bytes = bank.stat().st_size
        bank.unlink()

        log(f"[connectors] writing a {args.health_mb:,} MB Apple Health export ...")
        health = tmp / "export.xml"
        counts = write_health_export(health, args.health_mb)
        health_bytes = health.stat().st_size
        log(f"[connectors] importing it ({sum(counts.values()):,} elements) ...")
        health_run = import_once(pds, health, tmp / "home-health")
        _check(health_run, sum(counts.values()), "Apple Health")
    return summarise(args, info, pairs, health_run, counts, health_bytes, bank_bytes)


def summarise(
    args: argparse.Namespace,
    info: dict[str, Any],
    pairs: list[dict[str, Any]],
    health: dict[str, Any],
    counts: dict[str, int],
    health_bytes: int,
    bank_bytes: int,
) -> dict[str, Any]:
    rows = args.rows
    ratios = [(p["midata"]["wall_s"] / p["bank_csv"]["wall_s"]) for p in pairs]
    ratio = spread(ratios)
    bank_rss = max(p["bank_csv"]["max_rss_mb"] for p in pairs)
    elements = sum(counts.values())
    summary = [
        {
            "metric": "bank CSV import rate / midata import rate",
            "value": f"{ratio['median']:.2f} (pairs {ratio['min']:.2f}-{ratio['max']:.2f})",
            "target": f">= {TARGET_RATE_RATIO:.3f} (within 1.5x)",
            "met": ratio["median"] >= TARGET_RATE_RATIO,
        },
        {
            "metric": "bank CSV import peak RSS",
            "value": f"{bank_rss:.0f} MB",
            "target": f"< {TARGET_RSS_MB:.0f} MB",
            "met": bank_rss < TARGET_RSS_MB,
        },
        {
            "metric": f"Apple Health import peak RSS ({health_bytes / MB:,.0f} MB file)",
            "value": f"{health['max_rss_mb']:.0f} MB",
            "target": f"< {TARGET_RSS_MB:.0f} MB",
            "met": health["max_rss_mb"] < TARGET_RSS_MB,
        },
    ]
    return {
        "name": NAME,
        "machine": info,
        "rows": rows,
        "bank_csv_bytes": bank_bytes,
        "pairs": [
            {
                side: {k: v[k] for k in ("wall_s", "cpu_s", "max_rss_mb", "connector")}
                for side, v in p.items()
            }
            for p in pairs
        ],
        "midata_rows_per_s": spread([rows / p["midata"]["wall_s"] for p in pairs]),
        "bank_csv_rows_per_s": spread([rows / p["bank_csv"]["wall_s"] for p in pairs]),
        "health": {
            "bytes": health_bytes,
            "elements": counts,
            "wall_s": health["wall_s"],
            "cpu_s": health["cpu_s"],
            "max_rss_mb": health["max_rss_mb"],
            "records_per_s": elements / health["wall_s"],
            "mb_per_s": health_bytes / MB / health["wall_s"],
            "connector": health["connector"],
        },
        "summary": summary,
    }


def report(r: dict[str, Any]) -> str:
    m = r["machine"]
    h = r["health"]
    lines = [
        f"Connectors benchmark, {m.get('date', '')}, {m.get('cpu', '')}, {m.get('nproc', '')} CPUs",
        f"  midata:   {r['midata_rows_per_s']['median']:,.0f} rows/s (median of {len(r['pairs'])})",
        f"  bank CSV: {r['bank_csv_rows_per_s']['median']:,.0f} rows/s "
        f"({r['bank_csv_bytes'] / MB:,.0f} MB, {r['pairs'][0]['bank_csv']['connector']})",
        f"  Apple Health: {h['bytes'] / MB:,.0f} MB, {sum(h['elements'].values()):,} records in "
        f"{h['wall_s']:,.0f} s = {h['records_per_s']:,.0f} records/s, {h['mb_per_s']:.1f} MB/s, "
        f"peak RSS {h['max_rss_mb']:.0f} MB",
        "",
    ]
    lines.extend(verdicts(r["summary"]))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="CSV rows (1,000,000)")
    ap.add_argument("--repeats", type=int, default=3, help="CSV runs per side (3)")
    ap.add_argument(
        "--health-mb",
        type=int,
        help="size of the Apple Health export in MB (1024; scaled with --rows when not given)",
    )
    ap.add_argument("--tmpdir", help="where to put the temporary files (default: $TMPDIR)")
    ap.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if args.rows < 1 or args.repeats < 1:
        ap.error("--rows and --repeats must be at least 1")
    if args.health_mb is None:
        args.health_mb = max(1, round(DEFAULT_HEALTH_MB * args.rows / DEFAULT_ROWS))
    result = run_benchmark(args)
    return finish(result, report(result), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
