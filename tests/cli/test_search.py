"""`pds search`: every category at once, whole words, newest first; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pds.cli import cli
from tests.conftest import fixture
from tests.factories import midata_file

ROWS = [
    ("02/03/2024", "VIS", "COSTA COFFEE", "-3.20", "96.80"),
    ("03/03/2024", "VIS", "Coffee beans", "-8.00", "88.80"),
    ("04/03/2024", "DD", "TESCO STORES", "-20.00", "68.80"),
]


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


def imported(runner: CliRunner, tmp_path: Path) -> None:
    path = midata_file(tmp_path / "s.csv", ROWS)
    assert run(runner, "import", str(path)).exit_code == 0
    assert run(runner, "import", str(fixture("vcard/John_Doe_IPHONE.vcf"))).exit_code == 0


def test_search_text(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    imported(runner, tmp_path)
    result = run(runner, "search", "coffee")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "transactions: 2 matches\n"
        "       2  2024-03-03  Coffee beans · -8.00 · GBP\n"
        "       1  2024-03-02  COSTA COFFEE · -3.20 · GBP\n"
    )
    limited = run(runner, "search", "GBP", "--limit", "1").stdout
    assert limited == (
        "transactions: 3 matches (the newest 1 shown)\n"
        "       3  2024-03-04  TESCO STORES · -20.00 · GBP\n"
    )
    assert run(runner, "search", "costa  COFFEE").stdout.startswith("transactions: 1 match\n")
    assert run(runner, "search", "coff").stdout == 'Nothing matches "coff".\n'
    long = run(runner, "search", " ".join(["nowhere"] * 40)).stdout
    assert long == f'Nothing matches "{" ".join(["nowhere"] * 7)} now…".\n'


def test_search_json_and_category(runner: CliRunner, initialised: Path, tmp_path: Path) -> None:
    imported(runner, tmp_path)
    everywhere = json.loads(run(runner, "search", "john", "--json").stdout)
    assert [(g["category"], g["count"]) for g in everywhere["categories"]] == [("contacts", 1)]
    assert everywhere["categories"][0]["records"][0]["payload"]["full_name"] == (
        "Mr. John Richter James Doe Sr."
    )
    only = json.loads(run(runner, "search", "coffee", "--category", "contacts", "--json").stdout)
    assert only == {"query": "coffee", "categories": []}
    found = json.loads(run(runner, "search", "tesco", "--json").stdout)["categories"]
    assert [(g["count"], [r["id"] for r in g["records"]]) for g in found] == [(1, [3])]
    audit = json.loads(run(runner, "audit", "tail", "-n", "1", "--json").stdout)
    assert (audit[0]["action"], audit[0]["count"]) == ("export", 1)


def test_search_errors(runner: CliRunner, initialised: Path) -> None:
    empty = run(runner, "search", "! ?")
    assert empty.exit_code == 1
    assert empty.stderr == (
        'Error: "! ?" has no word to look for\n'
        "Hint: Type a word of at least two letters or digits.\n"
    )
    assert run(runner, "search", "? " * 100).stderr.startswith(f'Error: "{"? " * 29}?…" has no')
    bad = run(runner, "search", "x", "--category", "shoes")
    assert bad.exit_code == 2
    assert bad.stderr.endswith(
        "\nError: Invalid value for '--category': \"shoes\" is not a category; use one of transactions, balances, energy, contacts, events, health, locations, activity, profile, intentions\n"
    )
