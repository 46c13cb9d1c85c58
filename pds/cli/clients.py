"""Businesses that may ask for your data: ``pds clients add|list|remove``.

``remove`` revokes the business's grants and ends its tokens and webhook subscriptions; it
asks first, as other destructive commands do, unless ``--yes``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from pds.cli.common import emit, fail, json_option, with_vault
from pds.words import plural

if TYPE_CHECKING:
    from pds.oauth.admin import Removal
    from pds.vault import Vault


@click.group("clients")
def clients_group() -> None:
    """Businesses that may ask for your data (OAuth clients)."""


@clients_group.command("add")
@click.option("--name", required=True, help="The business's name, as the consent page shows it.")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    required=True,
    help="Where it receives codes (exact URL; https, or http on loopback). Repeatable.",
)
@click.option("--public", is_flag=True, help="It cannot keep a secret (a phone or browser app).")
@click.option("--email", default="", help="Its contact email, as its consent receipts name it.")
@click.option("--address", default="", help="Its postal address, on one line.")
@click.option("--country", default="", help="The address's country (ISO 3166-1 code: GB).")
@click.option("--phone", default="", help="Its phone number (+44 113 496 0000).")
@json_option
@with_vault
def clients_add(
    v: Vault,
    name: str,
    redirect_uris: tuple[str, ...],
    public: bool,
    email: str,
    address: str,
    country: str,
    phone: str,
    as_json: bool,
) -> None:
    """Register a business; a confidential client's secret is shown once. Its email,
    address and phone go into its consent receipts (left out, they are empty there)."""
    from pds.oauth import admin
    from pds.oauth.controller import Controller

    contact = Controller(
        contacts=(email,) if email else (), address=address, country=country, phone=phone
    )
    client, secret = admin.add_client(v, name, list(redirect_uris), public=public, contact=contact)
    if as_json:
        emit({"client_id": client.client_id, "client_secret": secret})
        return
    kind = "public" if public else "confidential"
    click.echo(f'Added client "{client.name}" ({kind}).')
    click.echo(f"client_id:     {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}")
        click.echo("The secret is shown only now: pds keeps only its hash.")


@clients_group.command("list")
@json_option
@with_vault
def clients_list(v: Vault, as_json: bool) -> None:
    """List the registered businesses."""
    from pds.oauth import admin

    items = [c.as_dict() for c in admin.list_clients(v)]
    if as_json:
        emit(items)
        return
    if not items:
        click.echo("No clients yet: add one with `pds clients add`.")
    for c in items:
        flags = ("public" if c["public"] else "confidential") + (
            "" if c["verified"] else ", unverified"
        )
        flags += f", removed {c['removed_at']}" if c["removed_at"] else ""
        click.echo(f"{c['client_id']}  {c['name']} ({flags})  {' '.join(c['redirect_uris'])}")


def _what(removal: Removal, done: bool = False) -> str:
    grants = plural(len(removal.grants), "grant")
    subs = plural(removal.subscriptions, "webhook subscription")
    if done:
        return f"{grants} revoked, {subs} stopped"
    return f"revokes {grants} (its tokens stop working) and stops {subs}"


def _interactive() -> bool:
    return sys.stdin.isatty()


@clients_group.command("remove")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Remove it without asking.")
@json_option
@with_vault
def clients_remove(v: Vault, client_id: str, yes: bool, as_json: bool) -> None:
    """Remove a business: its grants are revoked, its tokens and webhooks stop."""
    from pds.oauth import admin

    preview = admin.removal_preview(v, client_id)
    if not yes:
        what = f'"{preview.client.name}" ({client_id})'
        if not _interactive():
            fail(f"removing {what} {_what(preview)}", "Pass --yes to remove it.")
        click.confirm(f"Remove {what}? This {_what(preview)}.", abort=True, err=True)
    done = admin.remove_client(v, client_id)
    if as_json:
        emit(
            {
                "client_id": client_id,
                "removed_at": done.client.removed_at,
                "grants_revoked": done.grants,
                "subscriptions_stopped": done.subscriptions,
            }
        )
    else:
        click.echo(f'Removed "{done.client.name}" ({client_id}): {_what(done, True)}.')
