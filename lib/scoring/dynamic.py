"""Dynamic (in-context) scores: what each head writes at the end of real prompts, read through
the unembedding, next to its static operation score (docs/methods.md §8); the command line is
`python -m lib.dynamic`.

A prompt is a template with a relation's source word in its slot `<X>` (the word's token, with
its leading space, is the one the static score uses; the text around the slot is tokenized as
the model's tokenizer splits the whole prompt). With `multi_token`, pairs whose source is
several tokens (target one token) are added, their source read at its last token. For head h
of layer l, at the prompt's last position, with `z` the head's value-weighted sum (value bias
included, before `dense`):

    logits = z W_O(h)^T W_U^T            (no output bias, no final layer norm: as MAPS)

- **without context** (`dynamic_score`): attention forced onto the source word, so `z` is the
  head's value vector `v(h)` at the source word's (last token's) position, in the model's real
  forward pass;
- **in context** (`dynamic_score_in_context`): the head's own attention, `z = sum_j a_j v_j`.

A (pair, template) prompt counts when fewer than k entries of `logits` are strictly greater than
the target's (the static score's k and tie rule); the suppression twins count it on `-logits`.
A score is the fraction of a relation's (pair, template) prompts that count, i.e. the mean over
templates of the per-template fraction of pairs. Every number is computed in float32 whatever
the stored dtype; results do not depend on how prompts are batched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXLayer

from lib.checkpoints.loader import LoadedModel, StreamedCheckpoint
from lib.checkpoints.neox import VALUE, output_weights, split_heads
from lib.core.errors import InputError, quoted
from lib.core.progress import Progress, ignore, subrange
from lib.scoring.operations import (
    CPU_CHUNK_BYTES,
    DEFAULT_BYTE_BUDGET,
    head_source_chunks,
    output_unembedding,
    row_extremes,
)
from lib.scoring.pipeline import (
    ClassifySettings,
    classify_heads,
    head_columns,
    run_record,
    scored_relations,
)
from lib.scoring.precision import float32_matmul, float32_modules, to_float32
from lib.scoring.relation_files import CustomRelation
from lib.scoring.relations import (
    MIN_PAIRS,
    PromptRelation,
    SkippedRelation,
    TokenizedRelation,
    multi_token_relation,
    single_token_relation,
)
from lib.scoring.weights_view import WeightsView, weights_view
from lib.tables.head_table import to_csv_bytes
from lib.tables.in_context import (
    MULTI_TOKEN,
    PAIR_COLUMNS,
    SINGLE_TOKEN,
    STATIC_TWIN,
    VARIANT_DEFINITIONS,
    VARIANTS,
)
from lib.tables.result_files import replace_together, settings_path

SLOT = "<X>"
LEADING = ("model", "revision", "commit", "layer", "head")
"""The per-head table's leading columns, kept in the dynamic table."""
DEFAULT_TEMPLATES = (
    "No <X> means no",
    "The story of <X> contains",
    "This is a document about <X>",
    "When I think about <X> I think about",
)
"""The four templates of the published experiment (MAPS `templates.json`), in its order."""


def check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    """`templates` as a tuple; `InputError` unless there is at least one, none repeats, and
    each holds the slot `<X>` exactly once with a space before it (the source token carries
    its leading space, as in the static score) but not two, and no letter or digit right
    after it (a byte-level BPE would merge either into the word, which would then not be the
    scored token)."""
    if not templates:
        raise InputError("no template given; a template looks like 'The story of <X> contains'")
    for template in templates:
        if template.count(SLOT) != 1 or not template.split(SLOT)[0].endswith(" "):
            raise InputError(
                f"template {quoted(template)} must hold {SLOT} exactly once, after a space, "
                f"e.g. 'The story of {SLOT} contains'"
            )
        if template.split(SLOT)[0][-2:-1].isspace():
            raise InputError(
                f"template {quoted(template)}: put one space before {SLOT}, not more; Pythia's "
                "tokenizer has tokens for runs of spaces that would take the word's own"
            )
        if template.split(SLOT)[1][:1].isalnum():
            raise InputError(
                f"template {quoted(template)}: put a space or punctuation after {SLOT}; a "
                "letter or digit there joins the source word's last token"
            )
    repeated = sorted({t for t in templates if templates.count(t) > 1})
    if repeated:
        raise InputError(f"template {quoted(repeated[0])} is listed twice")
    return tuple(templates)


def read_templates(path: Path) -> tuple[str, ...]:
    """One template per line of the UTF-8 text file `path` (blank lines skipped), checked."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise InputError(f"cannot read templates file {path}: {reason}") from None
    return check_templates([line.strip() for line in text.splitlines() if line.strip()])


@dataclass(frozen=True)
class TemplateTokens:
    """A template's tokens around the slot (`template_tokens`): what a prompt holds besides
    the source word, to size batches."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]

    def prompt(self, source: int) -> list[int]:
        return [*self.prefix, source, *self.suffix]

    @property
    def length(self) -> int:
        """Tokens of a prompt whose source word is one token."""
        return len(self.prefix) + 1 + len(self.suffix)


def template_tokens(tokenizer: Any, template: str) -> TemplateTokens:
    """Tokenize the text before the slot (without the space the source token carries) and
    after it, with no special tokens (Pythia's tokenizer adds none: MAPS ran prompts so).

    A byte-level BPE splits text into words before merging, each with the space before it
    (`" word"`, `" ->"`), so for a template that `check_templates` accepts, a prompt's tokens
    are these pieces around the source word's own tokens (tested on Pythia's tokenizer);
    `prompt_batch` tokenizes every prompt whole all the same."""
    before, after = template.split(SLOT)
    return TemplateTokens(
        tuple(tokenizer.encode(before[:-1], add_special_tokens=False)),
        tuple(tokenizer.encode(after, add_special_tokens=False)),
    )


def longest_prompt(tokens: Sequence[TemplateTokens], word_length: int = 1) -> int:
    """Tokens of the longest prompt of the templates `tokens` with a source word of
    `word_length` tokens (for a checked template, a prompt is the template's pieces around the
    word's own tokens, `template_tokens`)."""
    return max(t.length for t in tokens) + word_length - 1


def longest_source(relations: Sequence[PromptRelation]) -> int:
    """Tokens of the longest source word of `relations` (1 when there is none)."""
    return max((len(word) for r in relations for word in r.src), default=1)


def prompt_templates(
    loaded: LoadedModel | StreamedCheckpoint, templates: Sequence[str], word_length: int = 1
) -> list[TemplateTokens]:
    """`templates` checked (`check_templates`) and tokenized; `InputError` when a prompt, a
    source word of `word_length` tokens (the longest one scored) filled in, is longer than the
    model's context (`max_position_embeddings`): positions past it were never trained, so its
    scores would mean nothing."""
    context = weights_view(loaded).config.max_position_embeddings
    tokens = [template_tokens(loaded.tokenizer, t) for t in check_templates(templates)]
    words = "its source word" if word_length == 1 else f"its {word_length}-token source word"
    for template, part in zip(templates, tokens, strict=True):
        length = longest_prompt([part], word_length)
        if length > context:
            raise InputError(
                f"template {quoted(template)} is {length:,} tokens long with {words}; this "
                f"model reads at most {context:,} (its context)"
            )
    return tokens


@dataclass(frozen=True)
class DynamicScores:
    """`fractions[v, l, h, r, t]`: score `VARIANTS[v]` of head (l, h) for `relations[r]` on
    `templates[t]` alone, a fraction of the relation's pairs in [0, 1]."""

    relations: tuple[PromptRelation, ...]
    templates: tuple[str, ...]
    fractions: np.ndarray

    def mean_over_templates(self) -> np.ndarray:
        """`[v, l, h, r]`: the scores (module docstring), the mean over templates."""
        return self.fractions.mean(axis=-1)


@dataclass
class PromptStream:
    """A batch of B prompts on its way through the layers, held between them: `hidden`, its
    residual stream after the layers run so far, `(B, length, d_model)` float32 (right-padded
    `input_ids`: `last[b]` is prompt b's last real token), the rotary embedding's `(cos, sin)`
    of its positions, and per prompt the `source` and `last` positions read.

    Right padding needs no attention mask beyond the causal one and no shifted positions: a
    real token only sees earlier positions, which are all real."""

    hidden: torch.Tensor
    rotary: tuple[torch.Tensor, torch.Tensor]
    source: torch.Tensor
    last: torch.Tensor

    @classmethod
    def start(
        cls, view: WeightsView, input_ids: torch.Tensor, source: torch.Tensor, last: torch.Tensor
    ) -> PromptStream:
        """The prompts `input_ids` embedded, before the first layer."""
        n_prompts, length = input_ids.shape
        hidden = to_float32(view.input_embedding_rows(input_ids))
        positions = torch.arange(length, device=input_ids.device).expand(n_prompts, length)
        return cls(hidden, view.rotary()(hidden, positions), source, last)

    def through(self, layer: GPTNeoXLayer) -> tuple[torch.Tensor, torch.Tensor]:
        """Run `layer` (the caller computes it in float32: `lib.scoring.precision`) on the
        stream, which then holds its output; return `(z_source, z_context)`, each
        `(H, B, d_head)` float32: every head's value vector at the `source` position and its
        attention output at the `last` position of each prompt."""
        n_prompts, length, _ = self.hidden.shape
        n_heads = layer.attention.config.num_attention_heads
        device = self.hidden.device
        future = torch.ones(length, length, dtype=torch.bool, device=device).triu(1)
        mask = torch.zeros(1, 1, length, length, device=device)
        mask.masked_fill_(future, torch.finfo(torch.float32).min)
        prompts = torch.arange(n_prompts, device=device)
        captured: dict[str, torch.Tensor] = {}

        def values(module: nn.Module, args: Any, qkv: torch.Tensor) -> None:
            captured["source"] = split_heads(qkv, n_heads)[prompts, self.source, :, VALUE]

        def outputs(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            per_head = args[0].view(n_prompts, length, n_heads, -1)
            captured["context"] = per_head[prompts, self.last]

        attention = layer.attention
        handles = [
            attention.query_key_value.register_forward_hook(values),
            attention.dense.register_forward_pre_hook(outputs),
        ]
        try:
            self.hidden = layer(self.hidden, attention_mask=mask, position_embeddings=self.rotary)
        finally:
            for handle in handles:
                handle.remove()
        return captured["source"].transpose(0, 1), captured["context"].transpose(0, 1)


@dataclass(frozen=True)
class SourcePairs:
    """All relations' pairs sorted by source: `sources` the distinct source token sequences
    (sorted); per pair, `source[p]` its row in `sources`, `target[p]`, `relation[p]` and
    `k[p]`; the pairs of sources `a:b` are `offsets[a]:offsets[b]`."""

    sources: tuple[tuple[int, ...], ...]
    source: torch.Tensor
    target: torch.Tensor
    relation: torch.Tensor
    k: torch.Tensor
    offsets: tuple[int, ...]

    @classmethod
    def build(
        cls, relations: Sequence[TokenizedRelation | PromptRelation], device: torch.device
    ) -> SourcePairs:
        relations = [PromptRelation.of(r) for r in relations]
        sources = tuple(sorted({word for r in relations for word in r.src}))
        rows = {word: i for i, word in enumerate(sources)}
        row = torch.tensor([rows[word] for r in relations for word in r.src], dtype=torch.long)
        order = torch.argsort(row, stable=True)
        relation = torch.repeat_interleave(
            torch.arange(len(relations)), torch.tensor([len(r.src) for r in relations])
        )
        target = torch.tensor([t for r in relations for t in r.dst])
        k = torch.tensor([r.k for r in relations])[relation]
        counts = torch.bincount(row, minlength=len(sources))
        offsets = (0, *torch.cumsum(counts, 0).tolist())
        on = {"device": device}
        return cls(
            sources,
            row[order].to(**on),
            target[order].to(**on),
            relation[order].to(**on),
            k[order].to(**on),
            offsets,
        )

    def of(self, sources: slice) -> SourcePairs:
        """The pairs of `sources` (a slice of `self.sources`), rows counted from its start."""
        pairs = slice(self.offsets[sources.start], self.offsets[sources.stop])
        return SourcePairs(
            self.sources[sources],
            self.source[pairs] - sources.start,
            self.target[pairs],
            self.relation[pairs],
            self.k[pairs],
            tuple(o - pairs.start for o in self.offsets[sources.start : sources.stop + 1]),
        )


def count_hits(
    z: torch.Tensor,
    ou: torch.Tensor,
    pairs: SourcePairs,
    n_templates: int,
    n_relations: int,
    byte_budget: int,
) -> torch.Tensor:
    """`(2, H, R, T)` counts of (pair, template) prompts that count for the score and for the
    suppression score (fewer than k logits strictly greater / smaller than the target's: the
    target at least the row's k-th largest / at most its k-th smallest value,
    `lib.scoring.operations.row_extremes`), for head vectors `z` `(H, S * T, dh)` of the S sources
    of
    `pairs` (row `s * T + t` is source s in template t) and `ou = W_O(h)^T W_U^T`."""
    n_heads, vocab = z.shape[0], ou.shape[2]
    counts = torch.zeros(2, n_heads, n_relations, n_templates, dtype=torch.long, device=z.device)
    templates = torch.arange(n_templates, device=z.device)
    if z.device.type == "cpu":
        byte_budget = min(byte_budget, CPU_CHUNK_BYTES)
    # A source's rows, with room for the extremes and targets read from them.
    source_bytes = 3 * n_templates * vocab * z.element_size()
    for heads, sources in head_source_chunks(
        n_heads, len(pairs.sources), source_bytes, byte_budget
    ):
        rows = slice(sources.start * n_templates, sources.stop * n_templates)
        logits = torch.matmul(z[heads, rows], ou[heads])  # (hc, sc * T, V)
        inside = pairs.of(sources)
        local = (inside.source[:, None] * n_templates + templates).ravel()  # (p * T)
        k = inside.k.clamp(max=vocab).repeat_interleave(n_templates)  # k >= V: every pair
        top, bottom = row_extremes(logits, int(k.max()))
        target = logits[:, local, inside.target.repeat_interleave(n_templates)]  # (hc, p * T)
        hits = torch.stack([target >= top[:, local, k - 1], target <= bottom[:, local, k - 1]])
        hits = hits.view(2, -1, len(inside.k), n_templates)
        counts[:, heads].index_add_(2, inside.relation, hits.long())
    return counts


def prompt_text(template: str, word: str) -> tuple[str, int]:
    """`template` with `word` (its leading space included) in the slot, and the index just
    past the word in that text."""
    before, after = template.split(SLOT)
    head = before[:-1] + word
    return head + after, len(head)


def prompt_batch(
    tokenizer: Any,
    templates: Sequence[str],
    sources: Sequence[tuple[int, ...]],
    pad: int,
    rows: range | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(input_ids, source_position, last_position)` of the (source, template) prompts `rows`
    (default: all) in source-major order (row `s * T + t` is source s in template t),
    right-padded with `pad` to the longest of them.

    Each prompt's text is tokenized whole, as the model sees it. The source position is the
    last token that starts inside the source word: its last token (`template_tokens`: the
    word's own tokens for the checked templates), or the token the BPE merged it into."""
    n_templates = len(templates)
    rows = range(len(sources) * n_templates) if rows is None else rows
    first = rows.start // n_templates
    words = [
        tokenizer.decode(s, clean_up_tokenization_spaces=False)
        for s in sources[first : (rows.stop - 1) // n_templates + 1]
    ]
    texts, ends = zip(
        *(prompt_text(templates[r % n_templates], words[r // n_templates - first]) for r in rows),
        strict=True,
    )
    encoded = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
    prompts = encoded["input_ids"]
    read = [
        max(i for i, (start, _) in enumerate(offsets) if start < end)
        for offsets, end in zip(encoded["offset_mapping"], ends, strict=True)
    ]
    length = max(len(p) for p in prompts)
    on = {"device": device}
    ids = torch.tensor([p + [pad] * (length - len(p)) for p in prompts], **on)
    last = torch.tensor([len(p) - 1 for p in prompts], **on)
    return ids, torch.tensor(read, **on), last


def prompt_bytes(config: Any, length: int) -> int:
    """Peak bytes of one prompt of `length` tokens in a layer's float32 forward pass (eager
    attention), the larger of its two phases, in floats per token times 4 bytes:

        attention: 2 * heads * length + 8 * hidden   (scores and probabilities, both
                   heads x length^2 a prompt, with the hidden states, their layer norm, the
                   query/key/value rows and the rotated queries and keys)
        MLP:       heads * length + 2 * intermediate + 5 * hidden   (the probabilities, which
                   the layer holds until it returns, the MLP's two wide activations, the hidden
                   states, the attention output and the layer norm)

    Peak resident memory (VmHWM) of one batch's forward pass through one 160m-shaped layer
    (12 heads, hidden 768, CPU) against this estimate with the mask (`prompts_per_batch`):
    64 prompts x 64 tokens 156 MiB (168), 1 x 1,024 tokens 112 MiB (125), 1 x 2,048 tokens
    432 MiB (452)."""
    heads, hidden = config.num_attention_heads, config.hidden_size
    attention = 2 * heads * length + 8 * hidden
    mlp = heads * length + 2 * config.intermediate_size + 5 * hidden
    return 4 * length * max(attention, mlp)


def prompts_per_batch(
    model: nn.Module, tokens: Sequence[TemplateTokens], byte_budget: int, word_length: int = 1
) -> int:
    """Prompts, their source words up to `word_length` tokens, that fit one forward pass in
    `byte_budget` bytes:

        (byte_budget - 5 * L^2) // prompt_bytes(L)

    with L the longest prompt (`longest_prompt`), in tokens, to which a batch may be padded
    (`prompt_batch`); 5 * L^2 bytes are the batch's causal mask and its boolean pattern. At
    least one: a single prompt is the smallest batch, which the model's context bounds
    (`prompt_templates`)."""
    length = longest_prompt(tokens, word_length)
    return max(1, (byte_budget - 5 * length**2) // prompt_bytes(model.config, length))


def residual_bytes(config: Any, length: int) -> int:
    """Bytes a prompt of `length` tokens holds between two layers: its residual stream,
    `length x d_model` float32 (its rotary angles and positions are a few percent more)."""
    return 4 * length * config.hidden_size


def sources_per_group(model: WeightsView, n_templates: int, byte_budget: int, length: int) -> int:
    """Sources whose prompts, every template padded to `length` tokens, fit `byte_budget`
    bytes while the layers run over them all: their residual streams (`residual_bytes`) and
    one layer's head vectors, both variants (each head's `d_head` floats, all heads together
    `d_model`):

        byte_budget // (T * (length + 2) * d_model * 4)

    at least one."""
    config = model.config
    per_source = n_templates * (residual_bytes(config, length) + 2 * config.hidden_size * 4)
    return max(1, byte_budget // per_source)


def batch_passes(n_prompts: int, step: int, pass_prompts: int) -> list[list[range]]:
    """The prompts `0..n_prompts-1` in batches of `step` (the last one shorter), consecutive
    batches in passes of at most `pass_prompts` prompts (at least one batch a pass): each pass
    reads every layer once."""
    passes: list[list[range]] = []
    for start in range(0, n_prompts, step):
        rows = range(start, min(start + step, n_prompts))
        if passes and rows.stop - passes[-1][0].start <= pass_prompts:
            passes[-1].append(rows)
        else:
            passes.append([rows])
    return passes


@dataclass(frozen=True)
class RunPlan:
    """How `dynamic_scores` runs a group's prompts: right-padded with token `pad`, `step`
    prompts a batch, passes of at most `pass_prompts` prompts (`batch_passes`), logits in
    chunks of `byte_budget` bytes."""

    pad: int
    step: int
    pass_prompts: int
    byte_budget: int


def group_counts(
    loaded: LoadedModel | StreamedCheckpoint,
    templates: Sequence[str],
    pairs: SourcePairs,
    n_relations: int,
    w_u: torch.Tensor,
    plan: RunPlan,
    progress: Progress,
) -> np.ndarray:
    """`(4, layers, H, R, T)` hit counts (`count_hits`, both variants) of the sources of
    `pairs` in every template (row `s * T + t`), run as `plan` says.

    Layers outer, batches inner: each pass of batches (`batch_passes`) reads every layer once
    (`lib.scoring.weights_view`), runs all its batches through it, their residual streams held
    between layers (`PromptStream`). After the group's last pass through a layer, that layer's
    head vectors are complete: its `W_O(h)^T W_U^T` is formed from the layer just read and the
    logits counted, and the vectors dropped. One pass (the budget's usual case) holds one
    layer's vectors at a time; several hold the earlier passes' vectors of every layer."""
    model = weights_view(loaded)
    config = model.config
    n_layers, n_heads = config.num_hidden_layers, config.num_attention_heads
    n_templates, n_prompts = len(templates), len(pairs.sources) * len(templates)
    counts = np.zeros((len(VARIANTS), n_layers, n_heads, n_relations, n_templates))
    passes = batch_passes(n_prompts, plan.step, plan.pass_prompts)
    vectors: dict[int, torch.Tensor] = {}  # layer -> (2, H, prompts, d_head), until counted
    shape = (2, n_heads, n_prompts, config.hidden_size // n_heads)
    for p, batches in enumerate(passes):
        streams = [
            PromptStream.start(
                model,
                *prompt_batch(
                    loaded.tokenizer, templates, pairs.sources, plan.pad, rows, model.device
                ),
            )
            for rows in batches
        ]
        for layer in range(n_layers):
            progress(
                (p + layer / n_layers) / len(passes),
                f"pass {p + 1} of {len(passes)}, layer {layer + 1} of {n_layers}",
            )
            module = model.layer_module(layer)
            z = vectors.setdefault(layer, torch.empty(shape, device=model.device))
            with float32_modules(module):
                for rows, stream in zip(batches, streams, strict=True):
                    z[0, :, rows.start : rows.stop], z[1, :, rows.start : rows.stop] = (
                        stream.through(module)
                    )
            if p == len(passes) - 1:
                w_o = to_float32(output_weights(module.attention.dense.weight, n_heads))
                ou = output_unembedding(w_o, w_u)
                for v, zv in enumerate(vectors.pop(layer)):  # forced onto the source, in context
                    hits = count_hits(zv, ou, pairs, n_templates, n_relations, plan.byte_budget)
                    counts[2 * v : 2 * v + 2, layer] += hits.cpu().numpy()
    return counts


def titled(progress: Progress, title: str) -> Progress:
    """`progress` with `title` before each message."""
    return lambda fraction, message: progress(fraction, f"{title}, {message}")


def dynamic_scores(
    loaded: LoadedModel | StreamedCheckpoint,
    relations: Sequence[TokenizedRelation | PromptRelation],
    templates: tuple[str, ...] = DEFAULT_TEMPLATES,
    byte_budget: int = DEFAULT_BYTE_BUDGET,
    batch_prompts: int | None = None,
    progress: Progress | None = None,
) -> DynamicScores:
    """Every head's dynamic scores for every relation and template (module docstring).

    Each distinct source (token sequence) of all relations is run once per template: one
    forward pass serves every relation whose pairs start from it, and both variants. The
    layers run outer, the prompts inner (`group_counts`): each layer is read once a group, not
    once a batch. Working memory (beyond one layer, `W_U` and one layer's `W_O(h)^T W_U^T`)
    stays within `byte_budget` whatever the templates' length: sources go in groups whose
    residual streams, held between layers, and one layer's head vectors fit half of it
    (`sources_per_group`); a group's prompts run in batches of `batch_prompts` whose forward
    pass fits the other half (default: `prompts_per_batch`; one prompt is the smallest batch);
    when a single source's prompts hold more than half between layers, its batches go in
    passes whose residual streams fit it, each reading every layer. Each layer's
    `W_O(h)^T W_U^T` is formed once a group, its logits in chunks within half the budget.
    Groups, passes and batches leave the result unchanged.
    """
    model, report = weights_view(loaded), progress or ignore
    relations = tuple(PromptRelation.of(r) for r in relations)
    config = model.config
    n_layers, n_heads = config.num_hidden_layers, config.num_attention_heads
    longest = longest_source(relations)
    tokens = prompt_templates(loaded, templates, longest)
    templates = tuple(templates)
    counts = np.zeros((len(VARIANTS), n_layers, n_heads, len(relations), len(templates)))
    if not relations:
        report(1.0, "dynamic scores: done")
        return DynamicScores(relations, templates, counts)
    all_pairs = SourcePairs.build(relations, model.device)
    half = byte_budget // 2
    length = longest_prompt(tokens, longest)
    step = batch_prompts or prompts_per_batch(model, tokens, half, longest)
    plan = RunPlan(
        pad=loaded.tokenizer.eos_token_id or 0,  # never seen by a real token (right padding)
        step=step,
        pass_prompts=max(1, half // residual_bytes(config, length)),
        byte_budget=half,
    )
    group = sources_per_group(model, len(tokens), half, length)
    n_sources = len(all_pairs.sources)
    with torch.inference_mode(), float32_matmul():
        w_u = to_float32(model.unembedding())
        for start in range(0, n_sources, group):
            sources = slice(start, min(start + group, n_sources))
            share = subrange(report, start / n_sources, sources.stop / n_sources)
            title = f"dynamic scores: sources {start + 1}-{sources.stop} of {n_sources}"
            pairs = all_pairs.of(sources)
            counts += group_counts(
                loaded, templates, pairs, len(relations), w_u, plan, titled(share, title)
            )
    report(1.0, "dynamic scores: done")
    n_pairs = np.array([len(r.src) for r in relations], dtype=float)
    return DynamicScores(relations, templates, counts / n_pairs[:, None])


@dataclass(frozen=True)
class InContext:
    """Static and dynamic scores of every head side by side: `table` one row per (layer,
    head, relation), `summary` their agreement per relation and variant
    (`agreement`), `settings` the sidecar record."""

    table: pd.DataFrame
    summary: pd.DataFrame
    settings: dict[str, Any]
    skipped: tuple[SkippedRelation, ...]


def with_multi_token(
    tokenizer: Any,
    valid: tuple[TokenizedRelation, ...],
    skipped: tuple[SkippedRelation, ...],
    bundled: tuple[str, ...],
) -> tuple[tuple[PromptRelation, ...], tuple[SkippedRelation, ...]]:
    """`valid` as prompts hold them, plus each `bundled` relation's pairs whose source is
    several tokens (`multi_token_relation`). A relation skipped for too few single-token pairs
    is scored when its single- and multi-token pairs together reach `MIN_PAIRS` (it has no
    static score); the relations still skipped are returned with the parts."""
    parts = [PromptRelation.of(r) for r in valid]
    still_skipped = []
    for relation in skipped:
        multi = multi_token_relation(tokenizer, relation.name)
        if relation.n_pairs + len(multi.src) < MIN_PAIRS:
            still_skipped.append(relation)
        elif relation.n_pairs:
            parts.append(PromptRelation.of(single_token_relation(tokenizer, relation.name)))
    names = {r.name for r in parts} & set(bundled)
    parts += [m for m in (multi_token_relation(tokenizer, n) for n in sorted(names)) if m.src]
    return tuple(sorted(parts, key=lambda r: (r.name, r.multi_token))), tuple(still_skipped)


def in_context(
    loaded: LoadedModel | StreamedCheckpoint,
    relations: tuple[str, ...],
    templates: tuple[str, ...] = DEFAULT_TEMPLATES,
    progress: Progress | None = None,
    byte_budget: int = DEFAULT_BYTE_BUDGET,
    relation_files: tuple[CustomRelation, ...] = (),
    multi_token: bool = False,
) -> InContext:
    """Static scores (`lib.classify.classify_heads`, no patterns) and dynamic scores of every
    head for the valid ones of `relations` (bundled names) and for `relation_files` (your own
    relations, `lib.scoring.relation_files`), with their agreement; with `multi_token`, the
    bundled relations' pairs whose source is several tokens too (`with_multi_token`). A bad
    template, or one too long for the longest source word, is refused before any scoring."""
    templates = check_templates(templates)
    settings = ClassifySettings(relations=relations, patterns=None, relation_files=relation_files)
    valid, skipped, files = scored_relations(loaded.tokenizer, settings)
    if multi_token:
        parts, skipped = with_multi_token(loaded.tokenizer, valid, skipped, relations)
    else:
        parts = tuple(PromptRelation.of(r) for r in valid)
    prompt_templates(loaded, templates, longest_source(parts))
    if valid or not multi_token:  # no valid relation: classify_heads says why
        static = classify_heads(loaded, settings, subrange(progress, 0, 0.1), byte_budget).table
    else:  # only relations the static score skips, scored with their multi-token pairs
        static = pd.DataFrame(head_columns(loaded))
    dynamic = dynamic_scores(
        loaded, parts, templates, byte_budget, progress=subrange(progress, 0.1, 1)
    )
    table = dynamic_table(static, dynamic)
    record = {
        **run_record(loaded),
        "compute_dtype": "float32",
        "templates": list(templates),
        "multi_token": multi_token,
        "relations": [
            {"name": r.name, "k": r.k, "n_pairs": len(r.src), "multi_token": r.multi_token}
            for r in parts
        ],
        "skipped_relations": [asdict(s) for s in skipped],
        "relation_files": files,
        "min_pairs": MIN_PAIRS,
        "definitions": {**VARIANT_DEFINITIONS, **PAIR_COLUMNS},
    }
    return InContext(table, agreement(table, dynamic), record, skipped)


def pooled(scores: np.ndarray, n_pairs: list[int]) -> np.ndarray:
    """`scores[..., p]` of parts with `n_pairs[p]` pairs each, as one score over all their
    pairs (a single part's scores unchanged)."""
    if len(n_pairs) == 1:
        return scores[..., 0]
    return (scores * np.array(n_pairs)).sum(axis=-1) / sum(n_pairs)


def static_column(static: pd.DataFrame, column: str) -> np.ndarray:
    """A static score column; NaN for a relation the static score skipped (`multi_token`)."""
    return static[column].to_numpy() if column in static else np.full(len(static), np.nan)


def dynamic_table(static: pd.DataFrame, dynamic: DynamicScores) -> pd.DataFrame:
    """One row per (layer, head, relation): the `LEADING` columns, `relation`, `k`, `n_pairs`,
    `n_multi_token` (`PAIR_COLUMNS`), `static_score`, `static_suppression` (from the per-head
    table `static`), the `VARIANTS` over all the relation's pairs."""
    scores = dynamic.mean_over_templates()
    frames = []
    for name in dict.fromkeys(r.name for r in dynamic.relations):
        parts = [p for p, r in enumerate(dynamic.relations) if r.name == name]
        sizes = [len(dynamic.relations[p].src) for p in parts]
        multi = [p for p in parts if dynamic.relations[p].multi_token]
        frame = static[list(LEADING)].assign(
            relation=name,
            k=dynamic.relations[parts[0]].k,
            n_pairs=sum(len(dynamic.relations[p].src) for p in parts if p not in multi),
            n_multi_token=sum(len(dynamic.relations[p].src) for p in multi),
            static_score=static_column(static, f"score_{name}"),
            static_suppression=static_column(static, f"suppression_{name}"),
        )
        for v, variant in enumerate(VARIANTS):  # the table is layer-major, as `static`
            frame[variant] = pooled(scores[v][:, :, parts], sizes).ravel()
        frames.append(frame)
    columns = [*LEADING, "relation", "k", *PAIR_COLUMNS]
    columns += ["static_score", "static_suppression", *VARIANTS]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["layer", "head"], kind="stable", ignore_index=True)[columns]


def correlation(x: np.ndarray, y: np.ndarray, method: str) -> float:
    """Pearson or Spearman correlation of `x` and `y`; NaN when either is constant.

    Spearman's rho is Pearson's r on the average ranks (ties share their mean rank), computed
    here so that pandas never reaches for SciPy, which this project does not install."""
    if np.isnan(x).any() or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    a, b = pd.Series(x), pd.Series(y)
    if method == "spearman":
        a, b = a.rank(), b.rank()
    return float(a.corr(b, method="pearson"))


def agreement(table: pd.DataFrame, dynamic: DynamicScores) -> pd.DataFrame:
    """Per relation, variant and kind of pairs (`pairs`: single-token, or multi-token with
    `multi_token`, apart), how the dynamic score agrees with its static twin over all
    heads: `pearson_r` and `spearman_rho` of (static, dynamic) with the dynamic score averaged
    over templates (one point per head), and `pearson_r_pooled` with one point per head and
    template, the static score repeated (the published experiment's correlation). Empty (NaN)
    when either side is the same for every head or there is no static score.
    `n_pairs` counts that kind's pairs; `n_prompts` = pairs x templates."""
    n_templates = len(dynamic.templates)
    scores = dynamic.mean_over_templates()
    rows = []
    for r, relation in enumerate(dynamic.relations):
        part = table[table["relation"] == relation.name]  # layer-major, as `fractions`
        for v, name in enumerate(VARIANTS):
            static = part[STATIC_TWIN[name]].to_numpy(dtype=float)
            mean = scores[v, :, :, r].ravel()
            per_template = dynamic.fractions[v, :, :, r].reshape(len(part), n_templates)
            rows.append(
                {
                    "relation": relation.name,
                    "variant": name,
                    "pairs": MULTI_TOKEN if relation.multi_token else SINGLE_TOKEN,
                    "static": STATIC_TWIN[name],
                    "k": relation.k,
                    "n_pairs": len(relation.src),
                    "n_templates": n_templates,
                    "n_prompts": len(relation.src) * n_templates,
                    "n_heads": len(part),
                    "pearson_r": correlation(static, mean, "pearson"),
                    "spearman_rho": correlation(static, mean, "spearman"),
                    "pearson_r_pooled": correlation(
                        np.repeat(static, n_templates), per_template.ravel(), "pearson"
                    ),
                }
            )
    return pd.DataFrame(rows)


def summary_path(csv_path: Path) -> Path:
    """`<stem>.summary.csv` next to the table."""
    return csv_path.with_name(f"{csv_path.stem}.summary.csv")


def output_paths(csv_path: Path) -> tuple[Path, Path, Path]:
    """The three files `write_in_context` writes: table, summary, settings."""
    return csv_path, summary_path(csv_path), settings_path(csv_path)


def write_in_context(result: InContext, csv_path: Path) -> tuple[Path, Path]:
    """Write the table, its summary and its settings together (`write_with_summary`); return
    (summary, settings)."""
    return write_with_summary(csv_path, result.table, result.summary, result.settings)


def write_with_summary(
    csv_path: Path, table: pd.DataFrame, summary: pd.DataFrame, settings: dict[str, Any]
) -> tuple[Path, Path]:
    """Write `table` to `csv_path`, `summary` and `settings` to the paths of `output_paths`,
    together (`lib.tables.result_files.replace_together`: a full disk leaves the old three
    whole); return (summary, settings) paths."""
    paths = output_paths(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    replace_together(
        [
            (paths[0], to_csv_bytes(table)),
            (paths[1], to_csv_bytes(summary)),
            (paths[2], (json.dumps(settings, indent=2) + "\n").encode()),
        ]
    )
    return paths[1], paths[2]
