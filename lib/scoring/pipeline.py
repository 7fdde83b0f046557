"""The scoring pipeline: every attention head of a loaded GPT-NeoX (Pythia) model, scored and
labelled into the per-head result table (`classify_heads`).

One row per (layer, head): `model`, `revision`, `commit` (the hub commit the revision resolved
to, or a local folder's content fingerprint: docs/methods.md §7), `layer`, `head`,
`score_<relation>` and `suppression_<relation>` for every valid relation, bundled or from a
relation file (`lib.scoring.relation_files`), in name order (`lib.scoring.operations`),
`previous_token`, `duplicate_token`, `induction`, `first_token` (`lib.scoring.patterns`, unless
pattern scores are off), then `label` and `score` (`lib.tables.labels.label_heads`). The
settings the table was made with go to a sidecar `<csv stem>.settings.json` next to the CSV,
which stays a plain one-header table; the two are written as a pair, the sidecar recording the
CSV's checksum (`lib.tables.result_files`). The command line is `python -m lib.classify`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import transformers
from transformers import PreTrainedTokenizerBase

from lib.checkpoints.loader import LoadedModel, StreamedCheckpoint, dtype_name
from lib.core.errors import InputError
from lib.core.progress import Progress, subrange
from lib.scoring.operations import DEFAULT_BYTE_BUDGET, operation_scores
from lib.scoring.patterns import (
    DEFAULT_PATTERN_SETTINGS,
    PatternSettings,
    ordinary_token_ids,
    pattern_scores,
)
from lib.scoring.provenance import scoring_code_digest
from lib.scoring.relation_files import CustomRelation, check_relation_files, tokenize_relation_file
from lib.scoring.relations import (
    MIN_PAIRS,
    SkippedRelation,
    TokenizedRelation,
    check_relations,
    relation_names,
    tokenize_relations,
)
from lib.scoring.weights_view import weights_view
from lib.tables.labels import LABEL_ORDER, PATTERNS, Thresholds, label_heads
from lib.tables.result_files import write_pair


@dataclass(frozen=True)
class ClassifySettings:
    """What a table depends on besides the model; frozen and hashable, fit for a cache key.
    `relations` (bundled names) is validated and put in catalog order, `relation_files` (your
    own relations) in name order, so equal sets give equal keys."""

    relations: tuple[str, ...] = relation_names()
    thresholds: Thresholds = Thresholds()
    patterns: PatternSettings | None = DEFAULT_PATTERN_SETTINGS  # None: no pattern scores
    relation_files: tuple[CustomRelation, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "relations", check_relations(self.relations))
        object.__setattr__(self, "relation_files", check_relation_files(self.relation_files))


@dataclass(frozen=True)
class Classification:
    """The per-head `table`, the `settings` it was made with (sidecar JSON), and the relations
    skipped for having fewer than `MIN_PAIRS` single-token pairs."""

    table: pd.DataFrame
    settings: dict[str, Any]
    skipped: tuple[SkippedRelation, ...]


Scored = LoadedModel | StreamedCheckpoint
"""What is scored: a model loaded whole, or a checkpoint read one layer at a time."""


def run_record(loaded: Scored) -> dict[str, Any]:
    """What a sidecar records of the checkpoint and the code behind its numbers: source,
    revision and resolved commit, device, stored dtype, scoring-code digest, library versions."""
    return {
        "model": loaded.name,
        "revision": loaded.revision,
        "commit": loaded.commit,
        "device": str(loaded.device),
        "dtype": dtype_name(loaded.dtype),
        "scoring_code": scoring_code_digest(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def scored_relations(
    tokenizer: PreTrainedTokenizerBase, settings: ClassifySettings
) -> tuple[tuple[TokenizedRelation, ...], tuple[SkippedRelation, ...], list[dict[str, Any]]]:
    """The relations `settings` scores for `tokenizer`: the valid bundled ones and the relation
    files' kept pairs in one order, by name (`LABEL_ORDER`'s tie-break); the bundled ones
    skipped for too few single-token pairs; each relation file's record
    (`lib.scoring.relation_files.file_record`). A file with too few kept pairs is an
    `InputError`."""
    bundled, skipped = tokenize_relations(tokenizer, settings.relations)
    files = [tokenize_relation_file(tokenizer, r) for r in settings.relation_files]
    relations = tuple(sorted([*bundled, *(r for r, _ in files)], key=lambda r: r.name))
    return relations, skipped, [record for _, record in files]


def head_columns(loaded: Scored) -> dict[str, Any]:
    """The per-head table's leading columns, one row per head, layer-major."""
    config = weights_view(loaded).config
    n_layers, n_heads = config.num_hidden_layers, config.num_attention_heads
    layer, head = np.divmod(np.arange(n_layers * n_heads), n_heads)
    return {
        "model": loaded.name,
        "revision": loaded.revision,
        "commit": loaded.commit,
        "layer": layer,
        "head": head,
    }


def classify_heads(
    loaded: Scored,
    settings: ClassifySettings = ClassifySettings(),
    progress: Progress | None = None,
    byte_budget: int = DEFAULT_BYTE_BUDGET,
) -> Classification:
    """Score and label every head of `loaded` (module docstring), a model loaded whole or a
    checkpoint read one layer at a time (`lib.scoring.weights_view`: the same code and the
    same numbers); `byte_budget` bounds the operation scores' working memory and never
    changes the result."""
    model = weights_view(loaded)
    relations, skipped, files = scored_relations(loaded.tokenizer, settings)
    if not relations and not settings.patterns:
        raise InputError(
            f"nothing to score for {loaded.name}: no relation asked for has {MIN_PAIRS} "
            "single-token pairs for its tokenizer and pattern scores are off; score the "
            "patterns or other relations"
        )
    # The pattern pass is one forward over a small batch: a tenth of the bar is plenty.
    split = 0.9 if settings.patterns else 1.0
    ops = operation_scores(model, relations, byte_budget, subrange(progress, 0, split))
    columns = head_columns(loaded)
    for r, relation in enumerate(relations):
        columns[f"score_{relation.name}"] = ops.promotion[:, :, r].ravel()
    for r, relation in enumerate(relations):
        columns[f"suppression_{relation.name}"] = ops.suppression[:, :, r].ravel()
    if settings.patterns:
        token_ids = ordinary_token_ids(loaded.tokenizer)
        patterns = pattern_scores(model, token_ids, settings.patterns, subrange(progress, split, 1))
        for p, name in enumerate(PATTERNS):
            columns[name] = patterns[:, :, p].ravel()
    table = label_heads(pd.DataFrame(columns), settings.thresholds)
    record = {
        **run_record(loaded),
        "relations": [{"name": r.name, "k": r.k, "n_pairs": len(r.src)} for r in relations],
        "skipped_relations": [asdict(s) for s in skipped],
        "relation_files": files,
        "min_pairs": MIN_PAIRS,
        "thresholds": asdict(settings.thresholds),
        "label_order": LABEL_ORDER,
        "patterns": asdict(settings.patterns) if settings.patterns else None,
    }
    return Classification(table, record, skipped)


def write_classification(result: Classification, csv_path: Path) -> Path:
    """Write the table to `csv_path` and its settings to the sidecar, as a pair
    (`lib.tables.result_files.write_pair`); return the sidecar."""
    return write_pair(result.table, result.settings, Path(csv_path))
