"""Every page in its main states in Chromium at 1280 px wide, the width of a laptop screen: no
page scrolls sideways, no chart runs past the content column, and nothing is drawn above a
page's title. One server for the module; the Classify heads results feed Compare runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import PAGE_LOAD_TIMEOUT_MS, wait_until_idle

pytestmark = pytest.mark.e2e

WIDTH = 1280
LAYOUT = """() => {
  const main = document.querySelector('[data-testid="stMainBlockContainer"]');
  const title = main.querySelector('h1');
  const top = title.getBoundingClientRect().top;
  const padding = parseFloat(getComputedStyle(main).paddingRight);
  const right = main.getBoundingClientRect().right - padding;
  const scroller = document.scrollingElement;
  const elements = [...main.querySelectorAll('[data-testid="stElementContainer"]')];
  const above = elements.filter(
    (e) => e.offsetHeight > 0 && !e.contains(title) && e.getBoundingClientRect().bottom <= top
  );
  const wide = [...main.querySelectorAll('.vega-embed')].filter(
    (e) => e.getBoundingClientRect().right > right + 1 || e.scrollWidth > e.clientWidth + 1
  );
  return {
    elements: elements.length,
    sideways: scroller.scrollWidth - scroller.clientWidth,
    above: above.map((e) => e.innerText.slice(0, 80)),
    wide: wide.map((e) => Math.round(e.getBoundingClientRect().width)),
  };
}"""


@pytest.fixture
def narrow(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    context.set_default_timeout(PAGE_LOAD_TIMEOUT_MS)
    yield context.new_page()
    context.close()


def check_layout(page: Page, title: str, state: str = "") -> None:
    """The page at rest (in `state`): its title shown, then the layout rules of the module
    docstring."""
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)
    wait_until_idle(page)
    page.wait_for_timeout(500)  # charts draw after the script run ends
    found = page.evaluate(LAYOUT)
    assert found.pop("elements") > 1  # the page's elements were found, and looked at
    assert found == {"sideways": 0, "above": [], "wide": []}, f"{title} {state}: {found}"


def classify(page: Page, server_url: str, folder: Path) -> None:
    """Classify heads on a local folder, until its results are on screen."""
    page.goto(f"{server_url}/Classify_heads")
    page.get_by_text("Local folder", exact=True).click()
    field = page.get_by_role("textbox", name="Local checkpoint folder")
    field.fill(str(folder))
    field.press("Enter")
    run = page.get_by_role("button", name="Run", exact=True)
    expect(run).to_be_enabled()
    wait_until_idle(page)  # a click during a rerun can be lost
    run.click()
    expect(page.get_by_text("heads, float32 on cpu")).to_be_visible(timeout=180_000)


def test_no_page_scrolls_sideways_or_shows_text_above_its_title(
    server_url: str, narrow: Page, planted_series: Path, planted_store: Path
) -> None:
    page = narrow
    page.goto(server_url)
    check_layout(page, "Pythia Head Atlas")
    page.goto(f"{server_url}/Layer_chart")
    check_layout(page, "Layer chart")
    page.goto(f"{server_url}/Compare_runs")
    check_layout(page, "Compare runs")  # with nothing to compare

    # Classify heads with its results and the Static vs dynamic grid.
    classify(page, server_url, planted_series / "step0")  # nothing planted yet
    classify(page, server_url, planted_series / "step8")  # every role planted
    page.get_by_role("button", name="Compute dynamic scores").click()
    expect(page.get_by_text("r = Pearson correlation over all heads")).to_be_visible(
        timeout=180_000
    )
    check_layout(page, "Classify heads")

    # Compare runs: the two results side by side, the one with no head charted too.
    page.get_by_test_id("stSidebar").get_by_role("link", name="Compare runs").click()
    expect(page.locator(".vega-embed").first).to_be_visible()
    check_layout(page, "Compare runs")

    # Training dynamics on the planted store, tab by tab.
    page.goto(f"{server_url}/Training_dynamics")
    field = page.get_by_role("textbox", name="Results store")
    field.fill(str(planted_store))
    field.press("Enter")
    expect(page.locator(".vega-embed").first).to_be_visible()
    check_layout(page, "Training dynamics")
    for tab in ("Heads over training", "Layer chart by step", "Emergence table", "One head"):
        page.get_by_role("tab", name=tab).click()
        check_layout(page, "Training dynamics", tab)
