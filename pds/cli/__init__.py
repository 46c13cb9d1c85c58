"""The ``pds`` command: the root group, and where each command lives.

Each command parses, calls the core, and renders; the commands of one group of features share
a module (``pds.cli.vault``, ``pds.cli.records``, ...) and their helpers are in
``pds.cli.common``. The root group imports a command's module only when that command runs (or
``pds --help`` lists them), so a command never pays for the code of another.
"""

from __future__ import annotations

import click

from pds import __version__
from pds.cli.common import LazyGroup
from pds.settings import load_settings

COMMANDS = {
    "init": "pds.cli.vault.init",
    "status": "pds.cli.vault.status",
    "passphrase": "pds.cli.vault.passphrase",
    "backup": "pds.cli.vault.backup",
    "restore": "pds.cli.vault.restore",
    "upgrade": "pds.cli.vault.upgrade",
    "demo": "pds.cli.vault.demo",
    "import": "pds.cli.records.import_",
    "connectors": "pds.cli.records.connectors",
    "records": "pds.cli.records.records_",
    "search": "pds.cli.search.search",
    "policy": "pds.cli.policy.policy_group",
    "audit": "pds.cli.audit.audit_group",
    "serve": "pds.cli.serve.serve",
    "clients": "pds.cli.clients.clients_group",
    "grants": "pds.cli.grants.grants_group",
    "requests": "pds.cli.rights.requests_group",
    "forget": "pds.cli.rights.forget",
    "processing": "pds.cli.rights.processing",
    "export": "pds.cli.rights.export",
    "receipts": "pds.cli.receipts.receipts_group",
    "profile": "pds.cli.profile.profile_group",
    "intentions": "pds.cli.profile.intentions_group",
    "deliveries": "pds.cli.deliveries.deliveries_group",
    "spending": "pds.cli.spending.spending_group",
}


@click.group(cls=LazyGroup, lazy_subcommands=COMMANDS)
@click.version_option(__version__, prog_name="pds")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """pds: your personal data store. Data lives in PDS_HOME (default ~/.local/share/pds)."""
    ctx.obj = load_settings()


def main() -> None:
    """Run the ``pds`` command (the console script and ``python -m pds``)."""
    cli(prog_name="pds")
