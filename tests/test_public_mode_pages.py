"""Public mode as the pages apply it (settings from the environment; `lib.app.public_mode`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.app.public_mode import (
    ENABLED_KEY,
    MAX_ROWS_KEY,
    MAX_SIZE_KEY,
    MAX_TEMPLATES_KEY,
    MAX_TOTAL_RELATION_PAIRS_KEY,
)
from tests.chart_helpers import plain

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def public(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENABLED_KEY, "yes")
    monkeypatch.setenv(MAX_SIZE_KEY, "160m")
    monkeypatch.setenv(MAX_ROWS_KEY, "2")
    monkeypatch.setenv("HEAD_ATLAS_CACHE_DIR", str(tmp_path))


def open_page(page: str) -> AppTest:
    app = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60).run()
    app.switch_page(page).run()
    assert not app.exception
    return app


def test_classify_offers_small_catalog_models_and_no_folder(public: None) -> None:
    app = open_page("pages/2_Classify_heads.py")
    (source,) = app.sidebar.radio
    assert source.options == ["Pythia catalog"]
    (size,) = [box for box in app.sidebar.selectbox if box.label == "Model size"]
    assert size.options == ["14m", "31m", "70m", "160m"]
    assert "Public deployment: Pythia models up to 160m" in app.caption[0].value
    assert not [c for c in app.sidebar.caption if "cached in" in c.value]  # no host paths


def test_chart_uploads_are_capped_at_the_public_row_limit(public: None) -> None:
    app = open_page("pages/1_Layer_chart.py")
    app.file_uploader[0].upload("big.csv", b"layer,score\n0,0.1\n1,0.2\n2,0.3\n", "text/csv").run()
    assert [plain(error.value) for error in app.error] == ["big.csv has more than 2 data rows"]


def test_public_mode_hides_error_details_and_gives_a_reference(
    public: None, caplog: pytest.LogCaptureFixture
) -> None:
    from streamlit import config

    open_page("pages/1_Layer_chart.py")
    assert config.get_option("client.showErrorDetails") == "none"

    def page_that_fails() -> None:
        from ui.deployment import public_mode, reported_errors

        with reported_errors(public_mode()):
            raise RuntimeError("/srv/secret/path leaked")

    app = AppTest.from_function(page_that_fails).run()
    assert not app.exception
    (error,) = app.error
    assert error.value.startswith("Something went wrong on our side (reference ")
    assert "/srv" not in error.value and "RuntimeError" not in error.value
    reference = error.value.split("reference ")[1][:8]
    assert any(reference in record.getMessage() for record in caplog.records)
    config.set_option("client.showErrorDetails", "full")  # the process-wide default again


@pytest.mark.parametrize(
    "page",
    [
        "pages/home.py",
        "pages/1_Layer_chart.py",
        "pages/2_Classify_heads.py",
        "pages/3_Compare_runs.py",
        "pages/4_Training_dynamics.py",
    ],
)
def test_every_page_is_framed_by_public_mode(public: None, page: str) -> None:
    """The frame applies public mode whatever the page, the home page included."""
    from streamlit import config

    config.set_option("client.showErrorDetails", "full")
    open_page(page)
    assert config.get_option("client.showErrorDetails") == "none"
    config.set_option("client.showErrorDetails", "full")


def test_an_unexpected_error_on_compare_runs_shows_no_server_path(
    public: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compare runs never applied public mode itself: the frame's guard catches its errors."""
    from streamlit import config

    def broken(directory: Path) -> list:
        raise RuntimeError(f"/srv/secret/cache {directory} unreadable")

    monkeypatch.setattr("lib.runs.result_cache.stored_results", broken)
    app = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60).run()
    app.switch_page("pages/3_Compare_runs.py").run()
    assert not app.exception
    (error,) = app.error
    assert error.value.startswith("Something went wrong on our side (reference ")
    assert "/srv" not in error.value
    config.set_option("client.showErrorDetails", "full")


@pytest.fixture
def error_details_restored() -> Iterator[None]:
    """Public mode hides error details server-wide; the other tests expect the default."""
    from streamlit import config

    yield
    config.set_option("client.showErrorDetails", "full")


def test_templates_beyond_the_public_caps_are_refused_and_the_last_good_kept(
    public: None, error_details_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_TEMPLATES_KEY, "2")

    def page() -> None:
        import streamlit as st

        from ui.in_context import templates_control

        st.session_state["templates"] = templates_control()

    app = AppTest.from_function(page, default_timeout=60).run()
    (area,) = app.text_area
    area.set_value("No <X> means no\nThe story of <X> contains").run()
    assert not app.error and app.session_state["templates"] == (
        "No <X> means no",
        "The story of <X> contains",
    )
    area.set_value("a <X>\nb <X>\nc <X>").run()
    assert [plain(e.value) for e in app.error] == [
        "3 templates given; this public deployment takes at most 2"
    ]
    area.set_value("The story of <X> " + "x" * 8175).run()
    (error,) = app.error
    assert plain(error.value).endswith(
        "is 8,192 bytes long; this public deployment takes templates of at most 200 bytes (UTF-8)"
    )
    assert app.session_state["templates"] == ("No <X> means no", "The story of <X> contains")


def test_relation_files_beyond_the_public_total_are_refused_and_the_others_kept(
    public: None, error_details_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_TOTAL_RELATION_PAIRS_KEY, "60")

    def page() -> None:
        import streamlit as st

        from ui.deployment import public_mode
        from ui.relation_files import relation_file_controls

        relations = relation_file_controls("", "main", public_mode())
        st.session_state["names"] = [relation.name for relation in relations]

    def pairs(n: int, word: str) -> bytes:
        return ("src,dst\n" + "".join(f"{word}{i},{word}x{i}\n" for i in range(n))).encode()

    app = AppTest.from_function(page, default_timeout=60).run()
    (uploader,) = app.file_uploader
    files = [("first.csv", pairs(40, "a")), ("second.csv", pairs(40, "b"))]
    uploader.set_value([(name, data, "text/csv") for name, data in files]).run()
    assert not app.exception
    (error,) = app.error
    shown = plain(error.value)
    assert "second brings your files to 80 pairs; this public deployment takes at most 60" in shown
    assert app.session_state["names"] == ["first"]
