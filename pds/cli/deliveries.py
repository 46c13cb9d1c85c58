"""Change notifications sent to businesses' webhooks: ``pds deliveries run|list``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pds.cli.common import WholeNumber, emit, json_option, with_vault

if TYPE_CHECKING:
    from pds.vault import Vault


@click.group("deliveries")
def deliveries_group() -> None:
    """Change notifications sent to businesses' webhooks."""


@deliveries_group.command("run")
@json_option
@with_vault
def deliveries_run(v: Vault, as_json: bool) -> None:
    """Send every notification that is due now (one pass)."""
    from pds.webhooks import delivery

    counts = delivery.run_once(v)
    if as_json:
        emit(counts)
    else:
        click.echo(
            f"Delivered {counts['delivered']}, failed {counts['failed']}, "
            f"dropped {counts['dropped']}."
        )


@deliveries_group.command("list")
@click.option("-n", "limit", default=50, show_default=True, type=WholeNumber(1))
@json_option
@with_vault
def deliveries_list(v: Vault, limit: int, as_json: bool) -> None:
    """The delivery log, newest first: one line per attempt."""
    from pds.webhooks import delivery

    rows = delivery.log_rows(v, limit)
    if as_json:
        emit(rows)
        return
    if not rows:
        click.echo("No deliveries.")
    for r in rows:
        click.echo(
            f"{r['id']:>4}  {r['subscription_id']}  {_change(r)}  attempt {r['attempt']}  "
            f"{r['status']}  {r['last_error'] or ''}".rstrip()
        )


def _change(row: dict) -> str:
    """What an attempt sends: a profile change, or a change of records."""
    if row["seq"] is not None:
        return f"change {row['seq']}"
    return f"records change {row['change_seq']}"
