"""Small factories: make files and records for tests in one call."""

from __future__ import annotations

from pathlib import Path

from pds.vault import Prepared
from pds.vault.records import canonical


def transaction(
    date: str = "2024-03-01",
    amount: str = "-3.20",
    description: str = "COSTA COFFEE",
    **extra: str | None,
) -> dict[str, str | None]:
    payload: dict[str, str | None] = {
        "date": date,
        "amount": amount,
        "currency": "GBP",
        "description": description,
        "counterparty": None,
        "balance": None,
        "type": "VIS",
        "account": None,
        "reference": None,
    }
    payload.update(extra)
    return payload


def prepared(payload: dict, nth: int = 0, identity: str | None = None) -> Prepared:
    return Prepared("transactions", payload["date"], canonical(payload), identity, nth)


def midata_file(path: Path, rows: list[tuple[str, str, str, str, str]], encoding="utf-8") -> Path:
    """A midata CSV with the given (date, type, description, amount, balance) rows."""
    lines = ["Date,Type,Merchant/Description,Debit/Credit,Balance"]
    lines += [",".join(r) for r in rows]
    lines.append("Arranged overdraft limit,01/04/2024,500.00")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path
