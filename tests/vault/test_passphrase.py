"""A new passphrase must be one zxcvbn rates 3 of 4 or better (pds init, pds passphrase,
pds demo creating a vault); --allow-weak-passphrase keeps a weak one on purpose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds.cli import cli
from pds.vault import passphrase as strength
from tests.conftest import PASSPHRASE

HINT_END = "(picked at random just now; do not reuse an example printed anywhere)."
MORE_WORDS = " Add another word or two. Uncommon words are better."
NO_REPEATS = MORE_WORDS + " Avoid repeated words and characters."
EXAMPLE = re.compile(r'Hint: Use four or more random words, e\.g\. "([a-z]+(?: [a-z]+){3})" ')


def env(home: Path, passphrase: str) -> CliRunner:
    return CliRunner(
        env={"PDS_HOME": str(home), "PDS_PASSPHRASE": passphrase, "PDS_PASSPHRASE_FILE": ""}
    )


def refused(result, why: str, tips: str = MORE_WORDS) -> str:
    """The example passphrase of a refusal that gives ``why`` and zxcvbn's ``tips``."""
    assert result.exit_code == 1, result.output
    error, hint = result.stderr.splitlines()[-2:]  # after any prompts
    assert error == f"Error: that passphrase is too weak ({why})"
    found = EXAMPLE.match(hint)
    assert found, hint
    assert hint.endswith(HINT_END + tips)
    words = found.group(1).split()
    assert set(words) <= set(strength._words())
    return found.group(1)


@pytest.mark.parametrize(
    ("weak", "why"),
    [
        ("x", "it could be guessed in less than a second"),
        ("hello", "this is a top-100 common password; it could be guessed in less than a second"),
        (
            "pass one",
            "this is similar to a commonly used password; it could be guessed in 2 minutes",
        ),
    ],
)
def test_init_refuses_a_weak_passphrase(tmp_path: Path, weak: str, why: str) -> None:
    home = tmp_path / "home"
    examples = {refused(env(home, weak).invoke(cli, ["init"]), why) for _ in range(3)}
    assert len(examples) == 3  # a new random example every time, never a fixed one
    assert not (home / "vault.db").exists()
    typed = CliRunner(env={"PDS_HOME": str(home), "PDS_PASSPHRASE": "", "PDS_PASSPHRASE_FILE": ""})
    refused(typed.invoke(cli, ["init"], input=f"{weak}\n{weak}\n"), why)
    assert not (home / "vault.db").exists()


def test_init_takes_a_strong_or_an_allowed_weak_passphrase(tmp_path: Path) -> None:
    strong = env(tmp_path / "a", "quiet plum harbour")
    assert strong.invoke(cli, ["init"]).exit_code == 0
    weak = env(tmp_path / "b", "x")
    result = weak.invoke(cli, ["init", "--allow-weak-passphrase", "--json"])
    assert result.exit_code == 0, result.output
    assert weak.invoke(cli, ["status", "--json"]).exit_code == 0


def test_passphrase_change_refuses_a_weak_one(
    runner: CliRunner, initialised: Path, tmp_path: Path
) -> None:
    new = tmp_path / "new.txt"
    for weak, why in (
        ("x", "it could be guessed in less than a second"),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" * 10,
            'repeats like "aaa" are easy to guess; it could be guessed in less than a second',
        ),
    ):
        new.write_text(weak + "\n")
        tips = NO_REPEATS if weak.startswith("aa") else MORE_WORDS
        result = runner.invoke(cli, ["passphrase", "--new-passphrase-file", str(new)])
        example = refused(result, why, tips)
        assert strength._score(example)["score"] >= 3
    # the old passphrase still opens the vault; the weak one does not
    assert runner.invoke(cli, ["status"]).exit_code == 0
    assert env(initialised, "x").invoke(cli, ["status"]).exit_code == 1
    typed = runner.invoke(cli, ["passphrase"], input="x\nx\n")
    refused(typed, "it could be guessed in less than a second")
    new.write_text("x\n")
    allowed = runner.invoke(
        cli, ["passphrase", "--new-passphrase-file", str(new), "--allow-weak-passphrase"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert env(initialised, "x").invoke(cli, ["status"]).exit_code == 0
    new.write_text(PASSPHRASE + "\n")
    back = env(initialised, "x").invoke(cli, ["passphrase", "--new-passphrase-file", str(new)])
    assert back.exit_code == 0, back.output


def test_empty_is_still_called_empty(tmp_path: Path) -> None:
    empty = tmp_path / "pf"
    empty.write_text("\n")
    runner = CliRunner(
        env={
            "PDS_HOME": str(tmp_path / "h"),
            "PDS_PASSPHRASE": "",
            "PDS_PASSPHRASE_FILE": str(empty),
        }
    )
    result = runner.invoke(cli, ["init"])
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: the passphrase is empty\nHint: Choose a passphrase to protect it.\n",
    )


def test_demo_passphrase_is_strong_and_a_weak_demo_is_refused(tmp_path: Path) -> None:
    assert strength._score("correct horse battery staple")["score"] == 4  # make run's
    home = tmp_path / "demo"
    refused(
        env(home, "demo").invoke(cli, ["demo"]),
        "this is a very common password; it could be guessed in less than a second",
    )
    assert not (home / "vault.db").exists()


def test_examples_are_random_strong_words() -> None:
    seen = {strength.example() for _ in range(20)}
    assert len(seen) == 20
    for phrase in seen:
        words = phrase.split()
        assert len(words) == 4
        assert all(4 <= len(w) <= 8 and w.isalpha() for w in words)
        assert strength._score(phrase)["score"] >= 3
    assert len(strength._words()) == 8192
