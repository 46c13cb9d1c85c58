"""The authorization server's machine endpoints: token, revocation, introspection, dynamic
registration and RFC 8414 metadata. The authorization endpoint is in ``pds.web.consent``."""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, current_app, jsonify

from pds.oauth.server import PdsAuthorizationServer

bp = Blueprint("oauth", __name__)


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
    srv = server()
    try:
        return srv.create_endpoint_response("client_registration")
    except OAuth2Error as error:  # registration errors are not caught by authlib
        return srv.handle_error_response(None, error)


@bp.get("/.well-known/oauth-authorization-server")
def metadata() -> Any:
    response = jsonify(server().metadata())
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
