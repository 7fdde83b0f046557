"""Public mode refuses what a shared deployment must not do, and nothing else."""

from __future__ import annotations

import pytest

from lib.app.public_mode import (
    DEFAULT_MAX_RELATION_PAIRS,
    UPLOAD_SECONDS,
    PublicMode,
    public_mode_from,
)
from lib.core.errors import InputError
from lib.scoring.relation_files import CustomRelation
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
    assert mode.allowed_sizes == ("14m", "31m", "70m", "160m", "410m", "1b", "1.4b", "2.8b")
    assert mode.max_upload_rows == 100_000


def test_refuses_local_folders_and_large_or_foreign_models() -> None:
    mode = public_mode_from({"HEAD_ATLAS_PUBLIC": "1"})
    mode.check_source("EleutherAI/pythia-160m-deduped", is_folder=False)
    with pytest.raises(InputError, match="does not load local folders"):
        mode.check_source("/tmp/checkpoint", is_folder=True)
    with pytest.raises(InputError, match=r"up to 2\.8b .*pythia-6\.9b"):
        mode.check_source("EleutherAI/pythia-6.9b", is_folder=False)
    with pytest.raises(InputError, match=r"up to 2\.8b"):
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


def relation(name: str, n_pairs: int) -> CustomRelation:
    rows = tuple((f"a{i}", f"b{i}") for i in range(n_pairs))
    return CustomRelation(name=name, sha256=name, rows=rows)


def test_relation_pairs_are_capped_in_all_not_per_file() -> None:
    mode = public_mode_from({"HEAD_ATLAS_PUBLIC": "1"})
    files = [relation(f"r{i}", DEFAULT_MAX_RELATION_PAIRS) for i in range(20)]
    for file in files:
        mode.check_relation_file(file)  # each within the per-file cap
    mode.check_relation_total(files[:2])  # 10,000 in all: the default cap
    with pytest.raises(
        InputError, match=r"r2 brings your files to 15,000 pairs; .* at most 10,000 in all"
    ):
        mode.check_relation_total(files[:3])
    PublicMode().check_relation_total(files)  # locally: no cap
    capped = public_mode_from(
        {"HEAD_ATLAS_PUBLIC": "1", "HEAD_ATLAS_PUBLIC_MAX_TOTAL_RELATION_PAIRS": "79"}
    )
    capped.check_relation_total([relation("a", 40), relation("b", 39)])
    with pytest.raises(InputError, match="b brings your files to 80 pairs"):
        capped.check_relation_total([relation("a", 40), relation("b", 40)])


def test_templates_are_capped_in_number_and_length() -> None:
    mode = public_mode_from({"HEAD_ATLAS_PUBLIC": "1"})
    mode.check_templates(["No <X> means no", "When I think about <X> I think about"])
    many = [f"template {i} <X>" for i in range(400)]
    with pytest.raises(InputError, match=r"^400 templates given; .* at most 10$"):
        mode.check_templates(many)
    mode.check_templates(many[:10])
    huge = "The story of <X> " + "x" * 8175  # 8 KB
    with pytest.raises(InputError) as refused:
        mode.check_templates(["No <X> means no", huge])
    message = str(refused.value)
    assert "is 8,192 bytes long; this public deployment takes templates of at most 200" in message
    assert len(message) < 200  # the template is quoted short
    mode.check_templates(["No <X> means " + "é" * 93])  # 199 bytes: é is two
    with pytest.raises(InputError, match="is 201 bytes long"):
        mode.check_templates(["No <X> means " + "é" * 94])
    PublicMode().check_templates([*many, huge])  # locally: no cap
    settings = {
        "HEAD_ATLAS_PUBLIC": "1",
        "HEAD_ATLAS_PUBLIC_MAX_TEMPLATES": "400",
        "HEAD_ATLAS_PUBLIC_MAX_TEMPLATE_BYTES": "8192",
    }
    public_mode_from(settings).check_templates([*many[1:], huge])
    with pytest.raises(InputError, match="HEAD_ATLAS_PUBLIC_MAX_TEMPLATES='none' must be"):
        public_mode_from({**settings, "HEAD_ATLAS_PUBLIC_MAX_TEMPLATES": "none"})
