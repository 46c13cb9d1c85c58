"""Demo data, deterministic, for `pds demo` and benchmarks: a synthetic UK midata statement,
an address book, a calendar and a smart meter's daily electricity readings; and the sandbox's
test client (``pds demo --sandbox``).

The statement ends on a fixed day. The meter readings cover the ``ENERGY_DAYS`` days up to
yesterday, so an example that asks for "the last 12 months" always finds a year of them; a
day's reading depends only on its date, so a second run on a later day adds the new days and
repeats none.

The sandbox client is a confidential client the owner registered (``pds clients add``), so a
developer can ask the demo vault for a grant at once. pds keeps only a hash of a client's
secret; the sandbox writes the secret beside the demo vault (``SANDBOX_FILE`` in PDS_HOME,
readable by its owner only) so that a second run prints the same credentials. That is for a
throwaway demo vault only: a real business keeps its secret to itself.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pds import clock
from pds.importer import ImportSummary, import_file
from pds.oauth import admin
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


# -- a smart meter's daily electricity readings (Green Button, NAESB ESPI) ---------------------

ENERGY_DAYS = 500
"""How many days of meter readings the demo holds, up to yesterday."""
_ESPI_BASE = "https://meter.example/espi/1_1/resource/RetailCustomer/1/UsagePoint/1"
_ESPI_ENTRY = (
    '<entry><link rel="self" href="{self}"/>{links}'
    '<content><{kind} xmlns="http://naesb.org/espi">{body}</{kind}></content></entry>'
)


def daily_wh(day: date) -> int:
    """The demo household's electricity use on ``day``, in watt-hours: about 11 kWh a day
    in winter and 6 in summer, and a little different each day (it depends on the date
    only)."""
    rng = random.Random(day.toordinal())  # noqa: S311 - demo data, not secrets
    season = math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365.25)
    return round(8500 + 2600 * season + rng.uniform(-1500, 1500))


def _espi_entry(kind: str, href: str, body: str, **links: str) -> str:
    more = "".join(f'<link rel="{rel}" href="{url}"/>' for rel, url in links.items())
    return _ESPI_ENTRY.format(self=href, links=more, kind=kind, body=body)


def synthetic_greenbutton(days: Sequence[date]) -> str:
    """A Green Button feed of one electricity meter: one reading per day of ``days`` (from
    00:00 UTC, 86400 seconds, in Wh, consumed from the grid)."""
    reading = f"{_ESPI_BASE}/MeterReading/1"
    readings = "".join(
        f"<IntervalReading><timePeriod><duration>86400</duration>"
        f"<start>{int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())}</start>"
        f"</timePeriod><value>{daily_wh(d)}</value></IntervalReading>"
        for d in days
    )
    entries = [
        _espi_entry(
            "UsagePoint",
            _ESPI_BASE,
            "<ServiceCategory><kind>0</kind></ServiceCategory>",
            related=f"{_ESPI_BASE}/MeterReading",
        ),
        _espi_entry(
            "MeterReading",
            reading,
            "",
            up=f"{_ESPI_BASE}/MeterReading",
            related="https://meter.example/espi/1_1/resource/ReadingType/1",
        ),
        _espi_entry(
            "ReadingType",
            "https://meter.example/espi/1_1/resource/ReadingType/1",
            "<flowDirection>1</flowDirection><powerOfTenMultiplier>0</powerOfTenMultiplier>"
            "<uom>72</uom>",
        ),
        _espi_entry(
            "IntervalBlock",
            f"{reading}/IntervalBlock/1",
            readings,
            up=f"{reading}/IntervalBlock",
        ),
    ]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>Demo smart meter</title>'
        + "".join(entries)
        + "</feed>\n"
    )


def demo_energy_days(today: date | None = None) -> list[date]:
    """The days the demo's meter readings cover: ``ENERGY_DAYS`` days up to yesterday."""
    today = today or clock.today()
    return [today - timedelta(days=n) for n in range(ENERGY_DAYS, 0, -1)]


def load_demo(vault: Vault) -> list[ImportSummary]:
    """Import the demo statement, address book, calendar and meter readings; a second run
    adds nothing it already has (deduplicated)."""
    with tempfile.TemporaryDirectory(prefix="pds-demo-") as tmp:
        folder = Path(tmp)
        path = write_synthetic_midata(folder / "demo-current-account-midata.csv", 600)
        contacts = folder / "demo-contacts.vcf"
        contacts.write_bytes(DEMO_CONTACTS.encode())
        calendar = folder / "demo-calendar.ics"
        calendar.write_bytes(DEMO_CALENDAR.encode())
        meter = folder / "demo-electricity-greenbutton.xml"
        meter.write_text(synthetic_greenbutton(demo_energy_days()), encoding="utf-8")
        return [
            import_file(vault, path, connector="midata"),
            import_file(vault, contacts, connector="vcard"),
            import_file(vault, calendar, connector="ical"),
            import_file(vault, meter, connector="greenbutton"),
        ]


# -- the sandbox's test client ----------------------------------------------------------------

SANDBOX_NAME = "Sandbox test client"
SANDBOX_FILE = "sandbox-client.json"
SANDBOX_REDIRECT_URI = "http://127.0.0.1:5001/callback"


@dataclass(frozen=True)
class SandboxClient:
    """The sandbox's client credentials; ``created`` is False when an earlier run made it,
    ``added`` True when this run registered ``redirect_uri`` beside its earlier ones."""

    client_id: str
    client_secret: str
    redirect_uri: str
    redirect_uris: tuple[str, ...]
    created: bool
    added: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": self.redirect_uri,
            "redirect_uris": list(self.redirect_uris),
            "created": self.created,
            "added": self.added,
        }


def sandbox_client(vault: Vault, redirect_uri: str = SANDBOX_REDIRECT_URI) -> SandboxClient:
    """The demo vault's test client: registered on the first run, the same one after that
    (a new one only if the owner removed it). One test client per demo vault, never a
    second beside it: a run with another redirect URI adds it to the client's registered
    ones (each still matched exactly), so the example business and your own code share it."""
    saved_path = vault.settings.home / SANDBOX_FILE
    if saved_path.exists():
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
        known = {c.client_id: c for c in admin.list_clients(vault)}.get(saved["client_id"])
        if known is not None and known.removed_at is None:
            added = redirect_uri not in known.redirect_uris
            if added:
                known = admin.add_redirect_uri(vault, known.client_id, redirect_uri)
            return SandboxClient(
                saved["client_id"],
                saved["client_secret"],
                redirect_uri,
                known.redirect_uris,
                False,
                added,
            )
    client, secret = admin.add_client(vault, SANDBOX_NAME, [redirect_uri])
    secret = secret or ""  # a confidential client always has one
    fd = os.open(saved_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"client_id": client.client_id, "client_secret": secret}, fh)
        fh.write("\n")
    return SandboxClient(client.client_id, secret, redirect_uri, client.redirect_uris, True)
