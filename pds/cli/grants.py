"""What you let businesses see, and for how long: ``pds grants list|revoke``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pds.cli.common import WholeNumber, emit, json_option, with_vault

if TYPE_CHECKING:
    from pds.vault import Vault


@click.group("grants")
def grants_group() -> None:
    """What you let businesses see, and for how long."""


@grants_group.command("list")
@click.option("--all", "include_all", is_flag=True, help="Also revoked and expired grants.")
@json_option
@with_vault
def grants_list(v: Vault, include_all: bool, as_json: bool) -> None:
    """List grants (active ones unless --all)."""
    from pds.oauth import admin

    names = {c.client_id: c.name for c in admin.list_clients(v)}
    items = [g.as_dict() for g in admin.list_grants(v, include_inactive=include_all)]
    if as_json:
        emit(items)
        return
    if not items:
        click.echo("No active grants.")
    for g in items:
        status = f"revoked {g['revoked_at']}" if g["revoked_at"] else f"until {g['expires_at']}"
        click.echo(
            f"{g['id']:>4}  {names.get(g['client_id'], g['client_id'])}  {g['scope']}  "
            f"purpose: {g['purpose'] or 'none stated'}  {status}"
        )


@grants_group.command("revoke")
@click.argument("grant_id", type=WholeNumber(1))
@click.option("--request-erasure", is_flag=True, help="Also start an Art. 17 erasure request.")
@json_option
@with_vault
def grants_revoke(v: Vault, grant_id: int, request_erasure: bool, as_json: bool) -> None:
    """Revoke a grant: its tokens stop working on their next call."""
    from pds.oauth import admin
    from pds.rights.requests import erasure_for_grant

    g = admin.revoke_grant(v, grant_id)
    erasure = erasure_for_grant(v, g.id) if request_erasure else None
    if as_json:
        extra = {"erasure_request": erasure.id} if erasure else {}
        emit({"id": g.id, "revoked_at": g.revoked_at, **extra})
    else:
        click.echo(f"Revoked grant {g.id}; its tokens no longer work.")
        if erasure:
            click.echo(f"Erasure request {erasure.id} started: `pds requests show {erasure.id}`.")
