"""Several users at once against one `streamlit run` server, in real Chromium: five on the
Layer chart and two scoring the same checkpoint. No errors, the same answers for everyone,
and the scores computed once (the second session waits for the first and is served its result).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import download
from tests.chart_helpers import FIGURE_COUNTS
from tests.conftest import Planted
from tests.test_e2e_browser import prepare_local_folder

pytestmark = pytest.mark.e2e
CHART_SESSIONS, CLASSIFY_SESSIONS = 5, 2


@pytest.fixture
def sessions(browser: Browser) -> Iterator[list[Page]]:
    """Independent browser contexts: each is its own Streamlit session."""
    contexts = [
        browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
        for _ in range(CHART_SESSIONS + CLASSIFY_SESSIONS)
    ]
    for context in contexts:
        context.set_default_timeout(120_000)
    yield [context.new_page() for context in contexts]
    for context in contexts:
        context.close()


def assert_no_exception(page: Page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def test_many_sessions_at_once(
    server_url: str, sessions: list[Page], planted_checkpoint: Planted, tmp_path: Path
) -> None:
    charts, classifiers = sessions[:CHART_SESSIONS], sessions[CHART_SESSIONS:]
    for page in classifiers:
        prepare_local_folder(page, server_url, planted_checkpoint.path)
    for page in charts:  # five more sessions open while the two runs start
        page.goto(f"{server_url}/Layer_chart")
    for page in classifiers:
        page.get_by_role("button", name="Run", exact=True).click()

    expected = [n for bar in FIGURE_COUNTS for n in bar]
    for number, page in enumerate(charts):
        expect(page.locator(".vega-embed").first).to_be_visible()
        saved = download(page, "Counts table (CSV)", tmp_path / f"chart{number}")
        counts = pd.read_csv(io.BytesIO(saved))
        assert counts["n_heads"].tolist() == expected
        assert_no_exception(page)

    tables, origins = [], []
    for number, page in enumerate(classifiers):
        expect(page.get_by_role("button", name="Open in chart")).to_be_visible(timeout=180_000)
        origins.append(page.get_by_text("heads, float32 on cpu").inner_text())
        tables.append(download(page, "Download CSV", tmp_path / f"classify{number}"))
        assert_no_exception(page)
    assert sum("computed now" in text for text in origins) == 1, origins
    assert sum("served from the cache" in text for text in origins) == 1, origins
    assert tables[0] == tables[1]
