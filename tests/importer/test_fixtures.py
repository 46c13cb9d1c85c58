"""Every real fixture file imports through the importer, detected from its bytes and name,
with its exact counts per category; importing it again adds nothing. No fixture is left out:
a file under tests/fixtures/ that CASES (or REFUSED) does not list fails the suite.

The expected numbers are the ones each connector's own tests pin (tests/connectors/).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pds.errors import ImportFormatError
from pds.importer import import_file
from pds.vault import Vault
from tests.conftest import FIXTURES, fixture

# file -> (connector, records by category)
CASES: dict[str, tuple[str, dict[str, int]]] = {
    "apple-health/apple-health-parser-export.xml": ("applehealth", {"health": 8}),
    "apple-health/healthkit-to-sqlite-export.xml": ("applehealth", {"health": 5}),
    "apple-health/tdda-export6s3sample.xml": ("applehealth", {"health": 18}),
    "bank-csv/johnlewis-card-uk-MS_JANE_SMITH_01-12-2019_14-12-2019.csv": (
        "bankcsv",
        {"transactions": 10},
    ),
    "bank-csv/rabobank-nl-CSV_A_20180414_112204.csv": ("bankcsv", {"transactions": 3}),
    "bank-csv/schwab-checking-us.csv": ("bankcsv", {"transactions": 4}),
    "bank-csv/ubs-ch-fr_trimmed.csv": ("bankcsv", {"transactions": 3}),
    "camt053/camt053.v2.minimal.xml": ("camt053", {"balances": 4, "transactions": 1}),
    "camt053/camt053.v8.xml": ("camt053", {"balances": 4, "transactions": 1}),
    "fhir/hl7-bundle-example-searchset.json": ("fhir", {"health": 2}),
    "fhir/synthea-r4-transaction-bundle.json": ("fhir", {"health": 319}),
    "google-takeout/Location_History.json": ("takeout", {"locations": 2}),
    "google-takeout/My_Activity_Maps.json": ("takeout", {"activity": 2}),
    "google-takeout/My_Activity_Search.json": ("takeout", {"activity": 2}),
    "google-takeout/Records_2024_format.json": ("takeout", {"locations": 1}),
    "greenbutton/TestGBDataHourlyNineDaysBinnedDaily.xml": ("greenbutton", {"energy": 216}),
    "greenbutton/opower-gas-billing-2021-05-26_to_2024-04-25.xml": ("greenbutton", {"energy": 35}),
    "icalendar/alarm_google_future.ics": ("ical", {"events": 1}),
    "icalendar/alarm_thunderbird_future.ics": ("ical", {"events": 1}),
    "icalendar/issue_350_podio.ics": ("ical", {"events": 1}),
    "midata/midata-spec-example.csv": ("midata", {"transactions": 6}),
    "midata/nationwide-test-midata.csv": ("midata", {"transactions": 8}),
    "mt940/abnamro.sta": ("mt940", {"balances": 4, "transactions": 10}),
    "mt940/asnbank-swift-blocks.txt": ("mt940", {"balances": 62, "transactions": 8}),
    "mt940/mbank.sta": ("mt940", {"balances": 3, "transactions": 3}),
    "ofx/actual-html-vals.qfx": ("ofx", {"transactions": 2}),
    "ofx/asgrim-ofxdata-bb.ofx": ("ofx", {"transactions": 1}),
    "ofx/ofxparse-anzcc.ofx": ("ofx", {"transactions": 1}),
    "ofx/ofxparse-checking.ofx": ("ofx", {"transactions": 3}),
    "ofx/ofxparse-suncorp.ofx": ("ofx", {"transactions": 1}),
    "vcard/John_Doe_ANDROID.vcf": ("vcard", {"contacts": 6}),
    "vcard/John_Doe_IPHONE.vcf": ("vcard", {"contacts": 1}),
    "vcard/rfc6350-example.vcf": ("vcard", {"contacts": 1}),
}

# Refused by design (tests/connectors/test_greenbutton.py): its ReadingType has no unit.
REFUSED = {
    "greenbutton/gas-provider-batch-2024-07-16.xml": (
        "gas-provider-batch-2024-07-16.xml line 662: ReadingType ReadingType/07 has no uom "
        "(unit of measure), so its readings cannot be read"
    ),
}

# file, count, sum of amounts, first date, last date, currencies (the statement files)
TRANSACTIONS = [
    ("midata/midata-spec-example.csv", 6, "-290.00", "2014-03-01", "2014-03-04", {"GBP"}),
    ("midata/nationwide-test-midata.csv", 8, "-128.15", "2024-07-23", "2025-07-19", {"GBP"}),
    ("ofx/actual-html-vals.qfx", 2, "-2.00", "2023-03-01", "2023-05-09", {"CAD"}),
    ("ofx/asgrim-ofxdata-bb.ofx", 1, "239.55", "2015-11-03", "2015-11-03", {"BRL"}),
    ("ofx/ofxparse-anzcc.ofx", 1, "-5.50", "2017-05-08", "2017-05-08", {"AUD"}),
    ("ofx/ofxparse-checking.ofx", 3, "-59.50", "2011-03-31", "2011-04-07", {"USD"}),
    ("ofx/ofxparse-suncorp.ofx", 1, "-16.85", "2013-12-15", "2013-12-15", {"AUD"}),
]


def test_every_fixture_file_is_listed() -> None:
    on_disk = {
        p.relative_to(FIXTURES).as_posix()
        for p in Path(FIXTURES).rglob("*")
        if p.is_file()
        and p.name != "SOURCES.md"
        # vaults/ holds vaults an older pds wrote (tests/vault/test_upgrade.py), not files to import
        and p.relative_to(FIXTURES).parts[0] != "vaults"
    }
    assert on_disk == set(CASES) | set(REFUSED)
    assert not set(CASES) & set(REFUSED)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_imports_exactly(vault: Vault, name: str) -> None:
    connector, categories = CASES[name]
    count = sum(categories.values())
    summary = import_file(vault, fixture(name))
    assert (summary.connector, summary.new, summary.duplicate, summary.rejected) == (
        connector,
        count,
        0,
        0,
    )
    assert vault.status()["categories"] == categories
    again = import_file(vault, fixture(name))
    assert (again.new, again.duplicate, again.rejected, again.source_id) == (0, count, 0, None)
    assert vault.status()["categories"] == categories
    assert len(vault.sources()) == 1


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_fixture_leaves_the_vault_empty(vault: Vault, name: str) -> None:
    for skip_bad in (False, True):
        with pytest.raises(ImportFormatError) as caught:
            import_file(vault, fixture(name), skip_bad=skip_bad)
        assert caught.value.message == REFUSED[name]
    assert (vault.status()["records"], vault.sources()) == (0, [])


@pytest.mark.parametrize(("name", "count", "total", "first", "last", "currencies"), TRANSACTIONS)
def test_statement_amounts_and_dates(
    vault: Vault, name, count, total, first, last, currencies
) -> None:
    import_file(vault, fixture(name))
    stored = list(vault.records("transactions"))
    assert len(stored) == count
    assert sum(Decimal(r.payload["amount"]) for r in stored) == Decimal(total)
    assert (stored[0].occurred_at, stored[-1].occurred_at) == (first, last)
    assert {r.payload["currency"] for r in stored} == currencies
    assert all(r.occurred_at == r.payload["date"] for r in stored)


def test_all_fixtures_together(vault: Vault) -> None:
    """The two camt.053 files are one statement in two versions: their balances differ only
    in CLBD's date (tests/connectors/test_camt053.py), so v8's other three balances are repeats."""
    duplicates = {}
    for name in sorted(CASES):
        summary = import_file(vault, fixture(name))
        if summary.duplicate:
            duplicates[name] = summary.duplicate
    assert duplicates == {"camt053/camt053.v8.xml": 3}
    totals: dict[str, int] = {}
    for _, categories in CASES.values():
        for category, n in categories.items():
            totals[category] = totals.get(category, 0) + n
    totals["balances"] -= 3
    assert vault.status()["categories"] == dict(sorted(totals.items()))
    assert len(vault.sources()) == len(CASES)


def test_nationwide_latin1_pound_and_masking(vault: Vault) -> None:
    import_file(vault, fixture("midata/nationwide-test-midata.csv"))
    newest = list(vault.records("transactions"))[-1].payload
    assert newest == {
        "date": "2025-07-19",
        "amount": "-52.00",
        "currency": "GBP",
        "description": "A COFFEE SHOP GB",
        "counterparty": None,
        "balance": "-2.00",
        "type": "Visa purchase",
        "account": "****12345",
        "reference": None,
    }
