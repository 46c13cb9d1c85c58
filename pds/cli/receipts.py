"""Signed consent receipts: ``pds receipts show|verify|key``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pds.cli.common import WholeNumber, emit, json_option, open_vault, with_vault

if TYPE_CHECKING:
    from pds.vault import Vault


def _read_receipt(path: Path) -> str:
    """The JWS in a file: bare, or the JSON ``{"receipt": ...}`` the API answers.

    Read as bytes (no newline mapping). A compact JWS holds no whitespace, so only the ASCII
    whitespace around it (a final newline, CRLF) is dropped; a byte-order mark is refused.
    """
    from pds.oauth import receipts as rmod

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise rmod.ReceiptError(f"cannot read {path}: {exc.strerror}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        raise rmod.ReceiptError(
            f"{path} starts with a byte-order mark; save the receipt as it was issued "
            "(UTF-8 without BOM)"
        )
    try:
        text = data.decode("utf-8").strip(" \t\r\n")
    except UnicodeDecodeError:
        raise rmod.ReceiptError(f"{path} is not UTF-8 text: it is not a receipt") from None
    if text.startswith("{"):
        try:
            text = str(json.loads(text)["receipt"])
        except (ValueError, KeyError, TypeError):
            raise rmod.ReceiptError(f'{path} is JSON without a "receipt" string') from None
    return text


@click.group("receipts")
def receipts_group() -> None:
    """Signed consent receipts: one per grant, one more per narrowing, one when it ends."""


@receipts_group.command("show")
@click.argument("grant_id", type=WholeNumber(1))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write it here.")
@json_option
@with_vault
def receipts_show(v: Vault, grant_id: int, out: Path | None, as_json: bool) -> None:
    """Print (or save) the newest receipt of GRANT_ID as a compact JWS."""
    from pds.oauth import receipts as rmod

    found = rmod.latest(v.conn, grant_id)
    if out is not None:
        out.write_text(found.jws + "\n", encoding="utf-8")
    if as_json:
        emit(
            {
                "grant_id": grant_id,
                "receipt_id": found.receipt_id,
                "kind": found.kind,
                "issued_at": found.created_at,
                "receipt": found.jws,
                "file": str(out) if out else None,
            }
        )
    elif out is not None:
        click.echo(f"Wrote receipt {found.receipt_id} of grant {grant_id} to {out}.")
    else:
        click.echo(found.jws)


@receipts_group.command("verify")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--key",
    "key_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A JWK or verifier key file (default: this vault's key).",
)
@json_option
def receipts_verify(path: Path, key_file: Path | None, as_json: bool) -> None:
    """Check a receipt's signature and claims; exit 0 when it is valid."""
    from pds.oauth import receipts as rmod

    token = _read_receipt(path)
    if key_file is not None:
        try:
            key = rmod.load_key(key_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeError) as exc:
            raise rmod.ReceiptError(f"cannot read {key_file}: {exc}") from None
        trusted = f"the key in {key_file}"
    else:  # never the key the receipt carries: anyone can sign with their own key
        with open_vault() as v:
            key = rmod.public_key(rmod.signing_jwk(v))
        trusted = "this vault's key"
    info = rmod.summary(rmod.verify(token, key))
    info["key"] = {"kid": key.thumbprint(), "trusted": trusted}
    if as_json:
        emit(info)
        return
    click.echo(f"Valid consent receipt {info['receipt_id']} (grant {info['grant_id']}).")
    click.echo(f"  controller:  {info['controller']}")
    if info["withdrawn_at"] is None:
        click.echo(f"  given at:    {info['consent_timestamp']}")
    else:  # a withdraw receipt: consent ended then
        click.echo(f"  withdrawn:   {info['withdrawn_at']} ({info['withdrawn_reason']})")
    click.echo(f"  purpose:     {info['purpose']}")
    click.echo(f"  data:        {'; '.join(info['pii_categories'])}")
    click.echo(f"  termination: {info['termination']}")
    click.echo(f"  checked with {trusted} ({info['key']['kid']})")


@receipts_group.command("key")
@with_vault
def receipts_key(v: Vault) -> None:
    """Print the public JWK that verifies this vault's receipts."""
    from pds.oauth import receipts as rmod

    emit(rmod.public_jwk(rmod.signing_jwk(v)))
