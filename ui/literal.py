"""Text from a user's file shown as typed in Streamlit's Markdown elements.

`st.caption`, `st.error`, `st.info`, `st.warning` and `st.markdown` render Markdown: links,
images (fetched by the visitor's browser), bold, KaTeX (`$...$`), coloured directives
(`:red[...]`), emoji shortcodes. A label, model name, file name or cell value is data, so every
ASCII punctuation character in it is backslash-escaped (CommonMark lets any of them be), which
leaves nothing for Markdown to act on.
"""

from __future__ import annotations

import re

_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def literal(text: str) -> str:
    """`text` escaped for a Markdown element, so that it shows exactly as typed (on one line:
    line breaks become spaces)."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(text.splitlines()))
