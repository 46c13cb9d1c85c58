"""Bearer tokens for the business and auditor APIs, and the one audit entry per call.

Use :func:`api_call` on a view::

    @bp.get("/audit/checkpoint")
    @api_call("api.audit.checkpoint", scope="audit:read")
    def checkpoint():
        access = current_access()          # token, grant, client, effective Access
        ...
        audit_allowed(count=1)             # optional: the entry for the allowed call
        return jsonify(...)

The token goes only in the ``Authorization: Bearer`` header (one in the query string or
form body is refused: 400). A missing, unknown, expired or revoked token is 401 with
``WWW-Authenticate``; a scope the grant does not cover is 403 ``insufficient_scope``.
Every call writes exactly one audit entry, committed before the response leaves: the view
writes the "allowed" one (:func:`audit_allowed`, or inside its write transaction); if it
does not, the decorator does; a refused call (any PdsError) gets a "refused" one. The one
exception: calls without a valid token (401, or 400 for a token in the URL) are counted per
address, and past ``pds.http.limits.ANONYMOUS_REFUSALS_PER_WINDOW`` in a window one
``api.refused.throttled`` entry stands for the rest (429, unlogged) until the window ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from authlib.oauth2 import OAuth2Error, ResourceProtector
from authlib.oauth2.rfc6749 import MissingAuthorizationError, UnsupportedTokenTypeError
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import g, request

from pds.db.locking import is_busy
from pds.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    PdsError,
    PolicyRefused,
    TooManyRefusals,
)
from pds.http import limits
from pds.http.context import current_vault
from pds.oauth import store
from pds.oauth.access import Access
from pds.words import plural

TOKEN_IN_URL = "send the access token in the Authorization header, never in the URL or body"  # noqa: S105
BAD_TOKEN = "the access token is unknown, expired or revoked"  # noqa: S105
THROTTLED_ACTION = "api.refused.throttled"
THROTTLED_REASON = (
    "more than {limit} without a valid access token from one address in {window}; "
    "further ones from it are refused (429) and not logged until {until}"
)


@dataclass(frozen=True)
class GrantAccess:
    """The caller of an API request: its token, the grant, and what the token may do."""

    token: store.Token
    grant: store.Grant
    access: Access

    @property
    def client_id(self) -> str:
        return self.token.client_id

    @property
    def actor(self) -> str:
        return f"client:{self.token.client_id}"


class _Validator(BearerTokenValidator):
    """authlib's bearer validation on pds's token table (hash lookup joined to the grant)."""

    def authenticate_token(self, token_string: str) -> store.Token | None:
        return store.find_access_token(current_vault().conn, token_string)


class _Header:
    """What authlib's ResourceProtector reads from a request: the headers."""

    def __init__(self) -> None:
        self.headers = request.headers


_validator = _Validator(realm="pds")
_protector = ResourceProtector()
_protector.register_token_validator(_validator)


def authenticate(scope: str | None = None) -> GrantAccess:
    """The caller's grant (also kept as :func:`current_access`), or InvalidRequest,
    InvalidToken or InsufficientScope."""
    if "access_token" in request.args or "access_token" in request.form:
        raise InvalidRequest(TOKEN_IN_URL, hint="Use the header Authorization: Bearer <token>.")
    try:
        # The scope is checked below, once the caller is known: its refusal names the client.
        token: store.Token = _protector.validate_request(None, _Header())
    except MissingAuthorizationError:
        raise InvalidToken(
            "no access token was sent", hint="Send Authorization: Bearer <token>.", missing=True
        ) from None
    except UnsupportedTokenTypeError:
        raise InvalidToken(
            "the Authorization header is not a Bearer token",
            hint="Send Authorization: Bearer <token>.",
        ) from None
    except OAuth2Error:
        raise InvalidToken(BAD_TOKEN) from None
    found = GrantAccess(token, token.grant, token.grant.access.restricted_to(token.scope.split()))
    g.pds_access = found
    if scope and _validator.scope_insufficient(token.get_scope(), [scope]):
        raise InsufficientScope(f"the grant does not cover {scope}", scope=scope)
    return found


def current_access() -> GrantAccess:
    return g.pds_access


def audit_allowed(**fields: Any) -> int:
    """Write the "allowed" entry for this call (joins an open write transaction)."""
    acc = current_access()
    g.pds_audited = True
    return current_vault().audit(
        g.pds_action,
        actor=acc.actor,
        client_id=acc.client_id,
        grant_id=acc.grant.id,
        purpose=acc.grant.purpose,
        **{**decision_fields(), **fields},
    )


def _audit_refused(exc: PdsError | None) -> None:
    acc: GrantAccess | None = g.get("pds_access")
    if acc is None and isinstance(exc, InvalidToken | InvalidRequest):
        _count_anonymous()  # raises TooManyRefusals past the limit
    fields: dict[str, Any] = {"decision": "refused"}
    if acc is not None:
        fields.update(
            actor=acc.actor,
            client_id=acc.client_id,
            grant_id=acc.grant.id,
            purpose=acc.grant.purpose,
        )
    else:
        fields["actor"] = "anonymous"
    if category := g.get("pds_category"):
        fields["category"] = category
    fields["reason"] = f"{exc.code}: {exc.message}" if exc else "internal error"
    if isinstance(exc, PolicyRefused):  # the policy engine's own rules and words
        fields.update(exc.decision.audit_fields())
    elif (decision := g.get("pds_decision")) is not None and decision.rule_ids:
        fields["rule_ids"] = decision.rule_ids
    g.pds_audited = True
    current_vault().audit(g.pds_action, **fields)


def _count_anonymous() -> None:
    """Count a refusal of a call without a valid token against the caller's address
    (``pds.http.limits``). Within the limit, return: it is logged as any refusal. The call
    that passes the limit writes one ``api.refused.throttled`` entry (no address, no token);
    it and every further one in the window get TooManyRefusals (429), the rest unlogged."""
    hit = limits.anonymous_refusals().hit(limits.address())
    if hit.allowed:
        return
    g.pds_audited = True
    if hit.first_over:
        current_vault().audit(
            THROTTLED_ACTION,
            actor="anonymous",
            decision="refused",
            reason=THROTTLED_REASON.format(
                limit=plural(hit.limit, "call"),
                window=plural(limits.ANONYMOUS_REFUSAL_WINDOW, "second"),
                until=hit.ends_iso(),
            ),
        )
    raise TooManyRefusals(hit.retry_after) from None


def api_call(action: str, scope: str | None = None) -> Callable[[Callable], Callable]:
    """Authenticate the bearer token (needing ``scope`` if given) and audit the call once."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.pds_action = action
            g.pds_audited = False
            try:
                authenticate(scope)
                result = view(*args, **kwargs)
            except PdsError as exc:
                if not g.pds_audited and not is_busy(exc):  # busy: no entry can be written
                    _audit_refused(exc)
                raise
            except Exception as exc:
                if not g.pds_audited and not is_busy(exc):
                    _audit_refused(None)
                raise
            if not g.pds_audited:
                audit_allowed()
            return result

        return wrapper

    return decorator


def decision_fields() -> dict[str, Any]:
    """Audit fields of this call's decision: its rules and reason, when any rule spoke."""
    d = g.get("pds_decision")  # a pds.policy.Decision, set by pds.http.api.policy.enforce
    if d is None or not d.rule_ids:
        return {}
    return {"rule_ids": d.rule_ids, "reason": d.reason}
