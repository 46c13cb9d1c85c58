"""The authorization server: authlib's machinery, tightened where pds needs more.

What authlib gives as is: the authorization-code and refresh-token grants, client
authentication (``client_secret_basic``, ``client_secret_post``, ``none``), RFC 7009
revocation, RFC 7662 introspection, RFC 7591 claim validation, RFC 9207's ``iss`` parameter.
What pds adds by subclassing (each says so in its docstring):

- the grants (``pds.oauth.grants``): PKCE with S256 for every client, RFC 9396
  ``authorization_details``, one-time codes and rotated refresh tokens whose replay revokes
  the grant;
- the other endpoints (``pds.oauth.endpoints``): revocation, introspection of a client's own
  tokens, open registration of *unverified* clients;
- :class:`PdsAuthorizationServer`: the issuer as the request's base URL, ``iss`` on every
  authorization response including errors raised before the consent page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, JsonPayload, JsonRequest, OAuth2Request
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask
from flask import request as flask_request

from pds import clock
from pds.jsonbody import TooDeep, request_json
from pds.numbers import MAX_DIGITS, TooManyDigits
from pds.oauth import store
from pds.oauth.access import all_scopes
from pds.oauth.endpoints import Introspection, Registration, Revocation
from pds.oauth.grants import (
    TOKEN_AUTH_METHODS,
    CodeGrant,
    RefreshGrant,
    S256CodeChallenge,
    generate_bearer_token,
)
from pds.oauth.policy import enforce_on_refresh

if TYPE_CHECKING:
    from pds.policy import RuleSet
    from pds.vault import Vault


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
        return enforce_on_refresh(self.get_vault(), grant, self.get_rules(), clock.utcnow())

    def _find_client(self, client_id: str) -> store.Client | None:
        client = store.get_client(self.get_vault().conn, client_id)
        return client if client is not None and client.removed_at is None else None

    @staticmethod
    def _no_save(token: dict, request: Any) -> None:  # pragma: no cover - grants save
        raise AssertionError("tokens are saved by the grants, in their transaction")

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return _IssuerRequest(self.issuer)

    def json_request(self) -> JsonRequest:
        """This request as authlib's JSON request (RFC 7591 registration), on the issuer."""
        return _IssuerJsonRequest(self.issuer)

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
