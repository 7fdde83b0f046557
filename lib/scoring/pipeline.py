"""Classify every attention head of a GPT-NeoX (Pythia) model: the per-head result table.

    python -m lib.classify --model ID_OR_FOLDER [--revision R] [--device auto|cpu|cuda]
        [--dtype auto|float32|bfloat16|float16] [--relations all|none|a,b,...]
        [--relation-file FILE ...] [--relation-k NAME=K ...] [--no-patterns]
        [--threshold NAME=VALUE ...] --out heads.csv

One row per (layer, head): `model`, `revision`, `commit` (the hub commit the revision resolved
to, or a local folder's content fingerprint: docs/methods.md §7), `layer`, `head`,
`score_<relation>` and `suppression_<relation>` for every valid relation, bundled or from a
relation file (`lib.scoring.relation_files`), in name order (`lib.scoring.operations`), `previous_token`,
`duplicate_token`, `induction`, `first_token` (`lib.scoring.patterns`, unless `--no-patterns`), then
`label` and `score` (`label_heads`). The settings the table was made with go to a sidecar
`<csv stem>.settings.json` next to the CSV, which stays a plain one-header table; the two are
written as a pair, the sidecar recording the CSV's checksum (`lib.tables.result_files`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import transformers
from tqdm import tqdm  # a transformers dependency
from transformers import PreTrainedTokenizerBase

from lib.checkpoints.loader import (
    DEVICES,
    DTYPES,
    LoadedModel,
    check_source,
    dtype_name,
    load_model,
)
from lib.core.errors import CliParser, InputError, check_writable, run_cli
from lib.core.progress import Progress, subrange
from lib.scoring.operations import DEFAULT_BYTE_BUDGET, operation_scores
from lib.scoring.patterns import (
    DEFAULT_PATTERN_SETTINGS,
    PATTERNS,
    PatternSettings,
    ordinary_token_ids,
    pattern_scores,
)
from lib.scoring.provenance import scoring_code_digest
from lib.scoring.relation_files import (
    CustomRelation,
    add_relation_file_options,
    check_relation_files,
    relation_file_summary,
    relation_files_from,
    tokenize_relation_file,
)
from lib.scoring.relations import (
    MIN_PAIRS,
    SkippedRelation,
    TokenizedRelation,
    check_relations,
    parse_relations,
    relation_names,
    tokenize_relations,
)
from lib.tables.labels import SUPPRESSION_LABEL, UNCLASSIFIED
from lib.tables.result_files import check_pair_target, write_pair

LABEL_ORDER = (
    "the highest passing score wins; ties go to the first in this order: relation scores "
    "(relations in name order), then suppression scores (same order), then patterns "
    f"({', '.join(PATTERNS)})"
)


@dataclass(frozen=True)
class Thresholds:
    """A finding labels a head when its score is at least its threshold (fractions).

    `operation` (score or suppression score of any relation): 0.15, the threshold reported
    for the MAPS paper. `previous_token`, `duplicate_token`, `induction`: 0.4, the value in
    common use for these detectors. `first_token`: 0.9, because attending to position 0 is
    the default "sink" of many heads with nothing to do, so only heads that put nearly all
    their attention there are labelled by it.
    """

    operation: float = 0.15
    previous_token: float = 0.4
    duplicate_token: float = 0.4
    induction: float = 0.4
    first_token: float = 0.9

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0 <= value <= 1:
                raise InputError(f"threshold {name}={value} is not a fraction in [0, 1]")


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


def findings(columns: Sequence[str], thresholds: Thresholds) -> list[tuple[str, str, float]]:
    """`(column, label, threshold)` of every finding in `columns`, in the tie-break order."""
    scores = [c for c in columns if c.startswith("score_")]
    suppressions = [c for c in columns if c.startswith("suppression_")]
    return [
        *((c, c.removeprefix("score_"), thresholds.operation) for c in scores),
        *(
            (c, SUPPRESSION_LABEL + c.removeprefix("suppression_"), thresholds.operation)
            for c in suppressions
        ),
        *((p, p, getattr(thresholds, p)) for p in PATTERNS if p in columns),
    ]


def label_heads(table: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """`table` with `label` and `score`: the head's highest-scoring finding among those at or
    above their threshold (ties: `LABEL_ORDER`), else `unclassified` with score 0."""
    candidates = findings(list(table.columns), thresholds)
    if not candidates:
        return table.assign(label=UNCLASSIFIED, score=0.0)
    values = table[[column for column, _, _ in candidates]].to_numpy(dtype=float)
    passing = values >= np.array([threshold for _, _, threshold in candidates])
    masked = np.where(passing, values, -np.inf)
    best = masked.argmax(axis=1)  # first maximum = tie-break order
    classified = passing.any(axis=1)
    names = np.array([label for _, label, _ in candidates], dtype=object)
    return table.assign(
        label=np.where(classified, names[best], UNCLASSIFIED),
        score=np.where(classified, masked[np.arange(len(table)), best], 0.0),
    )


def classified_heads(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of heads with a label other than `unclassified`.

    This is the population of the published layer chart (138 of Pythia 6.9B's 1024 heads):
    binned on `score`, an unclassified head (score 0) would land in the lowest category.
    """
    return table[table["label"] != UNCLASSIFIED]


def run_record(loaded: LoadedModel) -> dict[str, Any]:
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
    (`lib.scoring.relation_files.file_record`). A file with too few kept pairs is an `InputError`."""
    bundled, skipped = tokenize_relations(tokenizer, settings.relations)
    files = [tokenize_relation_file(tokenizer, r) for r in settings.relation_files]
    relations = tuple(sorted([*bundled, *(r for r, _ in files)], key=lambda r: r.name))
    return relations, skipped, [record for _, record in files]


def classify_heads(
    loaded: LoadedModel,
    settings: ClassifySettings = ClassifySettings(),
    progress: Progress | None = None,
    byte_budget: int = DEFAULT_BYTE_BUDGET,
) -> Classification:
    """Score and label every head of `loaded` (module docstring); `byte_budget` bounds the
    operation scores' working memory and never changes the result."""
    model, config = loaded.model, loaded.model.config
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
    n_layers, n_heads = config.num_hidden_layers, config.num_attention_heads
    layer, head = np.divmod(np.arange(n_layers * n_heads), n_heads)
    columns: dict[str, Any] = {
        "model": loaded.name,
        "revision": loaded.revision,
        "commit": loaded.commit,
        "layer": layer,
        "head": head,
    }
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


def parse_thresholds(assignments: Sequence[str]) -> Thresholds:
    """`NAME=VALUE` overrides of `Thresholds` fields, values fractions in [0, 1]."""
    names = [f.name for f in fields(Thresholds)]
    overrides: dict[str, float] = {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        try:
            overrides[name] = float(value)
        except ValueError:
            overrides[name] = float("nan")  # refused below with the others
        if name not in names or not 0 <= overrides[name] <= 1:
            raise InputError(
                f"--threshold {assignment!r}: expected NAME=VALUE with VALUE in [0, 1] and NAME "
                f"one of {', '.join(names)}"
            )
    return replace(Thresholds(), **overrides)


def bar_progress(bar: Any) -> Progress:
    """A `Progress` that drives a tqdm bar of 1000 steps."""

    def report(fraction: float, message: str) -> None:
        bar.set_description_str(message, refresh=False)
        bar.update(round(fraction * 1000) - bar.n)

    return report


def print_relation_notes(
    skipped: Sequence[SkippedRelation], file_records: Sequence[dict[str, Any]]
) -> None:
    """One stderr line per bundled relation skipped for too few single-token pairs, then one
    per relation file with the pairs it kept and dropped."""
    for relation in skipped:
        print(
            f"skipped {relation.name}: {relation.n_pairs} single-token pairs (< {MIN_PAIRS})",
            file=sys.stderr,
        )
    for record in file_records:
        print(relation_file_summary(record), file=sys.stderr)


def add_scoring_options(parser: argparse.ArgumentParser) -> None:
    """`--device`, `--dtype`, `--relations`, `--relation-file`, `--relation-k`,
    `--no-patterns`, `--threshold`: how to load and what to score, the same for
    `python -m lib.classify` and `python -m lib.sweep`."""
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--dtype", default="auto", choices=list(DTYPES))
    parser.add_argument(
        "--relations", default="all", help="all, none or a,b,... (bundled relation names)"
    )
    add_relation_file_options(parser)
    parser.add_argument("--no-patterns", action="store_true", help="skip attention patterns")
    parser.add_argument(
        "--threshold", action="append", default=[], help="NAME=VALUE, e.g. operation=0.2"
    )


def scoring_settings(args: argparse.Namespace) -> ClassifySettings:
    """The `ClassifySettings` of the options of `add_scoring_options` (relation files read)."""
    return ClassifySettings(
        relations=parse_relations(args.relations),
        relation_files=relation_files_from(args),
        thresholds=parse_thresholds(args.threshold),
        patterns=None if args.no_patterns else DEFAULT_PATTERN_SETTINGS,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(prog="python -m lib.classify", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="hub id or local folder")
    parser.add_argument(
        "--revision",
        default="main",
        help="hub revision: main, a step such as step1000, or a commit",
    )
    add_scoring_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    args = parser.parse_args(argv)
    check_source(args.model)
    check_writable(args.out)
    check_pair_target(args.out)
    settings = scoring_settings(args)
    transformers.utils.logging.disable_progress_bar()  # one bar: ours
    bar_format = "{desc:<45} {bar} {percentage:3.0f}%"
    # Only on a terminal: piped or captured stderr keeps to one line per message.
    quiet = not sys.stderr.isatty()
    with tqdm(total=1000, file=sys.stderr, bar_format=bar_format, disable=quiet) as bar:
        progress = bar_progress(bar)
        loading = subrange(progress, 0, 0.1)
        loaded = load_model(args.model, args.revision, args.device, args.dtype, loading)
        result = classify_heads(loaded, settings, subrange(progress, 0.1, 1))
    try:
        sidecar = write_classification(result, args.out)
    except OSError as error:
        raise InputError(f"cannot write {args.out}: {error.strerror}") from None
    print_relation_notes(result.skipped, result.settings["relation_files"])
    print(f"wrote {args.out} and {sidecar}", file=sys.stderr)
    print(
        f"chart the published figure's population: python -m lib.chart {args.out} "
        "--population operation --out chart.svg (lib.tables.population, docs/methods.md §5)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
