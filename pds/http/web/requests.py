"""The owner's ``/requests`` page: data-rights requests to businesses, and forgetting a
category. Every POST is a form with a CSRF token; errors are shown on the page."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext

from pds import clock
from pds.errors import PdsError, ValidationError
from pds.http import security
from pds.http.context import current_vault
from pds.rights import forget as forgetmod
from pds.rights import requests as reqmod
from pds.vocabulary import CATEGORIES

bp = Blueprint("rights_requests", __name__)


def _page(error: str | None = None, status: int = 200, opened: int | None = None) -> Any:
    vault = current_vault()
    today = clock.today()
    identity = reqmod.owner_identity(vault)
    rows = [
        {**r.as_dict(today), "letter": reqmod.letter(vault, r, identity)}
        for r in reversed(reqmod.list_requests(vault, today=today))
    ]
    html = render_template(
        "requests.html",
        requests=rows,
        sources=reqmod.recent_sources(vault),
        categories=CATEGORIES,
        kinds=reqmod.KINDS,
        today=today.isoformat(),
        opened=opened,
        error=error,
        csrf=security.csrf_token(),
    )
    return html, status


def _failed(exc: PdsError) -> Any:
    return _page(exc.message, exc.status if exc.status < 500 else 400)


def _done(message: str, opened: int | None = None) -> Any:
    flash(message)
    return redirect(url_for("rights_requests.page", opened=opened), 303)


@bp.get("/requests")
@security.owner_required
def page() -> Any:
    return _page(opened=request.args.get("opened", type=int))


def _form_date(name: str) -> date | None:
    value = request.form.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            gettext('"%(value)s" is not a date like 2024-03-31', value=value)
        ) from None


@bp.post("/requests")
@security.owner_required
def create() -> Any:
    form = request.form
    try:
        r = reqmod.create(
            current_vault(),
            form.get("kind", ""),
            form.get("business", ""),
            sent_on=_form_date("sent_on"),
        )
    except PdsError as exc:
        return _failed(exc)
    return _done(
        gettext(
            "Request %(id)s started: send the letter below to %(business)s.",
            id=r.id,
            business=r.business,
        ),
        r.id,
    )


@bp.post("/requests/<int:request_id>/fulfil")
@security.owner_required
def fulfil(request_id: int) -> Any:
    source = request.form.get("source", "").strip()
    try:
        if source and not (source.isdigit() and len(source) <= 18):  # SQLite's integers
            raise ValidationError(gettext('"%(source)s" is not an import id', source=source))
        r = reqmod.fulfil(current_vault(), request_id, int(source) if source else None)
    except PdsError as exc:
        return _failed(exc)
    return _done(
        gettext("Request %(id)s (%(business)s) marked fulfilled.", id=r.id, business=r.business)
    )


@bp.post("/requests/<int:request_id>/withdraw")
@security.owner_required
def withdraw(request_id: int) -> Any:
    try:
        r = reqmod.withdraw(current_vault(), request_id)
    except PdsError as exc:
        return _failed(exc)
    return _done(gettext("Request %(id)s (%(business)s) withdrawn.", id=r.id, business=r.business))


@bp.post("/forget")
@security.owner_required
def forget() -> Any:
    category = request.form.get("category", "")
    typed = request.form.get("confirm", "").strip()
    try:
        forgetmod.check_category(category)
        if typed != category:
            raise ValidationError(
                gettext(
                    'type "%(category)s" in the confirmation box to forget it; '
                    "nothing was forgotten",
                    category=category,
                )
            )
        done = forgetmod.forget(current_vault(), category)
    except PdsError as exc:
        return _failed(exc)
    return _done(f"{done.said} {forgetmod.OLD_BACKUPS}")
