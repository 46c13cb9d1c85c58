"""The ``pds requests`` commands (Art. 15 / Art. 17 requests to businesses) and ``pds forget``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pds.cli.types import WholeNumber
from pds.lazy import lazy_module

forgetmod = lazy_module("pds.rights.forget")
reqmod = lazy_module("pds.rights.requests")

if TYPE_CHECKING:
    from pds.vault import Vault


def _sent_on(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f'"{value}" is not a date like 2024-03-31') from None


def _line(r: reqmod.RightsRequest, today: date) -> str:
    status = r.status + (" (overdue)" if r.overdue(today) else "")
    if r.status == "fulfilled" and r.fulfilled_by_source is not None:
        status += f" by import {r.fulfilled_by_source}"
    return (
        f"{r.id:>4}  {r.kind:<8} {r.business}  sent {r.sent_on.isoformat()}  "
        f"due {r.due_on.isoformat()}  {status}"
    )


def _summary(r: reqmod.RightsRequest) -> str:
    return (
        f"Request {r.id}: {r.kind} to {r.business}, sent {r.sent_on.isoformat()}, "
        f"answer due by {r.due_on.isoformat()} ({r.status})."
    )


def _show(v: Vault, r: reqmod.RightsRequest, as_json: bool) -> None:
    from pds.cli import emit

    text = reqmod.letter(v, r)
    if as_json:
        emit({**r.as_dict(date.today()), "letter": text})
        return
    click.echo(_summary(r))
    click.echo("")
    click.echo(text, nl=False)


def register(cli: click.Group) -> None:
    """Add ``pds requests ...`` and ``pds forget`` to the ``pds`` group."""
    from pds.cli import PdsGroup

    group = PdsGroup("requests", help=requests_.__doc__)
    for command in (new, list_, show, fulfil, withdraw):
        group.add_command(command)
    cli.add_command(group)
    cli.add_command(forget)


def requests_() -> None:
    """Ask businesses for your data (GDPR Art. 15) or for its erasure (Art. 17)."""


def _with_vault(f: Callable) -> Callable:
    """``pds.cli.with_vault``, looked up when the command runs (pds.cli imports this module)."""

    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pds.cli import with_vault

        return with_vault(f)(*args, **kwargs)

    return wrapper


_json = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@click.command("new")
@click.argument("kind", type=click.Choice(("access", "erasure")))  # reqmod.KINDS
@click.argument("business")
@click.option("--client", "client_id", help="The business's client id, if it has one.")
@click.option("--grant", "grant_id", type=WholeNumber(1), help="For erasure: the revoked grant.")
@click.option("--sent-on", callback=_sent_on, help="The day you sent it (default today).")
@_json
@_with_vault
def new(
    v: Vault,
    kind: str,
    business: str,
    client_id: str | None,
    grant_id: int | None,
    sent_on: date | None,
    as_json: bool,
) -> None:
    """Start a request to BUSINESS and print the letter to send."""
    r = reqmod.create(v, kind, business, client_id=client_id, grant_id=grant_id, sent_on=sent_on)
    _show(v, r, as_json)


@click.command("list")
@click.option("--overdue", is_flag=True, help="Only open requests past their deadline.")
@_json
@_with_vault
def list_(v: Vault, overdue: bool, as_json: bool) -> None:
    """List requests with their status and deadline."""
    from pds.cli import emit

    today = date.today()
    found = reqmod.list_requests(v, overdue_only=overdue, today=today)
    if as_json:
        emit([r.as_dict(today) for r in found])
        return
    if not found:
        click.echo("No overdue requests." if overdue else "No requests yet: `pds requests new`.")
    for r in found:
        click.echo(_line(r, today))


@click.command("show")
@click.argument("request_id", type=WholeNumber(1))
@_json
@_with_vault
def show(v: Vault, request_id: int, as_json: bool) -> None:
    """Print a request's letter again."""
    _show(v, reqmod.get(v, request_id), as_json)


@click.command("fulfil")
@click.argument("request_id", type=WholeNumber(1))
@click.option(
    "--source", "source_id", type=WholeNumber(1), help="The import the business's file became."
)
@_json
@_with_vault
def fulfil(v: Vault, request_id: int, source_id: int | None, as_json: bool) -> None:
    """Mark a request fulfilled (an access request by the import of the file sent back)."""
    from pds.cli import emit

    r = reqmod.fulfil(v, request_id, source_id)
    if as_json:
        emit(r.as_dict(date.today()))
        return
    by = f" by import {r.fulfilled_by_source}" if r.fulfilled_by_source is not None else ""
    click.echo(f"Request {r.id} ({r.kind}, {r.business}) fulfilled{by}.")


@click.command("withdraw")
@click.argument("request_id", type=WholeNumber(1))
@_json
@_with_vault
def withdraw(v: Vault, request_id: int, as_json: bool) -> None:
    """Withdraw a request you no longer pursue."""
    from pds.cli import emit

    r = reqmod.withdraw(v, request_id)
    if as_json:
        emit(r.as_dict(date.today()))
    else:
        click.echo(f"Request {r.id} ({r.kind}, {r.business}) withdrawn.")


def _confirm(category: str) -> None:
    from pds.cli import fail

    try:
        typed = click.prompt(
            f'This destroys "{category}" for good. Type its name again to confirm', err=True
        )
    except click.Abort:
        fail("no confirmation given; nothing was forgotten", "Type the name, or pass --yes.")
    if typed.strip() != category:
        fail(f'"{typed.strip()}" is not "{category}"; nothing was forgotten')


@click.command("forget")
@click.argument("category")
@click.option("--yes", is_flag=True, help="Do not ask for the name again.")
@_json
@_with_vault
def forget(v: Vault, category: str, yes: bool, as_json: bool) -> None:
    """Forget CATEGORY for good: destroy its key, then delete its records (crypto-shred)."""
    from pds.cli import emit

    forgetmod.check_category(category)
    if not yes:
        _confirm(category)
    done = forgetmod.forget(v, category)
    if as_json:
        emit(done.as_dict())
        return
    click.echo(done.said)
    click.echo(forgetmod.OLD_BACKUPS)
    if not done.checkpointed:
        click.echo(
            "Warning: another process has the vault open; the freed pages leave the "
            "write-ahead log at its next checkpoint.",
            err=True,
        )


# -- `pds import --fulfils N` ---------------------------------------------------------------


def check_fulfils(v: Vault, request_id: int, files: tuple[Any, ...]) -> None:
    """Refuse ``--fulfils`` before anything is imported: one file, an open access request."""
    from pds.errors import ValidationError

    if len(files) != 1 or Path(files[0]).is_dir():
        given = f"{len(files)} were given" if len(files) != 1 else f"{files[0]} is a folder"
        raise ValidationError(
            f"--fulfils links one file to request {request_id}, but {given}",
            hint="Import the business's file on its own; import the others separately.",
        )
    reqmod.check_open(v, request_id, by_import=True)


def fulfil_by_import(
    v: Vault, request_id: int, results: list[dict[str, Any]], as_json: bool
) -> dict[str, Any]:
    """After a successful import: mark the request fulfilled by it; the JSON to add."""
    source_id = results[0]["source_id"] if results else None
    r = reqmod.fulfil(v, request_id, source_id, by_import=True)
    if not as_json:
        link = (
            f"by import {source_id}"
            if source_id is not None
            else "(the file added nothing new, so no import is linked)"
        )
        click.echo(f"Request {r.id} ({r.business}) fulfilled {link}.")
    return {"fulfilled": r.as_dict(date.today())}
