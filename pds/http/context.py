"""The request's vault, policies and authorization server, owned here the way Flask's
tutorial ``db.py`` owns ``get_db``: every view, the authorization server and the API's token
check ask this module, and nothing else keeps a vault for a request."""

from __future__ import annotations

import logging
import os
import threading

from flask import Flask, current_app, g

from pds.background import ProcessThread
from pds.errors import VaultLocked
from pds.oauth.server import PdsAuthorizationServer
from pds.policyfiles.loader import PolicySet
from pds.vault import Vault


def current_vault() -> Vault:
    """This worker thread's vault: one long-lived connection per thread of each process
    (SQLite transactions belong to a connection, so threads never share one). A thread that
    ends leaves its vault to the next thread given the same identifier."""
    if "pds_vault" in g:
        return g.pds_vault
    vaults: dict[tuple[int, int], Vault] = current_app.extensions["pds_vaults"]
    key = (os.getpid(), threading.get_ident())
    vault = vaults.get(key)
    if vault is None:
        keyring = current_app.extensions["pds_keyring"]
        if keyring is None:
            raise VaultLocked("the vault is locked", hint="Start the server with the passphrase.")
        vault = vaults[key] = Vault.with_keyring(current_app.config["PDS_SETTINGS"], keyring)
    g.pds_vault = vault
    return vault


def current_policies() -> PolicySet:
    """This worker process's policies in force (``pds.policyfiles.loader.PolicySet``), loaded
    once per process and re-checked for changed files at most every
    ``PDS_POLICY_CHECK_SECONDS`` (call ``.current()`` per request)."""
    sets: dict[int, PolicySet] = current_app.extensions["pds_policies"]
    pid = os.getpid()
    found = sets.get(pid)
    if found is None:
        found = sets[pid] = PolicySet(
            current_app.config["PDS_SETTINGS"].home,
            check_every=current_app.config["PDS_POLICY_CHECK_SECONDS"],
            report=logging.getLogger("pds.policy").warning,
        )
    return found


def authorization_server() -> PdsAuthorizationServer:
    """The app's OAuth authorization server (made once in ``create_app``)."""
    return current_app.extensions["pds_oauth"]


def start_worker(app: Flask, worker: ProcessThread) -> None:
    """Start this process's ``worker`` thread for the app's vault, once: under gunicorn,
    or where the app's config sets the worker's ``config_key`` (tests)."""
    worker.ensure(
        app.config.get("PDS_SETTINGS"),
        app.extensions.get("pds_keyring"),
        app.config.get(worker.config_key),
    )
