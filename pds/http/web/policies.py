"""The policies page: the rules in force in plain words, putting policy files in force or
taking them out, and editing the owner's own files with validation errors shown inline.

The same loader as ``pds policy``: a file is saved only when it parses whole and its rule ids
clash with no other file in force, so a bad file never reaches the disk; every change writes
one ``policy.change`` audit entry, and the server's policies are re-read at once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from pds.errors import NotFound, PdsError
from pds.http import security
from pds.http.context import current_policies, current_vault
from pds.http.security import owner_required
from pds.policy import PolicyError
from pds.policyfiles.loader import (
    available,
    find,
    policy_dir,
    read_file,
)
from pds.policyfiles.loader import (
    switch as switch_policy,
)
from pds.policyfiles.schema import RULE_ID, parse_policy

bp = Blueprint("policies", __name__)

NEW_FILE = (
    "# My own rules: one [[rule]] table each (docs/policies.md lists the kinds).\n\n"
    '[[rule]]\nid = "no-health"\nkind = "deny-category"\ncategory = "health"\n'
)


def _home() -> Path:
    return current_app.config["PDS_SETTINGS"].home


def _refresh() -> None:
    current_policies().refresh()


@bp.get("/policies")
@owner_required
def index() -> Any:
    return _index_page()


def _index_page(error: str | None = None, status: int = 200) -> Any:
    policies = current_policies()
    policies.refresh()
    files = []
    for f in available(_home()):
        try:
            rules, problem = read_file(f.path, f.label), None
        except PolicyError as exc:
            rules, problem = (), exc.message
        files.append({"file": f, "title": f.title(), "rules": rules, "problem": problem})
    return (
        render_template(
            "policies.html",
            files=files,
            rules=policies.rules,
            problem=policies.problem,
            error=error,
            csrf=security.csrf_token(),
        ),
        status,
    )


@bp.post("/policies/<name>/<any(enable, disable):change>")
@owner_required
def switch(name: str, change: str) -> Any:
    try:
        _, changed = switch_policy(_home(), name, change == "enable", current_vault().audit)
    except PdsError as exc:  # a broken file (422), an unknown name (404)
        return _index_page(error=exc.message, status=exc.status if exc.status < 500 else 400)
    if changed:
        _refresh()
    return redirect(url_for("policies.index"), 303)


def _audit(name: str, origin: str, change: str) -> None:
    current_vault().audit(
        "policy.change",
        actor="owner",
        detail={"policy": name, "origin": origin, "change": change},
    )


@bp.route("/policies/edit", methods=["GET", "POST"], defaults={"name": None})
@bp.route("/policies/edit/<name>", methods=["GET", "POST"])
@owner_required
def edit(name: str | None) -> Any:
    if security.reading():
        text = NEW_FILE
        if name is not None:
            try:
                text = find(_home(), name).path.read_text(encoding="utf-8")
            except PdsError as exc:  # no such file: the page has no use for the CLI's hint
                raise NotFound(exc.message) from None
        return _edit_page(name or "", text, is_new=name is None)
    new_name = (request.form.get("name") or name or "").strip()
    text = request.form.get("text", "").replace("\r\n", "\n")
    try:
        check(_home(), new_name, text)
        if name is None and (policy_dir(_home()) / f"{new_name}.toml").exists():
            raise PolicyError(
                f'you already have a policy file "{new_name}": edit it, or choose another name'
            )
    except PolicyError as exc:
        return _edit_page(new_name, text, is_new=name is None, error=exc.message, status=422)
    save(_home(), new_name, text)
    _audit(new_name, "own", "edit")
    _refresh()
    return redirect(url_for("policies.index"), 303)


def check(home: Path, name: str, text: str) -> None:
    """PolicyError unless ``text`` is a valid policy file ``<name>.toml`` whose rule ids
    clash with no other file in force."""
    if not RULE_ID.match(name):
        raise PolicyError(
            f'"{name}" is not a policy name: use lower-case letters, digits and dashes'
        )
    label = f"{name}.toml"
    rules = parse_policy(text, label)
    for f in available(home):
        if not f.enabled or f.name == name:
            continue
        taken = {r.id for r in read_file(f.path, f.label)}
        for number, rule in enumerate(rules, 1):
            if rule.id in taken:
                raise PolicyError(
                    f'{label}: rule "{rule.id}" (rule {number}): the id "{rule.id}" is '
                    f"already used in {f.label}"
                )


def save(home: Path, name: str, text: str) -> Path:
    """Write the owner's file atomically (a temp file renamed over it)."""
    folder = policy_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        target = folder / f"{name}.toml"
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _edit_page(
    name: str, text: str, *, is_new: bool, error: str | None = None, status: int = 200
) -> Any:
    return (
        render_template(
            "policy_edit.html",
            name=name,
            text=text,
            is_new=is_new,
            error=error,
            csrf=security.csrf_token(),
        ),
        status,
    )
