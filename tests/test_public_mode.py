"""Public mode refuses what a shared deployment must not do, and nothing else."""

from __future__ import annotations

import pytest

from lib.app.public_mode import UPLOAD_SECONDS, PublicMode, public_mode_from
from lib.core.errors import InputError
from lib.tables.head_table import MAX_ROWS


def test_off_unless_switched_on() -> None:
    assert public_mode_from({}) == PublicMode()
    assert public_mode_from({"HEAD_ATLAS_PUBLIC": "0"}).enabled is False
    PublicMode().check_source("/any/local/folder", is_folder=True)
    PublicMode().check_source("EleutherAI/pythia-12b", is_folder=False)


@pytest.mark.parametrize("word", ["1", "true", "TRUE", " yes ", "on"])
def test_switched_on_by_any_true_word(word: str) -> None:
    assert public_mode_from({"HEAD_ATLAS_PUBLIC": word}).enabled is True


def test_default_public_limits() -> None:
    mode = public_mode_from({"HEAD_ATLAS_PUBLIC": "1"})
    assert mode.allowed_sizes == ("14m", "31m", "70m", "160m")
    assert mode.max_upload_rows == 100_000


def test_refuses_local_folders_and_large_or_foreign_models() -> None:
    mode = public_mode_from({"HEAD_ATLAS_PUBLIC": "1"})
    mode.check_source("EleutherAI/pythia-160m-deduped", is_folder=False)
    with pytest.raises(InputError, match="does not load local folders"):
        mode.check_source("/tmp/checkpoint", is_folder=True)
    with pytest.raises(InputError, match=r"up to 160m .*pythia-410m"):
        mode.check_source("EleutherAI/pythia-410m", is_folder=False)
    with pytest.raises(InputError, match="up to 160m"):
        mode.check_source("gpt2", is_folder=False)


def test_limits_are_settable_and_validated() -> None:
    mode = public_mode_from(
        {
            "HEAD_ATLAS_PUBLIC": "on",
            "HEAD_ATLAS_PUBLIC_MAX_SIZE": "1B",
            "HEAD_ATLAS_PUBLIC_MAX_ROWS": "5,000",
        }
    )
    assert mode.allowed_sizes[-1] == "1b" and mode.max_upload_rows == 5000
    too_many = public_mode_from(
        {"HEAD_ATLAS_PUBLIC": "1", "HEAD_ATLAS_PUBLIC_MAX_ROWS": "10000000"}
    )
    assert too_many.max_upload_rows == MAX_ROWS
    with pytest.raises(InputError, match="HEAD_ATLAS_PUBLIC_MAX_SIZE='huge' is not a Pythia size"):
        public_mode_from({"HEAD_ATLAS_PUBLIC": "1", "HEAD_ATLAS_PUBLIC_MAX_SIZE": "huge"})
    with pytest.raises(InputError, match="must be a whole number"):
        public_mode_from({"HEAD_ATLAS_PUBLIC": "1", "HEAD_ATLAS_PUBLIC_MAX_ROWS": "-3"})


def test_public_mode_reads_uploads_within_a_time_budget() -> None:
    assert PublicMode().upload_limits.max_seconds is None  # locally: no time budget
    public = public_mode_from({"HEAD_ATLAS_PUBLIC": "1", "HEAD_ATLAS_PUBLIC_MAX_ROWS": "50"})
    assert public.upload_limits.max_seconds == UPLOAD_SECONDS
    assert public.upload_limits.max_rows == 50
