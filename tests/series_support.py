"""A planted training series and the store a sweep fills from it, for the sweep, page and
browser tests. Fixtures (imported by `conftest.py`): `planted_series` (the series folder),
`planted_store` (its store, swept in process); `task_series` and `ablation_store`, the same for
the causal check over training.

The series (`lib.fixtures.planted.build_series`) plants each head from its `APPEARANCE` step on, so
every head's label at every step, and its `first_step`, are known by construction. The task
series (`build_task_series`) has the head `TASK_HEAD` carry the task `TASK_RELATION` from
`TASK_STEP` on (random weights before): its heads become necessary exactly there."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lib.fixtures.planted import PLANTED, ROLES, TASK_RELATION, build_series, build_task_series
from lib.runs import sweep as sw
from lib.scoring.ablation import AblationSettings
from lib.scoring.pipeline import ClassifySettings
from lib.tables.labels import UNCLASSIFIED

STEPS = (0, 2, 8)
APPEARANCE = {"previous_token": 0, "suppression": 2, "copying": 8, "country_to_capital": 8}
RELATIONS = ("country_to_capital_wikidata", "general_copying_english_500")
SETTINGS = sw.SweepSettings(ClassifySettings(relations=RELATIONS), "cpu", "float32")
TASK_STEPS, TASK_STEP = (0, 2, 8), 2
ABLATION_SETTINGS = sw.SweepSettings(
    ClassifySettings(relations=(TASK_RELATION,), patterns=None),
    "cpu",
    "float32",
    AblationSettings(draws=3),
)


@contextmanager
def local_ray() -> Iterator[None]:
    """A small local Ray for the block (the test is skipped where Ray is not installed), given
    the sweep's runtime environment as `lib.runs.sweep.connect_ray` gives it."""
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        object_store_memory=80 * 2**20,
        include_dashboard=False,
        runtime_env=copy.deepcopy(sw.RAY_RUNTIME_ENV),  # Ray edits it in place
    )
    try:
        yield
    finally:
        ray.shutdown()


def expected_label(layer: int, head: int, step: int) -> str:
    """What a head of the series is at `step`: its planted label once planted, else nothing."""
    roles = {position: role for role, position in ROLES.items()}
    role = roles.get((layer, head))
    return PLANTED[(layer, head)] if role and APPEARANCE[role] <= step else UNCLASSIFIED


def first_step(role: str) -> int:
    """The first swept step at which `role`'s head is planted."""
    return min(step for step in STEPS if step >= APPEARANCE[role])


@pytest.fixture(scope="session")
def planted_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("series")
    build_series(out, STEPS, APPEARANCE)
    return out


@pytest.fixture(scope="session")
def planted_store(planted_series: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store the in-process engine filled from the whole series."""
    store = tmp_path_factory.mktemp("store")
    results = sw.sweep(sw.plan_jobs([str(planted_series)]), SETTINGS, str(store))
    assert [r.status for r in results] == ["stored"] * len(STEPS)
    return store


@pytest.fixture(scope="session")
def task_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("task-series")
    build_task_series(out, TASK_STEPS, TASK_STEP)
    return out


@pytest.fixture(scope="session")
def ablation_store(task_series: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store the in-process engine filled from the task series with the causal check."""
    store = tmp_path_factory.mktemp("ablation-store")
    results = sw.sweep(sw.plan_jobs([str(task_series)]), ABLATION_SETTINGS, str(store))
    assert [r.status for r in results] == ["stored"] * len(TASK_STEPS)
    return store
