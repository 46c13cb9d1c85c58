"""Home in plain words (what each business may do, for what, until when) and the Data page's
source filter (only the sources that hold the category)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pds.oauth import store
from pds.vault import SourceInfo
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
        "<tr><td>Acme Bank</td><td>read your transactions (date, amount) from 1 February 2024"
        f"</td><td>none stated</td><td>{until(vault, 1)}</td></tr>"
    ) in text
    assert (
        "<tr><td>Bright Energy</td><td>learn totals of your energy, and add records to your "
        "events</td><td>checking your creditworthiness</td>"
        f"<td>{until(vault, 2)}</td></tr>"
    ) in text
    assert (
        "<tr><td>Audit Co</td><td>read your energy, and read the access log (no data)</td>"
        f"<td>none stated</td><td>{until(vault, 3)}</td></tr>"
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
    assert "<caption>1 record</caption>" in chosen


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
    assert "<caption>0 records</caption>" in page.text
    assert '<tr><td colspan="2">No record matches.</td></tr>' in page.text
    unknown = kit.http.get("/data/energy?source=99")
    assert options(unknown.text) == [
        '<option value="">All sources</option>',
        '<option value="2">energy.csv</option>',
        '<option value="3">mixed.csv</option>',
    ]
    assert "<caption>0 records</caption>" in unknown.text
