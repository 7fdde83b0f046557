"""The contract between the two halves: the engine's per-head table, written to CSV or handed
over in memory, is read, counted and drawn as it is."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lib.charts import export
from lib.charts.layer_chart import layer_chart
from lib.scoring.pipeline import Classification, write_classification
from lib.tables import binning
from lib.tables import head_table as ht


def by_label(table: ht.HeadTable | ht.BinnedTable) -> binning.Counts:
    return binning.count_heads(table, binning.build_categories(table, category_column="label"))


def test_the_engine_table_is_charted_from_a_file_or_from_memory(
    planted_checkpoint, planted_classification: Classification, tmp_path: Path
) -> None:  # `planted_checkpoint`: conftest's `Planted` (its `heads`: (layer, head) -> label)
    csv = tmp_path / "heads.csv"
    write_classification(planted_classification, csv)
    from_file = ht.read_table(csv.read_bytes(), csv.name)
    handed_over = ht.table_from_frame(planted_classification.table, "Classify heads")
    assert isinstance(from_file, ht.HeadTable)
    assert "label" in from_file.text_columns and "score" in from_file.numeric_columns
    counts = by_label(from_file)
    pd.testing.assert_frame_equal(counts.table, by_label(handed_over).table)
    table = counts.table
    assert table["n_heads"].sum() == len(planted_classification.table)
    # Three layers: the default bins are one layer each, and each planted head is in its own.
    assert list(table["layer_bin"].unique()) == ["[0, 1)", "[1, 2)", "[2, 3)"]
    for (layer, _), label in planted_checkpoint.heads.items():
        cell = table[(table["layer_start"] == layer) & (table["category"] == label)]
        assert int(cell["n_heads"].iloc[0]) >= 1
    by_score = binning.count_heads(from_file, binning.build_categories(from_file))
    assert "read as fractions" in by_score.notes[0]
    assert ">[2, 3)</text>" in export.to_svg(layer_chart(counts)).decode()
