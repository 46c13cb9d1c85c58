"""Your GDPR rights: ``pds requests ...`` (Art. 15 / Art. 17 requests to businesses),
``pds forget`` (crypto-shred a category), ``pds processing`` (the record of processing) and
``pds export`` (every record, Art. 20)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pds import clock
from pds.cli.common import (
    PdsGroup,
    WholeNumber,
    day_option,
    emit,
    fail,
    json_option,
    open_vault,
    with_vault,
)
from pds.errors import ValidationError
from pds.words import plural

if TYPE_CHECKING:
    from pds.rights.requests import RightsRequest
    from pds.vault import Vault


def _sent_on(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f'"{value}" is not a date like 2024-03-31') from None


def _line(r: RightsRequest, today: date) -> str:
    status = r.status + (" (overdue)" if r.overdue(today) else "")
    if r.status == "fulfilled" and r.fulfilled_by_source is not None:
        status += f" by import {r.fulfilled_by_source}"
    return (
        f"{r.id:>4}  {r.kind:<8} {r.business}  sent {r.sent_on.isoformat()}  "
        f"due {r.due_on.isoformat()}  {status}"
    )


def _summary(r: RightsRequest) -> str:
    return (
        f"Request {r.id}: {r.kind} to {r.business}, sent {r.sent_on.isoformat()}, "
        f"answer due by {r.due_on.isoformat()} ({r.status})."
    )


def _show(v: Vault, r: RightsRequest, as_json: bool) -> None:
    from pds.rights import requests as reqmod

    text = reqmod.letter(v, r)
    if as_json:
        emit({**r.as_dict(clock.today()), "letter": text})
        return
    click.echo(_summary(r))
    click.echo("")
    click.echo(text, nl=False)


@click.group(
    "requests",
    cls=PdsGroup,
    short_help="Ask businesses for your data (GDPR Art. 15) or its erasure.",
)
def requests_group() -> None:
    """Ask businesses for your data (GDPR Art. 15) or for its erasure (Art. 17)."""


@requests_group.command("new")
@click.argument("kind", type=click.Choice(("access", "erasure")))  # reqmod.KINDS
@click.argument("business")
@click.option("--client", "client_id", help="The business's client id, if it has one.")
@click.option("--grant", "grant_id", type=WholeNumber(1), help="For erasure: the revoked grant.")
@click.option("--sent-on", callback=_sent_on, help="The day you sent it (default today).")
@json_option
@with_vault
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
    from pds.rights import requests as reqmod

    r = reqmod.create(v, kind, business, client_id=client_id, grant_id=grant_id, sent_on=sent_on)
    _show(v, r, as_json)


@requests_group.command("list")
@click.option("--overdue", is_flag=True, help="Only open requests past their deadline.")
@json_option
@with_vault
def list_(v: Vault, overdue: bool, as_json: bool) -> None:
    """List requests with their status and deadline."""
    from pds.rights import requests as reqmod

    today = clock.today()
    found = reqmod.list_requests(v, overdue_only=overdue, today=today)
    if as_json:
        emit([r.as_dict(today) for r in found])
        return
    if not found:
        click.echo("No overdue requests." if overdue else "No requests yet: `pds requests new`.")
    for r in found:
        click.echo(_line(r, today))


@requests_group.command("show")
@click.argument("request_id", type=WholeNumber(1))
@json_option
@with_vault
def show(v: Vault, request_id: int, as_json: bool) -> None:
    """Print a request's letter again."""
    from pds.rights import requests as reqmod

    _show(v, reqmod.get(v, request_id), as_json)


@requests_group.command("fulfil")
@click.argument("request_id", type=WholeNumber(1))
@click.option(
    "--source", "source_id", type=WholeNumber(1), help="The import the business's file became."
)
@json_option
@with_vault
def fulfil(v: Vault, request_id: int, source_id: int | None, as_json: bool) -> None:
    """Mark a request fulfilled (an access request by the import of the file sent back)."""
    from pds.rights import requests as reqmod

    r = reqmod.fulfil(v, request_id, source_id)
    if as_json:
        emit(r.as_dict(clock.today()))
        return
    by = f" by import {r.fulfilled_by_source}" if r.fulfilled_by_source is not None else ""
    click.echo(f"Request {r.id} ({r.kind}, {r.business}) fulfilled{by}.")


@requests_group.command("withdraw")
@click.argument("request_id", type=WholeNumber(1))
@json_option
@with_vault
def withdraw(v: Vault, request_id: int, as_json: bool) -> None:
    """Withdraw a request you no longer pursue."""
    from pds.rights import requests as reqmod

    r = reqmod.withdraw(v, request_id)
    if as_json:
        emit(r.as_dict(clock.today()))
    else:
        click.echo(f"Request {r.id} ({r.kind}, {r.business}) withdrawn.")


def _confirm(category: str) -> None:
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
@json_option
@with_vault
def forget(v: Vault, category: str, yes: bool, as_json: bool) -> None:
    """Forget CATEGORY for good: destroy its key, then delete its records (crypto-shred)."""
    from pds.rights import forget as forgetmod

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


# -- the record of processing and the full export ----------------------------------------


@click.command("processing")
@click.argument("client_id", required=False)
@json_option
@with_vault
def processing(v: Vault, client_id: str | None, as_json: bool) -> None:
    """The record of processing of one business (or a line per business)."""
    from pds.rights import processing as procmod

    if client_id is None:
        rows = procmod.overview(v)
        if as_json:
            emit(rows)
            return
        if not rows:
            click.echo("No business has been registered yet (`pds clients add`).")
        for r in rows:
            click.echo(
                f"{r['client_id']}  {r['name']}  grants: {r['grants']} "
                f"({r['active_grants']} active)  last access: {r['last_access_at'] or 'never'}"
            )
        return
    doc = procmod.record(v, client_id)
    if as_json:
        emit(doc)
        return
    _print_record(doc)


@click.command("export")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="The .zip to write (or a folder for a dated name); default: here.",
)
@click.option(
    "--sqlite",
    "sqlite_file",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="Write an SQLite file to explore (e.g. with Datasette) instead: NOT encrypted.",
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="With --sqlite: only this category (repeatable); default: all that hold records.",
)
@click.option(
    "--since",
    callback=day_option,
    is_eager=True,
    help="With --sqlite: from this date (YYYY-MM-DD).",
)
@click.option(
    "--until", callback=day_option, help="With --sqlite: up to this date (YYYY-MM-DD), inclusive."
)
@click.option("--force", is_flag=True, help="With --sqlite: replace FILE if it exists.")
@json_option
def export(
    out: Path | None,
    sqlite_file: Path | None,
    categories: tuple[str, ...],
    since: date | None,
    until: date | None,
    force: bool,
    as_json: bool,
) -> None:
    """Export every record as a zip of JSON, JSON Schemas and CSV (GDPR Art. 20), or with
    --sqlite as an SQLite file to explore with Datasette."""
    # The options are checked before the vault asks for its passphrase.
    if sqlite_file is not None and out is not None:
        raise click.UsageError("--out and --sqlite write different files; give one of them")
    sqlite_only = (
        ("--category", categories),
        ("--since", since),
        ("--until", until),
        ("--force", force),
    )
    given = [name for name, value in sqlite_only if value]
    if sqlite_file is None and given:
        raise click.UsageError(f"{given[0]} goes with --sqlite FILE")
    with open_vault() as v:
        if sqlite_file is not None:
            _export_sqlite(v, sqlite_file, categories, since, until, force, as_json)
        else:
            _export_zip(v, out, as_json)


def _export_zip(v: Vault, out: Path | None, as_json: bool) -> None:
    from pds.rights import export as exportmod

    path, found = exportmod.export_to(v, out)
    if as_json:
        emit({"export": str(path), "records": sum(found.values()), "categories": found})
    else:
        click.echo(f"Exported {plural(sum(found.values()), 'record')} to {path}.")


def _export_sqlite(
    v: Vault,
    target: Path,
    categories: tuple[str, ...],
    since: date | None,
    until: date | None,
    force: bool,
    as_json: bool,
) -> None:
    from pds.rights import sqlite_export

    done = sqlite_export.export_sqlite(
        v, target, categories=categories, since=since, until=until, force=force
    )
    if as_json:
        emit(done.as_dict())
    else:
        click.echo(f"Exported {plural(done.records, 'record')} to {done.path}.")
        for name, count in done.tables.items():
            click.echo(f"  {name}: {plural(count, 'row')}")
        click.echo(f"Explore it with: datasette {done.path}")
    click.echo("Warning: " + sqlite_export.WARNING.format(path=done.path), err=True)


def _print_record(doc: dict) -> None:
    c = doc["controller"]
    click.echo(f"Record of processing: {c['name']} ({c['client_id']})")
    purposes = ", ".join(f"{p['purpose']} ({p['label']})" for p in doc["purposes"])
    click.echo(f"  purposes:   {purposes or 'none stated'}")
    for name, cat in doc["categories"].items():
        fields = ", ".join(cat["fields"]) if cat["fields"] is not None else "all fields"
        click.echo(f"  {name}: {'/'.join(cat['actions'])} ({fields})")
    click.echo(f"  recipients: {', '.join(r['name'] for r in doc['recipients'])}")
    for g in doc["retention"]:
        click.echo(f"  grant {g['grant_id']}: {g['status']}, until {g['expires_at']}")
    a = doc["access"]
    click.echo(
        f"  access:     {plural(a['calls_allowed'], 'call')} allowed, "
        f"{a['calls_refused']} refused, "
        f"first {a['first_at'] or 'never'}, last {a['last_at'] or 'never'}"
    )


# -- `pds import --fulfils N` ---------------------------------------------------------------


def check_fulfils(v: Vault, request_id: int, files: tuple[Any, ...]) -> None:
    """Refuse ``--fulfils`` before anything is imported: one file, an open access request."""
    from pds.rights import requests as reqmod

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
    from pds.rights import requests as reqmod

    source_id = results[0]["source_id"] if results else None
    r = reqmod.fulfil(v, request_id, source_id, by_import=True)
    if not as_json:
        link = (
            f"by import {source_id}"
            if source_id is not None
            else "(the file added nothing new, so no import is linked)"
        )
        click.echo(f"Request {r.id} ({r.business}) fulfilled {link}.")
    return {"fulfilled": r.as_dict(clock.today())}
