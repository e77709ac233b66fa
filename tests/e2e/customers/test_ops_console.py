"""The operations console in a real browser (Playwright, the system Chromium) against the running
sandbox: its numbers are the store's and the bus's; a dead letter is fixed at the source,
resubmitted from the page, and converges. Screenshots go to test-artifacts/console/ (or
$TEST_ARTIFACTS/console/)."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.up import console_url
from tests.e2e.customers.conftest import BP_TOPIC, ROOT, TO_BP, TO_DV, Sandbox
from tests.e2e.customers.test_bad_input import publish
from tests.e2e.customers.test_sync_both_ways import bp_create_contact, dv_create_contact

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or ROOT / "test-artifacts") / "console"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(f"no system Chromium at {CHROMIUM}: apt-get install -y chromium (make setup does)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            launched.close()


def cell(page, testid: str) -> str:  # type: ignore[no-untyped-def]
    return page.get_by_test_id(testid).inner_text().strip()


def test_console_shows_the_store_and_a_dead_letter_resubmitted_from_the_page_converges(
    sandbox: Sandbox, browser
):
    sb = sandbox
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    good = bp_create_contact(sb, "Good", "Customer", "good.customer@example.org")
    bad = bp_create_contact(sb, "Bad", "Email", "bad.email@@example.org")
    hopeless = bp_create_contact(sb, "Test", "Record", "test.record@@example.org")
    publish(sb, BP_TOPIC, "brightpearl", [str(good)], "v1")
    sb.host.wait_idle(timeout=60)
    publish(sb, BP_TOPIC, "brightpearl", [str(bad)], "v1")
    sb.host.wait_idle(timeout=60)
    assert sb.bus.counts(BP_TOPIC, TO_DV).dead_letter == 1

    url = console_url(sb.values, sb.host.port)  # the URL `make run` prints
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before an action
    page.goto(url)
    assert page.title() == "bpsync operations"

    # the page's numbers are the audit table's and the bus's
    by_result = Counter(str(e.result) for e in sb.store.audit.recent(TO_DV, limit=1000))
    assert by_result == {"synced": 1, "dead-lettered": 1}
    for result in ("synced", "dead-lettered", "skipped", "needs-review"):
        assert cell(page, f"{TO_DV}:{result}") == str(by_result.get(result, 0)), result
    assert cell(page, f"backlog:{TO_DV}:dead") == "1"
    assert cell(page, f"backlog:{TO_DV}:active") == str(sb.bus.counts(BP_TOPIC, TO_DV).active)
    assert cell(page, "error-reason") == "InvalidEmail"
    assert cell(page, "error-fix").startswith("Correct the e-mail")
    assert page.locator(".chart canvas").count() >= 1  # uPlot drew, served by the app (no CDN)
    page.screenshot(path=str(ARTIFACTS / "1-overview.png"), full_page=True)

    # triage: the dead letter grouped by cause, with its fix and a bulk resubmit not yet safe
    page.get_by_role("banner").get_by_role("link", name="Triage").click()
    assert cell(page, "triage-total") == "1"
    assert cell(page, "triage-group").startswith(f"{TO_DV}/InvalidEmail")
    assert cell(page, "triage-fix").startswith("Correct the e-mail")
    assert cell(page, "triage-safe") == "not yet"
    page.screenshot(path=str(ARTIFACTS / "1b-triage.png"), full_page=True)

    # dead letters: filtered by reason (any case), inspected without personal data
    page.get_by_role("banner").get_by_role("link", name="Dead letters").click()
    page.fill("input[name=reason]", "invalidemail")
    page.click("button[type=submit]")
    assert cell(page, "dl-count") == "1"
    page.get_by_test_id("inspect").first.click()
    text = page.inner_text("main")
    assert str(bad) in text and "InvalidEmail" in text and "bad.email" not in text
    assert cell(page, "fix").startswith("Correct the e-mail")
    page.screenshot(path=str(ARTIFACTS / "2-dead-letter.png"), full_page=True)

    # without the confirmation the browser does not send it; fix at the source, then resubmit
    with sb.bp_sim.state.lock:
        sb.bp_sim.state.contacts[bad]["communication"]["emails"]["PRI"] = {"email": "fixed@example.org"}
    page.get_by_test_id("confirm-resubmit").check()
    page.get_by_test_id("resubmit").click()
    assert cell(page, "outcome") == "resubmitted"
    page.screenshot(path=str(ARTIFACTS / "3-resubmitted.png"), full_page=True)

    sb.host.wait_idle(timeout=60)
    assert str(bad) in {r.get("bpi_brightpearlid") for r in sb.dv_contacts()}
    assert sb.bus.counts(BP_TOPIC, TO_DV).dead_letter == 0
    page.goto(url)
    assert cell(page, f"backlog:{TO_DV}:dead") == "0"
    assert cell(page, f"{TO_DV}:synced") == "2"
    assert cell(page, f"{TO_DV}:operator") == "1"  # the resubmit, written to the audit
    [action] = [
        e
        for e in sb.store.audit.for_record("customer", "brightpearl", str(bad))
        if e.reason_code == "DeadLetterResubmitted"
    ]
    assert action.result == "operator"
    page.screenshot(path=str(ARTIFACTS / "4-converged.png"), full_page=True)

    # a record nobody will fix: its dead letter is purged with "purge all listed"
    publish(sb, BP_TOPIC, "brightpearl", [str(hopeless)], "v1")
    sb.host.wait_idle(timeout=60)
    page.get_by_role("banner").get_by_role("link", name="Dead letters").click()
    assert cell(page, "dl-count") == "1"
    page.get_by_test_id("confirm-purge-all").check()
    page.get_by_test_id("purge-all").click()
    assert cell(page, "outcome") == "purged"
    assert sb.bus.counts(BP_TOPIC, TO_DV).dead_letter == 0
    # (the sandbox's clock stands still: both rows carry the same time, so look for the row)
    rows = sb.store.audit.for_record("customer", "brightpearl", str(hopeless))
    assert [r.result for r in rows if r.reason_code == "DeadLetterPurged"] == ["operator"]
    page.close()


def test_console_refuses_without_the_admin_key_and_an_action_without_confirmation(sandbox: Sandbox):
    import httpx

    url = f"{sandbox.host.api_url}/ops"
    assert httpx.get(url).status_code == 401
    function_key = sandbox.values["LOCAL_FUNCTION_KEY"]
    assert httpx.get(url, params={"code": function_key}).status_code == 401  # admin level
    master = sandbox.values["LOCAL_MASTER_KEY"]
    refused = httpx.post(
        f"{url}/deadletters/purge",
        params={"code": master},
        data={"subscription": TO_DV, "message_id": "x"},
    )
    assert refused.status_code == 400 and "confirm" in refused.text
    bad_window = httpx.get(url, params={"code": master, "hours": "soon"})
    assert bad_window.status_code == 400 and "hours" in bad_window.text


def test_console_operator_loop_review_history_pause_and_sync_one_record(sandbox: Sandbox, browser):
    sb = sandbox
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    bp_create_contact(sb, "Katherine", "Johnson", None, postcode="LS1 1UR")
    sb.settle()
    flagged = dv_create_contact(
        sb,
        firstname="Katharine",
        lastname="Johnson",
        address1_line1="2 Park Row",
        address1_postalcode="ls1 1ur",
        address1_country="United Kingdom",
    )
    sb.settle()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(console_url(sb.values, sb.host.port))

    # needs review: listed with its reason, its history one click away, dismissed with a confirmation
    page.get_by_role("banner").get_by_role("link", name="Needs review").click()
    assert cell(page, "review-count") == "1" and cell(page, "review-reason") == "LikelyDuplicate"
    page.screenshot(path=str(ARTIFACTS / "5-needs-review.png"), full_page=True)
    page.get_by_role("link", name=flagged).click()
    assert "needs-review" in [r.strip() for r in page.get_by_test_id("history-result").all_inner_texts()]
    page.screenshot(path=str(ARTIFACTS / "6-history.png"), full_page=True)
    page.go_back()
    key = f"{TO_BP}/{flagged}"
    sb.clock.advance(1)  # the sandbox's clock stands still: the decision must be newer than the flag
    page.get_by_test_id(f"confirm-dismiss-{key}").check()
    page.get_by_test_id(f"dismiss-{key}").click()
    assert cell(page, "flash") == f"{key}: ReviewDismissed"
    page.get_by_role("banner").get_by_role("link", name="Needs review").click()
    assert cell(page, "review-count") == "0"

    # pause and resume a flow from the overview, each audited
    page.get_by_role("banner").get_by_role("link", name="Overview").click()
    page.get_by_test_id(f"{TO_DV}:state").click()  # opens its form
    page.get_by_test_id(f"confirm-pause-{TO_DV}").check()
    page.get_by_test_id(f"pause-{TO_DV}").click()
    assert cell(page, "flash") == f"{TO_DV}: paused"
    page.get_by_role("banner").get_by_role("link", name="Overview").click()
    assert cell(page, f"{TO_DV}:state") == "paused"
    page.get_by_test_id(f"{TO_DV}:state").click()
    page.get_by_test_id(f"confirm-resume-{TO_DV}").check()
    page.get_by_test_id(f"resume-{TO_DV}").click()
    assert cell(page, "flash") == f"{TO_DV}: resumed"
    operator = [e.reason_code for e in sb.store.audit.recent(TO_DV) if e.result == "operator"]
    assert sorted(operator) == ["FlowPaused", "FlowResumed"]

    # sync one record now from its history page; the request and its outcome both show there
    contact = bp_create_contact(sb, "Sync", "Now", "sync.now@example.org")
    page.goto(
        f"{sb.host.api_url}/ops/history?system=brightpearl&type=contact&id={contact}"
        f"&code={sb.values['LOCAL_MASTER_KEY']}"
    )
    page.get_by_test_id("confirm-sync").check()
    page.get_by_test_id("sync").click()
    assert cell(page, "flash") == f"Brightpearl contact {contact}: sync requested"
    sb.host.wait_idle(timeout=60)
    assert str(contact) in {r.get("bpi_brightpearlid") for r in sb.dv_contacts()}
    page.get_by_role("link", name="Back").click()
    results = [r.strip() for r in page.get_by_test_id("history-result").all_inner_texts()]
    assert "operator" in results and "synced" in results
    page.screenshot(path=str(ARTIFACTS / "7-synced-on-request.png"), full_page=True)
    page.close()
