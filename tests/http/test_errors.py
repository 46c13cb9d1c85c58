"""Every error answer in the shape of the endpoint asked (pds.http.errors): the HTML error
page on the owner's, the consent and the auditor's pages, with the error's status, message
and hint; problem+json at the APIs, a 5xx saying only that it failed."""

from __future__ import annotations

import html
import re

import pytest

from pds.errors import ConfigError
from pds.http.app import create_app
from pds.http.security import CSRF_MESSAGE
from tests.oauth_kit import bearer, csrf, pkce


def shown(resp) -> tuple[int, str, str, str, str | None]:
    """(status, content type, title, message, hint) of an HTML error page."""
    main = resp.text.split("<main>")[1].split("</main>")[0]
    title = re.search(r"<h1>(.*?)</h1>", main)
    message = re.search(r'<p class="error" role="alert">(.*?)</p>', main, re.S)
    hint = re.search(r"</p>\s*<p>(.*?)</p>", main, re.S)
    assert title, main
    assert message, main
    return (
        resp.status_code,
        resp.mimetype,
        html.unescape(title[1]),
        html.unescape(message[1]),
        html.unescape(hint[1]) if hint else None,
    )


@pytest.fixture
def locked(vault):
    """The app of a server started without the vault's key."""
    application = create_app(vault.settings, None)
    yield application.test_client()
    application.extensions["pds_counters"].close()


def test_a_pds_error_on_a_page_is_the_html_error_page(locked) -> None:
    assert shown(locked.get("/login")) == (
        401,
        "text/html",
        "Not signed in",
        "the vault is locked",
        "Start the server with the passphrase.",
    )


def test_a_pds_error_at_the_api_is_still_problem_json(locked) -> None:
    resp = locked.get("/api/v1/grant", headers=bearer("some-token"))
    assert (resp.status_code, resp.mimetype) == (401, "application/problem+json")
    assert resp.json == {
        "type": "https://pds.invalid/problems/vault_locked",
        "title": "Vault locked",
        "status": 401,
        "detail": "the vault is locked",
        "hint": "Start the server with the passphrase.",
        "instance": "/api/v1/grant",
    }


def test_the_health_check_answers_its_errors_in_problem_json(app, locked) -> None:
    resp = app.test_client().delete("/healthz")
    assert (resp.status_code, resp.mimetype) == (405, "application/problem+json")
    assert resp.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert resp.json == {
        "type": "https://pds.invalid/problems/http_405",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": "The method is not allowed for the requested URL.",
        "instance": "/healthz",
    }
    resp = locked.get("/healthz")
    assert (resp.status_code, resp.mimetype) == (401, "application/problem+json")
    assert resp.json == {
        "type": "https://pds.invalid/problems/vault_locked",
        "title": "Vault locked",
        "status": 401,
        "detail": "the vault is locked",
        "hint": "Start the server with the passphrase.",
        "instance": "/healthz",
    }


@pytest.mark.parametrize("path", ["/oauth/tokens", "/oauth/registered", "/healthzz", "/apix"])
def test_a_path_that_only_begins_like_a_machine_endpoint_is_a_page(app, path) -> None:
    assert shown(app.test_client().get(path)) == (
        404,
        "text/html",
        "Not found",
        "The requested URL was not found on the server. If you entered the URL manually please "
        "check your spelling and try again.",
        None,
    )


@pytest.mark.parametrize("path", ["/oauth/token/x", "/api/v1/nothing-here", "/healthz/x"])
def test_a_path_under_a_machine_endpoint_answers_problem_json(app, path) -> None:
    resp = app.test_client().get(path)
    assert (resp.status_code, resp.mimetype) == (404, "application/problem+json")
    assert resp.json["instance"] == path
    assert resp.json["title"] == "Not Found"


def fail(*_args, **_kwargs):
    raise ConfigError("the settings say nonsense", hint="Fix the settings.")


def test_a_failure_of_pds_own_shows_on_a_page_and_not_at_the_api(kit, monkeypatch) -> None:
    from pds.oauth import receipts
    from pds.rights import processing

    client_id, secret = kit.add_client()
    token = kit.tokens(client_id, secret)["access_token"]
    monkeypatch.setattr(processing, "overview", fail)
    monkeypatch.setattr(receipts, "latest", fail)  # the owner is signed in (kit.tokens)
    assert shown(kit.http.get("/processing")) == (
        500,
        "text/html",
        "Error",
        "the settings say nonsense",
        "Fix the settings.",
    )
    resp = kit.http.get("/api/v1/grant/receipt", headers=bearer(token))
    assert (resp.status_code, resp.mimetype) == (500, "application/problem+json")
    assert resp.json == {
        "type": "https://pds.invalid/problems/config_error",
        "title": "Config error",
        "status": 500,
        "detail": "the vault could not answer this request; its owner can see why",
        "instance": "/api/v1/grant/receipt",
    }


NOT_A_DATE = "Use the date pickers, or leave the field empty."
OWNER_PAGE_ERRORS = [
    ("/data/nothing", 404, "Not found", 'there is no category called "nothing"', None),
    (
        "/data/transactions?from=2024-13-01",
        400,
        "Bad request",
        "from='2024-13-01' is not a date (YYYY-MM-DD)",
        NOT_A_DATE,
    ),
    ("/records/999", 404, "Not found", "no record with id 999", None),
    (
        "/history?from=2024-02-01&to=2024-01-01",
        400,
        "Bad request",
        "from 2024-02-01 is after to 2024-01-01",
        "Use the date pickers, or leave the fields empty.",
    ),
    ("/policies/edit/nothing", 404, "Not found", 'no policy named "nothing"', None),
    ("/grants/999/revoke", 404, "Not found", "no grant with id 999", None),
    ("/jobs/99", 404, "Not found", "there is no job 99", None),
    (
        "/grants/999/receipt",
        404,
        "Not found",
        "there is no grant 999",
        "`pds grants list` shows them.",
    ),
    (
        "/processing/pds-nobody",
        404,
        "Not found",
        "no business with client id 'pds-nobody'",
        "See the ids with `pds clients list`.",
    ),
    (
        "/processing/pds-nobody.json",
        404,
        "Not found",
        "no business with client id 'pds-nobody'",
        "See the ids with `pds clients list`.",
    ),
]


@pytest.mark.parametrize(("path", "status", "title", "message", "hint"), OWNER_PAGE_ERRORS)
def test_owner_page_errors(kit, path, status, title, message, hint) -> None:
    kit.login()
    assert shown(kit.http.get(path)) == (status, "text/html", title, message, hint)


def test_a_refused_owner_action_keeps_its_status_and_hint(kit) -> None:
    kit.login()
    token = csrf(kit.http.get("/grants").text)
    resp = kit.http.post("/grants/999/revoke", data={"csrf_token": token})
    assert shown(resp) == (
        404,
        "text/html",
        "Not found",
        "no grant with id 999",
        "See the ids with `pds grants list`.",
    )


def test_a_refusal_of_pds_own_on_an_owner_action_is_a_400(kit, monkeypatch) -> None:
    from pds.oauth import admin

    monkeypatch.setattr(admin, "remove_client", fail)
    kit.login()
    token = csrf(kit.http.get("/grants").text)
    resp = kit.http.post("/clients/pds-x/remove", data={"csrf_token": token})
    assert shown(resp) == (
        400,
        "text/html",
        "Bad request",
        "the settings say nonsense",
        "Fix the settings.",
    )


@pytest.mark.parametrize("path", ["/login", "/auditor/login", "/auditor/logout"])
def test_a_form_without_its_csrf_token_is_refused(kit, path) -> None:
    resp = kit.http.post(path, data={"passphrase": "x", "access_token": "x"})
    assert shown(resp) == (403, "text/html", "Refused", CSRF_MESSAGE, None)


def test_consent_page_errors(kit) -> None:
    client_id, _ = kit.add_client()
    url = kit.authorize_url(client_id, pkce()[1])
    stranger = kit.app.test_client()
    assert shown(stranger.post(url, data={"decision": "allow"})) == (
        401,
        "text/html",
        "Not signed in",
        "Sign in first, then answer the request again.",
        None,
    )
    kit.login()
    page = kit.http.get(url)
    assert shown(kit.http.post(url, data={"decision": "allow"})) == (
        403,
        "text/html",
        "Refused",
        CSRF_MESSAGE,
        None,
    )
    maybe = kit.http.post(url, data={"decision": "maybe", "csrf_token": csrf(page.text)})
    assert shown(maybe) == (400, "text/html", "Bad request", "Press Allow or Deny.", None)
    broken = kit.http.post(
        url,
        data={
            "decision": "allow",
            "narrowing": "1",
            "item": "read:transactions",
            "csrf_token": csrf(page.text),
        },
    )
    assert shown(broken) == (
        400,
        "text/html",
        "Bad request",
        "no field of transactions is ticked",
        "Tick at least one field, or untick reading transactions.",
    )


def test_an_auditor_proof_outside_the_log(kit) -> None:
    client_id, secret = kit.add_client("Audit Co")
    token = kit.tokens(client_id, secret, scope="audit:read")["access_token"]
    browser = kit.app.test_client()
    page = browser.get("/auditor/login")
    browser.post("/auditor/login", data={"csrf_token": csrf(page.text), "access_token": token})
    size = kit.vault.log.size()
    resp = browser.get("/auditor/proof", query_string={"index": "9999"})
    assert shown(resp) == (
        400,
        "text/html",
        "Bad request",
        f"entry 9999 is not inside a tree of {size + 1} (log: {size + 1})",
        "Choose numbers inside the log's size.",
    )
