"""The web inbox in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tether
from playwright.sync_api import Browser, Page, sync_playwright
from tether import HumanTask, Status
from tether.settings import Settings

from ...server_harness import running_server

AGENT = "agent://acme/refunds"
DOCS = Path(__file__).resolve().parents[3] / "docs"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FORM = {
    "type": "object",
    "properties": {
        "ticket": {
            "type": "string",
            "pattern": "^SUP-[0-9]+$",
            "description": "Support ticket, like SUP-311",
        },
        "amount": {"type": "number", "maximum": 500, "title": "Amount to refund"},
        "reason": {"enum": ["damaged", "late", "other"]},
    },
    "required": ["ticket"],
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        yield b
        b.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, tether.Client, str]]:
    with (
        tether.connect(f"sqlite:///{tmp_path / 'web.db'}") as client,
        running_server(client.engine) as url,
    ):
        alice = client.engine.create_key(
            tether.KeyRole.APPROVER, subject="alice@acme.test", groups=["finance"]
        )
        yield url, client, alice.secret


def waiting(client: tether.Client, title: str, **task: object) -> str:
    agent = client.as_actor(tether.Principal.agent(AGENT))
    intent = agent.create_intent("refund.request.v1", AGENT, {"order": "A-1042", "amount": 120},
                                 human_task=HumanTask(title=title, **task))  # type: ignore[arg-type]  # fmt: skip
    return intent.intent_id


def sign_in(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/inbox")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/inbox")


def test_sign_in_and_approve_resumes_the_intent(
    browser: Browser, site: tuple[str, tether.Client, str]
) -> None:
    url, client, key = site
    intent_id = waiting(client, "Refund 120 EUR for order A-1042?", assignees=["alice@acme.test"],
                        description="Parcel arrived damaged; photos attached.", form_schema=FORM)  # fmt: skip
    waiting(client, "Someone else's task", assignees=["bob@acme.test"])
    page = browser.new_page(viewport={"width": 1000, "height": 760})
    sign_in(page, url, key)
    tasks = page.locator("ul.tasks li")
    assert tasks.count() == 1  # only what alice may answer
    assert "Refund 120 EUR" in tasks.first.inner_text()
    page.screenshot(path=str(DOCS / "inbox.png"))
    tasks.first.get_by_role("link").click()
    page.get_by_label("Ticket (required)").fill("SUP-311")
    page.get_by_label("Amount to refund").fill("120")
    page.get_by_label("Reason").select_option("damaged")
    page.get_by_label("Comment").fill("Photos confirm the damage")
    page.screenshot(path=str(DOCS / "task.png"), full_page=True)
    page.get_by_role("button", name="Approved").click()
    page.wait_for_url(f"{url}/inbox")
    assert "Nothing is waiting for you" in page.inner_text("#tasks")
    intent = client.get_intent(intent_id)
    assert intent.status is Status.IN_PROGRESS
    wait = client.list_waits(intent_id)[0]
    assert (wait.outcome, wait.comment, wait.resolved_by) == ("approved", "Photos confirm the damage",
                                                            "human:alice@acme.test")  # fmt: skip
    assert wait.result == {"ticket": "SUP-311", "amount": 120, "reason": "damaged"}
    page.close()


def test_an_invalid_form_shows_errors_beside_the_fields(
    browser: Browser, site: tuple[str, tether.Client, str]
) -> None:
    url, client, key = site
    intent_id = waiting(
        client, "Refund?", groups=["finance"], form_schema=FORM, required_comment=True
    )
    page = browser.new_page()
    sign_in(page, url, key)
    page.goto(f"{url}/inbox/tasks/{intent_id}")
    page.get_by_label("Ticket (required)").fill("nope")
    page.get_by_label("Amount to refund").fill("9000")
    page.get_by_label("Comment (required)").fill("ok")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Approved").click()
    assert posted.value.status == 422
    assert "does not match" in page.inner_text("#e-ticket")
    assert "9000" in page.inner_text("#e-amount")
    assert page.get_by_label("Ticket (required)").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Ticket (required)").input_value() == "nope"  # what was typed is kept
    assert client.get_intent(intent_id).status is Status.WAITING
    page.close()


def test_the_list_updates_live_and_reads_well_on_a_phone(
    browser: Browser, site: tuple[str, tether.Client, str]
) -> None:
    url, client, key = site
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, url, key)
    assert "Nothing is waiting" in page.inner_text("#tasks")
    page.wait_for_timeout(300)  # let the live connection open
    first = waiting(client, "Arrived while you looked", groups=["finance"])
    page.wait_for_selector("text=Arrived while you looked", timeout=15000)
    # every form control has a label, and the page does not scroll sideways on a phone
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    for _ in range(10):  # keyboard only: tab to the task, then Enter
        page.keyboard.press("Tab")
        if "/inbox/tasks/" in (page.evaluate("document.activeElement.getAttribute('href')") or ""):
            break
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/inbox/tasks/{first}")
    unlabeled = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
           .filter(e => !e.labels || e.labels.length === 0).length"""
    )
    assert unlabeled == 0
    # taken by someone else: the list drops it live
    page.goto(f"{url}/inbox")
    page.wait_for_selector("text=Arrived while you looked")
    page.wait_for_timeout(300)
    client.as_actor(tether.Principal.human("carol", groups=["finance"])).approve(first)
    page.wait_for_selector("text=Nothing is waiting for you", timeout=15000)
    page.close()


def test_an_agent_key_cannot_sign_in(
    browser: Browser, site: tuple[str, tether.Client, str]
) -> None:
    url, client, _ = site
    agent_key = client.engine.create_key(tether.KeyRole.AGENT, agent=AGENT).secret
    page = browser.new_page()
    page.goto(f"{url}/inbox")
    page.get_by_label("API key").fill(agent_key)
    page.get_by_role("button", name="Sign in").click()
    assert "not valid here" in page.inner_text("[role=alert]")
    page.close()


def test_the_agents_page_shows_status_health_spend_and_lets_admins_stop_agents(
    browser: Browser, site: tuple[str, tether.Client, str]
) -> None:
    url, client, approver_key = site
    admin_key = client.engine.create_key(tether.KeyRole.ADMIN, subject="ops@acme.test").secret
    intent = client.create_intent("refund.request.v1", AGENT, {"amount": 5})
    lease = client.start(intent.intent_id)
    client.report_usage(intent.intent_id, model="m", tokens_in=900, tokens_out=100, cost_usd=1.25,
                        lease=lease)  # fmt: skip
    client.agent_heartbeat(AGENT)
    client.register_agent("agent://acme/search")
    page = browser.new_page(viewport={"width": 1000, "height": 600})
    sign_in(page, url, admin_key)
    page.get_by_role("link", name="Agents").click()
    page.wait_for_url(f"{url}/inbox/agents")
    row = page.locator(f"tr[data-address='{AGENT}']")
    assert "active" in row.inner_text() and "$1.25 / $1.25" in row.inner_text()
    page.screenshot(path=str(DOCS / "agents.png"))
    row.get_by_role("button", name=f"Pause {AGENT}").click()
    page.wait_for_url(f"{url}/inbox/agents")
    assert client.get_agent(AGENT).status is tether.AgentStatus.PAUSED
    assert "paused" in row.inner_text()
    page.once("dialog", lambda dialog: dialog.accept())  # kill asks first
    row.get_by_role("button", name=f"Kill {AGENT}").click()
    page.wait_for_selector(f"tr[data-address='{AGENT}'] .status-killed")
    killed = client.get_agent(AGENT)
    assert killed.status is tether.AgentStatus.KILLED
    assert killed.status_reason == "from the web inbox by ops@acme.test"
    assert [e.actor for e in client.mesh_events(agent=AGENT)][-1] == "admin:ops@acme.test"
    # a change made elsewhere shows up live
    page.wait_for_timeout(300)
    client.resume_agent(AGENT)
    page.wait_for_selector(f"tr[data-address='{AGENT}'] .status-active", timeout=15000)
    # a stale page cannot undo what someone else just did
    client.pause_agent("agent://acme/search")
    search = page.locator("tr[data-address='agent://acme/search']")
    page.evaluate("document.getElementById('agents').id = 'frozen'")  # keep the stale buttons
    search.get_by_role("button", name="Pause agent://acme/search").click()
    assert "changed meanwhile" in page.inner_text("[role=alert]")
    page.close()
    # an approver sees the page but no buttons, and a forged post is refused
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(phone, url, approver_key)
    phone.goto(f"{url}/inbox/agents")
    assert phone.get_by_role("button", name=f"Kill {AGENT}").count() == 0
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    forged = phone.request.post(f"{url}/inbox/agents/status",
                                form={"address": AGENT, "action": "kill", "generation": "9"})  # fmt: skip
    assert forged.status == 403
    assert client.get_agent(AGENT).status is tether.AgentStatus.ACTIVE
    phone.close()


def test_pages_count_against_the_keys_rate_limit(tmp_path: Path) -> None:
    """A key the API limits is limited on the inbox's pages too (and an answer through them)."""
    with tether.connect(f"sqlite:///{tmp_path / 'web.db'}") as client:
        alice = client.engine.create_key(tether.KeyRole.APPROVER, subject="alice@acme.test")
        intent_id = waiting(client, "Refund?", assignees=["alice@acme.test"])
        settings = Settings(rate_limit=0.5, rate_burst=2)
        with running_server(client.engine, settings) as url:
            cookie = {"cookie": f"tether_key={alice.secret}"}
            pages = [httpx.get(f"{url}/inbox", headers=cookie).status_code for _ in range(3)]
            assert pages == [200, 200, 429]
            answer = httpx.post(
                f"{url}/inbox/tasks/{intent_id}",
                data={"outcome": "approved"},
                headers={**cookie, "origin": url},
            )
            assert answer.status_code == 429 and "retry-after" in answer.headers
            assert client.get_intent(intent_id).status is tether.Status.WAITING  # not answered


def test_a_form_whose_properties_are_true_or_of_several_types_is_shown_and_answered(
    tmp_path: Path,
) -> None:
    schema = {
        "type": "object",
        "properties": {"note": True, "urgent": {"type": ["boolean", "null"]}},
    }
    with tether.connect(f"sqlite:///{tmp_path / 'web.db'}") as client:
        alice = client.engine.create_key(tether.KeyRole.APPROVER, subject="alice@acme.test")
        intent_id = waiting(client, "Refund?", assignees=["alice@acme.test"], form_schema=schema)
        with running_server(client.engine) as url:
            cookie = {"cookie": f"tether_key={alice.secret}"}
            page = httpx.get(f"{url}/inbox/tasks/{intent_id}", headers=cookie)
            assert page.status_code == 200 and 'name="field:note"' in page.text
            answer = httpx.post(
                f"{url}/inbox/tasks/{intent_id}",
                data={"outcome": "approved", "field:note": "ok", "field:urgent": "true"},
                headers={**cookie, "origin": url},
            )
            assert answer.status_code == 303, answer.text
        wait = client.list_waits(intent_id)[-1]
        assert wait.outcome == "approved" and wait.result == {"note": "ok", "urgent": True}
