"""End to end: `streamlit run` on localhost driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_home_page_links_to_both_pages(server_url: str, page: Page) -> None:
    page.goto(server_url)
    expect(page.get_by_role("heading", name="Pythia Head Atlas")).to_be_visible()
    expect(page.get_by_role("link", name="Layer chart").first).to_be_visible()
    expect(page.get_by_role("link", name="Classify heads").first).to_be_visible()
