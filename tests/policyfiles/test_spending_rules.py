"""The owner's spending rules file: what a rule matches, the first match wins, and every
way a file is refused, each with its exact message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pds.policyfiles.spending import (
    SpendingRulesError,
    amount_sign,
    load,
    parse_rules,
    rules_path,
    save,
)

RULES = """
[[rule]]
category = "Salary"
matches = "^acme ltd"
field = "counterparty"
direction = "in"

[[rule]]
category = "Groceries"
contains = "TESCO"

[[rule]]
category = "Refunds"
contains = "acme"
direction = "in"

[[rule]]
category = "Shopping"
contains = "acme"
field = "description"
"""


def tx(amount: str, description: str, counterparty: str | None = None) -> dict:
    return {
        "date": "2024-03-01",
        "amount": amount,
        "currency": "GBP",
        "description": description,
        "counterparty": counterparty,
    }


def test_the_first_rule_that_matches_gives_the_category() -> None:
    rules = parse_rules(RULES)
    assert [
        rules.category_for(tx("2500.00", "March pay", "ACME Ltd")),
        rules.category_for(tx("-2500.00", "March pay", "ACME Ltd")),  # out: not Salary
        rules.category_for(tx("-12.40", "Tesco Stores 3021")),
        rules.category_for(tx("-12.40", "card payment", "tesco")),  # either field
        rules.category_for(tx("4.99", "Acme online refund")),
        rules.category_for(tx("-4.99", "Acme online")),
        rules.category_for(tx("-4.99", "Card", "Acme shop")),  # Shopping reads description
        rules.category_for(tx("0", "Acme")),  # zero is neither in nor out
        rules.category_for(tx("-1.00", "Coffee")),
    ] == ["Salary", None, "Groceries", "Groceries", "Refunds", "Shopping", None, "Shopping", None]
    assert rules.categories == ["Salary", "Groceries", "Refunds", "Shopping"]


def test_no_file_is_no_rules_and_a_saved_file_is_read_back(tmp_path) -> None:
    assert not load(tmp_path)
    assert rules_path(tmp_path) == tmp_path / "spending.toml"
    saved = save(tmp_path, RULES)
    assert len(saved.rules) == 4
    assert rules_path(tmp_path).read_text(encoding="utf-8") == RULES
    assert load(tmp_path).categories == ["Salary", "Groceries", "Refunds", "Shopping"]


def test_a_bad_file_is_not_saved(tmp_path) -> None:
    save(tmp_path, RULES)
    with pytest.raises(SpendingRulesError) as caught:
        save(tmp_path, '[[rule]]\ncategory = "Fun"\nmatches = "(unclosed"\n')
    assert caught.value.message == (
        'spending.toml: rule 1 ("Fun"): field "matches": "(unclosed" is not a regular '
        "expression in RE2 syntax (missing ): (unclosed); the rules use RE2, which has no "
        "backreferences or lookaround"
    )
    assert rules_path(tmp_path).read_text(encoding="utf-8") == RULES
    assert [p.name for p in tmp_path.iterdir()] == ["spending.toml"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = ", "spending.toml: not valid TOML: Invalid value (at end of document)"),
        (
            "rules = 1\n",
            'spending.toml: unknown top-level key "rules"; the file holds only [[rule]] tables',
        ),
        ("rule = [1]\n", "spending.toml: rule 1: is not a table; write it as [[rule]]"),
        ('rule = "x"\n', 'spending.toml: "rule" must be written as [[rule]] tables'),
        (
            '[[rule]]\ncategory = "Fun"\ncontains = "x"\npayee = "y"\n',
            'spending.toml: rule 1 ("Fun"): field "payee": is not a field of a rule; it takes '
            "category, contains, matches, field, direction",
        ),
        (
            '[[rule]]\ncategory = "Fun"\n',
            'spending.toml: rule 1 ("Fun"): needs contains or matches',
        ),
        (
            '[[rule]]\ncategory = "Fun"\ncontains = "x"\nmatches = "y"\n',
            'spending.toml: rule 1 ("Fun"): give contains or matches, not both',
        ),
        ('[[rule]]\ncontains = "x"\n', 'spending.toml: rule 1: field "category": is required'),
        (
            '[[rule]]\ncategory = 3\ncontains = "x"\n',
            'spending.toml: rule 1: field "category": is not a text string',
        ),
        (
            '[[rule]]\ncategory = " "\ncontains = "x"\n',
            'spending.toml: rule 1: field "category": must not be empty',
        ),
        (
            '[[rule]]\ncategory = "Fun"\ncontains = ""\n',
            'spending.toml: rule 1 ("Fun"): field "contains": must not be empty',
        ),
        (
            '[[rule]]\ncategory = "Fun"\ncontains = "x"\ndirection = "up"\n',
            'spending.toml: rule 1 ("Fun"): field "direction": "up" is not in or out',
        ),
        (
            '[[rule]]\ncategory = "Fun"\ncontains = "x"\nfield = "payee"\n',
            'spending.toml: rule 1 ("Fun"): field "field": "payee" is not either, '
            "counterparty or description",
        ),
        (
            '[[rule]]\ncategory = "Fun"\ncontains = "x"\n\n[[rule]]\ncategory = "Slow"\n'
            'matches = "(a)\\\\1"\n',
            'spending.toml: rule 2 ("Slow"): field "matches": "(a)\\1" is not a regular '
            "expression in RE2 syntax (invalid escape sequence: \\1); the rules use RE2, which "
            "has no backreferences or lookaround",
        ),
        (
            '[[rule]]\ncategory = "Ahead"\nmatches = "tesco(?= extra)"\n',
            'spending.toml: rule 1 ("Ahead"): field "matches": "tesco(?= extra)" is not a '
            "regular expression in RE2 syntax (invalid perl operator: (?=); the rules use RE2, "
            "which has no backreferences or lookaround",
        ),
        (
            '[[rule]]\ncategory = "Long"\nmatches = "' + "a" * 201 + '"\n',
            'spending.toml: rule 1 ("Long"): field "matches": is longer than 200 characters',
        ),
    ],
)
def test_each_problem_has_its_message(text: str, message: str) -> None:
    with pytest.raises(SpendingRulesError) as caught:
        parse_rules(text)
    assert caught.value.message == message
    assert caught.value.status == 422


@pytest.mark.parametrize("pattern", ["(a|aa)*b", "a*a*a*a*a*a*a*a*a*b", "(a+)+$x", "(a*)*b"])
def test_a_pattern_that_backtracks_in_re_is_searched_in_linear_time(pattern: str) -> None:
    rules = parse_rules(f'[[rule]]\ncategory = "Slow"\nmatches = "{pattern}"\n')
    payload = tx("-1.00", "a" * 500, "a" * 500)
    started = time.perf_counter()
    for _ in range(100):
        assert rules.category_for(payload) is None
    assert time.perf_counter() - started < 0.5  # re takes minutes for one search of these


def test_a_pattern_searches_in_any_case() -> None:
    rules = parse_rules('[[rule]]\ncategory = "Salary"\nmatches = "^ACME\\\\s+LTD$"\n')
    assert rules.category_for(tx("1.00", "pay", "Acme  Ltd")) == "Salary"
    assert rules.category_for(tx("1.00", "pay", "Acme Ltd.")) is None
    cafe = parse_rules('[[rule]]\ncategory = "Café"\nmatches = "^CAFÉ N"\nfield = "description"\n')
    assert cafe.category_for(tx("-2.80", "café Nero")) == "Café"
    assert cafe.category_for(tx("-2.80", "Card", "CAFÉ NERO")) is None  # description only


def test_amount_sign() -> None:
    assert [
        amount_sign(a)
        for a in ("-12.40", "12.40", "+3", "0.00", "-0.00", "-.5", "1E+2", "NaN", "x", None)
    ] == [-1, 1, 1, 0, 0, -1, 1, 0, 0, 0]


def test_the_documented_example_is_a_valid_file() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "policies.md").read_text("utf-8")
    example = docs.split("## Spending categories")[1].split("```toml\n")[1].split("```")[0]
    rules = parse_rules(example)
    assert rules.categories == ["Groceries", "Salary", "Eating out"]
    assert rules.category_for(tx("-3.10", "COSTA COFFEE 1123")) == "Eating out"
    assert rules.category_for(tx("2100.00", "Pay", "ACME Ltd")) == "Salary"
