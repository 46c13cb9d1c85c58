"""Policy files: each way a file can be wrong (exact messages), the shipped templates, what
is in force, and a PolicySet that keeps the previous rules when a reload finds a broken file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pds.policy import DenyCategory, MaxGrant, PolicyError, UnknownPolicy
from pds.policyfiles.loader import (
    TEMPLATES,
    PolicySet,
    State,
    available,
    load_active,
    read_file,
    read_state,
    set_enabled,
    switch,
    write_state,
)
from pds.policyfiles.schema import parse_policy

L = "policies/x.toml"
GOOD = """
[[rule]]
id = "health-never-leaves"
kind = "deny-category"
category = "health"
"""


def rule(body: str, rid: str = "no-health") -> str:
    return f'[[rule]]\nid = "{rid}"\n{body}\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[rule]\n",
            f"{L}: not valid TOML: Expected ']]' at the end of an array declaration (at line 1, column 7)",
        ),
        (
            "rules = []\n",
            f'{L}: unknown top-level key "rules"; a policy file holds only [[rule]] tables',
        ),
        ("rule = 3\n", f'{L}: "rule" must be written as [[rule]] tables'),
        ("rule = [3]\n", f"{L}: rule 1: is not a table; write it as [[rule]]"),
        ('[[rule]]\nkind = "max-grant"\ndays = 9\n', f'{L}: rule 1: field "id": is required'),
        (
            '[[rule]]\nid = "No Health"\nkind = "max-grant"\ndays = 9\n',
            f'{L}: rule 1: field "id": "No Health" is not a rule id: use lower-case letters, digits and dashes',
        ),
        (rule('category = "health"'), f'{L}: rule "no-health" (rule 1): field "kind": is required'),
        (
            rule('kind = "deny-categry"'),
            f'{L}: rule "no-health" (rule 1): field "kind": "deny-categry" is not a rule kind; use one of deny-category, deny-purpose, aggregates-only, max-history, max-grant, redact-fields, rate-limit, allowed-purposes, min-bucket',
        ),
        (
            GOOD + rule('kind = "deny-category"\ncategory = "helth"'),
            f'{L}: rule "no-health" (rule 2): field "category": "helth" is not a category',
        ),
        (
            rule('kind = "deny-category"'),
            f'{L}: rule "no-health" (rule 1): field "category": is required',
        ),
        (
            rule('kind = "deny-category"\ncategory = "health"\ncategry = "x"'),
            f'{L}: rule "no-health" (rule 1): field "categry": is not a field of a deny-category rule; it takes id, reason, category, except_clients, actions',
        ),
        (
            rule('kind = "deny-category"\ncategory = "health"\nactions = ["delete"]'),
            f'{L}: rule "no-health" (rule 1): field "actions": "delete" is not read, write or aggregate',
        ),
        (
            rule('kind = "deny-category"\ncategory = "health"\nactions = "read"'),
            f'{L}: rule "no-health" (rule 1): field "actions": is not a list',
        ),
        (
            rule('kind = "deny-category"\ncategory = "health"\nexcept_clients = []'),
            f'{L}: rule "no-health" (rule 1): field "except_clients": must name at least one',
        ),
        (
            rule('kind = "deny-category"\ncategory = 3'),
            f'{L}: rule "no-health" (rule 1): field "category": is not a text string',
        ),
        (
            rule('kind = "deny-purpose"\npurpose = "dpv:Marketting"\nactions = ["read"]'),
            f'{L}: rule "no-health" (rule 1): field "purpose": "dpv:Marketting" is not a purpose pds knows (see docs/policies.md)',
        ),
        (
            rule('kind = "deny-purpose"\npurpose = "dpv:Marketing"'),
            f'{L}: rule "no-health" (rule 1): field "actions": is required',
        ),
        (
            rule('kind = "aggregates-only"'),
            f'{L}: rule "no-health" (rule 1): field "category": needs a category, a purpose, or both',
        ),
        (
            rule('kind = "max-history"\ndays = 0'),
            f'{L}: rule "no-health" (rule 1): field "days": must be from 1 to 36500 days',
        ),
        (
            rule('kind = "max-history"\ndays = 1.5'),
            f'{L}: rule "no-health" (rule 1): field "days": is not a whole number',
        ),
        (
            rule('kind = "max-grant"\ndays = true'),
            f'{L}: rule "no-health" (rule 1): field "days": is not a whole number',
        ),
        (
            rule('kind = "max-grant"\ndays = "90"'),
            f'{L}: rule "no-health" (rule 1): field "days": is not a whole number',
        ),
        (
            rule('kind = "max-grant"\ndays = 9\ncategory = "health"'),
            f'{L}: rule "no-health" (rule 1): field "category": is not a field of a max-grant rule; it takes id, reason, days',
        ),
        (
            rule('kind = "redact-fields"\ncategory = "transactions"\nfields = ["payee"]'),
            f'{L}: rule "no-health" (rule 1): field "fields": "payee" is not a field of transactions; its fields are date, amount, currency, description, counterparty, balance, type, account, reference',
        ),
        (
            rule('kind = "rate-limit"\nper_day = -1'),
            f'{L}: rule "no-health" (rule 1): field "per_day": must be from 1 to 10000000',
        ),
        (
            rule(
                'kind = "allowed-purposes"\ncategory = "transactions"\npurposes = ["dpv:CreditChecking", "credit"]'
            ),
            f'{L}: rule "no-health" (rule 1): field "purposes": "credit" is not a purpose pds knows (see docs/policies.md)',
        ),
        (
            rule('kind = "min-bucket"\nk = 2'),
            f'{L}: rule "no-health" (rule 1): field "k": must be at least 5 (the built-in minimum)',
        ),
        (
            rule('kind = "max-grant"\ndays = 9\nreason = ""'),
            f'{L}: rule "no-health" (rule 1): field "reason": must be 1 to 300 characters',
        ),
        (
            GOOD + GOOD,
            f'{L}: rule "health-never-leaves" (rule 2): the id "health-never-leaves" is already used by rule 1',
        ),
        ("x = " + "[" * 100_000 + "]" * 100_000, f"{L}: arrays or tables are nested too deeply"),
        (
            "x = " + "{a = " * 100_000 + "}" * 100_000,
            f"{L}: arrays or tables are nested too deeply",
        ),
    ],
)
def test_a_bad_file_is_refused_whole_naming_file_rule_and_field(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, L)
    assert err.value.message == message
    assert err.value.hint == (
        "Fix the file and run `pds policy check FILE`; the policies in force stay as they were."
    )


def test_a_good_file() -> None:
    text = GOOD + rule('kind = "max-grant"\ndays = 90\nreason = "my words"', "short")
    assert parse_policy(text, L) == (
        DenyCategory(id="health-never-leaves", category="health"),
        MaxGrant(id="short", days=90, reason="my words"),
    )
    assert parse_policy("# nothing yet\n", L) == ()


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"^.*nope\.toml: no such file$"):
        read_file(tmp_path / "nope.toml")
    bad = tmp_path / "latin.toml"
    bad.write_bytes(b"# caf\xe9\n")
    with pytest.raises(PolicyError) as err:
        read_file(bad, "latin.toml")
    assert err.value.message == "latin.toml: not UTF-8 text"


def test_every_template_is_valid_and_ids_are_unique_across_them() -> None:
    seen: dict[str, str] = {}
    names = []
    for path in sorted(TEMPLATES.glob("*.toml")):
        names.append(path.stem)
        for r in read_file(path):
            assert r.id not in seen, f"{r.id} in {path.name} and {seen.get(r.id)}"
            seen[r.id] = path.name
    assert "default" in names
    assert len(names) >= 5


# -- what is in force ----------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "default.toml").write_text(rule('kind = "max-grant"\ndays = 180', "grants-180"))
    (folder / "health.toml").write_text(GOOD)
    return folder


def own(home: Path, name: str, text: str) -> Path:
    folder = home / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def ids(rules) -> list[str]:
    return [r.id for r in rules]


def test_defaults_and_own_files(home: Path, templates: Path) -> None:
    assert read_state(home) == State(("default",), ())
    rules, files = load_active(home, templates=templates)
    assert ids(rules) == ["grants-180"]
    own(home, "mine", rule('kind = "rate-limit"\nper_day = 5', "five"))
    rules, files = load_active(home, templates=templates)
    assert ids(rules) == ["grants-180", "five"]
    assert [(f.name, f.origin, f.enabled) for f in available(home, templates=templates)] == [
        ("default", "template", True),
        ("health", "template", False),
        ("mine", "own", True),
    ]


def test_enable_disable_and_shadowing(home: Path, templates: Path) -> None:
    f, changed = set_enabled(home, "health", True, templates)
    assert (f.name, f.origin, f.enabled, changed) == ("health", "template", True, True)
    assert set_enabled(home, "health", True, templates)[1] is False
    assert read_state(home) == State(("default", "health"), ())
    assert ids(load_active(home, templates=templates)[0]) == ["grants-180", "health-never-leaves"]
    set_enabled(home, "default", False, templates)
    assert ids(load_active(home, templates=templates)[0]) == ["health-never-leaves"]
    # an own file of the same name replaces the template
    own(
        home,
        "health",
        rule('kind = "deny-category"\ncategory = "health"\nexcept_clients = ["gp"]', "health-gp"),
    )
    assert ids(load_active(home, templates=templates)[0]) == ["health-gp"]
    set_enabled(home, "health", False, templates)
    assert read_state(home) == State(("health",), ("health",))
    assert ids(load_active(home, templates=templates)[0]) == []
    with pytest.raises(UnknownPolicy) as err:
        set_enabled(home, "nothing", True, templates)
    assert err.value.message == 'no policy named "nothing"'


def test_a_switch_is_logged_or_undone(home: Path, templates: Path) -> None:
    entries: list[tuple] = []

    def audit(action: str, **fields: object) -> int:
        entries.append((action, fields))
        return len(entries)

    f, changed = switch(home, "health", True, audit, templates)
    assert (f.name, f.origin, f.enabled, changed) == ("health", "template", True, True)
    assert entries == [
        (
            "policy.change",
            {
                "actor": "owner",
                "detail": {"policy": "health", "origin": "template", "change": "enable"},
            },
        )
    ]
    assert switch(home, "health", True, audit, templates)[1] is False  # no change, no entry
    assert len(entries) == 1

    def broken(action: str, **fields: object) -> int:
        raise OSError("no space left on device")

    before = read_state(home)
    with pytest.raises(OSError, match="^no space left on device$"):
        switch(home, "health", False, broken, templates)
    assert read_state(home) == before == State(("default", "health"), ())
    switch(home, "health", False, audit, templates)
    assert entries[-1][1]["detail"]["change"] == "disable"
    assert read_state(home) == State(("default",), ())


def test_enabling_a_broken_or_clashing_file_changes_nothing(home: Path, templates: Path) -> None:
    own(home, "clash", rule('kind = "max-grant"\ndays = 9', "grants-180"))
    set_enabled(home, "clash", False, templates)
    before = (home / "policies" / "enabled.toml").read_text()
    with pytest.raises(PolicyError) as err:
        set_enabled(home, "clash", True, templates)
    assert err.value.message == (
        f'{home}/policies/clash.toml: rule "grants-180" (rule 1): the id "grants-180" is '
        "already used in template default.toml"
    )
    assert (home / "policies" / "enabled.toml").read_text() == before


def test_bad_state_file(home: Path) -> None:
    own(home, "enabled", "enabled = 3\n")
    with pytest.raises(PolicyError) as err:
        read_state(home)
    assert (
        err.value.message
        == f'{home}/policies/enabled.toml: "enabled" must be a list of policy names'
    )
    write_state(home, State(("default",), ("mine",)))
    assert read_state(home) == State(("default",), ("mine",))


# -- PolicySet: loaded once, reloaded on change, the previous rules kept on a broken file ------


def touch_later(path: Path, text: str) -> None:
    """Rewrite a file and make sure its mtime moves (coarse-clock file systems)."""
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_policy_set_reloads_when_a_file_changes(home: Path, templates: Path) -> None:
    ps = PolicySet(home, templates=templates)
    first = ps.current()
    assert ids(first) == ["grants-180"]
    assert ps.current() is first  # nothing changed: the same compiled rules
    path = own(home, "mine", GOOD)
    assert ids(ps.current()) == ["grants-180", "health-never-leaves"]
    touch_later(path, rule('kind = "max-grant"\ndays = 7', "week"))
    assert ids(ps.current()) == ["grants-180", "week"]
    path.unlink()
    assert ids(ps.current()) == ["grants-180"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[[rule]]\nid = \n", "not valid TOML: Invalid value (at line 2, column 6)"),
        (
            rule('kind = "deny-category"\ncategory = "helth"'),
            'rule "no-health" (rule 1): field "category": "helth" is not a category',
        ),
        (
            rule('kind = "nope"'),
            'rule "no-health" (rule 1): field "kind": "nope" is not a rule kind; use one of deny-category, deny-purpose, aggregates-only, max-history, max-grant, redact-fields, rate-limit, allowed-purposes, min-bucket',
        ),
        (
            rule('kind = "max-grant"\ndays = 9\nextra = 1'),
            'rule "no-health" (rule 1): field "extra": is not a field of a max-grant rule; it takes id, reason, days',
        ),
        (rule('kind = "max-grant"'), 'rule "no-health" (rule 1): field "days": is required'),
        (
            GOOD + GOOD,
            'rule "health-never-leaves" (rule 2): the id "health-never-leaves" is already used by rule 1',
        ),
        (
            rule('kind = "max-grant"\ndays = 9', "grants-180"),
            'rule "grants-180" (rule 1): the id "grants-180" is already used in template default.toml',
        ),
    ],
)
def test_a_broken_file_on_reload_leaves_the_previous_policies_in_force(
    home: Path, templates: Path, text: str, why: str
) -> None:
    reports: list[str] = []
    path = own(home, "mine", GOOD)
    ps = PolicySet(home, templates=templates, report=reports.append)
    good = ps.current()
    touch_later(path, text)
    assert ps.current() is good
    message = f"{path}: {why}; the previous policies stay in force"
    assert ps.problem == message
    assert reports == [message]
    assert ps.current() is good  # asked again: same rules, reported once
    assert reports == [message]
    touch_later(path, rule('kind = "max-grant"\ndays = 3', "three"))
    assert ids(ps.current()) == ["grants-180", "three"]
    assert ps.problem is None


def test_first_load_of_a_broken_file_raises(home: Path, templates: Path) -> None:
    own(home, "mine", "nonsense")
    with pytest.raises(PolicyError, match="mine.toml: not valid TOML"):
        PolicySet(home, templates=templates)


def test_check_every_limits_the_stat_calls(home: Path, templates: Path) -> None:
    now = [0.0]
    ps = PolicySet(home, templates=templates, check_every=1.0, clock=lambda: now[0])
    own(home, "mine", GOOD)
    assert ids(ps.current()) == ["grants-180"]
    now[0] = 1.0
    assert ids(ps.current()) == ["grants-180", "health-never-leaves"]
