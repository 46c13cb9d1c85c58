"""The answer to a request that found the vault busy: 503 with ``Retry-After``, never a 500.

An import holds the vault's write transaction from its first record to its last (all or
nothing), so any other write (a failed sign-in's access-log entry, a token, a grant) waits
for it, and past the writer's wait (``pds.db.locking``) fails with
:class:`~pds.errors.VaultBusy`; SQLite's own "database is locked" from a write outside
``pds.db.locking`` is taken as the same. One handler answers it in each kind of endpoint's own
shape: RFC 6749 §5.2 JSON at the OAuth endpoints a client calls (``temporarily_unavailable``),
problem+json at the APIs, and the HTML error page at the owner's pages (the authorization
page included: the owner is the one there to try again).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import request

from pds.db.locking import is_busy
from pds.errors import VaultBusy

OAUTH_JSON = ("/oauth/token", "/oauth/revoke", "/oauth/introspect", "/oauth/register")
PROBLEM_JSON = ("/api/", "/audit/", "/.well-known/")
WEB_HINT = "Try again in a minute, once it is done (an import's page shows its progress)."


def answer(exc: VaultBusy) -> Any:
    """The 503 for ``exc`` in the shape the requested endpoint speaks."""
    retry = {"Retry-After": str(exc.retry_after)}
    path = request.path
    if path.startswith(OAUTH_JSON):
        from pds.http.responses import oauth_error

        return oauth_error(
            503, "temporarily_unavailable", exc.message, Retry_After=retry["Retry-After"]
        )
    if path.startswith(PROBLEM_JSON):
        return (
            exc.to_problem(instance=path),
            503,
            {**retry, "Content-Type": "application/problem+json"},
        )
    from pds.http.web.owner import error_page

    page, status = error_page(503, exc.message, WEB_HINT, title="Busy")
    return page, status, retry


def answer_sqlite(exc: sqlite3.OperationalError) -> Any:
    """:func:`answer` for SQLite's "database is locked"; any other error goes on (a 500)."""
    if not is_busy(exc):
        raise exc
    return answer(VaultBusy())
