"""Prompts as the model sees them, on Pythia's real tokenizer: the in-context check's prompts
(template pieces joined around the source word's tokens) are the whole prompt's tokens, and
the position it reads holds the token the static score uses."""

from __future__ import annotations

import pytest

from lib.core.errors import InputError
from lib.fixtures.pythia_tokenizer import pythia_tokenizer
from lib.fixtures.synthetic import relation_words
from lib.scoring.dynamic import (
    DEFAULT_TEMPLATES,
    check_templates,
    prompt_batch,
    template_tokens,
)
from lib.scoring.relations import single_token, word_tokens

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
