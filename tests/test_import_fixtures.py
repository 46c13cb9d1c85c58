"""Every real bank file imports through the importer with its exact count, amounts and
dates, detected from its bytes and name; importing it again adds nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pds.importer import import_file
from pds.vault import Vault

from .conftest import fixture

# file, connector, count, sum of amounts, first date, last date, currencies
CASES = [
    ("midata/midata-spec-example.csv", "midata", 6, "-290.00", "2014-03-01", "2014-03-04", {"GBP"}),
    (
        "midata/nationwide-test-midata.csv",
        "midata",
        8,
        "-128.15",
        "2024-07-23",
        "2025-07-19",
        {"GBP"},
    ),
    ("ofx/actual-html-vals.qfx", "ofx", 2, "-2.00", "2023-03-01", "2023-05-09", {"CAD"}),
    ("ofx/asgrim-ofxdata-bb.ofx", "ofx", 1, "239.55", "2015-11-03", "2015-11-03", {"BRL"}),
    ("ofx/ofxparse-anzcc.ofx", "ofx", 1, "-5.50", "2017-05-08", "2017-05-08", {"AUD"}),
    ("ofx/ofxparse-checking.ofx", "ofx", 3, "-59.50", "2011-03-31", "2011-04-07", {"USD"}),
    ("ofx/ofxparse-suncorp.ofx", "ofx", 1, "-16.85", "2013-12-15", "2013-12-15", {"AUD"}),
]


@pytest.mark.parametrize(
    ("name", "connector", "count", "total", "first", "last", "currencies"), CASES
)
def test_fixture_imports_exactly(
    vault: Vault, name, connector, count, total, first, last, currencies
) -> None:
    summary = import_file(vault, fixture(name))
    assert (summary.connector, summary.new, summary.duplicate, summary.rejected) == (
        connector,
        count,
        0,
        0,
    )
    stored = list(vault.records("transactions"))
    assert len(stored) == count
    assert sum(Decimal(r.payload["amount"]) for r in stored) == Decimal(total)
    assert (stored[0].occurred_at, stored[-1].occurred_at) == (first, last)
    assert {r.payload["currency"] for r in stored} == currencies
    assert all(r.occurred_at == r.payload["date"] for r in stored)
    again = import_file(vault, fixture(name))
    assert (again.new, again.duplicate, again.source_id) == (0, count, None)
    assert vault.status()["records"] == count


def test_all_fixtures_together(vault: Vault) -> None:
    for name, *_ in CASES:
        import_file(vault, fixture(name))
    assert vault.status()["records"] == sum(c[2] for c in CASES)
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
