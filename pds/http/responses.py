"""Error answers pds writes itself at the machine endpoints (authlib writes the rest): RFC
6749 §5.2's JSON body, never cached (``Cache-Control: no-store``, ``Pragma: no-cache``)."""

from __future__ import annotations

from flask import Response, jsonify


def oauth_error(status: int, error: str, description: str, **headers: str) -> Response:
    """``{"error": error, "error_description": description}`` with ``status`` and, besides
    the no-cache headers, ``headers`` (``Retry_After="60"`` gives ``Retry-After: 60``)."""
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response
