"""Home in plain words (what each business may do, for what, until when; what arrived
recently; what waits for the owner) and the Data page's source filter (only the sources that
hold the category)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import pytest

from pds import clock, db
from pds.oauth import store
from pds.rights import requests as rights_requests
from pds.vault import Prepared, SourceInfo
from pds.vault.records import canonical
from tests.factories import prepared, transaction
from tests.oauth_kit import seed


def main_of(html: str) -> str:
    return html.split("<main>")[1].split("</main>")[0]


def until(vault, grant_id: int) -> str:
    when = datetime.fromtimestamp(store.get_grant(vault.conn, grant_id).expires_at, UTC)
    return f"{when.day} {when.strftime('%B %Y')}"


def test_home_says_what_each_business_may_do_for_what_and_until_when(kit, vault) -> None:
    seed(vault)
    bank, bank_secret = kit.add_client("Acme Bank")
    kit.tokens(
        bank,
        bank_secret,
        scope="read:transactions",
        form={
            "narrowing": "1",
            "item": "read:transactions",
            "field.transactions": ["date", "amount"],
            "from.transactions": "2024-02-01",
            "expires_days": "3",
        },
    )
    energy, energy_secret = kit.add_client("Bright Energy")
    details = [
        {
            "type": "pds_records",
            "actions": ["aggregate"],
            "categories": ["energy"],
            "purpose": "dpv:CreditChecking",
        }
    ]
    kit.tokens(
        energy,
        energy_secret,
        scope="write:events",
        authorization_details=json.dumps(details),
    )
    auditor, auditor_secret = kit.add_client("Audit Co")
    kit.tokens(auditor, auditor_secret, scope="read:energy audit:read")
    text = main_of(kit.http.get("/").text)
    assert (
        '<th scope="col">Business</th><th scope="col">What it may do</th>'
        '<th scope="col">Purpose</th><th scope="col">Until</th>'
    ) in text
    assert (
        '<tr><td data-label="Business">Acme Bank</td><td data-label="What it may do">read your '
        "transactions (date, amount) from 1 February 2024"
        '</td><td data-label="Purpose">none stated</td>'
        f'<td data-label="Until">{until(vault, 1)}</td></tr>'
    ) in text
    assert (
        '<tr><td data-label="Business">Bright Energy</td><td data-label="What it may do">learn '
        "totals of your energy, and add records to your "
        'events</td><td data-label="Purpose">checking your creditworthiness</td>'
        f'<td data-label="Until">{until(vault, 2)}</td></tr>'
    ) in text
    assert (
        '<tr><td data-label="Business">Audit Co</td><td data-label="What it may do">read your '
        'energy, and read the access log (no data)</td><td data-label="Purpose">none stated</td>'
        f'<td data-label="Until">{until(vault, 3)}</td></tr>'
    ) in text
    assert (
        f"<li>The grant to Acme Bank ends on {until(vault, 1)}: it may read your transactions "
        "(date, amount) from 1 February 2024.</li>"
    ) in text
    assert "The grant to Bright Energy" not in text  # 90 days: not expiring soon
    assert "read:transactions" not in text
    assert "aggregate:energy" not in text


def three_sources(vault) -> None:
    seed(vault)  # seed.csv: 6 transactions; energy.csv: 1 energy reading
    both = prepared(transaction("2024-03-01", "2.00", "METER 2"))
    reading = both.__class__("energy", both.occurred_at, both.plain, None, 0)
    spend = prepared(transaction("2024-03-02", "-3.00", "SHOP 9", reference="R9"))
    vault.ingest(SourceInfo("test", "mixed.csv", b"mixed"), [[reading, spend]])


def options(html: str) -> list[str]:
    select = html.split('<select id="source" name="source">')[1].split("</select>")[0]
    return [line.strip() for line in select.splitlines() if line.strip()]


def test_the_source_filter_offers_only_the_sources_of_the_category(kit, vault) -> None:
    three_sources(vault)
    kit.login()
    assert options(kit.http.get("/data/transactions").text) == [
        '<option value="">All sources</option>',
        '<option value="1">seed.csv</option>',
        '<option value="3">mixed.csv</option>',
    ]
    assert options(kit.http.get("/data/energy").text) == [
        '<option value="">All sources</option>',
        '<option value="2">energy.csv</option>',
        '<option value="3">mixed.csv</option>',
    ]
    chosen = kit.http.get("/data/energy?source=3").text
    assert '<option value="3" selected>mixed.csv</option>' in chosen
    assert len(re.findall(r'<a href="/records/\d+">View', chosen)) == 1


def test_a_source_of_another_category_stays_chosen_and_matches_nothing(kit, vault) -> None:
    three_sources(vault)
    kit.login()
    page = kit.http.get("/data/energy?source=1")
    assert page.status_code == 200
    assert options(page.text) == [
        '<option value="">All sources</option>',
        '<option value="1" selected>seed.csv</option>',
        '<option value="2">energy.csv</option>',
        '<option value="3">mixed.csv</option>',
    ]
    assert re.findall(r'<a href="/records/\d+">View', page.text) == []
    assert '<tr><td colspan="7">No record matches.</td></tr>' in page.text
    unknown = kit.http.get("/data/energy?source=99")
    assert options(unknown.text) == [
        '<option value="">All sources</option>',
        '<option value="2">energy.csv</option>',
        '<option value="3">mixed.csv</option>',
    ]
    assert re.findall(r'<a href="/records/\d+">View', unknown.text) == []


def section(html: str, heading: str) -> str:
    return main_of(html).split(f">{heading}</h2>")[1].split("</section>")[0]


def items(html: str, heading: str) -> list[str]:
    text = section(html, heading)
    return [line.strip() for line in text.splitlines() if line.strip().startswith("<li>")]


def on_day(monkeypatch: pytest.MonkeyPatch, day: int) -> None:
    """Imports from now on arrive on ``day`` March 2025."""
    monkeypatch.setattr(clock, "utcnow", lambda: datetime(2025, 3, day, 9, 30, tzinfo=UTC))


def of(category: str, name: str) -> Prepared:
    return Prepared(category, "2025-03-01", canonical({"name": name}), None, 0)


def test_home_says_what_the_five_newest_imports_held_newest_first(
    kit, vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(1, 7):
        on_day(monkeypatch, i)
        rows = [
            prepared(
                transaction(f"2024-01-{k:02d}", f"-{i}.{k:02d}", f"SHOP {i}", reference=f"R{k}")
            )
            for k in range(1, 2 * i)
        ]
        vault.ingest(SourceInfo("test", f"bank-{i}.csv", f"bank {i}".encode()), [rows])
    monkeypatch.undo()
    kit.login()
    assert items(kit.http.get("/").text, "What arrived recently") == [
        "<li>bank-6.csv: 11 transactions, 6 March 2025.</li>",
        "<li>bank-5.csv: 9 transactions, 5 March 2025.</li>",
        "<li>bank-4.csv: 7 transactions, 4 March 2025.</li>",
        "<li>bank-3.csv: 5 transactions, 3 March 2025.</li>",
        "<li>bank-2.csv: 3 transactions, 2 March 2025.</li>",
    ]


def test_an_import_of_two_categories_and_a_business_write_back_are_said_in_words(
    kit, vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_day(monkeypatch, 7)
    records = [of("contacts", f"Friend {n}") for n in range(3)]
    records += [of("events", f"Party {n}") for n in range(2)]
    vault.ingest(SourceInfo("test", "phone.vcf", b"phone"), [records])
    bank, _ = kit.add_client("Acme Bank")
    on_day(monkeypatch, 8)
    with db.transaction(vault.conn):
        vault.add_record("energy", "2025-03-08", {"kwh": 1}, source=f"client:{bank}")
    monkeypatch.undo()
    kit.login()
    assert items(kit.http.get("/").text, "What arrived recently") == [
        "<li>written by Acme Bank: 1 energy record, 8 March 2025.</li>",
        "<li>phone.vcf: 3 contacts and 2 events, 7 March 2025.</li>",
    ]


def test_home_lists_the_overdue_requests_only(kit, vault) -> None:
    rights_requests.create(vault, "access", "Acme Bank", sent_on=date(2024, 1, 10))
    rights_requests.create(vault, "erasure", "Bright Energy")
    kit.login()
    html = kit.http.get("/").text
    assert items(html, "What waits for you") == [
        '<li><a href="/requests">Access request to Acme Bank, sent 10 January 2024, due '
        "10 February 2024</a>: no answer yet.</li>"
    ]
    assert "Bright Energy" not in main_of(html)
    assert "Nothing waits for you." not in html


def test_home_says_when_nothing_waits_and_nothing_arrived(kit, vault) -> None:
    rights_requests.create(vault, "erasure", "Bright Energy")
    kit.login()
    html = kit.http.get("/").text
    assert section(html, "What waits for you").strip() == "<p>Nothing waits for you.</p>"
    assert section(html, "What arrived recently").strip() == (
        '<p>Nothing yet: <a href="/import">import a file</a>.</p>'
    )
