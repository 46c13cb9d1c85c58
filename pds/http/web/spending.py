"""The spending rules page (``/data/transactions/rules``): the owner's rules file
(``$PDS_HOME/spending.toml``, :mod:`pds.policyfiles.spending`) edited in the app, and a
button that applies the rules to every transaction.

The same checks as ``pds spending check``: a file is saved only when it parses whole, so a
bad file never reaches the disk (the page shows the error and the text as typed; the file
on disk is unchanged). Saving changes no stored category; applying does, in one
transaction with a ``spending.apply`` access-log entry. Each save writes a
``spending.rules`` entry (no rule text: category names are personal) before the file is
replaced: a vault too busy for the entry (503) leaves the file as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, render_template, request

from pds.http import security
from pds.http.context import current_vault
from pds.http.security import owner_required
from pds.policyfiles import spending as rules_file
from pds.policyfiles.spending import SpendingRulesError
from pds.vault import spending

bp = Blueprint("spending", __name__)

EXAMPLE = (
    "# Spending categories: the first rule that matches a transaction gives its category.\n"
    "\n"
    "[[rule]]\n"
    'category = "Groceries"\n'
    'contains = "tesco"\n'
    "\n"
    "[[rule]]\n"
    'category = "Salary"\n'
    'matches = "^acme ltd"\n'
    'field = "counterparty"\n'
    'direction = "in"\n'
)


def _home() -> Path:
    return current_app.config["PDS_SETTINGS"].home


@bp.route("/data/transactions/rules", methods=["GET", "POST"])
@owner_required
def rules() -> Any:
    home = _home()
    if security.reading():
        try:
            text = rules_file.read_text(home)
            rules_file.parse_rules(text, str(rules_file.rules_path(home)))
        except SpendingRulesError as exc:
            (text, lossy), problem = _read(home), exc.message
            return _page(text, problem=problem, lossy=lossy)
        return _page(text or EXAMPLE)  # no file (or an empty one): nothing of the owner's
    text = request.form.get("text", "").replace("\r\n", "\n")
    try:
        saved = spending.save_rules(current_vault(), home, text)
    except SpendingRulesError as exc:
        return _page(text, error=exc.message, status=422)
    return _page(text, saved=len(saved.rules))


@bp.post("/data/transactions/rules/apply")
@owner_required
def apply() -> Any:
    home = _home()
    try:
        loaded = rules_file.load(home)
    except SpendingRulesError as exc:
        return _page(_text(home), error=exc.message, status=422)
    done = spending.apply(current_vault(), loaded)
    text = _text(home)
    return _page(text or EXAMPLE, applied=done)


def _text(home: Path) -> str:
    """The rules file's text for the editor, also when it does not load: bytes that are not
    UTF-8 shown as U+FFFD (never the example in place of the owner's file); '' when there is
    none or it cannot be read."""
    return _read(home)[0]


def _read(home: Path) -> tuple[str, bool]:
    """:func:`_text`, and whether some of the file's bytes were not UTF-8."""
    try:
        raw = rules_file.rules_path(home).read_bytes()
    except OSError:
        return "", False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), True


def _page(
    text: str,
    *,
    error: str | None = None,
    problem: str | None = None,
    saved: int | None = None,
    applied: dict[str, int] | None = None,
    lossy: bool = False,
    status: int = 200,
) -> Any:
    return (
        render_template(
            "spending_rules.html",
            text=text,
            exists=rules_file.rules_path(_home()).exists(),
            lossy=lossy,
            error=error,
            problem=problem,
            saved=saved,
            applied=applied,
            path=str(rules_file.rules_path(_home())),
            csrf=security.csrf_token(),
        ),
        status,
    )
