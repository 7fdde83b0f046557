"""Start fast: the chart path (`python -m lib.chart`, the Layer chart page) imports neither torch
nor transformers, whose import alone takes seconds (issue 14, "start fast")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.chart_helpers import FIGURE_CSV, REPO

HEAVY = ("torch", "transformers")
REPORT = "import sys; print(sorted(name for name in {heavy} if name in sys.modules))"


def modules_loaded_by(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code + "\n" + REPORT.format(heavy=HEAVY)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_the_chart_command_imports_no_torch(tmp_path: Path) -> None:
    out = tmp_path / "counts.csv"
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['lib.chart', {str(FIGURE_CSV)!r}, '--out', {str(out)!r}]\n"
        "try:\n    runpy.run_module('lib.chart', run_name='__main__')\n"
        "except SystemExit as done:\n    assert done.code == 0, done.code\n"
    )
    assert modules_loaded_by(code) == "[]"
    assert out.exists()


def test_the_layer_chart_page_imports_no_torch() -> None:
    code = (
        "from streamlit.testing.v1 import AppTest\n"
        "home = AppTest.from_file('streamlit_app.py', default_timeout=60).run()\n"
        "page = home.switch_page('pages/1_Layer_chart.py').run()\n"
        "assert not page.exception and page.get('vega_lite_chart')\n"
    )
    assert modules_loaded_by(code) == "[]"
