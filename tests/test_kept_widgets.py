"""Kept widgets (`ui.state.kept`) draw their kept value as their own default too.

A value set only through session state reaches the browser once, flagged as set; a browser that
draws the widget afresh from a later run's message starts it from the widget's own default.
Before `ui.state.starting_at`, the threshold inputs' own default was their implicit minimum, and
a fresh session in Chromium showed (and then used) every threshold as 0 % in about a third of
first visits: every head got a label (tests/test_e2e_browser.py checks the browser side).
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.test_chart_page import open_page as open_chart
from tests.test_classify_page import open_page as open_classify


def number_inputs(app: AppTest) -> list[tuple[str, float, float]]:
    """(label, value, the widget's own default) of every number input."""
    return [(n.label, n.value, n.proto.default) for n in app.number_input]


def test_the_thresholds_own_defaults_are_their_values() -> None:
    app = open_classify()
    shown = {label: (value, default) for label, value, default in number_inputs(app)}
    assert shown["operation (%)"] == (15.0, 15.0)
    assert shown["first_token (%)"] == (90.0, 90.0)


def test_an_edited_threshold_is_its_own_default_after_a_visit_to_another_page() -> None:
    app = open_classify()
    (operation,) = [n for n in app.number_input if n.label == "operation (%)"]
    operation.set_value(25.0).run()
    app.switch_page("pages/3_Compare_runs.py").run()
    (operation,) = [n for n in app.number_input if n.label == "operation (%)"]
    assert (operation.value, operation.proto.default) == (25.0, 25.0)


def test_the_layer_charts_kept_inputs_draw_their_values_as_defaults() -> None:
    app = open_chart()
    assert app.radio and app.text_input
    for choice in app.radio:
        assert choice.proto.default == choice.index
    for text in app.text_input:
        assert text.proto.default == text.value
