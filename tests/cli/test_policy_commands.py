"""`pds policy list/check/enable/disable/explain`, exact output, through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pds.cli import cli
from pds.settings import Settings
from pds.vault import Vault
from tests.conftest import PASSPHRASE

DEFAULT_RULES = (
    "Rules in force (3):\n"
    "  no-selling                           no business may read, total or write your data for "
    "selling your data to others\n"
    "  grants-at-most-180-days              no grant lasts more than 180 days\n"
    "  at-most-10000-requests-a-day         a business may make at most 10000 requests a day\n"
)


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


def test_list_fresh(runner: CliRunner) -> None:
    result = run(runner, "policy", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Policy files (on: in force):"
    assert lines[1] == (
        "  on   default                          template  3 rules   Sensible defaults: no "
        "selling, no grant longer than 180 days, no flood of requests."
    )
    assert lines[2] == (
        "  off  health-never-leaves              template  1 rule    Health data never leaves "
        "this vault, not even as totals."
    )
    assert result.stdout.endswith(DEFAULT_RULES)


def test_list_json_with_own_file(runner: CliRunner, home: Path) -> None:
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "mine.toml").write_text(
        '[[rule]]\nid = "no-health"\nkind = "deny-category"\ncategory = "health"\n'
    )
    doc = json.loads(run(runner, "policy", "list", "--json").stdout)
    assert doc["files"][-1] == {
        "name": "mine",
        "origin": "own",
        "enabled": True,
        "path": str(home / "policies" / "mine.toml"),
        "title": "",
        "rules": 1,
        "problem": None,
    }
    assert doc["rules"][-1] == {
        "id": "no-health",
        "kind": "deny-category",
        "file": "mine",
        "summary": "health data never leaves this vault",
    }


def test_list_with_a_broken_file_fails(runner: CliRunner, home: Path) -> None:
    (home / "policies").mkdir(parents=True)
    path = home / "policies" / "mine.toml"
    path.write_text('[[rule]]\nid = "x"\nkind = "deny-category"\ncategory = "helth"\n')
    result = run(runner, "policy", "list")
    assert result.exit_code == 1
    assert f"  on   mine                             own       broken    {path}\n" in result.stdout
    assert result.stderr == (
        f'Error: {path}: rule "x" (rule 1): field "category": "helth" is not a category\n'
        "Hint: Fix the file and run `pds policy check FILE`; the policies in force stay as "
        "they were.\n"
    )


def test_check_good_and_bad(runner: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        '[[rule]]\nid = "one-year"\nkind = "max-history"\ndays = 365\n'
        '[[rule]]\nid = "k"\nkind = "min-bucket"\nk = 10\n'
    )
    result = run(runner, "policy", "check", str(good))
    assert result.exit_code == 0
    assert result.stdout == (
        f"{good}: 2 rules, all valid\n"
        "  one-year                             max-history       nothing older than 365 days "
        "leaves this vault\n"
        "  k                                    min-bucket        totals built from fewer than "
        "10 records are withheld\n"
    )
    assert json.loads(run(runner, "policy", "check", str(good), "--json").stdout)["valid"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "k"\nkind = "min-bucket"\nk = 2\n')
    result = run(runner, "policy", "check", str(bad))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f'Error: {bad}: rule "k" (rule 1): field "k": must be at least 5 (the built-in minimum)\n'
        "Hint: Fix the file and check it again; nothing was changed.\n"
    )
    result = run(runner, "policy", "check", str(tmp_path / "none.toml"))
    assert result.stderr.startswith(f"Error: {tmp_path / 'none.toml'}: no such file\n")


def test_explain_refused_and_allowed(runner: CliRunner) -> None:
    result = run(
        runner,
        "policy",
        "explain",
        "--client",
        "acme",
        "--category",
        "transactions",
        "--purpose",
        "dpv:SellDataToThirdParties",
    )
    assert result.exit_code == 0
    assert result.stdout == (
        "Refused: acme may not read transactions for selling your data to others "
        "(dpv:SellDataToThirdParties).\n"
        'Why: rule "no-selling": no business may read, total or write your data for selling '
        "your data to others\n"
    )
    result = run(
        runner,
        "policy",
        "explain",
        "--client",
        "acme",
        "--category",
        "transactions",
        "--purpose",
        "dpv:CreditChecking",
        "--grant-days",
        "365",
    )
    assert result.stdout == (
        "Allowed: acme may read transactions for checking your creditworthiness "
        "(dpv:CreditChecking), within these limits:\n"
        "  a grant lasts at most 180 days\n"
        "  at most 10000 requests a day\n"
        'Why: rule "grants-at-most-180-days": no grant lasts more than 180 days\n'
    )


def test_explain_json_and_aggregate(runner: CliRunner) -> None:
    doc = json.loads(
        run(
            runner,
            "policy",
            "explain",
            "--client",
            "acme",
            "--category",
            "energy",
            "--action",
            "aggregate",
            "--json",
        ).stdout
    )
    assert doc == {
        "client": "acme",
        "action": "aggregate",
        "category": "energy",
        "purpose": None,
        "purpose_label": "no stated purpose",
        "allowed": True,
        "decision": "allowed",
        "rule_ids": [],
        "reason": "no policy rule applies; the grant decides",
        "constraints": {
            "earliest": None,
            "max_expires_in": 15552000,
            "redacted": {},
            "rate_limit": 10000,
            "min_bucket": 5,
        },
    }


def test_explain_bad_category_is_a_usage_error(runner: CliRunner) -> None:
    result = run(runner, "policy", "explain", "--client", "a", "--category", "helth")
    assert result.exit_code == 2
    assert '"helth" is not a category' in result.stderr


def test_enable_disable_are_logged(runner: CliRunner, initialised: Path) -> None:
    result = run(runner, "policy", "enable", "health-never-leaves")
    assert (result.exit_code, result.stdout) == (
        0,
        '"health-never-leaves" (template) is now in force.\n',
    )
    result = run(runner, "policy", "enable", "health-never-leaves")
    assert result.stdout == '"health-never-leaves" (template) was already in force.\n'
    result = run(runner, "policy", "explain", "--client", "gp", "--category", "health")
    assert result.stdout == (
        "Refused: gp may not read health with no stated purpose.\n"
        'Why: rule "health-never-leaves": health data never leaves this vault\n'
    )
    doc = json.loads(run(runner, "policy", "disable", "default", "--json").stdout)
    assert doc == {"policy": "default", "origin": "template", "enabled": False, "changed": True}
    assert (initialised / "policies" / "enabled.toml").read_text().splitlines()[2:] == [
        'enabled = ["health-never-leaves"]',
        "disabled = []",
    ]
    with Vault.open(Settings(home=initialised), PASSPHRASE) as v:
        entries = [json.loads(text) for _, text in v.log.tail(10)]
    changes = [e for e in entries if e["action"] == "policy.change"]
    assert [(e["actor"], e["decision"], e["detail"]) for e in changes] == [
        (
            "owner",
            "allowed",
            {"change": "enable", "origin": "template", "policy": "health-never-leaves"},
        ),
        ("owner", "allowed", {"change": "disable", "origin": "template", "policy": "default"}),
    ]


def test_enable_unknown_or_broken(runner: CliRunner, initialised: Path) -> None:
    result = run(runner, "policy", "enable", "nope")
    assert result.exit_code == 1
    assert result.stderr == (
        'Error: no policy named "nope"\nHint: `pds policy list` shows the policy names.\n'
    )
    path = initialised / "policies" / "mine.toml"
    path.parent.mkdir()
    path.write_text('[[rule]]\nid = "no-selling"\nkind = "max-grant"\ndays = 3\n')
    run(runner, "policy", "disable", "mine")
    result = run(runner, "policy", "enable", "mine")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f'Error: {path}: rule "no-selling" (rule 1): the id "no-selling" is already used in '
        "template default.toml\n"
    )
