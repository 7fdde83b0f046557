"""Relation datasets (`data/relations/<name>/<name>.json`) tokenized for operation scores.

MAPS rules (docs/methods.md §2): each word is tokenized with a leading space, a pair is kept
only when source and target are single tokens, and a relation is scored only when at least
`MIN_PAIRS` pairs survive; the others are skipped and reported with their surviving count.
Pairs are kept as listed (repeats included), so a score is a mean over the dataset's rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from lib.core.errors import InputError
from lib.core.paths import RELATIONS_DIR

if TYPE_CHECKING:  # a type only: listing relations needs no transformers import
    from transformers import PreTrainedTokenizerBase

MIN_PAIRS = 30
SKIP_RULE = (
    f"A relation is scored when at least {MIN_PAIRS} of its listed pairs have a source and a "
    "target that are each one token of this model's tokenizer, each word read with its "
    "leading space (the published rule); the others are skipped."
)
# Copying relations are scored with k = 1 (the target must be the row's top token), all
# others with k = 10, as in the paper.
COPYING_RELATIONS = frozenset({"general_copying_english_500", "name_copying"})


@dataclass(frozen=True)
class TokenizedRelation:
    """A valid relation: parallel source / target token ids of its single-token pairs."""

    name: str
    k: int
    src: tuple[int, ...]
    dst: tuple[int, ...]


@dataclass(frozen=True)
class SkippedRelation:
    """A relation with fewer than `MIN_PAIRS` single-token pairs for this tokenizer:
    `n_pairs` of its `n_listed` pairs (rows of its dataset) are single tokens."""

    name: str
    n_pairs: int
    n_listed: int

    def reason(self) -> str:
        """Why it is skipped, with its counts: `28 of 98 pairs are single tokens; 30 needed`."""
        return f"{self.n_pairs} of {self.n_listed} pairs are single tokens; {MIN_PAIRS} needed"


@cache
def relation_names() -> tuple[str, ...]:
    """Names of the shipped relations (their folder names), sorted."""
    return tuple(sorted(path.parent.name for path in RELATIONS_DIR.glob("*/*.json")))


def relation_k(name: str) -> int:
    return 1 if name in COPYING_RELATIONS else 10


def load_pairs(name: str) -> list[tuple[str, str]]:
    """The `[source, target]` word pairs of relation `name`, as listed."""
    path = RELATIONS_DIR / name / f"{name}.json"
    return [(src, dst) for src, dst in json.loads(path.read_text())]


def check_relations(names: Iterable[str]) -> tuple[str, ...]:
    """`names` without repeats, in catalog order; `InputError` naming any unknown relation."""
    known, asked = relation_names(), set(names)
    unknown = sorted(asked - set(known))
    if unknown:
        raise InputError(
            f"unknown relation {', '.join(unknown)}; use all, none or names from "
            f"{RELATIONS_DIR.name}/: {', '.join(known)}"
        )
    return tuple(name for name in known if name in asked)


def parse_relations(text: str) -> tuple[str, ...]:
    """`all`, `none` (only your own relation files are scored) or a comma-separated list of
    relation names, validated, in catalog order."""
    if text.strip() in ("all", "none"):
        return relation_names() if text.strip() == "all" else ()
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise InputError("no relation named; use all, none or a comma-separated list of names")
    return check_relations(names)


def word_tokens(tokenizer: PreTrainedTokenizerBase, word: str) -> tuple[int, ...]:
    """The tokens of `" " + word`: the word with its leading space, as a prompt holds it."""
    return tuple(tokenizer.encode(" " + word, add_special_tokens=False))


def single_token(tokenizer: PreTrainedTokenizerBase, word: str) -> int | None:
    """The id of `" " + word` when it is exactly one token, else None."""
    ids = word_tokens(tokenizer, word)
    return ids[0] if len(ids) == 1 else None


@dataclass(frozen=True)
class PromptRelation:
    """A relation's pairs as the in-context check puts them in prompts: each source a token
    sequence (its leading space included) read at its last token, each target one token.
    `multi_token`: every source here is several tokens (else every source is one token)."""

    name: str
    k: int
    src: tuple[tuple[int, ...], ...]
    dst: tuple[int, ...]
    multi_token: bool = False

    @classmethod
    def of(cls, relation: TokenizedRelation | PromptRelation) -> PromptRelation:
        """`relation` as prompts hold it (a single-token relation's sources become 1-tuples)."""
        if isinstance(relation, PromptRelation):
            return relation
        return cls(relation.name, relation.k, tuple((s,) for s in relation.src), relation.dst)


def multi_token_relation(tokenizer: PreTrainedTokenizerBase, name: str) -> PromptRelation:
    """The pairs of bundled relation `name` whose source is several tokens and whose target is
    one (MAPS's multi-token experiment), as listed."""
    pairs = [(word_tokens(tokenizer, a), single_token(tokenizer, b)) for a, b in load_pairs(name)]
    kept = [(src, dst) for src, dst in pairs if len(src) > 1 and dst is not None]
    return PromptRelation(
        name,
        relation_k(name),
        tuple(src for src, _ in kept),
        tuple(dst for _, dst in kept),
        multi_token=True,
    )


def single_token_relation(tokenizer: PreTrainedTokenizerBase, name: str) -> TokenizedRelation:
    """The pairs of bundled relation `name` whose source and target are single tokens, as
    listed, however few."""
    pairs = [(single_token(tokenizer, a), single_token(tokenizer, b)) for a, b in load_pairs(name)]
    kept = [(src, dst) for src, dst in pairs if src is not None and dst is not None]
    return TokenizedRelation(
        name, relation_k(name), tuple(src for src, _ in kept), tuple(dst for _, dst in kept)
    )


def tokenize_relations(
    tokenizer: PreTrainedTokenizerBase, names: tuple[str, ...]
) -> tuple[tuple[TokenizedRelation, ...], tuple[SkippedRelation, ...]]:
    """Split `names` into valid tokenized relations and skipped ones (too few pairs)."""
    valid: list[TokenizedRelation] = []
    skipped: list[SkippedRelation] = []
    for name in names:
        relation = single_token_relation(tokenizer, name)
        if len(relation.src) < MIN_PAIRS:
            skipped.append(SkippedRelation(name, len(relation.src), len(load_pairs(name))))
        else:
            valid.append(relation)
    return tuple(valid), tuple(skipped)
