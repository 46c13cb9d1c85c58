"""Hostile and broken text for the bank connectors (bank CSV, MT940, camt.053): invalid
UTF-8, NUL bytes and a 10 MB line are each refused quickly, with a clear message naming the
file and line, in bounded memory."""

from __future__ import annotations

import io
import time
import tracemalloc
from pathlib import Path

import pytest

from connectors.bankcsv import BankCsvConnector
from connectors.base import Connector
from connectors.camt053 import Camt053Connector
from connectors.mt940 import Mt940Connector
from pds import registry
from pds.errors import ImportFormatError
from tests.conftest import FIXTURES

CSV_HEADER = (
    b'"Date","Status","Type","CheckNumber","Description","Withdrawal","Deposit","RunningBalance"\n'
)
CSV_ROW = b'"08/17/2022","Posted","DEPOSIT","","Caf\xc3\xa9","","$20.00","$878.47"\n'
MT940_HEAD = b":20:REF\n:25:NL81ASNB9999999999\n:60F:C200101EUR444,29\n"
CAMT_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<Document><BkToCstmrStmt><Stmt>\n<Acct>'
TEN_MB = 10 * 1024 * 1024


@pytest.fixture(autouse=True)
def _empty_home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDS_HOME", str(tmp_path))


def refusal(connector: Connector, data: bytes, filename: str) -> tuple[str, float, int]:
    """The error message, the seconds it took and the peak traced memory in bytes."""
    stream = io.BytesIO(data)
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(ImportFormatError) as exc:
            for _ in connector.parse(stream, filename):
                pass
        elapsed = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return exc.value.message, elapsed, peak


CASES = [
    # bank CSV
    (
        BankCsvConnector(),
        "s.csv",
        CSV_HEADER + CSV_ROW.replace(b"$20", b"$2\x000"),
        "s.csv line 2: a NUL byte at column 50; this is not a text file",
    ),
    (
        BankCsvConnector(),
        "s.csv",
        CSV_HEADER + b'"08/17/2022","Posted","X","","\x81","","$1.00",""\n',
        "s.csv line 2: byte 0x81 at column 31 is not valid Windows-1252",
    ),
    (
        BankCsvConnector(),
        "s.csv",
        CSV_HEADER + b'"08/17/2022","' + b"x" * TEN_MB + b'"\n',
        "s.csv line 2: the line is longer than 1,048,576 bytes",
    ),
    (
        BankCsvConnector(),
        "s.csv",
        b"y" * TEN_MB,
        "s.csv line 1: the line is longer than 1,048,576 bytes",
    ),
    # MT940
    (
        Mt940Connector(),
        "s.sta",
        MT940_HEAD + b":61:2001010101D65,00NOVBNONREF\n:86:Caf\x00\n",
        "s.sta line 5: a NUL byte at column 8; this is not a text file",
    ),
    (
        Mt940Connector(),
        "s.sta",
        MT940_HEAD + b":86:Caf\xc3\xa9\n:86:Caf\xe9\n",
        "s.sta line 5: byte 0xE9 at column 8 (file offset 70) is not valid UTF-8, and the file "
        "is UTF-8 elsewhere",
    ),
    (
        Mt940Connector(),
        "s.sta",
        MT940_HEAD + b":86:" + b"x" * TEN_MB + b"\n",
        "s.sta line 4: the line is longer than 1,048,576 bytes",
    ),
    # camt.053
    (
        Camt053Connector(),
        "s.xml",
        CAMT_HEAD + b"<Id>\x00</Id></Acct></Stmt></BkToCstmrStmt></Document>",
        "s.xml line 3: not well-formed XML (not well-formed (invalid token))",
    ),
    (
        Camt053Connector(),
        "s.xml",
        CAMT_HEAD + b"<Id>Caf\xe9</Id></Acct></Stmt></BkToCstmrStmt></Document>",
        "s.xml line 3: not well-formed XML (not well-formed (invalid token))",
    ),
    (
        Camt053Connector(),
        "s.xml",
        CAMT_HEAD + b"<Id>" + b"x" * TEN_MB + b"</Id></Acct></Stmt></BkToCstmrStmt></Document>",
        "s.xml: more than 1,048,576 bytes of text without an XML tag (by byte 1,064,960)",
    ),
]


@pytest.mark.parametrize(("connector", "filename", "data", "message"), CASES)
def test_refused_quickly_in_bounded_memory(connector, filename, data, message):
    """(A bank CSV row with a byte that is not UTF-8 in a UTF-8 file is a Rejected row
    instead: tests/connectors/test_charset.py.)"""
    got, seconds, peak = refusal(connector, data, filename)
    assert got == message
    assert seconds < 2.0
    assert peak < 4 * 1024 * 1024  # the 10 MB input is never held whole


MINE = {"bank-csv": "bankcsv", "mt940": "mt940", "camt053": "camt053"}
ALL_FIXTURES = sorted(p for p in FIXTURES.glob("*/*") if p.is_file() and p.name != "SOURCES.md")


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_bank_connectors_detect_only_their_own_fixtures(path: Path):
    """Detection is unambiguous: across every fixture of every connector, the bank
    connectors claim exactly their own files."""
    with path.open("rb") as fh:
        head = fh.read(registry.HEAD_BYTES)
    claimed = [
        c.name
        for c in (BankCsvConnector(), Mt940Connector(), Camt053Connector())
        if c.detect(head, path.name)
    ]
    expected = [MINE[path.parent.name]] if path.parent.name in MINE else []
    assert claimed == expected
    if expected:
        assert registry.detect(head, path.name).name == expected[0]
