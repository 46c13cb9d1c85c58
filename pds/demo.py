"""Demo data, deterministic, for `pds demo` and benchmarks: a synthetic UK midata statement,
an address book and a calendar."""

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


DEMO_CONTACTS = """BEGIN:VCARD\r
VERSION:3.0\r
UID:demo-contact-1\r
FN:Priya Shah\r
N:Shah;Priya;;;\r
EMAIL;TYPE=home:priya@example.org\r
TEL;TYPE=cell:+44 7700 900123\r
ADR;TYPE=home:;;12 Elm Road;Oxford;;OX1 2AB;United Kingdom\r
BDAY:1988-04-12\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:3.0\r
UID:demo-contact-2\r
FN:Tom Okafor\r
N:Okafor;Tom;;;\r
EMAIL;TYPE=work:tom@example.com\r
ORG:Octopus Energy\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:3.0\r
UID:demo-contact-3\r
FN:Dr Anne Lewis\r
N:Lewis;Anne;;Dr;\r
TEL;TYPE=work:+44 20 7946 0018\r
ORG:Oxford Street Surgery\r
END:VCARD\r
"""

DEMO_CALENDAR = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//pds//demo//EN\r
BEGIN:VEVENT\r
UID:demo-event-1@pds\r
DTSTAMP:20261001T090000Z\r
DTSTART;TZID=Europe/London:20261103T093000\r
DTEND;TZID=Europe/London:20261103T100000\r
SUMMARY:GP appointment\r
LOCATION:Oxford Street Surgery\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:demo-event-2@pds\r
DTSTAMP:20261001T090000Z\r
DTSTART;VALUE=DATE:20261114\r
DTEND;VALUE=DATE:20261115\r
SUMMARY:Priya's birthday dinner\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:demo-event-3@pds\r
DTSTAMP:20261001T090000Z\r
DTSTART:20261201T180000Z\r
DTEND:20261201T190000Z\r
SUMMARY:Energy tariff ends: compare offers\r
RRULE:FREQ=YEARLY\r
END:VEVENT\r
END:VCALENDAR\r
"""


def load_demo(vault: Vault) -> list[ImportSummary]:
    """Import the demo statement, address book and calendar; a second run adds nothing
    (deduplicated)."""
    with tempfile.TemporaryDirectory(prefix="pds-demo-") as tmp:
        folder = Path(tmp)
        path = write_synthetic_midata(folder / "demo-current-account-midata.csv", 600)
        contacts = folder / "demo-contacts.vcf"
        contacts.write_bytes(DEMO_CONTACTS.encode())
        calendar = folder / "demo-calendar.ics"
        calendar.write_bytes(DEMO_CALENDAR.encode())
        return [
            import_file(vault, path, connector="midata"),
            import_file(vault, contacts, connector="vcard"),
            import_file(vault, calendar, connector="ical"),
        ]
