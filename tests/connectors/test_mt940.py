"""The MT940 connector against real statements (ABN AMRO, mBank, ASN Bank) and broken ones."""

from __future__ import annotations

import io
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Record, strict
from connectors.mt940 import Mt940Connector
from pds import registry
from pds.errors import ImportFormatError
from pds.payloads import BalanceSchema, TransactionSchema
from tests.conftest import fixture
from tests.factories import mutations
from tests.skipbad import assert_skip_bad

FIXTURES = fixture("mt940")
ABN = "abnamro.sta"
MBANK = "mbank.sta"
ASN = "asnbank-swift-blocks.txt"
ALL = [ABN, MBANK, ASN]
GOOD = (
    ":20:REF\n:25:NL81ASNB9999999999\n:28C:1/1\n:60F:C200101EUR444,29\n"
    ":61:2001010101D65,00NOVBNONREF\n:86:Coffee\n:62F:C200101EUR379,29\n-\n"
)


def parse(data: bytes, filename: str = "statement.sta") -> list[Record]:
    return list(strict(Mt940Connector().parse(io.BytesIO(data), filename), filename))


def parse_fixture(name: str) -> list[Record]:
    with (FIXTURES / name).open("rb") as stream:
        return list(strict(Mt940Connector().parse(stream, name), name))


def of(records: list[Record], category: str) -> list[Record]:
    return [r for r in records if r.category == category]


def test_every_fixture_is_tested():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(ALL)


@pytest.mark.parametrize("name", ALL)
def test_registry_detects_mt940(name):
    head = (FIXTURES / name).read_bytes()[: registry.HEAD_BYTES]
    assert registry.detect(head, name).name == "mt940"


def test_abnamro_two_statements_bare_header_lines_and_whole_amounts():
    records = parse_fixture(ABN)
    assert Counter(r.category for r in records) == {"transactions": 10, "balances": 4}
    txns = of(records, "transactions")
    assert txns[0] == Record(
        "transactions",
        "2011-05-24",
        {
            "date": "2011-05-24",
            "amount": "-9",
            "currency": "EUR",
            "description": "GIRO 428428 KPN - DIGITENNE BETALINGSKENM. 000000042188659 "
            "5314606715 BETREFT FACTUUR D.D. 20-05-2011 INCL. 1,44 BTW",
            "counterparty": None,
            "balance": None,
            "type": "N192",
            "account": "517852257",
            "reference": None,
        },
        None,
    )
    assert txns[0].where == "line 8 :61:"
    # value date 21 May, booked (entry date) 23 May
    assert (txns[1].occurred_at, txns[1].payload["amount"]) == ("2011-05-23", "-11.59")
    assert [t.payload["amount"] for t in txns] == [
        "-9", "-11.59", "-11.63", "-11.8", "-13.45", "-15.49", "-107", "-141.48", "-9.49", "-15",
    ]  # fmt: skip
    assert sum(Decimal(t.payload["amount"]) for t in txns) == Decimal("-345.93")
    assert [b.payload for b in of(records, "balances")] == [
        {"date": "2011-05-22", "amount": "3236.28", "currency": "EUR", "type": "OPBD", "account": "517852257"},
        {"date": "2011-05-23", "amount": "876.84", "currency": "EUR", "type": "CLBD", "account": "517852257"},
        {"date": "2011-05-23", "amount": "2876.84", "currency": "EUR", "type": "ITBD", "account": "517852257"},
        {"date": "2011-05-24", "amount": "1849.75", "currency": "EUR", "type": "ITBD", "account": "517852257"},
    ]  # fmt: skip


def test_mbank_soh_etx_bank_references_and_available_balance():
    records = parse_fixture(MBANK)
    txns = of(records, "transactions")
    assert len(txns) == 3
    account = "PL29114010810000267002001002"
    assert txns[0].payload == {
        "date": "2017-01-19",
        "amount": "0.01",
        "currency": "PLN",
        "description": "911 TRANSAKCJA COLLECT; ID IPH: XX000000000001; Z RACH.: "
        "56114010810000267002001001; OD: JAN NOWAK UL. NIJAKA 1 M 2 31-234 KRAKOW; "
        "TYT.: PRZELEW SRODKOW ; TNR: 179171073864111.010001",
        "counterparty": None,
        "balance": None,
        "type": "NTRF",
        "account": account,
        "reference": "MB170119012058",
    }
    assert [t.identity for t in txns] == [
        f"{account}:MB170119012058",
        f"{account}:MB170119012085",
        f"{account}:MB170119012121",
    ]
    assert [(b.payload["type"], b.payload["amount"]) for b in of(records, "balances")] == [
        ("OPBD", "0.40"),
        ("CLBD", "0.43"),
        ("CLAV", "0.43"),
    ]


def test_asn_swift_envelopes_31_statements():
    records = parse_fixture(ASN)
    txns = of(records, "transactions")
    balances = of(records, "balances")
    assert (len(txns), len(balances)) == (8, 62)
    assert txns[0].payload == {
        "date": "2020-01-01",
        "amount": "-65.00",
        "currency": "EUR",
        "description": "NL47INGB9999999999 hr gjlm paulissen Betaling sieraden",
        "counterparty": None,
        "balance": None,
        "type": "NOVB",
        "account": "NL81ASNB9999999999",
        "reference": "NL47INGB9999999999",
    }
    fee = txns[3]
    assert (fee.where, fee.payload["amount"], fee.payload["reference"]) == (
        "line 198 :61:",
        "-1.65",
        None,
    )
    assert fee.payload["description"] == "Kosten gebruik betaalrekening inclusief 1 betaalpas"
    assert sum(Decimal(t.payload["amount"]) for t in txns) == Decimal(
        "56.94"
    )  # 444.29 opening + 56.94 = 501.23 closing
    assert (balances[0].payload["amount"], balances[-1].payload["date"]) == ("444.29", "2020-01-31")
    assert Counter(b.payload["type"] for b in balances) == {"OPBD": 31, "CLBD": 31}


@pytest.mark.parametrize("name", ALL)
def test_payloads_pass_their_schemas_unchanged(name):
    schemas = {"transactions": TransactionSchema(), "balances": BalanceSchema()}
    for record in parse_fixture(name):
        assert record.occurred_at == record.payload["date"]
        assert schemas[record.category].load(record.payload) == record.payload


def test_entry_date_in_the_next_year():
    data = GOOD.replace(":61:2001010101D", ":61:1912310102D").encode()
    (txn,) = of(parse(data), "transactions")
    assert txn.occurred_at == "2020-01-02"


def test_reversals_and_supplementary_line_without_86():
    data = GOOD.replace("D65,00NOVBNONREF\n:86:Coffee", "RD65,00NOVBREF1//B1\nRefund shop").encode()
    (txn,) = of(parse(data), "transactions")
    assert (txn.payload["amount"], txn.payload["description"], txn.payload["reference"]) == (
        "65.00",
        "Refund shop",
        "REF1",
    )
    assert txn.identity == "NL81ASNB9999999999:B1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            (":61:2001010101D65,00", ":61:2001010101X65,00"),
            'statement.sta line 5: :61: "2001010101X65,00NOVBNONREF" is not a statement line '
            "like 1105240524D9,N192NONREF",
        ),
        (
            (":61:2001010101", ":61:2013010101"),
            'statement.sta line 5: :61: date "2013010101" is not a real date',
        ),
        (
            (":60F:C200101EUR444,29", ":60F:C200101EUR444.29"),
            'statement.sta line 4: :60F: "C200101EUR444.29" is not a balance like C110522EUR3236,28',
        ),
        (
            (":60F:C200101EUR444,29\n", ""),
            "statement.sta line 4: :61: comes before the opening balance (:60F:)",
        ),
        ((":20:REF\n", ""), "statement.sta line 1: :25: comes before the statement's :20: field"),
    ],
)
def test_bad_fields_name_the_line(change, message):
    with pytest.raises(ImportFormatError) as exc:
        parse(GOOD.replace(*change).encode())
    assert exc.value.message == message


def test_skip_bad_leaves_out_the_bad_lines(vault, tmp_path):
    path = tmp_path / "statement.sta"
    path.write_text(
        GOOD.replace(
            ":86:Coffee\n",
            ":86:Coffee\n:61:2001010101D6X,00NOVBNONREF\n:86:Bad\n"
            ":61:2002300230D1,00NOVBNONREF\n:86:Feb 30\n:61:2001020102C5,00NTRFNONREF\n:86:Tea\n",
        ).replace(":62F:C200101EUR379,29", ":62F:C200101EUR379.29")
    )
    assert_skip_bad(
        vault,
        path,
        [
            'statement.sta line 7: :61: "2001010101D6X,00NOVBNONREF" is not a statement line '
            "like 1105240524D9,N192NONREF",
            'statement.sta line 9: :61: date "2002300230" is not a real date',
            'statement.sta line 13: :62F: "C200101EUR379.29" is not a balance like '
            "C110522EUR3236,28",
        ],
        new=3,
    )
    assert [r.payload["description"] for r in vault.records("transactions")] == ["Coffee", "Tea"]


def test_not_mt940():
    with pytest.raises(ImportFormatError) as exc:
        parse(b"hello\n\nworld\n")
    assert exc.value.message == "statement.sta: no MT940 statement (a :20: field) was found"
    with pytest.raises(ImportFormatError) as exc:
        parse(b"junk\n" * 30)
    assert exc.value.message == "statement.sta line 21: expected an MT940 field like :20: or :61:"
    assert not Mt940Connector().detect(b"Date,Type\n:20:x\n", "x.csv")


SAMPLES = [(FIXTURES / n).read_bytes() for n in ALL]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), mutations(SAMPLES)))
def test_fuzz_records_or_a_clean_error(data: bytes):
    schemas = {"transactions": TransactionSchema(), "balances": BalanceSchema()}
    records, message = [], "statement.sta"
    try:
        records = parse(data)
    except ImportFormatError as exc:
        message = exc.message
    assert message.startswith("statement.sta")
    for record in records:
        assert schemas[record.category].load(record.payload) == record.payload


@pytest.mark.parametrize(
    ("name", "txns", "balances", "total"),
    [(ABN, 10, 4, "-345.93"), (MBANK, 3, 3, "0.03"), (ASN, 8, 62, "56.94")],
)
def test_fixture_imports_exactly(vault, name, txns, balances, total):
    from pds.importer import import_file

    summary = import_file(vault, FIXTURES / name)
    assert (summary.connector, summary.new, summary.duplicate) == ("mt940", txns + balances, 0)
    stored = list(vault.records("transactions"))
    assert len(stored) == txns
    assert sum(Decimal(r.payload["amount"]) for r in stored) == Decimal(total)
    assert len(list(vault.records("balances"))) == balances
    again = import_file(vault, FIXTURES / name)
    assert (again.new, again.duplicate) == (0, txns + balances)


def test_a_field_longer_than_the_cap_is_refused():
    data = GOOD.replace(":86:Coffee", ":86:Coffee" + ("\n" + "x" * 1000) * 70).encode()
    with pytest.raises(ImportFormatError) as exc:
        parse(data)
    assert exc.value.message == "statement.sta line 6: :86: is longer than 65,536 characters"
