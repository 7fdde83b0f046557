"""The room a chart has on a page, so that every chart fits without scrolling sideways.

Pages use Streamlit's wide layout. At 1280 px, a laptop screen's width, the sidebar (300 px,
open by default) and the main column's padding (80 px each side) leave `CONTENT_WIDTH` for a
chart (measured in Chromium: `tests/test_e2e_layout.py`). Charts of several panels choose
their panels per row from it.
"""

from __future__ import annotations

import altair as alt

CONTENT_WIDTH = 820
"""Pixels of the main column's content at a 1280 px wide page with the sidebar open."""
AXIS_ROOM = 90
"""Pixels a panel takes beyond its plot: the y axis, its title, and the gap to the next."""


def panels_per_row(panel_width: int, n_panels: int, room: int = AXIS_ROOM) -> int:
    """How many panels of `panel_width` (plus `room` each) fit in `CONTENT_WIDTH`: at least
    one, at most `n_panels`."""
    return max(1, min(n_panels, CONTENT_WIDTH // (panel_width + room)))


NATURAL_SIZE = alt.AutoSizeParams(type="pad", contains="padding")
"""A chart's `autosize`: its plot at the width and height it states, axes and legend around it,
as in its exports. Without it Streamlit gives a single or layered chart `fit`, which squeezes
plot, axes and legend together into the stated size (a 480 px plot drawn about 370 px wide)."""
