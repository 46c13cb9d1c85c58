"""The one clock (pds.clock): stored times are ``YYYY-MM-DDTHH:MM:SSZ`` and read back to the
same Unix second; "now" in every shape comes from the same moment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pds import clock


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1743413400, "2025-03-31T09:30:00Z"),
        (1709164799, "2024-02-28T23:59:59Z"),
        (1709251200, "2024-03-01T00:00:00Z"),
    ],
)
def test_epoch_reads_back_what_iso_writes(seconds: int, text: str) -> None:
    assert clock.iso(seconds) == text
    assert clock.epoch(text) == seconds


def test_iso_drops_fractions() -> None:
    assert clock.iso(1743413400.999) == "2025-03-31T09:30:00Z"


@pytest.mark.parametrize(
    "text",
    ["2025-03-31T09:30:00", "2025-03-31T09:30:00.123Z", "2025-03-31 09:30:00Z", "2025-03-31"],
)
def test_epoch_refuses_any_other_shape(text: str) -> None:
    with pytest.raises(ValueError, match="does not match format"):
        clock.epoch(text)


def test_every_now_is_the_same_moment() -> None:
    before = clock.now()
    at = clock.utcnow()
    text = clock.now_iso()
    after = clock.now()
    assert at.tzinfo is UTC
    assert before <= int(at.timestamp()) <= after
    assert before <= clock.epoch(text) <= after
    assert clock.today() == clock.local_now().date() == datetime.now().date()
