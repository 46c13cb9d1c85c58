"""The bank CSV engine and its profiles against real bank exports, mapping files and variants."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import csvsniff
from connectors.bankcsv import BankCsvConnector, MappedCsvConnector
from connectors.base import Record, strict
from connectors.csvmapping import builtin_mappings, parse_mapping, read_mapping
from connectors.csvsniff import parse_amount, sniff_delimiter
from pds import registry
from pds.errors import ImportFormatError
from pds.payloads import TransactionSchema
from tests.conftest import fixture
from tests.factories import mutations
from tests.skipbad import assert_skip_bad

FIXTURES = fixture("bank-csv")
RABO = "rabobank-nl-CSV_A_20180414_112204.csv"
JOHNLEWIS = "johnlewis-card-uk-MS_JANE_SMITH_01-12-2019_14-12-2019.csv"
SCHWAB = "schwab-checking-us.csv"
UBS = "ubs-ch-fr_trimmed.csv"
ALL = [RABO, JOHNLEWIS, SCHWAB, UBS]
SCHWAB_HEADER = (
    b'"Date","Status","Type","CheckNumber","Description","Withdrawal","Deposit","RunningBalance"\n'
)

MINIMAL = """
name = "mybank"
title = "My bank"
date_format = "%d/%m/%Y"
currency = "EUR"
[columns]
date = "When"
amount = "Sum"
description = "What"
"""


@pytest.fixture(autouse=True)
def home_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PDS_HOME", str(home))
    return home


def parse(data: bytes, filename: str = "statement.csv", connector=None) -> list[Record]:
    return list(
        strict((connector or BankCsvConnector()).parse(io.BytesIO(data), filename), filename)
    )


def parse_fixture(name: str) -> list[Record]:
    with (FIXTURES / name).open("rb") as stream:
        return list(strict(BankCsvConnector().parse(stream, name), name))


def txn(date, amount, description, **rest) -> dict:
    payload = {
        "date": date,
        "amount": amount,
        "currency": rest.pop("currency"),
        "description": description,
        "counterparty": None,
        "balance": None,
        "type": None,
        "account": None,
        "reference": None,
    }
    payload.update(rest)
    return payload


def test_every_fixture_is_tested():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(ALL)


def test_builtin_profiles_are_data():
    assert [m.name for m in builtin_mappings()] == [
        "johnlewis-card-uk",
        "rabobank-nl",
        "schwab-checking-us",
        "ubs-ch-fr",
    ]


@pytest.mark.parametrize("name", ALL)
def test_registry_detects_each_bank_file(name):
    head = (FIXTURES / name).read_bytes()[: registry.HEAD_BYTES]
    assert registry.detect(head, name).name == "bankcsv"


def test_rabobank_latin1_cr_cr_lf_and_the_row_without_its_opening_quote():
    records = parse_fixture(RABO)
    assert len(records) == 3
    account = "NL77RABO0311467415"
    assert records[0] == Record(
        "transactions",
        "2018-03-01",
        txn(
            "2018-03-01",
            "-337.49",
            "RENTE LENING",
            currency="EUR",
            balance="5257.28",
            type="db",
            account=account,
        ),
        f"{account}:000000000000009565",
    )
    # line 3 lacks its opening quote: the account still reads without the stray quote
    assert records[1].payload == txn(
        "2018-03-14",
        "50.00",
        "Gefeliciteerd, Gewonnen met Staatsloterij, Trekking 10-03-2018, 18753493.6094",
        currency="EUR",
        counterparty="Nederlandse Loterij Organisatie B.V.",
        balance="13084.53",
        type="cb",
        account=account,
        reference="18753493.6094",
    )
    assert (records[1].identity, records[1].where) == (f"{account}:000000000000009590", "line 3")
    assert records[2].payload["counterparty"] == "W. Koelewijn"
    assert [(r.payload["amount"], r.payload["balance"], r.where) for r in records] == [
        ("-337.49", "5257.28", "line 2"),
        ("50.00", "13084.53", "line 3"),
        ("-750.00", "12334.53", "line 4"),
    ]


def test_john_lewis_bom_pending_rows_left_out_and_cr_payment():
    records = parse_fixture(JOHNLEWIS)
    assert len(records) == 10  # 13 rows, 3 of them Pending
    assert records[0].payload == txn(
        "2019-12-12", "-1183.23", "ROYAL LONDON INSURANCE        01222 61234  GBR", currency="GBP"
    )
    assert records[0].where == "line 5"
    assert records[-1] == Record(
        "transactions",
        "2019-12-02",
        txn("2019-12-02", "1100.00", "PAYMENT RECEIVED - THANK YOU", currency="GBP"),
        None,
    )
    assert records[-1].where == "line 14"
    amounts = [r.payload["amount"] for r in records]
    assert amounts == [
        "-1183.23",
        "-18.89",
        "-23.00",
        "-80.99",
        "-1.50",
        "-50.00",
        "-10.00",
        "-9.99",
        "-8.20",
        "1100.00",
    ]


def test_schwab_quoted_dollars_withdrawal_and_deposit_columns():
    records = parse_fixture(SCHWAB)
    assert [r.payload for r in records] == [
        txn(
            "2022-08-17",
            "20.00",
            "Deposit Mobile Banking",
            currency="USD",
            balance="878.47",
            type="DEPOSIT",
        ),
        txn(
            "2022-08-14", "-103.00", "BMO HARRIS BANK", currency="USD", balance="858.47", type="ATM"
        ),
        txn(
            "2022-08-09",
            "-75.00",
            "Check Paid #558",
            currency="USD",
            balance="961.47",
            type="CHECK",
            reference="558",
        ),
        txn(
            "2022-08-04",
            "-57.27",
            "PAYPAL INST XFER 220803~ Tran: ACHDW",
            currency="USD",
            balance="1036.47",
            type="ACH",
        ),
    ]
    assert all(r.identity is None for r in records)


def test_ubs_semicolons_apostrophe_thousands_and_debit_credit():
    records = parse_fixture(UBS)
    assert len(records) == 3
    assert records[2].payload == txn(
        "2019-04-27",
        "-200.00",
        "Ordre e-banking REMB-CASH Quuz-baz SàrL, CH - 1203 GENEVE, E-Banking CHF intérieur",
        currency="CHF",
        balance="11413.94",
        account="0123 45678901.23A",
        reference="9979360TI2115087",
    )
    assert records[2].identity == "0123 45678901.23A:9979360TI2115087"
    assert [(r.occurred_at, r.payload["amount"], r.payload["balance"]) for r in records] == [
        ("2019-03-31", "-10.00", "11373.94"),
        ("2019-02-28", "240.00", "11613.94"),
        ("2019-04-27", "-200.00", "11413.94"),
    ]


@pytest.mark.parametrize("name", ALL)
def test_payloads_pass_the_schema_unchanged(name):
    for record in parse_fixture(name):
        assert record.occurred_at == record.payload["date"]
        assert TransactionSchema().load(record.payload) == record.payload


# -- sniffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "decimal", "thousands", "expected"),
    [
        ("£8.99", "auto", None, "8.99"),
        ("+ £1,100.00", "auto", None, "1100.00"),
        ("-337,49", "auto", None, "-337.49"),
        ("11'373.94", "auto", None, "11373.94"),
        ("$1,036.47", "auto", None, "1036.47"),
        ("1.234.567,89", "auto", None, "1234567.89"),
        ("CHF 1 234.50", "auto", None, "1234.50"),
        ("1\u202f234,50 €", "auto", None, "1234.50"),
        ("(12.30)", "auto", None, "-12.30"),
        ("12.30-", "auto", None, "-12.30"),
        ("5.00 DR", "auto", None, "-5.00"),
        ("5.00 CR", "auto", None, "5.00"),
        ("-0.00", "auto", None, "0.00"),
        ("1,100", ".", ",", "1100"),
        ("1.100", ",", None, "1100"),
        ("1.5", ".", "", "1.5"),
    ],
)
def test_parse_amount(raw, decimal, thousands, expected):
    assert parse_amount(raw, decimal, thousands) == expected


@pytest.mark.parametrize(
    ("raw", "decimal", "message"),
    [
        (
            "1,100",
            "auto",
            'is ambiguous ("," may mark thousands or decimals); set decimal in the mapping',
        ),
        ("12,3O", "auto", "is not a number"),
        ("1,00,000.00", "auto", "has misplaced thousands separators"),
        ("1.5", ",", "has misplaced thousands separators"),
        ("", "auto", "is not a number"),
        ("--", "auto", "is not a number"),
    ],
)
def test_parse_amount_refuses(raw, decimal, message):
    with pytest.raises(ValueError, match=re.escape(message)) as exc:
        parse_amount(raw, decimal)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("line", "delimiter"),
    [
        ("a,b,c", ","),
        ("a;b;c", ";"),
        ("a\tb\tc", "\t"),
        ("a|b|c", "|"),
        ('"a;b",c', ","),
        ("abc", ","),
    ],
)
def test_sniff_delimiter(line, delimiter):
    assert sniff_delimiter(line) == delimiter


# -- bad rows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            b'"13/32/2022","Posted","ATM","","X","$1.00","",""\n',
            'schwab.csv line 3: date "13/32/2022" is not a date like 01/31/2024',
        ),
        (
            b'"08/14/2022","Posted","ATM","","X","$1.0O","",""\n',
            'schwab.csv line 3: debit "$1.0O" is not a number',
        ),
        (
            b'"08/14/2022","Posted","ATM","","X","$1.00","$2.00",""\n',
            'schwab.csv line 3: "Withdrawal" and "Deposit" both have an amount',
        ),
        (
            b'"08/14/2022","Posted","ATM","","X","","",""\n',
            'schwab.csv line 3: "Withdrawal" and "Deposit" are both empty',
        ),
        (b'"08/14/2022","Posted"\n', "schwab.csv line 3: expected 8 columns, found 2"),
        (
            b'"08/14/2022","Posted","ATM","","X","$1.00","","bad"\n',
            'schwab.csv line 3: balance "bad" is not a number',
        ),
    ],
)
def test_bad_row_names_the_line(row, message):
    good = b'"08/17/2022","Posted","DEPOSIT","","D","","$20.00","$878.47"\n'
    with pytest.raises(ImportFormatError) as exc:
        parse(SCHWAB_HEADER + good + row, "schwab.csv")
    assert exc.value.message == message


def test_skip_bad_leaves_out_the_bad_rows(vault, tmp_path):
    path = tmp_path / "schwab.csv"
    path.write_bytes(
        SCHWAB_HEADER
        + b'"08/17/2022","Posted","DEPOSIT","","D","","$20.00","$878.47"\n'
        + b'"08/14/2022","Posted","ATM","","X","$1.0O","",""\n'
        + b'"08/14/2022","Posted"\n'
        + b'"08/13/2022","Posted","ATM","","Y","$1.00","",""\n'
    )
    assert_skip_bad(
        vault,
        path,
        [
            'schwab.csv line 3: debit "$1.0O" is not a number',
            "schwab.csv line 4: expected 8 columns, found 2",
        ],
        new=2,
    )
    assert [r.payload["description"] for r in vault.records()] == ["Y", "D"]


def test_blank_lines_and_multiline_quoted_cells_keep_line_numbers():
    data = SCHWAB_HEADER + (
        b"\n"
        b'"08/17/2022","Posted","DEPOSIT","","two\nlines","","$20.00",""\n'
        b"\r\n"
        b'"08/18/2022","Posted","ATM","","X","$1.00","",""\n'
    )
    records = parse(data)
    assert [(r.where, r.payload["description"]) for r in records] == [
        ("line 3", "two\nlines"),
        ("line 6", "X"),
    ]


def test_unknown_csv_is_refused():
    with pytest.raises(ImportFormatError) as exc:
        parse(b"a,b,c\n1,2,3\n", "other.csv")
    assert exc.value.message == "other.csv: no known bank CSV header line was found"
    assert not BankCsvConnector().detect(b"a,b,c\n1,2,3\n", "other.csv")


def test_midata_and_ofx_files_are_not_bank_csv():
    midata = b"Date,Type,Merchant/Description,Debit/Credit,Balance\n"
    assert not BankCsvConnector().detect(midata, "midata.csv")
    assert not BankCsvConnector().detect(b"OFXHEADER:100\nDATA:OFXSGML\n", "x.ofx")


# -- mapping files ----------------------------------------------------------------------------


def test_users_own_profile_is_detected_from_pds_home(home_dir: Path):
    folder = home_dir / "csv-profiles"
    folder.mkdir()
    (folder / "mybank.toml").write_text(
        MINIMAL.replace('title = "My bank"', 'title = "My bank"\nheader = ["When", "What", "Sum"]'),
        encoding="utf-8",
    )
    (folder / "broken.toml").write_text("name = 'x'\n", encoding="utf-8")  # ignored
    data = b"When;What;Sum\n31/01/2024;Coffee;-3,50\n"
    assert registry.detect(data, "export.csv").name == "bankcsv"
    (record,) = parse(data)
    assert record.payload == txn("2024-01-31", "-3.50", "Coffee", currency="EUR")


def test_mapping_without_header_finds_the_row_holding_its_columns(tmp_path: Path):
    path = tmp_path / "mybank.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    connector = BankCsvConnector().with_mapping(path)
    assert isinstance(connector, MappedCsvConnector)
    assert connector.name == "csv-mapping"
    data = b"My Bank export\nAccount: 123\n\nWhat|Extra|Sum|When\nTea|x|1.234,50|02/02/2024\n"
    (record,) = parse(data, connector=connector)
    assert record.payload == txn("2024-02-02", "1234.50", "Tea", currency="EUR")
    assert record.where == "line 5"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('name = "mybank"\n', ""), "mybank.toml: name: Missing data for required field."),
        (
            ('date_format = "%d/%m/%Y"', 'date_format = "%d/%m"'),
            'mybank.toml: date_format: "%d/%m" is not a date format with day, month and year',
        ),
        (
            ('amount = "Sum"', 'debit = "Sum"'),
            "mybank.toml: columns.amount: give amount, or both debit and credit",
        ),
        (
            ('currency = "EUR"', 'currency = "euro"'),
            "mybank.toml: currency: String does not match expected pattern.",
        ),
        (('currency = "EUR"\n', ""), "mybank.toml: currency: give currency, or a currency column"),
        (
            ('title = "My bank"', 'title = "My bank"\nheader = ["When", "Sum"]'),
            'mybank.toml: columns.description: "What" is not in the header',
        ),
        (
            ('title = "My bank"', 'title = "My bank"\ndelimiter = ":"'),
            "mybank.toml: delimiter: Must be one of: ,, ;, \t, |.",
        ),
        (
            ('title = "My bank"', 'title = "My bank"\ncolour = "red"'),
            "mybank.toml: colour: Unknown field.",
        ),
        (
            ("[columns]", "[columns"),
            "mybank.toml: not valid TOML (Expected ']' at the end of a table declaration (at line 6, column 9))",
        ),
    ],
)
def test_mapping_errors_name_the_file_and_field(tmp_path: Path, change, message):
    path = tmp_path / "mybank.toml"
    path.write_text(MINIMAL.replace(*change), encoding="utf-8")
    with pytest.raises(ImportFormatError) as exc:
        read_mapping(path)
    assert exc.value.message == message


def test_mapping_user_encoding_is_strict(tmp_path: Path):
    mapping = parse_mapping(MINIMAL.replace("[columns]", 'encoding = "utf-8"\n[columns]'), "m.toml")
    data = b"When,What,Sum\n31/01/2024,Caf\xe9,1.00\n"
    with pytest.raises(ImportFormatError) as exc:
        parse(data, connector=MappedCsvConnector(mapping))
    assert exc.value.message == "statement.csv line 2: byte 0xE9 at column 15 is not valid UTF-8"
    (record,) = parse(data, connector=MappedCsvConnector(parse_mapping(MINIMAL, "m.toml")))
    assert record.payload["description"] == "Café"


def test_header_of_a_mapping_not_found(tmp_path: Path):
    connector = MappedCsvConnector(parse_mapping(MINIMAL, "mybank.toml"))
    with pytest.raises(ImportFormatError) as exc:
        parse(b"a,b\n1,2\n", "x.csv", connector)
    assert exc.value.message == (
        'x.csv: the header line of mapping "mybank" (mybank.toml) is not in the first 20 lines'
    )


# -- fuzz -------------------------------------------------------------------------------------

SAMPLES = [(FIXTURES / n).read_bytes() for n in ALL]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), mutations(SAMPLES)))
def test_fuzz_records_or_a_clean_error(data: bytes):
    records, message = [], "statement.csv"
    try:
        records = parse(data)
    except ImportFormatError as exc:
        message = exc.message
    assert message.startswith("statement.csv")
    for record in records:
        assert TransactionSchema().load(record.payload) == record.payload


# -- through the importer and the CLI ---------------------------------------------------------

IMPORTS = [
    (RABO, 3, "-1037.49", "2018-03-01", "2018-03-16", {"EUR"}),
    (JOHNLEWIS, 10, "-285.80", "2019-12-02", "2019-12-12", {"GBP"}),
    (SCHWAB, 4, "-215.27", "2022-08-04", "2022-08-17", {"USD"}),
    (UBS, 3, "30.00", "2019-02-28", "2019-04-27", {"CHF"}),
]


@pytest.mark.parametrize(("name", "count", "total", "first", "last", "currencies"), IMPORTS)
def test_fixture_imports_exactly(vault, name, count, total, first, last, currencies):
    from decimal import Decimal

    from pds.importer import import_file

    summary = import_file(vault, FIXTURES / name)
    assert (summary.connector, summary.new, summary.duplicate, summary.rejected) == (
        "bankcsv",
        count,
        0,
        0,
    )
    stored = list(vault.records("transactions"))
    assert sum(Decimal(r.payload["amount"]) for r in stored) == Decimal(total)
    assert (stored[0].occurred_at, stored[-1].occurred_at) == (first, last)
    assert {r.payload["currency"] for r in stored} == currencies
    again = import_file(vault, FIXTURES / name)
    assert (again.new, again.duplicate) == (0, count)


def test_cli_import_with_a_mapping_file(runner, initialised: Path, tmp_path: Path):
    import json

    from pds.cli import cli

    mapping = tmp_path / "mybank.toml"
    mapping.write_text(MINIMAL, encoding="utf-8")
    statement = tmp_path / "export.csv"
    statement.write_bytes(b"When,What,Sum\n31/01/2024,Coffee,-3.50\n01/02/2024,Pay,100.00\n")
    result = runner.invoke(cli, ["import", "--mapping", str(mapping), str(statement), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["new"], doc["files"][0]["connector"]) == (2, "csv-mapping")
    assert "csv-mapping" not in [c.name for c in registry.all_connectors()]

    mapping.write_text(MINIMAL.replace('amount = "Sum"', 'amount = ""'), encoding="utf-8")
    result = runner.invoke(cli, ["import", "--mapping", str(mapping), str(statement)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: mybank.toml: columns.amount: Shorter than minimum length 1.",
        "Hint: See docs/connectors.md (Bank CSV) for the mapping file format.",
    ]
    result = runner.invoke(
        cli, ["import", "--mapping", str(mapping), "--connector", "midata", str(statement)]
    )
    assert result.exit_code == 2
    assert "--mapping and --connector cannot be used together" in result.stderr


def _full_rules(raw: str, decimal: str, thousands: str | None) -> str:
    """parse_amount with its fast path switched off: the full rules only."""
    saved = csvsniff._plain
    csvsniff._plain = lambda decimal, thousands: None
    try:
        return parse_amount(raw, decimal, thousands)
    finally:
        csvsniff._plain = saved


@settings(max_examples=400, deadline=None)
@given(
    raw=st.text(alphabet="0123456789.,-+$£ '", max_size=14),
    style=st.sampled_from(
        [(".", ","), (".", None), (".", ""), (",", "."), (",", None), (",", ""), (",", " ")]
    ),
)
def test_the_fast_path_reads_amounts_exactly_as_the_full_rules(
    raw: str, style: tuple[str, str | None]
) -> None:
    decimal, thousands = style
    try:
        expected: str | type[ValueError] = _full_rules(raw, decimal, thousands)
    except ValueError:
        expected = ValueError
    try:
        got: str | type[ValueError] = parse_amount(raw, decimal, thousands)
    except ValueError:
        got = ValueError
    assert got == expected


@pytest.mark.parametrize(
    ("raw", "decimal", "thousands", "expected"),
    [
        ("$1,036.47", ".", ",", "1036.47"),
        ("-$57.27", ".", ",", "-57.27"),
        ("-0.00", ".", ",", "0.00"),
        ("1.234,50", ",", ".", "1234.50"),
        ("-337,49", ",", None, "-337.49"),
    ],
)
def test_plain_amounts_take_the_fast_path(
    raw: str, decimal: str, thousands: str | None, expected: str
) -> None:
    assert csvsniff._plain(decimal, thousands).match(raw) is not None
    assert parse_amount(raw, decimal, thousands) == expected
