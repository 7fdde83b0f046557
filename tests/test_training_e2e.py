"""End to end: a sweep of the planted series started from the Training dynamics page in real
Chromium, its progress, and the views of the store it wrote."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from lib.fixtures.planted import ROLES
from tests.browser_support import download, wait_until_idle
from tests.series_support import STEPS, first_step

pytestmark = pytest.mark.e2e


def test_a_sweep_started_from_the_page_fills_every_view(
    server_url: str, page: Page, planted_series: Path, tmp_path: Path
) -> None:
    page.goto(f"{server_url}/Training_dynamics")
    expect(page.get_by_role("heading", name="Training dynamics")).to_be_visible(timeout=60_000)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Start a sweep").click()
    sidebar.get_by_role("textbox", name="Model").fill(str(planted_series))
    sidebar.get_by_role("textbox", name="Store folder to write").fill(str(tmp_path / "store"))
    sidebar.get_by_role("button", name="Start").click()
    expect(page.get_by_text("The sweep finished: every job has its table.")).to_be_visible(
        timeout=300_000
    )
    expect(page.get_by_text(f"Sweep: {len(STEPS)} of {len(STEPS)} jobs done")).to_be_visible()
    expect(sidebar.get_by_role("textbox", name="Results store")).to_have_value(
        str(tmp_path / "store")
    )
    expect(page.locator(".vega-embed").first).to_be_visible()

    page.get_by_role("tab", name="Layer chart by step").click()
    expect(page.get_by_text("Steps side by side")).to_be_visible()
    page.get_by_role("tab", name="Emergence table").click()
    wait_until_idle(page)
    table = pd.read_csv(io.BytesIO(download(page, "Emergence table (CSV)", tmp_path)))
    for role, (layer, head) in ROLES.items():
        row = table[(table["layer"] == layer) & (table["head"] == head)].iloc[0]
        assert row["first_step"] == first_step(role)
    page.get_by_role("tab", name="One head").click()
    expect(page.get_by_text("Scores drawn")).to_be_visible()
