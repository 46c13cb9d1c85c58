"""The access-history chart and table, the checkpoint status, and the policies page
(enable/disable, inline validation errors, saving the owner's own file)."""

from __future__ import annotations

import re

from pds.http.web.history import build_chart
from tests.oauth_kit import csrf

RECT = re.compile(
    r'<rect class="bar s(\d)" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)">'
    r"<title>([^:]+): ([^<]+), (\d+)</title></rect>"
)


def api_entry(vault, day: str, client: str | None, decision: str = "allowed") -> None:
    fields = (
        {"actor": f"client:{client}", "client_id": client} if client else {"actor": "anonymous"}
    )
    vault.audit("api.records.read", decision=decision, at=f"{day}T10:00:00.000Z", **fields)


def test_build_chart_stacks_days_by_business(app) -> None:
    with app.test_request_context():
        chart = build_chart(
            {("d1", "A"): 2, ("d1", "B"): 1, ("d3", "B"): 3}, ["d1", "d2", "d3"], "Accesses"
        )
        empty = build_chart({}, ["d1"])
    assert [s.name for s in chart.series] == ["A", "B"]
    assert [(s.name, list(s.values)) for s in chart.series] == [("A", [2, 0, 0]), ("B", [1, 0, 3])]
    # plot height 186 for 3 accesses: 62 a step; each day's slot is 584/3 wide, bars 80% of it
    got = [(b.label, b.series, b.shown, b.x, b.y, b.width, b.height, b.colour) for b in chart.bars]
    assert got == [
        ("d1", "A", "2", 75.47, 72.0, 155.73, 124.0, 0),
        ("d1", "B", "1", 75.47, 10.0, 155.73, 62.0, 1),
        ("d3", "B", "3", 464.8, 10.0, 155.73, 186.0, 1),
    ]
    assert chart.ticks == [(18.0, "3"), (196.0, "0")]
    assert chart.rows == [("d1", ["2", "1"]), ("d2", ["0", "0"]), ("d3", ["0", "3"])]
    assert (empty.bars, empty.empty) == ([], True)


def test_history_chart_and_table_count_known_entries(kit, vault) -> None:
    acme, _ = kit.add_client("Acme Bank")
    zed, _ = kit.add_client("Zed Energy")
    for day, client in [
        ("2026-01-01", acme),
        ("2026-01-01", acme),
        ("2026-01-01", zed),
        ("2026-01-03", zed),
        ("2026-01-03", None),
        ("2025-12-31", acme),  # outside the range
    ]:
        api_entry(vault, day, client, "refused" if client is None else "allowed")
    kit.login()
    page = kit.http.get("/history", query_string={"from": "2026-01-01", "to": "2026-01-03"})
    assert page.status_code == 200
    bars = [(m[5], m[6], int(m[7])) for m in RECT.findall(page.text)]
    assert bars == [
        ("2026-01-01", "Acme Bank", 2),
        ("2026-01-01", "Zed Energy", 1),
        ("2026-01-03", "Zed Energy", 1),
        ("2026-01-03", "unknown caller", 1),
    ]
    assert "by business: 5 in all</title>" in page.text
    table = page.text.split('<table id="accesses" class="list">')[1]
    assert table.count('<td data-label="Call">api.records.read</td>') == 5
    assert "<caption>5 accesses</caption>" in table
    only = kit.http.get(
        "/history",
        query_string={"from": "2026-01-01", "to": "2026-01-03", "client": zed},
    )
    assert [(m[5], m[6], int(m[7])) for m in RECT.findall(only.text)] == [
        ("2026-01-01", "Zed Energy", 1),
        ("2026-01-03", "Zed Energy", 1),
    ]
    refused = kit.http.get(
        "/history",
        query_string={"from": "2026-01-01", "to": "2026-01-03", "decision": "refused"},
    )
    assert [m[6] for m in RECT.findall(refused.text)] == ["unknown caller"]
    bad = kit.http.get("/history", query_string={"from": "2026-02-01", "to": "2026-01-01"})
    assert bad.status_code == 400
    assert "from 2026-02-01 is after to 2026-01-01" in bad.text


def test_checkpoint_status_signs_the_whole_log_first(kit, vault) -> None:
    vault.audit("api.records.read", actor="anonymous", decision="refused")
    kit.login()
    text = kit.http.get("/history").text
    cp = vault.log.latest_checkpoint()
    size = vault.log.size()
    assert cp.size == size
    signed = cp.created_at[:19].replace("T", " ")
    assert (
        f'<p class="ok" id="checkpoint-status">Log verified up to entry {cp.size - 1}, '
        f"signed at {signed} UTC ({size} entries in all).</p>"
    ) in text


BAD_RULE = '[[rule]]\nid = "no-health"\nkind = "deny-category"\ncategory = "socks"\n'
GOOD_RULE = '[[rule]]\nid = "no-health"\nkind = "deny-category"\ncategory = "health"\n'


def test_bad_policy_file_shows_its_error_inline_and_is_not_saved(kit, vault) -> None:
    kit.login()
    page = kit.http.get("/policies/edit")
    before = len(kit.audit_actions())
    resp = kit.http.post(
        "/policies/edit",
        data={"csrf_token": csrf(page.text), "name": "mine", "text": BAD_RULE},
    )
    assert resp.status_code == 422
    error = re.search(r'<p class="error" id="policy-error" role="alert">([^<]+)</p>', resp.text)
    assert error is not None
    assert error.group(1) == (
        "mine.toml: rule &#34;no-health&#34; (rule 1): field &#34;category&#34;: "
        "&#34;socks&#34; is not a category"
    )
    assert 'aria-describedby="policy-error"' in resp.text
    assert "socks" in resp.text  # the owner's text is kept for fixing
    assert not (vault.settings.home / "policies" / "mine.toml").exists()
    assert len(kit.audit_actions()) == before
    for name, text, message in [
        ("Mine!", GOOD_RULE, "&#34;Mine!&#34; is not a policy name"),
        ("mine", "[[rule]\n", "mine.toml: not valid TOML"),
        (
            "mine",
            '[[rule]]\nid = "no-selling"\nkind = "deny-category"\ncategory = "health"\n',
            "mine.toml: rule &#34;no-selling&#34; (rule 1): the id &#34;no-selling&#34; is "
            "already used in template default.toml",
        ),
    ]:
        bad = kit.http.post(
            "/policies/edit", data={"csrf_token": csrf(page.text), "name": name, "text": text}
        )
        assert (bad.status_code, message in bad.text) == (422, True), bad.text


def test_save_enable_and_disable_policies(kit, vault) -> None:
    kit.login()
    page = kit.http.get("/policies")
    assert "<li><strong>no-selling</strong>:" in page.text
    resp = kit.http.post(
        "/policies/edit",
        data={"csrf_token": csrf(page.text), "name": "mine", "text": GOOD_RULE},
    )
    assert (resp.status_code, resp.headers["Location"]) == (303, "/policies")
    saved = vault.settings.home / "policies" / "mine.toml"
    assert saved.read_text() == GOOD_RULE
    again = kit.http.post(
        "/policies/edit",
        data={"csrf_token": csrf(page.text), "name": "mine", "text": "# nothing\n"},
    )
    assert again.status_code == 422
    assert (
        "you already have a policy file &#34;mine&#34;: edit it, or choose another name"
        in again.text
    )
    assert saved.read_text() == GOOD_RULE
    listing = kit.http.get("/policies").text
    assert "<li><strong>no-health</strong>: health data never leaves this vault</li>" in listing
    off = kit.http.post("/policies/mine/disable", data={"csrf_token": csrf(page.text)})
    assert off.status_code == 303
    assert "<strong>no-health</strong>" not in kit.http.get("/policies").text
    kit.http.post("/policies/default/disable", data={"csrf_token": csrf(page.text)})
    assert "No rule is in force" in kit.http.get("/policies").text
    assert [a for a in kit.audit_actions() if a[0] == "policy.change"] == [
        ("policy.change", "allowed")
    ] * 3
    missing = kit.http.post("/policies/nope/enable", data={"csrf_token": csrf(page.text)})
    assert missing.status_code == 404
    assert "Error: no policy named &#34;nope&#34;" in missing.text
