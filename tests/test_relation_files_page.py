"""Your own relations on the Classify page (AppTest): an uploaded file is previewed before Run,
finds the planted head, and shows up in the table, heatmap, inspector, labels and chart; a bad
file is one message, shown literally, and the other files stay."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from tests import test_classify_page
from tests.conftest import MAPPING_NAME, PlantedMapping
from tests.test_classify_page import button, choose_folder, head_labels, open_page, table_with
from tests.test_in_context_page import head_scores
from tests.test_in_context_page import in_context_calls as in_context_calls  # a fixture
from ui.literal import literal

engine_calls = test_classify_page.engine_calls  # the page tests' fixture: a fresh cache folder

MULTI_TOKEN = "counterclockwise"


def upload(app: AppTest, *files: tuple[str, bytes]) -> AppTest:
    (uploader,) = [u for u in app.sidebar.file_uploader if u.label == "Your own relations"]
    uploader.set_value([(name, data, "text/csv") for name, data in files]).run()
    assert not app.exception
    return app


def test_an_uploaded_relation_is_previewed_then_finds_the_planted_head(
    mapping_checkpoint: PlantedMapping, engine_calls: list[str]
) -> None:
    (src, dst), *_ = mapping_checkpoint.pairs
    rows = (*mapping_checkpoint.pairs, (src, dst), (src, MULTI_TOKEN))
    app = choose_folder(open_page(), str(mapping_checkpoint.path))
    app = upload(app, (f"{MAPPING_NAME}.csv", mapping_checkpoint.csv(rows)))
    (preview,) = app.sidebar.dataframe
    assert preview.value["status"].tolist()[-2:] == ["duplicate", "multi-token target"]
    assert any(
        c.value.endswith("kept 40 of 42 pairs; dropped 1 duplicate, 1 multi-token target")
        for c in app.sidebar.caption
    )
    assert not engine_calls  # a preview scores nothing

    button(app, "Run").click().run()
    assert not app.exception and not app.error
    assert head_labels(app)[mapping_checkpoint.head] == MAPPING_NAME
    table = table_with(app, "layer", "head", "label", "score")
    assert f"score_{MAPPING_NAME}" in table.columns  # in percent on the page
    row = table[(table["layer"] == 0) & (table["head"] == 2)].iloc[0]
    assert row[f"score_{MAPPING_NAME}"] == 100.0
    (heatmap,) = [box for box in app.selectbox if box.label == "Heatmap of"]
    assert f"suppression_{MAPPING_NAME}" in heatmap.options
    (head,) = [box for box in app.selectbox if box.label == "Head"]
    head.set_value(mapping_checkpoint.head).run()
    assert any(t.value.startswith(f"{MAPPING_NAME} (score ") for t in app.text)
    findings = table_with(app, "finding", "score", "threshold").set_index("finding")
    assert findings.loc[MAPPING_NAME, "passes"]
    assert not findings.loc[f"suppression: {MAPPING_NAME}", "passes"]

    button(app, "Open in chart").click().run()
    assert not app.exception and app.title[0].value == "Layer chart"
    counts = app.dataframe[0].value
    assert counts["n_heads"].sum() == 1  # the one classified head: the planted one


def test_the_reversed_pairs_do_not_label_the_planted_head(
    mapping_checkpoint: PlantedMapping, engine_calls: list[str]
) -> None:
    app = choose_folder(open_page(), str(mapping_checkpoint.path))
    app = upload(app, ("reversed.csv", mapping_checkpoint.csv(mapping_checkpoint.reversed())))
    button(app, "Run").click().run()
    assert not app.exception
    assert "reversed" not in head_labels(app).values()


def test_a_bad_file_is_its_own_literal_message_and_the_good_file_stays(
    mapping_checkpoint: PlantedMapping, engine_calls: list[str]
) -> None:
    app = choose_folder(open_page(), str(mapping_checkpoint.path))
    bad_name = "[click](https://example.com) **now**.csv"
    app = upload(
        app,
        (bad_name, b"word,other\na,b\n"),
        ("mine.csv", mapping_checkpoint.csv()),
        ("mine.json", json.dumps(mapping_checkpoint.pairs).encode()),
    )
    messages = [e.value for e in app.sidebar.error]
    assert messages == [
        literal(
            f"relation file {bad_name!r}: the first row must name the columns src and dst "
            "(found 'word, other')"
        ),
        literal("two relation files are both named mine; rename one of them"),
    ]
    (k,) = [n for n in app.sidebar.number_input if n.label == "k of `mine`"]
    k.set_value(3).run()
    button(app, "Run").click().run()
    assert not app.exception
    assert head_labels(app)[mapping_checkpoint.head] == "mine"


def test_an_uploaded_relation_is_checked_in_context_and_keyed_by_the_file(
    mapping_checkpoint: PlantedMapping, engine_calls: list[str], in_context_calls: list[tuple]
) -> None:
    app = choose_folder(open_page(), str(mapping_checkpoint.path))
    app = upload(app, (f"{MAPPING_NAME}.csv", mapping_checkpoint.csv()))
    button(app, "Run").click().run()
    (head,) = [box for box in app.selectbox if box.label == "Head"]
    head.set_value(mapping_checkpoint.head).run()
    button(app, "Check in context").click().run()
    assert not app.exception and not app.error
    scores = head_scores(app)
    assert scores.loc[MAPPING_NAME, "static_score"] == 100.0
    assert scores.loc[MAPPING_NAME, "dynamic_score"] > 90
    # Another k is another relation: the cached check no longer applies.
    (k,) = [n for n in app.sidebar.number_input if n.label == f"k of `{MAPPING_NAME}`"]
    k.set_value(1).run()
    button(app, "Run").click().run()
    assert [b for b in app.button if b.label == "Check in context"]
    assert len(in_context_calls) == 1


def kept_note(app: AppTest) -> list[str]:
    return [c.value for c in app.sidebar.caption if c.value.startswith("Scored with your last")]


def test_an_upload_is_kept_across_pages_until_forgotten(
    mapping_checkpoint: PlantedMapping, engine_calls: list[str]
) -> None:
    """Streamlit empties a file uploader when its page is left: the relations come back, said
    on the page, so the next Run never silently scores fewer relations."""
    app = choose_folder(open_page(), str(mapping_checkpoint.path))
    app = upload(app, (f"{MAPPING_NAME}.csv", mapping_checkpoint.csv(mapping_checkpoint.pairs)))
    assert not kept_note(app)
    app.switch_page("pages/1_Layer_chart.py").run()
    app.switch_page("pages/2_Classify_heads.py").run()
    assert not app.exception
    (note,) = kept_note(app)
    assert MAPPING_NAME.replace("_", "") in note.replace("&#95;", "").replace("_", "")
    button(app, "Forget these relation files").click().run()
    assert not kept_note(app)
    app.switch_page("pages/1_Layer_chart.py").run()
    app.switch_page("pages/2_Classify_heads.py").run()
    assert not kept_note(app)


def test_files_removed_from_the_uploader_are_not_kept(
    mapping_checkpoint: PlantedMapping, engine_calls: list[str]
) -> None:
    app = choose_folder(open_page(), str(mapping_checkpoint.path))
    app = upload(app, (f"{MAPPING_NAME}.csv", mapping_checkpoint.csv(mapping_checkpoint.pairs)))
    app = upload(app)
    assert not kept_note(app)
