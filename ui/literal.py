"""Text from a user's file shown as typed in Streamlit's Markdown elements.

`st.caption`, `st.error`, `st.info`, `st.warning` and `st.markdown` render Markdown: links, bare
URLs and e-mail addresses (GitHub's autolinks), images (fetched by the visitor's browser), bold,
KaTeX (`$...$`), coloured directives (`:red[...]`), emoji shortcodes, HTML. A label, model name,
file name or cell value is data, so:

* every ASCII punctuation character is written as a numeric character reference (`[` ->
  `&#91;`): the reader sees the character, while the Markdown parser, whose constructs are made
  of the characters themselves, finds none;
* bare URLs, addresses and shortcodes are found after parsing, in the text itself, so an
  invisible WORD JOINER (U+2060) goes after every `:` and `@` and between `www` and `.`, which
  they cannot match across (copying the text copies it too).
"""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"
_PUNCTUATION = re.compile(r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]""")
_AUTOLINKED = re.compile(r"(?<=[:@])|(?<=www)(?=\.)", flags=re.IGNORECASE)


def literal(text: str) -> str:
    """`text` for a Markdown element, so that it shows exactly as typed (on one line: line
    breaks become spaces)."""
    joined = _AUTOLINKED.sub(WORD_JOINER, " ".join(text.splitlines()))
    return _PUNCTUATION.sub(lambda found: f"&#{ord(found[0])};", joined)
