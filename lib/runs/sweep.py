"""Classify many checkpoints of a training run into one results store (`lib.runs.store`); the
command line is `python -m lib.sweep`.

A SOURCE is a catalog hub id (`EleutherAI/pythia-70m`, its revisions are the hub's training
checkpoints) or a local series folder whose subfolders `step<N>` are `save_pretrained`
checkpoints (`python -m lib.synthetic --series` writes one). One job per (model, revision):
open it to be read one layer at a time (`lib.checkpoints.loader.open_checkpoint`; with
`--ablate`, load it whole, `load_model`: the causal check runs the whole model), score it
(`lib.scoring.pipeline.classify_heads`: the same table either way), write its table into the
store (with `--ablate`, also the causal check's curves of the same loaded model,
`lib.runs.stored_ablation`), release it. Jobs whose table is stored with
the same settings digest (`job_digest`) are not run again; a failed job is recorded in the
store with its one-line reason and the sweep goes on. Exit code 0 when every job has its
table, 1 when one failed, 2 for bad input. docs/methods.md §9.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import gc
import hashlib
import importlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
import transformers

from lib.checkpoints.loader import (
    LoadedModel,
    StreamedCheckpoint,
    is_folder_source,
    open_for_scoring,
    read_config,
)
from lib.checkpoints.validation import check_config
from lib.core.catalog import LOG_STEPS, REVISIONS, size_of, step_of
from lib.core.errors import InputError, is_whole_number
from lib.core.paths import PROJECT_ROOT
from lib.runs.classification import RunRequest, model_key, result_key
from lib.runs.store import JobKey, Store, settings_differences
from lib.runs.stored_ablation import ablation_entries
from lib.scoring.ablation import AblationSettings, ablation_curves
from lib.scoring.pipeline import ClassifySettings, classify_heads
from lib.scoring.provenance import ablation_code_digest, scoring_code_digest

ENGINES = ("process", "ray")
REVISION_SETS = (
    "all: every training checkpoint of a hub model (step0 ... step143000; main is step143000), "
    "every step<N> subfolder of a series folder; log: step0, the log-spaced steps 1, 2, 4, "
    "..., 512 and ten evenly spaced thousands (14000, 29000, ..., 129000, 143000), those a "
    "series folder has; or a comma list such as step0,step1000,main"
)
RAY_RETRIES = 3
"""Times Ray reruns a job whose worker died (a lost node, a killed process); a job that fails
on its input is a recorded result, never retried."""
RAY_RUNTIME_ENV = {
    "working_dir": str(PROJECT_ROOT),
    # gitignore patterns, the last match wins: every top-level entry (`/*` would match the root
    # itself) but the code and the relation data, never the series folders and stores a README
    # workflow keeps in the checkout (past 512 MiB Ray refuses the upload).
    "excludes": [
        *("/[!.]*", "/.?*"),
        *("!/lib", "!/lib/**", "__pycache__"),
        *("!/data", "!/data/relations", "!/data/relations/**"),
    ],
}
"""Ray workers import `lib` and hash `data/relations` (`scoring_code_digest`) from this
checkout's copy shipped to the cluster's nodes: only those two folders."""
RAY_ADDRESS_FORMS = (
    "auto (the Ray started on this machine by `ray start --head`), HOST:PORT (a cluster's GCS "
    "address, port 6379 by default) or ray://HOST:PORT (Ray Client, needs ray[client])"
)
RAY_CONNECT_TIMEOUT = 5.0
"""Seconds to reach a cluster's address before Ray tries: Ray itself retries a closed port for
many minutes."""
LOCAL_RAY_OBJECT_STORE = 256 * 2**20
"""Object store of a local Ray started by the sweep: jobs pass only small results."""


@dataclass(frozen=True)
class Job:
    """One checkpoint to classify: `key` names it in the store; `source` and `revision` are
    what the loader gets (a series' `step<N>` folder, or the hub id at its revision)."""

    key: JobKey
    source: str
    revision: str


@dataclass(frozen=True)
class SweepSettings:
    """How every job loads and scores its checkpoint; with `ablation`, each job also runs the
    causal check on its relations (`ablation_curves`, docs/methods.md §10) on the same loaded
    model, its static scores the job's own, and stores the curves with its table
    (`lib.runs.stored_ablation`)."""

    classify: ClassifySettings = field(default_factory=ClassifySettings)
    device: str = "auto"
    dtype: str = "auto"
    ablation: AblationSettings | None = None


@dataclass(frozen=True)
class JobResult:
    """What became of a job: `stored` (table written), `kept` (its table was already there with
    the same digest) or `failed` (`error` is the one-line reason, recorded in the store)."""

    job: Job
    status: Literal["stored", "kept", "failed"]
    error: str | None = None
    seconds: float = 0.0


def series_revisions(folder: str) -> list[str]:
    """The `step<N>` subfolders of a series folder, by step; `InputError` when it has none."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(f"no such folder: {folder}; give a hub id or a folder of step<N> folders")
    names = [p.name for p in path.iterdir() if p.is_dir() and p.name.startswith("step")]
    steps = sorted((step_of(name), name) for name in names if is_whole_number(name[4:]))
    if not steps:
        raise InputError(
            f"{folder} has no step<N> subfolders; a series folder holds one save_pretrained "
            "checkpoint per step, e.g. step0, step1000 (python -m lib.synthetic --series)"
        )
    return [name for _, name in steps]


def plan_jobs(models: Sequence[str], revisions: str = "all") -> list[Job]:
    """One job per (model, revision) for `revisions` (`REVISION_SETS`), in the order given."""
    if not models:
        raise InputError("no model given: add --model SOURCE (a hub id or a series folder)")
    jobs = []
    for model in dict.fromkeys(normal_source(model) for model in models):
        local = is_folder_source(model)
        if not local and size_of(model) is None:
            raise InputError(
                f"{model!r} is neither a folder nor a Pythia hub id such as EleutherAI/pythia-70m"
            )
        # `main` is `step143000`: `all` takes the step, a list may name either, not both.
        available = series_revisions(model) if local else list(REVISIONS)
        picked = pick_revisions(revisions, available, model)
        check_distinct_steps(model, picked)
        if local:
            check_one_shape(model, picked)
        for revision in picked:
            # Absolute: Ray workers run in a copy of this checkout, not in this folder.
            source = str(Path(model).expanduser().resolve() / revision) if local else model
            key = JobKey(model, revision, step_of(revision))
            jobs.append(Job(key, source, "main" if local else revision))
    return jobs


def check_distinct_steps(model: str, revisions: Sequence[str]) -> None:
    """`InputError` naming two revisions of one training step (`main` and `step143000`, or
    folders `step10` and `step00010`): the same checkpoint, swept once."""
    by_step: dict[int, str] = {}
    for revision in revisions:
        step = step_of(revision)
        if step in by_step:
            raise InputError(
                f"{model}: {by_step[step]} and {revision} are the same checkpoint (step {step}); "
                "sweep one of them"
            )
        by_step[step] = revision


def check_one_shape(model: str, revisions: Sequence[str]) -> None:
    """`InputError` when the steps of a series folder differ in layers, heads or width: its
    heads are followed over training by (layer, head). A step whose config does not read is
    left to fail as its own job."""
    seen: dict[tuple[int, int, int], str] = {}
    for revision in revisions:
        folder = Path(model).expanduser() / revision
        try:
            shape = check_config(read_config(folder, revision), f"{revision}/config.json")
        except InputError:
            continue
        seen.setdefault((shape.n_layers, shape.n_heads, shape.d_model), revision)
        if len(seen) > 1:
            (first, a), (second, b) = seen.items()
            raise InputError(
                f"{model}: its steps differ in shape: {a} has {first[0]} layers × {first[1]} "
                f"heads (d_model {first[2]}), {b} {second[0]} × {second[1]} (d_model "
                f"{second[2]}); a series folder holds the checkpoints of one model"
            )


def normal_source(model: str) -> str:
    """A series folder as its absolute path, so that `series`, `series/` and `./series` are
    one model of a store; a hub id as given."""
    return str(Path(model).expanduser().resolve()) if is_folder_source(model) else model


def pick_revisions(text: str, available: list[str], model: str) -> list[str]:
    """`all`, `log` or a comma list, checked against the model's `available` revisions."""
    if text == "all":
        return [revision for revision in available if revision != "main"]
    if text == "log":
        return [r for r in available if r != "main" and step_of(r) in LOG_STEPS]
    asked = [part.strip() for part in text.split(",") if part.strip()]
    missing = [revision for revision in asked if revision not in available]
    if missing or not asked:
        raise InputError(
            f"{model} has no revision {', '.join(missing) or repr(text)}; "
            f"--revisions takes {REVISION_SETS}"
        )
    return list(dict.fromkeys(asked))


def job_digest(job: Job, settings: SweepSettings) -> str:
    """sha256 (16 hex digits) of what a stored job's table depends on: the result cache's key
    of the job (`lib.runs.classification.result_key`: the checkpoint by hub commit or folder
    fingerprint, resolved device and dtype, relations and pattern settings, scoring-code
    digest, torch and transformers versions) and the thresholds, since a stored table carries
    its labels. One definition serves the cache and the store (docs/methods.md §7). With
    `settings.ablation`, also what its curves depend on (`asked_ablation`, and the causal
    check's code digest), so a sweep with `--ablate` recomputes a job stored without it."""
    request = RunRequest(job.source, job.revision, settings.device, settings.dtype)
    key = result_key(model_key(request), settings.classify)
    record = {"result_key": key.digest, "thresholds": asdict(settings.classify.thresholds)}
    if settings.ablation is not None:
        record["ablation"] = {**asked_ablation(settings), "code": ablation_code_digest()}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def store_settings(settings: SweepSettings) -> dict[str, Any]:
    """What every table of one store shares (`lib.runs.store`: one store, one set of settings):
    the relations, your relation files (name, k and a hash of their pairs), thresholds,
    pattern settings and the dtype asked for."""
    classify = settings.classify
    files = [
        {"name": f.name, "k": f.k, "pairs": hashlib.sha256(repr(f.rows).encode()).hexdigest()[:16]}
        for f in classify.relation_files
    ]
    return {
        "relations": list(classify.relations),
        "relation_files": files,
        "thresholds": asdict(classify.thresholds),
        "patterns": asdict(classify.patterns) if classify.patterns else None,
        "dtype": settings.dtype,
    }


def asked_ablation(settings: SweepSettings) -> dict[str, Any]:
    """The causal check a sweep asks for (`lib.runs.stored_ablation`'s `asked`): its settings
    and the relations, the sweep's bundled ones (each on its own template, docs/methods.md
    §10); empty without `settings.ablation`."""
    if settings.ablation is None:
        return {}
    return {**asdict(settings.ablation), "relations": list(settings.classify.relations)}


def refuse_other_settings(
    store: Store, stored: dict[str, dict[str, Any]], settings: SweepSettings, jobs: Sequence[Job]
) -> None:
    """`InputError` when the store keeps tables (`stored`: store settings by job name) swept
    with other settings that this sweep would not replace: the store would mix them."""
    wanted = store_settings(settings)
    planned = {job.key.name for job in jobs}
    kept = [other for name, other in stored.items() if name not in planned and other != wanted]
    if kept:
        theirs, ours = settings_differences([kept[0], wanted])
        raise InputError(
            f"{store.url} holds {len(kept)} tables of other jobs swept with {theirs}, not {ours}; "
            "sweep into another store folder, or with the store's settings"
        )


def known_digest(job: Job, settings: SweepSettings) -> str | None:
    """`job_digest`, or None for a checkpoint folder too broken to fingerprint: its job runs
    and fails with the reason."""
    try:
        return job_digest(job, settings)
    except InputError:
        return None


def one_line(error: BaseException) -> str:
    """An error's message on one line, its type named unless it is an `InputError`."""
    text = " ".join(str(error).split()) or "no message"
    return text if isinstance(error, InputError) else f"{type(error).__name__}: {text}"


def run_job(job: Job, settings: SweepSettings, store_url: str) -> JobResult:
    """Load, score, write and release one checkpoint. Any failure (no network, a corrupt
    file, out of memory) is recorded in the store and returned, never raised: the sweep goes
    on, and Ray does not retry a job that failed on its input."""
    start = time.perf_counter()
    transformers.utils.logging.disable_progress_bar()  # a Ray worker's log: one line per job
    store = Store(store_url)
    digest = ""
    try:
        digest = job_digest(job, settings)
        # Only the causal check needs a whole model; the scores read one layer at a time.
        weights = "streamed" if settings.ablation is None else "whole"
        loaded = open_for_scoring(
            job.source, job.revision, settings.device, settings.dtype, weights=weights
        )
        try:
            result = classify_heads(loaded, settings.classify)
            extra = ablation_of(loaded, result.table, settings)
        finally:
            device = loaded.device
            del loaded  # the model goes before the next job loads (memory stays flat)
            release(device)
        record = {**result.settings, "settings_digest": digest}
        record |= {"scoring_code_digest": scoring_code_digest(), "requested_dtype": settings.dtype}
        table = result.table.drop(columns=["model", "revision"])
        store.write_table(job.key, table, digest, record, store_settings(settings), extra)
    except Exception as error:  # every failure is a recorded result, not a crash
        store.write_failure(job.key, digest, one_line(error))
        return JobResult(job, "failed", one_line(error), time.perf_counter() - start)
    return JobResult(job, "stored", None, time.perf_counter() - start)


def ablation_of(
    loaded: LoadedModel | StreamedCheckpoint, static: pd.DataFrame, settings: SweepSettings
) -> dict[str, bytes]:
    """The causal check of a job's loaded model, as its table's extra entries (none without
    `settings.ablation`, whose jobs read `loaded` one layer at a time); `static` is the job's
    classification, whose scores rank the heads."""
    asked = settings.ablation
    if asked is None:
        return {}
    assert isinstance(loaded, LoadedModel)  # run_job loads a whole model for the check
    result = ablation_curves(
        loaded,
        settings.classify.relations,
        asked.template,
        asked.max_heads,
        asked.draws,
        asked.seed,
        static=static,
    )
    return ablation_entries(result.curves, result.settings, asked_ablation(settings))


def release(device: torch.device) -> None:
    """Return a released model's memory: Python's cycles, the C heap's free pages (glibc keeps
    them: in a 15-job run of the planted series, RSS rose 25 MiB without the trim and 7 MiB
    with it), then the CUDA cache."""
    gc.collect()
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
            ctypes.CDLL("libc.so.6").malloc_trim(0)
    if device.type == "cuda":
        torch.cuda.empty_cache()


Report = Callable[[JobResult], None]


def sweep(
    jobs: Sequence[Job],
    settings: SweepSettings,
    store_url: str,
    engine: str = "process",
    ray_address: str | None = None,
    report: Report | None = None,
) -> list[JobResult]:
    """Run the jobs not already stored with the same digest, in process or as Ray tasks, and
    return every job's result (in `jobs` order). The store's plan (`lib.runs.store`) lists them all,
    so a page can show progress while the sweep runs. A stored table failing its check is
    computed again; tables of other settings are refused (`refuse_other_settings`)."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    store = Store(store_url)
    store_url = store.absolute_url  # workers may run in another folder
    store.remove_stale_temporaries()
    stored = [(table.name, table.digest, table.store_settings) for table in store.tables()]
    refuse_other_settings(store, {name: other for name, _, other in stored}, settings, jobs)
    stored_digests = {name: digest for name, digest, _ in stored}
    digests = {job.key.name: known_digest(job, settings) for job in jobs}
    store.write_plan(
        {
            "jobs": [asdict(job.key) for job in jobs],
            "digests": digests,
            "settings": {**asdict(settings), "engine": engine},
        }
    )
    results: dict[str, JobResult] = {}
    pending = []
    for job in jobs:
        digest = digests[job.key.name]
        if digest is not None and stored_digests.get(job.key.name) == digest:
            results[job.key.name] = JobResult(job, "kept")
            (report or no_report)(results[job.key.name])
        else:
            store.clear_failure(job.key)  # retried now: its old failure no longer stands
            pending.append(job)
    run = run_on_ray if engine == "ray" else run_in_process
    for result in run(pending, settings, store_url, ray_address):
        results[result.job.key.name] = result
        (report or no_report)(result)
    return [results[job.key.name] for job in jobs]


def no_report(result: JobResult) -> None:
    """A `Report` that reports nothing."""


def run_in_process(
    jobs: Sequence[Job], settings: SweepSettings, store_url: str, ray_address: str | None
) -> Iterable[JobResult]:
    """One job after the other in this process (`ray_address` unused)."""
    for job in jobs:
        yield run_job(job, settings, store_url)


def run_on_ray(
    jobs: Sequence[Job], settings: SweepSettings, store_url: str, ray_address: str | None
) -> Iterable[JobResult]:
    """The same `run_job` as Ray tasks, one GPU each with `--device cuda`, yielded as they
    finish, on the Ray of `connect_ray`. A task whose worker died is rerun up to `RAY_RETRIES`
    times; past that it is recorded as failed."""
    import ray  # only here: nothing else needs Ray installed

    connect_ray(ray_address, settings.device)
    task = ray.remote(run_job).options(
        num_cpus=1,
        num_gpus=1 if settings.device == "cuda" else 0,
        max_retries=RAY_RETRIES,
        retry_exceptions=False,
    )
    running = {task.remote(job, settings, store_url): job for job in jobs}
    while running:
        (done,), _ = ray.wait(list(running), num_returns=1)
        job = running.pop(done)
        try:
            yield ray.get(done)
            continue
        except ray.exceptions.RayTaskError as error:  # run_job raised: its store write failed
            reason = one_line(error.cause)
        except ray.exceptions.RayError as error:  # its worker died, retries included
            reason = f"Ray lost the job's worker {RAY_RETRIES + 1} times: {one_line(error)}"
        Store(store_url).write_failure(job.key, known_digest(job, settings) or "", reason)
        yield JobResult(job, "failed", reason)


def connect_ray(ray_address: str | None, device: str) -> None:
    """Use the Ray already started in this process, else connect to the cluster at
    `ray_address` (or $RAY_ADDRESS), else start a local one; `InputError` in one line, within
    seconds, for an address that is malformed, unreachable or not a cluster, and for
    `device` cuda on a cluster without a GPU (its tasks would wait forever)."""
    import ray

    started = not ray.is_initialized()
    if started:
        address = checked_ray_address(ray_address or os.environ.get("RAY_ADDRESS") or None)
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                object_store_memory=None if address else LOCAL_RAY_OBJECT_STORE,
                runtime_env=copy.deepcopy(RAY_RUNTIME_ENV),  # Ray edits it in place
            )
        except (ConnectionError, ValueError) as error:  # Ray's words for a cluster not there
            where = f"Ray at {address}" if address else "a local Ray"
            hint = "; start one with `ray start --head`" if address == "auto" else ""
            raise InputError(f"cannot run on {where}: {one_line(error)}{hint}") from None
    if device == "cuda" and ray.cluster_resources().get("GPU", 0) < 1:
        if started:
            ray.shutdown()
        raise InputError(
            "--device cuda runs one GPU per job, and the Ray cluster has no GPU; "
            "give --device cpu, or a cluster with GPUs with --ray-address"
        )


def checked_ray_address(address: str | None) -> str | None:
    """`address` if it is one of `RAY_ADDRESS_FORMS` and, for a host and port, something
    listens there; `InputError` otherwise. None (start a local Ray) stays None."""
    if address is None or address == "auto":
        return address
    if address.startswith("ray://"):
        try:
            importlib.import_module("grpc")  # Ray Client's transport: what ray[client] adds
        except ImportError:
            import ray

            raise InputError(
                f"{address}: ray:// goes through Ray Client, which needs "
                f"`pip install 'ray[client]=={ray.__version__}'`; or give the cluster's GCS "
                "address HOST:PORT"
            ) from None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if "://" in host or not host or not (port.isascii() and port.isdigit()):
        web = " (http:// is a dashboard's, which runs no tasks)" if "http" in host else ""
        raise InputError(f"{address!r} is not a Ray address{web}; give {RAY_ADDRESS_FORMS}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), RAY_CONNECT_TIMEOUT).close()
    except (OSError, OverflowError) as error:
        raise InputError(
            f"no Ray cluster answers at {address} ({one_line(error)}); start one with "
            "`ray start --head`, or give its address"
        ) from None
    return address
