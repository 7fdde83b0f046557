"""Hostile Ray addresses and clusters for `python -m lib.sweep --engine ray`: each ends in one
line (`InputError`, exit 2) within seconds, before the store is touched, never in a traceback
or a wait without end; and only the code and the relation data are shipped to the workers.

Every case but one stops before Ray starts: `ray.init` is replaced by a fake that fails at
once, so a case that would reach it fails instead of waiting for a cluster."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from lib.core.errors import InputError
from lib.runs import sweep as sw
from lib.scoring.provenance import ROOT
from lib.sweep import main as sweep_main

ray = pytest.importorskip("ray")
packaging = pytest.importorskip("ray._private.runtime_env.packaging")


@pytest.fixture(autouse=True)
def ray_never_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)

    def refuse(**options: object) -> None:
        raise AssertionError(f"ray.init was reached with address {options.get('address')!r}")

    monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture
def series(tmp_path: Path) -> Path:
    """A series folder with one (empty) checkpoint: enough to plan a job."""
    folder = tmp_path / "series"
    (folder / "step0").mkdir(parents=True)
    return folder


def sweep_on_ray(series: Path, *options: str) -> None:
    store = series.parent / "store"
    sweep_main(["--model", str(series), "--out", str(store), "--engine", "ray", *options])


def closed_port() -> int:
    """A loopback port nothing listens on (just released by this process)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_closed_port_is_refused_within_seconds(series: Path) -> None:
    address = f"127.0.0.1:{closed_port()}"
    start = time.monotonic()
    with pytest.raises(InputError, match=f"no Ray cluster answers at {address} .*refused"):
        sweep_on_ray(series, "--ray-address", address)
    assert time.monotonic() - start < sw.RAY_CONNECT_TIMEOUT + 1
    assert not (series.parent / "store").exists()


@pytest.mark.parametrize(
    "address", ["garbage", "local", "head:", ":6379", "head:port", "head:６３７９", "ftp://h:1"]
)
def test_an_address_of_no_supported_form_is_refused(series: Path, address: str) -> None:
    with pytest.raises(InputError, match=r"is not a Ray address; give auto .*HOST:PORT"):
        sweep_on_ray(series, "--ray-address", address)


@pytest.mark.parametrize("address", ["http://127.0.0.1:8265", "https://head:8265/"])
def test_a_dashboard_address_is_refused_with_a_word(series: Path, address: str) -> None:
    with pytest.raises(InputError, match="not a Ray address \\(http:// is a dashboard's"):
        sweep_on_ray(series, "--ray-address", address)


def test_a_garbage_ray_address_variable_is_refused(
    series: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "garbage")
    with pytest.raises(InputError, match="'garbage' is not a Ray address"):
        sweep_on_ray(series)


def test_ray_client_without_ray_client_installed_says_what_to_install(
    series: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "grpc", None)  # Ray Client's dependency: absent
    pinned = f"ray\\[client\\]=={ray.__version__}"
    with pytest.raises(InputError, match=f"ray://127.0.0.1:1: ray:// .*{pinned}"):
        sweep_on_ray(series, "--ray-address", "ray://127.0.0.1:1")


def test_auto_without_a_running_ray_is_one_line(
    series: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray's own error for `auto` when no cluster runs here (found by process list, so faked:
    another test's Ray may run on this machine), with the runtime environment it was given."""
    asked = {}

    def no_cluster(**options: object) -> None:
        asked.update(options)
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(InputError, match=r"cannot run on Ray at auto: .*`ray start --head`"):
        sweep_on_ray(series, "--ray-address", "auto")
    assert asked["address"] == "auto" and asked["runtime_env"] == sw.RAY_RUNTIME_ENV
    assert asked["runtime_env"] is not sw.RAY_RUNTIME_ENV  # a copy: Ray edits it in place


def test_an_address_without_the_ray_engine_is_refused(series: Path) -> None:
    with pytest.raises(InputError, match="--ray-address is for --engine ray"):
        sweep_main(
            ["--model", str(series), "--out", str(series.parent / "s"), "--ray-address=auto"]
        )


def shipped(folder: Path, tmp_path: Path) -> set[str]:
    """The files Ray's own packager puts in the working_dir package of `RAY_RUNTIME_ENV`."""
    package = tmp_path / "package.zip"
    package.unlink(missing_ok=True)
    excludes = sw.RAY_RUNTIME_ENV["excludes"]
    packaging.create_package(str(folder), package, include_gitignore=True, excludes=excludes)
    return set(zipfile.ZipFile(package).namelist())


def test_only_code_and_relation_data_are_shipped(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    code = {"lib/sweep.py", "lib/sub/part.py", "data/relations/factual/country.json"}
    others = {
        "lib/__pycache__/sweep.cpython-311.pyc",
        *("series/step0/model.safetensors", "store/a.parquet", "data/examples/figure.csv"),
        *(".git/HEAD", ".venv/bin/python", "tests/test_x.py", "bench/checkpoints/m.bin"),
        *("README.md", "library/x.py", "lib.py", "data/relations.json"),
    }
    for name in code | others:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("x")
    assert shipped(checkout, tmp_path) == code
    assert sw.RAY_RUNTIME_ENV["working_dir"] == str(ROOT)
    real = shipped(ROOT, tmp_path)
    assert {"lib/sweep.py", "lib/classify.py"} <= real
    assert any(name.startswith("data/relations/") for name in real)
    assert all(name.startswith(("lib/", "data/relations/")) for name in real), real


@pytest.mark.skipif(torch.cuda.is_available(), reason="a local Ray here would have a GPU")
def test_cuda_on_a_cluster_without_a_gpu_is_refused(series: Path) -> None:
    """One real local Ray, in its own process: on the base commit the sweep waited forever."""
    env = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}
    store = series.parent / "store"
    command = [sys.executable, "-m", "lib.sweep", "--model", str(series), "--out", str(store)]
    done = subprocess.run(
        [*command, "--engine", "ray", "--device", "cuda"],
        cwd=ROOT,
        env=env | {"OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --device cuda") and "has no GPU" in last
    assert not store.exists()
