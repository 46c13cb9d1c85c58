"""A method a URL does not take: 405 with an ``Allow`` header naming the ones it does
(RFC 9110 §15.5.6), on every route of every blueprint (found by walking the URL map)."""

from __future__ import annotations

from werkzeug.routing import AnyConverter, IntegerConverter, Rule

MACHINE = (
    "/api/",
    "/audit/",
    "/oauth/token",
    "/oauth/re",
    "/oauth/in",
    "/.well-known/",
    "/healthz",
)


def _placeholder(rule: Rule, arg: str) -> object:
    converter = rule._converters[arg]
    if isinstance(converter, IntegerConverter):
        return 1
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    return "transactions" if arg == "category" else "x"


def routes(app) -> dict[str, tuple[str, set[str]]]:
    """url -> (its rule, every method any rule for that path takes)."""
    adapter = app.url_map.bind("localhost")
    out: dict[str, tuple[str, set[str]]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            values = {"filename": "app.css"}
        else:
            values = {
                a: _placeholder(rule, a) for a in rule.arguments if a not in (rule.defaults or {})
            }
        url = adapter.build(rule.endpoint, values, method=sorted(rule.methods)[0])
        out.setdefault(url, (rule.rule, set()))[1].update(rule.methods)
    return out


def test_every_405_names_the_allowed_methods(app) -> None:
    client = app.test_client()
    found = routes(app)
    assert {"/api/v1/records", "/oauth/token", "/oauth/authorize", "/login", "/healthz"} <= set(
        found
    )
    for url, (rule, methods) in sorted(found.items()):
        for method in sorted({"DELETE", "PATCH", "PUT", "POST", "GET"} - methods):
            for _ in range(2):
                resp = client.open(url, method=method)
                assert resp.status_code == 405, (method, url, resp.status_code)
                assert resp.headers["Allow"] == ", ".join(sorted(methods)), (method, url)
                kind = (
                    "application/problem+json"
                    if rule.startswith(MACHINE)
                    else "text/html; charset=utf-8"
                )
                assert resp.headers["Content-Type"] == kind, (method, url)


def test_allow_is_exact_for_api_web_and_oauth(app) -> None:
    client = app.test_client()
    cases = [
        ("DELETE", "/api/v1/records", "GET, HEAD, OPTIONS, POST"),
        ("GET", "/oauth/token", "OPTIONS, POST"),
        ("PUT", "/oauth/token", "OPTIONS, POST"),
        ("POST", "/.well-known/oauth-authorization-server", "GET, HEAD, OPTIONS"),
        ("DELETE", "/oauth/authorize", "GET, HEAD, OPTIONS, POST"),
        ("POST", "/healthz", "GET, HEAD, OPTIONS"),
        ("POST", "/audit/key", "GET, HEAD, OPTIONS"),
    ]
    for method, url, allow in cases:
        resp = client.open(url, method=method)
        assert (resp.status_code, resp.headers.get("Allow")) == (405, allow), (method, url)
    problem = client.delete("/api/v1/records").json
    assert problem == {
        "type": "https://pds.invalid/problems/http_405",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": "The method is not allowed for the requested URL.",
        "instance": "/api/v1/records",
    }
