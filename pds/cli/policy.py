"""Sharing policies: ``pds policy list|check|enable|disable|explain`` (docs/policies.md)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pds.cli.common import (
    PdsGroup,
    WholeNumber,
    category_option,
    day_option,
    emit,
    fail,
    get_settings,
    json_option,
    with_vault,
)
from pds.words import plural

if TYPE_CHECKING:
    from pds.vault import Vault


@click.group("policy", cls=PdsGroup)
def policy_group() -> None:
    """Sharing policies: rules every grant and every request must pass (docs/policies.md)."""


def _rule_rows(rules: Any, file: str | None = None) -> list[dict[str, Any]]:
    return [
        {"id": r.id, "kind": r.kind, **({"file": file} if file else {}), "summary": r.summary()}
        for r in rules
    ]


@policy_group.command("list")
@json_option
def policy_list(as_json: bool) -> None:
    """List the policy files (templates and your own), which are in force, and their rules."""
    from pds.policy import PolicyError
    from pds.policyfiles.loader import available, read_file

    files, rules, broken = [], [], None
    for f in available(get_settings().home):
        try:
            found, problem = read_file(f.path, f.label), None
        except PolicyError as exc:
            found, problem = (), exc.message
            if f.enabled and broken is None:
                broken = exc
        files.append(
            {
                "name": f.name,
                "origin": f.origin,
                "enabled": f.enabled,
                "path": str(f.path),
                "title": f.title(),
                "rules": None if problem else len(found),
                "problem": problem,
            }
        )
        if f.enabled:
            rules += _rule_rows(found, f.name)
    if as_json:
        emit({"files": files, "rules": rules})
    else:
        click.echo("Policy files (on: in force):")
        for f in files:
            n = f["rules"]
            count = "broken" if n is None else f"{n} rule{'' if n == 1 else 's'}"
            about = f["title"] if f["origin"] == "template" else f["path"]
            click.echo(
                f"  {'on' if f['enabled'] else 'off':<4} {f['name']:<32} {f['origin']:<9} "
                f"{count:<9} {about}"
            )
        click.echo(f"Rules in force ({len(rules)}):")
        for r in rules:
            click.echo(f"  {r['id']:<36} {r['summary']}")
    if broken is not None:
        fail(broken.message, broken.hint)


@policy_group.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@json_option
def policy_check(file: Path, as_json: bool) -> None:
    """Validate a policy file (nothing changes); the first problem names the rule and field."""
    from pds.policy import PolicyError
    from pds.policyfiles.loader import read_file

    try:
        rules = read_file(file, str(file))
    except PolicyError as exc:
        fail(exc.message, "Fix the file and check it again; nothing was changed.")
    if as_json:
        emit({"file": str(file), "valid": True, "rules": _rule_rows(rules)})
        return
    click.echo(f"{file}: {len(rules)} rule{'' if len(rules) == 1 else 's'}, all valid")
    for r in rules:
        click.echo(f"  {r.id:<36} {r.kind:<17} {r.summary()}")


def _policy_switch(v: Vault, name: str, on: bool, as_json: bool) -> None:
    from pds.policyfiles.loader import switch

    f, changed = switch(get_settings().home, name, on, v.audit)
    if as_json:
        emit({"policy": name, "origin": f.origin, "enabled": on, "changed": changed})
    elif changed:
        click.echo(f'"{name}" ({f.origin}) is {"now" if on else "no longer"} in force.')
    else:
        click.echo(f'"{name}" ({f.origin}) was {"already" if on else "not"} in force.')


@policy_group.command("enable")
@click.argument("name")
@json_option
@with_vault
def policy_enable(v: Vault, name: str, as_json: bool) -> None:
    """Put a policy in force (checked first: a broken file is refused)."""
    _policy_switch(v, name, True, as_json)


@policy_group.command("disable")
@click.argument("name")
@json_option
@with_vault
def policy_disable(v: Vault, name: str, as_json: bool) -> None:
    """Take a policy out of force."""
    _policy_switch(v, name, False, as_json)


def _limits(c: Any, action: str) -> list[str]:
    out = []
    if c.earliest:
        out.append(f"no record dated before {c.earliest}")
    for category, names in c.redacted:
        out.append(f"{category} fields withheld: {', '.join(sorted(names))}")
    if c.max_expires_in is not None:
        days, rest = divmod(c.max_expires_in, 86400)
        longest = plural(days, "day") if not rest else plural(c.max_expires_in, "second")
        out.append(f"a grant lasts at most {longest}")
    if c.rate_limit is not None:
        out.append(f"at most {plural(c.rate_limit, 'request')} a day")
    if action == "aggregate":
        out.append(f"totals from fewer than {plural(c.min_bucket, 'record')} are withheld")
    return out


@policy_group.command("explain")
@click.option("--client", "client_id", required=True, help="The business's client id.")
@click.option("--category", required=True, callback=category_option, help="e.g. transactions.")
@click.option("--purpose", help="A DPV purpose, e.g. dpv:CreditChecking.")
@click.option(
    "--action",
    default="read",
    show_default=True,
    type=click.Choice(["read", "write", "aggregate"]),
)
@click.option("--field", "fields", multiple=True, help="Only these fields (repeatable).")
@click.option("--since", callback=day_option, is_eager=True, help="From this date (YYYY-MM-DD).")
@click.option("--until", callback=day_option, help="Up to this date (YYYY-MM-DD), inclusive.")
@click.option("--grant-days", type=WholeNumber(1, 36500), help="The grant length asked for.")
@json_option
def policy_explain(
    client_id: str,
    category: str,
    purpose: str | None,
    action: str,
    fields: tuple[str, ...],
    since: date | None,
    until: date | None,
    grant_days: int | None,
    as_json: bool,
) -> None:
    """What today's policies decide for a request, and why (nothing is logged or changed)."""
    from pds import clock
    from pds.policy import Request, decide, label
    from pds.policyfiles.loader import load_active

    rules, _ = load_active(get_settings().home)
    req = Request(
        client_id,
        action,
        (category,),
        fields=fields or None,
        purpose=purpose,
        since=since,
        until=until,
        expires_in=grant_days * 86400 if grant_days else None,
    )
    d = decide(req, rules, clock.utcnow())
    if as_json:
        emit(
            {
                "client": client_id,
                "action": action,
                "category": category,
                "purpose": purpose,
                "purpose_label": label(purpose),
                **d.as_dict(),
            }
        )
        return
    what = f"for {label(purpose)} ({purpose})" if purpose else "with no stated purpose"
    if not d.allowed:
        click.echo(f"Refused: {client_id} may not {action} {category} {what}.")
    else:
        limits = _limits(d.constraints, action)
        tail = ", within these limits:" if limits else "."
        click.echo(f"Allowed: {client_id} may {action} {category} {what}{tail}")
        for line in limits:
            click.echo(f"  {line}")
    click.echo(f"Why: {d.reason}")
