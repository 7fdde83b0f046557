"""The shipped GPT-NeoX-20B tokenizer: its provenance checks, and the relations it keeps."""

from __future__ import annotations

from transformers import AutoTokenizer

from lib.checkpoints.loader import load_model
from lib.core.paths import PYTHIA_TOKENIZER_DIR
from lib.fixtures.pythia_tokenizer import PYTHIA_TOKENIZER_SIZE, pythia_tokenizer
from lib.fixtures.synthetic import build_checkpoint
from lib.scoring.relations import relation_names, tokenize_relations


def test_the_shipped_tokenizer_is_pythias():
    tokenizer = pythia_tokenizer()
    assert len(tokenizer) == PYTHIA_TOKENIZER_SIZE
    assert tokenizer.encode(" the") == [253]
    assert tokenizer.encode("Hello world") == [12092, 1533]
    assert tokenizer.eos_token_id == tokenizer.bos_token_id == 0
    assert tokenizer.convert_ids_to_tokens(1) == "<|padding|>"


def test_the_tokenizer_ships_with_its_provenance_and_licence():
    provenance = (PYTHIA_TOKENIZER_DIR / "PROVENANCE.md").read_text()
    assert "Apache License 2.0" in provenance
    assert "Apache License" in (PYTHIA_TOKENIZER_DIR / "LICENSE-Apache-2.0.txt").read_text()


SKIPPED_FOR_PYTHIA = {
    "adj_superlative": 28,
    "english_to_french": 18,
    "english_to_spanish": 14,
    "product_by_company": 19,
    "word_to_compound": 19,
}
"""Single-token pairs of the relations every Pythia skips (PROVENANCE.md, issue 22)."""


def test_pythias_tokenizer_keeps_the_15_relations_maps_reports_for_pythia():
    valid, skipped = tokenize_relations(pythia_tokenizer(), relation_names())
    assert len(valid) == 15
    assert {s.name: s.n_pairs for s in skipped} == SKIPPED_FOR_PYTHIA
    # The 2,125 single-token pairs are those of all 20 relations; the 15 keep 2,027.
    assert sum(len(relation.src) for relation in valid) == 2027
    assert 2027 + sum(SKIPPED_FOR_PYTHIA.values()) == 2125
    superlative = next(s for s in skipped if s.name == "adj_superlative")
    assert superlative.reason() == "28 of 98 pairs are single tokens; 30 needed"


def test_a_synthetic_checkpoint_carries_pythias_tokenizer_by_default(tmp_path):
    folder = build_checkpoint(tmp_path, shape=(1, 1, 8))
    saved = AutoTokenizer.from_pretrained(folder)
    assert len(saved) == PYTHIA_TOKENIZER_SIZE
    assert saved.encode(" the") == [253]
    assert load_model(str(folder), device="cpu", dtype="float32").model.config.vocab_size == (
        PYTHIA_TOKENIZER_SIZE
    )
