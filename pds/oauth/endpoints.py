"""The authorization server's other endpoints: RFC 7009 revocation, RFC 7662
introspection and RFC 7591 dynamic client registration, as authlib runs them on the
vault's tables."""

from __future__ import annotations

import sqlite3
from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2.claims import BaseClaims
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7591 import (
    ClientMetadataClaims,
    ClientRegistrationEndpoint,
    InvalidClientMetadataError,
)
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from pds import clock
from pds.db import transaction
from pds.oauth import controller, receipts, store
from pds.oauth.display import unsafe_metadata
from pds.oauth.grants import TOKEN_AUTH_METHODS, VaultBound, error_description
from pds.oauth.redirects import redirect_uri_problem


def find_token(conn: sqlite3.Connection, token: str, hint: str | None) -> store.Token | None:
    """The access or refresh token ``token`` is (the hinted kind looked up first), or None."""
    order = [store.find_access_token, store.find_refresh_token]
    if hint == "refresh_token":
        order.reverse()
    for find in order:
        if found := find(conn, token):
            return found
    return None


class Revocation(VaultBound, RevocationEndpoint):
    """RFC 7009. Revoking an access token ends that token (and its refresh token); revoking a
    refresh token ends the whole grant, as §2.1 suggests."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_token(self.conn, token_string, token_type_hint)

    def revoke_token(self, token: store.Token, request: OAuth2Request) -> None:
        client_id = token.client_id
        with transaction(self.conn):
            if token.is_refresh:
                receipts.revoke(self.vault, token.grant_id, "refresh token revoked by client")
                action = "grant.revoke"
            else:
                store.revoke_token(self.conn, token.id)
                action = "token.revoke"
            self.vault.audit(
                action,
                actor=f"client:{client_id}",
                client_id=client_id,
                grant_id=token.grant_id,
                purpose=token.grant.purpose,
            )


class Introspection(VaultBound, IntrospectionEndpoint):
    """RFC 7662; a client may introspect only its own tokens (others are ``active: false``)."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_token(self.conn, token_string, token_type_hint)

    def check_permission(self, token: store.Token, client: store.Client, request: Any) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: store.Token) -> dict[str, Any]:
        grant = token.grant
        exp = grant.expires_at if token.is_refresh else min(token.expires_at, grant.expires_at)
        return {
            "active": True,
            "client_id": token.client_id,
            "token_type": "refresh_token" if token.is_refresh else "Bearer",
            "scope": token.scope,
            "exp": exp,
            "iat": token.issued_at,
            "iss": self.server.issuer,
            "sub": "owner",
            "grant_id": grant.id,
            "authorization_details": grant.access.restricted_to(
                token.scope.split()
            ).authorization_details(),
        }


class ControllerMetadata(BaseClaims):
    """pds's own registration metadata (RFC 7591 §2 allows more than the standard's): how
    the person can reach the business, for its consent receipts. Kept as given here; checked
    by ``pds.oauth.controller.problem`` before authlib reads the standard fields, and for
    unsafe characters with them (``pds.oauth.display``)."""

    REGISTERED_CLAIMS = list(controller.FIELDS)

    def validate(self, now: int | None = None, leeway: int = 0) -> None:
        return None


class Registration(VaultBound, ClientRegistrationEndpoint):
    """RFC 7591 open dynamic registration. Clients made here are *unverified*: the consent
    page says so. pds issues its own ids, keeps only the secret's hash, and accepts only what
    it supports (code + refresh, the three client authentication methods, https or loopback
    redirect URIs), and keeps the business's contact details besides the standard metadata."""

    def __init__(self, server: Any = None, claims_classes: list | None = None) -> None:
        super().__init__(server, claims_classes or [ClientMetadataClaims, ControllerMetadata])

    def create_endpoint_request(self, request: Any) -> Any:
        return self.server.json_request()

    def authenticate_token(self, request: Any) -> Any:
        return "anonymous"  # open registration: anyone may register, as unverified

    def get_server_metadata(self) -> dict[str, Any]:
        return self.server.metadata()

    def create_registration_response(self, request: Any) -> tuple[int, dict, list]:
        if request.payload.data is None:
            raise InvalidClientMetadataError("The body must be a JSON object.")
        data = request.payload.data
        if isinstance(data, dict) and (problem := controller.problem(data)):
            raise InvalidClientMetadataError(error_description(problem))  # words before authlib's
        metadata = self.extract_client_metadata(request)
        uris = metadata.get("redirect_uris") or []
        if not uris or not all(isinstance(u, str) for u in uris):
            raise InvalidClientMetadataError("redirect_uris must list at least one URI.")
        for uri in uris:
            problem = redirect_uri_problem(uri)
            if problem:
                raise InvalidClientMetadataError(error_description(problem))
        if problem := unsafe_metadata(metadata):  # shown to the owner: it must read as it is
            raise InvalidClientMetadataError(error_description(problem))
        method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in TOKEN_AUTH_METHODS:
            raise InvalidClientMetadataError(
                f"token_endpoint_auth_method must be one of {', '.join(TOKEN_AUTH_METHODS)}."
            )
        name = str(metadata.get("client_name") or "").strip()[:200] or "(no name given)"
        with transaction(self.conn):
            client, secret = store.add_client(
                self.conn,
                name=name,
                redirect_uris=uris,
                auth_method=method,
                verified=False,
                metadata={k: v for k, v in metadata.items() if k != "jwks"},
            )
            self.vault.audit(
                "client.register",
                actor="anonymous",
                client_id=client.client_id,
                detail={"name": name, "verified": False, "dynamic": True},
            )
        body = {
            **metadata,
            "client_name": name,
            "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_id": client.client_id,
            "client_id_issued_at": int(clock.now()),
        }
        if secret:
            body["client_secret"] = secret
            body["client_secret_expires_at"] = 0
        return 201, body, default_json_headers
