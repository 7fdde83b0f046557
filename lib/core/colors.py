"""Colours of the layer chart: the defaults, and reading a colour a user typed.

Colours are stored as lower-case `#rrggbb` hex codes, the form colour pickers use.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from PIL import ImageColor

from lib.core.errors import InputError

# The published figure's four categories, bottom to top: dark green, lime green, red, dark red.
FIGURE_COLORS: tuple[str, ...] = ("#006400", "#32cd32", "#ff0000", "#8b0000")

# Categories with no natural order (one per value of a text column) cycle through Vega's
# "tableau10" scheme, Altair's default for nominal colours.
CATEGORY_PALETTE: tuple[str, ...] = (
    "#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b",
    "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac",
)  # fmt: skip

NEUTRAL_COLOR = "#b4b4b4"
"""Grey, for a category that means nothing was found (`unclassified`): no hue, so that it never
reads as a finding beside the categories that are."""

_HEX = re.compile(r"#[0-9a-f]{6}")


def to_hex(color: str) -> str:
    """`color` as `#rrggbb`: a hex code (`#8b0000`, `#800`) or a CSS name (`dark red`, `darkred`).

    Spaces, underscores and hyphens inside a name are ignored, so the figure CSV's `dark green`
    reads as CSS `darkgreen`.
    """
    compact = re.sub(r"[\s_-]", "", color).lower()
    try:
        red, green, blue = ImageColor.getrgb(compact)[:3]
    except ValueError:
        raise InputError(
            f"{color!r} is not a colour: use a hex code such as '#8b0000' "
            "or a CSS name such as 'dark red'"
        ) from None
    return f"#{red:02x}{green:02x}{blue:02x}"


def parse_colors(text: str) -> tuple[str, ...]:
    """Comma-separated colours, e.g. `darkgreen, #32cd32`, as `#rrggbb` codes."""
    return tuple(to_hex(part) for part in text.split(","))


def is_hex(color: str) -> bool:
    """Whether `color` is already in the stored form, lower-case `#rrggbb`."""
    return _HEX.fullmatch(color) is not None


def score_palette(n: int) -> tuple[str, ...]:
    """`n` default colours for score categories, lowest scores first: category i is always
    `FIGURE_COLORS` then `CATEGORY_PALETTE`'s i-th colour, whatever the number of categories,
    so that changing the score edges never recolours the categories that stay."""
    ordered = (*FIGURE_COLORS, *CATEGORY_PALETTE)
    return tuple(ordered[i % len(ordered)] for i in range(n))


def palette(n: int) -> tuple[str, ...]:
    """`n` default colours for unordered categories: `CATEGORY_PALETTE`, repeated when n > 10."""
    return tuple(CATEGORY_PALETTE[i % len(CATEGORY_PALETTE)] for i in range(n))


def value_palette(values: Sequence[str], neutral: Collection[str]) -> tuple[str, ...]:
    """Default colours of unordered categories `values`: `NEUTRAL_COLOR` for those in
    `neutral`, `palette`'s colours in turn for the others."""
    hues = iter(palette(len(values)))
    return tuple(NEUTRAL_COLOR if value in neutral else next(hues) for value in values)


def label_colors(fills: Sequence[str]) -> list[str]:
    """Black or white per `#rrggbb` fill, whichever contrasts more (WCAG 2 contrast ratio).

    Contrast ratio = (L_light + 0.05) / (L_dark + 0.05) with L the relative luminance, so black
    wins when (L + 0.05) / 0.05 > 1.05 / (L + 0.05), i.e. when L > sqrt(0.0525) - 0.05 ≈ 0.179.
    """
    return [
        "black" if _relative_luminance(fill) > 0.0525**0.5 - 0.05 else "white" for fill in fills
    ]


def _relative_luminance(fill: str) -> float:
    """WCAG 2 relative luminance of an `#rrggbb` colour: 0 for black, 1 for white."""

    def linear(channel: str) -> float:
        value = int(channel, 16) / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(fill[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue
