"""The data-rights pages in a real browser: profile and intentions, an
access request answered by an import, forgetting a category with typed confirmation, the
export zip, a consent receipt checked by ``pds receipts verify``, and the record of
processing. Every page visited is screenshotted and checked: one ``<h1>``, a label for
every form control, no request to another host, no CSP violation and no page error."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pds.oauth.receipts import CHANGED

from ..conftest import fixture
from .conftest import Live, Watch, shot
from .test_owner import MIDATA, Business, sign_in

VCARD = fixture("vcard/rfc6350-example.vcf")


def today() -> str:
    return datetime.now(UTC).date().isoformat()  # the server stamps imports in UTC


def us_day(iso: str) -> str:
    """``2026-12-07`` as a page shows it to a browser that asks for en-US: ``Dec 7, 2026``."""
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    year, month, day = iso.split("-")
    return f"{months[int(month) - 1]} {int(day)}, {year}"


FORGET_ALL = (
    "Forgot contacts: 1 record deleted and their key destroyed. "
    "Backups made before now still hold it (sealed under the old key): delete them too."
)
# every input, select and textarea a person can reach, that no label names
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => ![...e.labels].some(l => l.textContent.trim()) && !e.getAttribute('aria-label'))
  .map(e => e.outerHTML)"""


def seen(page, watch: Watch, live: Live, name: str, heading: str) -> None:
    """The checks every page must pass, and its screenshot."""
    assert page.locator("h1").all_inner_texts() == [heading]
    assert page.evaluate(UNLABELLED) == []
    shot(page, name)
    assert watch.foreign(live.base) == []
    assert watch.problems == []


def import_file(page, path: Path) -> str:
    page.get_by_role("link", name="Import", exact=True).click()
    page.get_by_label("File", exact=True).set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).click()
    result = page.locator("#import-result p.ok")
    result.wait_for()
    return result.inner_text()


def cells(row) -> list[str]:
    return [c.strip() for c in row.locator("td").all_inner_texts()]


def edit_profile(page, watch: Watch, live: Live) -> None:
    page.get_by_role("link", name="Your rights").click()
    seen(page, watch, live, "20-rights", "Your rights")
    assert page.locator("ul.links li").count() == 5
    page.get_by_role("link", name="Your profile and intentions").click()
    seen(page, watch, live, "21-profile-empty", "Your profile")
    assert page.locator("#address-0-country").input_value() == ""

    page.get_by_label("Name", exact=True).fill("Ada Lovelace")
    page.get_by_label("Email", exact=True).fill("ada@example.org")
    page.get_by_label("Contact me by").select_option("post")
    page.locator("#address-0-label").fill("home")
    page.locator("#address-0-lines").fill("12 St James's Square\nFlat 2")
    page.locator("#address-0-locality").fill("London")
    page.locator("#address-0-postcode").fill("SW1Y 4JH")
    page.locator("#address-0-country").fill("GB")
    page.get_by_role("button", name="Save profile").click()
    page.wait_for_url(live.base + "/profile?saved=1")
    assert page.get_by_role("status").inner_text() == "Your profile is saved."
    assert page.get_by_label("Name", exact=True).input_value() == "Ada Lovelace"
    assert page.get_by_label("Email", exact=True).input_value() == "ada@example.org"
    assert page.get_by_label("Contact me by").input_value() == "post"
    assert page.locator("#address-0-lines").input_value() == "12 St James's Square\nFlat 2"
    assert [page.locator(f"#address-0-{p}").input_value() for p in ("locality", "country")] == [
        "London",
        "GB",
    ]
    assert page.locator("fieldset fieldset legend").all_inner_texts() == [
        "Address 1",
        "Add an address",
    ]
    seen(page, watch, live, "22-profile-saved", "Your profile")

    # an invalid e-mail: the error beside the field, and nothing saved (not the name either)
    page.get_by_label("Name", exact=True).fill("Ada King")
    page.get_by_label("Email", exact=True).fill("ada@")
    page.get_by_role("button", name="Save profile").click()
    email = page.get_by_label("Email", exact=True)
    assert page.locator("#email-error").inner_text() == "Not a valid email address."
    assert email.get_attribute("aria-invalid") == "true"
    assert email.get_attribute("aria-describedby") == "email-error"
    assert email.input_value() == "ada@"
    assert page.get_by_role("alert").inner_text() == (
        "The profile was not saved: correct the fields marked below."
    )
    seen(page, watch, live, "23-profile-error", "Your profile")
    page.goto(live.base + "/profile")
    assert page.get_by_label("Name", exact=True).input_value() == "Ada Lovelace"
    assert page.get_by_label("Email", exact=True).input_value() == "ada@example.org"


def add_and_withdraw_intention(page, watch: Watch, live: Live) -> None:
    page.get_by_label("What you intend").fill("New energy tariff")
    page.get_by_label("Kind").select_option("switch")
    page.get_by_label("From (YYYY-MM-DD)").fill("2030-03-01")
    page.get_by_label("Last day it is shown (YYYY-MM-DD)").fill("2030-03-31")
    page.get_by_role("button", name="Add intention").click()
    page.wait_for_url(live.base + "/profile#intentions")
    rows = page.get_by_role("table", name="Your intentions").locator("tbody tr")
    assert rows.count() == 1
    assert cells(rows.first) == [
        "New energy tariff",
        "switch",
        "2030-03-01",
        "",
        "2030-03-31",
        "Withdraw",
    ]
    seen(page, watch, live, "24-intention", "Your profile")
    rows.first.get_by_role("button", name="Withdraw").click()
    page.wait_for_url(live.base + "/profile#intentions")
    assert cells(rows.first) == ["No intentions."]


def access_request(page, watch: Watch, live: Live) -> None:
    page.goto(live.base + "/rights")
    page.get_by_role("link", name="Data-rights requests").click()
    assert page.locator("#request-1").count() == 0
    assert "No requests yet." in page.locator("main").inner_text()
    seen(page, watch, live, "25-requests-empty", "Data-rights requests")
    page.get_by_label("A copy of my data (Article 15)").check()
    page.get_by_label("Business", exact=True).fill("Acme Bank")
    page.get_by_label("Sent on (leave empty for today)").fill("2024-01-31")
    page.get_by_role("button", name="Write the letter").click()
    page.wait_for_url(live.base + "/requests?opened=1")
    assert page.get_by_role("status").inner_text() == (
        "Request 1 started: send the letter below to Acme Bank."
    )
    req = page.locator("#request-1")
    assert req.get_by_role("heading").inner_text() == "Request 1: access — Acme Bank"
    assert req.locator("p").first.inner_text() == (
        # the browser asks for en-US: its dates as the US writes them
        "Sent Jan 31, 2024; answer due by Feb 29, 2024. Status: open overdue"
    )
    letter = req.get_by_label("Copy this text into an e-mail or a letter")
    assert letter.is_visible()  # the new request's letter is open
    text = letter.input_value()
    assert text.startswith("Ada Lovelace\nada@example.org\n\n31 January 2024\n\nTo: Acme Bank\n")
    assert text.endswith("that is by 29 February 2024.\n\nYours faithfully,\nAda Lovelace\n")
    assert req.locator("p", has_text="Import the file").inner_text() == (
        "Import the file the business sends back, then choose it here."
    )
    seen(page, watch, live, "26-request-letter", "Data-rights requests")

    # the business answers with a file; its import fulfils the request
    assert import_file(page, MIDATA) == (
        "midata-spec-example.csv: 6 new, 0 already present, 0 rejected (midata)"
    )
    seen(page, watch, live, "27-import", "Import a file")
    page.goto(live.base + "/requests")
    chooser = page.get_by_label("The import of the file they sent")
    # sources 1 and 2 are the profile's and the intention's (not files, so not offered)
    assert chooser.locator("option").all_inner_texts() == [
        f"3: midata-spec-example.csv ({us_day(today())})"
    ]
    page.get_by_role("button", name="Mark fulfilled").click()
    page.wait_for_url(live.base + "/requests")
    assert page.get_by_role("status").inner_text() == "Request 1 (Acme Bank) marked fulfilled."
    assert page.locator("#request-1 strong").first.inner_text() == "fulfilled"
    assert page.locator("#request-1 p").first.inner_text() == (
        "Sent Jan 31, 2024; answer due by Feb 29, 2024. Status: fulfilled (by import 3)"
    )
    assert page.locator("#request-1").get_by_role("button").count() == 0
    seen(page, watch, live, "28-request-fulfilled", "Data-rights requests")


def forget_contacts(page, watch: Watch, live: Live) -> None:
    assert import_file(page, VCARD) == (
        "rfc6350-example.vcf: 1 new, 0 already present, 0 rejected (vcard)"
    )
    page.goto(live.base + "/requests#forget")
    page.get_by_label("Category", exact=True).select_option("contacts")
    page.get_by_label("Type the category's name again to confirm").fill("contact")
    page.get_by_role("button", name="Forget it for good").click()
    assert page.get_by_role("alert").inner_text() == (
        'type "contacts" in the confirmation box to forget it; nothing was forgotten'
    )
    seen(page, watch, live, "29-forget-refused", "Data-rights requests")
    page.get_by_role("link", name="Data", exact=True).click()
    assert page.get_by_role("link", name="contacts", exact=True).count() == 1

    page.goto(live.base + "/requests#forget")
    page.get_by_label("Category", exact=True).select_option("contacts")
    page.get_by_label("Type the category's name again to confirm").fill("contacts")
    page.get_by_role("button", name="Forget it for good").click()
    page.wait_for_url(live.base + "/requests")
    assert page.get_by_role("status").inner_text() == FORGET_ALL
    seen(page, watch, live, "30-forgotten", "Data-rights requests")
    page.get_by_role("link", name="Data", exact=True).click()
    categories = page.get_by_role("table", name="Categories").locator("tbody tr")
    assert [cells(categories.nth(i)) for i in range(categories.count())] == [
        ["profile", "1"],
        ["transactions", "6"],
    ]
    assert page.get_by_role("link", name="contacts", exact=True).count() == 0
    seen(page, watch, live, "31-data-after-forget", "Your data")


def export_zip(page, watch: Watch, live: Live, tmp: Path) -> None:
    page.goto(live.base + "/rights")
    page.get_by_role("link", name="Export everything").click()
    assert page.locator("main li").all_inner_texts() == [
        "profile: 1 record",
        "transactions: 6 records",
    ]
    seen(page, watch, live, "32-export", "Export everything")
    page.get_by_role("button", name="Prepare the export").click()
    page.wait_for_url(re.compile(re.escape(live.base) + r"/jobs/[0-9]+$"))
    link = page.get_by_role("link", name="Download the export")
    link.wait_for()  # jobs.js reloads the page when the job is done
    assert page.locator("#job p.ok").inner_text() == "The export holds 7 records."
    job_url = page.url
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.startswith("pds-export-")
    target = tmp / "export.zip"
    download.save_as(target)
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        transactions = json.loads(zf.read("transactions.json"))
    assert names[0] == "manifest.json"
    assert (manifest["format"], manifest["version"]) == ("pds-export", 1)
    assert manifest["categories"] == {"profile": 1, "transactions": 6}
    assert len(transactions["records"]) == 6
    assert "contacts.json" not in names
    assert page.url == job_url  # a download, not a navigation


def receipt(page, watch: Watch, live: Live, tmp: Path) -> None:
    business = Business(live)
    page.route(live.redirect_uri + "?**", lambda r: r.fulfill(status=200, body="ok"))
    page.goto(business.authorize_url("read:transactions"))
    seen(page, watch, live, "33-consent", "Browser Bank asks to use your data")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(live.redirect_uri + "?**")
    token = business.redeem(page.url)["access_token"]
    status, body = business.read(token, "transactions")
    assert (status, len(body["records"])) == (200, 6)

    page.goto(live.base + "/grants")
    seen(page, watch, live, "34-businesses", "Who may use your data")
    with page.expect_download() as info:
        page.locator("#grant-1").get_by_role("link", name="Consent receipt").click()
    download = info.value
    assert download.suggested_filename == "receipt-grant-1.jws"
    jws = tmp / "receipt.jws"
    download.save_as(jws)
    done = verify_receipt(live, jws)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["valid"], summary["grant_id"], summary["controller"]) == (
        True,
        1,
        "Browser Bank",
    )
    assert summary["key"]["trusted"] == "this vault's key"

    # the same receipt with one character of its claims changed is refused
    head, claims, signature = jws.read_text().strip().split(".")
    middle = len(claims) // 2
    swapped = "B" if claims[middle] == "A" else "A"
    jws.write_text(".".join([head, claims[:middle] + swapped + claims[middle + 1 :], signature]))
    done = verify_receipt(live, jws)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines()[0] == f"Error: {CHANGED}"


def verify_receipt(live: Live, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pds", "receipts", "verify", str(path), "--json"],
        env=live.env,
        capture_output=True,
        text=True,
        check=False,
    )


def processing(page, watch: Watch, live: Live) -> None:
    page.goto(live.base + "/rights")
    page.get_by_role("link", name="Record of processing").click()
    rows = page.get_by_role("table", name="Businesses").locator("tbody tr")
    assert rows.count() == 1
    got = cells(rows.first)
    assert got[:3] == ["Browser Bank", "1", "1"]
    assert got[3].startswith(today())
    seen(page, watch, live, "35-processing", "What each business does with your data")
    rows.first.get_by_role("link", name="Browser Bank").click()
    page.wait_for_url(live.base + "/processing/" + live.client_id)
    dl = page.locator("main dd")
    assert dl.nth(0).inner_text() == f"Browser Bank ({live.client_id})"
    assert dl.nth(4).inner_text().startswith("1 call allowed, 0 refused; first " + today())
    data = page.get_by_role("table", name="Data it was allowed to use").locator("tbody tr")
    assert [cells(data.nth(i)) for i in range(data.count())] == [
        ["transactions", "read", "all fields", "6", "0"]
    ]
    retention = page.get_by_role("table", name="Grants and how long they last")
    assert cells(retention.locator("tbody tr").first)[0] == "1"
    assert cells(retention.locator("tbody tr").first)[4:] == ["active", "Download"]
    seen(page, watch, live, "36-processing-business", "Record of processing: Browser Bank")


@pytest.mark.slow
def test_rights_journey(page, watch: Watch, live: Live, tmp_path: Path) -> None:
    sign_in(page, live)
    edit_profile(page, watch, live)
    add_and_withdraw_intention(page, watch, live)
    access_request(page, watch, live)
    forget_contacts(page, watch, live)
    export_zip(page, watch, live, tmp_path)
    receipt(page, watch, live, tmp_path)
    processing(page, watch, live)
    assert watch.foreign(live.base) == []
    assert watch.problems == []


@pytest.mark.slow
def test_rights_pages_fit_a_phone(browser, live: Live) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        sign_in(page, live)
        for path in ("/rights", "/profile", "/requests", "/export", "/processing"):
            page.goto(live.base + path)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, path
            shot(page, "40-phone" + path.replace("/", "-"))
    finally:
        context.close()
    assert [u for u in requests if not u.startswith(live.base + "/")] == []
