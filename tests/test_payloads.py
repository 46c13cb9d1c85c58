"""pds.vocabulary names each category's fields; pds.payloads validates them. The two agree."""

from __future__ import annotations

from pds.payloads import SCHEMAS
from pds.vocabulary import ACTIONS, CATEGORIES, FIELDS, category_fields


def test_every_category_has_a_schema_and_fields() -> None:
    assert set(SCHEMAS) == set(CATEGORIES) == set(FIELDS)


def test_the_vocabulary_lists_each_schemas_fields_in_order() -> None:
    for category in CATEGORIES:
        assert FIELDS[category] == tuple(SCHEMAS[category]().fields), category


def test_category_fields() -> None:
    assert category_fields("balances") == ("date", "amount", "currency", "type", "account")
    assert category_fields("no-such-category") is None


def test_actions() -> None:
    assert ACTIONS == ("read", "write", "aggregate")
