"""`pds spending check/apply`, exact output, through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pds.cli import cli
from tests.conftest import fixture

RULES = '[[rule]]\ncategory = "Eating out"\ncontains = "coffee"\n\n[[rule]]\ncategory = "Bills"\ncontains = "broadband"\n'


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


def test_check_a_good_and_a_bad_file(runner: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "mine.toml"
    good.write_text(RULES, encoding="utf-8")
    result = run(runner, "spending", "check", str(good))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{good}: 2 rules, all valid\n  Eating out\n  Bills\n"
    as_json = run(runner, "spending", "check", str(good), "--json")
    assert json.loads(as_json.stdout) == {"file": str(good), "valid": True, "rules": 2}
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\ncategory = "Fun"\ncontains = "x"\nfield = "payee"\n')
    refused = run(runner, "spending", "check", str(bad))
    assert refused.exit_code == 1
    assert refused.stderr == (
        f'Error: {bad}: rule 1 ("Fun"): field "field": "payee" is not either, counterparty or '
        "description\nHint: Fix the file and check it again; nothing was changed.\n"
    )
    missing = run(runner, "spending", "check", str(tmp_path / "none.toml"))
    assert (
        missing.stderr == f"Error: {tmp_path / 'none.toml'}: no such file\nHint: Check the path.\n"
    )


def test_apply_gives_every_transaction_its_category(runner: CliRunner, initialised: Path) -> None:
    imported = run(runner, "import", str(fixture("midata/nationwide-test-midata.csv")))
    assert imported.exit_code == 0, imported.output
    none = run(runner, "spending", "apply")
    assert none.stdout == "Applied the rules to 8 transactions: 0 have a category.\n"
    (initialised / "spending.toml").write_text(RULES, encoding="utf-8")
    done = run(runner, "spending", "apply", "--json")
    assert json.loads(done.stdout) == {"transactions": 8, "categorised": 2}
    (initialised / "spending.toml").write_text(RULES.split("\n\n")[1], encoding="utf-8")
    one = run(runner, "spending", "apply")
    assert one.stdout == "Applied the rules to 8 transactions: 1 has a category.\n"
    (initialised / "spending.toml").write_text('[[rule]]\ncategory = "X"\n', encoding="utf-8")
    broken = run(runner, "spending", "apply")
    assert broken.exit_code == 1
    assert broken.stderr == (
        f'Error: {initialised}/spending.toml: rule 1 ("X"): needs contains or matches\n'
        "Hint: Fix the file and run `pds spending check FILE`; the rules in use stay as they "
        "were.\n"
    )
