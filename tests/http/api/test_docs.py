"""``/api/docs``: the OpenAPI document as a page, its renderer served from this origin, under
pds's Content-Security-Policy with ``data:`` images allowed on this page only."""

from __future__ import annotations

from pds.http.api.docs import DOCS_CSP
from pds.http.security import CSP


def test_the_page_loads_the_vendored_renderer_and_the_document(kit) -> None:
    resp = kit.http.get("/api/docs")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    html = resp.text
    assert '<link rel="stylesheet" href="/static/swagger-ui.css">' in html
    assert '<script src="/static/swagger-ui-bundle.js"></script>' in html
    assert '<script src="/static/api-docs.js"></script>' in html
    assert '<main id="api-docs" data-url="/api/v1/openapi.json">' in html
    assert "<script>" not in html  # nothing inline
    assert "style=" not in html
    assert "http" not in html.replace("/api/v1/openapi.json", "")  # no other host named
    for path in ("/static/swagger-ui.css", "/static/swagger-ui-bundle.js", "/static/api-docs.js"):
        static = kit.http.get(path)
        assert static.status_code == 200, path
        static.close()


def test_only_this_page_allows_data_images(kit) -> None:
    assert DOCS_CSP == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    docs = kit.http.get("/api/docs")
    assert docs.headers["Content-Security-Policy"] == DOCS_CSP
    assert docs.headers["X-Frame-Options"] == "DENY"
    assert docs.headers["Cache-Control"] == "no-store"
    assert kit.http.get("/login").headers["Content-Security-Policy"] == CSP
    assert "data:" not in CSP
