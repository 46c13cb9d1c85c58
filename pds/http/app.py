"""create_app(settings): the Flask factory. It wires blueprints and nothing else."""

from __future__ import annotations

import sqlite3
from importlib.resources import files

from flask import Flask

from pds.errors import PdsError, VaultBusy
from pds.http.context import current_policies, current_vault, start_worker
from pds.http.converters import LookupIdConverter, RowIdConverter
from pds.settings import DEFAULT_ISSUER, Settings, load_settings
from pds.vault.keys import Keyring


def create_app(settings: Settings | None = None, keyring: Keyring | None = None) -> Flask:
    """The pds web app. ``keyring`` is the unlocked vault key (None: a locked server)."""
    settings = settings or load_settings()
    app = Flask(
        "pds",
        static_folder=str(files("pds_static")),
        static_url_path="/static",
        template_folder=str(files("pds.http.web") / "templates"),
    )
    app.config["PDS_SETTINGS"] = settings
    app.url_map.converters["int"] = RowIdConverter  # an id past SQLite's range is a 404
    app.url_map.converters["lookup_id"] = LookupIdConverter
    # Every body pds accepts (a form, a record, client metadata) is small; refuse big ones.
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    app.extensions["pds_keyring"] = keyring
    app.extensions["pds_vaults"] = {}
    app.extensions["pds_policies"] = {}
    app.config.setdefault("PDS_POLICY_CHECK_SECONDS", 1.0)

    from pds.http.web import register as register_web

    register_web(app)  # the owner's pages (home, data, policies, history, auditor)
    app.register_error_handler(PdsError, _problem)
    from pds.http import busy

    app.register_error_handler(VaultBusy, busy.answer)  # 503 in each endpoint's shape
    app.register_error_handler(sqlite3.OperationalError, busy.answer_sqlite)
    with app.app_context():
        current_policies()  # a broken policy file stops the server here, not at a request
    _oauth(app, settings, keyring)
    _behind_proxies(app, settings.proxy_hops)
    return app


def _behind_proxies(app: Flask, hops: int) -> None:
    """With PDS_PROXY_HOPS=N, the client's address, scheme and host are the ones the N
    proxies in front of pds say (``X-Forwarded-For``/``-Proto``/``-Host``): per-address
    limits (``pds.http.limits.address``) then count the real client, not the proxy. With 0,
    the headers are ignored (a client could write anything in them)."""
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        fixed = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
        app.wsgi_app = fixed  # type: ignore[method-assign]


def _oauth(app: Flask, settings: Settings, keyring: Keyring | None) -> None:
    """The authorization server, the owner's login and consent pages, the records API."""
    from pds.http import security
    from pds.http.api import bp as api_bp
    from pds.http.api.audit import bp as audit_bp
    from pds.http.oauth import bp as oauth_bp
    from pds.http.web.consent import bp as consent_bp
    from pds.http.web.owner import bp as owner_bp
    from pds.http.web.profile import bp as profile_bp
    from pds.http.web.receipts import bp as receipts_bp
    from pds.http.web.requests import bp as requests_bp
    from pds.oauth.server import PdsAuthorizationServer, check_issuer

    issuer = check_issuer(settings.issuer or DEFAULT_ISSUER)
    security.init_app(app, master=keyring.master if keyring else None, issuer=issuer)
    app.extensions["pds_oauth"] = PdsAuthorizationServer(
        app, issuer, current_vault, lambda: current_policies().current()
    )
    blueprints = (oauth_bp, owner_bp, consent_bp, api_bp, audit_bp, requests_bp, receipts_bp)
    for bp in (*blueprints, profile_bp):
        app.register_blueprint(bp)
    _deliveries(app)


def _deliveries(app: Flask) -> None:
    """Under ``pds serve``, each worker process runs the webhook sender (pds.webhooks.delivery)."""
    from pds.webhooks import delivery

    app.before_request(lambda: start_worker(app, delivery.worker))


def _problem(exc: PdsError):
    from flask import request

    body = exc.to_problem(instance=request.path)
    if exc.status >= 500 and request.path.startswith(("/api/", "/audit/", "/oauth/")):
        # A caller from outside learns that it failed, not what the vault's insides said.
        body["detail"] = "the vault could not answer this request; its owner can see why"
        body.pop("hint", None)
    return body, exc.status, {**exc.headers(), "Content-Type": "application/problem+json"}
