"""The vault itself: ``pds init``, ``status``, ``passphrase``, ``backup``, ``restore``,
``upgrade`` and ``demo``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pds.cli.common import (
    WholeNumber,
    ask_passphrase,
    emit,
    fail,
    get_settings,
    json_option,
    say_upgraded,
    with_vault,
)
from pds.words import plural

if TYPE_CHECKING:
    from pds.vault import Vault


def allow_weak_option(f: Callable) -> Callable:
    return click.option(
        "--allow-weak-passphrase",
        "allow_weak",
        is_flag=True,
        help="Accept a passphrase zxcvbn rates weak (a throwaway vault: tests, a demo).",
    )(f)


@click.command()
@allow_weak_option
@json_option
def init(allow_weak: bool, as_json: bool) -> None:
    """Create a new, empty, encrypted vault."""
    settings = get_settings()
    from pds import vault as vaultmod
    from pds.vault.passphrase import require_strong

    if vaultmod.exists(settings):
        fail(f"a vault already exists at {settings.home}", "Use it, or choose another PDS_HOME.")
    passphrase = ask_passphrase(settings, "Choose a passphrase", confirm=True)
    require_strong(passphrase, allow_weak=allow_weak)
    with vaultmod.Vault.create(settings, passphrase) as v:
        status = v.status()
    if as_json:
        emit({"home": status["home"], "created": True})
    else:
        click.echo(f"Created an encrypted vault at {status['home']}.")
        click.echo("Keep the passphrase safe: without it the data cannot be read by anyone.")


@click.command()
@json_option
@with_vault
def status(v: Vault, as_json: bool) -> None:
    """Show what the vault holds."""
    st = v.status()
    if as_json:
        emit(st)
        return
    click.echo(f"Vault:      {st['home']} (schema {st['schema_version']})")
    click.echo(f"Records:    {st['records']} from {plural(st['sources'], 'imported file')}")
    cats = st["categories"]  # columns as wide as their longest entry: never run together
    name_w = max((len(c) for c in cats), default=0)
    count_w = max((len(str(n)) for n in cats.values()), default=0)
    for cat, n in cats.items():
        click.echo(f"  {cat:<{name_w}}  {n:>{count_w}}")
    kdf = st["kdf"]
    click.echo(
        f"Encryption: AES-256-GCM; passphrase key by Argon2id "
        f"({kdf['memory_kib'] // 1024} MiB, {kdf['iterations']} iterations, {kdf['lanes']} lanes)"
    )


@click.command()
@click.option("--new-passphrase-file", type=click.Path(path_type=Path, dir_okay=False))
@allow_weak_option
@json_option
@with_vault
def passphrase(v: Vault, new_passphrase_file: Path | None, allow_weak: bool, as_json: bool) -> None:
    """Change the vault's passphrase (rewraps the master key; data is not re-encrypted)."""
    from pds.vault.passphrase import require_strong

    if new_passphrase_file is not None:
        try:
            new = new_passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            fail(f"cannot read {new_passphrase_file}: {exc.strerror}")
    else:
        try:
            new = click.prompt(
                "New passphrase", hide_input=True, confirmation_prompt=True, err=True
            )
        except click.Abort:
            fail("no new passphrase given", "Type it at the prompt or pass --new-passphrase-file.")
    require_strong(new, allow_weak=allow_weak)
    v.change_passphrase(new)
    if as_json:
        emit({"changed": True})
    else:
        click.echo("Passphrase changed. The old one no longer opens this vault.")


@click.command()
@click.argument("path", type=click.Path())  # text: a trailing slash says "a folder"
@click.option(
    "--keep",
    type=WholeNumber(1, 100_000),
    metavar="N",
    help="PATH is a folder: afterwards delete the oldest pds backups there so N remain "
    "(files not named pds-backup-<time>.db are never touched).",
)
@json_option
@with_vault
def backup(v: Vault, path: str, keep: int | None, as_json: bool) -> None:
    """Copy the vault to PATH (a file, or a folder to put a dated file in). Stays encrypted."""
    removed: list[Path] = []
    if keep is None:
        written = v.backup(path)
    else:
        written, removed = v.backup_keeping(path, keep)
    size = written.stat().st_size
    if as_json:
        emit(
            {"backup": str(written), "bytes": size}
            | ({"removed": [str(p) for p in removed]} if keep is not None else {})
        )
        return
    click.echo(f"Backed up to {written} ({size:,} bytes, encrypted).")
    if removed:
        names = ", ".join(p.name for p in removed)
        click.echo(f"Removed {plural(len(removed), 'older backup')} (keeping {keep}): {names}.")


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Replace an existing vault without asking.")
@json_option
def restore(path: Path, yes: bool, as_json: bool) -> None:
    """Replace the vault with a backup (the backup's passphrase opens it)."""
    from pds import vault as vaultmod

    settings = get_settings()
    if vaultmod.exists(settings) and not yes:
        if not sys.stdin.isatty():
            fail(
                f"a vault exists at {settings.home}; restoring replaces it",
                "Pass --yes to replace it.",
            )
        click.confirm(f"Replace the vault at {settings.home} with {path}?", abort=True, err=True)
    st = vaultmod.restore(settings, path, ask_passphrase(settings, "Backup passphrase"))
    before, now = st["schema_before"], st["schema_version"]
    if as_json:
        emit(
            {
                "restored": str(path),
                "records": st["records"],
                "schema_before": before,
                "schema": now,
            }
        )
        return
    click.echo(f"Restored {plural(st['records'], 'record')} from {path} into {settings.home}.")
    if before < now:
        click.echo(
            f"The backup was at schema {before}; this pds upgraded the restored vault to "
            f"schema {now} (to go back to an older pds, restore the backup with that version)."
        )


@click.command()
@json_option
def upgrade(as_json: bool) -> None:
    """Bring the vault's schema up to this pds, after a backup in PDS_HOME/backups/."""
    from pds.vault.upgrade import upgrade as upgrade_vault

    done = upgrade_vault(get_settings())
    if as_json:
        emit(done.as_dict())
    elif done.upgraded:
        say_upgraded(done)
    else:
        click.echo(
            f"The vault at {done.home} is at schema {done.schema}, the newest this pds knows; "
            "nothing to do."
        )


@click.command()
@allow_weak_option
@click.option(
    "--sandbox",
    is_flag=True,
    help="Also register a test client (once) and print its client_id and client_secret.",
)
@click.option(
    "--redirect-uri",
    default=None,
    metavar="URL",
    help="A redirect URI for the sandbox client (default http://127.0.0.1:5001/callback); "
    "added to the ones earlier runs registered.",
)
@json_option
def demo(allow_weak: bool, sandbox: bool, redirect_uri: str | None, as_json: bool) -> None:
    """Create a demo vault with sample data in PDS_HOME (on first run), then say how to use it.

    With --sandbox, also a test client registered as the owner would (`pds clients add`),
    so a developer can ask the vault for a grant at once; a second run prints the same
    client."""
    from pds import vault as vaultmod
    from pds.demo import SANDBOX_REDIRECT_URI, load_demo, sandbox_client
    from pds.vault.passphrase import require_strong

    if redirect_uri is not None and not sandbox:
        fail("--redirect-uri is the sandbox client's", "Add --sandbox.")
    settings = get_settings()
    passphrase = ask_passphrase(settings)
    created = not vaultmod.exists(settings)
    if created:
        require_strong(passphrase, allow_weak=allow_weak)
    v = (
        vaultmod.Vault.create(settings, passphrase)
        if created
        else vaultmod.Vault.open(settings, passphrase)
    )
    with v:
        summaries = load_demo(v)
        client = sandbox_client(v, redirect_uri or SANDBOX_REDIRECT_URI) if sandbox else None
        st = v.status()
    if as_json:
        out: dict[str, object] = {"home": st["home"], "created": created, "records": st["records"]}
        if client is not None:
            out["sandbox"] = client.as_dict()
        emit(out)
        return
    verb = "Created" if created else "Using"
    click.echo(f"{verb} the demo vault at {st['home']}: {plural(st['records'], 'record')}.")
    for s in summaries:
        click.echo(f"  {s.file}: {s.new} new, {s.duplicate} already present")
    if client is not None:
        when = "now" if client.created else "on an earlier run"
        uris = client.redirect_uris
        which = f"redirect URI {uris[0]}" if len(uris) == 1 else f"redirect URIs {' '.join(uris)}"
        added = f"; {client.redirect_uri} added now" if client.added else ""
        click.echo(f"Sandbox test client (confidential, {which}): registered {when}{added}.")
        click.echo(f"client_id:     {client.client_id}")
        click.echo(f"client_secret: {client.client_secret}")
