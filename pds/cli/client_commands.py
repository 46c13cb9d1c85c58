"""``pds clients remove``: remove a business (its grants revoked, its tokens and webhook
subscriptions ended); asks first, as other destructive commands do, unless ``--yes``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from pds.words import plural

if TYPE_CHECKING:
    from pds.oauth.admin import Removal
    from pds.vault import Vault


def _what(removal: Removal, done: bool = False) -> str:
    grants = plural(len(removal.grants), "grant")
    subs = plural(removal.subscriptions, "webhook subscription")
    if done:
        return f"{grants} revoked, {subs} stopped"
    return f"revokes {grants} (its tokens stop working) and stops {subs}"


def _interactive() -> bool:
    return sys.stdin.isatty()


def register(clients: click.Group) -> None:
    """Add ``remove`` to the ``pds clients`` group."""
    from pds.cli import emit, fail, json_option, with_vault

    @clients.command("remove")
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
