"""``pds serve``: the web app and APIs under gunicorn."""

from __future__ import annotations

import sys

import click

from pds.cli.common import WholeNumber, get_settings, open_vault, say_upgraded


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=WholeNumber(1, 65535))
@click.option("--workers", default=2, show_default=True, type=WholeNumber(1, 64))
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=WholeNumber(1, 64),
    help="Request threads per worker; more than 1 lets their access-log writes share one "
    "disk sync (for a slow disk).",
)
@click.option(
    "--timeout",
    default=60,
    show_default=True,
    type=WholeNumber(1, 3600),
    help="Seconds a stuck worker is given before it is restarted (uploads may take longer).",
)
def serve(host: str, port: int, workers: int, threads: int, timeout: int) -> None:
    """Serve the web app and APIs (unlocks the vault once, before the workers start).

    The issuer is PDS_ISSUER, or without it http://HOST:PORT on a loopback HOST. A vault of
    an older pds is first backed up into PDS_HOME/backups/ and upgraded (`pds upgrade`).
    """
    from pds import vault as vaultmod
    from pds.http.locale import checked
    from pds.http.server import check_listen, issuer_for, run, served_url
    from pds.vault.upgrade import upgrade as upgrade_vault

    settings = get_settings()
    settings = settings.with_overrides(issuer=issuer_for(settings, host, port))
    checked(settings.locale)
    check_listen(host, port)
    if vaultmod.exists(settings):  # a vault of an older pds: backed up before it migrates
        done = upgrade_vault(settings)
        if done.upgraded:
            say_upgraded(done)
    with open_vault(settings) as v:
        keyring = v.keyring
    click.echo(f"Serving on {served_url(host, port)}  (Ctrl-C stops it)")
    click.echo(f"Issuer: {settings.issuer}")
    sys.stdout.flush()
    run(settings, keyring, host=host, port=port, workers=workers, threads=threads, timeout=timeout)
