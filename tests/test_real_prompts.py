"""Prompts as the model sees them, on Pythia's real tokenizer: the in-context check's prompts
(template pieces joined around the source word's tokens) are the whole prompt's tokens, and
the position it reads holds the token the static score uses."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest
import torch

from lib.checkpoints.loader import load_model
from lib.core.errors import InputError, run_cli
from lib.dynamic import main
from lib.fixtures.pythia_tokenizer import pythia_tokenizer
from lib.fixtures.synthetic import build_checkpoint, relation_words
from lib.scoring.dynamic import (
    DEFAULT_TEMPLATES,
    check_templates,
    dynamic_scores,
    prompt_batch,
    settings_path,
    summary_path,
    template_tokens,
)
from lib.scoring.relations import multi_token_relation, single_token, word_tokens
from lib.tables.in_context import VARIANTS
from tests.reference import reference_dynamic_scores

TEMPLATES = (
    *DEFAULT_TEMPLATES,
    "Translate: <X> ->",
    "Q: <X>->",
    " <X>, in one word:",
    "Say <X>  now  ",
)


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_position_read_holds_the_source_words_own_last_token(template):
    tokenizer = pythia_tokenizer()
    (template,) = check_templates([template])
    words = sorted({word.strip() for word in relation_words()})
    sources = [word_tokens(tokenizer, word) for word in words]
    pieces = template_tokens(tokenizer, template)
    ids, position, last = prompt_batch(tokenizer, [template], sources, pad=0)
    whole = tokenizer([template.replace("<X>", w) for w in words], add_special_tokens=False)
    merged = []
    for w, (word, source) in enumerate(zip(words, sources, strict=True)):
        expected = whole["input_ids"][w]  # the prompt as the model sees it
        assert ids[w, : len(expected)].tolist() == expected and last[w] == len(expected) - 1
        read = int(position[w])
        if tuple(expected[read - len(source) + 1 : read + 1]) != source:
            merged.append(word)
            continue
        assert [*pieces.prefix, *source, *pieces.suffix] == expected  # what batches are sized by
        if len(source) == 1:  # the very token whose row the static score reads
            assert expected[read] == single_token(tokenizer, word)
    # Only a word ending in punctuation merges with punctuation right after the slot
    # ("Bros." + "," is " Bros" ".,"); there the position read is the merged token.
    assert all(not word[-1].isalnum() for word in merged) and len(merged) <= len(words) // 100
    assert merged == [] or not template.split("<X>")[1].startswith(" ")


def test_a_letter_after_the_slot_or_spaces_before_it_are_refused():
    # " dog" + "s" would be " dogs", and "  " + " dog" is "   " "dog" (runs of spaces are
    # tokens of their own): the word's token would not be in the prompt.
    with pytest.raises(InputError, match="joins the source word"):
        check_templates(["Many <X>s are"])
    with pytest.raises(InputError, match="one space before <X>, not more"):
        check_templates(["About  <X>"])


def test_multi_token_scores_product_by_company_s_424_multi_token_pairs(tmp_path):
    folder = build_checkpoint(tmp_path / "tiny", shape=(1, 2, 16))  # Pythia's tokenizer
    out = tmp_path / "dyn.csv"
    argv = ["--model", str(folder), "--relations", "product_by_company", "--multi-token"]
    assert run_cli(main, [*argv, "--device", "cpu", "--out", str(out)]) == 0
    table, summary = pd.read_csv(out), pd.read_csv(summary_path(out))
    assert len(table) == 2 and set(table["relation"]) == {"product_by_company"}
    assert (table["n_pairs"] == 19).all() and (table["n_multi_token"] == 424).all()
    assert table["static_score"].isna().all()  # 19 single-token pairs: no static score
    counts = summary.groupby("pairs")["n_pairs"].unique().to_dict()
    assert {kind: list(n) for kind, n in counts.items()} == {
        "multi-token": [424],
        "single-token": [19],
    }
    assert summary["pearson_r"].isna().all()
    settings = json.loads(settings_path(out).read_text())
    assert settings["multi_token"] and settings["skipped_relations"] == []


@pytest.mark.parametrize("template", ["This is a document about <X>", "No <X> means no"])
def test_multi_token_pairs_equal_the_per_prompt_reference(tmp_path, template):
    folder = build_checkpoint(tmp_path, shape=(2, 2, 16), seed=1)
    loaded = load_model(str(folder), device="cpu", dtype="float32")
    # k = 5000 of 50277: random heads hit often enough for the comparison to bite.
    multi = replace(multi_token_relation(loaded.tokenizer, "work_location"), k=5000)
    engine = dynamic_scores(loaded, (multi,), (template,))
    reference = reference_dynamic_scores(
        loaded.model, loaded.tokenizer, "work_location", template, multi_token=True, k=5000
    )
    assert sum(float(reference[name].sum()) for name in VARIANTS) > 0  # something to compare
    for v, name in enumerate(VARIANTS):
        assert torch.equal(torch.tensor(engine.fractions[v, :, :, 0, 0]), reference[name])
