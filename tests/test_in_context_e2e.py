"""End to end in Chromium: the Static vs dynamic view of the Classify heads page draws one
scatter per relation with r in its title, and lists the heads that disagree."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Planted
from tests.test_e2e_browser import prepare_local_folder

pytestmark = pytest.mark.e2e


def test_static_vs_dynamic_view_draws_the_scatter(
    server_url: str, page: Page, planted_checkpoint: Planted
) -> None:
    prepare_local_folder(page, server_url, planted_checkpoint.path)
    page.get_by_role("button", name="Run", exact=True).click()
    compute = page.get_by_role("button", name="Compute dynamic scores")
    expect(compute).to_be_visible(timeout=300_000)
    compute.click()
    expect(page.get_by_text("Disagreement margin (percentage points)")).to_be_visible(
        timeout=600_000
    )
    # The summary's layer chart, the heatmap, then the scatter (drawn on a canvas: its titles
    # are checked in AppTest).
    expect(page.locator(".vega-embed")).to_have_count(3)
    expect(page.locator(".vega-embed").last).to_be_visible()
    flagged = "(head, relation) pairs where |dynamic_score - static|"
    expect(page.get_by_text(flagged, exact=False)).to_be_visible()
