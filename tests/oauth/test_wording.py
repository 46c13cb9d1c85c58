"""A grant in plain words (``pds.oauth.wording``): what Home says a business may do."""

from __future__ import annotations

from pds.oauth.access import Access, CategoryAccess
from pds.oauth.wording import day, in_words, lines


def cat(category: str, *actions: str, **limits) -> CategoryAccess:
    return CategoryAccess(category, frozenset(actions), **limits)


def access(*parts: CategoryAccess, audit: bool = False) -> Access:
    return Access({p.category: p for p in parts}, audit=audit)


def test_one_category_read() -> None:
    assert in_words(access(cat("transactions", "read"))) == "read your transactions"


def test_read_with_fields() -> None:
    got = in_words(access(cat("transactions", "read", fields=("date", "amount"))))
    assert got == "read your transactions (date, amount)"


def test_aggregate_only() -> None:
    assert in_words(access(cat("energy", "aggregate"))) == "learn totals of your energy"


def test_write_only_and_with_read() -> None:
    assert in_words(access(cat("events", "write"))) == "add records to your events"
    both = access(cat("events", "read", "write", fields=("title",)))
    assert in_words(both) == "read your events (title) and add records to them"


def test_several_categories_and_the_access_log() -> None:
    got = in_words(
        access(
            cat("transactions", "read", fields=("date", "amount"), time_from="2025-01-01"),
            cat("energy", "aggregate"),
            audit=True,
        )
    )
    assert got == (
        "read your transactions (date, amount) from 1 January 2025, "
        "learn totals of your energy, and read the access log (no data)"
    )


def test_time_ranges() -> None:
    both = cat("health", "read", time_from="2024-02-29", time_to="2025-12-31")
    assert in_words(access(both)) == "read your health from 29 February 2024 to 31 December 2025"
    upto = cat("health", "read", "aggregate", time_to="2025-06-30")
    assert in_words(access(upto)) == "read and learn totals of your health up to 30 June 2025"


def test_totals_with_limits_of_their_own_are_a_part_of_their_own() -> None:
    totals = cat("transactions", "aggregate", fields=("amount",))
    whole = cat("transactions", "read", "aggregate", fields=("date",), totals=totals)
    assert in_words(access(whole)) == (
        "read your transactions (date), and learn totals of your transactions (amount)"
    )
    assert lines(access(whole, audit=True)) == [
        "read your transactions (date)",
        "learn totals of your transactions (amount)",
        "read the access log (no data)",
    ]


def test_nothing_and_days() -> None:
    assert in_words(Access()) == "do nothing"
    assert (day("2027-03-07"), day("2026-12-07T19:00:00Z")) == ("7 March 2027", "7 December 2026")
