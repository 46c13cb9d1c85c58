"""Failed requests at the token, revocation and introspection endpoints are throttled.

Every answer of those endpoints that is an OAuth error (400 or 401: a wrong client secret,
an unknown client, a bad, used or expired code or refresh token, a malformed request) counts
one failure against the client id the request named and one against its address
(``pds.http.limits``: :data:`~pds.http.limits.CLIENT_FAILURES_PER_WINDOW` per client id and
:data:`~pds.http.limits.ADDRESS_FAILURES_PER_WINDOW` per address in a fixed window of
:data:`~pds.http.limits.FAILURE_WINDOW` seconds, counted across worker processes). Successful
requests are never counted: they only read the two counters.

Once either is used up, every request naming that client id, or from that address, is
answered 429 before anything else is looked at — the right secret too, so a 429 never tells
a guesser that a guess was right — until the window that filled ends (``Retry-After``). The
answer has RFC 6749 §5.2's shape; as there is no error code for "too many requests" at the
token endpoint (``temporarily_unavailable`` is defined for the authorization endpoint only),
it is ``invalid_request`` with a description, as some large providers answer; the 429 status
and ``Retry-After`` carry the meaning. Refused requests are not counted and not logged.

A request is checked before it is answered and counted after (so that a success never
writes): failing requests already in flight when the limit fills are answered, and counted,
as usual — at most one more per concurrent request.

The price of keying on the client id: someone who knows a client's id can keep that client
from these endpoints by failing on purpose (its access tokens keep working at the API).
"""

from __future__ import annotations

from collections.abc import Callable

from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import Response, request

from pds.http import limits
from pds.http.errors import oauth_error
from pds.words import plural

THROTTLED = "too many failed requests {whom}; try again in {seconds}"
FOR_CLIENT = "for this client"
FROM_ADDRESS = "from this address"
NOT_UTF8 = "The HTTP Basic credentials are not UTF-8; send the client id and secret as issued."
MAX_CLIENT_ID = 256  # longer ones are cut: the counter is kept under a hash of it anyway


class _NotUtf8(ValueError):
    pass


def claimed_client_id() -> str | None:
    """The client id the request names: in HTTP Basic credentials, else in the form."""
    try:
        client_id, _ = extract_basic_authorization(request.headers)
    except UnicodeDecodeError:  # authlib would fail with a 500
        raise _NotUtf8 from None
    client_id = client_id or request.form.get("client_id")
    return client_id[:MAX_CLIENT_ID] if client_id else None


def guarded(respond: Callable[[], Response]) -> Response:
    """``respond()``, unless the client id or the address has used up its failures (429);
    an OAuth error it answers counts one failure for each."""
    try:
        client_id = claimed_client_id()
    except _NotUtf8:
        client_id, respond = None, _credentials_not_utf8
    who = limits.address()
    by_client, by_address = limits.client_failures(), limits.address_failures()
    waits = [(by_address.wait(who), FROM_ADDRESS)]
    if client_id is not None:
        waits.insert(0, (by_client.wait(client_id), FOR_CLIENT))
    seconds, whom = max(waits, key=lambda w: w[0])
    if seconds:
        return too_many_failures(seconds, whom)
    response = respond()
    if response.status_code in (400, 401):
        if client_id is not None:
            by_client.hit(client_id)
        by_address.hit(who)
    return response


def _credentials_not_utf8() -> Response:
    return oauth_error(
        401, "invalid_client", NOT_UTF8, WWW_Authenticate='Basic error="invalid_client"'
    )


def too_many_failures(seconds: int, whom: str) -> Response:
    """429 in RFC 6749 §5.2 shape, with ``Retry-After``; nothing stored, nothing logged."""
    description = THROTTLED.format(whom=whom, seconds=plural(seconds, "second"))
    return oauth_error(429, "invalid_request", description, Retry_After=str(seconds))
