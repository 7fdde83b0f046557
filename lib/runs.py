"""One classification run as a page asks for it, served from the result cache when it can be.

A `RunRequest` names a checkpoint (catalog hub id at a revision, or a local folder), where and
in which dtype to load it, and what to score. `classify_cached` turns it into a `ModelKey`
(device and dtype resolved, a folder fingerprinted) and a `ResultKey`, then returns the cached
result, or loads the model through the `ResidentModel` and scores it once. The result comes
back labelled with the request's thresholds (`lib.result_cache.relabel`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lib.catalog import memory_estimate, size_of
from lib.classify import Classification, ClassifySettings, classify_heads
from lib.loader import (
    LOCAL_REVISION,
    check_gpt_neox,
    config_memory_estimate,
    dtype_name,
    is_folder_source,
    read_config,
    resolve_device,
    resolve_dtype,
)
from lib.progress import Progress, subrange
from lib.relation_files import cache_identity, renamed_for
from lib.resident import ModelKey, ResidentModel
from lib.result_cache import Lookup, ResultCache, ResultKey, relabel

LOADING_SHARE = 0.1
"""Part of the progress bar given to loading (reading local weights takes seconds; a download
shows as this part standing still, with the loader's message)."""


@dataclass(frozen=True)
class RunRequest:
    """A checkpoint (`source`: catalog hub id or local folder; `revision` is ignored for a
    folder), how to load it (`lib.loader.DEVICES`, `lib.loader.DTYPES`) and what to score."""

    source: str
    revision: str = "main"
    device: str = "auto"
    dtype: str = "auto"
    settings: ClassifySettings = field(default_factory=ClassifySettings)


def folder_fingerprint(folder: str) -> str:
    """sha256 (16 hex digits) of the name, size and modification time of every file in a
    checkpoint folder, checked first (`lib.loader.read_config`): a re-saved folder gets a new
    fingerprint, so its cached results and loaded model are not reused."""
    read_config(folder, LOCAL_REVISION)
    files = sorted(path for path in Path(folder).expanduser().iterdir() if path.is_file())
    stats = [(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in files]
    return hashlib.sha256(repr(stats).encode()).hexdigest()[:16]


def model_key(request: RunRequest) -> ModelKey:
    """The request's model: device and dtype resolved, a folder's path resolved and
    fingerprinted; `InputError` for an unknown device or dtype, or a bad folder."""
    device = resolve_device(request.device)
    dtype = dtype_name(resolve_dtype(request.dtype, device))
    if is_folder_source(request.source):
        folder = str(Path(request.source).expanduser().resolve())
        return ModelKey(folder, LOCAL_REVISION, device.type, dtype, folder_fingerprint(folder))
    return ModelKey(request.source, request.revision, device.type, dtype)


def result_key(model: ModelKey, settings: ClassifySettings) -> ResultKey:
    """What the scores of `model` under `settings` depend on (thresholds excluded)."""
    return ResultKey(
        source=model.source,
        revision=model.revision,
        dtype=model.dtype,
        relations=settings.relations,
        patterns=settings.patterns,
        fingerprint=model.fingerprint,
        relation_files=cache_identity(settings.relation_files),
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
        with models.use(key, subrange(progress, 0, LOADING_SHARE)) as loaded:
            return classify_heads(loaded, request.settings, subrange(progress, LOADING_SHARE, 1))

    lookup = results.get_or_compute(result_key(key, request.settings), compute, progress)
    result = renamed_for(lookup.result, request.settings.relation_files)
    return Lookup(relabel(result, request.settings.thresholds), lookup.origin)


def memory_needed(source: str, dtype: torch.dtype) -> int | None:
    """Bytes needed to load and score `source` (`lib.catalog.memory_estimate`), from the
    catalog or a folder's config; None for a hub id outside the catalog (nothing is fetched)."""
    if is_folder_source(source):
        config = read_config(source, LOCAL_REVISION)
        check_gpt_neox(config, source)
        return config_memory_estimate(config, dtype)
    size = size_of(source)
    if size is None:
        return None
    return memory_estimate(size.n_params, size.d_model, size.vocab_rows, dtype)
