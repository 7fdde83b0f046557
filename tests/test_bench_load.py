"""The load bench's protocol client against a real `streamlit run` server: sessions whose
page script runs to the end are timed, and a session that goes wrong is an error, not a time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import streamlit.elements.exception as exception_utils
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench.load import main
from bench.protocol import error_in, run_page
from lib.core.errors import InputError
from tests.browser_support import streamlit_server


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("load-server")
    with streamlit_server({"HEAD_ATLAS_CACHE_DIR": str(folder / "cache")}, folder / "log") as url:
        yield url


def test_two_protocol_sessions_each_finish_their_page_and_are_timed(tmp_path):
    argv = ["--sessions", "2", "--classify", "0", "--home", "1", "--repeats", "1"]
    assert main([*argv, "--timeout", "60", "--out", str(tmp_path)]) == 0
    (json_path,) = tmp_path.glob("load-protocol-cpu-*.json")
    report = json.loads(json_path.read_text())
    (repeat,) = report["repeats"]
    sessions = repeat["sessions"]
    assert sorted(s["page"] for s in sessions) == ["chart", "home"]
    for session in sessions:
        # A finished run without an exception element; the page drew something.
        assert session["error"] is None and session["seconds"] > 0 and session["elements"] > 0
    assert repeat["server_cpu_s"] > 0 and repeat["server_rss_bytes"] > 0
    assert set(report["alone"]) == {"chart", "home"}
    table = (tmp_path / "latest-load-protocol-cpu.md").read_text()
    assert "| 1 | " in table and "| 2/2 |" in table and "| none |" in table


def test_an_address_that_names_no_page_is_an_error_not_a_time(app_url):
    session = asyncio.run(run_page(app_url, "missing", "No_such_page", 60))
    assert session.error == "page not found" and session.seconds is None


def test_a_server_that_does_not_answer_is_an_error():
    session = asyncio.run(run_page("http://127.0.0.1:9", "home", "", 10))  # discard port
    assert session.seconds is None and "ConnectionRefused" in session.error


def test_an_exception_drawn_on_the_page_is_an_error():
    message = ForwardMsg()
    exception_utils.marshall(message.delta.new_element.exception, ValueError("bad table"))
    assert error_in(message) == "exception: ValueError: bad table"
    message = ForwardMsg()
    message.delta.new_element.markdown.body = "exception: not one"
    assert error_in(message) is None


def test_bad_session_counts_are_one_line_errors():
    with pytest.raises(InputError, match="at most --sessions"):
        main(["--sessions", "2", "--classify", "2", "--home", "1"])
    with pytest.raises(InputError, match=r"\[1, 50\]"):
        main(["--sessions", "0", "--classify", "0", "--home", "0"])
