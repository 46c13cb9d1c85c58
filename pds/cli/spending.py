"""Spending categories: ``pds spending check FILE`` and ``pds spending apply`` (the owner's
rules file is ``$PDS_HOME/spending.toml``; docs/web.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from pds.cli.common import PdsGroup, emit, fail, get_settings, json_option, with_vault
from pds.words import plural

if TYPE_CHECKING:
    from pds.vault import Vault


@click.group("spending", cls=PdsGroup)
def spending_group() -> None:
    """Spending categories for transactions, from your rules file ($PDS_HOME/spending.toml)."""


@spending_group.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@json_option
def spending_check(file: Path, as_json: bool) -> None:
    """Validate a spending rules file (nothing changes); the first problem names the rule."""
    from pds.policyfiles.spending import SpendingRulesError, parse_rules

    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{file}: no such file", "Check the path.")
    except UnicodeDecodeError:
        fail(f"{file}: not UTF-8 text", "Save the file as UTF-8.")
    except OSError as exc:
        fail(f"{file}: cannot be read ({exc.strerror})")
    try:
        rules = parse_rules(text, str(file))
    except SpendingRulesError as exc:
        fail(exc.message, "Fix the file and check it again; nothing was changed.")
    if as_json:
        emit({"file": str(file), "valid": True, "rules": len(rules.rules)})
        return
    click.echo(f"{file}: {plural(len(rules.rules), 'rule')}, all valid")
    for name in rules.categories:
        click.echo(f"  {name}")


@spending_group.command("apply")
@json_option
@with_vault
def spending_apply(v: Vault, as_json: bool) -> None:
    """Give every transaction the category of your rules now (replacing what each had)."""
    from pds.policyfiles.spending import load
    from pds.vault import spending

    done = spending.apply(v, load(get_settings().home))
    if as_json:
        emit(done)
        return
    click.echo(
        f"Applied the rules to {plural(done['transactions'], 'transaction')}: "
        f"{done['categorised']} {'has' if done['categorised'] == 1 else 'have'} a category."
    )
