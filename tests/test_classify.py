"""The per-head table: planted heads labelled, label rules, sidecar, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lib.classify import main
from lib.core.errors import InputError, run_cli
from lib.scoring.pipeline import ClassifySettings, classify_heads
from lib.scoring.relations import relation_names
from lib.tables.labels import PATTERNS, Thresholds, label_heads
from lib.tables.result_files import settings_path

ROOT = Path(__file__).resolve().parent.parent


def test_planted_heads_are_labelled_and_the_rest_unclassified(
    planted_classification, planted_checkpoint
):
    table = planted_classification.table.set_index(["layer", "head"])
    expected = {position: "unclassified" for position in table.index}
    expected.update(planted_checkpoint.heads)
    assert table["label"].to_dict() == expected
    for position in planted_checkpoint.heads:
        assert table.loc[position, "score"] > 0.99


def test_table_has_one_row_per_head_and_the_documented_columns(planted_classification):
    table = planted_classification.table
    names = relation_names()
    assert list(table.columns) == [
        "model",
        "revision",
        "commit",
        "layer",
        "head",
        *(f"score_{name}" for name in names),
        *(f"suppression_{name}" for name in names),
        *PATTERNS,
        "label",
        "score",
    ]
    assert len(table) == 12 and not table.duplicated(["layer", "head"]).any()
    scores = table.drop(columns=["model", "revision", "commit", "layer", "head", "label"])
    assert ((scores >= 0) & (scores <= 1)).all().all()


def test_label_rules():
    table = pd.DataFrame(
        {
            "score_a": [0.15, 0.14, 0.5, 0.2, 0.0],
            "suppression_a": [0.0, 0.0, 0.5, 0.3, 0.0],
            "previous_token": [0.0, 0.0, 0.5, 0.0, 0.0],
            "first_token": [0.0, 0.0, 0.0, 0.0, 0.85],
        }
    )
    labelled = label_heads(table, Thresholds())
    assert list(labelled["label"]) == [
        "a",  # at the threshold counts
        "unclassified",
        "a",  # ties: relation, then suppression, then patterns
        "suppression: a",
        "unclassified",  # below the first-token threshold 0.9
    ]
    assert list(labelled["score"]) == [0.15, 0.0, 0.5, 0.3, 0.0]
    lenient = label_heads(table, Thresholds(first_token=0.8))
    assert lenient["label"].iloc[4] == "first_token"


def test_settings_are_hashable_cache_keys():
    assert hash(ClassifySettings()) == hash(ClassifySettings())
    assert ClassifySettings() != ClassifySettings(thresholds=Thresholds(operation=0.2))
    shuffled = ClassifySettings(relations=("name_copying", "adj_antonym", "name_copying"))
    assert shuffled == ClassifySettings(relations=("adj_antonym", "name_copying"))


def test_settings_refuse_unknown_relations_and_thresholds_outside_fractions():
    with pytest.raises(InputError, match="unknown relation capitals"):
        ClassifySettings(relations=("capitals",))
    with pytest.raises(InputError, match=r"threshold induction=40 is not a fraction"):
        Thresholds(induction=40)


def test_command_line_end_to_end(planted_checkpoint, planted_classification, tmp_path):
    out = tmp_path / "heads.csv"
    command = [sys.executable, "-m", "lib.classify", "--model", str(planted_checkpoint.path)]
    done = subprocess.run(
        [*command, "--device", "cpu", "--out", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    pd.testing.assert_frame_equal(table, planted_classification.table, check_exact=True)
    top = table.loc[table["previous_token"].idxmax()]
    assert (top["layer"], top["head"]) == planted_checkpoint.where("previous_token")
    settings = json.loads(settings_path(out).read_text())
    assert settings["thresholds"] == {
        "operation": 0.15,
        "previous_token": 0.4,
        "duplicate_token": 0.4,
        "induction": 0.4,
        "first_token": 0.9,
    }
    assert settings["dtype"] == "float32" and settings["skipped_relations"] == []
    assert [r["name"] for r in settings["relations"]] == list(relation_names())
    assert f"python -m lib.chart {out} --population operation" in done.stderr


def test_relation_subset_without_patterns(planted_checkpoint, tmp_path):
    out = tmp_path / "copying.csv"
    argv = ["--model", str(planted_checkpoint.path), "--device", "cpu", "--no-patterns"]
    argv += ["--relations", "name_copying", "--threshold", "operation=0.5", "--out", str(out)]
    assert main(argv) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "model",
        "revision",
        "commit",
        "layer",
        "head",
        "score_name_copying",
        "suppression_name_copying",
        "label",
        "score",
    ]
    assert json.loads(settings_path(out).read_text())["patterns"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--model", "/no/such/folder"],
            "no such folder: /no/such/folder; give the folder a model was saved to",
        ),
        (["--model", "{non_neox}"], "'gpt2' model, not GPT-NeoX"),
        (["--model", "{planted}", "--relations", "capitals"], "unknown relation capitals"),
        (["--model", "{planted}", "--threshold", "operation=15"], "--threshold 'operation=15'"),
        (["--model", "{planted}", "--dtype", "int8"], "invalid choice: 'int8'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    argv, message, planted_checkpoint, non_neox_folder, tmp_path, capsys
):
    paths = {"{planted}": str(planted_checkpoint.path), "{non_neox}": str(non_neox_folder)}
    argv = [paths.get(arg, arg) for arg in argv] + ["--out", str(tmp_path / "x.csv")]
    assert run_cli(main, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and message in error
    assert not (tmp_path / "x.csv").exists()


def test_progress_runs_from_zero_to_one_and_names_the_step(planted_model):
    reports: list[tuple[float, str]] = []
    settings = ClassifySettings(relations=("name_copying",))
    classify_heads(planted_model, settings, lambda f, message: reports.append((f, message)))
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1
    assert "operation scores: layer 3 of 3" in {message for _, message in reports}


def test_an_unwritable_out_is_refused_before_any_work(planted_checkpoint, tmp_path, capsys):
    argv = ["--model", str(planted_checkpoint.path), "--out", str(tmp_path)]
    assert run_cli(main, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{tmp_path} is a folder" in error
