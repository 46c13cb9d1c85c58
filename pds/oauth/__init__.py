"""The OAuth 2 authorization server (authlib): clients, codes, tokens, grants.

- ``access``: what a request asks for / a grant covers (scopes + RFC 9396 RAR), narrowing.
- ``store``: the SQL for clients, grants, codes and tokens (schema 3).
- ``server``: authlib's server and grants, subclassed where pds is stricter.
- ``issuer``: the issuer URL, checked at start (no Flask needed).
- ``admin``: what the owner does (add clients, list and revoke grants), audited.
- ``views``: the token, revocation, introspection, registration and metadata endpoints.

The authorization endpoint itself (login and consent) is in ``pds.http.web.consent``.
"""
