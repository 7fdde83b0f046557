"""The Layer chart page in a real browser: the figure is drawn and every download is its file.

The downloads are made on click (deferred `st.download_button` data), a path `AppTest` cannot
reach, so this is where they are tested.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.browser_support import download
from tests.chart_helpers import FIGURE_COUNTS

pytestmark = pytest.mark.e2e


def test_the_page_draws_the_figure_and_each_download_is_its_file(
    server_url: str,
    page: Page,
    tmp_path: Path,
) -> None:
    page.goto(f"{server_url}/Layer_chart")
    expect(page.get_by_role("heading", name="Layer chart")).to_be_visible()
    expect(page.locator(".vega-embed").first).to_be_visible()
    counts = pd.read_csv(io.BytesIO(download(page, "CSV (counts table)", tmp_path)))
    assert list(counts["n_heads"]) == [n for bar in FIGURE_COUNTS for n in bar]
    assert download(page, "PNG (PNG image)", tmp_path).startswith(b"\x89PNG")
    svg = download(page, "SVG (SVG image)", tmp_path).decode()
    assert ">31.4%</text>" in svg and ">Pythia 6.9B</text>" in svg
    assert b'"$schema"' in download(page, "JSON (Vega-Lite spec)", tmp_path)
    assert (tmp_path / "pythia-6.9b-figure-layer-chart.png").exists()
