"""Your own relations on the Classify page: an uploader of relation files, a k per file, and a
preview of the pairs each keeps and drops before Run (`lib.scoring.relation_files`, docs/methods.md
§3).

A file's words, its name and any message quoting them are the user's text: pairs are shown in
a dataframe and messages with Markdown escaped, never rendered.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from transformers import PreTrainedTokenizerBase

from lib.app.public_mode import PublicMode
from lib.core.errors import InputError
from lib.scoring.relation_files import (
    DEFAULT_K,
    MAX_K,
    CustomRelation,
    check_relation_files,
    file_record,
    pair_report,
    read_relation_file,
    read_tokenizer,
    relation_file_summary,
)
from lib.scoring.relations import MIN_PAIRS
from ui.literal import literal

UPLOAD = "classify_relation_files"
KEPT_RELATIONS = "classify_kept_relation_files"
"""The relations of the last good upload, kept for when a visit to another page has emptied the
uploader (Streamlit forgets a file uploader's files when its page is left)."""


@st.cache_resource(show_spinner="Reading the model's tokenizer…")
def tokenizer_or_problem(source: str, revision: str) -> PreTrainedTokenizerBase | str:
    """The checkpoint's tokenizer, or why it cannot be read (kept too: no retry per rerun)."""
    try:
        return read_tokenizer(source, revision)
    except InputError as error:
        return str(error)


@st.cache_data(show_spinner=False)
def preview(
    source: str, revision: str, relation: CustomRelation, _tokenizer: PreTrainedTokenizerBase | None
) -> pd.DataFrame:
    """`pair_report` of `relation` with the tokenizer of (`source`, `revision`), if read."""
    return pair_report(_tokenizer, relation)


def relation_file_controls(
    source: str, revision: str, mode: PublicMode
) -> tuple[CustomRelation, ...]:
    """The uploader; each good file's k control and preview; a bad file's one-line message
    (that file is left out, the others stay). Returns the relations to score, in name order;
    after a visit to another page, those of the last upload (`kept_relations`)."""
    remounted = UPLOAD not in st.session_state  # left and come back, or never used
    uploads = st.file_uploader(
        "Your own relations",
        type=["csv", "json"],
        accept_multiple_files=True,
        key=UPLOAD,
        help="A CSV with a src,dst header (one pair a row; other columns ignored), or a JSON "
        "list of [src, dst] pairs like the bundled ones. The file name names the relation; "
        f"pairs whose words are not single tokens (with a leading space) and repeated pairs "
        f"are dropped, and at least {MIN_PAIRS} must remain."
        + (
            f" This deployment takes at most {mode.max_relation_pairs} pairs a file and "
            f"{mode.max_total_relation_pairs} in all."
            if mode.enabled
            else ""
        ),
    )
    if not uploads:
        if remounted:
            return kept_relations()
        st.session_state.pop(KEPT_RELATIONS, None)  # the user removed the files
        return ()
    found = tokenizer_or_problem(source, revision) if source else "no checkpoint chosen yet"
    tokenizer, problem = (None, found) if isinstance(found, str) else (found, "")
    relations: list[CustomRelation] = []
    for upload in uploads:
        try:
            upload.seek(0)
            relation = read_relation_file(upload.name, upload)
            mode.check_relation_file(relation)
            mode.check_relation_total([*relations, relation])
            check_relation_files([*relations, relation])
        except InputError as error:
            st.error(literal(str(error)))
            continue
        k = st.number_input(
            f"k of `{relation.name}`",
            min_value=1,
            max_value=MAX_K,
            value=DEFAULT_K,
            key=f"classify_relation_k_{relation.name}",
            help="A pair counts for the score when its target is among the k highest tokens of "
            "the head's map of its source (suppression score: the k lowest; "
            "lib.scoring.operations).",
        )
        relation = relation.with_k(int(k))
        report = preview(source, revision, relation, tokenizer)
        st.caption(relation_file_summary(file_record(relation, report)))
        if problem:
            st.caption("Multi-token pairs are found at Run: " + literal(problem))
        st.dataframe(report, hide_index=True, height=180)
        relations.append(relation)
    st.session_state[KEPT_RELATIONS] = check_relation_files(relations)
    return st.session_state[KEPT_RELATIONS]


def kept_relations() -> tuple[CustomRelation, ...]:
    """The last upload's relations (with their k), said on the page, and a button to forget
    them: a Run after a visit to another page scores what the user uploaded, never silently
    fewer relations."""
    relations: tuple[CustomRelation, ...] = st.session_state.get(KEPT_RELATIONS, ())
    if not relations:
        return ()
    names = ", ".join(f"{relation.name} (k = {relation.k})" for relation in relations)
    st.caption("Scored with your last upload: " + literal(names) + ".")
    if st.button("Forget these relation files", key="classify_forget_relation_files"):
        del st.session_state[KEPT_RELATIONS]
        return ()
    return relations
