"""End to end: `streamlit run` on localhost driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect

from lib.charts.heatmap import MAX_CELL
from tests.browser_support import PAGE_LOAD_TIMEOUT_MS, download, wait_until_idle
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


FRESH_SESSIONS = 4


def test_fresh_sessions_show_the_default_thresholds(
    server_url: str, browser: Browser, planted_checkpoint: Planted
) -> None:
    """First visits drawn in real Chromium: before `ui.state.starting_at` about a third of them
    showed (and used) every threshold as 0 %, so every head got a label."""
    shown = []
    for _ in range(FRESH_SESSIONS):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(PAGE_LOAD_TIMEOUT_MS)
        page = context.new_page()
        prepare_local_folder(page, server_url, planted_checkpoint.path)
        wait_until_idle(page)
        # While a run replaces the page, Streamlit shows the old elements beside the new.
        expander = page.get_by_test_id("stSidebar").get_by_text("Thresholds", exact=True)
        expect(expander).to_have_count(1)
        expander.click()
        inputs = page.get_by_test_id("stSidebar").get_by_role("spinbutton")
        expect(inputs.first).to_be_visible()
        shown.append([inputs.nth(i).input_value() for i in range(inputs.count())])
        context.close()
    assert shown == [["15.00", "40.00", "40.00", "40.00", "90.00"]] * FRESH_SESSIONS


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
    # The default population: the operation heads, without the pattern-only previous-token head.
    assert counts["n_heads"].sum() == len(planted_checkpoint.heads) - 1

    # Back to Classify heads: the sidebar still names the folder, the results are still there.
    page.get_by_test_id("stSidebar").get_by_role("link", name="Classify heads").click()
    expect(page.get_by_role("heading", name="Classify heads")).to_be_visible()
    expect(page.get_by_role("radio", name="Local folder")).to_be_checked()
    field = page.get_by_role("textbox", name="Local checkpoint folder")
    expect(field).to_have_value(str(planted_checkpoint.path))
    expect(page.get_by_role("button", name="Open in chart")).to_be_visible()


def test_a_small_models_heatmap_is_a_readable_block(
    server_url: str, page: Page, planted_checkpoint: Planted
) -> None:
    """3 layers x 4 heads: square cells of 48 px, not a 940 x 54 px strip."""
    prepare_local_folder(page, server_url, planted_checkpoint.path)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text("Heatmap of")).to_be_visible(timeout=180_000)
    wait_until_idle(page)
    heatmap = page.locator(".vega-embed").last
    chart = heatmap.bounding_box()
    cell = heatmap.locator("g.mark-rect path").first.bounding_box()
    assert chart is not None and cell is not None
    assert (round(cell["width"]), round(cell["height"])) == (MAX_CELL, MAX_CELL)
    assert chart["width"] < 600  # cells, axes and legend: far from the page's width
