"""The results store of a sweep: a Parquet dataset, one row per (model, revision, layer, head).

A store is a folder, local or any `fsspec` URL every worker can write (`s3://bucket/store`
with `s3fs` installed and the usual AWS credentials; docs/methods.md §9). Layout:

    STORE/<job>.parquet          the per-head table of one (model, revision), see `JOB_COLUMNS`
    STORE/_failures/<job>.json   a failed job: model, revision, step, digest, one-line reason
    STORE/_sweep.json            the last sweep's plan (jobs, settings), for progress displays

Rows: `model` (as the sweep was given it: hub id or series folder), `revision`, `step` (int;
`main` = 143000), `layer`, `head`, every column of `lib.classify`'s per-head table (scores as
fractions, `label`, `score`), then `settings_digest` (what the job's numbers depend on, see
`lib.sweep.job_digest`) and `settings` (the classification's settings record, JSON).

Each job's file is written under a hidden temporary name (`.tmp-...`) and renamed into place,
so a reader never sees half a table and a killed sweep leaves nothing that is served later;
Parquet readers skip names starting with `.` or `_`, so `pandas.read_parquet(STORE)` reads
exactly the finished tables. This module imports no torch: pages read stores with it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lib.core.errors import InputError

KEY_COLUMNS = ("model", "revision", "step", "layer", "head")
DIGEST, SETTINGS = "settings_digest", "settings"
JOB_COLUMNS = (DIGEST, SETTINGS)
FAILURES = "_failures"
PLAN = "_sweep.json"
FAILURE_COLUMNS = ("model", "revision", "step", "settings_digest", "error")


@dataclass(frozen=True)
class JobKey:
    """One (model, revision) of a store: `model` as the sweep was given it, `step` its int."""

    model: str
    revision: str
    step: int

    @property
    def name(self) -> str:
        """The job's file stem: readable slug of model and revision, plus a hash of both so
        that two models slugging alike never share a file."""
        slug = re.sub(r"[^A-Za-z0-9.-]+", "-", self.model.strip("/")).strip("-.")[-60:]
        tag = hashlib.sha256(f"{self.model}\0{self.revision}".encode()).hexdigest()[:10]
        return f"{slug or 'model'}--{self.revision}--{tag}"


class Store:
    """A results store at `url` (folder path or fsspec URL); created on the first write."""

    def __init__(self, url: str) -> None:
        self.url = str(url)
        supported = ("file", "s3", "gs", "gcs", "az", "abfs")  # writable by every worker
        if "://" in self.url and self.url.split("://", 1)[0].lower() not in supported:
            where = ", ".join(f"{protocol}://" for protocol in supported)
            raise InputError(f"cannot use {self.url} as a store: give a folder or {where}")
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError, OSError) as error:
            raise InputError(f"cannot open store {self.url}: {error}") from None
        self.root = self.root.rstrip("/")

    @property
    def absolute_url(self) -> str:
        """The store's URL, a local path made absolute (a worker may run elsewhere)."""
        return self.fs.unstrip_protocol(self.root) if "://" in self.url else self.root

    def path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def table_path(self, job: JobKey) -> str:
        return self.path(f"{job.name}.parquet")

    def failure_path(self, job: JobKey) -> str:
        return self.path(FAILURES, f"{job.name}.json")

    def _put_atomically(self, path: str, data: bytes) -> None:
        """Write `data` to a hidden temporary name beside `path`, then rename it into place."""
        folder, _, name = path.rpartition("/")
        temporary = f"{folder}/.tmp-{uuid.uuid4().hex}-{name}"
        try:
            self.fs.makedirs(folder, exist_ok=True)
            with self.fs.open(temporary, "wb") as file:
                file.write(data)
        except OSError as error:
            raise InputError(f"cannot write the store {self.url}: {error}") from None
        self.fs.mv(temporary, path)

    def write_table(self, job: JobKey, table: pd.DataFrame, digest: str, settings: dict) -> None:
        """Store a finished job's per-head table (rows keyed by `job`), replacing any earlier
        table or failure of the same job."""
        rows = table.assign(model=job.model, revision=job.revision, step=job.step)
        rows = rows.assign(**{DIGEST: digest, SETTINGS: json.dumps(settings, sort_keys=True)})
        first = list(KEY_COLUMNS)
        rows = rows[first + [c for c in rows.columns if c not in first]]
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), sink)
        self._put_atomically(self.table_path(job), sink.getvalue().to_pybytes())
        self.clear_failure(job)

    def clear_failure(self, job: JobKey) -> None:
        """Forget the job's failure record (it succeeded, or is being run again)."""
        if self.fs.exists(self.failure_path(job)):
            self.fs.rm(self.failure_path(job))

    def write_failure(self, job: JobKey, digest: str, error: str) -> None:
        """Record that `job` failed, with its one-line reason; a stored table of the job stays."""
        record = {"model": job.model, "revision": job.revision, "step": job.step}
        record |= {DIGEST: digest, "error": error}
        self._put_atomically(self.failure_path(job), json.dumps(record).encode())

    def stored_digest(self, job: JobKey) -> str | None:
        """The settings digest of the job's stored table, None when it has none."""
        path = self.table_path(job)
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as file:
            column = pq.read_table(file, columns=[DIGEST]).column(DIGEST)
        return str(column[0]) if len(column) else None

    def write_plan(self, plan: dict[str, Any]) -> None:
        """The sweep's plan (`jobs`: model/revision/step dicts, `settings`), for progress."""
        self._put_atomically(self.path(PLAN), json.dumps(plan, indent=2).encode())

    def read_plan(self) -> dict[str, Any] | None:
        if not self.fs.exists(self.path(PLAN)):
            return None
        with self.fs.open(self.path(PLAN), "rb") as file:
            return json.loads(file.read())

    def table_files(self) -> list[str]:
        """The finished tables (hidden temporaries and `_` entries are not tables)."""
        if not self.fs.isdir(self.root):
            return []
        names = self.fs.ls(self.root, detail=False)
        return sorted(
            n for n in names if n.endswith(".parquet") and n.rsplit("/", 1)[-1][0] not in "._"
        )

    def version(self) -> str:
        """A hash of the stored tables' names, sizes and modification times: it changes when
        a job's table is added or replaced (a page's cache key)."""
        if not self.fs.isdir(self.root):
            return ""
        listing = self.fs.ls(self.root, detail=True)
        tables = set(self.table_files())
        stats = sorted(
            (e["name"], e.get("size"), str(e.get("mtime", e.get("LastModified"))))
            for e in listing
            if e["name"] in tables
        )
        return hashlib.sha256(repr(stats).encode()).hexdigest()[:16]

    def read(self) -> pd.DataFrame:
        """Every stored row, sorted by model, step, layer, head, one per step (`main` and
        `step143000` are one checkpoint); columns that only some tables have (a relation
        another tokenizer skipped) are empty in the others."""
        files = self.table_files()
        if not files:
            raise InputError(f"{self.url} holds no results yet: run python -m lib.sweep --out")
        schemas = [pq.read_schema(file, filesystem=self.fs) for file in files]
        dataset = ds.dataset(files, schema=pa.unify_schemas(schemas), filesystem=self.fs)
        frame = dataset.to_table().to_pandas()
        # `main` and `step143000` are one checkpoint: swept under both names, it counts once.
        frame = frame.drop_duplicates(["model", "step", "layer", "head"])
        return frame.sort_values(["model", "step", "layer", "head"], ignore_index=True)

    def read_failures(self) -> pd.DataFrame:
        """One row per failed job (`FAILURE_COLUMNS`) whose table is not stored since."""
        folder = self.path(FAILURES)
        names = self.fs.ls(folder, detail=False) if self.fs.isdir(folder) else []
        records = []
        for name in sorted(n for n in names if n.endswith(".json") and "/.tmp-" not in n):
            with self.fs.open(name, "rb") as file:
                records.append(json.loads(file.read()))
        return pd.DataFrame(records, columns=list(FAILURE_COLUMNS))


@dataclass(frozen=True)
class Progress:
    """How far the store's last sweep is: planned jobs, how many have a table, how many failed."""

    total: int
    stored: int
    failed: int

    @property
    def finished(self) -> bool:
        return self.stored + self.failed >= self.total


def sweep_progress(store: Store) -> Progress | None:
    """Progress of the store's last planned sweep (None when no sweep was planned there).
    A job counts once it has a table, or a failure record; re-planned jobs count again."""
    plan = store.read_plan()
    if plan is None:
        return None
    jobs = [JobKey(**job) for job in plan["jobs"]]
    digests = plan.get("digests", {})
    failed = {job.name for job in jobs if store.fs.exists(store.failure_path(job))}
    stored = {
        job.name
        for job in jobs
        if job.name not in failed and store.stored_digest(job) == digests.get(job.name)
    }
    return Progress(len(jobs), len(stored), len(failed))
