"""The OFX/QFX connector against real statements and hand-made SGML/XML variants."""

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

FIXTURES = fixture("ofx")
CHECKING = "ofxparse-checking.ofx"
SUNCORP = "ofxparse-suncorp.ofx"
ANZCC = "ofxparse-anzcc.ofx"
BB = "asgrim-ofxdata-bb.ofx"
ACTUAL = "actual-html-vals.qfx"
COUNTS = {CHECKING: 3, SUNCORP: 1, ANZCC: 1, BB: 1, ACTUAL: 2}


def parse(data: bytes, filename: str = "bank.ofx") -> list[Record]:
    return list(strict(OfxConnector().parse(io.BytesIO(data), filename), filename))


def parse_fixture(name: str) -> list[Record]:
    with (FIXTURES / name).open("rb") as stream:
        return list(strict(OfxConnector().parse(stream, name), name))


def txn(**fields) -> dict:
    payload = dict.fromkeys(
        ("date", "amount", "currency", "description", "counterparty", "balance", "type"),
    )
    payload.update(account=None, reference=None)
    payload.update(fields)
    return payload


def test_every_fixture_is_tested():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(COUNTS)


@pytest.mark.parametrize(("name", "count"), sorted(COUNTS.items()))
def test_fixture_counts_and_schema(name, count):
    records = parse_fixture(name)
    assert len(records) == count
    assert [r.where for r in records] == [f"STMTTRN #{n}" for n in range(1, count + 1)]
    for record in records:
        assert record.category == "transactions"
        assert record.occurred_at == record.payload["date"]
        assert TransactionSchema().load(record.payload) == record.payload


def test_checking_sgml_102():
    records = parse_fixture(CHECKING)
    assert records[0] == Record(
        "transactions",
        "2011-03-31",
        txn(
            date="2011-03-31",
            amount="0.01",
            currency="USD",
            description="DIVIDEND EARNED FOR PERIOD OF 03/01/2011 THROUGH 03/31/2011 "
            "ANNUAL PERCENTAGE YIELD EARNED IS 0.05%",
            counterparty="DIVIDEND EARNED FOR PERIOD OF 03",
            type="CREDIT",
            account="1452687~7",
            reference="0000486",
        ),
        "1452687~7:0000486",
    )
    assert records[1].payload["amount"] == "-34.51"
    assert records[1].identity == "1452687~7:0000487"
    assert records[-1] == Record(
        "transactions",
        "2011-04-07",
        txn(
            date="2011-04-07",
            amount="-25.00",
            currency="USD",
            description="RETURNED CHECK FEE, CHECK # 319 FOR $45.33 ON 04/07/11",
            counterparty="RETURNED CHECK FEE, CHECK # 319",
            type="CHECK",
            account="1452687~7",
            reference="319",
        ),
        "1452687~7:0000488",
    )


def test_suncorp_xml_cdata_crlf():
    [record] = parse_fixture(SUNCORP)
    assert record.payload == txn(
        date="2013-12-15",
        amount="-16.85",
        currency="AUD",
        description="EFTPOS WDL HANDYWAY ALDI STORE   GEELONG WEST VICAU",
        counterparty="EFTPOS WDL HANDYWAY ALDI STORE",
        type="DEBIT",
        account="123456789",
        reference="0",
    )
    assert record.identity == "123456789:1"


def test_anz_credit_card_xml_header_sgml_body():
    [record] = parse_fixture(ANZCC)
    assert record.payload == txn(
        date="2017-05-08",
        amount="-5.50",
        currency="AUD",
        description="SOME MEMO",
        type="DEBIT",
        account="1234123412341234",
        reference="201705080001",
    )
    assert record.identity == "1234123412341234:201705080001"


def test_banco_do_brasil_utf8_under_a_1252_header():
    [record] = parse_fixture(BB)
    assert record.payload == txn(
        date="2015-11-03",
        amount="239.55",
        currency="BRL",
        description="DOC CR\u00c9DITO EM CONTA",
        type="DEP",
        account="455000-5",
        reference="252602",
    )
    assert record.identity == "455000-5:20151103023955"


def test_actual_qfx_one_line_entities_and_timezones():
    first, last = parse_fixture(ACTUAL)
    assert first == Record(
        "transactions",
        "2023-05-09",
        txn(
            date="2023-05-09",
            amount="-1.00",
            currency="CAD",
            description="PREAUTHORIZED DEBIT;B.C. HYDRO & POWER AUTHORITY;"
            "Electronic Funds Transfer",
            counterparty="000000000000000",
            type="DEBIT",
            account="00000 00-00000",
            reference="23129130032333396279270000",
        ),
        "00000 00-00000:23129130032333396279270000",
    )
    assert last == Record(
        "transactions",
        "2023-03-01",
        txn(
            date="2023-03-01",
            amount="-1.00",
            currency="CAD",
            description="PREAUTHORIZED DEBIT;LUXMORE REALTY PPTY MGMT;Electronic Funds Transfer",
            counterparty="TPAY &lt;DEFTPYMT&gt;",
            type="DEBIT",
            account="00000 00-00000",
            reference="23060061032549554596530000",
        ),
        "00000 00-00000:23060061032549554596530000",
    )


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_detect_fixture(name):
    head = (FIXTURES / name).read_bytes()[:4096]
    assert OfxConnector().detect(head, name) is True
    assert MidataConnector().detect(head, name) is False


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (b"\xef\xbb\xbf \r\nOFXHEADER:100\nDATA:OFXSGML\n", "download", True),
        (b'<?xml version="1.0"?>\n<?OFX OFXHEADER="200"?>\n<OFX>', "x.xml", True),
        (b'<?xml version="1.0"?>\n<ofx>', "x", True),
        (b'<?xml version="1.0"?>\n<Document xmlns="urn:iso:camt.053">', "x.xml", False),
        (b"<OFX><BANKMSGSRSV1>", "STATEMENT.QFX", True),
        (b"<OFX><BANKMSGSRSV1>", "statement.txt", False),
        (b"hello", "statement.ofx", False),
        (b"", "statement.ofx", False),
        (b"Date,Type,Merchant/Description,Debit/Credit,Balance\n", "x.ofx", False),
    ],
)
def test_detect(head, filename, expected):
    assert OfxConnector().detect(head, filename) is expected


HEADER = b"OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nCHARSET:1252\n\n"
ONE = b"<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240131<TRNAMT>-1.50<FITID>F1<NAME>Shop</STMTTRN>\n"


def sgml(transactions: bytes, *, header: bytes = HEADER, statement: bytes = b"") -> bytes:
    """A bank statement; the first transaction line is line 10 of the file."""
    return (
        header + b"<OFX>\n"
        b"<BANKMSGSRSV1><STMTTRNRS><STMTRS>" + (statement or b"<CURDEF>EUR") + b"\n"
        b"<BANKACCTFROM><BANKID>1<ACCTID>A1</BANKACCTFROM>\n"
        b"<BANKTRANLIST>\n" + transactions + b"</BANKTRANLIST></STMTRS></STMTTRNRS>"
        b"</BANKMSGSRSV1>\n</OFX>\n"
    )


def test_synthetic_template_is_valid():
    [record] = parse(sgml(ONE))
    assert record.payload == txn(
        date="2024-01-31",
        amount="-1.50",
        currency="EUR",
        description="Shop",
        counterparty="Shop",
        type="DEBIT",
        account="A1",
        reference="F1",
    )
    assert record.identity == "A1:F1"


def test_bank_and_credit_card_statements_in_one_file():
    data = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<?OFX OFXHEADER="200" VERSION="220"?>\n'
        b"<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR</CURDEF>"
        b"<BANKACCTFROM><BANKID>1</BANKID><ACCTID>A1</ACCTID></BANKACCTFROM><BANKTRANLIST>"
        b"<STMTTRN><TRNTYPE>DEBIT</TRNTYPE><DTPOSTED>20240131</DTPOSTED><TRNAMT>-1</TRNAMT>"
        b"<FITID>F1</FITID><NAME>One</NAME></STMTTRN>"
        b"</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1>\n"
        b"<CREDITCARDMSGSRSV1><CCSTMTTRNRS><CCSTMTRS><CURDEF>GBP</CURDEF>"
        b"<CCACCTFROM><ACCTID>C9</ACCTID></CCACCTFROM><BANKTRANLIST>"
        b"<STMTTRN><TRNTYPE>DEBIT</TRNTYPE><DTPOSTED>20240305</DTPOSTED><TRNAMT>-2</TRNAMT>"
        b"<FITID>F1</FITID><PAYEE><NAME>Payee Ltd</NAME><ADDR1>1 High St</ADDR1></PAYEE>"
        b"<REFNUM>R7</REFNUM><BANKACCTTO><BANKID>9</BANKID><ACCTID>X</ACCTID></BANKACCTTO>"
        b"</STMTTRN></BANKTRANLIST></CCSTMTRS></CCSTMTTRNRS></CREDITCARDMSGSRSV1></OFX>\n"
    )
    first, second = parse(data)
    assert (first.identity, first.payload["account"], first.payload["currency"]) == (
        "A1:F1",
        "A1",
        "EUR",
    )
    assert second.identity == "C9:F1"
    assert second.where == "STMTTRN #2"
    assert second.payload == txn(
        date="2024-03-05",
        amount="-2",
        currency="GBP",
        description="Payee Ltd",
        counterparty="Payee Ltd",
        type="DEBIT",
        account="C9",
        reference="R7",
    )


def test_currency_aggregate_wins_origcurrency_does_not():
    data = sgml(
        b"<STMTTRN><TRNTYPE>POS<DTPOSTED>20240101<TRNAMT>-10<FITID>1<NAME>a"
        b"<CURRENCY><CURRATE>0.9<CURSYM>usd</CURRENCY></STMTTRN>\n"
        b"<STMTTRN><TRNTYPE>POS<DTPOSTED>20240101<TRNAMT>-9<FITID>2<NAME>b"
        b"<ORIGCURRENCY><CURRATE>0.9<CURSYM>USD</ORIGCURRENCY></STMTTRN>\n"
    )
    assert [r.payload["currency"] for r in parse(data)] == ["USD", "EUR"]


@pytest.mark.parametrize(
    ("dtposted", "day"),
    [
        (b"20240131", "2024-01-31"),
        (b"20240131235959", "2024-01-31"),
        (b"20240131235959.123", "2024-01-31"),
        (b"20240131235959.123[-5:EST]", "2024-01-31"),
        (b"20240229120000[+9.5:ACST]", "2024-02-29"),
        (b" 20240131 ", "2024-01-31"),
    ],
)
def test_dtposted_forms(dtposted, day):
    data = sgml(ONE.replace(b"20240131", dtposted))
    assert parse(data)[0].payload["date"] == day


@pytest.mark.parametrize(
    ("trnamt", "amount"),
    [
        (b"-1.50", "-1.50"),
        (b"+2.5", "2.5"),
        (b"-1,50", "-1.50"),
        (b"+12,00", "12.00"),
        (b"-.5", "-0.5"),
        (b"7.", "7"),
        (b"100", "100"),
    ],
)
def test_trnamt_forms(trnamt, amount):
    data = sgml(ONE.replace(b"-1.50", trnamt))
    assert parse(data)[0].payload["amount"] == amount


def test_text_escapes_decode_once():
    data = sgml(
        ONE.replace(b"<NAME>Shop", b"<NAME>A &amp;amp; B &#233;&#xE9; &lt;x&gt; &quot;&apos;")
    )
    assert parse(data)[0].payload["counterparty"] == "A &amp; B \u00e9\u00e9 <x> \"'"


def test_no_dtd_or_external_entity_is_expanded():
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE OFX [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        + sgml(ONE.replace(b"<NAME>Shop", b"<NAME>&xxe; shop"), header=b"")
    )
    assert parse(data)[0].payload["counterparty"] == "&xxe; shop"


def test_sgml_quirks():
    """Lower-case tags, an empty MEMO, a bare "<", comments, self-closed and closed leaves."""
    data = sgml(
        b"<stmttrn><trntype>DEBIT<!-- note --><DTPOSTED>20240131</DTPOSTED>\n"
        b"  <TRNAMT>-3<FITID>F9<MEMO><NAME>1 < 2 <![CDATA[a&amp;b]]><SIC/></STMTTRN>\n"
    )
    [record] = parse(data)
    assert record.payload == txn(
        date="2024-01-31",
        amount="-3",
        currency="EUR",
        description="1 < 2 a&amp;b",
        counterparty="1 < 2 a&amp;b",
        type="DEBIT",
        account="A1",
        reference="F9",
    )


def test_declared_charsets():
    cp1252 = sgml(ONE.replace(b"Shop", b"Caf\xe9 \x80"))
    assert parse(cp1252)[0].payload["counterparty"] == "Caf\u00e9 \u20ac"
    latin1 = sgml(
        ONE.replace(b"Shop", b"Caf\xe9 \x80"),
        header=HEADER.replace(b"CHARSET:1252", b"CHARSET:ISO-8859-1"),
    )
    assert parse(latin1)[0].payload["counterparty"] == "Caf\u00e9 \x80"
    utf8 = sgml(ONE.replace(b"Shop", "Café".encode()))
    assert parse(utf8)[0].payload["counterparty"] == "Caf\u00e9"


@pytest.mark.parametrize("charset", [b"base64", b"idna", b"\x001252", b"NONE", b"klingon"])
def test_unusable_declared_charset_falls_back_to_1252(charset):
    data = sgml(ONE.replace(b"Shop", b"Caf\xe9"), header=HEADER.replace(b"1252", charset))
    assert parse(data)[0].payload["counterparty"] == "Caf\u00e9"


def test_trailing_nul_padding_is_ignored():
    assert len(parse(sgml(ONE) + b"\x00\x00\x1a")) == 1


def expect_error(data: bytes, message: str, filename: str = "/downloads/bank.ofx") -> None:
    with pytest.raises(ImportFormatError, match=f"^{re.escape(message)}$"):
        parse(data, filename)


@pytest.mark.parametrize("missing", ["DTPOSTED", "TRNAMT", "FITID"])
def test_error_missing_required_leaf(missing):
    data = sgml(ONE + re.sub(rf"<{missing}>[^<]*".encode(), b"", ONE))
    expect_error(data, f"bank.ofx STMTTRN #2 (line 11): {missing} is missing")


def test_error_bad_amount():
    expect_error(
        sgml(ONE.replace(b"-1.50", b"12,3O")),
        'bank.ofx STMTTRN #1 (line 10): TRNAMT "12,3O" is not a number',
    )


def test_error_bad_date():
    expect_error(
        sgml(ONE.replace(b"20240131", b"20240231")),
        'bank.ofx STMTTRN #1 (line 10): DTPOSTED "20240231" is not an OFX date like 20240131 '
        "or 20240131120000.000[-5:EST]",
    )
    expect_error(
        sgml(ONE.replace(b"20240131", b"31/01/2024")),
        'bank.ofx STMTTRN #1 (line 10): DTPOSTED "31/01/2024" is not an OFX date like 20240131 '
        "or 20240131120000.000[-5:EST]",
    )


def test_skip_bad_leaves_out_the_bad_transactions(vault, tmp_path):
    path = tmp_path / "bank.ofx"
    two = ONE.replace(b"F1", b"F2").replace(b"20240131", b"20240201")
    path.write_bytes(
        sgml(
            ONE
            + ONE.replace(b"F1", b"F9").replace(b"-1.50", b"12,3O")
            + ONE.replace(b"F1", b"F8")
            .replace(b"<CURDEF>", b"")
            .replace(b"<NAME>", b"<CURRENCY><CURSYM>EURO</CURRENCY><NAME>")
            + two
        )
    )
    assert_skip_bad(
        vault,
        path,
        [
            'bank.ofx STMTTRN #2 (line 11): TRNAMT "12,3O" is not a number',
            'bank.ofx STMTTRN #3 (line 12): currency "EURO" is not an ISO 4217 code like USD',
        ],
        new=2,
    )
    assert [r.payload["reference"] for r in vault.records()] == ["F1", "F2"]


def test_error_no_ofx_element():
    expect_error(
        b"OFXHEADER:100\n\n<BANKMSGSRSV1></BANKMSGSRSV1>\n",
        "bank.ofx: no <OFX> element; this is not an OFX statement",
    )


def test_error_empty():
    expect_error(b"", "bank.ofx: the file is empty")
    expect_error(b" \r\n", "bank.ofx: the file is empty")


def test_error_truncated():
    data = sgml(ONE)
    expect_error(
        data[: data.index(b"<NAME>")],
        "bank.ofx line 10: the file ends inside STMTTRN #1; it looks truncated",
    )
    expect_error(
        data[: data.index(b"</STMTTRN>") + 5],
        "bank.ofx line 10: the file ends inside a tag in <NAME> of STMTTRN #1; it looks truncated",
    )
    expect_error(
        data[: data.index(b"</OFX>")],
        "bank.ofx line 12: the file ends inside <OFX>; it looks truncated",
    )
    expect_error(
        sgml(ONE.replace(b"Shop", b"<![CDATA[Shop")),
        "bank.ofx line 10: the file ends inside a CDATA section in <NAME> of STMTTRN #1; "
        "it looks truncated",
    )


def test_error_structure():
    expect_error(
        sgml(ONE.replace(b"</STMTTRN>", b"</STMTRN>")),
        "bank.ofx line 10: </STMTRN> closes an element that is not open",
    )
    expect_error(sgml(ONE) + b"<OFX>", "bank.ofx line 13: unexpected content after </OFX>")
    expect_error(
        sgml(ONE.replace(b"<NAME>", b"<NAME=")),
        'bank.ofx line 10: "<NAME=Shop</STMTTRN>" is not an OFX tag',
    )


def test_error_statement_context():
    expect_error(
        HEADER + b"<OFX>\n" + ONE + b"</OFX>\n",
        "bank.ofx STMTTRN #1 (line 7): it is not inside a bank (STMTRS) or credit-card "
        "(CCSTMTRS) statement",
    )
    expect_error(
        sgml(ONE).replace(b"<ACCTID>A1", b""),
        "bank.ofx STMTTRN #1 (line 10): its statement has no ACCTID in BANKACCTFROM or CCACCTFROM",
    )
    expect_error(
        sgml(ONE, statement=b"<LANGUAGE>ENG"),
        "bank.ofx STMTTRN #1 (line 10): its statement has no CURDEF (currency)",
    )
    expect_error(
        sgml(ONE, statement=b"<CURDEF>EURO"),
        'bank.ofx STMTTRN #1 (line 10): currency "EURO" is not an ISO 4217 code like USD',
    )


def test_error_investment_statement():
    expect_error(
        HEADER + b"<OFX>\n<INVSTMTMSGSRSV1><INVSTMTTRNRS><INVSTMTRS>",
        "bank.ofx line 7: investment statements (INVSTMTRS) are not supported",
    )


def test_error_not_text():
    expect_error(
        sgml(ONE.replace(b"Shop", b"\x81")),
        "bank.ofx line 10: byte 0x81 at column 70 is not valid Windows-1252",
    )


FIXTURE_BYTES = [(FIXTURES / name).read_bytes() for name in sorted(COUNTS)]
TOKENS = [
    b"<OFX>", b"</OFX>", b"<STMTRS>", b"</STMTRS>", b"<CCSTMTRS>", b"</CCSTMTRS>",
    b"<BANKACCTFROM>", b"</BANKACCTFROM>", b"<ACCTID>A", b"<CURDEF>EUR", b"<CURDEF>e1",
    b"<STMTTRN>", b"</STMTTRN>", b"<DTPOSTED>20240101", b"<DTPOSTED>2024", b"<TRNAMT>-1",
    b"<TRNAMT>x", b"<FITID>1", b"<NAME>n", b"</NAME>", b"<MEMO>", b"<PAYEE>", b"</PAYEE>",
    b"<CURRENCY>", b"<CURSYM>USD", b"</CURRENCY>", b"<![CDATA[x]]>", b"&amp;", b"&#0;",
    b"<!-- c -->", b"<?x?>", b"<", b">", b"\n", b"<A/>", b"</A>", b"<FOO>",
]  # fmt: skip


def parses_or_refuses(data: bytes) -> None:
    """The law: any input either parses into valid payloads or raises ImportFormatError."""
    records, message = [], "bank.ofx"
    try:
        records = parse(data)
    except ImportFormatError as exc:
        message = str(exc)
    assert message.startswith("bank.ofx")
    for record in records:
        assert TransactionSchema().load(record.payload) == record.payload
        assert record.identity.startswith(record.payload["account"] + ":")


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data):
    parses_or_refuses(data)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_body_after_ofx(data):
    parses_or_refuses(HEADER + b"<OFX>" + data)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_fuzz_tag_soup(tokens):
    parses_or_refuses(HEADER + b"<OFX><STMTRS>" + b"".join(tokens))


@FUZZ
@given(mutations(FIXTURE_BYTES))
def test_fuzz_mutated_fixtures(data):
    parses_or_refuses(data)
