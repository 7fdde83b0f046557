"""The options of the commands that score a checkpoint, what they parse into, and what those
commands say about the relations they scored (`python -m lib.classify`, `lib.sweep`,
`lib.dynamic`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from lib.checkpoints.loader import DEVICES, DTYPES, WEIGHT_READS
from lib.cli.options import group
from lib.cli.output import say
from lib.core.errors import InputError
from lib.scoring.patterns import DEFAULT_PATTERN_SETTINGS
from lib.scoring.pipeline import ClassifySettings
from lib.scoring.relation_files import DEFAULT_K, relation_file_summary, relation_files_from
from lib.scoring.relations import SkippedRelation, parse_relations
from lib.tables.labels import Thresholds


def load_options() -> argparse.ArgumentParser:
    """`--device`, `--dtype`: where and in which stored precision the weights are held (scores
    are computed in float32 either way, docs/methods.md §6)."""
    options = group()
    options.add_argument("--device", default="auto", choices=DEVICES)
    options.add_argument("--dtype", default="auto", choices=list(DTYPES))
    return options


def weights_option() -> argparse.ArgumentParser:
    """`--weights streamed|whole`: read the checkpoint one layer at a time (the default: memory
    about one layer plus the unembedding) or load the whole model (the reference); the scores
    are the same (docs/methods.md §6)."""
    options = group()
    options.add_argument(
        "--weights",
        default=WEIGHT_READS[0],
        choices=WEIGHT_READS,
        help="streamed: read one layer at a time; whole: load the model (same scores)",
    )
    return options


def relation_options() -> argparse.ArgumentParser:
    """`--relations`, `--relation-file FILE` (repeatable) and `--relation-k NAME=K`."""
    options = group()
    options.add_argument(
        "--relations", default="all", help="all, none or a,b,... (bundled relation names)"
    )
    options.add_argument(
        "--relation-file",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="your own relation: a src,dst CSV or a JSON list of [src, dst] pairs (repeatable)",
    )
    options.add_argument(
        "--relation-k",
        action="append",
        default=[],
        metavar="NAME=K",
        help=f"k of a relation file's relation (default {DEFAULT_K})",
    )
    return options


def labelling_options() -> argparse.ArgumentParser:
    """`--no-patterns`, `--threshold NAME=VALUE`: what else is scored, and what labels a head."""
    options = group()
    options.add_argument("--no-patterns", action="store_true", help="skip attention patterns")
    options.add_argument(
        "--threshold", action="append", default=[], help="NAME=VALUE, e.g. operation=0.2"
    )
    return options


def scoring_options() -> list[argparse.ArgumentParser]:
    """Everything a classification depends on besides the checkpoint: how to load it and what
    to score, the same for `python -m lib.classify` and `python -m lib.sweep`."""
    return [load_options(), relation_options(), labelling_options()]


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


def scoring_settings(args: argparse.Namespace) -> ClassifySettings:
    """The `ClassifySettings` of `scoring_options` (relation files read and checked)."""
    return ClassifySettings(
        relations=parse_relations(args.relations),
        relation_files=relation_files_from(args),
        thresholds=parse_thresholds(args.threshold),
        patterns=None if args.no_patterns else DEFAULT_PATTERN_SETTINGS,
    )


def print_relation_notes(
    skipped: Sequence[SkippedRelation], file_records: Sequence[dict[str, Any]]
) -> None:
    """One line per bundled relation skipped for too few single-token pairs, then one per
    relation file with the pairs it kept and dropped."""
    for relation in skipped:
        say(f"skipped {relation.name}: {relation.reason()}")
    for record in file_records:
        say(relation_file_summary(record))
