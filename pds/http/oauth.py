"""The authorization server's machine endpoints: token, revocation, introspection, dynamic
registration and RFC 8414 metadata. The authorization endpoint is in ``pds.http.web.consent``;
failed requests at the first three are throttled (``pds.http.throttle``)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, current_app, jsonify

from pds.http import limits
from pds.http.context import authorization_server
from pds.http.errors import oauth_error
from pds.http.throttle import guarded
from pds.words import plural

bp = Blueprint("oauth", __name__)

REGISTRATIONS_REFUSED = "too many registrations from this address; try again in {seconds}"
REGISTRATION_CLOSED = (
    "this vault does not take registrations (its owner turned open registration off); "
    "ask the owner to add you with `pds clients add`"
)


@bp.post("/oauth/token")
def token() -> Any:
    return guarded(authorization_server().create_token_response)


@bp.post("/oauth/revoke")
def revoke() -> Any:
    return guarded(lambda: authorization_server().create_endpoint_response("revocation"))


@bp.post("/oauth/introspect")
def introspect() -> Any:
    return guarded(lambda: authorization_server().create_endpoint_response("introspection"))


@bp.post("/oauth/register")
def register() -> Any:
    """RFC 7591 registration, at most ``limits.REGISTRATIONS_PER_WINDOW`` per address per
    window (``pds.http.limits``); only registrations that made a client count. With
    ``PDS_OPEN_REGISTRATION=0``: 403 ``access_denied``, nothing stored or logged."""
    if not registration_open():
        return registration_closed()
    srv = authorization_server()
    limiter, who = limits.registrations(), limits.address()
    hit = limiter.hit(who)
    if not hit.allowed:
        return too_many_registrations(hit.retry_after)
    made = False
    try:
        try:
            response = srv.create_endpoint_response("client_registration")
        except OAuth2Error as error:  # registration errors are not caught by authlib
            response = srv.handle_error_response(None, error)
        made = response.status_code == 201
        return response
    finally:
        if not made:
            limiter.release(who)


def too_many_registrations(retry_after: int) -> Response:
    """429 in RFC 6749 §5.2 shape: nothing stored, nothing logged."""
    description = REGISTRATIONS_REFUSED.format(seconds=plural(retry_after, "second"))
    return oauth_error(429, "temporarily_unavailable", description, Retry_After=str(retry_after))


def registration_open() -> bool:
    return current_app.config["PDS_SETTINGS"].open_registration


def registration_closed() -> Response:
    """403 in RFC 6749 §5.2 / RFC 7591 §3.2.2 shape (``access_denied``, as authlib's
    registration endpoint answers a caller it does not accept)."""
    return oauth_error(403, "access_denied", REGISTRATION_CLOSED)


@bp.get("/.well-known/oauth-authorization-server")
def metadata() -> Any:
    doc = authorization_server().metadata()
    if not registration_open():  # RFC 8414: advertise only what this server does
        del doc["registration_endpoint"]
    response = jsonify(doc)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
