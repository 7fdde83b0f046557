"""One app session spoken in Streamlit's own protocol, without a browser.

A browser that opens a page connects a websocket to `/_stcore/stream` (subprotocol
`streamlit`), sends one `BackMsg` `rerun_script` whose `ClientState` names the page by its
address (`page_name`, with an empty `page_script_hash`: a fresh tab knows no hashes yet), and
draws the `ForwardMsg`s the server sends back until a `script_finished`. `run_page` sends that
same first message and reads the replies until the script run has finished, so the server does
exactly the work of a first visit: one session, one full script run of the page. The message
lists no `cached_message_hashes` (a fresh tab has none), so the server sends every element in
full, never a `ref_hash` to one the client is supposed to hold.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

STREAM_PATH = "/_stcore/stream"
MAX_MESSAGE_BYTES = 256 * 2**20  # a chart's data rides in one message; the server allows 200 MB


@dataclass(frozen=True)
class Session:
    """One session of the load bench: its page (a `bench.load.PAGES` key), seconds until its
    page was ready (None when it failed), its first error, and the elements the server sent
    (None for a browser session, which does not count them)."""

    page: str
    seconds: float | None
    error: str | None
    elements: int | None = None


def rerun_message(page: str, url: str) -> bytes:
    """The first `BackMsg` of a fresh browser tab at `url`, whose page address is `page` (the
    home page's is "")."""
    message = BackMsg()
    state = message.rerun_script
    state.page_name = page
    state.widget_states.SetInParent()  # a fresh tab has touched no widget
    state.context_info.timezone = "UTC"
    state.context_info.locale = "en-US"
    state.context_info.url = url
    state.context_info.is_embedded = False
    state.context_info.color_scheme = "light"
    return message.SerializeToString()


def error_in(message: ForwardMsg) -> str | None:
    """What makes this message the sign of a failed run: an exception drawn on the page, or
    the address naming no page (the server then runs the home page). A script that does not
    compile ends with its own `script_finished` status."""
    kind = message.WhichOneof("type")
    if kind == "page_not_found":
        return "page not found"
    if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
        element = message.delta.new_element
        if element.WhichOneof("type") == "exception":
            return f"exception: {element.exception.type}: {element.exception.message}"
    return None


async def read_script_run(socket: ClientConnection) -> tuple[int, list[str]]:
    """Read the server's messages until the script run has finished: the elements drawn and
    the errors seen."""
    elements, errors = 0, list[str]()
    async for data in socket:
        message = ForwardMsg.FromString(data)
        kind = message.WhichOneof("type")
        elements += kind == "delta" and message.delta.WhichOneof("type") == "new_element"
        if error := error_in(message):
            errors.append(error)
        if kind == "script_finished":
            if message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                return elements, errors
            if message.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                return elements, [*errors, "the script did not compile"]
            # FINISHED_EARLY_FOR_RERUN: the page asked for a rerun; read on.
    return elements, [*errors, "the server closed the session before the script finished"]


async def run_page(base_url: str, page: str, address: str, timeout_s: float) -> Session:
    """Open one session on `address` (a page's `st.navigation` address, "" for home) and read
    the server's messages until the page's script run has finished, within `timeout_s`; the
    seconds run from opening the connection."""
    stream = base_url.replace("http://", "ws://", 1) + STREAM_PATH
    elements, errors = 0, list[str]()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            async with connect(
                stream, subprotocols=["streamlit"], max_size=MAX_MESSAGE_BYTES, compression=None
            ) as socket:
                await socket.send(rerun_message(address, f"{base_url}/{address}"))
                elements, errors = await read_script_run(socket)
    except TimeoutError:
        errors = [f"no finished script run in {timeout_s:g} s"]
    except (OSError, WebSocketException) as error:  # refused, reset, closed: the bench goes on
        errors = [f"{type(error).__name__}: {error}"]
    seconds = time.perf_counter() - started
    error = errors[0] if errors else None
    return Session(page, None if error else seconds, error, elements)
