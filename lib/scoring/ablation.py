"""The causal check (MAPS experiment 2, docs/methods.md §10): does removing a relation's heads
break the model on that relation's prompts, more than removing random heads does, and more than
it breaks other tasks? The command line is `python -m lib.ablate`.

- **Prompts.** A relation's template (`SETUP_TEMPLATES`, else `default_template`) with its slot
  `<X>` holding each single-token pair's source token (`lib.scoring.relations`, repeats kept).
- **Accuracy.** The fraction of prompts whose top-1 next token at the last position is the
  pair's target token (the target word with a leading space).
- **Ablation.** A removed head's output (its attention result before `attention.dense`) is
  zeroed at the prompt's last position only.
- **Curves** (`lib.tables.ablation`): the relation's heads ranked by static score, nonzero
  only, up to `max_heads_for`; as many random heads from the rest, `draws` seeded draws; the
  relation's heads on up to `MAX_CONTROLS` control relations' prompts.

Every number is computed in float32 whatever the stored dtype. Prompts of one template all
have the same length (a single-token source in a fixed frame), so a batch needs no padding.
Positions before the last are never changed by an ablation at the last position (attention is
causal), so each batch runs them once and keeps their keys and values; every head set then
runs the last position alone on top of them. Neither batching nor this reuse changes a result.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lib.checkpoints.loader import LoadedModel
from lib.checkpoints.neox import dense_columns
from lib.core.errors import InputError
from lib.core.progress import Progress, ignore, subrange
from lib.scoring.dynamic import SLOT, check_templates, template_tokens, write_with_summary
from lib.scoring.operations import DEFAULT_BYTE_BUDGET
from lib.scoring.pipeline import ClassifySettings, classify_heads, run_record
from lib.scoring.precision import float32_forward
from lib.scoring.relations import (
    MIN_PAIRS,
    SkippedRelation,
    TokenizedRelation,
    load_pairs,
    tokenize_relations,
)
from lib.tables.ablation import (
    CONTROL_PREFIX,
    CURVE_COLUMNS,
    HEAD_EFFECT_COLUMNS,
    RANDOM_CURVE,
    RELATION_CURVE,
    summarize,
)

Head = tuple[int, int]

SETUP_TEMPLATES: dict[str, str] = {
    "country_to_capital_wikidata": "The capital of <X> is",
    "country_to_official_language_wikidata": "The official language of <X> is",
    "product_by_company": "Nesquik is made by Nestlé; Mustang is made by Ford; <X> is made by",
    "object_superclass": "A <X> is a kind of",
    "adj_comparative": " lovely-> lovelier; edgy-> edgier; <X>->",
    "verb_past_tense": " hike->hiked; purchase-> purchased; <X>->",
    "word_first_letter": " word-> w, o, r, d; cat-> c, a, t; <X>->",
    "word_last_letter": " word-> d, r, o, w; cat-> t, a, c; <X>->",
    "year_to_following": " 1300-> 1301; 1000-> 1001; <X>->",
    "general_copying_english_500": " walk-> walk; cat-> cat; water-> water; <X>->",
    "name_copying": " John-> John; Donna-> Donna; <X>->",
    "entity_to_pronoun": " mother-> she; father-> he; tribe-> they; actress-> she; "
    "apartment-> it; <X>->",
    "english_to_spanish": " apartment-> departamento; computer-> computadora; tribe-> tribu; <X>->",
}
"""The 13 published setups' templates (MAPS experiment 2), by relation."""
DEFAULT_EXAMPLES = 2
RANDOM_DRAWS = 5
MAX_CONTROLS = 5
MAX_CONTROL_OVERLAP = 0.15
MAX_CONTROL_GAP = 0.2


@dataclass(frozen=True)
class AblationSettings:
    """What a causal check asks for besides its relations (`ablation_curves`): one `template`
    for every relation (None: each relation's own), `max_heads` (None: `max_heads_for` the
    model), random `draws` and their `seed`."""

    template: str | None = None
    max_heads: int | None = None
    draws: int = RANDOM_DRAWS
    seed: int = 0


def max_heads_for(n_heads: int) -> int:
    """How many relation heads are removed at most, for a model of `n_heads` heads in all (the
    published rule)."""
    for below, limit in ((300, 30), (500, 50), (1000, 100), (1500, 150)):
        if n_heads < below:
            return limit
    return 250


def default_template(words: Sequence[tuple[str, str]]) -> str:
    """The template of a relation without a published one: its first `DEFAULT_EXAMPLES`
    (source, target) word pairs as examples in the published arrow form,
    `" a-> b; c-> d; <X>->"`."""
    examples = "".join(f" {source}-> {target};" for source, target in words[:DEFAULT_EXAMPLES])
    return f"{examples} {SLOT}->"


def check_template(template: str) -> str:
    """`template` if it holds `<X>` once after a space (`lib.scoring.dynamic.check_templates`)."""
    (checked,) = check_templates([template])
    return checked


def check_request(relations: tuple[str, ...], max_heads: int | None, draws: int) -> None:
    """`InputError` unless a relation is named, `max_heads` (when given) is at least 1 and
    `draws` at least 0."""
    if not relations:
        raise InputError("no relation to ablate; name bundled relations: all or a,b,...")
    if max_heads is not None and max_heads < 1:
        raise InputError(f"--max-heads must be 1 or more, not {max_heads}")
    if draws < 0:
        raise InputError(f"--random-draws must be 0 or more, not {draws}")


@dataclass(frozen=True)
class Task:
    """A relation's prompts: `ids` `(N, T)` (one row per single-token pair), `targets` `(N,)`."""

    relation: TokenizedRelation
    template: str
    ids: torch.Tensor
    targets: torch.Tensor


def make_task(tokenizer: Any, relation: TokenizedRelation, template: str) -> Task:
    """The prompts of `relation` on `template` (`<X>` once, after a space: the source token
    carries its leading space, as in the static score)."""
    frame = template_tokens(tokenizer, check_template(template))
    ids = torch.tensor([frame.prompt(source) for source in relation.src])
    return Task(relation, template, ids, torch.tensor(relation.dst))


@contextmanager
def ablated(model: nn.Module, heads: Sequence[Head]) -> Iterator[None]:
    """Inside the block, each of `heads` has its output zeroed at the last position of every
    prompt: a forward pre-hook on its layer's `attention.dense`, whose input is the heads'
    outputs concatenated in head order (`lib.checkpoints.neox.dense_columns`)."""
    config = model.config
    d_head = config.hidden_size // config.num_attention_heads
    columns: dict[int, list[slice]] = {}
    for layer, head in heads:
        columns.setdefault(layer, []).append(dense_columns(head, d_head))

    def zeroing(removed: list[slice]):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            outputs = args[0].clone()
            for part in removed:
                outputs[:, -1, part] = 0
            return (outputs, *args[1:])

        return hook

    with ExitStack() as stack:
        for layer, removed in columns.items():
            dense = model.gpt_neox.layers[layer].attention.dense
            stack.enter_context(dense.register_forward_pre_hook(zeroing(removed)))
        yield


def prompts_per_batch(model: nn.Module, length: int, byte_budget: int) -> int:
    """Prompts of `length` tokens whose widest activations fit `byte_budget`: the MLP's hidden
    layer over the prompt, and one row of logits."""
    config = model.config
    per_prompt = 4 * (length * config.intermediate_size + config.vocab_size)
    return max(1, byte_budget // per_prompt)


def accuracies(
    model: nn.Module,
    task: Task,
    head_sets: Sequence[Sequence[Head]],
    batch_size: int | None = None,
    byte_budget: int = DEFAULT_BYTE_BUDGET,
    progress: Progress | None = None,
) -> np.ndarray:
    """The accuracy on `task` with each of `head_sets` removed (module docstring), in float32.

    Prompts go in batches of `batch_size` (default: what fits `byte_budget`); each batch runs
    all positions but the last once, then the last position once per head set."""
    report = progress or ignore
    n_prompts, length = task.ids.shape
    per_batch = batch_size or prompts_per_batch(model, length, byte_budget)
    hits = np.zeros(len(head_sets), dtype=np.int64)
    gpt, unembed = model.gpt_neox, model.get_output_embeddings()
    with torch.inference_mode(), float32_forward(model):
        for start in range(0, n_prompts, per_batch):
            stop = min(start + per_batch, n_prompts)
            ids = task.ids[start:stop].to(model.device)
            targets = task.targets[start:stop].to(model.device)
            cache = gpt(ids[:, :-1], use_cache=True).past_key_values if length > 1 else None
            for s, heads in enumerate(head_sets):
                report(
                    (start + (stop - start) * s / len(head_sets)) / n_prompts,
                    f"prompts {start + 1}-{stop} of {n_prompts}, head set {s + 1} of "
                    f"{len(head_sets)}",
                )
                with ablated(model, heads):
                    hidden = gpt(ids[:, -1:], past_key_values=cache, use_cache=True)
                if cache is not None:
                    cache.crop(-1)  # drop the last position: back to the shared ones
                top = unembed(hidden.last_hidden_state[:, -1]).argmax(dim=-1)
                hits[s] += int((top == targets).sum())
    report(1.0, "done")
    return hits / n_prompts


def ranked_heads(scores: np.ndarray, limit: int) -> list[Head]:
    """Heads with a nonzero score in `scores` `(layers, heads)`, highest first (ties in
    (layer, head) order), at most `limit`."""
    flat = scores.ravel()
    order = np.argsort(-flat, kind="stable")
    n_heads = scores.shape[1]
    return [divmod(int(i), n_heads) for i in order[:limit] if flat[i] > 0]


def random_heads(
    count: int, excluded: Sequence[Head], shape: tuple[int, int], generator: np.random.Generator
) -> list[Head]:
    """`count` distinct heads drawn uniformly from those not `excluded`, in draw order (fewer
    when fewer remain)."""
    n_layers, n_heads = shape
    pool = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    pool = [h for h in pool if h not in set(excluded)]
    picks = generator.choice(len(pool), size=min(count, len(pool)), replace=False)
    return [pool[int(i)] for i in picks]


def relation_generator(seed: int, relation: str) -> np.random.Generator:
    """The random draws' generator of `relation`: the same for a seed whatever other relations
    are run with it."""
    return np.random.default_rng([seed, zlib.crc32(relation.encode())])


def prefixes(heads: Sequence[Head]) -> list[list[Head]]:
    """The head sets of a curve: the first k of `heads`, k = 0 ... len(heads)."""
    return [list(heads[:k]) for k in range(len(heads) + 1)]


Row = tuple[str, str, int, int, float, int | None, int | None]
"""A row of the curves table (`CURVE_COLUMNS`)."""


def step(progress: Progress | None, i: int, n: int, label: str) -> Progress:
    """Part i of n of `progress`, its messages prefixed with `label`."""
    part = subrange(progress, i / n, (i + 1) / n)
    return lambda fraction, message: part(fraction, f"{label}: {message}")


def curve_rows(
    relation: str, curve: str, draw: int, heads: Sequence[Head], values: Sequence[float]
) -> list[Row]:
    """A curve's rows: the accuracy after removing the first k of `heads`, k = 0 ..."""
    return [
        (relation, curve, draw, k, float(accuracy), *(heads[k - 1] if k else (None, None)))
        for k, accuracy in enumerate(values)
    ]


def relation_curves(
    model: nn.Module,
    tasks: dict[str, Task],
    own: Sequence[Head],
    drawn: Sequence[Sequence[Head]],
    batch_size: int | None,
    progress: Progress,
) -> list[Row]:
    """The curves of the first relation of `tasks`, whose ranked heads are `own`: on its own
    prompts with `own` and with each random draw of `drawn` removed one at a time; on each
    other task of `tasks` (its controls) with `own` removed one at a time."""
    name, *controls = tasks
    sets = [*prefixes(own), *(s for d in drawn for s in prefixes(d))]
    values = accuracies(
        model, tasks[name], sets, batch_size, progress=step(progress, 0, len(tasks), "own")
    ).tolist()
    rows = curve_rows(name, RELATION_CURVE, 0, own, values[: len(own) + 1])
    offset = len(own) + 1
    for draw, picked in enumerate(drawn):
        part = values[offset : offset + len(picked) + 1]
        rows += curve_rows(name, RANDOM_CURVE, draw, picked, part)
        offset += len(picked) + 1
    for c, control in enumerate(controls, start=1):
        report = step(progress, c, len(tasks), control)
        part = accuracies(model, tasks[control], prefixes(own), batch_size, progress=report)
        rows += curve_rows(name, CONTROL_PREFIX + control, 0, own, part.tolist())
    return rows


@dataclass(frozen=True)
class AblationResult:
    """`curves` (`lib.tables.ablation.CURVE_COLUMNS`), `summary` (`SUMMARY_COLUMNS`), the
    `settings` sidecar record and the relations skipped for too few single-token pairs."""

    curves: pd.DataFrame
    summary: pd.DataFrame
    settings: dict[str, Any]
    skipped: tuple[SkippedRelation, ...]


def controls_of(
    relation: str,
    heads: dict[str, list[Head]],
    scores: dict[str, np.ndarray],
    base: dict[str, float],
) -> list[str]:
    """Up to `MAX_CONTROLS` control relations of `relation`: the others whose top
    `len(heads[relation])` nonzero heads share fewer than `MAX_CONTROL_OVERLAP` of `relation`'s
    heads and whose base accuracy is within `MAX_CONTROL_GAP`, closest base accuracy first
    (ties by name)."""
    own = heads[relation]
    if not own:
        return []
    found = []
    for other in sorted(base, key=lambda name: (abs(base[name] - base[relation]), name)):
        top = set(ranked_heads(scores[other], len(own)))
        overlap = len(top & set(own)) / len(own)
        close = abs(base[other] - base[relation]) < MAX_CONTROL_GAP
        if other != relation and overlap < MAX_CONTROL_OVERLAP and close:
            found.append(other)
    return found[:MAX_CONTROLS]


def ablation_curves(
    loaded: LoadedModel,
    relations: tuple[str, ...],
    template: str | None = None,
    max_heads: int | None = None,
    draws: int = RANDOM_DRAWS,
    seed: int = 0,
    progress: Progress | None = None,
    batch_size: int | None = None,
    only: tuple[str, ...] | None = None,
    static: pd.DataFrame | None = None,
) -> AblationResult:
    """The three curves of every valid one of `relations` (bundled names), or of those among
    them named in `only` (the others then serve as control candidates alone), and their
    summary.

    Static scores come from `static` (the model's `classify_heads` table, computed already: a
    sweep's job) when it has every relation's `score_<relation>` column, else from
    `classify_heads` (no patterns) here; `template` replaces every relation's own;
    `max_heads` defaults to `max_heads_for` the model."""
    check_request(relations, max_heads, draws)
    model, tokenizer = loaded.model, loaded.tokenizer
    valid, skipped = tokenize_relations(tokenizer, relations)
    if not valid:
        raise InputError(
            f"nothing to ablate for {loaded.name}: no relation asked for has {MIN_PAIRS} "
            "single-token pairs for its tokenizer"
        )
    shape = (model.config.num_hidden_layers, model.config.num_attention_heads)
    limit = max_heads if max_heads is not None else max_heads_for(shape[0] * shape[1])
    settings = ClassifySettings(relations=tuple(r.name for r in valid), patterns=None)
    if static is None or any(f"score_{r.name}" not in static for r in valid):
        static = classify_heads(loaded, settings, subrange(progress, 0, 0.05)).table
    scores = {r.name: static[f"score_{r.name}"].to_numpy().reshape(shape) for r in valid}
    templates = {r.name: template or template_of(r.name) for r in valid}
    tasks = {r.name: make_task(tokenizer, r, templates[r.name]) for r in valid}
    heads = {name: ranked_heads(scores[name], limit) for name in tasks}
    run = subrange(progress, 0.05, 0.15)
    base = {}
    for i, name in enumerate(tasks):
        part = subrange(run, i / len(tasks), (i + 1) / len(tasks))
        base[name] = float(accuracies(model, tasks[name], [[]], batch_size, progress=part)[0])
    rows: list[Row] = []
    controls: dict[str, list[str]] = {}
    run = subrange(progress, 0.15, 1)
    ablated_relations = [name for name in tasks if only is None or name in only]
    if not ablated_relations:
        raise InputError(
            f"nothing to ablate: {', '.join(only or ())} has fewer than {MIN_PAIRS} "
            "single-token pairs for this tokenizer"
        )
    for i, name in enumerate(ablated_relations):
        own = heads[name]
        generator = relation_generator(seed, name)
        drawn = [random_heads(len(own), own, shape, generator) for _ in range(draws)]
        controls[name] = controls_of(name, heads, scores, base)
        run_on = {other: tasks[other] for other in (name, *controls[name])}
        report = step(run, i, len(ablated_relations), f"ablation, {name}")
        rows += relation_curves(model, run_on, own, drawn, batch_size, report)
    curves = pd.DataFrame(rows, columns=list(CURVE_COLUMNS)).astype(
        {"layer": "Int64", "head": "Int64"}
    )
    n_prompts = {name: len(tasks[name].targets) for name in ablated_relations}
    record = {
        **run_record(loaded),
        "compute_dtype": "float32",
        "relations": [
            {"name": r.name, "k": r.k, "n_pairs": len(r.src), "template": templates[r.name]}
            for r in valid
        ],
        "skipped_relations": [{"name": s.name, "n_pairs": s.n_pairs} for s in skipped],
        "min_pairs": MIN_PAIRS,
        "max_heads": limit,
        "random_draws": draws,
        "seed": seed,
        "controls": controls,
        "max_controls": MAX_CONTROLS,
        "max_control_overlap": MAX_CONTROL_OVERLAP,
        "max_control_gap": MAX_CONTROL_GAP,
    }
    return AblationResult(curves, summarize(curves, n_prompts), record, skipped)


def template_of(relation: str) -> str:
    """The published template of `relation`, else `default_template` of its word pairs."""
    if relation in SETUP_TEMPLATES:
        return SETUP_TEMPLATES[relation]
    return default_template(load_pairs(relation))


def without_head(
    loaded: LoadedModel,
    relations: tuple[str, ...],
    head: Head,
    progress: Progress | None = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Per valid one of `relations` (bundled names, each on its own template): `relation`,
    `n_prompts`, `base_accuracy`, `accuracy_without_head` (`head` alone removed) and `change`
    (the second minus the first), fractions (`lib.tables.ablation.HEAD_EFFECT_DEFINITIONS`)."""
    valid, _ = tokenize_relations(loaded.tokenizer, relations)
    rows = []
    for i, relation in enumerate(valid):
        task = make_task(loaded.tokenizer, relation, template_of(relation.name))
        part = subrange(progress, i / len(valid), (i + 1) / len(valid))
        base, without = accuracies(loaded.model, task, [[], [head]], batch_size, progress=part)
        rows.append((relation.name, len(relation.src), base, without, without - base))
    return pd.DataFrame(rows, columns=list(HEAD_EFFECT_COLUMNS))


def write_ablation(result: AblationResult, csv_path: Path) -> tuple[Path, Path]:
    """Write the curves to `csv_path`, the summary to `<stem>.summary.csv` and the settings to
    `<stem>.settings.json` together (`lib.scoring.dynamic.write_with_summary`); return
    (summary, settings)."""
    return write_with_summary(csv_path, result.curves, result.summary, result.settings)
