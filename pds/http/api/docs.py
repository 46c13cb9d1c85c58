"""``GET /api/docs``: the OpenAPI document (``/api/v1/openapi.json``) as a page to browse.

Swagger UI renders it, served from ``static/`` (vendored: static/README.md says which version
and how to update it), from this origin only. The page keeps pds's Content-Security-Policy
but for one directive: ``img-src`` also allows ``data:`` URLs, for the SVG icons Swagger UI's
stylesheet holds inline (an image cannot run script). No inline script or style: the page's
own script is ``static/api-docs.js``.
"""

from __future__ import annotations

from flask import Blueprint, Response, url_for
from markupsafe import escape

from pds.http.security import CSP

bp = Blueprint("api_docs", __name__)

DOCS_CSP = CSP.replace("img-src 'self';", "img-src 'self' data:;")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pds API</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<main id="api-docs" data-url="{spec}">
<noscript><p>This page needs JavaScript. The OpenAPI document itself:
<a href="{spec}">{spec}</a></p></noscript>
</main>
<script src="{bundle}"></script>
<script src="{start}"></script>
</body>
</html>
"""


@bp.get("/api/docs")
def api_docs() -> Response:
    """The browsable API reference."""
    static = {
        "css": "swagger-ui.css",
        "bundle": "swagger-ui-bundle.js",
        "start": "api-docs.js",
    }
    html = PAGE.format(
        spec=escape(url_for("api.openapi")),
        **{k: escape(url_for("static", filename=v)) for k, v in static.items()},
    )
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": DOCS_CSP})
