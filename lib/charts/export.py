"""Exports of the layer chart without a browser: Vega-Lite JSON, SVG and PNG through
vl-convert, and the counts table as CSV. Each returns the file's bytes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import altair as alt
import vl_convert as vlc

from lib.core.errors import InputError
from lib.tables import binning
from lib.tables.head_table import source_stem, to_csv_bytes

# The Vega-Lite version Altair writes its specs for, e.g. "6.4" for schema v6.4.1.
VEGA_LITE_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
PNG_SCALE = 2
"""PNG pixels per chart pixel, for print-quality figures."""

# The chart's data is inline: forbid vl-convert from fetching anything.
_NO_FETCH: list[str] = []

Chart = alt.TopLevelMixin | dict[str, Any]
"""An Altair chart, or its Vega-Lite spec already made (`chart.to_dict()`, e.g. cached)."""


def spec_of(chart: Chart) -> dict[str, Any]:
    """The Vega-Lite spec of `chart` (made by Altair, which validates it, unless given)."""
    return chart if isinstance(chart, dict) else chart.to_dict()


def to_json(chart: Chart) -> bytes:
    """The chart's Vega-Lite spec, data inline, as indented JSON."""
    return json.dumps(spec_of(chart), indent=2).encode("utf-8")


def to_svg(chart: Chart) -> bytes:
    """The chart as an SVG document."""
    svg = vlc.vegalite_to_svg(
        spec_of(chart), vl_version=VEGA_LITE_VERSION, allowed_base_urls=_NO_FETCH
    )
    return svg.encode("utf-8")


def to_png(chart: Chart) -> bytes:
    """The chart as a PNG image at `PNG_SCALE` times its size."""
    return vlc.vegalite_to_png(
        spec_of(chart),
        vl_version=VEGA_LITE_VERSION,
        scale=PNG_SCALE,
        allowed_base_urls=_NO_FETCH,
    )


FORMATS: dict[str, tuple[str, str]] = {
    ".csv": ("text/csv", "Counts table (CSV)"),
    ".json": ("application/json", "Vega-Lite spec (JSON)"),
    ".svg": ("image/svg+xml", "Vector image (SVG)"),
    ".png": ("image/png", "Image (PNG)"),
}
"""File suffix -> (MIME type, a button's caption: what the file holds, then its format once)."""


def safe_stem(text: str) -> str:
    """`text` as a file-name stem: runs of anything but letters, digits, `.`, `_`, `-` become
    `-` (e.g. `EleutherAI/pythia-70m @ main` -> `EleutherAI-pythia-70m-main`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "heads"


def file_name(source: str, suffix: str) -> str:
    """A download name for the chart of `source`, e.g. `pythia-6.9b-figure-layer-chart.png`."""
    return f"{safe_stem(source_stem(source))}-layer-chart{suffix}"


def render(suffix: str, chart: Chart, counts: binning.Counts) -> bytes:
    """The bytes of the export that `suffix` (one of `FORMATS`) names."""
    writers: dict[str, Callable[[], bytes]] = {
        ".csv": lambda: to_csv_bytes(counts.table),
        ".json": lambda: to_json(chart),
        ".svg": lambda: to_svg(chart),
        ".png": lambda: to_png(chart),
    }
    if suffix not in writers:
        raise InputError(f"output suffix {suffix!r} is not one of {', '.join(FORMATS)}")
    return writers[suffix]()
