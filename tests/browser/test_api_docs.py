"""``/api/docs`` in Chromium: Swagger UI, served by pds, renders the OpenAPI document's
operations, with no CSP violation, no page error and no request to another host."""

from __future__ import annotations

from tests.browser.conftest import Live, Watch, shot


def test_the_api_page_renders_the_operations(live: Live, page, watch: Watch) -> None:
    page.goto(live.base + "/api/docs")
    summary = page.get_by_text("One page of one category's records, oldest first")
    summary.wait_for(state="visible")
    assert page.get_by_text(
        "The log's public key: the verifier key of its checkpoints"
    ).is_visible()
    assert page.locator(".opblock-summary-path").all_inner_texts() == [
        "/api/v1/records",  # GET
        "/api/v1/records",  # POST
        "/api/v1/records/{record_id}",
        "/api/v1/aggregates",
        "/api/v1/changes",
        "/api/v1/subscriptions",  # POST
        "/api/v1/subscriptions",  # GET
        "/api/v1/subscriptions/{sub_id}",
        "/api/v1/grant",
        "/api/v1/grant/receipt",
        "/audit/checkpoint",
        "/audit/entries",
        "/audit/key",
        "/audit/proof/consistency",
        "/audit/proof/inclusion",
    ]
    tags = [t.split("\n")[0] for t in page.locator(".opblock-tag").all_inner_texts()]
    assert tags == ["records", "totals", "changes", "grant", "auditor"]
    assert page.locator(".opblock-tag", has_text="auditor").is_visible()
    assert page.get_by_role("button", name="Authorize").count() == 0  # no OAuth popup
    summary.click()  # open the operation: its parameters and the typed answer
    page.locator(".parameters-col_name", has_text="category").first.wait_for(state="visible")
    assert page.get_by_text("a page", exact=True).first.is_visible()  # the 200 answer
    page.wait_for_load_state("networkidle")
    shot(page, "api-docs")
    assert watch.problems == []
    assert watch.foreign(live.base) == []
    assert live.base + "/api/v1/openapi.json" in watch.requests
    assert live.base + "/static/swagger-ui-bundle.js" in watch.requests
