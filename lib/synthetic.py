"""Pythia-shaped GPT-NeoX checkpoints with seeded random weights, for tests, benchmarks and an
offline demo: `python -m lib.synthetic --size 14m --out DIR` (or an explicit tiny shape), or a
training series of tiny checkpoints with planted heads that appear at chosen steps
(`--series`, `lib.planted`): `python -m lib.synthetic --series --out DIR --steps 0,1,4,64`.

The architecture is Pythia's (parallel residual, rotary on 25% of each head's dims, untied
input / output embeddings, biases everywhere); only the weights are random. The tokenizer is
a byte-level BPE, like Pythia's, trained with `tokenizers` on the relation words (each with its
leading space) so that most relation pairs are single tokens. The folder is written with
`save_pretrained` (safetensors) and loads through `lib.loader.load_model` like a real one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

from lib.catalog import SIZES, pythia_size
from lib.errors import CliParser, InputError, run_cli
from lib.relations import load_pairs, relation_names

DESCRIPTION = (
    "Write a Pythia-shaped GPT-NeoX checkpoint with seeded random weights (or, with --series, "
    "a step<N> series of tiny checkpoints with planted heads) for tests, benchmarks and an "
    "offline demo."
)
END_OF_TEXT = "<|endoftext|>"
# 8192 tokens make every relation valid (>= 30 single-token pairs) while keeping some
# multi-token words, as with Pythia's own tokenizer.
DEFAULT_TOKENIZER_SIZE = 8192


def relation_words() -> list[str]:
    """Every source and target word of every relation, with its leading space, as listed."""
    return [" " + word for name in relation_names() for pair in load_pairs(name) for word in pair]


def train_tokenizer(vocab_size: int = DEFAULT_TOKENIZER_SIZE) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-NeoX style, no prefix space) on the relation words."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(relation_words(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT
    )


def pythia_config(
    n_layers: int, n_heads: int, d_model: int, vocab_rows: int, max_positions: int = 2048
) -> GPTNeoXConfig:
    """A GPT-NeoX config with Pythia's architecture choices and the given shape."""
    return GPTNeoXConfig(
        vocab_size=vocab_rows,
        hidden_size=d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        intermediate_size=4 * d_model,
        max_position_embeddings=max_positions,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.25,
        },
        use_parallel_residual=True,
        tie_word_embeddings=False,
        attention_bias=True,
        bos_token_id=0,
        eos_token_id=0,
    )


def random_model(
    config: GPTNeoXConfig, seed: int = 0, dtype: torch.dtype = torch.float32
) -> GPTNeoXForCausalLM:
    """The model of `config` with transformers' initialisation, seeded, built in `dtype` (a
    half-precision build of a large shape never holds a float32 copy)."""
    with torch.random.fork_rng(devices=[]):  # seed locally, leave the caller's RNG alone
        torch.manual_seed(seed)
        return GPTNeoXForCausalLM._from_config(config, dtype=dtype).eval()


def save_checkpoint(
    model: GPTNeoXForCausalLM, tokenizer: PreTrainedTokenizerFast, out: Path
) -> Path:
    """Write `model` (safetensors) and `tokenizer` to `out` in the `save_pretrained` layout."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def build_checkpoint(
    out: Path,
    shape: tuple[int, int, int] | None = None,
    size: str | None = None,
    vocab_rows: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write a random Pythia-shaped checkpoint to `out`.

    The shape is `(n_layers, n_heads, d_model)` or a catalog `size` (e.g. "14m"). Embedding
    rows default to the size's own (50304 for most, as in Pythia's matrices) or, for an
    explicit shape, to the tokenizer's size; rows past the tokenizer are never produced by it.
    """
    if (shape is None) == (size is None):
        raise InputError("give either a shape or a Pythia size")
    tokenizer = train_tokenizer()
    rows = vocab_rows or len(tokenizer)
    if size is not None:
        pythia = pythia_size(size)
        shape = (pythia.n_layers, pythia.n_heads, pythia.d_model)
        rows = vocab_rows or pythia.vocab_rows
    if rows < len(tokenizer):
        raise InputError(f"vocab rows {rows} < tokenizer size {len(tokenizer)}")
    model = random_model(pythia_config(*shape, vocab_rows=rows), seed, dtype)
    return save_checkpoint(model, tokenizer, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(prog="python -m lib.synthetic", description=DESCRIPTION)
    parser.add_argument("--size", choices=list(SIZES), help="a Pythia shape, e.g. 14m")
    parser.add_argument("--shape", help="LAYERS,HEADS,D_MODEL instead of --size, e.g. 3,4,64")
    parser.add_argument("--vocab-rows", type=int, help="embedding rows (default: see docs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    series = parser.add_argument_group(
        "training series (--series)",
        "A step<N> folder per step of the planted 3-layer model of lib.planted; each planted "
        "head is there from its --appear step on and random before it.",
    )
    series.add_argument("--series", action="store_true", help="write a step<N> series")
    series.add_argument(
        "--steps", help="comma list of steps (default: 0,1,4,16,64,256,1000,10000,143000)"
    )
    series.add_argument(
        "--appear",
        action="append",
        default=[],
        metavar="ROLE=STEP",
        help="the step a planted role appears at; roles copying, suppression, "
        "country_to_capital, previous_token (default: previous_token=4, copying=64, "
        "suppression=1000, country_to_capital=10000); a role set to -1 is never planted",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    args = parser.parse_args(argv)
    if args.series:
        # lib.planted builds on this module's functions: imported where it is used.
        from lib import planted

        steps = parse_steps(args.steps) if args.steps else planted.DEFAULT_SERIES_STEPS
        appearance = {**planted.DEFAULT_APPEARANCE, **parse_appearance(args.appear)}
        never = [role for role, step in appearance.items() if step < 0]
        folders = planted.build_series(
            args.out, steps, {r: s for r, s in appearance.items() if r not in never}
        )
        print(
            f"wrote {len(folders)} checkpoints to {args.out} ({', '.join(f.name for f in folders)})"
        )
        return 0
    shape = parse_shape(args.shape) if args.shape else None
    dtype = getattr(torch, args.dtype)
    out = build_checkpoint(args.out, shape, args.size, args.vocab_rows, args.seed, dtype)
    print(f"wrote {out}")
    return 0


def parse_steps(text: str) -> tuple[int, ...]:
    """Comma-separated whole numbers >= 0, e.g. `0,1,4,64`."""
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"--steps {text!r}: expected whole numbers like 0,1,4,64") from None
    if any(step < 0 for step in steps):
        raise InputError(f"--steps {text!r}: steps are whole numbers >= 0")
    return steps


def parse_appearance(assignments: Sequence[str]) -> dict[str, int]:
    """`ROLE=STEP` assignments, e.g. `copying=64`."""
    appearance = {}
    for assignment in assignments:
        role, _, step = assignment.partition("=")
        try:
            appearance[role] = int(step)
        except ValueError:
            raise InputError(
                f"--appear {assignment!r}: expected ROLE=STEP, e.g. copying=64"
            ) from None
    return appearance


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        n_layers, n_heads, d_model = (int(part) for part in text.split(","))
    except ValueError as error:
        raise InputError(f"--shape {text!r}: expected LAYERS,HEADS,D_MODEL like 3,4,64") from error
    # Rotary embeddings turn pairs of dims in a quarter of each head: d_head % 8 == 0.
    if min(n_layers, n_heads, d_model) < 1 or d_model % (8 * n_heads):
        raise InputError(f"--shape {text!r}: d_model must be a positive multiple of 8 x heads")
    return n_layers, n_heads, d_model


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
