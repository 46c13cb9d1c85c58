"""The access log: ``pds audit tail|summary|checkpoint|key|export|verify|invite``."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

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
from pds.settings import DEFAULT_ISSUER
from pds.words import plural

if TYPE_CHECKING:
    from pds.vault import Vault


@click.group("audit", cls=PdsGroup)
def audit_group() -> None:
    """The access log: who read what, when, under which grant; signed and verifiable."""


def _entry_line(index: int, text: str) -> str:
    e = json.loads(text)
    what = " ".join(
        f"{k}={e[k]}" for k in ("client", "grant", "category", "count", "purpose") if k in e
    )
    return f"{index:>7}  {e['time']}  {e['actor']:<20}  {e['action']:<18} {e['decision']:<8} {what}"


@audit_group.command("tail")
@click.option("-n", "count", default=20, show_default=True, type=WholeNumber(1))
@json_option
@with_vault
def audit_tail(v: Vault, count: int, as_json: bool) -> None:
    """Show the newest entries of the access log."""
    rows = v.log.tail(count)
    if as_json:
        emit([{"index": i, **json.loads(text)} for i, text in rows])
        return
    if not rows:
        click.echo("The access log is empty.")
    for index, text in rows:
        click.echo(_entry_line(index, text))


@audit_group.command("summary")
@click.option("--since", callback=day_option, help="From this date (YYYY-MM-DD).")
@click.option("--until", callback=day_option, help="Up to this date (YYYY-MM-DD), inclusive.")
@json_option
@with_vault
def audit_summary(v: Vault, since: date | None, until: date | None, as_json: bool) -> None:
    """Who accessed what: entries and records per day, client, category and decision."""
    rows = v.log.summary(
        since=since.isoformat() if since else None,
        until=(until + timedelta(days=1)).isoformat() if until else None,
    )
    if as_json:
        emit(rows)
        return
    if not rows:
        click.echo("No access in that period.")
        return
    click.echo(
        f"{'day':<10}  {'client':<24}  {'category':<12}  {'action':<18} {'decision':<8}"
        f" {'entries':>7} {'records':>8}"
    )
    for r in rows:
        click.echo(
            f"{r['day']:<10}  {r['client'] or '(owner)':<24}  {r['category'] or '-':<12}  "
            f"{r['action']:<18} {r['decision']:<8} {r['entries']:>7} {r['records']:>8}"
        )


@audit_group.command("checkpoint")
@json_option
@with_vault
def audit_checkpoint(v: Vault, as_json: bool) -> None:
    """Sign a checkpoint of the log now (if it grew) and print it, as a C2SP signed note."""
    cp = v.log.checkpoint()
    if as_json:
        emit({"size": cp.size, "created_at": cp.created_at, "checkpoint": cp.note})
    else:
        click.echo(cp.note, nl=False)


@audit_group.command("key")
@with_vault
def audit_key(v: Vault) -> None:
    """Print the log's verifier key (give it to auditors: `pds audit verify --key`)."""
    click.echo(v.log_verifier_key())


@audit_group.command("export")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@json_option
@with_vault
def audit_export(v: Vault, path: Path, as_json: bool) -> None:
    """Write the whole log to PATH for an auditor: entries, signed checkpoints, public key."""
    from pds.audit.verify import write_bundle

    if path.exists():
        fail(f"{path} already exists", "Choose a new file name; pds never overwrites.")
    v.audit("audit.export", actor="owner")
    v.log.checkpoint()
    try:
        with path.open("xb") as out:
            n = write_bundle(out, v.log_source())
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
    if as_json:
        emit({"bundle": str(path), "entries": n})
    else:
        click.echo(f"Wrote {n} log entries and their signed checkpoints to {path}.")


@audit_group.command("verify")
@click.option(
    "--bundle", type=click.Path(path_type=Path, dir_okay=False), help="An exported log bundle."
)
@click.option("--url", help="A running vault's base URL (with an auditor token).")
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File holding the auditor's access token (or set PDS_AUDIT_TOKEN).",
)
@click.option("--key", "key", help="The verifier key to trust (from `pds audit key`).")
@click.option(
    "--trusted-checkpoint",
    "trusted",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A checkpoint you saved earlier; the log must extend it. Repeatable.",
)
@click.option(
    "--save-checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    help="After success, save the newest checkpoint here (use it as --trusted-checkpoint).",
)
@json_option
def audit_verify(
    bundle: Path | None,
    url: str | None,
    token_file: Path | None,
    key: str | None,
    trusted: tuple[Path, ...],
    save_checkpoint: Path | None,
    as_json: bool,
) -> None:
    """Check the whole log offline: every entry, every signature, every saved checkpoint.

    Reads the vault in PDS_HOME (with its passphrase), or an exported --bundle, or a running
    vault's --url with an auditor token. Exit status 0 only when everything holds.
    """
    from pds.audit import verify as verifymod

    if bundle and url:
        fail("give either --bundle or --url, not both")
    notes: list[bytes] = []
    for p in trusted:  # as bytes: a signed note is checked byte for byte (no newline mapping)
        try:
            notes.append(p.read_bytes())
        except OSError as exc:
            fail(f"cannot read the trusted checkpoint {p}: {exc.strerror}")
    if key and Path(key).is_file():
        key = Path(key).read_text(encoding="utf-8").strip()
    if bundle:
        report = verifymod.verify(
            verifymod.BundleSource(bundle), trusted=notes, key=key, require_signed_end=True
        )
    elif url:
        from pds.audit.remote import RemoteSource, read_token

        source = RemoteSource(url, read_token(token_file))
        report = verifymod.verify(source, trusted=notes, key=key)
    else:
        with open_vault() as v:
            report = verifymod.verify(v.log_source(), trusted=notes, key=key)
    if report.ok and save_checkpoint and report.newest_note:
        save_checkpoint.write_bytes(report.newest_note.encode("utf-8"))
    if as_json:
        emit(report.as_dict())
    else:
        for line in verifymod.describe(report):
            click.echo(line)
    if not report.ok:
        first = report.first_bad_index
        where = f"; first bad entry: {first}" if first is not None else ""
        fail(f"the access log did not verify ({plural(len(report.problems), 'problem')}{where})")


@audit_group.command("invite")
@click.argument("name")
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=WholeNumber(1, 365),
    help="How long the auditor may read the log.",
)
@click.option(
    "--url",
    "base_url",
    help="The vault's address as the auditor reaches it (default: PDS_ISSUER, else "
    f"{DEFAULT_ISSUER}).",
)
@json_option
@with_vault
def audit_invite(v: Vault, name: str, days: int, base_url: str | None, as_json: bool) -> None:
    """Let an auditor read the access log, with no OAuth on their side: a one-time sign-in
    link for the auditor's page and a token for scripts, each shown once."""
    from pds import clock
    from pds.oauth.invite import invite_auditor

    base = (base_url or v.settings.issuer or DEFAULT_ISSUER).rstrip("/")
    if not base.startswith(("https://", "http://")):
        fail(f"{base} is not an http(s) address", "Pass --url https://your-vault.example.")
    done = invite_auditor(v, name, days)
    if not base_url and not v.settings.issuer:
        click.echo(
            f"Note: the link uses {DEFAULT_ISSUER} (PDS_ISSUER is not set); pass --url with "
            "the address the auditor reaches",
            err=True,
        )
    link = f"{base}/auditor/welcome#{done.link_secret}"
    until, link_until = clock.iso(done.grant.expires_at), clock.iso(done.link_expires_at)
    if as_json:
        emit(
            {
                "name": done.client.name,
                "client_id": done.client.client_id,
                "grant_id": done.grant.id,
                "expires_at": until,
                "link": link,
                "link_expires_at": link_until,
                "token": done.token,
            }
        )
        return
    click.echo(
        f'Invited "{done.client.name}" to read the access log until {until} '
        f"(grant {done.grant.id}, client {done.client.client_id})."
    )
    click.echo(f"Sign-in link for the auditor's page (works once, until {link_until}):")
    click.echo(f"  {link}")
    click.echo("Token for scripts (audit:read; `pds audit verify --url` reads it from a")
    click.echo("--token-file or PDS_AUDIT_TOKEN):")
    click.echo(f"  {done.token}")
    click.echo("Both are shown only now: pds keeps only their hashes. Send them privately.")
    click.echo(f"Revoke with `pds grants revoke {done.grant.id}`.")
