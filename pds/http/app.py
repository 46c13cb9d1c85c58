"""create_app(settings): the Flask factory. It wires the app's parts, in one place: the
authorization server, security, the error answers (``pds.http.errors``), every blueprint
and the background workers."""

from __future__ import annotations

from importlib.resources import files

from flask import Flask

from pds import jobs
from pds.http import errors, locale, oauth, security, web
from pds.http.api import audit as audit_api
from pds.http.api import bp as api_bp
from pds.http.api import docs as api_docs
from pds.http.context import current_policies, current_vault, start_worker
from pds.http.converters import LookupIdConverter, RowIdConverter
from pds.http.web import (
    auditor,
    consent,
    data,
    history,
    owner,
    policies,
    profile,
    receipts,
    requests,
    search,
    spending,
)
from pds.http.web import jobs as job_pages
from pds.oauth.issuer import check_issuer
from pds.oauth.server import PdsAuthorizationServer
from pds.settings import DEFAULT_ISSUER, Settings, load_settings
from pds.vault.keys import Keyring
from pds.webhooks import delivery
from pds.words import plural

BLUEPRINTS = (
    # the owner's pages: home and rights, data and import, jobs, policies, history
    web.bp,
    data.bp,
    job_pages.bp,
    policies.bp,
    history.bp,
    auditor.bp,  # the auditor's pages
    oauth.bp,  # the authorization server's machine endpoints
    owner.bp,  # sign-in, businesses and grants
    consent.bp,  # the authorization (consent) page
    api_bp,  # the business API, /api/v1
    audit_api.bp,  # the auditor API, /audit
    api_docs.bp,  # the API's browsable page, /api/docs
    requests.bp,
    receipts.bp,
    profile.bp,
    search.bp,  # the owner's search across every category
    spending.bp,  # the spending rules page
)


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
    errors.init_app(app)
    with app.app_context():
        current_policies()  # a broken policy file stops the server here, not at a request
    issuer = check_issuer(settings.issuer or DEFAULT_ISSUER)
    security.init_app(app, master=keyring.master if keyring else None, issuer=issuer)
    app.extensions["pds_oauth"] = PdsAuthorizationServer(
        app, issuer, current_vault, lambda: current_policies().current()
    )
    locale.init_app(app, settings.locale)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.add_template_filter(plural, "plural")  # {{ n|plural("record") }}: "1 record"
    # Under ``pds serve``, each worker process runs the background jobs (pds.jobs) and the
    # webhook sender (pds.webhooks.delivery).
    app.before_request(lambda: start_worker(app, jobs.worker))
    app.before_request(lambda: start_worker(app, delivery.worker))
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
