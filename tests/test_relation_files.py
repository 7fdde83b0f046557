"""Your own relations: reading relation files, the planted head found through `--relation-file`
and not through the reversed pairs, one-line messages for bad files, and cache reuse by content."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from lib.app.public_mode import public_mode_from
from lib.classify import main
from lib.core.errors import InputError, run_cli
from lib.runs.classification import RunRequest, classify_cached, model_key
from lib.runs.resident import ResidentModel
from lib.runs.result_cache import ResultCache
from lib.scoring.pipeline import ClassifySettings, classify_heads
from lib.scoring.relation_files import (
    MAX_FILE_BYTES,
    pair_report,
    read_relation_file,
    read_relation_path,
    relation_name,
)
from lib.scoring.relations import RELATIONS_DIR, load_pairs
from lib.tables.result_files import settings_path
from tests.conftest import MAPPING_NAME, PlantedMapping

MULTI_TOKEN = "counterclockwise"  # two tokens for the test tokenizer


def read(name: str, data: bytes, k: int = 10):
    return read_relation_file(name, io.BytesIO(data), k)


def cli(mapping: PlantedMapping, out: Path, *extra: str) -> list[str]:
    argv = ["--model", str(mapping.path), "--device", "cpu", "--no-patterns"]
    return [*argv, *extra, "--out", str(out)]


def test_csv_with_bom_and_extra_columns_and_the_bundled_json_form_read_alike(
    mapping_checkpoint: PlantedMapping,
) -> None:
    pairs = mapping_checkpoint.pairs
    csv = "\ufeffnote,DST, src\n" + "".join(f"x,{dst}, {src} \n" for src, dst in pairs)
    from_csv = read("My Pairs (v2).csv", csv.encode())
    from_json = read("my_pairs_v2.json", json.dumps([list(p) for p in pairs]).encode())
    assert from_csv.name == from_json.name == "my_pairs_v2"
    assert from_csv.rows == from_json.rows == pairs
    assert from_csv.sha256 != from_json.sha256 and from_csv.k == 10
    bundled = RELATIONS_DIR / "adj_antonym" / "adj_antonym.json"
    assert read("antonyms.json", bundled.read_bytes()).rows == tuple(load_pairs("adj_antonym"))


def test_the_report_keeps_single_token_pairs_and_says_why_others_are_dropped(
    mapping_checkpoint: PlantedMapping, planted_model
) -> None:
    (src, dst), *_ = mapping_checkpoint.pairs
    extra = ((MULTI_TOKEN, dst), (src, MULTI_TOKEN), (MULTI_TOKEN, MULTI_TOKEN), (src, dst))
    relation = read("mine.csv", mapping_checkpoint.csv((*mapping_checkpoint.pairs, *extra)))
    report = pair_report(planted_model.tokenizer, relation)
    assert list(report.columns) == ["src", "dst", "status"]
    assert report["status"].tolist() == ["kept"] * 40 + [
        "multi-token source",
        "multi-token target",
        "multi-token source",
        "duplicate",
    ]
    assert set(pair_report(None, relation)["status"]) == {"not yet tokenized", "duplicate"}


def test_the_planted_head_is_found_through_relation_file_and_not_through_reversed_pairs(
    mapping_checkpoint: PlantedMapping, tmp_path: Path
) -> None:
    forward, backward = tmp_path / f"{MAPPING_NAME}.csv", tmp_path / "reversed.csv"
    src = mapping_checkpoint.pairs[0][0]
    forward.write_bytes(mapping_checkpoint.csv((*mapping_checkpoint.pairs, (src, MULTI_TOKEN))))
    backward.write_bytes(mapping_checkpoint.csv(mapping_checkpoint.reversed()))
    out = tmp_path / "heads.csv"
    argv = cli(mapping_checkpoint, out, "--relations", "none", "--relation-file", str(forward))
    assert main([*argv, "--relation-file", str(backward), "--relation-k", "reversed=5"]) == 0
    table = pd.read_csv(out).set_index(["layer", "head"])
    assert [c for c in table.columns if c.startswith(("score_", "suppression_"))] == [
        f"score_{MAPPING_NAME}",
        "score_reversed",
        f"suppression_{MAPPING_NAME}",
        "suppression_reversed",
    ]
    assert table[f"score_{MAPPING_NAME}"].idxmax() == mapping_checkpoint.head
    assert table.loc[mapping_checkpoint.head, f"score_{MAPPING_NAME}"] == 1.0
    assert table.loc[mapping_checkpoint.head, "label"] == MAPPING_NAME
    others = table.drop(index=[mapping_checkpoint.head])
    assert (others[f"score_{MAPPING_NAME}"] < 0.15).all()
    assert (table["score_reversed"] < 0.15).all() and (table["suppression_reversed"] < 0.15).all()
    settings = json.loads(settings_path(out).read_text())
    assert settings["relation_files"] == [
        {
            "name": MAPPING_NAME,
            "sha256": read_relation_path(forward).sha256,
            "k": 10,
            "rows": 41,
            "kept": 40,
            "dropped": {"duplicate": 0, "multi-token source": 0, "multi-token target": 1},
        },
        {
            "name": "reversed",
            "sha256": read_relation_path(backward).sha256,
            "k": 5,
            "rows": 40,
            "kept": 40,
            "dropped": {"duplicate": 0, "multi-token source": 0, "multi-token target": 0},
        },
    ]
    assert {r["name"]: r["k"] for r in settings["relations"]} == {MAPPING_NAME: 10, "reversed": 5}


def test_relation_files_sit_among_the_bundled_relations_in_name_order(
    mapping_checkpoint: PlantedMapping, planted_model
) -> None:
    relation = read("aaa_first.csv", mapping_checkpoint.csv())
    settings = ClassifySettings(("name_copying",), patterns=None, relation_files=(relation,))
    table = classify_heads(planted_model, settings).table
    assert list(table.columns)[5:9] == [  # after model, revision, commit, layer, head
        "score_aaa_first",
        "score_name_copying",
        "suppression_aaa_first",
        "suppression_name_copying",
    ]


BAD_FILES = [
    ("empty.csv", b"", "relation file 'empty.csv' is empty"),
    ("blank.csv", b"  \n\n", "relation file 'blank.csv' is empty"),
    ("header.csv", b"source,target\na,b\n", "the first row must name the columns src and dst"),
    ("short.csv", b"src,dst\na\n", "relation file 'short.csv' row 2: no dst cell"),
    ("hole.csv", b"src,dst\na, \n", "relation file 'hole.csv' row 2: empty dst"),
    ("few.csv", b"src,dst\n" + b"a,b\n" * 40, "has 1 distinct pairs; a relation needs at least 30"),
    ("broken.json", b'[["a", "b"]', "relation file 'broken.json' is not valid JSON"),
    ("object.json", b'{"a": "b"}', "expected a JSON list of [src, dst] pairs"),
    ("triple.json", b'[["a", "b", "c"]]', "item 1: expected a [src, dst] pair of strings"),
    ("deep.json", b"[" * 100_000, "relation file 'deep.json' is not valid JSON"),
    ("junk.csv", bytes(range(256)) * 4, "relation file 'junk.csv' is binary"),
    ("latin.csv", "src,dst\ncafé,thé\n".encode("latin-1"), "is not UTF-8 text (byte offset 11)"),
    ("huge.csv", b"src,dst\n" + b"a,b\n" * MAX_FILE_BYTES, "is larger than 2 MiB"),
    ("adj_antonym.csv", b"src,dst\n", "the name adj_antonym is taken by a bundled relation"),
    ("Previous Token.csv", b"src,dst\n", "the name previous_token is taken"),
    ("%%%.csv", b"src,dst\n", "its name has no letters or digits"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_every_bad_file_is_one_line_exit_code_2_and_nothing_written(
    name: str, data: bytes, message: str, mapping_checkpoint: PlantedMapping, tmp_path: Path, capsys
) -> None:
    with pytest.raises(InputError) as raised:
        read(name, data)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    path = tmp_path / name
    path.write_bytes(data)
    out = tmp_path / "x.csv"
    assert run_cli(main, cli(mapping_checkpoint, out, "--relation-file", str(path))) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and message in error
    assert not out.exists() and not settings_path(out).exists()


def test_a_huge_file_is_refused_after_reading_a_bounded_number_of_bytes() -> None:
    class Endless(io.RawIOBase):
        served = 0

        def readinto(self, buffer) -> int:
            buffer[:] = b"a" * len(buffer)
            self.served += len(buffer)
            return len(buffer)

        def readable(self) -> bool:
            return True

    stream = Endless()
    with pytest.raises(InputError, match="larger than 2 MiB"):
        read_relation_file("endless.csv", stream)  # type: ignore[arg-type]
    assert stream.served <= MAX_FILE_BYTES + 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--relation-file", "{a}", "--relation-file", "{a_json}"], "both named mine; rename"),
        (["--relation-file", "{a}", "--relation-k", "other=5"], "--relation-k 'other=5'"),
        (["--relation-file", "{a}", "--relation-k", "mine=0"], "k=0 must be a whole number from"),
        (["--relation-k", "mine=5"], "none (no --relation-file)"),
        (["--relation-file", "{missing}"], "cannot read relation file"),
        (["--relation-file", "{few_tokens}"], "29 of its 40 pairs are single tokens"),
    ],
)
def test_bad_relation_options_are_one_line_and_exit_code_2(
    argv: list[str], message: str, mapping_checkpoint: PlantedMapping, tmp_path: Path, capsys
) -> None:
    pairs = mapping_checkpoint.pairs
    paths = {
        "{a}": tmp_path / "mine.csv",
        "{a_json}": tmp_path / "mine.json",
        "{missing}": tmp_path / "missing.csv",
        "{few_tokens}": tmp_path / "few_tokens.csv",
    }
    paths["{a}"].write_bytes(mapping_checkpoint.csv())
    paths["{a_json}"].write_text(json.dumps([list(p) for p in pairs]))
    few = [*pairs[:29], *((src, f"{MULTI_TOKEN}") for src, _ in pairs[29:])]
    paths["{few_tokens}"].write_bytes(mapping_checkpoint.csv(tuple(few)))
    out = tmp_path / "x.csv"
    argv = [str(paths.get(arg, arg)) for arg in argv]
    assert run_cli(main, cli(mapping_checkpoint, out, *argv)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
    assert not out.exists()


def test_relation_names_are_safe_column_names() -> None:
    assert relation_name("Ünïcode café-pairs.v2.CSV") == "ünïcode_café_pairs_v2"
    assert relation_name("/some/dir/capitals.json") == "capitals"


def test_public_mode_caps_the_pairs_of_a_file(mapping_checkpoint: PlantedMapping) -> None:
    relation = read("mine.csv", mapping_checkpoint.csv())
    public_mode_from({}).check_relation_file(relation)
    capped = public_mode_from(
        {"HEAD_ATLAS_PUBLIC": "1", "HEAD_ATLAS_PUBLIC_MAX_RELATION_PAIRS": 39}
    )
    with pytest.raises(
        InputError, match="mine has 40 pairs; this public deployment takes at most 39"
    ):
        capped.check_relation_file(relation)
    assert public_mode_from({"HEAD_ATLAS_PUBLIC": "1"}).max_relation_pairs == 5000


def test_a_cached_table_is_reused_for_the_same_content_under_another_name_only(
    mapping_checkpoint: PlantedMapping, tmp_path: Path
) -> None:
    cache, models = ResultCache(tmp_path / "cache"), ResidentModel()

    def run(name: str, data: bytes):
        settings = ClassifySettings(
            relations=("name_copying",), patterns=None, relation_files=(read(name, data),)
        )
        request = RunRequest(str(mapping_checkpoint.path), device="cpu", settings=settings)
        return classify_cached(request, model_key(request), models, cache)

    first = run("first.csv", mapping_checkpoint.csv())
    assert first.origin == "computed"
    renamed = run("zzz_renamed.csv", mapping_checkpoint.csv())
    assert renamed.origin == "memory"
    expected = first.result.table.rename(
        columns={"score_first": "score_zzz_renamed", "suppression_first": "suppression_zzz_renamed"}
    ).replace({"label": {"first": "zzz_renamed"}})
    columns = ["score_name_copying", "score_zzz_renamed"]
    columns += ["suppression_name_copying", "suppression_zzz_renamed"]
    pd.testing.assert_frame_equal(
        renamed.result.table, expected[[*expected.columns[:5], *columns, "label", "score"]]
    )
    assert (
        renamed.result.table.set_index(["layer", "head"]).loc[mapping_checkpoint.head, "label"]
        == "zzz_renamed"
    )
    assert [r["name"] for r in renamed.result.settings["relation_files"]] == ["zzz_renamed"]
    assert run("zzz_renamed.csv", mapping_checkpoint.csv()[:-1] + b"\n\n").origin == "computed"
    changed = mapping_checkpoint.csv(mapping_checkpoint.reversed())
    after = run("first.csv", changed)
    assert after.origin == "computed"
    assert (after.result.table["score_first"] < 0.15).all()  # the reversed pairs' scores
    assert run("other.csv", changed).origin == "memory"
