"""Every sidebar page, for every staff role, on the demo data, in Chromium at 1,280 px: no page answers 4xx/5xx,
logs a JavaScript error or scrolls sideways. A screenshot of each role's dashboard is kept for CI's artifacts."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from fixtures.demo import DEMO_PASSWORD, STAFF, seed_demo

# About 35 pages per role, five roles, on one seeded demo: about two minutes on an idle 2-core runner.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

WIDTH = 1280
# Where CI collects artifacts; a local run writes to pytest's temporary folder.
ARTIFACTS = os.environ.get("CI_ARTIFACTS_DIR")

# Which parts of a page scroll sideways: the page itself, or any scrolling box in the main area (a list's table).
SIDEWAYS = """() => {
    const wider = (element) => element.scrollWidth > element.clientWidth + 1;
    const found = [];
    if (wider(document.scrollingElement)) found.push("the page");
    const main = document.querySelector("#main") || document.querySelector("main");
    if (main) {
        for (const element of [main, ...main.querySelectorAll("*")]) {
            const overflow = getComputedStyle(element).overflowX;
            if ((overflow === "auto" || overflow === "scroll") && wider(element) && element.offsetParent !== null) {
                found.push(element.id ? "#" + element.id : element.tagName.toLowerCase() + "." + element.className);
            }
        }
    }
    return found;
}"""

# The sidebar's links to pages of this admin (unfold's navigation), without logout and the portal.
SIDEBAR_LINKS = """() => [...new Set(
    [...document.querySelectorAll("#nav-sidebar-inner a[href], nav a[href]")]
        .map((link) => link.getAttribute("href"))
        .filter((href) => href.startsWith("/admin/") && !href.startsWith("/admin/logout"))
)]"""


def sign_in(page: Page, email: str) -> None:
    page.goto("/admin/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")


def problems_on_every_sidebar_page(browser: Browser, base_url: str, email: str, screenshot: Path) -> list[str]:
    context = browser.new_context(base_url=base_url, viewport={"width": WIDTH, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
    page.on("console", lambda message: errors.append(f"console: {message.text}") if message.type == "error" else None)
    try:
        sign_in(page, email)
        page.screenshot(path=screenshot, full_page=True)
        links = page.evaluate(SIDEBAR_LINKS)
        assert len(links) > 3, f"{email} sees only {links}"
        problems = []
        for link in links:
            errors.clear()
            response = page.goto(link)

            if response is None or response.status >= 400:
                problems.append(f"{link}: answered {response.status if response else 'nothing'}")
            problems += [f"{link}: {error}" for error in errors]
            problems += [f"{link}: {part} scrolls sideways at {WIDTH} px" for part in page.evaluate(SIDEWAYS)]
        return problems
    finally:
        context.close()


def test_every_role_opens_every_sidebar_page_cleanly(browser: Browser, live_server, tmp_path):
    seed_demo()
    folder = Path(ARTIFACTS) if ARTIFACTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)

    problems = {}
    for role, email, _ in STAFF:
        screenshot = folder / f"dashboard-{role.lower().replace(' ', '-')}.png"
        found = problems_on_every_sidebar_page(browser, live_server.url, email, screenshot)
        if found:
            problems[str(role)] = found

    assert problems == {}
