"""Hub checkpoints without the network: a revision pinned to its commit from a hub cache laid out
as huggingface_hub lays it out, a commit hash accepted as a revision, and offline known at once
(the probe stands in for the network; no test reaches it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from streamlit.testing.v1 import AppTest

import lib.checkpoints.hub
from lib.checkpoints.loader import check_revision, load_model
from lib.core.errors import InputError
from lib.runs.classification import RunRequest, classify_cached, model_key
from lib.runs.resident import ResidentModel
from lib.runs.result_cache import ResultCache
from lib.scoring.pipeline import ClassifySettings, classify_heads
from tests.conftest import Planted

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "someone/tiny-neox"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def hub_cache(tmp_path: Path, planted_checkpoint: Planted, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hub cache holding `REPO` at `COMMIT`, with `main` pointing at it (the planted files)."""
    storage = tmp_path / "hub" / f"models--{REPO.replace('/', '--')}"
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(COMMIT)
    shutil.copytree(planted_checkpoint.path, storage / "snapshots" / COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return storage


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """`HF_HUB_OFFLINE` off; the probe answers, in turn, what the test appends to the list
    (True = the hub answered); one probe too many fails on the empty list."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    answers: list[bool] = []
    monkeypatch.setattr(lib.checkpoints.hub, "probe_hub", lambda: answers.pop(0))
    lib.checkpoints.hub.forget_probe()
    yield answers
    lib.checkpoints.hub.forget_probe()


def test_a_revision_is_pinned_to_its_commit_in_the_table_and_the_key(
    hub_cache: Path, tmp_path: Path
) -> None:
    loaded = load_model(REPO, "main", device="cpu")
    assert (loaded.revision, loaded.commit) == ("main", COMMIT)
    settings = ClassifySettings(relations=("name_copying",), patterns=None)
    result = classify_heads(loaded, settings)
    assert set(result.table["commit"]) == {COMMIT} and result.settings["commit"] == COMMIT
    request = RunRequest(REPO, "main", device="cpu", settings=settings)
    key = model_key(request)
    assert key.commit == COMMIT
    lookup = classify_cached(request, key, ResidentModel(), ResultCache(tmp_path / "cache"))
    assert set(lookup.result.table["commit"]) == {COMMIT}


def test_main_moving_to_another_commit_is_another_key(hub_cache: Path) -> None:
    request = RunRequest(REPO, "main", device="cpu")
    before = model_key(request)
    moved = "f" * 40
    shutil.copytree(hub_cache / "snapshots" / COMMIT, hub_cache / "snapshots" / moved)
    (hub_cache / "refs" / "main").write_text(moved)
    after = model_key(request)
    assert (before.commit, after.commit) == (COMMIT, moved) and before != after


def test_a_commit_hash_is_a_revision(hub_cache: Path) -> None:
    assert load_model(REPO, COMMIT, device="cpu").commit == COMMIT
    check_revision("EleutherAI/pythia-70m", COMMIT)  # the catalog's check lets it through
    with pytest.raises(InputError, match="or a 40-digit commit hash"):
        check_revision("EleutherAI/pythia-70m", COMMIT[:12])


def test_offline_by_probe_is_said_at_once_and_remembered(
    online: list[bool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    asked: list[bool] = []
    real = lib.checkpoints.hub.hf_hub_download

    def local_only(*args, local_files_only: bool = False, **kwargs):
        asked.append(local_files_only)
        assert local_files_only, "asked the network although the probe said offline"
        return real(*args, local_files_only=local_files_only, **kwargs)

    monkeypatch.setattr(lib.checkpoints.hub, "hf_hub_download", local_only)
    online.append(False)  # the only answer: a second probe would fail on the empty list
    for _ in range(2):
        with pytest.raises(InputError, match="cannot reach the Hugging Face hub"):
            load_model("EleutherAI/pythia-70m", device="cpu")
    assert asked == [True, True]


def test_offline_by_probe_still_loads_what_is_cached(online: list[bool], hub_cache: Path) -> None:
    online.append(False)
    assert load_model(REPO, "main", device="cpu").commit == COMMIT


def test_the_probe_is_skipped_when_hf_hub_offline_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lib.checkpoints.hub, "probe_hub", pytest.fail)
    lib.checkpoints.hub.forget_probe()
    assert lib.checkpoints.hub.hub_offline()  # the suite runs with HF_HUB_OFFLINE=1 (conftest)


def test_the_classify_page_says_the_hub_is_offline_before_run(online: list[bool]) -> None:
    online.append(False)
    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    app.switch_page("pages/2_Classify_heads.py").run()
    assert not app.exception
    assert [warning.value for warning in app.sidebar.warning] == [lib.checkpoints.hub.OFFLINE_NOTE]
