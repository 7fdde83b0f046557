"""End to end: `streamlit run` on localhost driven by Debian's Chromium through Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, require_chromium, streamlit_server

pytestmark = pytest.mark.e2e
PAGE_LOAD_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    workdir = tmp_path_factory.mktemp("e2e-server")
    with streamlit_server({"HEAD_ATLAS_CACHE_DIR": str(workdir / "cache")}, workdir / "log") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(PAGE_LOAD_TIMEOUT_MS)
    yield context.new_page()
    context.close()


def test_home_page_links_to_both_pages(server_url: str, page: Page) -> None:
    page.goto(server_url)
    expect(page.get_by_role("heading", name="Pythia Head Atlas")).to_be_visible()
    expect(page.get_by_role("link", name="Layer chart").first).to_be_visible()
    expect(page.get_by_role("link", name="Classify heads").first).to_be_visible()


def screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
