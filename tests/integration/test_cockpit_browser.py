"""The cockpit in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright's Python package) against ``nudge ui`` reading the record a real worker on a
real broker made from the bundled sample day.

Screenshots of every page are kept in ``reports/cockpit/`` as the test's artefacts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broker import free_port
from cli.demo import drained
from cli.sample import COMPANIES, REPS, SAMPLE_FILE
from tests.conftest import ROOT, WorkerProcess, wait_for

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "browser-test-token-4f1c9a"
SHOTS = ROOT / "reports" / "cockpit"


@pytest.fixture
def sample_record(start_worker: Callable[..., WorkerProcess]) -> WorkerProcess:
    """A worker that has processed the whole sample day (its record is then complete)."""
    worker = start_worker()
    status, result = worker.post_events(SAMPLE_FILE.read_bytes())
    assert status in (200, 207), result
    accepted = result["accepted"]
    assert accepted > 200
    wait_for(lambda: drained(worker.stats(), accepted), timeout=90, message=worker.stats)
    time.sleep(2.0)  # the lead agent writes its snapshots to SQLite once a second
    return worker


@pytest.fixture
def cockpit(sample_record: WorkerProcess, tmp_path: Path) -> Iterator[str]:
    """``nudge ui`` on a free loopback port over the worker's data dir; its base URL."""
    port = free_port()
    env = {
        **sample_record.env,
        "NUDGE_API_TOKEN": TOKEN,
        "NUDGE_UI_PORT": str(port),
    }
    log = tmp_path / "ui.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "ui"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            assert proc.poll() is None, log.read_text()
            return False

    try:
        wait_for(up, timeout=60, message=log.read_text)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} missing: `make test` installs Debian's chromium (deploy/system-packages.sh)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_cockpit_in_a_browser(cockpit: str, browser: object) -> None:
    """Without a token every page is 401 with the login form and no lead data; after
    logging in the ranking lists the sample's leads, a click opens a lead's page, a rule
    opens its firings and every page renders (a screenshot of each is kept)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()  # type: ignore[attr-defined]

    for path in ("/", "/leads/lead-001", "/playbooks", "/reps", "/model", "/inventory"):
        response = page.goto(cockpit + path)
        assert response.status == 401, path
        assert page.locator("input[name=token]").count() == 1
        text = page.content()
        for secret in [c for c, _ in COMPANIES] + [r[1] for r in REPS]:
            assert secret not in text, (path, secret)

    page.goto(cockpit + "/")
    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    assert "not valid" in page.content()

    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("table#leads")
    rows = page.locator("table#leads tbody tr")
    assert rows.count() >= 20
    page.screenshot(path=str(SHOTS / "leads.png"), full_page=True)

    first = rows.first.locator("td a").first
    company = first.inner_text()
    first.click()
    page.wait_for_selector("h1")
    assert company in page.locator("h1").inner_text()
    assert page.locator("table#score-changes tbody tr").count() >= 1
    page.screenshot(path=str(SHOTS / "lead.png"), full_page=True)

    page.goto(cockpit + "/playbooks")
    rules = page.locator("#rules .rule h2 a")
    assert rules.count() >= 1
    rule_name = rules.first.inner_text()
    page.screenshot(path=str(SHOTS / "playbooks.png"), full_page=True)
    rules.first.click()
    page.wait_for_selector("table#firings")
    assert rule_name in page.locator("h1").inner_text()
    assert page.locator("table#firings tbody tr").count() >= 1
    page.screenshot(path=str(SHOTS / "firings.png"), full_page=True)
    page.locator("table#firings tbody tr td a").first.click()
    page.wait_for_selector("table#nudges")
    assert page.locator("table#nudges tbody tr").count() >= 1
    # the worker's decision trace: the rule that nudged about this lead fired
    assert f"{rule_name.replace(' / ', '/')}" in page.locator("#trace").inner_text()
    assert "fired" in page.locator("#trace").inner_text()
    page.screenshot(path=str(SHOTS / "lead-nudged.png"), full_page=True)

    for name, path, selector in (
        ("reps", "/reps", "table#reps"),
        ("model", "/model", "h1"),
        ("inventory", "/inventory", "h1"),
    ):
        response = page.goto(cockpit + path)
        assert response.status == 200, path
        page.wait_for_selector(selector)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    page.goto(cockpit + "/reps")
    assert page.locator("table#reps tbody tr").count() == 4  # the sample's four reps

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)  # type: ignore[attr-defined]
    phone.add_cookies(page.context.cookies())
    small = phone.new_page()
    small.goto(cockpit + "/")
    small.wait_for_selector("table#leads")
    small.screenshot(path=str(SHOTS / "leads-phone.png"), full_page=False)
    assert os.path.getsize(SHOTS / "leads.png") > 10_000
