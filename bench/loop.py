"""The plain per-head loop as a whole process: what a researcher would script without the engine.

    python -m bench.loop --model FOLDER --order vo_first|left_to_right --out scores.csv

Loads a local checkpoint with `transformers` alone, then scores every head for every relation
with at least `lib.scoring.relations.MIN_PAIRS` single-token pairs, one head and one relation at a
time (`tests.reference.reference_scores`, `proj` multiplied in `--order`), and writes one row per
(layer, head, relation). `bench/process.py` times it against `python -m lib.classify`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lib.core.errors import CliParser, run_cli
from lib.scoring.relations import MIN_PAIRS, relation_names
from tests.reference import LOOP_ORDERS, reference_scores, single_token_pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(prog="python -m bench.loop", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="local checkpoint folder")
    parser.add_argument("--order", default="vo_first", choices=LOOP_ORDERS)
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    args = parser.parse_args(argv)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    config = model.config
    names = [n for n in relation_names() if len(single_token_pairs(tokenizer, n)) >= MIN_PAIRS]
    with args.out.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["layer", "head", "relation", "score", "suppression"])
        for layer in range(config.num_hidden_layers):
            for head in range(config.num_attention_heads):
                for name in names:
                    scores = reference_scores(model, tokenizer, name, layer, head, args.order)
                    writer.writerow([layer, head, name, *scores])
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
