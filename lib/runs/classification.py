"""One classification run as a page asks for it, served from the result cache when it can be.

A `RunRequest` names a checkpoint (catalog hub id at a revision, or a local folder), where and
in which dtype to load it, and what to score. `classify_cached` turns it into a `ModelKey`
(device and dtype resolved, a hub revision pinned to its commit, a folder checked and
fingerprinted by content) and a `ResultKey`, then returns the cached result, or scores the
checkpoint once, read one layer at a time under the `ResidentModel`'s lock
(`ResidentModel.read`: no whole model is loaded; a resident model of the same key is used as
it is). The result comes back labelled with the request's thresholds
(`lib.runs.result_cache.relabel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from lib.checkpoints.fingerprint import folder_fingerprint
from lib.checkpoints.loader import (
    LOCAL_REVISION,
    check_source,
    dtype_name,
    hub_config,
    inspect_folder,
    is_folder_source,
    resolve_device,
    resolve_dtype,
    streamed_memory_estimate,
)
from lib.core import catalog
from lib.core.catalog import size_of
from lib.core.progress import Progress, subrange
from lib.runs.resident import ModelKey, ResidentModel
from lib.runs.result_cache import Lookup, ResultCache, ResultKey, relabel
from lib.scoring.pipeline import Classification, ClassifySettings, classify_heads
from lib.scoring.relation_files import CustomRelation, cache_identity

LOADING_SHARE = 0.1
"""Part of the progress bar given to loading (reading local weights takes seconds; a download
shows as this part standing still, with the loader's message)."""


@dataclass(frozen=True)
class RunRequest:
    """A checkpoint (`source`: catalog hub id or local folder; `revision` is ignored for a
    folder), how to load it (`lib.checkpoints.loader.DEVICES`, `lib.checkpoints.loader.DTYPES`) and
    what to score."""

    source: str
    revision: str = "main"
    device: str = "auto"
    dtype: str = "auto"
    settings: ClassifySettings = field(default_factory=ClassifySettings)


def model_key(request: RunRequest) -> ModelKey:
    """The request's model: device and dtype resolved; a folder's path resolved, checked
    (`lib.checkpoints.loader.inspect_folder`) and fingerprinted by content; a hub revision resolved
    to its commit (offline: from the hub cache). `InputError` for anything that cannot be loaded."""
    check_source(request.source)
    device = resolve_device(request.device)
    dtype = dtype_name(resolve_dtype(request.dtype, device))
    if is_folder_source(request.source):
        folder = Path(request.source).expanduser().resolve()
        inspect_folder(str(folder))
        fingerprint = folder_fingerprint(folder)
        return ModelKey(str(folder), LOCAL_REVISION, device.type, dtype, fingerprint=fingerprint)
    _, commit = hub_config(request.source, request.revision)
    return ModelKey(request.source, request.revision, device.type, dtype, commit=commit)


def result_key(model: ModelKey, settings: ClassifySettings) -> ResultKey:
    """What the scores of `model` under `settings` depend on (thresholds excluded); the code
    digest and library versions are today's (`ResultKey`'s defaults)."""
    return ResultKey(
        source=model.source,
        revision=model.revision,
        dtype=model.dtype,
        relations=settings.relations,
        patterns=settings.patterns,
        fingerprint=model.fingerprint,
        relation_files=cache_identity(settings.relation_files),
        commit=model.commit,
        device=model.device,
    )


def classify_cached(
    request: RunRequest,
    key: ModelKey,
    models: ResidentModel,
    results: ResultCache,
    progress: Progress | None = None,
) -> Lookup:
    """The request's per-head table, from `results` when it is there, else computed once on
    the model `models` lends for `key` (the request's `model_key`, computed once by the
    caller, who also needs it); labelled with `request.settings.thresholds`. A table cached for
    the same relation files under other names comes back under the request's names."""

    def compute() -> Classification:
        with models.read(key, subrange(progress, 0, LOADING_SHARE)) as loaded:
            return classify_heads(loaded, request.settings, subrange(progress, LOADING_SHARE, 1))

    lookup = results.get_or_compute(result_key(key, request.settings), compute, progress)
    result = renamed_for(lookup.result, request.settings.relation_files)
    return Lookup(relabel(result, request.settings.thresholds), lookup.origin)


def memory_needed(source: str, dtype: torch.dtype) -> int | None:
    """Bytes needed to score `source` reading it one layer at a time, as a run does
    (`lib.core.catalog.streamed_memory_estimate`), from the catalog or a folder's config
    (checked: `lib.checkpoints.loader.inspect_folder`); None for a hub id outside the catalog
    (nothing is fetched)."""
    if is_folder_source(source):
        return streamed_memory_estimate(inspect_folder(source), dtype)
    size = size_of(source)
    if size is None:
        return None
    return catalog.streamed_memory_estimate(size.d_model, size.vocab_rows, 4 * size.d_model)


def renamed_for(result: Classification, relations: Sequence[CustomRelation]) -> Classification:
    """`result`, computed for files with the same `cache_identity` as `relations`, with its
    custom relations' columns and records renamed to `relations`' names and the relation
    columns in name order, as `lib.scoring.pipeline.classify_heads` writes them (labels are not
    updated: relabel afterwards)."""
    stored = result.settings.get("relation_files", [])
    wanted: dict[tuple[str, int], list[str]] = {}
    for relation in relations:
        wanted.setdefault((relation.sha256, relation.k), []).append(relation.name)
    # Files with equal bytes and k have equal scores, so any pairing of equals is right.
    names = {record["name"]: wanted[(record["sha256"], record["k"])].pop() for record in stored}
    if all(old == new for old, new in names.items()):
        return result

    def rename(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, "name": names.get(record["name"], record["name"])}

    kinds = ("score", "suppression")  # a relation's two columns, in table order
    records = sorted(map(rename, result.settings["relations"]), key=lambda r: r["name"])
    columns = [f"{kind}_{r['name']}" for kind in kinds for r in records]
    table = result.table.rename(
        columns={f"{kind}_{old}": f"{kind}_{new}" for old, new in names.items() for kind in kinds}
    )
    others = [column for column in table.columns if column not in set(columns)]
    at = list(table.columns).index(next(c for c in table.columns if c in set(columns)))
    settings = {
        **result.settings,
        "relations": records,
        "relation_files": sorted(map(rename, stored), key=lambda r: r["name"]),
    }
    return replace(result, table=table[[*others[:at], *columns, *others[at:]]], settings=settings)
