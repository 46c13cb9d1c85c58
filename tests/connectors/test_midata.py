"""The midata connector against real midata files and hand-made variants of the format."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Record, strict
from connectors.midata import MidataConnector
from connectors.ofx import OfxConnector
from pds.errors import ImportFormatError
from pds.payloads import TransactionSchema
from tests.conftest import fixture
from tests.factories import mutations
from tests.skipbad import assert_skip_bad

FIXTURES = fixture("midata")
SPEC = "midata-spec-example.csv"
NATIONWIDE = "nationwide-test-midata.csv"
HEADER = b"Date,Type,Merchant/Description,Debit/Credit,Balance\n"


def parse(data: bytes, filename: str = "midata.csv") -> list[Record]:
    return list(strict(MidataConnector().parse(io.BytesIO(data), filename), filename))


def parse_fixture(name: str) -> list[Record]:
    with (FIXTURES / name).open("rb") as stream:
        return list(strict(MidataConnector().parse(stream, name), name))


def txn(date, amount, balance, type_, description, account=None) -> dict:
    return {
        "date": date,
        "amount": amount,
        "currency": "GBP",
        "description": description,
        "counterparty": None,
        "balance": balance,
        "type": type_,
        "account": account,
        "reference": None,
    }


def test_every_fixture_is_tested():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted([SPEC, NATIONWIDE])


def test_spec_example():
    records = parse_fixture(SPEC)
    assert len(records) == 6
    assert records[0] == Record(
        "transactions",
        "2014-03-04",
        txn("2014-03-04", "5.00", "260.00", "VIS", "Boots the Chemist"),
        None,
    )
    assert records[0].where == "line 2"
    assert records[-1] == Record(
        "transactions", "2014-03-01", txn("2014-03-01", "-50.00", "500.00", "CSH", "etc."), None
    )
    assert records[-1].where == "line 7"
    assert [(r.payload["date"], r.payload["amount"], r.payload["balance"]) for r in records] == [
        ("2014-03-04", "5.00", "260.00"),
        ("2014-03-04", "-50.00", "255.00"),
        ("2014-03-03", "-100.00", "305.00"),
        ("2014-03-03", "-20.00", "405.00"),
        ("2014-03-02", "-75.00", "425.00"),
        ("2014-03-01", "-50.00", "500.00"),
    ]
    assert [r.payload["type"] for r in records] == ["VIS", "DD", "ATM", "TRF", "VIS", "CSH"]


def test_nationwide_latin1_crlf_with_preamble():
    records = parse_fixture(NATIONWIDE)
    assert len(records) == 8
    account = "****12345"
    assert records[0].payload == txn(
        "2025-07-19", "-52.00", "-2.00", "Visa purchase", "A COFFEE SHOP GB", account
    )
    assert (records[0].occurred_at, records[0].identity, records[0].where) == (
        "2025-07-19",
        None,
        "line 4",
    )
    assert records[-1].payload == txn(
        "2024-07-23", "-26.15", "100.00", "PAYMENT TO" + "*" * 28, "*" * 17, account
    )
    assert records[-1].where == "line 11"
    assert records[2].payload == txn(
        "2024-09-11", "5.00", "65.00", "Bank credit SOME KINDLY MERCHANT", "*" * 26, account
    )
    assert [(r.payload["date"], r.payload["amount"], r.payload["balance"]) for r in records] == [
        ("2025-07-19", "-52.00", "-2.00"),
        ("2025-05-26", "-15.00", "50.00"),
        ("2024-09-11", "5.00", "65.00"),
        ("2024-08-29", "3.20", "60.00"),
        ("2024-08-01", "-9.70", "56.80"),
        ("2024-07-29", "1.50", "66.50"),
        ("2024-07-25", "-35.00", "65.00"),
        ("2024-07-23", "-26.15", "100.00"),
    ]
    assert [r.where for r in records] == [f"line {n}" for n in range(4, 12)]


@pytest.mark.parametrize("name", [SPEC, NATIONWIDE])
def test_payloads_pass_the_schema_unchanged(name):
    records = parse_fixture(name)
    assert records
    for record in records:
        assert record.category == "transactions"
        assert record.occurred_at == record.payload["date"]
        assert TransactionSchema().load(record.payload) == record.payload


@pytest.mark.parametrize("name", [SPEC, NATIONWIDE])
def test_detect_fixture(name):
    head = (FIXTURES / name).read_bytes()[:4096]
    assert MidataConnector().detect(head, name) is True
    assert OfxConnector().detect(head, name) is False


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (b"hello,world\n1,2\n", "midata.csv", False),
        (b"", "midata.csv", False),
        (b"Date,Description,Amount\n", "midata.csv", False),
        (b"\xef\xbb\xbf" + HEADER, "x.txt", True),
        (b" date ; TYPE ;Merchant/Description;Debit/Credit;Balance;\r\n", "x", True),
        (b'"Account Number:","****1"\n\n' + HEADER, "export", True),
        (b"x\n" * 21 + HEADER, "midata.csv", False),
        (b"x\n" * 20 + HEADER, "midata.csv", True),
    ],
)
def test_detect(head, filename, expected):
    assert MidataConnector().detect(head, filename) is expected


def test_latin1_crlf():
    data = (
        HEADER.replace(b"\n", b"\r\n") + b"01/02/2024,VIS,Caf\xe9 \xa3 shop,-\xa31.00,\xa32.00\r\n"
    )
    assert [r.payload for r in parse(data)] == [
        txn("2024-02-01", "-1.00", "2.00", "VIS", "Caf\u00e9 \u00a3 shop")
    ]


def test_latin1_first_seen_late_in_the_file():
    rows = b"".join(b"01/02/2024,VIS,shop %d,-1.00,2.00\r\n" % n for n in range(1000))
    data = HEADER + rows + b"02/02/2024,VIS,Caf\xe9,-\xa31.50,\xa30.50\r\n"
    records = parse(data)
    assert len(records) == 1001
    assert records[-1].payload == txn("2024-02-02", "-1.50", "0.50", "VIS", "Caf\u00e9")
    assert records[-1].where == "line 1002"


def test_utf8_with_bom():
    data = b"\xef\xbb\xbf" + HEADER + "01/02/2024,VIS,Café,-£1.00,£2.00\n".encode()
    assert [r.payload for r in parse(data)] == [
        txn("2024-02-01", "-1.00", "2.00", "VIS", "Caf\u00e9")
    ]


def test_semicolons_with_trailing_delimiter_and_account_preamble():
    data = (
        b"Account Number:;12-34-56 ****1234;\n"
        b"\n"
        b" Date;Type;Merchant/Description;Debit/Credit;Balance;\n"
        b"03/01/2024;)));TFL TRAVEL;-2.80;97.20;\n"
        b"\n"
        b"02/01/2024;DD;COUNCIL TAX;+100.00;100.00;\n"
        b"ARRANGED OVERDRAFT LIMIT;03/01/2024;500.00;\n"
    )
    records = parse(data)
    account = "12-34-56 ****1234"
    assert [r.payload for r in records] == [
        txn("2024-01-03", "-2.80", "97.20", ")))", "TFL TRAVEL", account),
        txn("2024-01-02", "100.00", "100.00", "DD", "COUNCIL TAX", account),
    ]
    assert [r.where for r in records] == ["line 4", "line 6"]


@pytest.mark.parametrize(
    ("field", "amount"),
    [
        ("5.00", "5.00"),
        ("+5.00", "5.00"),
        ("-12.30", "-12.30"),
        ('"-£52.00"', "-52.00"),
        ('"+£5.00"', "5.00"),
        ('"£-7.5"', "-7.5"),
        ('"-1,234.56"', "-1234.56"),
        ('"£1,000,000"', "1000000"),
        (" 3 ", "3"),
    ],
)
def test_amount_forms(field, amount):
    data = HEADER + f"01/02/2024,VIS,x,{field},1.00\n".encode()
    assert parse(data)[0].payload["amount"] == amount


def test_blank_balance_and_type_are_none():
    data = HEADER + b"1/2/2024,,x,1.00,\n"
    assert parse(data)[0].payload == txn("2024-02-01", "1.00", None, None, "x")


def test_delimiter_only_rows_are_blank():
    data = HEADER + b",,,,\n01/02/2024,VIS,x,1.00,2.00\n , ,\n,,,,,\n"
    assert [r.where for r in parse(data)] == ["line 3"]


def test_header_only_yields_nothing():
    assert parse(HEADER + b"Arranged overdraft limit,01/01/2024,0.00\n\n") == []


def test_stream_is_read_lazily():
    stream = io.BytesIO(HEADER + b"01/02/2024,VIS,x,1.00,2.00\n" * 3 + b"garbage\n")
    records = MidataConnector().parse(stream, "midata.csv")
    assert next(records).payload["amount"] == "1.00"
    assert stream.tell() < len(stream.getvalue())


def expect_error(data: bytes, message: str, filename: str = "/home/me/midata.csv") -> None:
    with pytest.raises(ImportFormatError, match=f"^{re.escape(message)}$"):
        parse(data, filename)


def test_error_empty():
    expect_error(b"", "midata.csv: the file is empty")
    expect_error(b"\r\n  \n", "midata.csv: the file is empty")


def test_error_header_missing():
    message = (
        'midata.csv: the midata header line "Date,Type,Merchant/Description,Debit/Credit,'
        'Balance" is missing'
    )
    expect_error(b"Date,Description,Amount\n01/02/2024,x,1.00\n", message)
    expect_error(b"x\n" * 21 + HEADER, message)


def test_error_bad_date():
    expect_error(
        HEADER + b"01/02/2024,VIS,x,1,2\n31/02/2024,VIS,x,1,2\n",
        'midata.csv line 3: date "31/02/2024" is not a date like 31/12/2024',
    )
    expect_error(
        HEADER + b"2024-02-01,VIS,x,1,2\n",
        'midata.csv line 2: date "2024-02-01" is not a date like 31/12/2024',
    )


def test_error_bad_amount():
    data = HEADER + b"\n" * 12 + b'01/02/2024,VIS,x,"12,3O",2\n'
    expect_error(data, 'midata.csv line 14: amount "12,3O" is not a number')
    expect_error(HEADER + b"01/02/2024,VIS,x,,2\n", 'midata.csv line 2: amount "" is not a number')


def test_error_bad_balance():
    expect_error(
        HEADER + b"01/02/2024,VIS,x,1.00,12.3.4\n",
        'midata.csv line 2: balance "12.3.4" is not a number',
    )


def test_error_column_count():
    expected = "expected 5 columns (Date,Type,Merchant/Description,Debit/Credit,Balance)"
    expect_error(HEADER + b"01/02/2024,VIS,x,1.00\n", f"midata.csv line 2: {expected}, found 4")
    expect_error(
        HEADER + b"01/02/2024,VIS,x,1,00,2.00\n", f"midata.csv line 2: {expected}, found 6"
    )


def test_error_row_after_trailer():
    expect_error(
        HEADER + b"Arranged overdraft limit,01/01/2024,0.00\n\n" + HEADER,
        'midata.csv line 4: unexpected row after the "Arranged overdraft limit" trailer',
    )


def test_error_broken_quoting():
    expect_error(
        HEADER + b'01/02/2024,VIS,"x,1.00,2.00\n',
        "midata.csv line 2: not a readable CSV row (unexpected end of data)",
    )


def test_error_not_text():
    expect_error(
        HEADER + b"01/02/2024,VIS,\x81\x8d,1.00,2.00\n",
        "midata.csv line 2: byte 0x81 at column 16 is not valid Windows-1252",
    )


def test_error_line_too_long():
    expect_error(
        HEADER + b"x" * (1 << 20),
        f"midata.csv line 2: the line is longer than {1 << 20:,} bytes",
    )


def test_skip_bad_leaves_out_the_bad_rows(vault, tmp_path):
    path = tmp_path / "statement.csv"
    path.write_bytes(
        HEADER
        + b"03/02/2024,VIS,COFFEE,-3.20,96.80\n"
        + b"02/02/2024,VIS,BOOKS,-1O.00,100.00\n"
        + b"31/02/2024,VIS,BAD DATE,-1.00,110.00\n"
        + b"01/02/2024,BGC,SALARY,110.00,111.00\n"
    )
    assert_skip_bad(
        vault,
        path,
        [
            'statement.csv line 3: amount "-1O.00" is not a number',
            'statement.csv line 4: date "31/02/2024" is not a date like 31/12/2024',
        ],
        new=2,
    )
    assert [r.payload["description"] for r in vault.records()] == ["SALARY", "COFFEE"]


def test_error_has_a_hint():
    with pytest.raises(ImportFormatError) as caught:
        parse(b"")
    assert (
        caught.value.hint == "Download the statement again from your bank as a midata (CSV) file."
    )


FIXTURE_BYTES = [(FIXTURES / name).read_bytes() for name in (SPEC, NATIONWIDE)]


def parses_or_refuses(data: bytes) -> None:
    """The law: any input either parses into valid payloads or raises ImportFormatError."""
    records, message = [], "midata.csv"
    try:
        records = parse(data)
    except ImportFormatError as exc:
        message = str(exc)
    assert message.startswith("midata.csv")
    for record in records:
        assert TransactionSchema().load(record.payload) == record.payload


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data):
    parses_or_refuses(data)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_rows_after_a_header(data):
    parses_or_refuses(HEADER + data)


@FUZZ
@given(mutations(FIXTURE_BYTES))
def test_fuzz_mutated_fixtures(data):
    parses_or_refuses(data)
