"""Hostile text for every connector but the bank ones (see tests/hostile/test_text.py): invalid
UTF-8 in the middle of a valid file, a NUL byte inside a record and a single 10 MB line, each
through ``pds.importer.import_file`` into a fresh vault.

Each is refused with an exact message naming the file (and the line or element where the
format has one), in under 2 s and bounded traced memory, and the vault is left empty. Where a
file holds no valid multi-byte UTF-8, the charset rule (``connectors/charset.py``) reads a
non-UTF-8 byte as Windows-1252, and a byte that is not Windows-1252 either is refused (a
UTF-8 file with a bad byte: tests/connectors/test_charset.py).

Memory bounds (traced by ``tracemalloc`` over the whole import, vault work included): line-
and element-streamed formats stay far below the 10 MB input; whole-file formats (OFX, a FHIR
Bundle) hold the bytes, the decoded text and the value being refused, so a few times the
input, and they are capped (64 MiB and 16 MiB), so never proportional to a 1 GB file.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from pds import registry
from pds.errors import ImportFormatError
from pds.importer import ImportSummary, import_file
from pds.vault import Vault
from tests.conftest import FIXTURES

TEN_MB = 10 * 1024 * 1024
MIB = 1024 * 1024
BIG = b"x" * TEN_MB


def fixture_bytes(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def midata(old: bytes, new: bytes) -> Callable[[], bytes]:
    return lambda: fixture_bytes("midata/midata-spec-example.csv").replace(old, new)


def ofx(new: bytes) -> Callable[[], bytes]:
    return lambda: fixture_bytes("ofx/ofxparse-anzcc.ofx").replace(b"SOME MEMO", new)


def vcard(new: bytes) -> Callable[[], bytes]:
    return lambda: fixture_bytes("vcard/rfc6350-example.vcf").replace(b"FN:Simon Perreault", new)


def ical(new: bytes) -> Callable[[], bytes]:
    data = "icalendar/alarm_google_future.ics"
    return lambda: fixture_bytes(data).replace(b"SUMMARY:event with alarms", new)


def bundle(new_id: bytes) -> Callable[[], bytes]:
    data = "fhir/hl7-bundle-example-searchset.json"
    return lambda: fixture_bytes(data).replace(b'"id": "3123"', b'"id": "' + new_id + b'"')


def ndjson(new_id: bytes) -> Callable[[], bytes]:
    """The searchset Bundle's resources, one per line."""

    def build() -> bytes:
        entries = json.loads(fixture_bytes("fhir/hl7-bundle-example-searchset.json"))["entry"]
        text = b"".join(json.dumps(e["resource"]).encode() + b"\n" for e in entries)
        return text.replace(b'"id": "3123"', b'"id": "' + new_id + b'"')

    return build


def location_history(new: bytes) -> Callable[[], bytes]:
    data = "google-takeout/Location_History.json"
    return lambda: fixture_bytes(data).replace(b'"UNKNOWN"', b'"' + new + b'"', 1)


def my_activity(new: bytes) -> Callable[[], bytes]:
    data = "google-takeout/My_Activity_Maps.json"
    return lambda: fixture_bytes(data).replace(b"around Pheba", new)


def greenbutton(new: bytes) -> Callable[[], bytes]:
    data = "greenbutton/opower-gas-billing-2021-05-26_to_2024-04-25.xml"
    return lambda: fixture_bytes(data).replace(b"1 MAIN ST, ANYTOWN", new)


def applehealth(new: bytes) -> Callable[[], bytes]:
    data = "apple-health/healthkit-to-sqlite-export.xml"
    return lambda: fixture_bytes(data).replace(b'sourceName="Health Mate"', new)


def run(
    vault: Vault, path: Path, data: bytes, connector: str | None
) -> tuple[ImportSummary | ImportFormatError, float, int]:
    """What importing ``data`` as ``path`` gave, the seconds it took and the traced peak."""
    path.write_bytes(data)
    del data
    registry.all_connectors()  # loaded before tracing: module imports are not the file's cost
    tracemalloc.start()
    started = time.process_time()
    try:
        outcome: ImportSummary | ImportFormatError = import_file(vault, path, connector=connector)
    except ImportFormatError as exc:
        outcome = exc
    finally:
        seconds = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return outcome, seconds, peak


XML_HINT = "Export the file again from its source; pds reads only plain, self-contained XML."
TAKEOUT_HINT = "Download the Takeout archive again, choosing JSON where Google offers a format."
FHIR_HINT = "Export the records again as a FHIR R4 Bundle (JSON) or as NDJSON."
ROW_HINT = "Fix or remove that row, or pass --skip-bad to leave it out."
MIDATA_HINT = "Download the statement again from your bank as a midata (CSV) file."
OFX_HINT = "Download the statement again from your bank as OFX, QFX or Quicken Web Connect."
VCARD_HINT = "Export the address book again as vCard (.vcf)."
ICAL_HINT = "Export the calendar again as iCalendar (.ics)."
CHARSET_HINT = "Check that this is the statement file the bank sent, not a PDF or spreadsheet."
NOT_TEXT = "a NUL byte at column {}; this is not a text file"

# id -> (file name, data, --connector, message, hint, traced peak bound in MiB)
REFUSED: dict[str, tuple[str, Callable[[], bytes], str | None, str, str, int]] = {
    # midata: line by line, UTF-8 then Windows-1252 (0x81 is neither)
    "midata-not-cp1252": (
        "m.csv",
        midata(b"Boots the Chemist", b"Boots \x81"),
        None,
        "m.csv line 2: byte 0x81 at column 22 is not valid Windows-1252",
        MIDATA_HINT,
        4,
    ),
    "midata-nul": (
        "m.csv",
        midata(b"Boots the Chemist", b"Boots\x00"),
        None,
        "m.csv line 2: " + NOT_TEXT.format(21),
        MIDATA_HINT,
        4,
    ),
    "midata-10mb": (
        "m.csv",
        midata(b"Boots the Chemist", BIG),
        None,
        "m.csv line 2: the line is longer than 1,048,576 bytes",
        MIDATA_HINT,
        4,
    ),
    # OFX: read whole (capped at 64 MiB), decode_text over the file
    "ofx-not-cp1252": (
        "o.ofx",
        ofx(b"SOME M\x81MO"),
        None,
        "o.ofx line 35: byte 0x81 at column 13 is not valid Windows-1252",
        CHARSET_HINT,
        4,
    ),
    "ofx-nul": (
        "o.ofx",
        ofx(b"SOME\x00MEMO"),
        None,
        "o.ofx line 35: " + NOT_TEXT.format(11),
        OFX_HINT,
        4,
    ),
    "ofx-10mb": (
        "o.ofx",
        ofx(BIG),
        None,
        "o.ofx line 35: the <MEMO> value is longer than 65,536 characters",
        OFX_HINT,
        48,
    ),
    # vCard: one card at a time, decode_text per card
    "vcard-not-cp1252": (
        "v.vcf",
        vcard(b"FN:Simon \x81"),
        None,
        "v.vcf line 3: byte 0x81 at column 10 is not valid Windows-1252",
        VCARD_HINT,
        4,
    ),
    "vcard-nul": (
        "v.vcf",
        vcard(b"FN:Simon\x00Perreault"),
        None,
        "v.vcf line 3: " + NOT_TEXT.format(9),
        VCARD_HINT,
        4,
    ),
    "vcard-10mb": (
        "v.vcf",
        vcard(b"FN:" + BIG),
        None,
        "v.vcf line 3: longer than 8,388,608 bytes",
        VCARD_HINT,
        20,
    ),
    # iCalendar: read whole, capped at 8 MiB, decode_text over the file
    "ical-not-cp1252": (
        "c.ics",
        ical(b"SUMMARY:\x81"),
        None,
        "c.ics line 35: byte 0x81 at column 9 is not valid Windows-1252",
        ICAL_HINT,
        20,
    ),
    "ical-nul": (
        "c.ics",
        ical(b"SUMMARY:ev\x00ent"),
        None,
        "c.ics line 35: " + NOT_TEXT.format(11),
        ICAL_HINT,
        20,
    ),
    "ical-10mb": (
        "c.ics",
        ical(b"SUMMARY:" + BIG),
        None,
        "c.ics: the calendar is larger than 8,388,608 bytes, the most pds reads from one .ics file",
        "Export the calendar in parts (by year) and import each.",
        20,
    ),
    # FHIR: always UTF-8; a Bundle read whole (16 MiB cap), NDJSON line by line
    "fhir-bundle-utf8": (
        "b.json",
        bundle(b"31\xe923"),
        None,
        "b.json: the file is not UTF-8 (byte 750); FHIR JSON is always UTF-8",
        FHIR_HINT,
        20,
    ),
    "fhir-bundle-nul": (
        "b.json",
        bundle(b"31\x0023"),
        None,
        "b.json line 24: not valid JSON (Invalid control character at column 26)",
        FHIR_HINT,
        20,
    ),
    "fhir-bundle-10mb": (
        "b.json",
        bundle(BIG),
        None,
        "b.json entry 1: the MedicationRequest resource is 10,485,940 bytes, more than the "
        "262,144 pds keeps in one record",
        ROW_HINT,
        48,
    ),
    "fhir-ndjson-utf8": (
        "r.ndjson",
        ndjson(b"31\xe923"),
        None,
        "r.ndjson line 1: the file is not UTF-8 (byte 48); FHIR JSON is always UTF-8",
        FHIR_HINT,
        4,
    ),
    "fhir-ndjson-nul": (
        "r.ndjson",
        ndjson(b"31\x0023"),
        None,
        "r.ndjson line 1: not valid JSON (Invalid control character at column 48)",
        ROW_HINT,
        4,
    ),
    "fhir-ndjson-10mb": (
        "r.ndjson",
        ndjson(BIG),
        None,
        "r.ndjson line 1: the MedicationRequest resource is 10,485,940 bytes, more than the "
        "262,144 pds keeps in one record",
        ROW_HINT,
        48,
    ),
    # Google Takeout JSON: UTF-8 only, streamed element by element
    "takeout-locations-utf8": (
        "Location History.json",
        location_history(b"UNKN\xe9WN"),
        None,
        "Location History.json: the file is not UTF-8 JSON",
        TAKEOUT_HINT,
        4,
    ),
    "takeout-locations-nul": (
        "Location History.json",
        location_history(b"UNKN\x00WN"),
        None,
        "Location History.json: location #2: a control character (U+0000) inside a string is "
        "not valid JSON",
        TAKEOUT_HINT,
        4,
    ),
    "takeout-locations-nul-then-10mb": (  # refused at the NUL, the 10 MB after it not read
        "Location History.json",
        location_history(b'UNKN\x00WN", "pad": "' + BIG),
        None,
        "Location History.json: location #2: a control character (U+0000) inside a string is "
        "not valid JSON",
        TAKEOUT_HINT,
        4,
    ),
    "takeout-locations-10mb": (
        "Location History.json",
        location_history(BIG),
        None,
        "Location History.json: location #2: longer than 4,194,304 characters",
        TAKEOUT_HINT,
        20,
    ),
    "takeout-activity-utf8": (
        "My Activity.json",
        my_activity(b"around Ph\xe9ba"),
        None,
        "My Activity.json: the file is not UTF-8 JSON",
        TAKEOUT_HINT,
        4,
    ),
    "takeout-activity-nul": (
        "My Activity.json",
        my_activity(b"around Ph\x00ba"),
        None,
        "My Activity.json: item #1: a control character (U+0000) inside a string is not valid JSON",
        TAKEOUT_HINT,
        4,
    ),
    "takeout-activity-10mb": (  # the head shows no "title", so the connector is named
        "My Activity.json",
        my_activity(BIG),
        "takeout",
        "My Activity.json: item #1: longer than 4,194,304 characters",
        TAKEOUT_HINT,
        20,
    ),
    # XML: UTF-8 unless declared, so expat refuses the byte; a giant run is refused early
    "greenbutton-utf8": (
        "g.xml",
        greenbutton(b"1 M\xe9IN ST"),
        None,
        "g.xml line 14: not well-formed XML (not well-formed (invalid token))",
        XML_HINT,
        4,
    ),
    "greenbutton-nul": (
        "g.xml",
        greenbutton(b"1 MAIN\x00ST"),
        None,
        "g.xml line 14: not well-formed XML (not well-formed (invalid token))",
        XML_HINT,
        4,
    ),
    "greenbutton-10mb": (
        "g.xml",
        greenbutton(BIG),
        None,
        "g.xml: more than 1,048,576 bytes of text without an XML tag (by byte 1,064,960)",
        XML_HINT,
        4,
    ),
    "applehealth-utf8": (
        "export.xml",
        applehealth(b'sourceName="Health M\xe9te"'),
        None,
        "export.xml line 4: not well-formed XML (not well-formed (invalid token))",
        XML_HINT,
        4,
    ),
    "applehealth-nul": (
        "export.xml",
        applehealth(b'sourceName="Health\x00Mate"'),
        None,
        "export.xml line 4: not well-formed XML (not well-formed (invalid token))",
        XML_HINT,
        4,
    ),
    "applehealth-10mb": (
        "export.xml",
        applehealth(b'sourceName="' + BIG + b'"'),
        None,
        "export.xml: more than 1,048,576 bytes of text without an XML tag (by byte 1,064,960)",
        XML_HINT,
        4,
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_quickly_in_bounded_memory_and_vault_unchanged(
    case: str, vault: Vault, tmp_path: Path
) -> None:
    filename, build, connector, message, hint, peak_mib = REFUSED[case]
    outcome, seconds, peak = run(vault, tmp_path / filename, build(), connector)
    assert isinstance(outcome, ImportFormatError), outcome
    assert (outcome.message, outcome.hint) == (message, hint)
    assert seconds < 2.0
    assert peak < peak_mib * MIB
    assert list(vault.records()) == []
    assert vault.sources() == []


# id -> (file name, data, category, payload field, the values stored in that field)
READ_AS_CP1252: dict[str, tuple[str, Callable[[], bytes], str, str, list[str | None]]] = {
    "midata": (
        "m.csv",
        midata(b"Boots the Chemist", b"Boots the Ch\xe9mist"),
        "transactions",
        "description",
        ["etc.", "etc.", "etc.", "ATM withdrawal", "Fitness First", "Boots the Chémist"],
    ),
    "ofx": ("o.ofx", ofx(b"SOME M\xe9MO"), "transactions", "description", ["SOME MéMO"]),
    "vcard": (
        "v.vcf",
        vcard(b"FN:Simon P\xe9rreault"),
        "contacts",
        "full_name",
        ["Simon Pérreault"],
    ),
    "ical": ("c.ics", ical(b"SUMMARY:\xe9vent"), "events", "summary", ["évent"]),
}


@pytest.mark.parametrize("case", READ_AS_CP1252)
def test_windows_1252_fallback_reads_the_byte_right(
    case: str, vault: Vault, tmp_path: Path
) -> None:
    filename, build, category, key, values = READ_AS_CP1252[case]
    outcome, seconds, _ = run(vault, tmp_path / filename, build(), None)
    assert isinstance(outcome, ImportSummary), outcome
    assert (outcome.new, outcome.rejected) == (len(values), 0)
    assert sorted(r.payload[key] for r in vault.records(category)) == sorted(values)
    assert seconds < 2.0
