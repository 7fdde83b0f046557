"""The Layer chart page in a real browser: the figure is drawn and every download is its file;
an upload, a bad upload and a bin-edge change do what they say.

The downloads are made on click (deferred `st.download_button` data), a path `AppTest` cannot
reach, so this is where they are tested.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.browser_support import download, wait_until_idle
from tests.chart_helpers import (
    FIGURE_COUNTS,
    HOSTILE_LABELS,
    HOSTILE_NAME,
    csv_bytes,
    per_head_frame,
    plain,
    reference_counts,
)

pytestmark = pytest.mark.e2e
# The chart is drawn after the script's run and Vega's; on a loaded machine that takes more
# than Playwright's default 5 s.
expect.set_options(timeout=60_000)


def test_the_page_draws_the_figure_and_each_download_is_its_file(
    server_url: str,
    page: Page,
    tmp_path: Path,
) -> None:
    page.goto(f"{server_url}/Layer_chart")
    expect(page.get_by_role("heading", name="Layer chart")).to_be_visible()
    expect(page.locator(".vega-embed").first).to_be_visible()
    counts = pd.read_csv(io.BytesIO(download(page, "Counts table (CSV)", tmp_path)))
    assert list(counts["n_heads"]) == [n for bar in FIGURE_COUNTS for n in bar]
    assert download(page, "Image (PNG)", tmp_path).startswith(b"\x89PNG")
    svg = download(page, "Vector image (SVG)", tmp_path).decode()
    assert ">31.4%</text>" in svg and ">Pythia 6.9B</text>" in svg
    assert b'"$schema"' in download(page, "Vega-Lite spec (JSON)", tmp_path)
    assert (tmp_path / "pythia-6.9b-figure-layer-chart.png").exists()


def upload(page: Page, name: str, data: bytes) -> None:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": data}
    )


def test_an_upload_a_bad_upload_and_a_bin_edge_change(
    server_url: str, page: Page, tmp_path: Path
) -> None:
    frame = per_head_frame(24, 12, seed=3, model="uploaded")
    page.goto(f"{server_url}/Layer_chart")
    expect(page.locator(".vega-embed").first).to_be_visible()

    upload(page, "heads.csv", csv_bytes(frame))
    expect(page.get_by_text("Showing heads.csv")).to_be_visible()
    counts = pd.read_csv(io.BytesIO(download(page, "Counts table (CSV)", tmp_path / "a")))
    assert counts["n_heads"].sum() == len(frame)
    assert counts["layer_bin"].unique().tolist() == ["[0, 6)", "[6, 12)", "[12, 18)", "[18, 24)"]

    upload(page, "broken.csv", b"layer,head,score\n0,0,0.5\n-3,1,0.2\n")
    expect(page.get_by_text("broken.csv, row 3, column 'layer'")).to_be_visible()
    expect(page.get_by_text("Showing heads.csv")).to_be_visible()  # the good table stays

    page.get_by_text("Edges", exact=True).click()
    edges = page.get_by_role("textbox", name="Layer edges")
    edges.fill("0, 12, 24")
    edges.press("Enter")
    expect(page.get_by_text("[12, 24)").first).to_be_visible()
    counts = pd.read_csv(io.BytesIO(download(page, "Counts table (CSV)", tmp_path / "b")))
    # Counts rows run bin by bin, the four score categories within each bin.
    got = {(i // 4, i % 4): n for i, n in enumerate(counts["n_heads"]) if n}
    score_edges = (0, 0.25, 0.5, 0.75, 1)
    assert got == reference_counts(frame["layer"], frame["score"], (0, 12, 24), score_edges)
    svg = download(page, "Vector image (SVG)", tmp_path / "c").decode()
    assert ">uploaded</text>" in svg and ">[12, 24)</text>" in svg


def test_text_from_a_file_is_shown_literally(server_url: str, page: Page) -> None:
    frame = pd.DataFrame({"layer": range(6), "label": HOSTILE_LABELS})
    page.goto(f"{server_url}/Layer_chart")
    expect(page.locator(".vega-embed").first).to_be_visible()
    upload(page, HOSTILE_NAME, csv_bytes(frame))
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_text("Showing ![img]")).to_be_visible()
    wait_until_idle(page)
    assert plain(main.get_by_text("Showing ![img]").inner_text()) == f"Showing {HOSTILE_NAME}."
    shown = plain(main.get_by_text("Categories, bottom to top:").inner_text())
    for label in HOSTILE_LABELS:
        assert repr(label) in shown
    assert main.locator("a[href*='example.com']").count() == 0  # no live link
    assert main.locator("img[src*='127.0.0.1:9']").count() == 0  # nothing fetched
    assert main.locator("strong, b, .katex").count() == 0  # no bold, no HTML, no maths
    assert main.locator("[data-testid='stMarkdownContainer'] span[style*='color']").count() == 0
    upload(page, HOSTILE_NAME, b"layer,score\n-1,0.5\n")  # an error names the file as typed
    expect(main.get_by_text("row 2, column 'layer'")).to_be_visible()
    error = plain(main.get_by_text("row 2, column 'layer'").inner_text())
    assert error.startswith(f"{HOSTILE_NAME}, row 2, column 'layer'")
    assert main.locator("a[href*='example.com'], img[src*='127.0.0.1:9']").count() == 0


def test_edits_survive_a_visit_to_another_page_and_the_chart_is_landscape(
    server_url: str, page: Page
) -> None:
    page.goto(f"{server_url}/Layer_chart")
    expect(page.locator(".vega-embed").first).to_be_visible()
    box = page.locator(".vega-embed").first.bounding_box()
    assert box is not None and box["width"] > 1.4 * box["height"]  # as the exports
    page.get_by_text("Width", exact=True).click()
    wait_until_idle(page)
    title = page.get_by_role("textbox", name="Title")
    title.fill("Kept title")
    title.press("Enter")
    expect(page.get_by_text("Kept title").first).to_be_visible()
    wait_until_idle(page)
    page.get_by_role("link", name="Home").click()
    expect(page.get_by_role("heading", name="Pythia Head Atlas")).to_be_visible()
    wait_until_idle(page)
    page.get_by_role("link", name="Layer chart").first.click()
    expect(page.locator(".vega-embed").first).to_be_visible()
    wait_until_idle(page)
    expect(page.get_by_role("textbox", name="Title")).to_have_value("Kept title")
    expect(page.get_by_role("radio", name="Width")).to_be_checked()
    expect(page.get_by_text("Kept title").first).to_be_visible()
