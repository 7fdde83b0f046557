"""The causal check's curves in a sweep's results store (`python -m lib.sweep --ablate`,
docs/methods.md §10).

A job swept with `--ablate` keeps its checkpoint's curves (`lib.tables.ablation.CURVE_COLUMNS`,
as `python -m lib.ablate` writes them) in its own table's file, as two extra entries of the
Parquet metadata (`lib.runs.store.Store.write_table`): `CURVES` (the curves, Arrow IPC) and
`RECORD` (JSON: `asked`, the ablation settings asked for, the same for every job of the sweep;
`record`, the settings sidecar of `lib.scoring.ablation.ablation_curves`). They are under the
table's checksum and renamed into place with it, so a job's curves and its heads are never out
of step. A store swept without `--ablate` has no such entries: it reads as before, and
`read_ablation` says which (model, revision) lack curves and the command that adds them
(`add_commands`). The summary is computed from the curves when read
(`lib.tables.ablation.summarize`). This module imports no torch: pages read it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from lib.core.errors import InputError
from lib.runs.store import DECODE_ERRORS, Store, StoredTable, Warn, settings_differences
from lib.runs.store import warn_on_stderr as default_warn
from lib.tables.ablation import CURVE_COLUMNS, SUMMARY_COLUMNS, summarize
from lib.tables.labels import Thresholds

CURVES, RECORD = "ablation_curves", "ablation_record"
JOB = ("model", "revision", "step")


def ablation_entries(
    curves: pd.DataFrame, record: dict[str, Any], asked: dict[str, Any]
) -> dict[str, bytes]:
    """A job's curves and records as the extra entries of its stored table."""
    table = pa.Table.from_pandas(curves[list(CURVE_COLUMNS)], preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    text = json.dumps({"asked": asked, "record": record}, sort_keys=True)
    return {CURVES: sink.getvalue().to_pybytes(), RECORD: text.encode()}


@dataclass(frozen=True)
class JobAblation:
    """One job's stored causal check: its `curves`, the settings `asked` and each relation's
    number of prompts (`n_prompts`, for the summary)."""

    curves: pd.DataFrame
    asked: dict[str, Any]
    n_prompts: dict[str, int]


def job_ablation(stored: StoredTable) -> JobAblation | None:
    """The causal check stored with a table, None when it was swept without `--ablate`;
    `InputError` when its entries do not decode (written by another version)."""
    if CURVES not in stored.extra or RECORD not in stored.extra:
        return None
    try:
        curves = pa.ipc.open_stream(stored.extra[CURVES]).read_all().to_pandas()
        records = json.loads(stored.extra[RECORD])
        n_prompts = {r["name"]: int(r["n_pairs"]) for r in records["record"]["relations"]}
        asked = dict(records["asked"])
    except DECODE_ERRORS as error:
        raise InputError(f"{stored.name}: its ablation curves do not read ({error})") from None
    return JobAblation(curves.astype({"layer": "Int64", "head": "Int64"}), asked, n_prompts)


@dataclass(frozen=True)
class StoredAblation:
    """A store's causal checks: `curves` and `summary` (`JOB` columns, then
    `lib.tables.ablation`'s), the settings `asked` (None when no job has curves), the
    revisions of each model that have none (`missing`), and the store's settings."""

    curves: pd.DataFrame
    summary: pd.DataFrame
    asked: dict[str, Any] | None
    missing: dict[str, list[str]]
    store_settings: dict[str, Any]


def read_ablation(store: Store, warn: Warn = default_warn) -> StoredAblation:
    """Every job's curves and summary, one per (model, step) as `Store.read`; a table failing
    its check is skipped, and curves that do not decode count as missing (one line each to
    `warn`); `InputError` when the jobs' curves were asked for with different settings."""
    curves, summaries, asked, seen = [], [], [], set()
    missing: dict[str, list[tuple[int, str]]] = {}
    store_settings: dict[str, Any] = {}
    for stored in store.tables(warn):
        if not stored.table.num_rows:
            continue
        first = stored.table.slice(0, 1).to_pylist()[0]
        model, revision, step = (first[c] for c in JOB)
        store_settings = stored.store_settings
        if (model, step) in seen:
            continue
        seen.add((model, step))
        try:
            found = job_ablation(stored)
        except InputError as error:
            warn(f"skipped {error}: computed again by python -m lib.sweep --ablate")
            found = None
        if found is None:
            missing.setdefault(model, []).append((step, revision))
            continue
        job = {"model": model, "revision": revision, "step": step}
        curves.append(found.curves.assign(**job))
        summaries.append(summarize(found.curves, found.n_prompts).assign(**job))
        asked.append(found.asked)
    check_one_asked(store, asked)
    return StoredAblation(
        frame(curves, CURVE_COLUMNS),
        frame(summaries, SUMMARY_COLUMNS),
        asked[0] if asked else None,
        {model: [r for _, r in sorted(found)] for model, found in missing.items()},
        store_settings,
    )


def frame(parts: Sequence[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """`parts` as one frame, `JOB` columns first, sorted by model and step."""
    order = [*JOB, *columns]
    if not parts:
        return pd.DataFrame(columns=order)
    joined = pd.concat(parts, ignore_index=True)[order]
    return joined.sort_values(["model", "step"], kind="stable", ignore_index=True)


def check_one_asked(store: Store, asked: Sequence[dict[str, Any]]) -> None:
    """`InputError` naming the settings that differ when the jobs' curves were asked for with
    different ablation settings."""
    groups = list({json.dumps(a, sort_keys=True): a for a in asked}.values())
    if len(groups) > 1:
        texts = settings_differences(groups[:2])
        raise InputError(
            f"{store.url} holds ablation curves swept with different settings ({texts[0]} vs "
            f"{texts[1]}); sweep every step again with one set (python -m lib.sweep --ablate)"
        )


def add_commands(store_url: str, ablation: StoredAblation) -> list[str]:
    """The `python -m lib.sweep --ablate` command, one per model, that adds the curves its
    `missing` revisions lack: the store's own scoring settings (so no table of another job is
    refused, `lib.runs.sweep.refuse_other_settings`) and the ablation settings already asked
    for (so the store keeps one set). A model's other jobs are kept as they are."""
    settings = ablation.store_settings
    common = ["--out", store_url, "--relations", ",".join(settings.get("relations", []))]
    if not settings.get("relations"):
        common[-1] = "none"
    defaults = asdict(Thresholds())
    for name, value in settings.get("thresholds", {}).items():
        if defaults.get(name) != value:
            common += ["--threshold", f"{name}={value}"]
    if settings.get("patterns") is None:
        common.append("--no-patterns")
    if settings.get("dtype", "auto") != "auto":
        common += ["--dtype", settings["dtype"]]
    for relation_file in settings.get("relation_files", []):
        common += ["--relation-file", f"{relation_file['name']}.csv"]
        common += ["--relation-k", f"{relation_file['name']}={relation_file['k']}"]
    common.append("--ablate")
    asked = ablation.asked or {}
    for option, name in (("--template", "template"), ("--max-heads", "max_heads")):
        if asked.get(name) is not None:
            common += [option, str(asked[name])]
    for option, name in (("--random-draws", "draws"), ("--seed", "seed")):
        if name in asked:
            common += [option, str(asked[name])]
    command = ["python", "-m", "lib.sweep"]
    return [
        shlex.join([*command, "--model", model, "--revisions", ",".join(revisions), *common])
        for model, revisions in ablation.missing.items()
    ]
