"""`python -m lib.chart`: the issue's "done when" commands, every option, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lib.chart import main
from lib.core.errors import EXIT_BAD_INPUT, run_cli
from tests.chart_helpers import (
    FIGURE_COUNTS,
    FIGURE_CSV,
    FIGURE_PERCENTS,
    REPO,
    per_head_frame,
    reference_counts,
)


def chart_cli(*args: str | Path) -> int:
    return run_cli(main, [str(arg) for arg in args])


def test_the_module_writes_the_figures_counts_csv(tmp_path: Path) -> None:
    out = tmp_path / "counts.csv"
    done = subprocess.run(
        [sys.executable, "-m", "lib.chart", str(FIGURE_CSV), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    counts = pd.read_csv(out)
    assert list(counts["n_heads"]) == [n for bar in FIGURE_COUNTS for n in bar]
    assert list(counts["percent"]) == [p for bar in FIGURE_PERCENTS for p in bar]


def test_the_module_fails_bad_input_with_one_line_and_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("layer,score\n-3,0.5\n")
    done = subprocess.run(
        [sys.executable, "-m", "lib.chart", str(bad), "--out", str(tmp_path / "x.svg")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == EXIT_BAD_INPUT
    message = "bad.csv, row 2, column 'layer': '-3' is negative; counting starts at 0"
    assert done.stderr == f"error: {message}\n"
    assert not (tmp_path / "x.svg").exists()


def test_the_svg_of_the_figure_has_its_title_axes_and_labels(tmp_path: Path) -> None:
    assert chart_cli(FIGURE_CSV, "--out", tmp_path / "fig.svg") == 0
    svg = (tmp_path / "fig.svg").read_text()
    for text in ("Pythia 6.9B", "Layer", "# heads", "31.4%", "68.0%", "19.5%"):
        assert f">{text}</text>" in svg


def test_300_heads_over_24_layers_with_width_6_count_as_by_hand(tmp_path: Path) -> None:
    frame = per_head_frame(24, 13, seed=7).iloc[:300]
    frame.to_csv(tmp_path / "heads.csv", index=False)
    assert chart_cli(tmp_path / "heads.csv", "--out", tmp_path / "c.csv", "--layer-width", "6") == 0
    counts = pd.read_csv(tmp_path / "c.csv")
    by_hand = reference_counts(
        frame["layer"], frame["score"], (0, 6, 12, 18, 24), (0, 0.25, 0.5, 0.75, 1)
    )
    assert list(counts["n_heads"]) == [by_hand[b, c] for b in range(4) for c in range(4)]
    assert list(counts["layer_bin"].unique()) == ["[0, 6)", "[6, 12)", "[12, 18)", "[18, 24)"]


def test_every_option_reaches_the_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = per_head_frame(8, 4, seed=8).rename(columns={"score": "copying"})
    frame["copying"] *= 100  # percents
    frame.to_csv(tmp_path / "heads.csv", index=False)
    args = [
        tmp_path / "heads.csv", "--out", tmp_path / "spec.json", "--layer-edges", "0,2,8",
        "--score-column", "copying", "--score-edges", "0,50,100", "--names", "low,high",
        "--colors", "navy,#FFA500", "--title", "Copying heads",
    ]  # fmt: skip
    assert chart_cli(*args) == 0
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert spec["title"] == "Copying heads"
    assert spec["layer"][0]["encoding"]["color"]["scale"] == {
        "domain": ["low", "high"],
        "range": ["#000080", "#ffa500"],
    }
    assert spec["layer"][0]["encoding"]["x"]["scale"]["domain"] == ["[0, 2)", "[2, 8)"]
    rows = spec["data"]["values"]
    assert sum(row["n_heads"] for row in rows) == 32
    assert "read as percents" in capsys.readouterr().err


def test_a_text_column_makes_the_categories(tmp_path: Path) -> None:
    frame = pd.DataFrame({"layer": [0, 1, 2, 3], "label": ["b", "a", "b", "=cmd"]})
    frame.to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "c.csv"
    assert chart_cli(tmp_path / "labels.csv", "--out", out, "--category-column", "label") == 0
    counts = pd.read_csv(tmp_path / "c.csv")
    assert list(counts["category"][:3]) == ["'=cmd", "a", "b"]  # sorted; formula neutralised
    assert counts["n_heads"].sum() == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "x.txt"], "output suffix '.txt' is not one of .csv, .json, .svg, .png"),
        (["--out", "x.csv", "--layer-width", "4", "--layer-edges", "0,4"], "not allowed with"),
        (
            ["--out", "x.csv", "--score-edges", "0,50,100"],
            "pre-binned: its categories come from the file",
        ),
        (["--out", "x.csv", "--colors", "red,green"], "4 categories need 4 names and 4 colours"),
        (["--out", "x.csv", "--colors", "red,green,blue,greenish"], "'greenish' is not a colour"),
        (["--out", "x.csv", "--layer-edges", "0,16,8"], "layer edges must increase"),
        (["--out", "x.csv", "--layer-width", "0"], "width must be a whole number in [1, "),
        (["--out", "x.csv", "--layer-width", "10" * 10], "width must be a whole number in [1, "),
        (["--out", "x.csv", "--layer-width", "1e20"], "invalid int value: '1e20'"),
        (["--out", "x.csv", "--layer-edges", "0,1e300"], "layer edges must be at most 1,000,001"),
        (["--out", "x.csv", "--layer-width", "6"], "widths 8, 16, 24, 32 or edges among 0, 8,"),
        (["--out", "x.png", "--layer-edges", "0," + "9" * 400], "is not a finite number"),
        (["--out", "missing/dir/x.csv"], "cannot write missing/dir/x.csv"),
    ],
)
def test_bad_options_are_one_line_and_code_2(
    extra: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert chart_cli(FIGURE_CSV, *extra) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_a_missing_input_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert chart_cli(tmp_path / "nope.csv", "--out", tmp_path / "x.csv") == EXIT_BAD_INPUT
    assert "cannot read" in capsys.readouterr().err
