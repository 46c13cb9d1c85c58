"""The business-facing REST API, ``/api/v1``, as one blueprint, ``bp``: the records and the
grant (``records``), totals (``aggregates``), the grant's consent receipt (``receipts``),
webhook subscriptions and the change feed (``subscriptions``) and the OpenAPI description
(``openapi``); each module adds its endpoints with its ``register``. Bearer tokens and the
one audit entry per call are ``auth``; the owner's policies on each call, ``policy``. The
auditor API, ``/audit``, is a blueprint of its own (``audit``), and so is the OpenAPI
document's browsable page, ``/api/docs`` (``docs``)."""

from __future__ import annotations

from flask import Blueprint

from pds.http.api import aggregates, openapi, receipts, records, subscriptions

bp = Blueprint("api", __name__, url_prefix="/api/v1")
for _endpoints in (records, aggregates, receipts, subscriptions, openapi):
    _endpoints.register(bp)
