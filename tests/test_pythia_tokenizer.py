"""The shipped GPT-NeoX-20B tokenizer: its provenance checks, and the relations it keeps."""

from __future__ import annotations

from lib.core.paths import PYTHIA_TOKENIZER_DIR
from lib.fixtures.pythia_tokenizer import PYTHIA_TOKENIZER_SIZE, pythia_tokenizer


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
