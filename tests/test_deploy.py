"""The Community Cloud dependency file installs requirements.txt's pins with the CPU-only torch
of the same version (README, "Deploy")."""

from __future__ import annotations

from pathlib import Path

import yaml  # a transformers dependency

REPO = Path(__file__).resolve().parent.parent
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def test_community_cloud_gets_requirements_txt_with_the_cpu_build_of_its_torch():
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    (pip,) = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict)]
    pins = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    (torch,) = [line for line in pins if line.startswith("torch==")]
    # conda runs pip from this folder, so -r finds the same requirements.txt.
    assert pip == [CPU_INDEX, f"{torch}+cpu", "-r requirements.txt"]
    assert "python=3.11" in environment["dependencies"]
