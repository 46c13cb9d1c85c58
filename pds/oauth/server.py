"""The authorization server: authlib's machinery, tightened where pds needs more.

What authlib gives as is: the authorization-code and refresh-token grants, client
authentication (``client_secret_basic``, ``client_secret_post``, ``none``), RFC 7009
revocation, RFC 7662 introspection, RFC 7591 claim validation, RFC 9207's ``iss`` parameter.
What pds adds by subclassing (each says so in its docstring):

- :class:`S256CodeChallenge`: PKCE with S256 is required for *every* client.
- :class:`CodeGrant`: RFC 9396 ``authorization_details``; codes consumed atomically, a
  replayed code revokes the grant's tokens.
- :class:`RefreshGrant`: refresh tokens rotated on every use, a replayed one revokes the grant.
- :class:`PdsAuthorizationServer`: the issuer as the request's base URL, ``iss`` on every
  authorization response including errors raised before the consent page.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.consts import default_json_headers
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    JsonPayload,
    JsonRequest,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint, InvalidClientMetadataError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask
from flask import request as flask_request

from pds import clock
from pds.db import transaction
from pds.errors import ConfigError
from pds.jsonbody import TooDeep, request_json
from pds.net import loopback_host
from pds.numbers import MAX_DIGITS, TooManyDigits
from pds.oauth import receipts, store
from pds.oauth.access import AccessError, all_scopes, parse_request
from pds.oauth.display import unsafe_metadata
from pds.oauth.policy import GrantRevokedByPolicy, enforce_on_refresh

if TYPE_CHECKING:
    from pds.policy import RuleSet
    from pds.vault import Vault

log = logging.getLogger(__name__)

CODE_REPLAYED = "The authorization code was already used; the tokens issued for it are revoked."
CODE_EXPIRED = "The authorization code has expired."
CODE_DEAD = (
    f"The authorization code had {store.CODE_VERIFIER_ATTEMPTS} wrong code_verifiers and can "
    "no longer be used; start a new authorization request."
)
CODE_INVALID = "Invalid 'code' in request."
REFRESH_REPLAYED = "The refresh token was already used; every token of this grant is now revoked."
REFRESH_INVALID = "The refresh token is invalid, expired or revoked."
GRANT_GONE = "The grant behind this code was revoked or has expired."
POLICY_REVOKED = "The grant was revoked: the owner's policies no longer allow any of it"
TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def check_issuer(issuer: str) -> str:
    """The issuer URL, or ConfigError: https, or plain http only on a loopback host.

    It is an identifier clients compare character for character (RFC 8414 §3.3), and the
    host every request must be addressed to (``pds.http.security.HostCheck``), so it must be
    written the one way a browser writes the origin: lower case, no spaces, the host in
    ASCII (an internationalised name in its ``xn--`` form), a port (if any) from 1 to 65535
    and not the scheme's default (a browser drops ``:443``; clients compare strings).
    pds refuses any other spelling rather than announce one it did not get. A trailing
    ``/`` is dropped.
    """
    hint = (
        "Set PDS_ISSUER to the https origin the server is reached at, e.g. https://pds.example.org."
    )
    if any(c.isspace() or not c.isprintable() for c in issuer):
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} has spaces or control characters in it", hint=hint
        )
    try:
        parts = urlsplit(issuer)
        hostname = parts.hostname
    except ValueError:  # an unclosed or malformed [IPv6] host
        parts, hostname = urlsplit(""), None
    if parts.scheme not in ("http", "https") or not hostname:
        raise ConfigError(f"PDS_ISSUER {issuer!r} is not an http(s) URL", hint=hint)
    if parts.query or parts.fragment or "@" in parts.netloc or issuer.endswith(("?", "#")):
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} must not have a query, fragment or user name", hint=hint
        )
    if parts.path not in ("", "/"):
        raise ConfigError(f"PDS_ISSUER {issuer!r} must be an origin, without a path", hint=hint)
    after_host = parts.netloc.rpartition("]")[2] if parts.netloc.startswith("[") else parts.netloc
    if after_host and after_host[0] != ":" and parts.netloc.startswith("["):
        raise ConfigError(f"PDS_ISSUER {issuer!r} is not an http(s) URL", hint=hint)
    colon, port = after_host.partition(":")[1:]
    if colon and not (re.fullmatch(r"[1-9][0-9]{0,4}", port) and int(port) <= 65535):
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} has a port that is not a whole number from 1 to 65535",
            hint=hint,
        )
    if colon and int(port) == {"http": 80, "https": 443}.get(parts.scheme):
        plain = issuer.rstrip("/").removesuffix(f":{port}")
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} must be written without the default port: {plain!r}",
            hint=hint,
        )
    if issuer != issuer.lower():
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} must be written in lower case: {issuer.lower().rstrip('/')!r}",
            hint=hint,
        )
    if not _ascii_host(hostname):
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} has a host name that is not a valid one",
            hint=hint + " A name is letters, digits, hyphens and dots (an internationalised "
            "name in its xn-- form); an IPv6 address is in brackets.",
        )
    if parts.scheme == "http" and not loopback_host(hostname):
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} uses plain http on a host that is not loopback",
            hint=hint + " Plain http is allowed only on 127.0.0.1, ::1 or localhost.",
        )
    return issuer.rstrip("/")


def _ascii_host(hostname: str) -> bool:
    """A DNS name in ASCII (each label 1 to 63 letters, digits or hyphens), or an IP address."""
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return len(hostname) <= 253 and all(
            re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", label)
            for label in hostname.split(".")
        )
    return True


class InvalidAuthorizationDetailsError(OAuth2Error):
    """RFC 9396 §5: ``authorization_details`` that are malformed or not supported."""

    error = "invalid_authorization_details"


# -- requests bound to the issuer -----------------------------------------------------------


class _IssuerRequest(FlaskOAuth2Request):
    """authlib's Flask request, with its URL built on the issuer rather than the socket.

    authlib refuses non-https URLs; behind a TLS-terminating proxy the socket sees http. The
    issuer was checked at start (https, or http on loopback), so this is the URL clients use.
    """

    def __init__(self, issuer: str) -> None:
        OAuth2Request.__init__(
            self,
            method=flask_request.method,
            uri=issuer + flask_request.full_path.rstrip("?"),
            headers=flask_request.headers,
        )
        self._request = flask_request
        self.payload = FlaskOAuth2Payload(flask_request)


class _LenientJsonPayload(JsonPayload):
    """The JSON object in the body, or None (authlib's raises a 415 on a wrong content type).
    A body nested deeper than ``pds.jsonbody.MAX_DEPTH`` is ``invalid_request``, unparsed, as
    is one holding a whole number too long to read."""

    def __init__(self) -> None:
        try:
            self._data = request_json(flask_request)
        except TooDeep as exc:
            message = f"The body is JSON nested more than {exc.limit} levels deep."
            raise InvalidRequestError(message) from None
        except TooManyDigits as exc:
            raise InvalidRequestError(
                f"The body holds a whole number of {exc.digits:,} digits; pds reads at most "
                f"{MAX_DIGITS:,}."
            ) from None

    @property
    def data(self) -> Any:
        return self._data if isinstance(self._data, dict) else None


class _IssuerJsonRequest(JsonRequest):
    def __init__(self, issuer: str) -> None:
        super().__init__(flask_request.method, issuer + flask_request.path, flask_request.headers)
        self.payload = _LenientJsonPayload()


class _Issuer(IssuerParameter):
    """RFC 9207 ``iss`` on authorization responses (authlib's extension, told the issuer)."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


def _find_token(conn: sqlite3.Connection, token: str, hint: str | None) -> store.Token | None:
    order = [store.find_access_token, store.find_refresh_token]
    if hint == "refresh_token":
        order.reverse()
    for find in order:
        if found := find(conn, token):
            return found
    return None


# -- PKCE -----------------------------------------------------------------------------------


class S256CodeChallenge(CodeChallenge):
    """PKCE, required for every client (confidential ones too), S256 only.

    authlib's ``CodeChallenge(required=True)`` lets a request without ``code_challenge``
    through and accepts ``plain``; here either is ``invalid_request`` and no code is issued.
    """

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": CodeChallenge.CODE_CHALLENGE_METHODS["S256"]}

    def validate_code_challenge(self, grant: grants.BaseGrant, redirect_uri: Any) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with method S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Unsupported 'code_challenge_method': only S256 is allowed.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: grants.BaseGrant, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        try:
            super().validate_code_verifier(grant, result)
        except InvalidGrantError:
            # Not consumed (whoever merely saw the code cannot spend the client's one use),
            # but counted: the third wrong verifier kills the code.
            code: store.AuthorizationCode = grant.request.authorization_code
            with transaction(grant.conn):
                failures = store.fail_code_verifier(grant.conn, code.code_hash)
            if failures >= store.CODE_VERIFIER_ATTEMPTS:
                raise InvalidGrantError(CODE_DEAD) from None
            raise


# -- grants ---------------------------------------------------------------------------------


class _VaultGrant:
    server: PdsAuthorizationServer

    @property
    def vault(self) -> Vault:
        return self.server.get_vault()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.vault.conn

    def _revoke_replayed(self, grant: store.Grant, reason: str, client_id: str) -> None:
        with transaction(self.conn):
            receipts.revoke(self.vault, grant.id, reason)
            self.vault.audit(
                "grant.revoke",
                actor=f"client:{client_id}",
                decision="refused",
                client_id=client_id,
                grant_id=grant.id,
                purpose=grant.purpose,
                reason=reason,
            )


class CodeGrant(_VaultGrant, grants.AuthorizationCodeGrant):
    """Authorization code grant with RAR, one-time codes and replay revocation.

    The consent view creates the grant (what the owner approved) and passes it as
    ``grant_user``; the code is bound to it, the client, the redirect URI and the challenge.
    The code is consumed with ``UPDATE ... WHERE used = 0`` in the same write transaction
    that stores the tokens: of two concurrent redemptions exactly one wins, and the loser
    (like any later replay) revokes the grant and so the tokens the first use produced.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def validate_authorization_request(self) -> str:
        raw = self.request.payload.redirect_uri
        if raw is not None and not _printable_ascii(raw):
            # authlib would echo it in an error description, where RFC 6749 forbids it.
            raise InvalidRequestError("The redirect_uri is not one this client registered.")
        redirect_uri = grants.AuthorizationCodeGrant.validate_authorization_request(self)
        payload = self.request.payload
        try:
            if len(payload.datalist.get("authorization_details", [])) > 1:
                raise InvalidRequestError("Multiple 'authorization_details' in request.")
            if not payload.scope and not payload.data.get("authorization_details"):
                raise InvalidScopeError(
                    "Ask for a scope (like read:transactions) or authorization_details."
                )
            try:
                self.request.pds_access = parse_request(
                    payload.scope, payload.data.get("authorization_details")
                )
            except AccessError as exc:
                raise InvalidAuthorizationDetailsError(_ascii(exc.message)) from None
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        grant: store.Grant = request.user
        data = request.payload.data
        store.save_code(
            self.conn,
            code,
            client_id=request.client.get_client_id(),
            grant_id=grant.id,
            redirect_uri=request.payload.redirect_uri,
            scope=grant.scope,
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
        )

    def generate_authorization_code(self) -> str:
        return store.new_secret()

    def query_authorization_code(self, code: str, client: store.Client) -> Any:
        found = store.find_code(self.conn, code)
        if found is None or found.client_id != client.client_id:
            return None
        if found.used:
            self._revoke_replayed(
                store.get_grant(self.conn, found.grant_id),
                "authorization code replayed",
                client.client_id,
            )
            raise InvalidGrantError(CODE_REPLAYED)
        if found.expires_at <= clock.now():
            raise InvalidGrantError(CODE_EXPIRED)
        if found.dead:
            raise InvalidGrantError(CODE_DEAD)
        return found

    def authenticate_user(self, authorization_code: store.AuthorizationCode) -> Any:
        grant = store.get_grant(self.conn, authorization_code.grant_id)
        return grant if grant.is_active() else None

    def create_token_response(self) -> tuple[int, dict, list]:
        client: store.Client = self.request.client
        code: store.AuthorizationCode = self.request.authorization_code
        grant = self.authenticate_user(code)
        if grant is None:
            raise InvalidGrantError(GRANT_GONE)
        self.request.user = grant
        token = self.generate_token(user=grant, scope=code.scope, include_refresh_token=True)
        with transaction(self.conn):
            won = store.consume_code(self.conn, code.code_hash)
            if won:
                _save(self, grant, client, token, "token.issue")
        if not won:
            self._revoke_replayed(grant, "authorization code replayed", client.client_id)
            raise InvalidGrantError(CODE_REPLAYED)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class RefreshGrant(_VaultGrant, grants.RefreshTokenGrant):
    """Refresh with rotation: every use retires the old pair and issues a new one.

    Retiring is ``UPDATE ... WHERE rotated_at IS NULL`` in the write transaction that stores
    the new pair, so one presentation wins; presenting a retired refresh token again (a
    replay: it leaked, or a client raced itself) revokes the whole grant.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Any:
        client: store.Client = self.request.client
        token = store.find_refresh_token(self.conn, refresh_token)
        if token is None or not token.check_client(client):
            raise InvalidGrantError(REFRESH_INVALID)
        if token.rotated_at is not None and token.revoked_at is None:
            self._revoke_replayed(token.grant, "refresh token replayed", client.client_id)
            raise InvalidGrantError(REFRESH_REPLAYED)
        if token.is_revoked() or token.is_expired():
            raise InvalidGrantError(REFRESH_INVALID)
        return token

    def authenticate_user(self, refresh_token: store.Token) -> Any:
        return refresh_token.grant

    def create_token_response(self) -> tuple[int, dict, list]:
        client: store.Client = self.request.client
        old: store.Token = self.request.refresh_token
        grant = old.grant
        with transaction(self.conn):
            try:  # a grant wider than today's policies is narrowed (or revoked), never kept
                grant = self.server.narrow_to_policies(grant)
            except GrantRevokedByPolicy as exc:
                revoked = exc
            else:
                revoked = None
        if revoked is not None:
            raise InvalidGrantError(_ascii(f"{POLICY_REVOKED}: {revoked.reason}"))
        self.request.user = grant
        kept = set(grant.access.scopes())
        scope = " ".join(s for s in (self.request.payload.scope or old.scope).split() if s in kept)
        token = self.generate_token(user=grant, scope=scope, include_refresh_token=True)
        with transaction(self.conn):
            won = store.rotate_refresh(self.conn, old.id)
            if won:
                _save(self, grant, client, token, "token.refresh")
        if not won:
            self._revoke_replayed(grant, "refresh token replayed", client.client_id)
            raise InvalidGrantError(REFRESH_REPLAYED)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def _save(
    g: _VaultGrant, grant: store.Grant, client: store.Client, token: dict, action: str
) -> None:
    store.save_token(
        g.conn,
        grant_id=grant.id,
        client_id=client.client_id,
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token"),
        scope=token["scope"],
        expires_in=token["expires_in"],
    )
    g.vault.audit(
        action,
        actor=f"client:{client.client_id}",
        client_id=client.client_id,
        grant_id=grant.id,
        purpose=grant.purpose,
    )


def _ascii(text: str) -> str:
    """RFC 6749 error descriptions allow printable ASCII except '"' and '\\'."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "'" for c in text)


def generate_bearer_token(
    grant_type: str,
    client: store.Client,
    user: store.Grant | None = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = True,
) -> dict[str, Any]:
    """Opaque 256-bit tokens; the access token lives 1 h, never past the grant's expiry.

    The response also carries the approved RFC 9396 ``authorization_details``.
    """
    assert user is not None
    lifetime = max(1, min(store.ACCESS_TOKEN_SECONDS, user.expires_at - clock.now()))
    scopes = (scope or "").split()
    token: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": store.new_secret(),
        "expires_in": lifetime,
        "scope": " ".join(scopes),
        "authorization_details": user.access.restricted_to(scopes).authorization_details(),
    }
    if include_refresh_token:
        token["refresh_token"] = store.new_secret()
    return token


# -- revocation, introspection, registration ------------------------------------------------


class Revocation(_VaultGrant, RevocationEndpoint):
    """RFC 7009. Revoking an access token ends that token (and its refresh token); revoking a
    refresh token ends the whole grant, as §2.1 suggests."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _find_token(self.conn, token_string, token_type_hint)

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


class Introspection(_VaultGrant, IntrospectionEndpoint):
    """RFC 7662; a client may introspect only its own tokens (others are ``active: false``)."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _find_token(self.conn, token_string, token_type_hint)

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


class Registration(_VaultGrant, ClientRegistrationEndpoint):
    """RFC 7591 open dynamic registration. Clients made here are *unverified*: the consent
    page says so. pds issues its own ids, keeps only the secret's hash, and accepts only what
    it supports (code + refresh, the three client authentication methods, https or loopback
    redirect URIs)."""

    def create_endpoint_request(self, request: Any) -> Any:
        return _IssuerJsonRequest(self.server.issuer)

    def authenticate_token(self, request: Any) -> Any:
        return "anonymous"  # open registration: anyone may register, as unverified

    def get_server_metadata(self) -> dict[str, Any]:
        return self.server.metadata()

    def create_registration_response(self, request: Any) -> tuple[int, dict, list]:
        if request.payload.data is None:
            raise InvalidClientMetadataError("The body must be a JSON object.")
        metadata = self.extract_client_metadata(request)
        uris = metadata.get("redirect_uris") or []
        if not uris or not all(isinstance(u, str) for u in uris):
            raise InvalidClientMetadataError("redirect_uris must list at least one URI.")
        for uri in uris:
            problem = redirect_uri_problem(uri)
            if problem:
                raise InvalidClientMetadataError(_ascii(problem))
        if problem := unsafe_metadata(metadata):  # shown to the owner: it must read as it is
            raise InvalidClientMetadataError(_ascii(problem))
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


def _printable_ascii(text: str) -> bool:
    return all(" " < ch < "\x7f" for ch in text)


def redirect_uri_problem(uri: str) -> str | None:
    """Why a redirect URI cannot be registered, or None: https, or http on loopback; no
    fragment, no user name."""
    if not _printable_ascii(uri):
        return "a redirect URI must be printable ASCII with no spaces or control characters"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return f"redirect URI {uri!r} is not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"redirect URI {uri!r} must be an https URL"
    if parts.fragment or "#" in uri:
        return f"redirect URI {uri!r} must not have a fragment"
    if parts.username is not None or parts.password is not None:
        return f"redirect URI {uri!r} must not have a user name"
    if parts.scheme == "http" and not loopback_host(parts.hostname):
        return f"redirect URI {uri!r} uses http on a host that is not loopback; use https"
    return None


# -- the server -----------------------------------------------------------------------------


class PdsAuthorizationServer(AuthorizationServer):
    """authlib's Flask server on the vault's tables."""

    def __init__(
        self,
        app: Flask,
        issuer: str,
        get_vault: Callable[[], Vault],
        get_rules: Callable[[], RuleSet],
    ) -> None:
        """``get_vault`` and ``get_rules``: the request's vault and the policies in force
        (the HTTP layer's ``pds.http.context``)."""
        self.issuer = issuer
        self.get_vault = get_vault
        self.get_rules = get_rules
        super().__init__()
        self.init_app(app, query_client=self._find_client, save_token=self._no_save)
        self.register_token_generator("default", generate_bearer_token)
        self.scopes_supported = all_scopes()
        self.register_grant(CodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        self.register_endpoint(Registration)
        self._iss = _Issuer(issuer)
        self.register_extension(self._iss)

    def narrow_to_policies(self, grant: store.Grant) -> store.Grant:
        """The grant within today's policies (stored narrowed, or GrantRevokedByPolicy)."""
        return enforce_on_refresh(self.get_vault(), grant, self.get_rules(), datetime.now(UTC))

    def _find_client(self, client_id: str) -> store.Client | None:
        client = store.get_client(self.get_vault().conn, client_id)
        return client if client is not None and client.removed_at is None else None

    @staticmethod
    def _no_save(token: dict, request: Any) -> None:  # pragma: no cover - grants save
        raise AssertionError("tokens are saved by the grants, in their transaction")

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return _IssuerRequest(self.issuer)

    def handle_response(self, status_code: int, payload: Any, headers: Any) -> Any:
        response = super().handle_response(status_code, payload, headers)
        if status_code == 302 and flask_request.method == "POST":
            response.status_code = 303  # the consent form's answer: GET the redirect URI
        return response

    def error_redirect(self, request: OAuth2Request, error: OAuth2Error) -> Any:
        """An authorization error sent back to the (validated) redirect URI, with ``iss``."""
        response = self.handle_error_response(request, error)
        self._iss.add_issuer_parameter(self, response)
        return response

    def add_iss(self, location: str) -> str:
        return add_params_to_uri(location, {"iss": self.issuer})

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 metadata: exactly what this server supports."""
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/oauth/authorize",
            "token_endpoint": f"{i}/oauth/token",
            "revocation_endpoint": f"{i}/oauth/revoke",
            "introspection_endpoint": f"{i}/oauth/introspect",
            "registration_endpoint": f"{i}/oauth/register",
            "service_documentation": f"{i}/api/v1/openapi.json",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
            "revocation_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
            "introspection_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": all_scopes(),
            "authorization_response_iss_parameter_supported": True,
            "authorization_details_types_supported": ["pds_records"],
        }
