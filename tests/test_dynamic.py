"""Dynamic (in-context) scores: the batched engine against the slow per-prompt reference,
planted heads, batching and padding, the agreement summary and the command line."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from lib.checkpoints.loader import load_model
from lib.core.errors import InputError, run_cli
from lib.dynamic import main
from lib.scoring.dynamic import (
    DEFAULT_TEMPLATES,
    check_templates,
    dynamic_scores,
    in_context,
    settings_path,
    summary_path,
)
from lib.scoring.relations import tokenize_relations
from lib.tables.in_context import VARIANTS
from tests.conftest import MAPPING_NAME
from tests.reference import reference_dynamic_scores

RELATIONS = ("country_to_capital_wikidata", "general_copying_english_500")


@pytest.fixture(scope="module")
def planted_in_context(planted_model):
    """Static and dynamic scores of the planted model for `RELATIONS`, default templates."""
    return in_context(planted_model, RELATIONS)


def scores_of(result, relation: str, column: str) -> dict[tuple[int, int], float]:
    part = result.table[result.table["relation"] == relation]
    return {
        (int(layer), int(head)): float(score)
        for layer, head, score in zip(part["layer"], part["head"], part[column], strict=True)
    }


@pytest.mark.parametrize("template", ["The story of <X> contains", "This is a document about <X>"])
def test_engine_equals_the_per_prompt_per_head_reference(planted_model, template):
    relations, _ = tokenize_relations(planted_model.tokenizer, ("country_to_capital_wikidata",))
    engine = dynamic_scores(planted_model, relations, (template,))
    reference = reference_dynamic_scores(
        planted_model.model, planted_model.tokenizer, relations[0].name, template
    )
    for v, name in enumerate(VARIANTS):
        # Hit counts over the same pairs: equal fractions means equal counts, exactly.
        assert torch.equal(torch.tensor(engine.fractions[v, :, :, 0, 0]), reference[name])


def test_planted_heads_score_high_in_context_and_random_heads_low(
    planted_in_context, planted_checkpoint
):
    copying = planted_checkpoint.where("general_copying_english_500")
    suppression = planted_checkpoint.where("suppression: general_copying_english_500")
    capital = planted_checkpoint.where("country_to_capital_wikidata")
    copy_scores = scores_of(planted_in_context, RELATIONS[1], "dynamic_score")
    # Forced onto the word, the copying head writes the word's own code: its top token.
    assert copy_scores[copying] > 0.95
    assert scores_of(planted_in_context, RELATIONS[1], "dynamic_suppression")[suppression] > 0.95
    assert scores_of(planted_in_context, RELATIONS[0], "dynamic_score")[capital] > 0.9
    for relation, planted in ((RELATIONS[1], copying), (RELATIONS[0], capital)):
        others = scores_of(planted_in_context, relation, "dynamic_score")
        assert max(score for head, score in others.items() if head != planted) < 0.2


def test_summary_reports_r_per_relation_and_variant(planted_in_context):
    summary, table = planted_in_context.summary, planted_in_context.table
    assert list(summary["relation"].unique()) == list(RELATIONS)
    assert len(summary) == len(RELATIONS) * len(VARIANTS)
    for row in summary.itertuples():
        part = table[table["relation"] == row.relation]
        static, dynamic = part[row.static].to_numpy(float), part[row.variant].to_numpy(float)
        assert row.pearson_r == pytest.approx(np.corrcoef(static, dynamic)[0, 1])
        assert row.n_prompts == row.n_pairs * len(DEFAULT_TEMPLATES) and row.n_heads == 12
    copying = summary.set_index(["relation", "variant"]).loc[(RELATIONS[1], "dynamic_score")]
    assert copying["pearson_r"] > 0.9 and copying["spearman_rho"] > 0


def test_batching_and_padding_do_not_change_scores(planted_model):
    relations, _ = tokenize_relations(planted_model.tokenizer, RELATIONS[:1])
    together = dynamic_scores(planted_model, relations)  # all templates padded in one batch
    # 9 prompts a batch: a source's templates are split across batches.
    small_batches = dynamic_scores(planted_model, relations, batch_prompts=9)
    assert np.array_equal(together.fractions, small_batches.fractions)
    for t, template in enumerate(DEFAULT_TEMPLATES):  # alone: no padding at all
        alone = dynamic_scores(planted_model, relations, (template,))
        assert np.array_equal(alone.fractions[..., 0], together.fractions[..., t])


def test_table_columns_and_static_scores_from_classify(planted_in_context, planted_classification):
    table = planted_in_context.table
    assert list(table.columns) == [
        "model",
        "revision",
        "commit",
        "layer",
        "head",
        "relation",
        "k",
        "n_pairs",
        "n_multi_token",
        "static_score",
        "static_suppression",
        *VARIANTS,
    ]
    assert len(table) == 12 * len(RELATIONS)
    static = planted_classification.table.set_index(["layer", "head"])
    for row in table.itertuples():
        assert row.static_score == static.loc[(row.layer, row.head), f"score_{row.relation}"]
    scores = table[["static_score", "static_suppression", *VARIANTS]]
    assert ((scores >= 0) & (scores <= 1)).all().all()


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ((), "no template given"),
        (("The story of X",), "must hold <X> exactly once"),
        (("The story of<X>",), "after a space"),
        (("a <X> b <X>",), "exactly once"),
        (("a <X>", "a <X>"), "listed twice"),
    ],
)
def test_bad_templates_are_refused(templates, message):
    with pytest.raises(InputError, match=message):
        check_templates(templates)


def test_command_line_writes_table_summary_and_settings(planted_checkpoint, tmp_path):
    templates = tmp_path / "templates.txt"
    templates.write_text("The story of <X> contains\n\nNo <X> means no\n")
    out = tmp_path / "dyn.csv"
    argv = ["--model", str(planted_checkpoint.path), "--device", "cpu"]
    argv += ["--relations", "name_copying", "--templates", str(templates), "--out", str(out)]
    assert main(argv) == 0
    table, summary = pd.read_csv(out), pd.read_csv(summary_path(out))
    assert len(table) == 12 and set(table["relation"]) == {"name_copying"}
    assert list(summary["variant"]) == list(VARIANTS)
    settings = json.loads(settings_path(out).read_text())
    assert settings["templates"] == ["The story of <X> contains", "No <X> means no"]
    assert settings["compute_dtype"] == "float32" and settings["relations"][0]["k"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--relations", "capitals"], "unknown relation capitals"),
        (["--templates", "{bad}"], "must hold <X> exactly once"),
        (["--templates", "/no/such/file.txt"], "cannot read templates file"),
        (["--dtype", "int8"], "invalid choice: 'int8'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    extra, message, planted_checkpoint, tmp_path, capsys
):
    bad = tmp_path / "bad.txt"
    bad.write_text("no slot here\n")
    extra = [str(bad) if arg == "{bad}" else arg for arg in extra]
    out = tmp_path / "x.csv"
    argv = ["--model", str(planted_checkpoint.path), *extra, "--out", str(out)]
    assert run_cli(main, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and message in error
    assert not out.exists()


def test_a_bfloat16_model_is_scored_in_float32_and_left_as_it_is(planted_checkpoint):
    stored = load_model(str(planted_checkpoint.path), device="cpu", dtype="bfloat16")
    upcast = replace(stored, model=copy.deepcopy(stored.model).float(), dtype=torch.float32)
    relations, _ = tokenize_relations(stored.tokenizer, RELATIONS[:1])
    template = (DEFAULT_TEMPLATES[1],)
    scores = dynamic_scores(stored, relations, template)
    # The same numbers as the float32 copy of the rounded weights: every step ran in float32.
    assert np.array_equal(scores.fractions, dynamic_scores(upcast, relations, template).fractions)
    assert {p.dtype for p in stored.model.parameters()} == {torch.bfloat16}


def test_a_relation_file_is_checked_in_context_through_the_command_line(
    mapping_checkpoint, tmp_path, capsys
):
    forward, backward = tmp_path / f"{MAPPING_NAME}.csv", tmp_path / "reversed.csv"
    forward.write_bytes(mapping_checkpoint.csv())
    backward.write_bytes(mapping_checkpoint.csv(mapping_checkpoint.reversed()))
    out = tmp_path / "dyn.csv"
    argv = ["--model", str(mapping_checkpoint.path), "--device", "cpu", "--relations", "none"]
    argv += ["--relation-file", str(forward), "--relation-file", str(backward)]
    assert main([*argv, "--relation-k", "reversed=5", "--out", str(out)]) == 0
    table = pd.read_csv(out).set_index(["relation", "layer", "head"]).sort_index()
    assert set(table.index.get_level_values("relation")) == {MAPPING_NAME, "reversed"}
    planted = table.loc[(MAPPING_NAME, *mapping_checkpoint.head)]
    assert planted["static_score"] == 1.0 and planted["dynamic_score"] > 0.9
    others = table.loc[MAPPING_NAME].drop(index=[mapping_checkpoint.head])
    assert (others["dynamic_score"] < 0.2).all()
    assert (table.loc["reversed", "dynamic_score"] < 0.2).all()
    assert table.loc[("reversed", *mapping_checkpoint.head), "k"] == 5
    settings = json.loads(settings_path(out).read_text())
    assert [r["name"] for r in settings["relation_files"]] == [MAPPING_NAME, "reversed"]
    assert f"relation file {MAPPING_NAME}" in capsys.readouterr().err
