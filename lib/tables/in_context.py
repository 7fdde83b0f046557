"""The columns of the in-context (dynamic) table and what each means: shared by the engine
(`lib.scoring.dynamic`), its charts and the pages, which import no torch."""

VARIANTS = (
    "dynamic_score",
    "dynamic_suppression",
    "dynamic_score_in_context",
    "dynamic_suppression_in_context",
)
"""Score columns, in the order of `DynamicScores.fractions`' first axis."""
STATIC_TWIN = {
    "dynamic_score": "static_score",
    "dynamic_suppression": "static_suppression",
    "dynamic_score_in_context": "static_score",
    "dynamic_suppression_in_context": "static_suppression",
}
"""The static score each dynamic score is compared with."""
VARIANT_DEFINITIONS = {
    "dynamic_score": "fraction of (pair, template) prompts whose target is among the top k "
    "of the head's output with attention forced onto the source word, read through the "
    "unembedding (docs/methods.md §8)",
    "dynamic_suppression": "the same on the negated logits: the target among the bottom k",
    "dynamic_score_in_context": "as dynamic_score, with the head's own attention",
    "dynamic_suppression_in_context": "as dynamic_suppression, with the head's own attention",
    "static_score": "the operation score read from parameters (lib.scoring.operations)",
    "static_suppression": "the suppression score read from parameters (lib.scoring.operations)",
}
"""One line per column of the dynamic table, shown next to its numbers."""
SINGLE_TOKEN, MULTI_TOKEN = "single-token", "multi-token"
"""The summary's `pairs` column: which of a relation's pairs a row's correlations are over,
those whose source is one token or those whose source is several (`--multi-token`)."""
PAIR_COLUMNS = {
    "n_pairs": "pairs whose source and target are single tokens",
    "n_multi_token": "pairs whose source is several tokens and target one, read at the "
    "source's last token (--multi-token; 0 without it)",
}
"""The dynamic table's pair counts and what each counts."""
