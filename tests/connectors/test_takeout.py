"""Google Takeout: Location History (old and new), My Activity, a whole Takeout zip built from
the real files, an unpacked Takeout folder, `pds connectors`, and a fuzz test."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from connectors.base import Rejected
from connectors.takeout import TakeoutConnector
from pds import registry
from pds.errors import ImportFormatError
from pds.importer import expand_paths, import_file
from pds.payloads import schema_for
from pds.vault import Vault
from pds.vocabulary import CATEGORIES
from tests.conftest import fixture
from tests.skipbad import assert_skip_bad

TAKEOUT = TakeoutConnector()
# Where each real file sits inside a Takeout archive.
LAYOUT = {
    "Takeout/Location History/Location History.json": "google-takeout/Location_History.json",
    "Takeout/Location History (Timeline)/Records.json": "google-takeout/Records_2024_format.json",
    "Takeout/My Activity/Search/My Activity.json": "google-takeout/My_Activity_Search.json",
    "Takeout/My Activity/Maps/My Activity.json": "google-takeout/My_Activity_Maps.json",
    "Takeout/Contacts/My Contacts/My Contacts.vcf": "vcard/John_Doe_IPHONE.vcf",
    "Takeout/Calendar/me@example.org.ics": "icalendar/alarm_thunderbird_future.ics",
    "Takeout/archive_browser.html": None,
}


def build_takeout(path: Path, layout: dict[str, str | None] = LAYOUT) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for entry, source in layout.items():
            z.writestr(entry, fixture(source).read_bytes() if source else b"<html></html>")
    return path


def test_legacy_location_history(vault: Vault) -> None:
    path = fixture("google-takeout/Location_History.json")
    assert registry.detect(path.read_bytes()[:4096], path.name).name == "takeout"
    summary = import_file(vault, path)
    assert (summary.new, summary.rejected) == (2, 0)
    first, second = vault.records("locations")
    assert first.occurred_at == "2015-07-18T23:57:26Z"
    assert first.payload == {
        "time": "2015-07-18T23:57:26.012Z",
        "latitude": "37.6955289",
        "longitude": "-121.9287261",
        "accuracy": "45",
        "source": None,
        "device": None,
    }
    assert second.payload["time"] == "2015-07-18T23:58:25.529Z"


def test_records_json_2024_iso_timestamp(vault: Vault) -> None:
    import_file(vault, fixture("google-takeout/Records_2024_format.json"))
    (rec,) = vault.records("locations")
    assert rec.payload == {
        "time": "2014-07-18T14:59:59.914Z",
        "latitude": "35.1324213",
        "longitude": "-112.2434441",
        "accuracy": "10",
        "source": "WIFI",
        "device": "1978796627",
    }


@pytest.mark.parametrize(
    ("name", "first_time", "product", "title"),
    [
        (
            "google-takeout/My_Activity_Search.json",
            "2019-05-30T15:37:18.828Z",
            "Search",
            "Visited data liberation - How to download Google Search history? - Web ...",
        ),
        (
            "google-takeout/My_Activity_Maps.json",
            "2019-05-30T05:17:16.626Z",
            "Maps",
            "Viewed area around Pheba",
        ),
    ],
)
def test_my_activity(vault: Vault, name: str, first_time: str, product: str, title: str) -> None:
    path = fixture(name)
    assert registry.detect(path.read_bytes()[:4096], path.name).name == "takeout"
    assert import_file(vault, path).new == 2
    items = {r.payload["time"]: r.payload for r in vault.records("activity")}
    assert (items[first_time]["product"], items[first_time]["title"]) == (product, title)
    assert items[first_time]["header"] == product


def test_search_url_escapes_decoded(vault: Vault) -> None:
    import_file(vault, fixture("google-takeout/My_Activity_Search.json"))
    urls = sorted(r.payload["url"] for r in vault.records("activity"))
    assert urls[0] == "https://www.google.com/search?q=%22myactivity%22+google+export"


def test_whole_takeout_zip(vault: Vault, tmp_path: Path) -> None:
    path = build_takeout(tmp_path / "takeout-20240101T000000Z-001.zip")
    assert registry.detect(path.read_bytes()[:4096], path.name).name == "takeout"
    summary = import_file(vault, path)
    assert (summary.connector, summary.new, summary.rejected) == ("takeout", 9, 0)
    assert vault.status()["categories"] == {
        "activity": 4,
        "contacts": 1,
        "events": 1,
        "locations": 3,
    }
    (event,) = vault.records("events")
    assert (event.payload["start"], event.payload["timezone"]) == (
        "2024-10-23T14:00:00Z",
        "Europe/London",
    )
    (contact,) = vault.records("contacts")
    assert contact.payload["full_name"] == "Mr. John Richter James Doe Sr."
    assert import_file(vault, path).duplicate == 9


def test_zip_detected_by_name_when_first_entry_is_not_takeout(tmp_path: Path) -> None:
    path = build_takeout(
        tmp_path / "takeout-1.zip",
        {"x/My Activity/Maps/My Activity.json": "google-takeout/My_Activity_Maps.json"},
    )
    assert registry.detect(path.read_bytes()[:4096], path.name).name == "takeout"
    other = path.rename(tmp_path / "photos.zip")
    with pytest.raises(ImportFormatError, match=r"^photos\.zip: pds does not recognise"):
        registry.detect(other.read_bytes()[:4096], other.name)


def test_bad_element_in_zip_is_named_and_skippable(vault: Vault, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "locations": [
                    {"timestampMs": "1", "latitudeE7": 1, "longitudeE7": 2},
                    {"timestampMs": "2"},
                ]
            }
        )
    )
    path = tmp_path / "t.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.write(bad, "Takeout/Location History/Records.json")
    with pytest.raises(ImportFormatError) as exc:
        import_file(vault, path)
    assert exc.value.message == (
        "t.zip Takeout/Location History/Records.json location #2: latitude: Field may not be null."
    )
    summary = import_file(vault, path, skip_bad=True)
    assert (summary.new, summary.rejected) == (1, 1)
    (rec,) = vault.records("locations")
    assert (rec.payload["time"], rec.payload["latitude"]) == (
        "1970-01-01T00:00:00.001Z",
        "0.0000001",
    )


def test_broken_entry_is_named_inside_the_zip(vault: Vault, tmp_path: Path) -> None:
    path = tmp_path / "t.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Takeout/Contacts/All/All.vcf", b"BEGIN:VCARD\nFN:A\n")
    with pytest.raises(ImportFormatError) as exc:
        import_file(vault, path)
    assert exc.value.message == (
        "t.zip Takeout/Contacts/All/All.vcf card starting at line 1: no END:VCARD; "
        "the file looks truncated"
    )
    assert vault.status()["records"] == 0


def test_zip_with_nothing_google(vault: Vault, tmp_path: Path) -> None:
    path = build_takeout(tmp_path / "t.zip", {"Takeout/index.html": None})
    with pytest.raises(ImportFormatError) as exc:
        import_file(vault, path)
    assert exc.value.message == (
        "t.zip: no Location History, My Activity, contacts or calendar file in the archive"
    )


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"timestampMs": "999999999999999", "latitudeE7": 1, "longitudeE7": 1},
            "time: Field may not be null.",
        ),
        (
            {"timestamp": "2014-07-18T14:59:59", "latitudeE7": 1, "longitudeE7": 1},
            "time: Field may not be null.",
        ),
        (
            {"timestampMs": "1", "latitudeE7": "1", "longitudeE7": 1},
            "latitude: Field may not be null.",
        ),
        ({"timestampMs": "1", "latitudeE7": 1, "longitudeE7": 1, "accuracy": -3}, None),
    ],
)
def test_bad_location_values_are_named_by_the_schema(
    vault: Vault, tmp_path: Path, item: dict, message: str | None
) -> None:
    path = tmp_path / "Records.json"
    path.write_text(json.dumps({"locations": [item]}))
    if message is None:
        assert import_file(vault, path).new == 1
        assert next(vault.records("locations")).payload["accuracy"] is None
        return
    with pytest.raises(ImportFormatError) as exc:
        import_file(vault, path)
    assert exc.value.message == f"Records.json location #1: {message}"


def test_skip_bad_leaves_out_bad_elements_and_cards_in_a_zip(vault: Vault, tmp_path: Path) -> None:
    point = {"timestampMs": "1437263846012", "latitudeE7": 376955289, "longitudeE7": 1}
    history = json.dumps({"locations": [point, 5, {**point, "timestampMs": "1437263846013"}]})
    cards = (
        b"BEGIN:VCARD\nFN:A\nEND:VCARD\nBEGIN:VCARD\nno colon here\nEND:VCARD\n"
        b"BEGIN:VCARD\nFN:B\nEND:VCARD\n"
    )
    path = tmp_path / "takeout-1.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Takeout/Location History/Records.json", history)
        z.writestr("Takeout/Contacts/c.vcf", cards)
    assert_skip_bad(
        vault,
        path,
        [
            "takeout-1.zip Takeout/Location History/Records.json location #2: not a JSON object",
            "takeout-1.zip Takeout/Contacts/c.vcf card 2 (line 4): not a readable vCard (At "
            "line 3: Failed to parse line: no colon here)",
        ],
        new=4,
    )
    assert vault.status()["categories"] == {"contacts": 2, "locations": 2}


def test_a_bare_number_split_across_chunks_is_one_element() -> None:
    point = '{"timestampMs": "0", "latitudeE7": 1, "longitudeE7": 1}'
    pad = " " * (65536 - len('{"locations":[') - len(point) - 3)  # "12" | "3"
    data = ('{"locations":[' + point + "," + pad + "123,\n4" + "]}").encode()
    items = list(TAKEOUT.parse(io.BytesIO(data), "LH.json"))
    assert items[1:] == [
        Rejected("location #2", "not a JSON object"),
        Rejected("location #3", "not a JSON object"),
    ]


def test_e7_wrapped_int32_values_are_unwrapped(vault: Vault, tmp_path: Path) -> None:
    path = tmp_path / "Records.json"
    point = {"timestampMs": "0", "latitudeE7": 4294967296 - 337000000, "longitudeE7": -1}
    path.write_text(json.dumps({"locations": [point]}))
    import_file(vault, path)
    payload = next(vault.records("locations")).payload
    assert (payload["latitude"], payload["longitude"]) == ("-33.7000000", "-0.0000001")


def test_truncated_json_named(tmp_path: Path) -> None:
    data = fixture("google-takeout/Location_History.json").read_bytes()[:300]
    with pytest.raises(ImportFormatError) as exc:
        list(TAKEOUT.parse(io.BytesIO(data), "LH.json"))
    assert exc.value.message.startswith("LH.json: location #2: ")
    assert exc.value.message.endswith("; the file looks truncated")


def test_large_location_history_streams(tmp_path: Path) -> None:
    import tracemalloc

    point = b'{"timestampMs":"1437263846012","latitudeE7":376955289,"longitudeE7":-1219287261,"accuracy":45}'
    n = 60_000
    data = b'{"locations":[' + b",".join([point] * n) + b"]}"
    tracemalloc.start()
    count = sum(1 for _ in TAKEOUT.parse(io.BytesIO(data), "LH.json"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == n
    assert peak < 2 * 1024 * 1024  # the 5.7 MB file is never held whole


def test_unpacked_takeout_folder(vault: Vault, tmp_path: Path) -> None:
    root = tmp_path / "Takeout"
    for entry, source in LAYOUT.items():
        target = tmp_path / entry
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(fixture(source).read_bytes() if source else b"<html></html>")
    files = list(expand_paths([root]))
    assert [p.relative_to(root).as_posix() for p in files] == [
        "Calendar/me@example.org.ics",
        "Contacts/My Contacts/My Contacts.vcf",
        "Location History/Location History.json",
        "Location History (Timeline)/Records.json",
        "My Activity/Maps/My Activity.json",
        "My Activity/Search/My Activity.json",
    ]
    assert sum(import_file(vault, p).new for p in files) == 9


def test_cli_imports_a_folder(initialised: Path, runner, tmp_path: Path) -> None:
    from pds.cli import cli

    folder = tmp_path / "lh"
    folder.mkdir()
    (folder / "Records.json").write_bytes(
        fixture("google-takeout/Records_2024_format.json").read_bytes()
    )
    (folder / "notes.txt").write_text("not data")
    result = runner.invoke(cli, ["import", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.output == "Records.json: 1 new, 0 already present, 0 rejected (takeout)\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(cli, ["import", str(empty)])
    assert result.exit_code != 0
    assert f"Error: {empty}: no file in this folder is in a format pds reads" in result.output


def test_every_connector_lists_extensions_and_known_categories() -> None:
    connectors = registry.all_connectors()
    names = {c.name for c in connectors}
    assert {"vcard", "ical", "takeout", "ofx", "midata"} <= names
    for c in connectors:
        assert c.title, c.name
        assert c.extensions, c.name
        assert c.categories, c.name
        assert all(e.startswith(".") for e in c.extensions), c.name
        assert set(c.categories) <= set(CATEGORIES), c.name


def test_pds_connectors_lines_up_every_format(runner) -> None:
    from pds.cli import cli

    result = runner.invoke(cli, ["connectors"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(registry.all_connectors())
    width = max(len(c.name) for c in registry.all_connectors()) + 2
    for line, c in zip(lines, registry.all_connectors(), strict=True):
        assert line == (
            f"{c.name:<{width}}{c.title}  [{', '.join(c.extensions)}] -> {', '.join(c.categories)}"
        )
    assert (
        f"{'takeout':<{width}}Google Takeout (zip, Location History, My Activity JSON)  "
        "[.zip, .json] -> locations, activity, contacts, events"
    ) in lines


def test_categories_have_schemas() -> None:
    for category in ("contacts", "events", "locations", "activity"):
        assert schema_for(category) is not None


# -- fuzz -------------------------------------------------------------------------------------

SAMPLES = [fixture(s).read_bytes() for s in LAYOUT.values() if s and s.startswith("google")]


def _survives(data: bytes) -> None:
    try:
        for rec in TAKEOUT.parse(io.BytesIO(data), "f.json"):
            if isinstance(rec, Rejected):
                assert rec.message == "not a JSON object"
                continue
            with contextlib.suppress(ValidationError):
                schema_for(rec.category).load(rec.payload)
    except ImportFormatError:
        pass


@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _survives(data)
    _survives(b'{"locations":[' + data)
    _survives(b"[" + data)
    _survives(b"PK\x03\x04" + data)


@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_mutated_fixtures(sample: bytes, data: st.DataObject) -> None:
    buf = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(buf) - 1))
        buf[at] = data.draw(st.integers(0, 255))
    _survives(bytes(buf[: data.draw(st.integers(0, len(buf)))]))


@given(st.data())
def test_fuzz_mutated_zip(data: st.DataObject) -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Takeout/My Activity/Maps/My Activity.json", SAMPLES[-1])
    buf = bytearray(raw.getvalue())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(buf) - 1))
        buf[at] = data.draw(st.integers(0, 255))
    _survives(bytes(buf))
