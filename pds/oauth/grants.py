"""The token endpoint's grants, as authlib runs them, on the vault's tables.

- :class:`S256CodeChallenge`: PKCE with S256 is required for *every* client.
- :class:`CodeGrant`: RFC 9396 ``authorization_details``; codes consumed atomically, a
  replayed code revokes the grant's tokens.
- :class:`RefreshGrant`: refresh tokens rotated on every use, a replayed one revokes the grant.
- :func:`generate_bearer_token`: opaque tokens, never outliving their grant.

The server they run in is ``pds.oauth.server``; they know it only as :class:`Server`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    JsonRequest,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc7636 import CodeChallenge

from pds import clock
from pds.db import transaction
from pds.oauth import receipts, store
from pds.oauth.access import AccessError, parse_request
from pds.oauth.policy import GrantRevokedByPolicy
from pds.oauth.redirects import printable_ascii

if TYPE_CHECKING:
    from pds.vault import Vault

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


class InvalidAuthorizationDetailsError(OAuth2Error):
    """RFC 9396 §5: ``authorization_details`` that are malformed or not supported."""

    error = "invalid_authorization_details"


def error_description(text: str) -> str:
    """RFC 6749 error descriptions allow printable ASCII except '"' and '\\'."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "'" for c in text)


class Server(Protocol):
    """What the grants and endpoints ask of ``pds.oauth.server.PdsAuthorizationServer``."""

    issuer: str
    get_vault: Callable[[], Vault]

    def narrow_to_policies(self, grant: store.Grant) -> store.Grant: ...

    def metadata(self) -> dict[str, Any]: ...

    def json_request(self) -> JsonRequest: ...


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


class VaultBound:
    """A grant or endpoint of the server: its vault is the request's."""

    server: Server

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


class CodeGrant(VaultBound, grants.AuthorizationCodeGrant):
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
        if raw is not None and not printable_ascii(raw):
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
                raise InvalidAuthorizationDetailsError(error_description(exc.message)) from None
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


class RefreshGrant(VaultBound, grants.RefreshTokenGrant):
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
            raise InvalidGrantError(error_description(f"{POLICY_REVOKED}: {revoked.reason}"))
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
    g: VaultBound, grant: store.Grant, client: store.Client, token: dict, action: str
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
