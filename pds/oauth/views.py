"""The authorization server's machine endpoints: token, revocation, introspection, dynamic
registration and RFC 8414 metadata. The authorization endpoint is in ``pds.web.consent``."""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, current_app, jsonify

from pds.oauth.server import PdsAuthorizationServer
from pds.web import limits
from pds.words import plural

bp = Blueprint("oauth", __name__)

REGISTRATIONS_REFUSED = "too many registrations from this address; try again in {seconds}"


def server() -> PdsAuthorizationServer:
    return current_app.extensions["pds_oauth"]


@bp.post("/oauth/token")
def token() -> Any:
    return server().create_token_response()


@bp.post("/oauth/revoke")
def revoke() -> Any:
    return server().create_endpoint_response("revocation")


@bp.post("/oauth/introspect")
def introspect() -> Any:
    return server().create_endpoint_response("introspection")


@bp.post("/oauth/register")
def register() -> Any:
    """RFC 7591 registration, at most ``limits.REGISTRATIONS_PER_WINDOW`` per address per
    window (``pds.web.limits``); only registrations that made a client count."""
    srv = server()
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
    response = jsonify(
        error="temporarily_unavailable",
        error_description=REGISTRATIONS_REFUSED.format(seconds=plural(retry_after, "second")),
    )
    response.status_code = 429
    response.headers["Retry-After"] = str(retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/.well-known/oauth-authorization-server")
def metadata() -> Any:
    response = jsonify(server().metadata())
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
