"""The auditor's page after `pds audit invite`: the one-time link, the filtered table, Verify
now (checkpoint, consistency, inclusion, in words) and the bundle that pds-verify checks."""

from __future__ import annotations

import base64
import html as html_text
import json
import re
from pathlib import Path

import pytest
from pds_client import verify as client_verify

from pds import clock
from pds.http.web import auditor as auditor_pages
from pds.oauth import invite, receipts, store
from tests.audit.test_verify import rewrite, texts_of
from tests.oauth_kit import bearer, csrf, seed

BAD_LINK = (
    "That sign-in link was already used, has expired or was revoked. Ask the vault&#39;s owner "
    "for a new invitation."
)


def sign_in(kit, secret: str):
    """A new browser that opens the welcome page and posts ``secret``; (browser, answer)."""
    browser = kit.app.test_client()
    page = browser.get("/auditor/welcome")
    answer = browser.post(
        "/auditor/welcome", data={"csrf_token": csrf(page.text), "invite": secret}
    )
    return browser, answer


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def checks(html: str) -> list[str]:
    """The Verify now page's findings, as plain text."""
    found = re.findall(
        r"<li class=\"(\w+)\"><strong>(.*?)</strong> <span class=\"wrap\">(.*?)</span>", html
    )
    return [f"{cls}: {title} {html_text.unescape(text)}" for cls, title, text in found]


def rows_of(html: str) -> list[tuple[str, str, str, str]]:
    """(#, who, action, outcome) of each row of the entries table."""
    return re.findall(
        r'<tr><td data-label="#">(\d+)</td><td data-label="Time \(UTC\)">[^<]+</td>'
        r'<td data-label="Who">([^<]+)</td><td data-label="Action">([^<]+)</td>'
        r'<td data-label="Outcome">([^<]+)</td>',
        html,
    )


def test_the_link_signs_in_once_and_the_token_reads_the_audit_api(kit, vault) -> None:
    done = invite.invite_auditor(vault, "Ines Audit", 30)
    # The link's secret is no access token: no API and no token sign-in take it.
    api = kit.app.test_client()
    assert api.get("/audit/checkpoint", headers=bearer(done.link_secret)).status_code == 403
    page = api.get("/auditor/login")
    refused = api.post(
        "/auditor/login", data={"csrf_token": csrf(page.text), "access_token": done.link_secret}
    )
    assert refused.status_code == 401
    browser, answer = sign_in(kit, done.link_secret)
    assert (answer.status_code, answer.headers["Location"]) == (303, "/auditor")
    assert browser.get("/auditor").status_code == 200
    _, again = sign_in(kit, done.link_secret)
    assert again.status_code == 401
    assert f'<p class="error" role="alert">{BAD_LINK}</p>' in again.text
    assert "auditor-welcome.js" not in again.text  # no second automatic post
    # The token for scripts reads the auditor API for the grant's whole life.
    assert api.get("/audit/checkpoint", headers=bearer(done.token)).status_code == 200
    assert store.find_access_token(vault.conn, done.token).expires_at == (done.grant.expires_at)
    assert done.grant.expires_at - clock.epoch(done.grant.created_at) == 30 * 86400
    texts = texts_of(vault)
    assert not [t for t in texts if done.token in t or done.link_secret in t]
    entry = next(json.loads(t) for t in texts if '"auditor.invite"' in t)
    del entry["time"]
    assert entry == {
        "v": 1,
        "action": "auditor.invite",
        "actor": "owner",
        "client": done.client.client_id,
        "decision": "allowed",
        "grant": str(done.grant.id),
        "detail": {"days": 30, "name": "Ines Audit", "scope": "audit:read"},
    }
    assert [a for a in kit.audit_actions() if a[0] == "auditor.signin"] == [
        ("auditor.signin", "refused"),  # the link at the token form
        ("auditor.signin", "allowed"),
        ("auditor.signin", "refused"),  # the link again
    ]


def test_the_welcome_page_posts_the_fragment_with_its_own_script(kit) -> None:
    page = kit.app.test_client().get("/auditor/welcome")
    assert page.status_code == 200
    assert '<script src="/static/auditor-welcome.js"></script>' in page.text
    assert "<script>" not in page.text
    with kit.app.test_client().get("/static/auditor-welcome.js") as script:
        assert script.status_code == 200
        assert b'history.replaceState(null, "", window.location.pathname);' in script.data


def test_a_link_past_its_week_is_refused(kit, vault, monkeypatch) -> None:
    done = invite.invite_auditor(vault, "Late Auditor", 30)
    assert done.link_expires_at - clock.epoch(done.grant.created_at) == 7 * 86400
    later = clock.now() + 7 * 86400 + 1
    monkeypatch.setattr(clock, "now", lambda: later)
    _, answer = sign_in(kit, done.link_secret)
    assert answer.status_code == 401
    assert BAD_LINK in answer.text


def test_the_owner_sees_the_auditor_as_a_business_and_revoking_ends_everything(kit, vault) -> None:
    done = invite.invite_auditor(vault, "Ines Audit", 10)
    browser, _ = sign_in(kit, done.link_secret)
    kit.login()
    grants = kit.http.get("/grants").text
    assert (
        f'<td data-label="#">{done.grant.id}</td>\n'
        '      <td data-label="Business">Ines Audit</td>\n'
        '      <td data-label="What it may do"><ul class="plain"><li>read the access log (no data)'
        "</li></ul></td>"
    ) in grants
    assert '<td data-label="Name">Ines Audit</td>' in grants
    receipt = kit.http.get(f"/grants/{done.grant.id}/receipt")
    assert receipt.status_code == 200
    body = receipts.verify(receipt.text.strip(), receipts.public_key(receipts.signing_jwk(vault)))
    assert body["services"][0]["purposes"][0]["piiCategory"] == [
        "read the access log (no personal data)"
    ]
    page = kit.http.get(f"/grants/{done.grant.id}/revoke")
    gone = kit.http.post(f"/grants/{done.grant.id}/revoke", data={"csrf_token": csrf(page.text)})
    assert gone.status_code == 303
    after = browser.get("/auditor")
    assert (after.status_code, after.headers["Location"]) == (302, "/auditor/login")
    api = kit.app.test_client().get("/audit/checkpoint", headers=bearer(done.token))
    assert api.status_code == 401


@pytest.fixture
def logged(kit, vault):
    """A log with a business's allowed and refused reads, and an auditor signed in."""
    seed(vault)
    client_id, secret = kit.add_client("Acme Bank")
    tok = kit.tokens(client_id, secret, scope="read:transactions")["access_token"]
    api = kit.app.test_client()
    assert api.get("/api/v1/records?category=transactions", headers=bearer(tok)).status_code == 200
    assert api.get("/api/v1/records?category=energy", headers=bearer(tok)).status_code == 403
    done = invite.invite_auditor(vault, "Ines Audit", 30)
    browser, _ = sign_in(kit, done.link_secret)
    return browser, client_id, done


def test_the_table_filters_by_business_action_outcome_and_date(logged, vault) -> None:
    browser, acme, _ = logged
    page = browser.get("/auditor", query_string={"client": acme})
    assert rows_of(page.text) == [
        ("7", "Acme Bank", "api.records.read", "refused"),
        ("6", "Acme Bank", "api.records.read", "allowed"),
        ("5", "Acme Bank", "token.issue", "allowed"),
        ("4", "Acme Bank", "grant.create", "allowed"),
        ("3", "Acme Bank", "client.register", "allowed"),
    ]
    assert "<p>Entries 1 to 5 of 5 that match, newest first.</p>" in page.text
    assert f'<option value="{acme}" selected>Acme Bank</option>' in page.text
    refused = browser.get("/auditor", query_string={"outcome": "refused"})
    assert rows_of(refused.text) == [("7", "Acme Bank", "api.records.read", "refused")]
    reads = browser.get("/auditor", query_string={"action": "api.records.read", "client": acme})
    assert [r[0] for r in rows_of(reads.text)] == ["7", "6"]
    today = clock.now_iso()[:10]
    owner = browser.get("/auditor", query_string={"action": "import", "until": today})
    assert rows_of(owner.text) == [
        ("2", "the owner", "import", "allowed"),
        ("1", "the owner", "import", "allowed"),
    ]
    old = browser.get("/auditor", query_string={"since": "2000-01-01", "until": "2000-01-31"})
    assert rows_of(old.text) == []
    assert '<tr><td colspan="8">No entry matches these filters.</td></tr>' in old.text
    bad = browser.get("/auditor", query_string={"since": "yesterday"})
    assert bad.status_code == 400
    assert "yesterday is not a date." in bad.text
    assert browser.get("/auditor", query_string={"outcome": "maybe"}).status_code == 400
    far = browser.get("/auditor", query_string={"skip": "9" * 30})
    assert (far.status_code, rows_of(far.text)) == (200, [])


def test_a_dropped_webhook_reads_as_dropped_not_as_a_refusal(logged, vault) -> None:
    browser, acme, _ = logged
    index = vault.audit(
        "webhook.drop",
        actor="pds",
        decision="dropped",
        client_id=acme,
        category="profile",
        reason="the subscription or its grant has ended",
    )
    page = browser.get("/auditor", query_string={"outcome": "dropped"})
    assert rows_of(page.text) == [(str(index), "Acme Bank", "webhook.drop", "dropped")]
    assert '<option value="dropped" selected>dropped</option>' in page.text
    assert '<option value="">Any outcome</option>' in page.text
    refused = browser.get("/auditor", query_string={"outcome": "refused"})
    assert [r[2] for r in rows_of(refused.text)] == ["api.records.read"]
    bad = browser.get("/auditor", query_string={"outcome": "maybe"})
    assert bad.status_code == 400
    assert "The outcome is allowed, refused or dropped." in bad.text


def test_the_table_pages(logged, monkeypatch) -> None:
    browser, acme, _ = logged
    monkeypatch.setattr(auditor_pages, "ROWS", 2)
    first = browser.get("/auditor", query_string={"client": acme})
    assert [r[0] for r in rows_of(first.text)] == ["7", "6"]
    assert "<p>Entries 1 to 2 of 5 that match, newest first.</p>" in first.text
    assert f'<a href="/auditor?skip=2&amp;client={acme}">Older</a>' in first.text
    assert ">Newer</a>" not in first.text
    last = browser.get("/auditor", query_string={"client": acme, "skip": "4"})
    assert [r[0] for r in rows_of(last.text)] == ["3"]
    assert f'<a href="/auditor?skip=2&amp;client={acme}">Newer</a>' in last.text
    assert ">Older</a>" not in last.text
    past = browser.get("/auditor", query_string={"client": acme, "skip": "9"})
    assert rows_of(past.text) == []
    assert "Entries " not in past.text
    assert (
        '<tr><td colspan="8">Past the last page. '
        f'<a href="/auditor?client={acme}">Go to the first page</a></td></tr>' in past.text
    )


def test_verify_now_reports_checkpoint_consistency_and_inclusion(logged, vault) -> None:
    browser, _, done = logged
    log = vault.log
    page = browser.get("/auditor")
    assert "You have not verified this log here yet." in page.text
    n = log.size()
    answer = browser.post("/auditor/verify", data={"csrf_token": csrf(page.text), "entry": "6"})
    assert answer.status_code == 200
    assert "<h1>The access log verifies</h1>" in answer.text
    key, root = vault.log_verifier_key(), b64(log.root(n))
    proof = log.inclusion_proof(6, n)
    leaf = b64(next(iter(log.entries(6, 7)))[2])
    time6 = json.loads(next(iter(log.entries(6, 7)))[1])["time"]
    assert checks(answer.text) == [
        f"ok: Signed checkpoint: holds. The newest checkpoint is validly signed with the log's "
        f"key {key}: tree size {n}, root {root}, the root of the stored log of that size.",
        "none: Consistency with what you saw: nothing to check. This is your first check here: "
        f"there is no earlier checkpoint to compare with. This one (tree size {n}, root {root}) "
        "is remembered for your next check.",
        f"ok: Inclusion of an entry: holds. Entry 6 (api.records.read at {time6}) is in the "
        f"signed tree of {n} entries: its leaf hash {leaf} and the inclusion proof of "
        f"{len(proof)} hashes lead to the root {root}.",
    ]
    remembered = json.loads(texts_of(vault)[-1])
    assert (remembered["action"], remembered["detail"]) == (
        "auditor.verify",
        {"entry": 6, "root": root, "size": n, "verified": True},
    )
    day = remembered["time"][:10]
    page = browser.get("/auditor")
    assert f"Your last check here verified the log at tree size {n} on {day}." in page.text
    m = log.size()
    again = browser.post("/auditor/verify", data={"csrf_token": csrf(page.text), "entry": "9" * 30})
    root2 = b64(log.root(m))
    hashes = len(log.consistency_proof(n, m))
    assert checks(again.text)[1:] == [
        "ok: Consistency with what you saw: holds. The log of "
        f"{m} entries (root {root2}) extends the one of {n} entries you saw on {day} "
        f"(root {root}): the consistency proof of {hashes} hashes holds. Nothing you saw was "
        "changed or removed.",
        f"none: Inclusion of an entry: nothing to check. There is no entry {'9' * 30} in the signed "
        f"tree of {m} entries (they are numbered from 0).",
    ]
    # Another auditor has a memory of their own.
    other = invite.invite_auditor(vault, "Second Auditor", 5)
    second, _ = sign_in(kit_of(browser), other.link_secret)
    page2 = second.get("/auditor")
    mine = second.post("/auditor/verify", data={"csrf_token": csrf(page2.text), "entry": "0"})
    assert "This is your first check here" in checks(mine.text)[1]


def kit_of(browser):
    """A stand-in with the app of ``browser`` (for :func:`sign_in`)."""

    class _Kit:
        app = browser.application

    return _Kit


def test_verify_now_catches_a_rewritten_log(logged, vault) -> None:
    browser, _, _ = logged
    page = browser.get("/auditor")
    browser.post("/auditor/verify", data={"csrf_token": csrf(page.text), "entry": "1"})
    texts = texts_of(vault)
    texts[1] = texts[1].replace('"count":6', '"count":5')
    rewrite(vault, texts)  # re-signed with the vault's own key: consistent with itself
    n = json.loads(texts[-1])["detail"]["size"]
    answer = browser.post("/auditor/verify", data={"csrf_token": csrf(page.text), "entry": "1"})
    assert "<h1>The access log does NOT verify</h1>" in answer.text
    found = checks(answer.text)
    assert found[0].startswith("ok: Signed checkpoint: holds.")
    assert found[1].startswith("failed: Consistency with what you saw: FAILS. The log of ")
    assert f"does NOT extend the one of {n} entries you saw on " in found[1]
    assert found[1].endswith("fails. The log was rewritten since.")
    assert json.loads(texts_of(vault)[-1])["detail"]["verified"] is False


def test_verify_needs_the_form_and_a_session(logged, kit) -> None:
    browser, _, _ = logged
    assert browser.post("/auditor/verify", data={"entry": "1"}).status_code == 403
    stranger = kit.app.test_client()
    assert stranger.post("/auditor/verify", data={"entry": "1"}).status_code == 401
    assert stranger.get("/auditor/bundle").headers["Location"] == "/auditor/login"


def test_the_bundle_verifies_with_pds_verify(logged, vault, tmp_path: Path, capsys) -> None:
    browser, _, _ = logged
    page = browser.get("/auditor")
    note = re.search(
        r'<pre class="wrap">(.*?)</pre>',
        browser.post("/auditor/verify", data={"csrf_token": csrf(page.text), "entry": "3"}).text,
        re.S,
    ).group(1)
    got = browser.get("/auditor/bundle")
    data = got.data
    got.close()
    n = vault.log.size()
    assert got.status_code == 200
    assert got.headers["Content-Disposition"] == f"attachment; filename=pds-audit-{n}.bundle"
    path = tmp_path / "audit.bundle"
    path.write_bytes(data)
    key = vault.log_verifier_key()
    report = client_verify.verify_bundle(path, key=key, trusted=[note.encode()])
    assert report.ok
    signed = len(vault.log.checkpoints())
    assert report.lines() == [
        f"Log: {vault.log.origin}",
        f"Key: {key} (pinned by you)",
        f"Entries: {n}, each hashed to its leaf",
        f"Checkpoints: {signed} signed, newest at size {n}",
        f"Trusted: the log extends your checkpoints of size [{n - 2}]",
        "OK",
    ]
    assert client_verify.main(["bundle", str(path), "--key", key]) == 0
    assert capsys.readouterr().out.endswith("OK\n")
    bent = data.replace(b'"count":6', b'"count":7')
    path.write_bytes(bent)
    assert client_verify.main(["bundle", str(path), "--key", key]) == 1
    assert "FAILED: entry 1 does not hash to the leaf recorded" in capsys.readouterr().out


def test_guessed_links_are_bounded_by_the_login_back_off(kit, vault) -> None:
    done = invite.invite_auditor(vault, "Ines Audit", 30)
    browser = kit.app.test_client()
    form = {"invite": "x" * 43, "csrf_token": csrf(browser.get("/auditor/welcome").text)}
    start = vault.log.size()
    answers = [browser.post("/auditor/welcome", data=form) for _ in range(5)]
    assert [a.status_code for a in answers] == [401] * 3 + [429] * 2
    assert answers[3].headers["Retry-After"] == "1"
    assert "Too many failed attempts. Try again in 1 second." in answers[3].text
    refused = [json.loads(t) for t in texts_of(vault)[start:]]
    assert [(e["action"], e["decision"], e["reason"]) for e in refused] == [
        ("auditor.signin", "refused", "not a live link")
    ] * 3
    # the right link, during the back-off, waits too (and stays unspent)
    late = browser.post("/auditor/welcome", data={**form, "invite": done.link_secret})
    assert late.status_code == 429
    assert store.find_access_token(vault.conn, done.link_secret).is_revoked() is False
