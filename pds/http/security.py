"""The owner's session, CSRF tokens, security headers and the failed-login back-off.

- The session is Flask's signed cookie; its key is derived from the vault's master key
  (HKDF, info ``pds/session/v1``), so every gunicorn worker and every restart agrees on it,
  and changing vault (or losing the key) signs everybody out.
- Signing out moves the role's session generation on (``meta`` table), so a copy of the
  signed cookie taken before stops working too (every browser of that role is signed out).
- Every POST form carries ``csrf_token``, a random value kept in the session and compared
  in constant time; a missing or wrong one is refused with 403.
- Every form POST (anything but the machine endpoints: ``/oauth/token``, ``/oauth/revoke``,
  ``/oauth/introspect``, ``/oauth/register`` and ``/api/*``) that the browser marks as sent
  from another site is refused with 403 before it is looked at: ``Sec-Fetch-Site``
  ``cross-site`` or ``same-site`` (another port or subdomain of the same host is
  same-site, and not pds), or an ``Origin`` other than pds's own (the issuer's, or the
  one the request was addressed to). ``Origin: null`` alone is not refused: under
  ``Referrer-Policy: no-referrer`` Chromium sends it on the page's own form posts (its
  ``Sec-Fetch-Site`` still says ``same-origin``).
- Every request must be addressed (``Host``, or ``X-Forwarded-Host`` behind PDS_PROXY_HOPS
  proxies) to the issuer's host and port, or, for a loopback issuer, to any loopback name
  (``localhost``, 127.0.0.0/8, ``[::1]``) on any port; anything else is refused with 400
  before any page runs. A page of another site whose name was pointed at this machine
  (DNS rebinding) cannot use pds then, even on loopback. ``/healthz`` answers any
  well-formed host (a container's health check uses its own address).
- Failed logins back off exponentially (``pds.http.limits.LoginThrottle``, counted across
  worker processes): after ``FREE_FAILURES`` failures each further one blocks the form for
  1, 2, 4 ... seconds, at most ``MAX_BLOCK``; a success resets it. There is never a
  permanent lock-out.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, Response, abort, current_app, redirect, request, session, url_for
from werkzeug.sansio.utils import host_is_trusted

from pds import clock
from pds.db import sessions, transaction
from pds.http import limits
from pds.http.context import authorization_server, current_vault
from pds.net import loopback_host

CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 12 * 3600

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HTML_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def session_key(master: bytes) -> bytes:
    """The Flask SECRET_KEY: HKDF-SHA256 of the vault's master key, info ``pds/session/v1``."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pds/session/v1").derive(
        master
    )


def init_app(app: Flask, *, master: bytes | None, issuer: str) -> None:
    """Sessions, CSRF, security headers and limits for the app served at ``issuer`` (an
    origin ``check_issuer`` accepted); an https issuer adds HSTS and Secure cookies."""
    secure = urlsplit(issuer).scheme == "https"
    if master is not None:
        app.config["SECRET_KEY"] = session_key(master)
    app.config.update(
        SESSION_COOKIE_NAME="pds_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
    )
    limits.init_app(app, master)  # rate limits and login back-off, shared by the workers
    app.wsgi_app = HostCheck(app.wsgi_app, issuer)  # type: ignore[method-assign]
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_other_hosts)
    app.before_request(refuse_cross_site)
    app.after_request(_headers)
    if secure:  # served over https: browsers must never fall back to http (RFC 6797)
        app.after_request(_strict_transport)


def _strict_transport(response: Response) -> Response:
    response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        for name, value in HTML_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# -- the Host header ---------------------------------------------------------------------------

REFUSED_HOST = "pds.refused_host"
"""The environ key :class:`HostCheck` sets on a request addressed to another host."""
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_HOST = 253 + len(":65535") + 2  # the longest DNS name, a port, and brackets


def host_message(issuer: str) -> str:
    return (
        "This request was addressed to a host name pds does not answer to "
        f"(its Host header). Open pds at {issuer}."
    )


class HostCheck:
    """WSGI middleware: a request addressed (``Host``; ``X-Forwarded-Host`` once werkzeug's
    ProxyFix, which wraps this, has read it) to a host other than pds's own goes on with the
    issuer's host in its place, marked :data:`REFUSED_HOST`, so that Flask can route it and
    render its error page; :func:`refuse_other_hosts` then answers it with 400 before any
    page runs. A malformed host (bad characters, an empty or too long label, port 0) is
    never handed to Flask, whose URL building fails on it."""

    def __init__(self, app: Any, issuer: str) -> None:
        self.app = app
        parts = urlsplit(issuer)
        self.netloc = parts.netloc
        self.hostname = parts.hostname or ""
        self.scheme = parts.scheme
        self.port = parts.port or DEFAULT_PORTS[parts.scheme]
        self.loopback = loopback_host(self.hostname)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        host = environ.get("HTTP_HOST")
        if host is None:  # HTTP/1.0 without Host: the address the server listens on
            host = environ.get("SERVER_NAME", "")
        parts = _host_parts(host)
        if parts is None or not (self.accepts(*parts) or environ.get("PATH_INFO") == "/healthz"):
            environ[REFUSED_HOST] = True
            environ["HTTP_HOST"] = self.netloc
        return self.app(environ, start_response)

    def accepts(self, hostname: str, port: int | None) -> bool:
        """Whether a request addressed to ``hostname``:``port`` (None: no port given) is
        one for pds: the issuer's own, or any loopback one for a loopback issuer."""
        if self.loopback:
            return loopback_host(hostname)
        default = DEFAULT_PORTS[self.scheme]  # a Host without a port: the issuer's scheme's
        return hostname == self.hostname and (port or default) == self.port


def _host_parts(host: str) -> tuple[str, int | None] | None:
    """(host name in lower case without brackets, port or None) of a ``Host`` header value,
    or None when it is not a well-formed one."""
    if len(host) > MAX_HOST or not host_is_trusted(host):
        return None
    parts = urlsplit("//" + host)
    hostname = parts.hostname or ""
    try:
        port = parts.port
        if not hostname.startswith("[") and ":" not in hostname:
            hostname.encode("idna")  # every label 1 to 63 characters
    except (ValueError, UnicodeError):
        return None
    return hostname, port


def refuse_other_hosts() -> None:
    """Before every request: 400 for one :class:`HostCheck` marked as addressed to another
    host."""
    if request.environ.get(REFUSED_HOST):
        abort(400, description=host_message(authorization_server().issuer))


# -- CSRF -----------------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok() -> bool:
    expected = session.get("csrf")
    sent = request.form.get(CSRF_FIELD, "")
    return bool(expected) and hmac.compare_digest(expected.encode(), sent.encode())


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def reading() -> bool:
    """Whether this request asks for a page (GET, or HEAD: the same answer without its
    body, as uptime monitors ask) rather than sends a form."""
    return request.method in ("GET", "HEAD")


MACHINE_BLUEPRINTS = frozenset({"oauth", "api"})  # token, revoke, introspect, register; /api
CROSS_SITE_MESSAGE = (
    "This form was sent from another site, so pds refused it. "
    "Open pds yourself (type its address or use your bookmark) and try again."
)


def refuse_cross_site() -> None:
    """Before every form POST: 403 when the browser says it came from another site."""
    if request.method in SAFE_METHODS or request.blueprint in MACHINE_BLUEPRINTS:
        return
    if request.endpoint is None:  # no such page: the 404/405 says so
        return
    if request.headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site"):
        abort(403, description=CROSS_SITE_MESSAGE)
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null" and _origin(origin) not in _own_origins():
        abort(403, description=CROSS_SITE_MESSAGE)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of a URL, the default port spelled out; None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or {"http": 80, "https": 443}.get(scheme)


def _own_origins() -> set[tuple[str, str, int | None] | None]:
    """pds's own origins: the issuer's, and the one this request was addressed to (a host
    :class:`HostCheck` accepted: the issuer's, or a loopback one for a loopback issuer)."""
    issuer = authorization_server().issuer
    return {_origin(issuer), _origin(request.host_url)} - {None}


# -- the owner's session --------------------------------------------------------------------


def signed_in() -> bool:
    at = session.get("owner_at")
    return (
        isinstance(at, int | float)
        and 0 <= clock.now() - at < SESSION_SECONDS
        and session.get("gen") == generation("owner") is not None
    )


def sign_in() -> None:
    session.clear()
    session["owner_at"] = clock.now()
    session["gen"] = generation("owner")
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out(role: str = "owner") -> None:
    """End this session, and every copy of its cookie: the role's generation moves on."""
    session.clear()
    _next_generation(role)


GENERATIONS = {"owner": "web_owner_generation", "auditor": "web_auditor_generation"}


def generation(role: str) -> int | None:
    """The role's session generation (kept in the vault's ``meta`` table): a session is
    valid only while it matches, so signing out invalidates a copied session cookie too
    (Flask's session is a signed cookie, which signing out cannot recall). None on a
    locked server."""
    if current_app.extensions.get("pds_keyring") is None:
        return None
    return sessions.generation(current_vault().conn, GENERATIONS[role])


def _next_generation(role: str) -> None:
    if current_app.extensions.get("pds_keyring") is None:
        return
    with transaction(current_vault().conn) as conn:
        sessions.next_generation(conn, GENERATIONS[role])


# -- the auditor's session ------------------------------------------------------------------


def auditor_sign_in(grant_id: int, client_id: str) -> None:
    """Open an auditor session (and close any owner session in this browser)."""
    session.clear()
    session["auditor"] = {
        "grant": grant_id,
        "client": client_id,
        "at": clock.now(),
        "gen": generation("auditor"),
    }
    session["csrf"] = secrets.token_urlsafe(32)


def auditor() -> dict[str, Any] | None:
    """The signed-in auditor's ``{"grant", "client", "at"}``, or None."""
    found = session.get("auditor")
    if not isinstance(found, dict) or not isinstance(found.get("at"), int):
        return None
    if found.get("gen") != generation("auditor") or found.get("gen") is None:
        return None
    return found if 0 <= clock.now() - found["at"] < SESSION_SECONDS else None


def auditor_signed_in() -> bool:
    return auditor() is not None


def safe_next(target: str | None) -> str:
    """A local path to go back to after signing in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("web.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("web.home")
    return target


def owner_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send a signed-out owner to the login page and back; check CSRF on every POST."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not signed_in():
            if not reading():
                abort(401)
            return redirect(url_for("owner.login", next=request.full_path.rstrip("?")))
        if request.method == "POST" and not csrf_ok():
            abort(403, description=CSRF_MESSAGE)
        return view(*args, **kwargs)

    return wrapper


CSRF_MESSAGE = "This form has expired or did not come from pds. Reload the page and try again."
