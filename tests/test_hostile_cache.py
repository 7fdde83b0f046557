"""Hostile and stale cache entries: a damaged entry is never served (it is removed from disk and
memory and recomputed), a change to the scoring code or to a folder's weights is a miss, and
the table and its sidecar are only ever written and read as a pair."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from safetensors.torch import load_file, save_file

from lib.classify import main as classify_main
from lib.core.errors import InputError, run_cli
from lib.fixtures.synthetic import pythia_config, random_model, save_checkpoint, train_tokenizer
from lib.runs import classification as runs
from lib.runs.classification import RunRequest, classify_cached, model_key
from lib.runs.resident import ResidentModel
from lib.runs.result_cache import ResultCache, ResultKey
from lib.scoring import provenance
from lib.scoring.pipeline import Classification, ClassifySettings
from lib.tables import result_files
from lib.tables.result_files import read_pair, settings_path, write_pair
from tests.conftest import Planted

KEY = ResultKey("EleutherAI/pythia-14m", "main", "float32", ("a",), None, commit="c" * 40)


def fail() -> Classification:
    raise AssertionError("computed although cached")


def cut_to_five_rows(csv: Path) -> None:
    csv.write_text("\n".join(csv.read_text().splitlines()[:6]) + "\n")


def edit_a_score(csv: Path) -> None:
    table = pd.read_csv(csv)
    table.loc[3, "score"] = 0.987654321  # a number the planted table does not hold
    table.to_csv(csv, index=False)


def folder_for_csv(csv: Path) -> None:
    csv.unlink()
    (csv / "inside").mkdir(parents=True)


def empty_sidecar(csv: Path) -> None:
    settings_path(csv).write_text("{}")


def other_runs_sidecar(csv: Path) -> None:
    settings = json.loads(settings_path(csv).read_text())
    settings["thresholds"]["operation"] = 0.99  # a table labelled at 0.15 beside this
    settings_path(csv).write_text(json.dumps(settings))


def sidecar_gone(csv: Path) -> None:
    settings_path(csv).unlink()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "cut to its header and 5 rows": cut_to_five_rows,
    "a score edited": edit_a_score,
    "a folder in place of the CSV": folder_for_csv,
    "an empty sidecar {}": empty_sidecar,
    "a sidecar of other settings": other_runs_sidecar,
    "no sidecar": sidecar_gone,
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_entry_is_recomputed_removed_and_healed(
    case: str, tmp_path: Path, planted_classification: Classification
) -> None:
    ResultCache(tmp_path).get_or_compute(KEY, lambda: planted_classification)
    DAMAGE[case](tmp_path / f"{KEY.digest}.csv")
    cache = ResultCache(tmp_path)  # a restart: nothing in memory
    assert cache.get_or_compute(KEY, lambda: planted_classification).origin == "computed"
    served = cache.get_or_compute(KEY, fail)  # memory holds the good result, not the bad one
    assert served.origin == "memory"
    pd.testing.assert_frame_equal(served.result.table, planted_classification.table)
    healed = ResultCache(tmp_path).get_or_compute(KEY, fail)
    assert healed.origin == "disk"
    pd.testing.assert_frame_equal(healed.result.table, planted_classification.table)
    assert healed.result.settings == planted_classification.settings


def test_an_unreadable_entry_is_recomputed(
    tmp_path: Path, planted_classification: Classification, monkeypatch: pytest.MonkeyPatch
) -> None:
    ResultCache(tmp_path).get_or_compute(KEY, lambda: planted_classification)
    csv = tmp_path / f"{KEY.digest}.csv"
    real = Path.read_bytes

    def refuse(path: Path) -> bytes:
        if path == csv:
            raise PermissionError(13, "Permission denied")  # chmod 000 does not stop root
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert ResultCache(tmp_path).get_or_compute(KEY, lambda: planted_classification).origin == (
        "computed"
    )


def test_stale_staging_files_of_killed_runs_are_removed(tmp_path: Path) -> None:
    old_folder = tmp_path / ".writing-abc123"  # what earlier versions staged in
    old_folder.mkdir()
    (old_folder / "x.csv").write_text("half")
    old_file = tmp_path / ".x.csv.writing-def456"
    old_file.write_text("half")
    fresh = tmp_path / ".y.csv.writing-789"  # maybe being written right now
    fresh.write_text("half")
    long_ago = 0.0
    for path in (old_folder, old_file):
        os.utime(path, (long_ago, long_ago))
    ResultCache(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == [fresh.name]


def test_a_scoring_code_change_makes_old_entries_misses(
    tmp_path: Path, planted_checkpoint: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = RunRequest(
        str(planted_checkpoint.path),
        device="cpu",
        settings=ClassifySettings(relations=("name_copying",), patterns=None),
    )
    resident, cache = ResidentModel(), ResultCache(tmp_path)
    key = model_key(request)
    assert classify_cached(request, key, resident, cache).origin == "computed"
    assert classify_cached(request, key, resident, ResultCache(tmp_path)).origin == "disk"
    monkeypatch.setattr(provenance, "scoring_code_digest", lambda: "changed-scoring")
    assert classify_cached(request, key, resident, ResultCache(tmp_path)).origin == "computed"


def test_the_code_digest_follows_the_bytes_of_the_scoring_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("lib", provenance.SCORING_DATA):
        shutil.copytree(provenance.ROOT / name, tmp_path / name)
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    digest = provenance.scoring_code_digest.__wrapped__
    before = digest()
    assert tmp_path / "lib/scoring/operations.py" in provenance.scoring_modules()
    with (tmp_path / "lib/scoring/operations.py").open("a") as module:
        module.write("# a change\n")
    assert digest() != before
    # A module new to the scoring path is covered without being listed anywhere.
    (tmp_path / "lib/scoring/newstep.py").write_text("SCALE = 1.0\n")
    with (tmp_path / "lib/scoring/patterns.py").open("a") as module:
        module.write("from lib.scoring.newstep import SCALE  # noqa\n")
    assert tmp_path / "lib/scoring/newstep.py" in provenance.scoring_modules()


@pytest.mark.parametrize(
    "edited",
    [
        "lib/tables/result_files.py",  # writes the CSV and its sidecar
        "lib/tables/head_table.py",  # to_csv_bytes
        "lib/cli/options.py",  # the commands' help texts
        "lib/core/errors.py",  # messages
        "lib/classify.py",  # the command itself
    ],
)
def test_editing_writers_and_help_texts_keeps_caches_and_stores_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edited: str
) -> None:
    """The digest (and so every cache key and sweep job digest built on it) covers the
    scoring code only: a CSV writer's or a help text's edit must not recompute 154 checkpoints."""
    for name in ("lib", provenance.SCORING_DATA):
        shutil.copytree(provenance.ROOT / name, tmp_path / name)
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    digest = provenance.scoring_code_digest.__wrapped__
    before = digest()
    with (tmp_path / edited).open("a") as module:
        module.write('HELP = "an edited help text"\n')
    assert digest() == before


def rewrite_weights_keeping_size_and_times(folder: Path, seed: int) -> None:
    """Other weights of the same shape written over the folder's, its file times restored
    afterwards, as `cp -p`, `rsync -t` or tar do."""
    weights = folder / "model.safetensors"
    times = weights.stat()
    tensors = load_file(weights)
    other = random_model(pythia_config(1, 2, 32, tensors["embed_out.weight"].shape[0]), seed)
    replaced = {name: tensor.contiguous() for name, tensor in other.state_dict().items()}
    replaced["embed_out.weight"] = replaced.pop("lm_head.weight")
    save_file(replaced, weights, metadata={"format": "pt"})
    os.utime(weights, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert weights.stat().st_size == times.st_size


def test_weights_rewritten_with_the_old_size_and_mtime_are_a_miss(tmp_path: Path) -> None:
    tokenizer = train_tokenizer()
    folder = save_checkpoint(
        random_model(pythia_config(1, 2, 32, len(tokenizer))), tokenizer, tmp_path / "model"
    )
    request = RunRequest(str(folder), device="cpu")
    before = model_key(request)
    rewrite_weights_keeping_size_and_times(folder, seed=7)
    after = model_key(request)
    assert after.fingerprint != before.fingerprint
    assert (
        runs.result_key(after, request.settings).digest
        != runs.result_key(before, request.settings).digest
    )


def test_the_pair_is_never_mismatched_when_a_write_is_cut_short(
    tmp_path: Path, planted_classification: Classification, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = tmp_path / "heads.csv"
    write_pair(planted_classification.table, planted_classification.settings, csv)
    relabelled = {**planted_classification.settings, "thresholds": {"operation": 0.99}}
    moves = 0
    real = os.replace

    def killed_before_the_sidecar(source: str, target: str) -> None:
        nonlocal moves
        moves += 1
        if moves == 2:
            raise KeyboardInterrupt  # the process dies between the two moves
        real(source, target)

    monkeypatch.setattr(result_files.os, "replace", killed_before_the_sidecar)
    with pytest.raises(KeyboardInterrupt):
        write_pair(planted_classification.table.head(3), relabelled, csv)
    # The new table stands alone: no sidecar of the old settings beside it, no staging files.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["heads.csv"]
    with pytest.raises(InputError, match="cannot read"):
        read_pair(csv)


def test_a_table_beside_another_tables_sidecar_is_refused(
    tmp_path: Path, planted_classification: Classification
) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_pair(planted_classification.table, planted_classification.settings, first)
    write_pair(planted_classification.table.head(3), planted_classification.settings, second)
    shutil.copy(settings_path(first), settings_path(second))
    with pytest.raises(InputError, match="was changed after it was written"):
        read_pair(second)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "", "--out", "{tmp}/x.csv"], "no model given: pass a hub id"),
        (["--model", "{planted}", "--out", "/dev/null"], "/dev/null exists and is not a regular"),
    ],
)
def test_cli_write_path_refusals_are_one_line(
    argv: list[str],
    message: str,
    planted_checkpoint: Planted,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = {"{planted}": str(planted_checkpoint.path), "{tmp}": str(tmp_path)}
    argv = [arg.format(tmp=tmp_path) if "{tmp}" in arg else paths.get(arg, arg) for arg in argv]
    assert run_cli(classify_main, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
    assert not Path("/dev/null.settings.json").exists()


def test_nothing_to_score_is_refused_not_an_empty_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokenizer = train_tokenizer(vocab_size=300)  # too small: every relation word splits
    model = random_model(pythia_config(1, 2, 32, len(tokenizer)))
    folder = save_checkpoint(model, tokenizer, tmp_path / "tiny-vocab")
    capsys.readouterr()  # the save's progress bar
    out = tmp_path / "heads.csv"
    argv = ["--model", str(folder), "--device", "cpu", "--no-patterns", "--out", str(out)]
    assert run_cli(classify_main, [*argv, "--relations", "name_copying"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "nothing to score" in error
    assert not out.exists()


def test_a_reader_never_removes_an_entry_another_process_is_writing(
    tmp_path: Path, planted_classification: Classification
) -> None:
    ResultCache(tmp_path).get_or_compute(KEY, lambda: planted_classification)
    csv = tmp_path / f"{KEY.digest}.csv"
    sidecar = settings_path(csv)
    # Another process rewriting the entry, caught between its steps (`replace_together`):
    # both files staged, the old sidecar removed, the new one not yet moved into place.
    staged = tmp_path / f".{sidecar.name}{result_files.STAGING_MARK}other"
    shutil.copy(sidecar, staged)
    sidecar.unlink()
    with pytest.raises(AssertionError, match="computed although cached"):  # a miss, no more
        ResultCache(tmp_path).get_or_compute(KEY, fail)
    os.replace(staged, sidecar)  # the writer finishes
    served = ResultCache(tmp_path).get_or_compute(KEY, fail)
    assert served.origin == "disk"
    pd.testing.assert_frame_equal(served.result.table, planted_classification.table)
