"""The business's side of a pds vault: OAuth 2 with authlib's client, then the records API.

One :class:`Client` per vault (a vault belongs to one person):

1. :meth:`Client.discover` reads the RFC 8414 metadata at the vault's base URL and checks
   that its ``issuer`` is that URL;
2. :meth:`Client.register` registers the business (RFC 7591), or the client id and secret
   the owner gave (``pds clients add``) are passed in;
3. :meth:`Client.authorization_url` builds the request the person's browser is sent to:
   PKCE S256 always, and RFC 9396 ``authorization_details`` from :class:`Access` items;
4. :meth:`Client.exchange` takes the URL the browser came back to, checks its ``iss``
   (RFC 9207) and ``state``, and redeems the code;
5. the records API (:meth:`records`, :meth:`aggregates`, :meth:`changes`, subscriptions,
   the grant and its consent receipt) with the access token; :meth:`refresh` rotates the
   tokens (the new refresh token replaces the old one; ``on_token`` is called with every
   new token so the caller can store it), :meth:`revoke` ends the grant.

authlib's ``OAuth2Session`` (a ``requests.Session``) does the OAuth work and adds the bearer
token to API calls, refreshing it first when it has expired. Errors are
:class:`~pds_client.errors.OAuthError` (token, revocation, registration, authorization) and
:class:`~pds_client.errors.ApiError` (problem+json from the API).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from pds_client.errors import (
    ApiError,
    AuthorizationError,
    DiscoveryError,
    OAuthError,
    PdsClientError,
)
from pds_client.models import (
    Access,
    Aggregates,
    AuthorizationRequest,
    Bucket,
    Change,
    ChangesPage,
    Page,
    RecordChange,
    Subscription,
)
from pds_client.receipts import Receipt, verify_receipt
from pds_client.records import Record, record_from

METADATA_PATH = "/.well-known/oauth-authorization-server"
TIMEOUT = 30
TokenCallback = Callable[[dict[str, Any]], None]


# -- the client ---------------------------------------------------------------------------------


class Client:
    """A business's connection to one vault (see the module's docstring)."""

    def __init__(
        self,
        metadata: dict[str, Any],
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        token: dict[str, Any] | None = None,
        on_token: TokenCallback | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        """``metadata``: the vault's RFC 8414 metadata (:meth:`discover` reads it);
        ``token``: a token stored earlier; ``on_token``: called with every new token (after
        :meth:`exchange` and every refresh), to store it in place of the old one."""
        self.metadata = metadata
        self.issuer: str = metadata["issuer"]
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.on_token = on_token
        self.timeout = timeout
        self._session = self._new_session(token)

    # -- discovery and registration --

    @classmethod
    def discover(cls, base_url: str, **kwargs: Any) -> Client:
        """The client for the vault at ``base_url`` (its issuer, e.g. ``https://vault.example``),
        from its RFC 8414 metadata; DiscoveryError if the metadata is missing, names another
        issuer, or lacks what pds always offers (PKCE S256, ``pds_records`` details)."""
        issuer = base_url.rstrip("/")
        try:
            resp = requests.get(issuer + METADATA_PATH, timeout=kwargs.get("timeout", TIMEOUT))
        except requests.RequestException as exc:
            raise DiscoveryError(f"cannot reach {issuer}: {exc}") from None
        if resp.status_code != 200:
            raise DiscoveryError(f"{issuer}{METADATA_PATH} answered {resp.status_code}")
        try:
            metadata = resp.json()
        except ValueError:
            metadata = None
        if not isinstance(metadata, dict):
            raise DiscoveryError(f"{issuer}{METADATA_PATH} is not a JSON object")
        if metadata.get("issuer") != issuer:
            raise DiscoveryError(
                f"the metadata names the issuer {metadata.get('issuer')!r}, not {issuer!r} "
                "(RFC 8414 §3.3): use the vault's address exactly as it gives it"
            )
        for name in ("authorization_endpoint", "token_endpoint"):
            if not isinstance(metadata.get(name), str):
                raise DiscoveryError(f"the metadata of {issuer} has no {name}")
        if "S256" not in (metadata.get("code_challenge_methods_supported") or []):
            raise DiscoveryError(f"{issuer} does not offer PKCE with S256")
        return cls(metadata, **kwargs)

    def register(
        self,
        client_name: str,
        redirect_uris: Sequence[str],
        *,
        public: bool = False,
        **metadata: Any,
    ) -> dict[str, Any]:
        """Register this business (RFC 7591 open registration; the person is told it is
        unverified). ``metadata``: more client metadata (``client_uri``, ``policy_uri``,
        ``contacts``, ...). Returns the vault's answer (with ``client_id`` and, unless
        ``public``, ``client_secret``: store both); this client then uses them."""
        endpoint = self.metadata.get("registration_endpoint")
        if not endpoint:
            raise OAuthError(
                "access_denied",
                "this vault does not take registrations; ask the owner to add you",
            )
        body = {
            **metadata,
            "client_name": client_name,
            "redirect_uris": list(redirect_uris),
            "token_endpoint_auth_method": "none" if public else "client_secret_basic",
        }
        with _reaching(endpoint):
            resp = requests.post(endpoint, json=body, timeout=self.timeout)
        answer = _oauth_answer(resp, 201)
        self.client_id = answer["client_id"]
        self.client_secret = answer.get("client_secret")
        self.redirect_uri = self.redirect_uri or redirect_uris[0]
        self._session = self._new_session(None)
        return answer

    # -- authorization --

    def authorization_url(
        self,
        access: Iterable[Access] = (),
        *,
        scope: str | Sequence[str] | None = None,
        redirect_uri: str | None = None,
    ) -> AuthorizationRequest:
        """The URL to send the person to: PKCE S256 (a new verifier), a new ``state``, the
        ``access`` items as ``authorization_details`` and/or a ``scope``."""
        redirect_uri = redirect_uri or self.redirect_uri
        if not self.client_id or not redirect_uri:
            raise ValueError("register first, or give client_id and redirect_uri")
        details = [a.detail() for a in access]
        if not details and not scope:
            raise ValueError("ask for something: Access items or a scope")
        extra: dict[str, Any] = {"redirect_uri": redirect_uri}
        if scope:
            extra["scope"] = scope if isinstance(scope, str) else " ".join(scope)
        if details:
            extra["authorization_details"] = json.dumps(details, separators=(",", ":"))
        verifier = secrets.token_urlsafe(48)
        url, state = self._session.create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=verifier, **extra
        )
        return AuthorizationRequest(url, state, verifier, redirect_uri)

    def exchange(self, callback_url: str, request: AuthorizationRequest) -> dict[str, Any]:
        """Finish the authorization with the URL the browser came back to: its ``iss`` must
        be this vault's issuer (RFC 9207: checked first, errors included) and its ``state``
        the request's; then the code is redeemed (with the PKCE verifier). Returns the token
        (``scope`` and ``authorization_details`` say what the person approved, which may be
        less than asked) and passes it to ``on_token``."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}
        iss = query.get("iss")
        if iss is None and self.metadata.get("authorization_response_iss_parameter_supported"):
            raise AuthorizationError(
                "invalid_issuer",
                "the redirect has no iss parameter, which this vault always sends (RFC 9207)",
            )
        if iss is not None and iss != self.issuer:
            raise AuthorizationError(
                "invalid_issuer",
                f"the redirect's iss {iss!r} is not this vault's issuer {self.issuer!r} "
                "(RFC 9207): another server answered; do not use it",
            )
        if query.get("state") != request.state:
            raise AuthorizationError(
                "invalid_state", "the redirect's state is not the one this request sent"
            )
        if "error" in query:
            raise AuthorizationError(query["error"], query.get("error_description"))
        if "code" not in query:
            raise AuthorizationError(
                "invalid_request", "the redirect carries neither a code nor an error"
            )
        with _reaching(self.metadata["token_endpoint"]):
            token = self._session.fetch_token(
                self.metadata["token_endpoint"],
                grant_type="authorization_code",
                code=query["code"],
                redirect_uri=request.redirect_uri,
                code_verifier=request.code_verifier,
                timeout=self.timeout,
            )
        if self.on_token:
            self.on_token(dict(token))
        return dict(token)

    # -- tokens --

    @property
    def token(self) -> dict[str, Any] | None:
        """The current token (``access_token``, ``refresh_token``, ``expires_at``, ...)."""
        return dict(self._session.token) if self._session.token else None

    def refresh(self, refresh_token: str | None = None) -> dict[str, Any]:
        """Rotate the tokens: the vault answers a new pair and retires the old one (its
        refresh token is refused from now on; presenting it again revokes the grant).
        The new token is passed to ``on_token``."""
        endpoint = self.metadata["token_endpoint"]
        if not (refresh_token or (self._session.token or {}).get("refresh_token")):
            raise OAuthError("missing_token", _WORDS["missing_token"])
        with _reaching(endpoint):
            token = self._session.refresh_token(
                endpoint, refresh_token=refresh_token, timeout=self.timeout
            )
        return dict(token)

    def revoke(self, token: str | None = None, hint: str = "refresh_token") -> None:
        """End the grant (RFC 7009; revoking the refresh token ends every token of it), or
        only an access token with ``hint="access_token"``."""
        endpoint = self.metadata.get("revocation_endpoint")
        if not endpoint:
            raise OAuthError("unsupported_token_type", "the vault has no revocation endpoint")
        current = self._session.token or {}
        value = token or current.get(hint)
        if not value:
            raise ValueError(f"no {hint} to revoke")
        with _reaching(endpoint):
            resp = self._session.revoke_token(
                endpoint, value, token_type_hint=hint, timeout=self.timeout
            )
        _oauth_answer(resp, 200, empty=True)

    # -- the records API --

    def pages(
        self,
        category: str,
        *,
        since: date | str | None = None,
        until: date | str | None = None,
        page_size: int | None = None,
        fields: Sequence[str] | None = None,
        cursor: str | None = None,
    ) -> Iterator[Page]:
        """The pages of one category, oldest first, following ``next_cursor``."""
        params = {
            "category": category,
            "since": _day(since),
            "until": _day(until),
            "limit": page_size,
        }
        while True:
            body = self.get("/api/v1/records", params={**params, "cursor": cursor})
            page = Page([record_from(r, fields) for r in body["records"]], body["next_cursor"])
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def records(
        self,
        category: str,
        *,
        since: date | str | None = None,
        until: date | str | None = None,
        fields: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[Record]:
        """Every record of ``category`` the grant covers (within ``since``/``until``,
        inclusive), oldest first, as typed objects (``pds_client.records``), page after
        page. The vault sends only the fields the grant allows; ``fields`` narrows what the
        objects keep further (the rest is dropped as it arrives)."""
        for page in self.pages(
            category, since=since, until=until, page_size=page_size, fields=fields
        ):
            yield from page.records

    def record(self, record_id: int) -> Record:
        """One record the grant covers (ApiError 404 ``not_found`` otherwise)."""
        return record_from(self.get(f"/api/v1/records/{int(record_id)}"))

    def add_record(
        self,
        category: str,
        occurred_at: str,
        payload: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Hand a record back to the person (needs ``write:<category>``): ``{"id",
        "category", "occurred_at", "created"}``."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = {"category": category, "occurred_at": occurred_at, "payload": payload}
        return self._api("POST", "/api/v1/records", json=body, headers=headers)

    def aggregates(
        self,
        category: str,
        *,
        measure: str = "count",
        field: str | None = None,
        by: str = "month",
        since: date | str | None = None,
        until: date | str | None = None,
    ) -> Aggregates:
        """Totals of one category per calendar cell (never a record); see docs/api.md."""
        body = self.get(
            "/api/v1/aggregates",
            params={
                "category": category,
                "measure": measure,
                "field": field,
                "by": by,
                "since": _day(since),
                "until": _day(until),
            },
        )
        buckets = [
            Bucket(
                b["bucket"],
                b["count"],
                b["value"] if measure == "count" else Decimal(b["value"]),
                b.get("currency"),
                b.get("unit"),
            )
            for b in body["buckets"]
        ]
        keys = ("category", "measure", "field", "by", "since", "until", "min_bucket", "per")
        return Aggregates(
            **{k: body.get(k) for k in keys}, buckets=buckets, suppressed=body["suppressed"]
        )

    def changes_page(self, cursor: str | None = None, *, page_size: int = 100) -> ChangesPage:
        """One page of the change feed (``GET /api/v1/changes``): what was added, changed or
        forgotten in the categories the grant reads, after ``cursor`` (None: since the
        grant began); keep ``next_cursor`` to read on later."""
        params: dict[str, Any] = {"limit": page_size}
        if cursor:
            params["cursor"] = cursor
        body = self.get("/api/v1/changes", params=params)
        found = [RecordChange(**c) for c in body["changes"]]
        return ChangesPage(found, body["next_cursor"], body["more"])

    def changes(
        self, since: int | None = None, *, cursor: str | None = None, page_size: int = 100
    ) -> Iterator[Any]:
        """The change feed after ``cursor``, oldest first, page after page: each a
        :class:`RecordChange` (use :meth:`changes_page` to keep the cursor). With
        ``since`` (a sequence number), the earlier feed of the profile and intentions
        instead: each a :class:`Change` (field names)."""
        if since is not None:
            yield from self._field_changes(since, page_size)
            return
        while True:
            page = self.changes_page(cursor, page_size=page_size)
            yield from page.changes
            if not page.more:
                return
            cursor = page.next_cursor

    def _field_changes(self, since: int, page_size: int) -> Iterator[Change]:
        while True:
            body = self.get("/api/v1/changes", params={"since": since, "limit": page_size})
            found = [Change(c["seq"], c["category"], c["fields"], c["at"]) for c in body["changes"]]
            yield from found
            if len(found) < page_size:
                return
            since = body["next_since"]

    def subscribe(self, url: str, categories: Sequence[str]) -> Subscription:
        """Ask for webhooks at ``url`` (https to a public host) for changes to
        ``categories``; the answer's ``secret`` is shown this once: store it to verify them
        (:func:`pds_client.verify_webhook`)."""
        body = self._api(
            "POST", "/api/v1/subscriptions", json={"url": url, "categories": list(categories)}
        )
        return _subscription(body)

    def subscriptions(self) -> list[Subscription]:
        """This grant's webhook subscriptions (without their secrets)."""
        return [_subscription(s) for s in self.get("/api/v1/subscriptions")["subscriptions"]]

    def unsubscribe(self, subscription_id: str) -> None:
        """Stop one of this grant's subscriptions."""
        self._api("DELETE", f"/api/v1/subscriptions/{subscription_id}")

    def grant(self) -> dict[str, Any]:
        """This grant as the token may use it (``id``, ``scope``, ``authorization_details``,
        ``purpose``, ``created_at``, ``expires_at``)."""
        return self.get("/api/v1/grant")

    def receipt(self, key: dict[str, Any] | None = None) -> Receipt:
        """The grant's newest consent receipt, verified: with ``key`` (the vault's public
        JWK, pinned from an earlier answer or the owner), else with the key the vault sends
        beside it, which proves only that the receipt was not changed since it was signed."""
        body = self.get("/api/v1/grant/receipt")
        return verify_receipt(body["receipt"], key or body["key"], client_id=self.client_id)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """``GET`` an API path with the access token; the parsed JSON answer."""
        return self._api("GET", path, params=params)

    # -- plumbing --

    def _new_session(self, token: dict[str, Any] | None) -> OAuth2Session:
        session = OAuth2Session(
            client_id=self.client_id,
            client_secret=self.client_secret,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            token=token,
            update_token=self._updated,
            token_endpoint=self.metadata["token_endpoint"],
            default_timeout=self.timeout,
        )
        for hook in ("access_token_response", "refresh_token_response"):
            session.register_compliance_hook(hook, _token_errors)
        return session

    def _updated(self, token: dict[str, Any], **_: Any) -> None:
        if self.on_token:
            self.on_token(dict(token))

    def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        if "params" in kwargs and kwargs["params"] is not None:
            kwargs["params"] = {k: v for k, v in kwargs["params"].items() if v is not None}
        with _reaching(self.issuer + path):
            resp = self._session.request(method, self.issuer + path, **kwargs)
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = None
            raise ApiError.from_body(resp.status_code, body)
        return None if resp.status_code == 204 else resp.json()


_WORDS = {
    "missing_token": "the client has no token yet: finish an authorization (exchange) first, "
    "or pass the token you stored"
}


@contextmanager
def _reaching(url: str) -> Iterator[None]:
    """authlib's errors as OAuthError, and a vault that cannot be reached as PdsClientError
    (never a requests exception)."""
    try:
        yield
    except AuthlibBaseError as exc:
        raise OAuthError(exc.error, exc.description or _WORDS.get(exc.error)) from None
    except requests.RequestException as exc:
        raise PdsClientError(f"cannot reach {url}: {exc}") from None


def _day(value: date | str | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


def _subscription(body: dict[str, Any]) -> Subscription:
    return Subscription(
        body["id"], body["url"], body["categories"], body["created_at"], body.get("secret")
    )


def _oauth_answer(resp: requests.Response, ok: int, empty: bool = False) -> Any:
    """The JSON of an OAuth endpoint's answer, or OAuthError with its error fields."""
    if resp.status_code == ok:
        return None if empty else resp.json()
    try:
        body = resp.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    raise OAuthError(
        str(body.get("error") or f"http_{resp.status_code}"),
        body.get("error_description"),
        resp.status_code,
    )


def _token_errors(resp: requests.Response) -> requests.Response:
    """authlib's compliance hook on token answers: an error becomes OAuthError with its
    HTTP status (authlib's own error would drop it)."""
    if resp.status_code >= 400:
        _oauth_answer(resp, 200)
    return resp
