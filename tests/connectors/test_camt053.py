"""The camt.053 connector against the v2 and v8 messages, hostile XML and broken elements."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Record, strict
from connectors.camt053 import Camt053Connector
from pds import registry
from pds.errors import ImportFormatError
from pds.payloads import BalanceSchema, TransactionSchema
from tests.conftest import fixture
from tests.factories import mutations
from tests.skipbad import assert_skip_bad

FIXTURES = fixture("camt053")
V2 = "camt053.v2.minimal.xml"
V8 = "camt053.v8.xml"
ACCOUNT = "NL26VAYB8060476890"


def parse(data: bytes, filename: str = "statement.xml") -> list[Record]:
    return list(strict(Camt053Connector().parse(io.BytesIO(data), filename), filename))


def parse_fixture(name: str) -> list[Record]:
    with (FIXTURES / name).open("rb") as stream:
        return list(strict(Camt053Connector().parse(stream, name), name))


def entry(body: str, ns: str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.04") -> bytes:
    return (
        f'<?xml version="1.0"?><Document xmlns="{ns}"><BkToCstmrStmt><Stmt>'
        f"<Acct><Id><IBAN>DE1</IBAN></Id><Ccy>EUR</Ccy></Acct>{body}</Stmt></BkToCstmrStmt>"
        "</Document>"
    ).encode()


NTRY = (
    "<Ntry><Amt Ccy='EUR'>1.50</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>"
    "<BookgDt><Dt>2024-02-29</Dt></BookgDt><NtryDtls><TxDtls><RltdPties><Cdtr><Nm>Shop</Nm>"
    "</Cdtr></RltdPties><RmtInf><Ustrd>Coffee</Ustrd><Ustrd>and cake</Ustrd></RmtInf>"
    "</TxDtls></NtryDtls></Ntry>"
)


def test_every_fixture_is_tested():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted([V2, V8])


@pytest.mark.parametrize("name", [V2, V8])
def test_registry_detects_camt053(name):
    head = (FIXTURES / name).read_bytes()[: registry.HEAD_BYTES]
    assert registry.detect(head, name).name == "camt053"


def balances(day_clbd: str) -> list[dict]:
    return [
        {"date": "2014-12-30", "amount": "18.15", "currency": "EUR", "type": "OPBD", "account": ACCOUNT},
        {"date": day_clbd, "amount": "-27.00", "currency": "SEK", "type": "CLBD", "account": ACCOUNT},
        {"date": "2014-12-30", "amount": "35.00", "currency": "CHF", "type": "OPAV", "account": ACCOUNT},
        {"date": "2014-12-31", "amount": "-2700", "currency": "JPY", "type": "CLAV", "account": ACCOUNT},
    ]  # fmt: skip


def test_v2_minimal():
    records = parse_fixture(V2)
    assert [r.payload for r in records if r.category == "balances"] == balances("2014-12-31")
    (txn,) = [r for r in records if r.category == "transactions"]
    assert txn == Record(
        "transactions",
        "2014-12-31",
        {
            "date": "2014-12-31",
            "amount": "8.85",
            "currency": "EUR",
            "description": "NAME NAME",
            "counterparty": "NAME NAME",
            "balance": None,
            "type": "544",
            "account": ACCOUNT,
            "reference": "4654654654654654",
        },
        None,
    )
    assert txn.where == "Stmt 1 Ntry 1 (line 90)"
    assert [r.where for r in records[:4]] == [
        "Stmt 1 Bal 1 (line 42)",
        "Stmt 1 Bal 2 (line 54)",
        "Stmt 1 Bal 3 (line 66)",
        "Stmt 1 Bal 4 (line 78)",
    ]


def test_v8_other_namespace_othr_account_and_booking_time_with_zone():
    records = parse_fixture(V8)
    assert [r.payload for r in records if r.category == "balances"] == balances("2014-12-30")
    (txn,) = [r for r in records if r.category == "transactions"]
    # BookgDt/DtTm 2014-12-31T13:15:00+01:00: the bank's calendar date, not shifted to UTC
    assert (txn.occurred_at, txn.payload["type"], txn.payload["reference"]) == (
        "2014-12-31",
        "PMNT/RCDT/BOOK",
        "AAAASESS-FP-CN_98765/01",
    )
    assert txn.identity == f"{ACCOUNT}:AAAASESS-FP-CN_98765/01"
    assert txn.payload["counterparty"] == "NAME NAME"  # v8 Dbtr/Pty/Nm


@pytest.mark.parametrize("name", [V2, V8])
def test_payloads_pass_their_schemas_unchanged(name):
    schemas = {"transactions": TransactionSchema(), "balances": BalanceSchema()}
    for record in parse_fixture(name):
        assert record.occurred_at == record.payload["date"]
        assert schemas[record.category].load(record.payload) == record.payload


def test_debit_entry_remittance_and_pending_left_out():
    pending = NTRY.replace("<Sts>BOOK</Sts>", "<Sts><Cd>PDNG</Cd></Sts>")
    no_namespace = entry(NTRY + pending).replace(
        b' xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.04"', b""
    )
    for data in (entry(NTRY + pending), no_namespace):
        (txn,) = parse(data)
        assert txn.payload == {
            "date": "2024-02-29",
            "amount": "-1.50",
            "currency": "EUR",
            "description": "Coffee and cake",
            "counterparty": "Shop",
            "balance": None,
            "type": None,
            "account": "DE1",
            "reference": None,
        }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("<Amt Ccy='EUR'>1.50</Amt>", "<Amt Ccy='EUR'>1,50</Amt>"),
            'statement.xml Stmt 1 Ntry 1 (line 1): Amt "1,50" is not an amount like 12.30',
        ),
        (
            ("<Amt Ccy='EUR'>1.50</Amt>", "<Amt Ccy='EURO'>1.50</Amt>"),
            'statement.xml Stmt 1 Ntry 1 (line 1): Ccy "EURO" is not an ISO 4217 code like EUR',
        ),
        (
            ("<CdtDbtInd>DBIT</CdtDbtInd>", "<CdtDbtInd>X</CdtDbtInd>"),
            'statement.xml Stmt 1 Ntry 1 (line 1): CdtDbtInd "X" is not CRDT or DBIT',
        ),
        (
            ("2024-02-29", "2023-02-29"),
            'statement.xml Stmt 1 Ntry 1 (line 1): BookgDt "2023-02-29" is not a date like 2024-01-31',
        ),
        (
            ("<BookgDt><Dt>2024-02-29</Dt></BookgDt>", ""),
            "statement.xml Stmt 1 Ntry 1 (line 1): BookgDt is missing",
        ),
        (("<Amt Ccy='EUR'>1.50</Amt>", ""), "statement.xml Stmt 1 Ntry 1 (line 1): Amt is missing"),
    ],
)
def test_bad_elements_are_named(change, message):
    with pytest.raises(ImportFormatError) as exc:
        parse(entry(NTRY.replace(*change)))
    assert exc.value.message == message


def test_skip_bad_leaves_out_the_bad_entries(vault, tmp_path):
    path = tmp_path / "statement.xml"
    tea = NTRY.replace("Coffee", "Tea").replace("1.50", "2.00")
    no_amount = NTRY.replace("<Amt Ccy='EUR'>1.50</Amt>", "")
    bad_date = NTRY.replace("2024-02-29", "2023-02-29")
    path.write_bytes(entry("\n".join(["", NTRY, no_amount, bad_date, tea, ""])))
    assert_skip_bad(
        vault,
        path,
        [
            "statement.xml Stmt 1 Ntry 2 (line 3): Amt is missing",
            'statement.xml Stmt 1 Ntry 3 (line 4): BookgDt "2023-02-29" is not a date like '
            "2024-01-31",
        ],
        new=2,
    )
    assert [r.payload["amount"] for r in vault.records()] == ["-1.50", "-2.00"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            entry("", "urn:iso:std:iso:20022:tech:xsd:camt.052.001.02"),
            "statement.xml: not a camt.053 statement (the root is urn:iso:std:iso:20022:tech:xsd:camt.052.001.02)",
        ),
        (b"<feed><entry/></feed>", "statement.xml: not a camt.053 statement (the root is <feed>)"),
        (
            b"<Document><BkToCstmrStmt/></Document>",
            "statement.xml: the file has no Stmt (statement)",
        ),
        (entry(NTRY)[:-20], "statement.xml line 1: not well-formed XML (unclosed token)"),
        (
            b'<?xml version="1.0" encoding="TTF-8"?><Document/>',
            "statement.xml line 1: the XML cannot be read (unknown encoding: TTF-8)",
        ),
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY a "aaaa">]>\n<Document/>',
            "statement.xml line 2: document type declarations (<!DOCTYPE>) are refused in this format",
        ),
    ],
)
def test_not_a_statement_or_hostile(data, message):
    with pytest.raises(ImportFormatError) as exc:
        parse(data)
    assert exc.value.message == message


def test_memory_stays_flat_for_many_entries():
    """Entries are dropped from the tree once read: 5,000 entries, a few KiB of Python heap."""
    import tracemalloc

    class Repeat(io.RawIOBase):
        def __init__(self) -> None:
            head, _, tail = entry("@").decode().partition("@")
            self.parts = iter([head.encode()] + [NTRY.encode()] * 5_000 + [tail.encode()])
            self.buffer = b""

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            while len(self.buffer) < len(b):
                part = next(self.parts, None)
                if part is None:
                    break
                self.buffer += part
            n = min(len(b), len(self.buffer))
            b[:n], self.buffer = self.buffer[:n], self.buffer[n:]
            return n

    tracemalloc.start()
    count = sum(1 for _ in Camt053Connector().parse(io.BufferedReader(Repeat()), "big.xml"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 5_000
    assert peak < 2 * 1024 * 1024


SAMPLES = [(FIXTURES / n).read_bytes() for n in (V2, V8)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), mutations(SAMPLES)))
def test_fuzz_records_or_a_clean_error(data: bytes):
    schemas = {"transactions": TransactionSchema(), "balances": BalanceSchema()}
    records, message = [], "statement.xml"
    try:
        records = parse(data)
    except ImportFormatError as exc:
        message = exc.message
    assert message.startswith("statement.xml")
    for record in records:
        assert schemas[record.category].load(record.payload) == record.payload


@pytest.mark.parametrize("name", [V2, V8])
def test_fixture_imports_exactly(vault, name):
    from pds.importer import import_file

    summary = import_file(vault, FIXTURES / name)
    assert (summary.connector, summary.new, summary.duplicate) == ("camt053", 5, 0)
    (txn,) = vault.records("transactions")
    assert (txn.occurred_at, txn.payload["amount"], txn.payload["currency"]) == (
        "2014-12-31",
        "8.85",
        "EUR",
    )
    assert sorted(r.payload["currency"] for r in vault.records("balances")) == [
        "CHF",
        "EUR",
        "JPY",
        "SEK",
    ]
    assert import_file(vault, FIXTURES / name).new == 0


def test_an_entry_with_too_many_elements_is_refused():
    with pytest.raises(ImportFormatError) as exc:
        parse(entry(NTRY.replace("<Sts>", "<X/>" * 10_001 + "<Sts>")))
    assert exc.value.message == (
        "statement.xml: more than 10,000 elements inside one Stmt child element"
    )
