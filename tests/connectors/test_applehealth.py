"""The Apple Health export.xml connector: real exports, hand-made variants, memory, fuzz."""

from __future__ import annotations

import io
import itertools
import tracemalloc
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.applehealth import AppleHealthConnector
from connectors.base import Record, strict
from pds import registry
from pds.errors import ImportFormatError
from pds.importer import import_file
from pds.payloads import HealthSchema, fast_validator
from pds.vault import Vault
from tests.conftest import fixture
from tests.factories import mutations
from tests.skipbad import assert_skip_bad

FIXTURES = fixture("apple-health")
TDDA = "tdda-export6s3sample.xml"
DOGSHEEP = "healthkit-to-sqlite-export.xml"
PARSER = "apple-health-parser-export.xml"
FAST = fast_validator(HealthSchema())


def parse(data: bytes, filename: str = "export.xml") -> list[Record]:
    return list(strict(AppleHealthConnector().parse(io.BytesIO(data), filename), filename))


def parse_fixture(name: str) -> list[Record]:
    with (FIXTURES / name).open("rb") as stream:
        return list(strict(AppleHealthConnector().parse(stream, name), name))


def health(**fields) -> dict:
    payload = dict.fromkeys(HealthSchema().fields)
    payload.update(fields)
    return payload


def export(*elements: str) -> bytes:
    body = "\n".join(elements)
    return f'<?xml version="1.0"?>\n<HealthData locale="en_GB">\n{body}\n</HealthData>\n'.encode()


STEPS = (
    '<Record type="HKQuantityTypeIdentifierStepCount" sourceName="Phone" unit="count" '
    'startDate="{start}" endDate="2020-01-01 10:05:00 +0100" value="12"/>'
)


# -- real exports ----------------------------------------------------------------------------


def test_every_fixture_is_tested():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted([TDDA, DOGSHEEP, PARSER])


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        (TDDA, {"record": 15, "activity_summary": 2, "workout": 1}),
        (DOGSHEEP, {"record": 2, "workout": 1, "activity_summary": 2}),
        (PARSER, {"record": 8}),
    ],
)
def test_fixture_counts_schema_and_detection(name, kinds):
    records = parse_fixture(name)
    assert Counter(r.payload["kind"] for r in records) == kinds
    assert all(r.category == "health" for r in records)
    assert all(FAST(r.payload) and HealthSchema().load(r.payload) == r.payload for r in records)
    head = (FIXTURES / name).read_bytes()[: registry.HEAD_BYTES]
    assert registry.detect(head, name).name == "applehealth"


def test_tdda_internal_dtd_records_summary_and_workout():
    records = parse_fixture(TDDA)
    assert records[0] == Record(
        "health",
        "2014-09-13T09:27:54Z",
        health(
            kind="record",
            type="HKQuantityTypeIdentifierStepCount",
            start="2014-09-13T09:27:54Z",
            end="2014-09-13T09:27:59Z",
            tz_offset="+01:00",
            value="329",
            unit="count",
            source="Health",
        ),
        None,
        "line 83 (Record)",
    )
    assert records[10].payload["value"] == "0.00288"
    assert records[10].payload["unit"] == "km"
    summary = records[15]
    assert summary.occurred_at == "2016-04-14"
    assert summary.payload == health(
        kind="activity_summary",
        type="ActivitySummary",
        start="2016-04-14",
        value="700.698",
        unit="kcal",
        details={
            "activeEnergyBurnedGoal": "680",
            "appleExerciseTime": "89",
            "appleExerciseTimeGoal": "30",
            "appleStandHours": "16",
            "appleStandHoursGoal": "12",
        },
    )
    workout = records[17]
    assert workout.where == "line 100 (Workout)"
    assert workout.payload == health(
        kind="workout",
        type="HKWorkoutActivityTypeOther",
        start="2016-04-02T09:40:38Z",
        end="2016-04-02T10:12:22Z",
        tz_offset="+01:00",
        value="31.73680251737436",
        unit="min",
        source="NJR Apple\u00a0Watch",
        details={
            "totalDistance": "0",
            "totalDistanceUnit": "km",
            "totalEnergyBurned": "139.3170000000021",
            "totalEnergyBurnedUnit": "kcal",
        },
    )


def test_dogsheep_metadata_entities_and_workout_route():
    records = parse_fixture(DOGSHEEP)
    bmi = records[0].payload
    assert bmi["start"] == "2016-04-18T15:25:32Z"
    assert bmi["tz_offset"] == "-07:00"
    assert bmi["value"] == "22.5312"
    assert bmi["details"]["Withings Link"] == (
        "withings-bd2://timeline/measure?userid=12345&date=482685932&type=1"
    )
    assert len(bmi["details"]) == 5
    assert records[1].payload["source"] == "Apple\u00a0Watch"
    workout = records[2].payload
    assert workout["type"] == "HKWorkoutActivityTypeRunning"
    assert workout["details"] == {
        "totalDistance": "0.4971749504535062",
        "totalDistanceUnit": "mi",
        "totalEnergyBurned": "48.74499999999999",
        "totalEnergyBurnedUnit": "kcal",
        "HKTimeZone": "America/Los_Angeles",
        "HKWeatherTemperature": "56 degF",
        "HKWeatherHumidity": "96 %",
    }


def test_parser_sample_plus_two_hours_and_category_values():
    records = parse_fixture(PARSER)
    assert records[0].occurred_at == "2023-12-31T23:01:36Z"
    assert records[0].payload["tz_offset"] == "+02:00"
    sleep = records[-1].payload
    assert sleep["value"] == "HKCategoryValueSleepAnalysisAsleepCore"
    assert sleep["unit"] is None
    assert sleep["details"] == {"HKTimeZone": "Europe/Amsterdam"}
    assert records[-1].where == "line 46 (Record)"


def test_imports_exactly_and_once(vault: Vault):
    summary = import_file(vault, FIXTURES / TDDA)
    assert (summary.connector, summary.new, summary.duplicate) == ("applehealth", 18, 0)
    assert len(list(vault.records("health"))) == 18
    assert import_file(vault, FIXTURES / TDDA).duplicate == 18


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_export_zip_is_detected_and_imported(vault: Vault, tmp_path: Path):
    path = make_zip(
        tmp_path / "export.zip",
        {
            "apple_health_export/export.xml": (FIXTURES / TDDA).read_bytes(),
            "apple_health_export/export_cda.xml": b"<ClinicalDocument/>",
        },
    )
    head = path.read_bytes()[: registry.HEAD_BYTES]
    assert registry.detect(head, path.name).name == "applehealth"
    summary = import_file(vault, path)
    assert (summary.connector, summary.new) == ("applehealth", 18)
    assert [r.payload for r in parse(path.read_bytes(), "export.zip")] == [
        r.payload for r in parse_fixture(TDDA)
    ]


def test_zip_without_export_xml(tmp_path: Path):
    path = make_zip(tmp_path / "export.zip", {"apple_health_export/other.xml": b"<a/>"})
    with pytest.raises(ImportFormatError) as caught:
        parse(path.read_bytes(), "export.zip")
    assert caught.value.message == (
        "export.zip: the archive has no apple_health_export/export.xml; this is not the Apple "
        "Health export.zip"
    )


# -- hand-made exports ---------------------------------------------------------------------------


def test_correlations_me_and_unknown_elements_are_not_records():
    data = export(
        '<ExportDate value="2020-01-02 10:00:00 +0100"/>',
        '<Me HKCharacteristicTypeIdentifierDateOfBirth="1990-01-01"/>',
        '<Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Cuff" '
        'startDate="2020-01-01 10:00:00 +0100" endDate="2020-01-01 10:00:00 +0100">'
        + STEPS.format(start="2020-01-01 10:00:00 +0100")
        + "</Correlation>",
        '<ClinicalRecord type="x"/>',
        STEPS.format(start="2020-01-01 10:00:00 -0330"),
    )
    [record] = parse(data)
    assert record.payload["start"] == "2020-01-01T13:30:00Z"
    assert record.payload["tz_offset"] == "-03:30"
    assert record.where == "line 7 (Record)"


def test_a_bad_date_fails_the_schema_naming_the_element(vault: Vault, tmp_path: Path):
    path = tmp_path / "export.xml"
    path.write_bytes(
        export(
            STEPS.format(start="2020-01-01 10:00:00 +0100"),
            STEPS.format(start="yesterday"),
        )
    )
    with pytest.raises(ImportFormatError) as caught:
        import_file(vault, path)
    assert caught.value.message == (
        'export.xml line 4 (Record): start: "yesterday" is not a date or a UTC time like '
        "2024-03-31T09:30:00Z"
    )
    assert vault.status()["records"] == 0
    summary = import_file(vault, path, skip_bad=True)
    assert (summary.new, summary.rejected) == (1, 1)
    assert summary.rejected_rows == [caught.value.message]


def test_missing_type_fails_the_schema():
    [record] = parse(export('<Workout startDate="2020-01-01 10:00:00 +0000"/>'))
    assert record.payload["type"] == ""
    assert not FAST(record.payload)


def test_impossible_activity_summary_date():
    with pytest.raises(ImportFormatError) as caught:
        parse(export('<ActivitySummary dateComponents="2016-02-30"/>'))
    assert caught.value.message == (
        'export.xml line 3: ActivitySummary dateComponents "2016-02-30" is not a real date'
    )


def test_skip_bad_leaves_out_the_impossible_summary(vault, tmp_path):
    path = tmp_path / "export.xml"
    path.write_bytes(
        export(
            STEPS.format(start="2020-01-01 10:00:00 +0100"),
            '<ActivitySummary dateComponents="2016-02-30"/>',
            '<ActivitySummary dateComponents="2016-02-28" activeEnergyBurned="1"/>',
        )
    )
    assert_skip_bad(
        vault,
        path,
        ['export.xml line 4: ActivitySummary dateComponents "2016-02-30" is not a real date'],
        new=2,
    )
    assert [r.payload["type"] for r in vault.records()] == [
        "ActivitySummary",
        "HKQuantityTypeIdentifierStepCount",
    ]


def test_not_health_data():
    with pytest.raises(ImportFormatError) as caught:
        parse(b"<feed/>")
    assert caught.value.message == (
        "export.xml line 1: the root element is <feed>, not <HealthData>; this is not an "
        "Apple Health export.xml"
    )


def test_truncated_export_names_the_line():
    data = export(STEPS.format(start="2020-01-01 10:00:00 +0100"))[:-20]
    with pytest.raises(ImportFormatError) as caught:
        parse(data)
    assert caught.value.message == "export.xml line 3: not well-formed XML (unclosed token)"


# -- memory --------------------------------------------------------------------------------------


class _Generated(io.RawIOBase):
    """An export of ``n`` Records made on the fly, never held whole."""

    def __init__(self, n: int) -> None:
        record = (
            STEPS.format(start="2020-01-01 10:00:00 +0100").encode()
            + b'<Record type="T" sourceName="S" startDate="2020-01-01 10:00:00 +0000" '
            b'endDate="2020-01-01 10:00:00 +0000" value="1">'
            b'<MetadataEntry key="k" value="v"/></Record>\n'
        )
        self._parts: Iterator[bytes] = itertools.chain(
            [b'<?xml version="1.0"?>\n<HealthData locale="en_GB">\n'],
            itertools.repeat(record, n),
            [b"</HealthData>\n"],
        )
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        while len(self._buffer) < len(b):
            part = next(self._parts, None)
            if part is None:
                break
            self._buffer += part
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def test_memory_stays_flat_while_streaming():
    """20,000 elements (about 8 MB of XML) are read with well under 1 MB traced at peak:
    without clearing the root, the tree would hold about 16 MB."""
    tracemalloc.start()
    try:
        count = sum(
            1
            for _ in AppleHealthConnector().parse(
                io.BufferedReader(_Generated(10_000)), "export.xml"
            )
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 1_000_000


# -- fuzz ----------------------------------------------------------------------------------------

SAMPLES = [(FIXTURES / DOGSHEEP).read_bytes(), (FIXTURES / TDDA).read_bytes()]


@given(st.one_of(st.binary(max_size=300), mutations(SAMPLES)))
def test_fuzz_records_or_a_clean_error(data):
    try:
        records = parse(data)
    except ImportFormatError as exc:
        message = exc.message
    else:
        assert all(r.category == "health" and isinstance(r.payload, dict) for r in records)
        return
    assert message.startswith("export.xml")
