"""iCalendar: the three real calendars with their time zones, all-day and floating events,
recurrence, bad events, and a fuzz test."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from connectors.base import Rejected, strict
from connectors.ical import IcalConnector
from pds import registry
from pds.errors import ImportFormatError
from pds.importer import import_file
from pds.payloads import EventSchema
from pds.vault import Vault
from tests.conftest import fixture
from tests.skipbad import assert_skip_bad

ICAL = IcalConnector()


def parse(text: str, name: str = "c.ics") -> list:
    return list(strict(ICAL.parse(io.BytesIO(text.encode()), name), name))


def calendar(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{e}END:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n{body}END:VCALENDAR\r\n"


CASES = [
    # file, start (UTC), end, timezone, start_local, summary
    (
        "icalendar/alarm_google_future.ics",
        "2024-10-04T18:15:00Z",
        "2024-10-04T19:00:00Z",
        "UTC",
        "2024-10-04T18:15:00",
        "event with alarms",
    ),
    (
        "icalendar/alarm_thunderbird_future.ics",
        "2024-10-23T14:00:00Z",
        "2024-10-23T15:00:00Z",
        "Europe/London",
        "2024-10-23T15:00:00",
        "event with alarms",
    ),
    (
        "icalendar/issue_350_podio.ics",
        "2022-02-22T18:30:00Z",
        "2022-02-22T19:30:00Z",
        "UTC",
        "2022-02-22T18:30:00",
        'Termin 4353 und"so"',
    ),
]


@pytest.mark.parametrize(("name", "start", "end", "zone", "local", "summary"), CASES)
def test_fixture_imports_exactly(
    vault: Vault, name: str, start: str, end: str, zone: str, local: str, summary: str
) -> None:
    path = fixture(name)
    assert registry.detect(path.read_bytes()[:4096], path.name).name == "ical"
    result = import_file(vault, path)
    assert (result.connector, result.new, result.duplicate, result.rejected) == ("ical", 1, 0, 0)
    (rec,) = vault.records("events")
    assert rec.occurred_at == start
    p = rec.payload
    assert (p["start"], p["end"], p["timezone"], p["start_local"], p["summary"]) == (
        start,
        end,
        zone,
        local,
        summary,
    )
    assert p["all_day"] is False
    assert (import_file(vault, path).new, vault.status()["records"]) == (0, 1)


def test_podio_tab_folding_and_trailing_text(vault: Vault) -> None:
    import_file(vault, fixture("icalendar/issue_350_podio.ics"))
    (rec,) = vault.records("events")
    assert rec.payload["location"] == "online"
    assert rec.payload["uid"] == "20055546456446"
    assert rec.payload["description"].startswith("Toller Termin für")


def test_all_day_floating_recurring_and_duration() -> None:
    day, floating = parse(
        calendar(
            "UID:a\r\nSUMMARY:Holiday\r\nDTSTART;VALUE=DATE:20240325\r\n"
            "DTEND;VALUE=DATE:20240326\r\nRRULE:FREQ=YEARLY;BYMONTH=3\r\n",
            "UID:b\r\nDTSTART:20240401T090000\r\nDURATION:PT1H30M\r\n"
            "ORGANIZER:mailto:a@example.org\r\n",
        )
    )
    assert day.occurred_at == "2024-03-25"
    assert {k: day.payload[k] for k in ("start", "end", "all_day", "timezone", "recurrence")} == {
        "start": "2024-03-25",
        "end": "2024-03-26",
        "all_day": True,
        "timezone": None,
        "recurrence": "FREQ=YEARLY;BYMONTH=3",
    }
    assert (floating.payload["start"], floating.payload["end"]) == (
        "2024-04-01T09:00:00",
        "2024-04-01T10:30:00",
    )
    assert (floating.payload["timezone"], floating.payload["organizer"]) == (None, "a@example.org")
    assert EventSchema().load(floating.payload) == floating.payload


def test_new_york_winter_time_and_recurrence_id_identity() -> None:
    (rec,) = parse(
        calendar(
            "UID:x\r\nRECURRENCE-ID;TZID=America/New_York:20240110T100000\r\n"
            "DTSTART;TZID=America/New_York:20240110T110000\r\n"
        )
    )
    assert rec.payload["start"] == "2024-01-10T16:00:00Z"
    assert rec.payload["timezone"] == "America/New_York"
    assert rec.identity == "x@2024-01-10T15:00:00Z"


def test_event_without_start_is_refused_or_skipped(vault: Vault, tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_text(
        calendar("UID:ok\r\nDTSTART:20240101T100000Z\r\n", "UID:bad\r\nSUMMARY:x\r\n"),
        encoding="utf-8",
    )
    with pytest.raises(ImportFormatError) as exc:
        import_file(vault, path)
    assert exc.value.message == "cal.ics VEVENT #2 (UID bad): start: Field may not be null."
    assert vault.status()["records"] == 0
    summary = import_file(vault, path, skip_bad=True)
    assert (summary.new, summary.rejected, summary.rejected_rows) == (1, 1, [exc.value.message])


def test_skip_bad_leaves_out_the_unreadable_event(vault: Vault, tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_text(
        calendar(
            "UID:ok\r\nDTSTART:20240101T100000Z\r\n",
            "UID:bad\r\nDTSTART:2024-13-45\r\n",
            "UID:ok2\r\nDTSTART:20240102\r\n",
        ),
        encoding="utf-8",
    )
    assert_skip_bad(
        vault,
        path,
        [
            "cal.ics VEVENT #2 (UID bad): Cannot access 'dt' on broken property 'DTSTART' "
            "(expected 'vDDDTypes'): Expected datetime, date, or ..."
        ],
        new=2,
    )
    assert [r.payload["uid"] for r in vault.records()] == ["ok", "ok2"]


def test_not_a_calendar() -> None:
    with pytest.raises(ImportFormatError) as exc:
        parse("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert exc.value.message == "c.ics: no BEGIN:VCALENDAR ... END:VCALENDAR calendar found"


def test_size_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("connectors.ical.MAX_BYTES", 100)
    with pytest.raises(ImportFormatError) as exc:
        parse(calendar("UID:a\r\nDTSTART:20240101T100000Z\r\n"))
    assert exc.value.message == (
        "c.ics: the calendar is larger than 100 bytes, the most pds reads from one .ics file"
    )


# -- fuzz -------------------------------------------------------------------------------------

SAMPLES = [fixture(n).read_bytes() for n, *_ in CASES]


def _survives(data: bytes) -> None:
    try:
        for rec in ICAL.parse(io.BytesIO(data), "f.ics"):
            if isinstance(rec, Rejected):
                assert rec.where.startswith("VEVENT #")
                continue
            with contextlib.suppress(ValidationError):
                EventSchema().load(rec.payload)
    except ImportFormatError:
        pass


@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _survives(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n" + data + b"\r\nEND:VCALENDAR\r\n")


@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_mutated_fixtures(sample: bytes, data: st.DataObject) -> None:
    buf = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(buf) - 1))
        buf[at] = data.draw(st.integers(0, 255))
    _survives(bytes(buf[: data.draw(st.integers(0, len(buf)))]))
