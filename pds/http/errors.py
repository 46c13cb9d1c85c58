"""Every error answer of the HTTP edge, in the shape the requested endpoint speaks.

One table, :data:`MACHINE`, lists the endpoints machines call, by path prefix; every other
path is a page a person opens. The shape follows from it:

- the business and auditor APIs (``/api/``, ``/audit/``), the server metadata
  (``/.well-known/``) and the health check (``/healthz``, JSON when it succeeds): RFC 9457
  problem+json;
- the authorization server's machine endpoints (token, revocation, introspection,
  registration): RFC 6749 §5.2 JSON where the error has an OAuth code (a busy vault is
  ``temporarily_unavailable``; authlib answers its own errors there, and
  :func:`oauth_error` the throttles' 429s and a closed registration); an error OAuth has no
  code for (a 405, a locked vault) is problem+json, as at the API;
- the owner's pages, the authorization (consent) page and the auditor's pages: the HTML
  error page (``templates/error.html``) with the error's message, its hint and its status.

A :class:`~pds.errors.PdsError` with a 5xx status at a machine endpoint says that it failed,
not what the vault's insides said (its owner sees why on the pages and in the log).

A busy vault (:class:`~pds.errors.VaultBusy`; SQLite's own "database is locked" from a write
outside ``pds.db.locking`` is taken as the same) is 503 with ``Retry-After``, never a 500:
an import holds the vault's write transaction from its first record to its last (all or
nothing), so any other write waits for it, and past the writer's wait fails.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from pds.db.locking import is_busy
from pds.errors import PdsError, VaultBusy

PROBLEM = "problem+json"
OAUTH = "oauth"
PAGE = "page"

MACHINE = {
    "/api/": PROBLEM,
    "/audit/": PROBLEM,
    "/.well-known/": PROBLEM,
    "/healthz": PROBLEM,
    "/oauth/token": OAUTH,
    "/oauth/revoke": OAUTH,
    "/oauth/introspect": OAUTH,
    "/oauth/register": OAUTH,
}
"""The endpoints machines call (a path, or a folder ending in ``/``, and everything under
it: shape); every other path (``/oauth/tokens``, ``/healthzz``) is a page."""

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Refused",
    404: "Not found",
    429: "Too many tries",
}
BUSY_TITLE = "Busy"
BUSY_HINT = "Try again in a minute, once it is done (an import's page shows its progress)."
HIDDEN = "the vault could not answer this request; its owner can see why"
SIGN_IN_FIRST = "Sign in first."


class NotSignedIn(PdsError, PermissionError):
    """A form sent to a page that needs the owner signed in, without the owner (HTTP 401)."""

    code = "not_signed_in"
    status = 401


def init_app(app: Flask) -> None:
    """Answer every error of ``app`` here: pds's own, busy SQLite and HTTP ones."""
    app.register_error_handler(PdsError, answer)
    app.register_error_handler(sqlite3.OperationalError, answer_sqlite)
    app.register_error_handler(HTTPException, answer_http)


def shape(path: str) -> str:
    """:data:`PROBLEM`, :data:`OAUTH` or :data:`PAGE`: what an error at ``path`` looks like."""
    for prefix, kind in MACHINE.items():
        if path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/"):
            return kind
    return PAGE


def page(status: int, message: str, hint: str | None = None, title: str = "") -> Any:
    """The HTML error page: ``title`` (by default the status's: "Not found" ...), the
    message and the hint, with ``status``."""
    title = title or TITLES.get(status, "Error")
    return render_template("error.html", title=title, message=message, hint=hint), status


def oauth_error(status: int, error: str, description: str, **headers: str) -> Response:
    """RFC 6749 §5.2's ``{"error": error, "error_description": description}`` with ``status``,
    never cached (``Cache-Control: no-store``, ``Pragma: no-cache``), and ``headers``
    (``Retry_After="60"`` gives ``Retry-After: 60``)."""
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def answer(exc: PdsError) -> Any:
    """A PdsError in the shape of the requested endpoint."""
    if isinstance(exc, VaultBusy):
        return _busy(exc)
    kind = shape(request.path)
    if kind == PAGE:
        return (*page(exc.status, exc.message, exc.hint), exc.headers())
    body = exc.to_problem(instance=request.path)
    if exc.status >= 500:
        # A caller from outside learns that it failed, not what the vault's insides said.
        body["detail"] = HIDDEN
        body.pop("hint", None)
    return body, exc.status, {**exc.headers(), "Content-Type": "application/problem+json"}


def problem(exc: PdsError) -> Any:
    """``exc`` as problem+json whatever the path (an owner's page's own JSON endpoint)."""
    body = exc.to_problem(instance=request.path)
    return body, exc.status, {**exc.headers(), "Content-Type": "application/problem+json"}


def _busy(exc: VaultBusy) -> Any:
    """503 with ``Retry-After``; at a page, the page says to try again in a minute."""
    retry = str(exc.retry_after)
    kind = shape(request.path)
    if kind == OAUTH:
        return oauth_error(503, "temporarily_unavailable", exc.message, Retry_After=retry)
    if kind == PROBLEM:
        return problem(exc)
    return (*page(503, exc.message, BUSY_HINT, title=BUSY_TITLE), {"Retry-After": retry})


def answer_sqlite(exc: sqlite3.OperationalError) -> Any:
    """SQLite's "database is locked" as a busy vault; any other error goes on (a 500)."""
    if not is_busy(exc):
        raise exc
    return _busy(VaultBusy())


def answer_http(exc: HTTPException) -> Any:
    """An HTTP error (404, 405, an ``abort``): problem+json at the machine endpoints, the
    HTML error page elsewhere; either keeps the exception's own headers (a 405's ``Allow``,
    RFC 9110 §15.5.6)."""
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    if "Allow" in headers:  # werkzeug builds it from a set: one order, always
        headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
    status = exc.code or 500
    if shape(request.path) != PAGE:
        body = {
            "type": f"https://pds.invalid/problems/http_{exc.code}",
            "title": exc.name,
            "status": exc.code,
            "detail": exc.description,
            "instance": request.path,
        }
        return body, status, {**headers, "Content-Type": "application/problem+json"}
    if status == 401:
        return (*page(401, SIGN_IN_FIRST), headers)
    return (*page(status, exc.description or exc.name), headers)
