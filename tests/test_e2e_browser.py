"""End to end: `streamlit run` on localhost driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.browser_support import download
from tests.conftest import Planted

pytestmark = pytest.mark.e2e


def test_home_page_links_to_both_pages(server_url: str, page: Page) -> None:
    page.goto(server_url)
    expect(page.get_by_role("heading", name="Pythia Head Atlas")).to_be_visible()
    expect(page.get_by_role("link", name="Layer chart").first).to_be_visible()
    expect(page.get_by_role("link", name="Classify heads").first).to_be_visible()


@pytest.mark.parametrize("path", ["", "/Layer_chart", "/Classify_heads"])
def test_every_page_opened_by_its_address_links_to_all_pages(
    server_url: str, page: Page, path: str
) -> None:
    page.goto(f"{server_url}{path}")
    sidebar = page.get_by_test_id("stSidebar")
    for label in ("Home", "Layer chart", "Classify heads"):
        expect(sidebar.get_by_role("link", name=label)).to_be_visible()
    expect(sidebar.get_by_text("streamlit app")).to_have_count(0)


def prepare_local_folder(page: Page, server_url: str, folder: Path) -> None:
    """Open Classify heads and choose a local checkpoint folder, ready to Run."""
    page.goto(f"{server_url}/Classify_heads")
    page.get_by_text("Local folder", exact=True).click()
    field = page.get_by_role("textbox", name="Local checkpoint folder")
    field.fill(str(folder))
    field.press("Enter")
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()


def test_classify_a_local_checkpoint_and_open_it_in_the_chart(
    server_url: str, page: Page, planted_checkpoint: Planted, tmp_path: Path
) -> None:
    prepare_local_folder(page, server_url, planted_checkpoint.path)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_role("button", name="Open in chart")).to_be_visible(timeout=180_000)
    expect(page.get_by_text("heads, float32 on cpu")).to_be_visible()
    for label in planted_checkpoint.heads.values():  # the "Show labels" filter lists them
        expect(page.get_by_text(label, exact=True).filter(visible=True).first).to_be_visible()
    table = pd.read_csv(io.BytesIO(download(page, "Download CSV", tmp_path)))
    labelled = {(r.layer, r.head): r.label for r in table.itertuples() if r.label != "unclassified"}
    assert labelled == planted_checkpoint.heads

    page.get_by_role("button", name="Open in chart").click()
    expect(page.get_by_role("heading", name="Layer chart")).to_be_visible()
    expect(page.locator(".vega-embed").first).to_be_visible()
    counts = pd.read_csv(io.BytesIO(download(page, "Counts table (CSV)", tmp_path)))
    assert counts["n_heads"].sum() == len(planted_checkpoint.heads)
