"""The result cache, the resident model and cached runs: computed once, served from memory and
disk, never half written, one computation for concurrent callers, one model resident."""

from __future__ import annotations

import threading
import weakref
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from lib.core.errors import InputError
from lib.runs import classification as runs
from lib.runs.classification import RunRequest, classify_cached, model_key
from lib.runs.resident import ModelKey, ResidentModel
from lib.runs.result_cache import (
    CACHE_DIR_KEY,
    DEFAULT_CACHE_DIR,
    ResultCache,
    ResultKey,
    cache_dir,
    relabel,
)
from lib.scoring.patterns import DEFAULT_PATTERN_SETTINGS
from lib.scoring.pipeline import Classification
from lib.tables.labels import Thresholds
from tests.conftest import Planted

KEY = ResultKey("EleutherAI/pythia-14m", "step1000", "float32", ("a", "b"), None)


def fail() -> Classification:
    raise AssertionError("computed although cached")


def test_the_cache_folder_comes_from_the_environment() -> None:
    assert cache_dir({CACHE_DIR_KEY: "/data/atlas"}) == Path("/data/atlas")
    assert cache_dir({}) == DEFAULT_CACHE_DIR.expanduser()


def test_keys_differ_by_everything_the_scores_depend_on() -> None:
    variants = [
        replace(KEY, source="EleutherAI/pythia-14m-deduped"),
        replace(KEY, revision="step2000"),
        replace(KEY, dtype="bfloat16"),
        replace(KEY, relations=("a",)),
        replace(KEY, patterns=DEFAULT_PATTERN_SETTINGS),
        replace(KEY, fingerprint="f00d"),
        replace(KEY, relation_files=(("5eed", 10),)),
        replace(KEY, commit="a" * 40),
        replace(KEY, device="cuda"),
        replace(KEY, code="0123456789abcdef"),
        replace(KEY, torch="9.9.9"),
        replace(KEY, transformers="9.9.9"),
    ]
    digests = {key.digest for key in [KEY, *variants]}
    assert len(digests) == 1 + len(variants)
    assert replace(KEY).digest == KEY.digest  # stable: a restart finds the same files


def test_computed_once_then_served_from_memory_and_from_disk(
    tmp_path: Path, planted_classification: Classification
) -> None:
    cache = ResultCache(tmp_path)
    first = cache.get_or_compute(KEY, lambda: planted_classification)
    assert first.origin == "computed"
    assert cache.get_or_compute(KEY, fail).origin == "memory"
    restarted = ResultCache(tmp_path).get_or_compute(KEY, fail)
    assert restarted.origin == "disk"
    pd.testing.assert_frame_equal(restarted.result.table, planted_classification.table)
    assert restarted.result.settings == planted_classification.settings
    assert restarted.result.skipped == planted_classification.skipped
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        f"{KEY.digest}.csv",
        f"{KEY.digest}.settings.json",
    ]  # no temporary files left behind


def test_a_half_written_or_damaged_entry_is_recomputed(
    tmp_path: Path, planted_classification: Classification
) -> None:
    cache = ResultCache(tmp_path)
    (tmp_path / f"{KEY.digest}.settings.json").write_text("{")  # the CSV never landed
    assert cache.get_or_compute(KEY, lambda: planted_classification).origin == "computed"
    (tmp_path / f"{KEY.digest}.settings.json").write_text("{")  # damaged later
    assert ResultCache(tmp_path).get_or_compute(KEY, lambda: planted_classification).origin == (
        "computed"
    )


def test_an_unwritable_cache_folder_says_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match=f"set {CACHE_DIR_KEY} to a writable folder"):
        ResultCache(blocker / "cache")


def test_concurrent_callers_of_one_key_share_one_computation(
    tmp_path: Path, planted_classification: Classification
) -> None:
    cache = ResultCache(tmp_path)
    started, second_waits = threading.Event(), threading.Event()
    computations: list[int] = []

    def slow() -> Classification:
        computations.append(1)
        started.set()
        assert second_waits.wait(timeout=30)  # finish only once the other caller is queued
        return planted_classification

    def waiting(fraction: float, message: str) -> None:
        assert message.startswith("waiting for another session")
        second_waits.set()

    origins: list[str] = []
    first = threading.Thread(target=lambda: origins.append(cache.get_or_compute(KEY, slow).origin))
    first.start()
    assert started.wait(timeout=30)
    origins.append(cache.get_or_compute(KEY, slow, waiting).origin)
    first.join(timeout=30)
    assert computations == [1]
    assert sorted(origins) == ["computed", "memory"]


def test_relabelling_applies_new_thresholds_without_the_model(
    planted_classification: Classification,
) -> None:
    everything = relabel(planted_classification, Thresholds(operation=0.0))
    assert "unclassified" not in set(everything.table["label"])
    assert everything.settings["thresholds"]["operation"] == 0.0
    again = relabel(everything, Thresholds())
    pd.testing.assert_frame_equal(again.table, planted_classification.table)


def test_one_model_resident_and_the_previous_released_before_the_next_loads() -> None:
    events: list[str] = []
    resident = ResidentModel(lambda key, progress: events.append(f"load {key.source}") or key)
    original_release = resident.release

    def release() -> None:
        events.append("release")
        original_release()

    resident.release = release  # type: ignore[method-assign]
    a, b = (ModelKey(name, "main", "cpu", "float32") for name in ("a", "b"))
    for key in (a, a, b):
        with resident.use(key) as loaded:
            assert loaded == key
    assert events == ["load a", "release", "load b"]
    assert resident.key == b


def test_out_of_memory_releases_the_model_and_says_what_to_do() -> None:
    resident = ResidentModel(lambda key, progress: key)
    key = ModelKey("a", "main", "cuda", "float32")
    out_of_memory = pytest.raises(InputError, match="a ran out of memory on cuda in float32")
    with out_of_memory, resident.use(key):  # any work on the lent model, e.g. a head's view
        raise torch.OutOfMemoryError("CUDA out of memory")
    assert resident.key is None


def test_a_cached_run_loads_and_scores_once_and_keys_a_folder_by_its_files(
    tmp_path: Path, planted_checkpoint: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = runs.classify_heads
    monkeypatch.setattr(
        runs,
        "classify_heads",
        lambda loaded, *a, **k: calls.append(loaded.name) or real(loaded, *a, **k),
    )
    request = RunRequest(str(planted_checkpoint.path), device="cpu", dtype="auto")
    resident, cache = ResidentModel(), ResultCache(tmp_path)
    reports: list[tuple[float, str]] = []
    key = model_key(request)
    first = classify_cached(request, key, resident, cache, lambda *report: reports.append(report))
    second = classify_cached(request, key, resident, cache)
    assert (first.origin, second.origin, len(calls)) == ("computed", "memory", 1)
    fractions, messages = zip(*reports, strict=True)
    assert list(fractions) == sorted(fractions) and fractions[-1] == 1.0
    # A run reads the weights layer by layer, loading no model.
    assert f"opened {request.source}: its weights are read one layer at a time" in messages
    assert "operation scores: layer 3 of 3" in messages
    key = runs.model_key(request)
    assert (key.device, key.dtype, key.revision) == ("cpu", "float32", "local")
    (planted_checkpoint.path / "README.md").write_text("notes")  # not part of the checkpoint
    try:
        assert runs.model_key(request).fingerprint == key.fingerprint
    finally:
        (planted_checkpoint.path / "README.md").unlink()


class Weights:
    """A stand-in model that can be watched for being freed."""


def test_after_out_of_memory_the_device_memory_is_returned_once_the_model_is_freed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models: list[weakref.ref[Weights]] = []
    alive_at_empty_cache: list[bool] = []

    def load(key: ModelKey, progress: object) -> Weights:
        model = Weights()
        models.append(weakref.ref(model))
        return model

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "empty_cache", lambda: alive_at_empty_cache.append(models[0]() is not None)
    )
    resident = ResidentModel(load)  # type: ignore[arg-type]
    a, b = (ModelKey(name, "main", "cuda", "float16") for name in ("a", "b"))

    def score(
        key: ModelKey,
    ) -> None:  # like lib.runs.classification: the lent model is a local of the caller
        with resident.use(key) as model:
            assert model is not None
            raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(InputError, match="a ran out of memory on cuda"):
        score(a)
    assert resident.key is None
    with resident.use(b):
        pass
    # Memory was given back, and only when nothing referred to the model any more.
    assert alive_at_empty_cache == [False]


def test_mps_out_of_memory_is_handled_like_cuda() -> None:
    resident = ResidentModel(lambda key, progress: key)
    key = ModelKey("a", "main", "mps", "float16")
    out_of_memory = pytest.raises(InputError, match="a ran out of memory on mps in float16")
    with out_of_memory, resident.use(key):
        raise RuntimeError("MPS backend out of memory (MPS allocated: 9.00 GB, other: 0)")
    assert resident.key is None
    with pytest.raises(RuntimeError, match="another failure"), resident.use(key):
        raise RuntimeError("another failure")  # not memory: passed on as it is
