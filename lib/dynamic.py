"""Dynamic (in-context) scores of every head, next to its static operation score.

    python -m lib.dynamic --model ID_OR_FOLDER [--revision R] [--device auto|cpu|cuda]
        [--dtype auto|float32|bfloat16|float16] [--relations all|none|a,b,...]
        [--relation-file FILE ...] [--relation-k NAME=K ...] [--templates FILE]
        [--multi-token] [--weights streamed|whole] --out dyn.csv

Writes `dyn.csv`, `dyn.summary.csv` and `dyn.settings.json`; definitions in
`lib.scoring.dynamic` and docs/methods.md §8. The checkpoint is read one layer at a time
(`--weights streamed`, the default) or loaded whole (`--weights whole`, the reference); the
scores are identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lib.checkpoints.loader import check_source, open_for_scoring
from lib.cli.options import model_options, out_option
from lib.cli.output import check_not_input, check_writable, say, write_output
from lib.cli.progress_bar import progress_bar
from lib.cli.scoring_options import (
    load_options,
    print_relation_notes,
    relation_options,
    weights_option,
)
from lib.core.errors import CliParser, run_cli
from lib.core.progress import subrange
from lib.scoring.dynamic import (
    DEFAULT_TEMPLATES,
    SLOT,
    in_context,
    output_paths,
    read_templates,
    write_in_context,
)
from lib.scoring.relation_files import relation_files_from
from lib.scoring.relations import parse_relations


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(
        prog="python -m lib.dynamic",
        description=__doc__.split("\n")[0],
        parents=[
            model_options(),
            load_options(),
            relation_options(),
            weights_option(),
            out_option(),
        ],
    )
    parser.add_argument(
        "--templates", type=Path, help=f"text file, one template per line, each with {SLOT}"
    )
    parser.add_argument(
        "--multi-token",
        action="store_true",
        help="also score the bundled relations' pairs whose source is several tokens (target "
        "one), read at the source's last token; r reported apart (docs/methods.md §8)",
    )
    args = parser.parse_args(argv)
    check_source(args.model)
    check_writable(args.out)
    inputs = [args.model, *args.relation_file, *([args.templates] if args.templates else [])]
    check_not_input(output_paths(args.out), inputs)
    relations = parse_relations(args.relations)
    relation_files = relation_files_from(args)
    templates = read_templates(args.templates) if args.templates else DEFAULT_TEMPLATES
    with progress_bar() as progress:
        loading = subrange(progress, 0, 0.05)
        loaded = open_for_scoring(
            args.model, args.revision, args.device, args.dtype, loading, weights=args.weights
        )
        result = in_context(
            loaded,
            relations,
            templates,
            subrange(progress, 0.05, 1),
            relation_files=relation_files,
            multi_token=args.multi_token,
        )
    summary, sidecar = write_output(args.out, lambda path: write_in_context(result, path))
    print_relation_notes(result.skipped, result.settings["relation_files"])
    say(f"wrote {args.out}, {summary} and {sidecar}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
