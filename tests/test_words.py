"""Counted words: "1 second", never "1 seconds", in every message that counts something."""

from __future__ import annotations

import pytest

from pds.audit.verify import Report, describe
from pds.errors import TooManyRefusals
from pds.policy.rules import MaxGrant, RateLimit
from pds.words import plural


@pytest.mark.parametrize(
    ("n", "word", "words", "expected"),
    [
        (0, "second", None, "0 seconds"),
        (1, "second", None, "1 second"),
        (2, "second", None, "2 seconds"),
        (100, "second", None, "100 seconds"),
        (-1, "day", None, "-1 day"),
        (1, "entry", None, "1 entry"),
        (2, "entry", None, "2 entries"),
        (2, "day", None, "2 days"),  # a vowel before the y: just an s
        (2, "access", "accesses", "2 accesses"),
        (1, "access", "accesses", "1 access"),
        (1, "imported file", None, "1 imported file"),
        (3, "imported file", None, "3 imported files"),
    ],
)
def test_plural(n: int, word: str, words: str | None, expected: str) -> None:
    assert plural(n, word, words) == expected


def test_plural_grouped() -> None:
    assert plural(1234, "record", grouped=True) == "1,234 records"
    assert plural(1, "record", grouped=True) == "1 record"


def test_retry_after_one_second_and_many() -> None:
    assert TooManyRefusals(1).message.endswith("try again in 1 second")
    assert TooManyRefusals(2).message.endswith("try again in 2 seconds")
    assert TooManyRefusals(60).message.endswith("try again in 60 seconds")


def test_policy_words_count_right() -> None:
    assert MaxGrant(id="g", days=1).text() == "no grant lasts more than 1 day"
    assert MaxGrant(id="g", days=90).text() == "no grant lasts more than 90 days"
    assert RateLimit(id="r", per_day=1).text() == "a business may make at most 1 request a day"
    assert RateLimit(id="r", per_day=5).text() == "a business may make at most 5 requests a day"


def test_verify_report_counts_right() -> None:
    report = Report("o", "k", key_pinned=False, size=1)
    assert describe(report)[-1] == (
        "Note: entry 0 was logged after the newest signed checkpoint, so no signature covers it "
        "yet (normal for a running vault, which signs one within 1000 entries or 5 minutes); "
        "a bundle must not have such entries."
    )
    report.size = 3
    assert describe(report)[-1] == (
        "Note: entries 0..2 were logged after the newest signed checkpoint, so no signature "
        "covers them yet (normal for a running vault, which signs one within 1000 entries or "
        "5 minutes); a bundle must not have such entries."
    )
    for _ in range(21):
        report.add(None, "x")
    assert describe(report)[-1] == "... and 1 more problem"
    report.add(None, "x")
    assert describe(report)[-1] == "... and 2 more problems"


def test_owner_login_throttle_says_one_second(kit, monkeypatch) -> None:
    from pds.http import limits

    class OneSecond:
        def wait(self, who: str) -> int:
            return 1

    monkeypatch.setattr(limits, "login_throttle", lambda: OneSecond())
    page = kit.http.get("/login")
    from tests.oauth_kit import csrf

    resp = kit.http.post(
        "/login", data={"passphrase": "wrong", "csrf_token": csrf(page.text), "next": "/"}
    )
    assert resp.status_code == 429
    assert "Too many failed attempts. Try again in 1 second." in resp.text
    assert resp.headers["Retry-After"] == "1"
