"""Demo data: a synthetic UK midata statement, deterministic, for `pds demo` and benchmarks."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from pds.importer import ImportSummary, import_file
from pds.vault import Vault

MIDATA_HEADER = "Date,Type,Merchant/Description,Debit/Credit,Balance"
_SPEND = [
    ("VIS", "TESCO STORES 2841", (3, 80)),
    ("VIS", "SAINSBURYS S/MKTS", (5, 95)),
    ("VIS", "PRET A MANGER", (2, 12)),
    (")))", "COSTA COFFEE", (2, 6)),
    ("DD", "OCTOPUS ENERGY", (60, 140)),
    ("DD", "THAMES WATER", (30, 45)),
    ("ATM", "CASH HSBC OXFORD ST", (10, 100)),
    ("VIS", "TFL TRAVEL CHARGE", (2, 9)),
    ("VIS", "AMAZON.CO.UK*2K4", (4, 60)),
]


def synthetic_midata(rows: int, seed: int = 7, end: date = date(2026, 10, 31)) -> Iterator[str]:
    """Lines of a midata CSV with ``rows`` transactions, newest first, running balance."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    yield MIDATA_HEADER
    day = end
    balance = Decimal("1523.40")
    per_day = max(1, rows // 365)
    for i in range(rows):
        if i % per_day == per_day - 1:
            day -= timedelta(days=1)
        if i % 97 == 0:
            kind, desc, amount = (
                "BGC",
                "ACME LTD SALARY",
                Decimal(rng.randint(180000, 260000)) / 100,
            )
        else:
            kind, desc, (lo, hi) = rng.choice(_SPEND)
            amount = -Decimal(rng.randint(lo * 100, hi * 100)) / 100
        yield f"{day:%d/%m/%Y},{kind},{desc},{amount:.2f},{balance:.2f}"
        balance -= amount
    yield f"Arranged overdraft limit,{end:%d/%m/%Y},500.00"


def write_synthetic_midata(path: Path, rows: int, seed: int = 7) -> Path:
    with path.open("w", encoding="utf-8", newline="\r\n") as fh:
        for line in synthetic_midata(rows, seed):
            fh.write(line + "\n")
    return path


def load_demo(vault: Vault) -> list[ImportSummary]:
    """Import the demo statement; a second run adds nothing (deduplicated)."""
    with tempfile.TemporaryDirectory(prefix="pds-demo-") as tmp:
        path = write_synthetic_midata(Path(tmp) / "demo-current-account-midata.csv", 600)
        return [import_file(vault, path, connector="midata")]
