"""Time, depth and size bounds of the connectors: each hostile input, scaled down from a
reproduction of an attack, is refused with an exact message (or read correctly) within
a time bound that the code before the fix missed by several times."""

from __future__ import annotations

import io
import struct
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import csvsniff, ofx
from connectors.base import Connector, Record, Rejected, strict
from pds import registry
from pds.errors import ImportFormatError
from tests.conftest import ROOT

OFX_HEAD = b"OFXHEADER:100\r\nDATA:OFXSGML\r\n\r\n<OFX>"
SCHWAB_HEADER = (
    b'"Date","Status","Type","CheckNumber","Description","Withdrawal","Deposit","RunningBalance"\n'
)


@pytest.fixture(autouse=True)
def _empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDS_HOME", str(tmp_path / "home"))


def items(connector: str, data: bytes, filename: str) -> list[Record | Rejected]:
    return list(registry.get(connector).parse(io.BytesIO(data), filename))


def timed(connector: str, data: bytes, filename: str) -> tuple[list[Record | Rejected], float]:
    started = time.process_time()
    found = items(connector, data, filename)
    return found, time.process_time() - started


def refusal(connector: str, data: bytes, filename: str) -> tuple[str, float]:
    started = time.process_time()
    with pytest.raises(ImportFormatError) as exc:
        list(strict(registry.get(connector).parse(io.BytesIO(data), filename), filename))
    return exc.value.message, time.process_time() - started


# -- csvsniff: money cells ------------------------------------------------------------------


def test_a_money_cell_of_spaces_is_refused_before_any_pattern_runs() -> None:
    started = time.process_time()
    with pytest.raises(ValueError, match=r"\Ais longer than 64 characters\Z"):
        csvsniff.parse_amount("1" + " " * 20_000 + "x")  # took 2.7 s before the fix
    assert time.process_time() - started < 0.1


def test_currency_codes_are_still_split_off_and_64_characters_pass() -> None:
    assert csvsniff.parse_amount("CHF 1\u00a0000.50") == "1000.50"
    assert csvsniff.parse_amount("-5.00 EUR") == "-5.00"
    assert csvsniff.parse_amount("EUR 5 USD") == "5"
    assert csvsniff.parse_amount("  CHF " + "1" * 60 + "  ") == "1" * 60
    with pytest.raises(ValueError, match=r"\Ais not a number\Z"):
        csvsniff.parse_amount("EUR USD")


def test_a_bank_csv_with_a_huge_withdrawal_cell_is_refused_quickly() -> None:
    row = b'"08/14/2022","Posted","ATM","","X","1' + b" " * 60_000 + b'x","",""\n'
    message, seconds = refusal("bankcsv", SCHWAB_HEADER + row, "schwab.csv")
    assert message == (
        'schwab.csv line 2: debit "1                                       ..." '
        "is longer than 64 characters"
    )
    assert seconds < 2  # 25-28 s before the fix


# -- ofx: the tokenizer ---------------------------------------------------------------------


def test_ofx_many_children_of_one_element_read_in_linear_time() -> None:
    data = OFX_HEAD + b"<A>" + b"<B/> " * 20_000 + b"</A></OFX>"
    found, seconds = timed("ofx", data, "a.ofx")
    assert found == []
    assert seconds < 1  # 6.3 s before the fix


def test_ofx_nesting_is_capped_at_64() -> None:
    ok = OFX_HEAD + b"<A>" * 63 + b"</A>" * 63 + b"</OFX>"
    assert items("ofx", ok, "a.ofx") == []
    deep = OFX_HEAD + b"\n" + b"<A>" * 20_000 + b"</A>" * 20_000 + b"</OFX>"
    message, seconds = refusal("ofx", deep, "a.ofx")
    assert message == "a.ofx line 5: elements are nested more than 64 deep"
    assert seconds < 1


def test_ofx_lines_of_many_rejected_transactions_are_counted_in_linear_time() -> None:
    head = (
        OFX_HEAD + b"<BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>USD<BANKACCTFROM><ACCTID>1"
        b"</BANKACCTFROM><BANKTRANLIST>\n"
    )
    txn = b"<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20240101<TRNAMT>-1.00</STMTTRN>\n"
    tail = b"</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>"
    found, seconds = timed("ofx", head + txn * 20_000 + tail, "a.ofx")
    assert len(found) == 20_000
    assert found[-1] == Rejected("STMTTRN #20000 (line 20004)", "FITID is missing")
    assert seconds < 2  # 4.2 s before the fix


def test_ofx_file_over_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ofx, "MAX_BYTES", 100)
    message, _ = refusal("ofx", OFX_HEAD + b" " * 100, "big.ofx")
    assert message == (
        "big.ofx: the statement is larger than 100 bytes, the most pds reads from one OFX file"
    )


# -- applehealth: DTD attribute defaults ----------------------------------------------------


def test_dtd_attribute_defaults_are_not_added_to_records() -> None:
    big = "x" * 60_000
    data = (
        '<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n'
        f'<!ATTLIST ActivitySummary pad CDATA "{big}">\n'
        f'<!ATTLIST MetadataEntry value CDATA "{big}">\n]>\n<HealthData>\n'
        '<ActivitySummary dateComponents="2024-01-01" activeEnergyBurned="5"/>\n'
        '<Record type="HKQuantityTypeIdentifierStepCount" startDate="2024-01-01 10:00:00 +0000"'
        ' endDate="2024-01-01 10:00:00 +0000" value="3"><MetadataEntry key="k"/></Record>\n'
        "</HealthData>"
    ).encode()
    summary, record = items("applehealth", data, "export.xml")
    assert isinstance(summary, Record)
    assert isinstance(record, Record)
    assert (summary.payload["value"], summary.payload["details"]) == ("5", None)
    assert record.payload["details"] == {"k": ""}
    assert len(repr(summary.payload)) + len(repr(record.payload)) < 1000


# -- crashes that must be clean errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (
            b'{"locations":[' + b"[" * 100_000,
            "Records.json",
            "Records.json: location #1: nested too deeply to read",
        ),
        (
            b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]",
            "My Activity.json",
            "My Activity.json: item #1: nested too deeply to read",
        ),
    ],
)
def test_deeply_nested_takeout_json_is_refused(data: bytes, filename: str, message: str) -> None:
    assert refusal("takeout", data, filename)[0] == message


@pytest.mark.parametrize("component", ["EMAIL", "FN"])
def test_a_component_inside_a_vcard_is_refused(component: str) -> None:
    data = (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:a\r\nBEGIN:{component}\r\nEND:{component}\r\n"
        "END:VCARD\r\n"
    ).encode()
    assert refusal("vcard", data, "a.vcf")[0] == (
        f"a.vcf card 1 (line 1): not a readable vCard (BEGIN:{component} inside a card)"
    )


def forged_zip64_locator() -> bytes:
    """A zip whose zip64 locator points at ``PK\\6\\6`` in the last 6 bytes of the comment."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as z:
        z.writestr("apple_health_export/export.xml", "<HealthData/>")
    data = raw.getvalue()
    at = data.rfind(b"PK\x05\x06")
    body, eocd = data[:at], bytearray(data[at : at + 22])
    comment = b"PK\x06\x06\x00\x00"
    struct.pack_into("<H", eocd, 20, len(comment))
    size = len(body) + 20 + 22 + len(comment)
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, size - len(comment), 1)
    return body + locator + bytes(eocd) + comment


@pytest.mark.parametrize(
    ("connector", "filename"), [("applehealth", "export.zip"), ("takeout", "takeout-1.zip")]
)
def test_a_short_zip64_end_record_is_refused(connector: str, filename: str) -> None:
    assert refusal(connector, forged_zip64_locator(), filename)[0] == (
        f"{filename}: not a readable zip archive (its zip64 end record is missing)"
    )


def test_a_deeply_nested_pds_export_manifest_is_refused() -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as z:
        nested = "[" * 100_000 + "]" * 100_000
        z.writestr("manifest.json", '{"format": "pds-export", "version": 1, "x": ' + nested + "}")
    assert refusal("pds-export", raw.getvalue(), "e.zip")[0] == (
        "e.zip manifest.json: nested too deeply to read"
    )


def test_fhir_resources_nested_deeper_than_64_are_rejected() -> None:
    def line(depth: int) -> bytes:
        return b'{"resourceType":"Patient","x":' + b"[" * depth + b"]" * depth + b"}\n"

    (kept,) = items("fhir", line(63), "a.ndjson")  # the object and 63 lists: 64 levels
    assert isinstance(kept, Record)
    assert items("fhir", line(64), "a.ndjson") == [
        Rejected("line 1", "the Patient resource is nested more than 64 levels deep")
    ]
    assert items("fhir", line(500), "a.ndjson") == [
        Rejected("line 1", "the Patient resource is nested more than 64 levels deep")
    ]


def test_a_user_mapping_with_a_repeated_directive_is_left_out(tmp_path: Path) -> None:
    from connectors.csvmapping import read_mapping, user_mappings

    folder = tmp_path / "home" / "csv-profiles"
    folder.mkdir(parents=True)
    mine = folder / "mine.toml"
    builtin = ROOT / "connectors" / "csv_profiles"
    text = next(builtin.glob("*.toml")).read_text()
    lines = [
        'date_format = "%d.%m.%Y %d"' if line.startswith("date_format") else line
        for line in text.splitlines()
    ]
    mine.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportFormatError) as exc:
        read_mapping(mine)
    assert exc.value.message == (
        'mine.toml: date_format: "%d.%m.%Y %d" is not a date format with day, month and year'
    )
    assert user_mappings(tmp_path / "home") == []
    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nEND:VCARD\r\n"
    assert registry.detect(card, "a.vcf").name == "vcard"


# -- greenbutton: many waiting blocks and many linked entries -------------------------------


def test_greenbutton_waiting_blocks_are_not_rescanned_for_every_entry() -> None:
    atom, espi = "http://www.w3.org/2005/Atom", "http://naesb.org/espi"

    def entry(inner: str, links: str) -> str:
        return f"<entry>{links}<content>{inner}</content></entry>"

    reading = (
        "<espi:IntervalBlock><espi:IntervalReading><espi:timePeriod><espi:start>{start}"
        "</espi:start><espi:duration>900</espi:duration></espi:timePeriod><espi:value>{n}"
        "</espi:value></espi:IntervalReading></espi:IntervalBlock>"
    )
    up = '<link rel="up" href="UP/1/MeterReading/1/IntervalBlock"/>'
    n = 4000
    parts = [f'<feed xmlns="{atom}" xmlns:espi="{espi}">']
    parts += [
        entry(
            reading.format(start=1_700_000_000 + 900 * i, n=i),
            f'<link rel="self" href="/b/{i}"/>' + up,
        )
        for i in range(n)
    ]
    parts += [entry("<espi:UsagePoint/>", f'<link rel="self" href="/u/{i}"/>') for i in range(n)]
    parts += [
        entry(
            "<espi:ReadingType><espi:uom>72</espi:uom></espi:ReadingType>",
            '<link rel="self" href="RT/1"/>',
        ),
        entry(
            "<espi:MeterReading/>",
            '<link rel="self" href="UP/1/MeterReading/1"/><link rel="related" href="RT/1"/>',
        ),
        entry("<espi:UsagePoint/>", '<link rel="self" href="UP/1"/>'),
        "</feed>",
    ]
    found, seconds = timed("greenbutton", "".join(parts).encode(), "g.xml")
    assert [r.payload["value"] for r in found if isinstance(r, Record)] == [
        str(i) for i in range(n)
    ]
    assert found[0].payload["usage_point"] == "UP/1"
    assert seconds < 2  # 5 s before the fix


# -- the importer and the web upload --------------------------------------------------------


class _Raising(Connector):
    """A connector that reads the file, yields nothing, then raises ``exc``."""

    name = "raisetest"
    title = "raising test"
    extensions = (".boom",)
    categories = ("transactions",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def detect(self, head: bytes, filename: str) -> bool:
        return filename.endswith(".boom")

    def parse(self, stream, filename: str) -> Iterator[Record]:
        stream.read()
        raise self.exc
        yield  # pragma: no cover - makes this a generator


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (RecursionError(), "x.boom: the raising test file is nested too deeply to read"),
        (
            struct.error("unpack_from requires a buffer of at least 56 bytes"),
            "x.boom: the raising test file is damaged (unpack_from requires a buffer of at "
            "least 56 bytes)",
        ),
        (EOFError(), "x.boom: the raising test file is damaged (EOFError)"),
        (zipfile.BadZipFile("Bad CRC-32"), "x.boom: the raising test file is damaged (Bad CRC-32)"),
    ],
)
def test_import_file_turns_a_connector_crash_into_a_clean_error(
    vault, tmp_path: Path, exc: BaseException, message: str
) -> None:
    from pds.importer import import_file

    registry.register(_Raising(exc))
    try:
        path = tmp_path / "x.boom"
        path.write_bytes(b"data")
        with pytest.raises(ImportFormatError) as caught:
            import_file(vault, path)
    finally:
        registry.unregister("raisetest")
    assert caught.value.message == message
    assert vault.status()["records"] == 0


def test_the_deepest_fhir_resource_kept_survives_export_and_reimport(vault, tmp_path: Path) -> None:
    from pds.importer import import_file
    from pds.rights import export as exportmod
    from pds.settings import Settings
    from pds.vault import Vault
    from tests.conftest import FAST_KDF, PASSPHRASE

    source = tmp_path / "deep.ndjson"
    source.write_bytes(b'{"resourceType":"Patient","x":' + b"[" * 63 + b"]" * 63 + b"}\n")
    assert import_file(vault, source).new == 1
    path, counts = exportmod.export_to(vault, tmp_path / "out.zip")
    assert counts == {"health": 1}
    with Vault.create(Settings(home=tmp_path / "fresh", kdf=FAST_KDF), PASSPHRASE) as fresh:
        summary = import_file(fresh, path)
        assert (summary.connector, summary.new) == ("pds-export", 1)
        (record,) = fresh.records()
        nested: list = []
        for _ in range(62):
            nested = [nested]
        assert record.payload["resource"] == {"resourceType": "Patient", "x": nested}


def test_an_apple_health_element_holding_too_many_elements_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connectors import applehealth

    monkeypatch.setattr(applehealth, "MAX_HELD", 3)
    record = (
        '<Record type="HKQuantityTypeIdentifierStepCount" startDate="2024-01-01 10:00:00 +0000"'
        ' endDate="2024-01-01 10:00:00 +0000" value="3">{}</Record>\n'
    )
    entries = '<MetadataEntry key="k" value="v"/>\n'
    ok = "<HealthData>\n" + record.format(entries * 3) * 2 + "</HealthData>"
    assert len(items("applehealth", ok.encode(), "export.xml")) == 2
    bad = "<HealthData>\n" + record.format(entries * 3) + record.format(entries * 4)
    message, _ = refusal("applehealth", (bad + "</HealthData>").encode(), "export.xml")
    assert message == "export.xml line 9: more than 3 elements inside one top-level element"


def test_apple_health_memory_stays_flat_inside_one_element() -> None:
    import tracemalloc

    me = "<HealthData><Me>" + "<a/>" * 20_000 + "</Me></HealthData>"
    tracemalloc.start()
    try:
        message, _ = refusal("applehealth", me.encode(), "export.xml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == "export.xml line 1: more than 10,000 elements inside one top-level element"
    assert peak < 8 * 2**20
