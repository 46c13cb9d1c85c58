"""What you tell businesses about yourself: ``pds profile show|set|unset|edit`` and
``pds intentions add|list|withdraw``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pds import jsonbody
from pds.cli.common import WholeNumber, emit, json_option, with_vault
from pds.errors import ValidationError
from pds.numbers import TooManyDigits

if TYPE_CHECKING:
    from pds.vault import Vault


def _value(name: str, value: Any) -> str:
    """One field as the owner reads it ("-": not set)."""
    if value is None:
        return "-"
    if name == "addresses":
        return "; ".join(_address(a) for a in value)
    if name == "marketing":
        return ", ".join(f"{ch}: {'yes' if on else 'no'}" for ch, on in value.items())
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def _address(a: dict[str, Any]) -> str:
    parts = [*a["lines"], *(a.get(k) for k in ("locality", "region", "postcode", "country"))]
    text = ", ".join(p for p in parts if p)
    return f"{a['label']}: {text}" if a.get("label") else text


def _changed(changed: list[str], as_json: bool) -> None:
    if as_json:
        emit({"changed": changed})
    elif changed:
        click.echo(f"Changed {', '.join(changed)}.")
    else:
        click.echo("No change.")


# -- pds profile ----------------------------------------------------------------------------


@click.group("profile")
def profile_group() -> None:
    """Your profile, told once: businesses with a grant read it and hear of changes."""


def _opts(f: Callable) -> Callable:
    """``--json`` and an open vault, as every command here takes them."""
    return json_option(with_vault(f))


@profile_group.command("show")
@_opts
def profile_show(v: Vault, as_json: bool) -> None:
    """Show every profile field ("-": not set)."""
    from pds.profile import profile

    data = profile.current(v)
    if as_json:
        emit(data)
        return
    for name in profile.FIELDS:
        click.echo(f"{name:<21}{_value(name, data[name])}")


@profile_group.command("set")
@click.argument("field")
@click.argument("value")
@_opts
def profile_set(v: Vault, field: str, value: str, as_json: bool) -> None:
    """Set FIELD to VALUE (JSON for addresses and marketing; commas separate needs)."""
    from pds.profile import profile

    profile.check_field(field)
    _changed(profile.set_field(v, field, profile.parse_value(field, value)), as_json)


@profile_group.command("unset")
@click.argument("field")
@_opts
def profile_unset(v: Vault, field: str, as_json: bool) -> None:
    """Clear FIELD."""
    from pds.profile import profile

    _changed(profile.unset_field(v, field), as_json)


@profile_group.command("edit")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A JSON object with the whole profile (fields left out are cleared).",
)
@_opts
def profile_edit(v: Vault, path: Path, as_json: bool) -> None:
    """Replace the whole profile with the JSON object in --file."""
    from pds.profile import profile

    try:
        doc = jsonbody.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
    except TooManyDigits as exc:
        raise ValidationError(f"{path}: {exc}") from None
    except ValueError as exc:
        raise ValidationError(f"{path} is not JSON: {exc}") from None
    _changed(profile.save(v, doc), as_json)


# -- pds intentions -------------------------------------------------------------------------


@click.group("intentions")
def intentions_group() -> None:
    """What you tell the market you intend; each is shown until its last day."""


@intentions_group.command("add")
@click.argument("text")
@click.option("--kind", default="other", show_default=True, help="buy, switch, move or other.")
@click.option("--from", "from_date", help="From this date (YYYY-MM-DD).")
@click.option("--until", "until_date", help="Until this date (YYYY-MM-DD).")
@click.option("--expires", "expires_at", required=True, help="Last day it is shown (YYYY-MM-DD).")
@_opts
def intentions_add(v: Vault, as_json: bool, **payload: Any) -> None:
    """Add an intention TEXT, e.g. "Looking for a new energy tariff"."""
    from pds.profile import intentions

    payload = {k: val for k, val in payload.items() if val is not None}
    rid, created = intentions.add(v, payload)
    if as_json:
        emit({"id": rid, "created": created})
    elif created:
        click.echo(f"Added intention {rid} (shown until {payload['expires_at']}).")
    else:
        click.echo(f"That intention is already there (id {rid}).")


@intentions_group.command("list")
@_opts
def intentions_list(v: Vault, as_json: bool) -> None:
    """List your live intentions (expired ones have been removed)."""
    from pds.profile import intentions

    items = intentions.listed(v)
    if as_json:
        emit(items)
        return
    if not items:
        click.echo("No intentions.")
    for i in items:
        click.echo(
            f"{i['id']:>4}  {i['kind']:<6}  from {i['from_date'] or '-'}  "
            f"until {i['until_date'] or '-'}  shown until {i['expires_at']}  {i['text']}"
        )


@intentions_group.command("withdraw")
@click.argument("record_id", type=WholeNumber(1))
@_opts
def intentions_withdraw(v: Vault, record_id: int, as_json: bool) -> None:
    """Remove an intention now."""
    from pds.profile import intentions

    intentions.withdraw(v, record_id)
    if as_json:
        emit({"id": record_id, "withdrawn": True})
    else:
        click.echo(f"Withdrew intention {record_id}.")
