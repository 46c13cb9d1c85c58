"""The FHIR R4 connector: Bundles and NDJSON, real files, hand-made refusals and fuzz."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import fhir
from connectors.base import Record, strict
from connectors.fhir import FhirConnector
from pds import registry
from pds.errors import ImportFormatError
from pds.importer import import_file
from pds.payloads import HealthSchema, fast_validator
from pds.vault import Vault
from tests.conftest import fixture
from tests.factories import mutations
from tests.skipbad import assert_skip_bad

FIXTURES = fixture("fhir")
SYNTHEA = "synthea-r4-transaction-bundle.json"
SEARCHSET = "hl7-bundle-example-searchset.json"
FAST = fast_validator(HealthSchema())


def parse(data: bytes, filename: str = "records.json") -> list[Record]:
    return list(strict(FhirConnector().parse(io.BytesIO(data), filename), filename))


def parse_fixture(name: str) -> list[Record]:
    with (FIXTURES / name).open("rb") as stream:
        return list(strict(FhirConnector().parse(stream, name), name))


def refusal(data: bytes, filename: str = "records.json") -> str:
    with pytest.raises(ImportFormatError) as caught:
        parse(data, filename)
    return caught.value.message


def bundle(*resources: dict, kind: str = "collection") -> bytes:
    entries = [{"resource": r} for r in resources]
    return json.dumps({"resourceType": "Bundle", "type": kind, "entry": entries}).encode()


def observation(**fields) -> dict:
    resource = {
        "resourceType": "Observation",
        "id": "o1",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
        "effectiveDateTime": "2024-03-31T09:30:00+02:00",
        "valueQuantity": {"value": 62, "unit": "beats/minute"},
    }
    resource.update(fields)
    return resource


# -- real files ---------------------------------------------------------------------------


def test_every_fixture_is_tested():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted([SYNTHEA, SEARCHSET])


@pytest.mark.parametrize("name", [SYNTHEA, SEARCHSET])
def test_detected_as_fhir(name):
    head = (FIXTURES / name).read_bytes()[: registry.HEAD_BYTES]
    assert registry.detect(head, name).name == "fhir"


def test_synthea_transaction_bundle_one_record_per_resource():
    records = parse_fixture(SYNTHEA)
    assert len(records) == 319
    assert Counter(r.payload["type"] for r in records) == {
        "Observation": 187,
        "Claim": 22,
        "Encounter": 21,
        "ExplanationOfBenefit": 21,
        "DiagnosticReport": 15,
        "Immunization": 13,
        "Procedure": 13,
        "Condition": 10,
        "Goal": 5,
        "CarePlan": 2,
        "CareTeam": 2,
        "Organization": 2,
        "Practitioner": 2,
        "Patient": 1,
        "Device": 1,
        "MedicationRequest": 1,
        "ImagingStudy": 1,
    }
    assert all(FAST(r.payload) and HealthSchema().load(r.payload) == r.payload for r in records)
    assert all("text" not in r.payload["resource"] for r in records)
    assert sum(r.payload["value"] is not None for r in records) == 167
    undated = [r for r in records if r.payload["start"] is None]
    assert Counter(r.payload["type"] for r in undated) == {
        "Goal": 5,
        "Organization": 2,
        "Practitioner": 2,
        "Device": 1,
    }
    assert {r.occurred_at for r in undated} == {"0001-01-01"}


def test_synthea_values_dates_and_zones():
    records = parse_fixture(SYNTHEA)
    patient = records[0]
    assert patient.where == "entry 1 (Patient)"
    assert patient.occurred_at == "1945-12-10"
    assert patient.payload["id"] == "5cbc121b-cd71-4428-b8b7-31e53eba8184"
    assert patient.payload["resource"]["birthDate"] == "1945-12-10"
    encounter = records[3].payload
    assert (encounter["start"], encounter["end"], encounter["tz_offset"]) == (
        "1965-11-15T11:22:41Z",
        "1965-11-15T13:07:41Z",
        "-05:00",
    )
    height = records[28]
    assert height.where == "entry 29 (Observation)"
    assert {k: v for k, v in height.payload.items() if k != "resource"} == {
        "kind": "fhir",
        "type": "Observation",
        "start": "2010-03-01T11:22:41Z",
        "end": None,
        "tz_offset": "-05:00",
        "value": "173.9018914060253",
        "unit": "cm",
        "source": None,
        "id": "9169c47c-a9d6-4e34-90fc-5f3b2a939984",
        "code": "8302-2",
        "display": "Body Height",
        "details": None,
    }
    assert height.payload["resource"]["effectiveDateTime"] == "2010-03-01T06:22:41-05:00"
    medication = records[225].payload
    assert (medication["type"], medication["code"], medication["display"]) == (
        "MedicationRequest",
        "310965",
        "Ibuprofen 200 MG Oral Tablet",
    )
    assert records[-1].occurred_at == "2019-04-22T11:52:41Z"


def test_searchset_keeps_match_and_include():
    records = parse_fixture(SEARCHSET)
    assert [(r.payload["type"], r.payload["id"], r.where) for r in records] == [
        ("MedicationRequest", "3123", "entry 1 (MedicationRequest)"),
        ("Medication", "example", "entry 2 (Medication)"),
    ]
    assert records[0].payload["resource"] == {
        "resourceType": "MedicationRequest",
        "id": "3123",
        "status": "unknown",
        "intent": "order",
        "medication": {"reference": {"reference": "Medication/example"}},
        "subject": {"reference": "Patient/347"},
    }
    assert records[0].occurred_at == "0001-01-01"


def test_imports_exactly_and_once(vault: Vault):
    summary = import_file(vault, FIXTURES / SYNTHEA)
    assert (summary.connector, summary.new, summary.duplicate) == ("fhir", 319, 0)
    stored = list(vault.records("health"))
    assert len(stored) == 319
    assert stored[0].occurred_at == "0001-01-01"
    assert stored[-1].occurred_at == "2019-04-22T11:52:41Z"
    assert import_file(vault, FIXTURES / SYNTHEA).duplicate == 319


# -- hand-made files ---------------------------------------------------------------------------


def test_one_observation_payload():
    [record] = parse(bundle(observation()))
    assert record.occurred_at == "2024-03-31T07:30:00Z"
    assert {k: v for k, v in record.payload.items() if k != "resource"} == {
        "kind": "fhir",
        "type": "Observation",
        "start": "2024-03-31T07:30:00Z",
        "end": None,
        "tz_offset": "+02:00",
        "value": "62",
        "unit": "beats/minute",
        "source": None,
        "id": "o1",
        "code": "8867-4",
        "display": "Pulse",
        "details": None,
    }


@pytest.mark.parametrize(
    ("date", "start", "occurred"),
    [
        ("2019", "2019", "2019-01-01"),
        ("2019-09", "2019-09", "2019-09-01"),
        ("2019-09-05", "2019-09-05", "2019-09-05"),
        ("2019-09-05T23:30:00.250-01:00", "2019-09-06T00:30:00.25Z", "2019-09-06T00:30:00.25Z"),
    ],
)
def test_partial_dates_and_fractions(date, start, occurred):
    [record] = parse(bundle(observation(effectiveDateTime=date)))
    assert (record.payload["start"], record.occurred_at) == (start, occurred)


def test_ndjson_streamed_line_by_line():
    lines = [json.dumps(observation(id=f"o{n}")) for n in range(3)]
    data = (lines[0] + "\n\n" + lines[1] + "\r\n" + lines[2]).encode()
    records = parse(data, "Observation.ndjson")
    assert [(r.payload["id"], r.where) for r in records] == [
        ("o0", "line 1 (Observation)"),
        ("o1", "line 3 (Observation)"),
        ("o2", "line 4 (Observation)"),
    ]
    assert registry.detect(data, "Observation.ndjson").name == "fhir"


def test_a_time_without_zone_fails_the_schema(vault: Vault, tmp_path: Path):
    path = tmp_path / "records.json"
    path.write_bytes(bundle(observation(), observation(effectiveDateTime="2024-03-31T09:30:00")))
    with pytest.raises(ImportFormatError) as caught:
        import_file(vault, path)
    assert caught.value.message == (
        'records.json entry 2 (Observation): start: "2024-03-31T09:30:00" is not a date or a '
        "UTC time like 2024-03-31T09:30:00Z"
    )
    assert vault.status()["records"] == 0
    summary = import_file(vault, path, skip_bad=True)
    assert (summary.new, summary.rejected, summary.rejected_rows) == (1, 1, [caught.value.message])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"name": "not fhir"}',
            'records.json: JSON but not FHIR: no "resourceType" in the top-level object',
        ),
        (
            json.dumps(observation()).encode(),
            "records.json: the file is a FHIR Observation resource, not a Bundle; pds reads "
            "FHIR Bundles (.json) and NDJSON (.ndjson)",
        ),
        (
            bundle(kind="feed"),
            'records.json: Bundle type "feed" is not a FHIR R4 Bundle type (batch, '
            "batch-response, collection, document, history, message, searchset, transaction, "
            "transaction-response)",
        ),
        (
            bundle({"resourceType": "MedicationOrder", "id": "m"}),
            "records.json entry 1: MedicationOrder is a resource of an older FHIR version (not R4)",
        ),
        (
            bundle(observation(effectiveDateTime="2019-02-30")),
            'records.json entry 1: date "2019-02-30" is not a real calendar date and time',
        ),
        (
            b'{"resourceType": "Bundle",\n "type": "collection", "entry": [}',
            "records.json line 2: not valid JSON (Expecting value at column 34)",
        ),
        (
            b'{"resourceType": "Bundle", "type": "collection", "n": ' + b"1" * 5000 + b"}",
            "records.json: a whole number of 5,000 digits is too long (pds reads at most "
            "4,300 digits)",
        ),
        (b"[" * 100_000, "records.json: the JSON is nested too deeply"),
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": [1]}',
            "records.json entry 1: the entry is not a JSON object",
        ),
        (
            b'{"resourceType": "Bundle", "type": "collection", "name": "\xff"}',
            "records.json: the file is not UTF-8 (byte 59); FHIR JSON is always UTF-8",
        ),
    ],
)
def test_refusals(data, message):
    assert refusal(data) == message


def test_bad_ndjson_line_is_named():
    data = json.dumps(observation()).encode() + b"\n{oops\n"
    assert refusal(data, "o.ndjson") == (
        "o.ndjson line 2: not valid JSON (Expecting property name enclosed in double quotes "
        "at column 2)"
    )


def test_skip_bad_leaves_out_the_bad_lines(vault: Vault, tmp_path: Path):
    path = tmp_path / "o.ndjson"
    lines = [
        json.dumps(observation(id="o1")),
        "{oops",
        json.dumps({"name": "not fhir"}),
        json.dumps(observation(id="o4", effectiveDateTime="2019-02-30")),
        json.dumps({"resourceType": "observation!"}),
        json.dumps(observation(id="o6")),
    ]
    path.write_text("\n".join(lines) + "\n")
    assert_skip_bad(
        vault,
        path,
        [
            "o.ndjson line 2: not valid JSON (Expecting property name enclosed in double quotes "
            "at column 2)",
            'o.ndjson line 3: JSON but not FHIR: no "resourceType" in the top-level object',
            'o.ndjson line 4: date "2019-02-30" is not a real calendar date and time',
            'o.ndjson line 5: resourceType "observation!" is not a FHIR resource type',
        ],
        new=2,
    )
    assert [r.payload["id"] for r in vault.records()] == ["o1", "o6"]


def test_skip_bad_leaves_out_a_bad_bundle_entry(vault: Vault, tmp_path: Path):
    path = tmp_path / "records.json"
    path.write_bytes(
        bundle(observation(), observation(effectiveDateTime="2019-02-30"), ["not", "a", "resource"])
    )
    assert_skip_bad(
        vault,
        path,
        [
            'records.json entry 2: date "2019-02-30" is not a real calendar date and time',
            "records.json entry 3: the resource is not a JSON object",
        ],
        new=1,
    )


def test_size_caps(monkeypatch):
    monkeypatch.setattr(fhir, "MAX_BUNDLE_BYTES", 100)
    assert refusal(bundle(observation())) == (
        "records.json: the Bundle is larger than 100 bytes, the most pds reads as one JSON document"
    )
    monkeypatch.setattr(fhir, "MAX_LINE", 50)
    assert refusal(json.dumps(observation()).encode(), "o.ndjson") == (
        "o.ndjson line 1: the line is longer than 50 bytes"
    )
    monkeypatch.setattr(fhir, "MAX_LINE", 1 << 20)
    monkeypatch.setattr(fhir, "MAX_RESOURCE_BYTES", 120)
    assert refusal(json.dumps(observation()).encode(), "o.ndjson").startswith(
        "o.ndjson line 1: the Observation resource is "
    )


# -- the health schema's fast path ---------------------------------------------------------------

_ANY = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["fhir", "record", "2024-03-31", "2024-03-31T09:30:00Z", "+01:00"]),
    st.integers(),
    st.dictionaries(st.text(max_size=4), st.one_of(st.text(max_size=4), st.integers()), max_size=3),
    st.dictionaries(st.integers(), st.text(max_size=4), max_size=2),
)


_VALID = {
    "kind": "fhir",
    "type": "Observation",
    "start": "2024-03-31T07:30:00Z",
    "end": None,
    "tz_offset": "+02:00",
    "value": "62",
    "unit": "beats/minute",
    "source": None,
    "id": "o1",
    "code": "8867-4",
    "display": "Pulse",
    "details": {"a": "b"},
    "resource": {"resourceType": "Observation", "n": [1, 2.5]},
}


@given(st.sampled_from(sorted(_VALID)), _ANY)
def test_fast_validator_never_accepts_what_marshmallow_would_change(name, value):
    """The importer skips marshmallow when the fast check passes (Dict fields included)."""
    assert FAST(_VALID)
    payload = {**_VALID, name: value}
    if FAST(payload):
        assert HealthSchema().load(payload) == payload


# -- fuzz ----------------------------------------------------------------------------------------

SAMPLES = [(FIXTURES / SEARCHSET).read_bytes(), bundle(observation())]


@given(
    st.one_of(st.binary(max_size=300), mutations(SAMPLES)), st.sampled_from(["r.json", "r.ndjson"])
)
def test_fuzz_records_or_a_clean_error(data, filename):
    try:
        records = parse(data, filename)
    except ImportFormatError as exc:
        message = exc.message
    else:
        assert all(r.payload["kind"] == "fhir" for r in records)
        return
    assert message.startswith(filename)
