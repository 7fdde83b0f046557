"""The results store of a sweep: a Parquet dataset, one row per (model, revision, layer, head).

A store is a folder, local or any `fsspec` URL every worker can write (`s3://bucket/store`
with `s3fs` installed and the usual AWS credentials; docs/methods.md §9). Layout:

    STORE/<job>.parquet          the per-head table of one (model, revision), see `JOB_COLUMNS`
    STORE/_failures/<job>.json   a failed job: model, revision, step, digest, one-line reason
    STORE/_sweep.json            the last sweep's plan (jobs, settings), for progress displays

Rows: `model` (a hub id, or a series folder's absolute path), `revision`, `step` (int;
`main` = 143000), `layer`, `head`, every column of `lib.classify`'s per-head table (scores as
fractions, `label`, `score`), then `settings_digest` (what the job's numbers depend on, see
`lib.sweep.job_digest`) and `settings` (the classification's settings record, JSON). A table
may carry extra entries in its file's metadata (keys `EXTRA` + name, under its checksum): the
causal check's curves of a sweep with `--ablate` (`lib.runs.stored_ablation`).

Each job's file is written under a hidden temporary name (`.tmp-...`) and renamed into place,
so a reader never sees half a table and a killed sweep leaves nothing that is served later;
Parquet readers skip names starting with `.` or `_`, so `pandas.read_parquet(STORE)` reads
the finished tables (unchecked). A sweep removes temporaries older than
`lib.tables.result_files.STALE_STAGING_S` (a killed or out-of-space writer's; a younger one may be
another sweep's write in progress). A job's file name never starts with `.` or `_`.

**Integrity.** Each table carries, in the Parquet file's key-value metadata (`INTEGRITY`, so a
table stays one self-contained file and is renamed into place in one step), its row count, its
store settings (below) and a SHA-256 over what a reader gets from it: the decoded columns'
names, types and values (as Arrow's CSV, whose floats round-trip exactly), the other metadata
(pandas') and the row count and store settings. Every reader (`Store.tables`, and `read`,
`stored_digest`, the sweep's resume check built on it) recomputes it from the decoded table, so
a file that is cut short, empty, a folder, another tool's Parquet file (no record), or changed by
a single bit anywhere either fails to decode, fails the check, or decodes to the very table
that was written: a damaged table is never served. Such a file is skipped with one line (`Warn`)
and its job is computed again by the next sweep. Tables of earlier versions, which carry no
record, count as foreign: the next sweep computes them again.

**One store, one set of settings.** `store_settings` (what a table's numbers and labels mean:
relations and their k, relation files, thresholds, pattern settings, dtype; `lib.sweep` makes
it) is the same for every table of a store. Readers refuse a store that mixes them, naming the
settings that differ; a sweep refuses to add tables with other settings unless it replaces every
table that has them (a re-sweep of the same jobs with, say, another k). Thresholds count too:
labels could be re-derived from the stored scores (`lib.runs.result_cache.relabel`), but the store
serves its stored labels, so a store keeps one set of thresholds.

This module imports no torch: pages read stores with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from lib.core.errors import InputError
from lib.tables.result_files import STALE_STAGING_S

KEY_COLUMNS = ("model", "revision", "step", "layer", "head")
DIGEST, SETTINGS = "settings_digest", "settings"
JOB_COLUMNS = (DIGEST, SETTINGS)
FAILURES = "_failures"
PLAN = "_sweep.json"
FAILURE_COLUMNS = ("model", "revision", "step", "settings_digest", "error")
INTEGRITY = b"head_atlas_integrity"
EXTRA = b"head_atlas_extra:"
"""Prefix of the metadata keys of a table's extra entries (`Store.write_table`'s `extra`)."""
TEMPORARY = ".tmp-"
MAX_SETTING_TEXT = 80
"""A setting's value is cut to this many characters in a message (a long relation list)."""
DECODE_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, KeyError, MemoryError)
"""What decoding a damaged Parquet file can raise (a flipped bit may hit any field)."""

Warn = Callable[[str], None]
"""Takes one line about a table that was skipped (damaged, foreign)."""


def warn_on_stderr(message: str) -> None:
    """A `Warn` for command lines: the line on stderr."""
    print(message, file=sys.stderr)


def quiet(message: str) -> None:
    """A `Warn` that says nothing (a progress count)."""


@dataclass(frozen=True)
class JobKey:
    """One (model, revision) of a store: `model` a hub id or a folder's absolute path
    (`lib.sweep.normal_source`), `step` its int."""

    model: str
    revision: str
    step: int

    @property
    def name(self) -> str:
        """The job's file stem: readable slug of model and revision, plus a hash of both so
        that two models slugging alike never share a file."""
        slug = re.sub(r"[^A-Za-z0-9.-]+", "-", self.model.strip("/")).strip("-.")[-60:]
        slug = slug.lstrip(".")  # cut at a `.`, the file would be hidden from every reader
        tag = hashlib.sha256(f"{self.model}\0{self.revision}".encode()).hexdigest()[:10]
        return f"{slug or 'model'}--{self.revision}--{tag}"


def table_digest(table: pa.Table, record: dict[str, Any]) -> str:
    """SHA-256 of what a reader gets from `table` (module docstring: Integrity) and of its
    `record` (row count, store settings), the `INTEGRITY` entry itself left out."""
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode())
    schema = table.schema
    digest.update(schema.to_string(show_field_metadata=False, show_schema_metadata=False).encode())
    metadata = {k: v for k, v in (schema.metadata or {}).items() if k != INTEGRITY}
    digest.update(repr(sorted(metadata.items())).encode())
    values = pa.BufferOutputStream()
    pa_csv.write_csv(table.replace_schema_metadata(None), values)
    digest.update(values.getvalue())
    return digest.hexdigest()


def setting_texts(settings: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """`settings` flattened to `name.sub: value` texts (`thresholds.operation: 0.15`)."""
    texts: dict[str, str] = {}
    for name, value in settings.items():
        if isinstance(value, dict) and value:
            texts |= setting_texts(value, f"{prefix}{name}.")
        else:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"))
            cut = text if len(text) <= MAX_SETTING_TEXT else text[: MAX_SETTING_TEXT - 1] + "…"
            texts[f"{prefix}{name}"] = cut
    return texts


def settings_differences(groups: Sequence[dict[str, Any]]) -> list[str]:
    """For each settings group, the settings in which the groups differ (`name=value, ...`)."""
    texts = [setting_texts(group) for group in groups]
    names = sorted({name for text in texts for name in text})
    differing = [n for n in names if len({text.get(n, "unset") for text in texts}) > 1]
    return [", ".join(f"{n}={text.get(n, 'unset')}" for n in differing) for text in texts]


@dataclass(frozen=True)
class StoredTable:
    """A job's table as read from the store and checked: `table` (Arrow, without metadata),
    the `store_settings` it was swept with, its file's `path`, and the `extra` entries written
    with it (by name; e.g. the causal check's curves, `lib.runs.stored_ablation`)."""

    path: str
    table: pa.Table
    store_settings: dict[str, Any]
    extra: dict[str, bytes] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The job's name (`JobKey.name`): the file's stem."""
        return self.path.rsplit("/", 1)[-1].removesuffix(".parquet")

    @property
    def digest(self) -> str | None:
        """The table's settings digest (`lib.sweep.job_digest`); None for a table of no rows."""
        column = self.table.column(DIGEST) if DIGEST in self.table.column_names else []
        return str(column[0]) if len(column) else None


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
        temporary = f"{folder}/{TEMPORARY}{uuid.uuid4().hex}-{name}"
        try:
            self.fs.makedirs(folder, exist_ok=True)
            with self.fs.open(temporary, "wb") as file:
                file.write(data)
            if self.fs.isdir(path):  # a folder in a file's place would take the file inside
                self.fs.rm(path, recursive=True)
            self.fs.mv(temporary, path)
        except OSError as error:
            with contextlib.suppress(OSError):  # a full disk: leave no temporary behind
                self.fs.rm(temporary)
            raise InputError(f"cannot write the store {self.url}: {error}") from None

    def write_table(
        self,
        job: JobKey,
        table: pd.DataFrame,
        digest: str,
        settings: dict,
        store_settings: dict[str, Any],
        extra: Mapping[str, bytes] | None = None,
    ) -> None:
        """Store a finished job's per-head table (rows keyed by `job`) with its integrity
        record (module docstring), replacing any earlier table or failure of the same job.
        `extra` entries (by name) go in the same file's metadata, under the same checksum."""
        rows = table.assign(model=job.model, revision=job.revision, step=job.step)
        rows = rows.assign(**{DIGEST: digest, SETTINGS: json.dumps(settings, sort_keys=True)})
        first = list(KEY_COLUMNS)
        rows = rows[first + [c for c in rows.columns if c not in first]]
        arrow = pa.Table.from_pandas(rows, preserve_index=False)
        entries = {EXTRA + name.encode(): data for name, data in (extra or {}).items()}
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **entries})
        record: dict[str, Any] = {"rows": arrow.num_rows, "store_settings": store_settings}
        record["sha256"] = table_digest(arrow, record)
        metadata = {**(arrow.schema.metadata or {}), INTEGRITY: json.dumps(record).encode()}
        sink = pa.BufferOutputStream()
        pq.write_table(arrow.replace_schema_metadata(metadata), sink)
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

    def stored_digest(self, job: JobKey, warn: Warn = warn_on_stderr) -> str | None:
        """The settings digest of the job's stored table, None when it has none or it fails
        its check (then `warn` is told, and the next sweep computes it again)."""
        path = self.table_path(job)
        if not self.fs.exists(path):
            return None
        try:
            return self.load_table(path).digest
        except InputError as error:
            warn(f"{error}: computed again by the next sweep")
            return None

    def load_table(self, path: str) -> StoredTable:
        """The table at `path`, checked against its integrity record; `InputError` naming the
        file and what is wrong with it (one line)."""
        name = path.rsplit("/", 1)[-1]
        try:
            data = self.fs.cat_file(path)
        except IsADirectoryError:
            raise InputError(f"{name} is a folder, not a table") from None
        except OSError as error:
            raise InputError(f"cannot read {name}: {error.strerror or error}") from None
        if not data:
            raise InputError(f"{name} is empty")
        try:
            table = pq.read_table(pa.BufferReader(data))
            text = (table.schema.metadata or {}).get(INTEGRITY)
            record = None if text is None else json.loads(text)
            expected = record.pop("sha256") if isinstance(record, dict) else None
            settings = record.get("store_settings") if isinstance(record, dict) else None
            # A flipped bit can turn a type into one the digest cannot render: damaged too.
            actual = table_digest(table, record) if isinstance(record, dict) else None
        except DECODE_ERRORS as error:
            reason = " ".join(str(error).split())[:MAX_SETTING_TEXT]
            raise InputError(f"{name} is damaged: not readable as Parquet ({reason})") from None
        if text is None:
            raise InputError(f"{name} was not written by a sweep (it has no checksum); ignored")
        if not isinstance(settings, dict) or record.get("rows") != table.num_rows:
            raise InputError(f"{name} is damaged: its rows or record do not match")
        if actual != expected:
            raise InputError(f"{name} is damaged: its checksum differs")
        extra = {
            key.removeprefix(EXTRA).decode(errors="replace"): value
            for key, value in (table.schema.metadata or {}).items()
            if key.startswith(EXTRA)
        }
        return StoredTable(path, table.replace_schema_metadata(None), settings, extra)

    def tables(self, warn: Warn = warn_on_stderr) -> Iterator[StoredTable]:
        """Every stored table that passes its check; `warn` gets one line per other file."""
        for path in self.table_files():
            try:
                yield self.load_table(path)
            except InputError as error:
                warn(f"skipped {error}")

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

    def read(self, warn: Warn = warn_on_stderr) -> pd.DataFrame:
        """Every stored row, sorted by model, step, layer, head, one per step (`main` and
        `step143000` are one checkpoint); columns that only some tables have (a relation
        another tokenizer skipped) are empty in the others. A table failing its check is
        skipped (one line to `warn`); a store mixing settings is refused (`InputError`)."""
        stored = list(self.tables(warn))
        if not stored:
            raise InputError(f"{self.url} holds no results yet: run python -m lib.sweep --out")
        self.check_one_settings(stored)
        frame = pa.concat_tables([s.table for s in stored], promote_options="default").to_pandas()
        # `main` and `step143000` are one checkpoint: swept under both names, it counts once.
        frame = frame.drop_duplicates(["model", "step", "layer", "head"])
        return frame.sort_values(["model", "step", "layer", "head"], ignore_index=True)

    def check_one_settings(self, stored: Sequence[StoredTable]) -> None:
        """`InputError` naming the settings that differ when `stored` mixes store settings."""
        groups: dict[str, list[StoredTable]] = {}
        for table in stored:
            groups.setdefault(json.dumps(table.store_settings, sort_keys=True), []).append(table)
        if len(groups) < 2:
            return
        members = list(groups.values())
        texts = settings_differences([tables[0].store_settings for tables in members])
        counts = [f"{len(m)} table{'s' * (len(m) > 1)}" for m in members]
        mix = " vs ".join(f"{t} in {n}" for t, n in zip(texts, counts, strict=True))
        raise InputError(
            f"{self.url} mixes tables swept with different settings: {mix}; sweep each set of "
            "settings into its own store (or let a sweep that replaces them all finish)"
        )

    def remove_stale_temporaries(self, older_than_s: float = STALE_STAGING_S) -> None:
        """Remove hidden temporaries last changed more than `older_than_s` seconds ago: a
        killed or out-of-space writer's (a younger one may be another sweep's write)."""
        cutoff = time.time() - older_than_s
        for folder in (self.root, self.path(FAILURES)):
            entries = self.fs.ls(folder, detail=True) if self.fs.isdir(folder) else []
            for entry in entries:
                changed = modified(entry)
                temporary = entry["name"].rsplit("/", 1)[-1].startswith(TEMPORARY)
                if temporary and changed is not None and changed < cutoff:
                    with contextlib.suppress(OSError):
                        self.fs.rm(entry["name"], recursive=True)

    def read_failures(self, warn: Warn = warn_on_stderr) -> pd.DataFrame:
        """One row per failed job (`FAILURE_COLUMNS`) whose table is not stored since; an
        unreadable record is skipped (one line to `warn`)."""
        folder = self.path(FAILURES)
        names = self.fs.ls(folder, detail=False) if self.fs.isdir(folder) else []
        records = []
        for name in sorted(n for n in names if n.endswith(".json") and f"/{TEMPORARY}" not in n):
            try:
                record = json.loads(self.fs.cat_file(name))
            except (OSError, ValueError):
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                warn(f"skipped {name.rsplit('/', 1)[-1]}: not a readable failure record")
        return pd.DataFrame(records, columns=list(FAILURE_COLUMNS))


def modified(entry: dict[str, Any]) -> float | None:
    """An `fsspec` listing entry's modification time (seconds since the epoch), if known."""
    value = entry.get("mtime", entry.get("LastModified"))
    if hasattr(value, "timestamp"):
        return value.timestamp()
    return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class SweepProgress:
    """How far the store's last sweep is: planned jobs, how many have a table, how many failed."""

    total: int
    stored: int
    failed: int

    @property
    def finished(self) -> bool:
        return self.stored + self.failed >= self.total


def sweep_progress(store: Store) -> SweepProgress | None:
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
        if job.name not in failed and store.stored_digest(job, quiet) == digests.get(job.name)
    }
    return SweepProgress(len(jobs), len(stored), len(failed))
