"""The causal check (MAPS experiment 2): accuracy on each relation's prompts as its heads are
removed one at a time, against random heads and control tasks.

    python -m lib.ablate --model ID_OR_FOLDER [--revision R] [--device auto|cpu|cuda]
        [--dtype auto|float32|bfloat16|float16] [--relations all|a,b,...] [--template TEXT]
        [--max-heads N] [--random-draws 5] [--seed S] --out curves.csv

Writes `curves.csv` (columns `relation, curve, draw, k, accuracy, layer, head`),
`curves.summary.csv` and `curves.settings.json`; definitions in `lib.scoring.ablation`,
`lib.tables.ablation` and docs/methods.md §10.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.checkpoints.loader import check_source, load_model
from lib.cli.ablation_options import ablation_options, ablation_settings
from lib.cli.options import model_options, out_option
from lib.cli.output import check_not_input, check_writable, say, write_output
from lib.cli.progress_bar import progress_bar
from lib.cli.scoring_options import load_options, print_relation_notes
from lib.core.errors import CliParser, run_cli
from lib.core.progress import subrange
from lib.scoring.ablation import ablation_curves, check_request, write_ablation
from lib.scoring.dynamic import output_paths
from lib.scoring.relations import parse_relations
from lib.tables.result_files import check_file_targets


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(
        prog="python -m lib.ablate",
        description=__doc__.split("\n")[0],
        parents=[
            model_options(),
            load_options(),
            ablation_options(),
            out_option("curves CSV to write"),
        ],
    )
    parser.add_argument("--relations", default="all", help="all or a,b,... (bundled names)")
    args = parser.parse_args(argv)
    check_source(args.model)
    check_writable(args.out)
    check_not_input(output_paths(args.out), [args.model])
    check_file_targets(output_paths(args.out))
    relations = parse_relations(args.relations)
    check_request(relations, args.max_heads, args.random_draws)
    asked = ablation_settings(args)
    with progress_bar(description_width=60) as progress:
        loaded = load_model(
            args.model, args.revision, args.device, args.dtype, subrange(progress, 0, 0.05)
        )
        result = ablation_curves(
            loaded,
            relations,
            asked.template,
            asked.max_heads,
            asked.draws,
            asked.seed,
            subrange(progress, 0.05, 1),
        )
    summary, sidecar = write_output(args.out, lambda path: write_ablation(result, path))
    print_relation_notes(result.skipped, [])
    say(f"wrote {args.out}, {summary} and {sidecar}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
