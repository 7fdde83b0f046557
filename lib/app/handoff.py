"""Handing a per-head table from another page to the Layer chart page.

A page puts `ChartHandoff(table, source)` under `st.session_state[HANDOFF_KEY]` and switches to
`pages/1_Layer_chart.py`; the chart page takes it (removing the key), validates it like an
upload (`ChartHandoff.validated`), and draws it with `source` named.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from lib.tables import head_table as ht

HANDOFF_KEY = "chart_handoff"


@dataclass(frozen=True)
class ChartHandoff:
    """A per-head table for the chart page. `source` names it for the reader (e.g.
    "EleutherAI/pythia-410m @ step143000"); `score_column` is the column to bin by default."""

    table: pd.DataFrame
    source: str
    score_column: str = "score"
    depths: tuple[tuple[str, int], ...] = ()
    """Each model's layer count when `table` holds some of its heads (`HeadTable.depths`)."""

    def validated(self) -> ht.HeadTable | ht.BinnedTable:
        """`table` checked as an upload is (`head_table.table_from_frame`), keeping `depths`."""
        table = ht.table_from_frame(self.table, self.source)
        if isinstance(table, ht.HeadTable):
            return dataclasses.replace(table, depths=self.depths)
        return table
