"""Classify every attention head of a GPT-NeoX (Pythia) model: the per-head result table.

    python -m lib.classify --model ID_OR_FOLDER [--revision R] [--device auto|cpu|cuda]
        [--dtype auto|float32|bfloat16|float16] [--relations all|none|a,b,...]
        [--relation-file FILE ...] [--relation-k NAME=K ...] [--no-patterns]
        [--threshold NAME=VALUE ...] [--weights streamed|whole] --out heads.csv

Writes `heads.csv` (one row per head, columns: `lib.scoring.pipeline`) and its sidecar
`heads.settings.json` (thresholds, k, relations, dtype, versions), as a pair. The checkpoint
is read one layer at a time (`--weights streamed`, the default: memory about the unembedding
plus one layer) or loaded whole (`--weights whole`, the reference); the scores are identical.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.checkpoints.loader import check_source, open_for_scoring
from lib.cli.options import model_options, out_option
from lib.cli.output import check_not_input, check_writable, say, write_output
from lib.cli.progress_bar import progress_bar
from lib.cli.scoring_options import (
    print_relation_notes,
    scoring_options,
    scoring_settings,
    weights_option,
)
from lib.core.errors import CliParser, run_cli
from lib.core.progress import subrange
from lib.scoring.pipeline import classify_heads, write_classification
from lib.tables.result_files import check_pair_target, settings_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(
        prog="python -m lib.classify",
        description=__doc__.split("\n")[0],
        parents=[model_options(), *scoring_options(), weights_option(), out_option()],
    )
    args = parser.parse_args(argv)
    check_source(args.model)
    check_writable(args.out)
    check_not_input([args.out, settings_path(args.out)], [args.model, *args.relation_file])
    check_pair_target(args.out)
    settings = scoring_settings(args)
    with progress_bar(description_width=45) as progress:
        loading = subrange(progress, 0, 0.1)
        loaded = open_for_scoring(
            args.model, args.revision, args.device, args.dtype, loading, weights=args.weights
        )
        result = classify_heads(loaded, settings, subrange(progress, 0.1, 1))
    sidecar = write_output(args.out, lambda path: write_classification(result, path))
    print_relation_notes(result.skipped, result.settings["relation_files"])
    say(f"wrote {args.out} and {sidecar}")
    say(
        f"chart the published figure's population: python -m lib.chart {args.out} "
        "--population operation --out chart.svg (lib.tables.population, docs/methods.md §5)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
