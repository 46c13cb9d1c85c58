"""Small factories: make files and records for tests in one call."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

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


@st.composite
def mutations(draw: st.DrawFn, samples: list[bytes]) -> bytes:
    """One of ``samples`` with 1-8 random bytes flipped, inserted or deleted (for fuzzing)."""
    data = bytearray(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "insert" or not data:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "flip":
            data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        else:
            del data[min(at, len(data) - 1)]
    return bytes(data)
