"""Public mode: the guard rails of a shared deployment (e.g. Streamlit Community Cloud).

Switched on by the setting `HEAD_ATLAS_PUBLIC` (`1`, `true`, `yes` or `on`), read from the
environment or from Streamlit secrets (`.streamlit/secrets.toml`, top-level keys); a secret
wins over the environment. In public mode:

* only catalog models are offered, up to `HEAD_ATLAS_PUBLIC_MAX_SIZE` (default `2.8b`: what
  a run reading the weights one layer at a time fits in Streamlit Community Cloud's memory
  with a margin, see `DEFAULT_MAX_SIZE`; the in-context check reads the weights the same way,
  within the same estimate; the ablation still loads the whole model, and is refused in one
  line when it does not fit);
* local checkpoint folders are refused (a visitor must not read the host's disk);
* uploaded tables may have at most `HEAD_ATLAS_PUBLIC_MAX_ROWS` rows (default 100,000; the
  upload size itself is capped by `server.maxUploadSize` in `.streamlit/config.toml`), at most
  `head_table.MAX_COLUMNS` columns, and take at most `UPLOAD_SECONDS` to read;
* a relation file may have at most `HEAD_ATLAS_PUBLIC_MAX_RELATION_PAIRS` rows (default 5,000:
  a relation needs hundreds of pairs, and tokenizing is the page's work before Run), and all
  uploaded files together at most `HEAD_ATLAS_PUBLIC_MAX_TOTAL_RELATION_PAIRS` (default 10,000:
  each pair is scored by every head, statically and in context);
* the in-context check takes at most `HEAD_ATLAS_PUBLIC_MAX_TEMPLATES` templates (default 10;
  the published experiment has 4), each at most `HEAD_ATLAS_PUBLIC_MAX_TEMPLATE_BYTES` bytes of
  UTF-8 (default 200): every template is run for every source word, and a prompt's attention
  grows with the square of its tokens, of which a byte-level tokenizer makes at most one a byte;
* a run (classify, the in-context check, an ablation) stops once it has taken more than
  `HEAD_ATLAS_PUBLIC_SECONDS` (default 300, see `DEFAULT_RUN_SECONDS`), with one line, the
  previous result kept; checked at each of the run's progress reports (`PublicMode.budgeted`);
* an unexpected error shows visitors a generic message with a short reference, never a
  traceback (the traceback goes to the server's log).

Everything else works as locally.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING

from lib.core import catalog
from lib.core.errors import InputError, is_whole_number, quoted
from lib.core.progress import Progress
from lib.tables.head_table import MAX_ROWS, ReadLimits

if (
    TYPE_CHECKING
):  # lib.scoring.relation_files imports the tokenizer and model code: not on the chart path
    from lib.scoring.relation_files import CustomRelation

ENABLED_KEY = "HEAD_ATLAS_PUBLIC"
MAX_SIZE_KEY = "HEAD_ATLAS_PUBLIC_MAX_SIZE"
MAX_ROWS_KEY = "HEAD_ATLAS_PUBLIC_MAX_ROWS"
MAX_RELATION_PAIRS_KEY = "HEAD_ATLAS_PUBLIC_MAX_RELATION_PAIRS"
MAX_TOTAL_RELATION_PAIRS_KEY = "HEAD_ATLAS_PUBLIC_MAX_TOTAL_RELATION_PAIRS"
MAX_TEMPLATES_KEY = "HEAD_ATLAS_PUBLIC_MAX_TEMPLATES"
MAX_TEMPLATE_BYTES_KEY = "HEAD_ATLAS_PUBLIC_MAX_TEMPLATE_BYTES"
RUN_SECONDS_KEY = "HEAD_ATLAS_PUBLIC_SECONDS"
# A run reads the weights one layer at a time (lib.checkpoints.weights): its memory does not grow
# with depth. `lib.core.catalog.streamed_memory_estimate` (W_U in float32, one layer, activations,
# the app's 606 MiB base, +10%) gives 2.02 GB for 2.8b and 3.17 GB for 6.9b: 2.8b is the largest
# size within 90% of Community Cloud's published 2.7 GB (tests/test_streamed.py keeps the two in
# step). Measured (bench.footprint --cli, scores + patterns, CPU): 2.8b peaks at 1,353 MiB.
DEFAULT_MAX_SIZE = "2.8b"
DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_RELATION_PAIRS = 5_000
DEFAULT_MAX_TOTAL_RELATION_PAIRS = 10_000
DEFAULT_MAX_TEMPLATES = 10
DEFAULT_MAX_TEMPLATE_BYTES = 200
DEFAULT_RUN_SECONDS = 300
"""Time budget of one run in public mode, in seconds: a visitor waits at most five minutes for
an answer, and the resident model and a core are then free for the others. The longest run
measured here, a 1b-shaped checkpoint's scores and patterns, took 101 s on two cores (issue
21, model loaded whole), so runs up to the default size finish within it on such a machine;
on fewer shared cores a large model may not, and the deployment raises the setting."""
UPLOAD_SECONDS = 10.0
"""Time budget of reading one upload in public mode: a valid 100,000-row table takes about
a second on one core, so one visitor's file cannot hold a core for long."""
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class PublicMode:
    """What this deployment allows; `PublicMode()` is the unrestricted local app."""

    enabled: bool = False
    max_size: str = DEFAULT_MAX_SIZE
    max_upload_rows: int = MAX_ROWS
    max_relation_pairs: int | None = None  # None: any relation file lib.scoring.relation_files
    # reads
    max_total_relation_pairs: int | None = None  # None (here and below): no limit
    max_templates: int | None = None
    max_template_bytes: int | None = None
    run_seconds: int | None = None

    @property
    def upload_limits(self) -> ReadLimits:
        """What reading one uploaded table may cost here (no time budget locally)."""
        return ReadLimits(
            max_rows=self.max_upload_rows, max_seconds=UPLOAD_SECONDS if self.enabled else None
        )

    @property
    def allowed_sizes(self) -> tuple[str, ...]:
        """Catalog sizes offered: all locally, up to `max_size` (by parameter count) in public."""
        if not self.enabled:
            return tuple(catalog.SIZES)
        limit = catalog.SIZES[self.max_size].n_params
        return tuple(name for name, size in catalog.SIZES.items() if size.n_params <= limit)

    @property
    def run_budget_note(self) -> str | None:
        """What a page says near its Run button about the time budget; None: no budget."""
        if self.run_seconds is None:
            return None
        return (
            f"Public deployment: a run stops after {self.run_seconds:,} s; run the app on your "
            "own machine for longer ones."
        )

    def budgeted(self, progress: Progress, clock: Callable[[], float] | None = None) -> Progress:
        """`progress` for a run starting now (by `clock`, seconds; default `time.monotonic`).
        In public mode, a report made more than `run_seconds` after the start raises
        `InputError` instead: the run stops between two of its steps (a layer, a template),
        cooperatively, no thread is killed, and nothing it computed is kept."""
        limit = self.run_seconds
        if limit is None:
            return progress
        now = clock or monotonic
        start = now()

        def report(fraction: float, message: str) -> None:
            if now() - start > limit:
                raise InputError(
                    f"this run stopped after {limit:,} s, the time budget of a run in this public "
                    "deployment; try a smaller model or fewer relations, or run the app on your "
                    "own machine"
                )
            progress(fraction, message)

        return report

    def check_source(self, source: str, is_folder: bool) -> None:
        """Raise `InputError` when public mode refuses to load `source`."""
        if not self.enabled:
            return
        if is_folder:
            raise InputError(
                "this public deployment does not load local folders; pick a Pythia model from "
                "the catalog, or run the app on your own machine to score a local checkpoint"
            )
        size = catalog.size_of(source)
        if size is None or size.name not in self.allowed_sizes:
            raise InputError(
                f"this public deployment scores Pythia models up to {self.max_size} "
                f"({', '.join(self.allowed_sizes)}); run the app on your own machine for {source}"
            )

    def check_relation_file(self, relation: CustomRelation) -> None:
        """Raise `InputError` when `relation` has more rows than this deployment takes."""
        if self.max_relation_pairs is not None and len(relation.rows) > self.max_relation_pairs:
            raise InputError(
                f"relation file {relation.name} has {len(relation.rows)} pairs; this public "
                f"deployment takes at most {self.max_relation_pairs} a file"
            )

    def check_relation_total(self, relations: Sequence[CustomRelation]) -> None:
        """Raise `InputError` when `relations` (all the files of one run) have more rows
        together than this deployment takes; the last one is named, as the one that tips it."""
        total = sum(len(relation.rows) for relation in relations)
        limit = self.max_total_relation_pairs
        if limit is not None and total > limit:
            raise InputError(
                f"relation file {relations[-1].name} brings your files to {total:,} pairs; this "
                f"public deployment takes at most {limit:,} in all"
            )

    def check_templates(self, templates: Sequence[str]) -> None:
        """Raise `InputError` when there are more `templates` than this deployment takes, or
        one is longer (UTF-8 bytes, which bound its tokens)."""
        if self.max_templates is not None and len(templates) > self.max_templates:
            raise InputError(
                f"{len(templates)} templates given; this public deployment takes at most "
                f"{self.max_templates}"
            )
        limit = self.max_template_bytes
        for template in templates:
            size = len(template.encode("utf-8"))
            if limit is not None and size > limit:
                raise InputError(
                    f"template {quoted(template)} is {size:,} bytes long; this public "
                    f"deployment takes templates of at most {limit:,} bytes (UTF-8)"
                )


def public_mode_from(settings: Mapping[str, object]) -> PublicMode:
    """Read the public-mode settings (environment merged with secrets) into a `PublicMode`."""
    if str(settings.get(ENABLED_KEY, "")).strip().lower() not in TRUE_WORDS:
        return PublicMode()
    max_size = str(settings.get(MAX_SIZE_KEY, DEFAULT_MAX_SIZE)).strip().lower()
    if max_size not in catalog.SIZES:
        raise InputError(
            f"{MAX_SIZE_KEY}={max_size!r} is not a Pythia size; "
            f"use one of {', '.join(catalog.SIZES)}"
        )
    max_rows = _positive_int(settings.get(MAX_ROWS_KEY, DEFAULT_MAX_ROWS), MAX_ROWS_KEY)
    max_pairs = _positive_int(
        settings.get(MAX_RELATION_PAIRS_KEY, DEFAULT_MAX_RELATION_PAIRS), MAX_RELATION_PAIRS_KEY
    )
    return PublicMode(
        enabled=True,
        max_size=max_size,
        max_upload_rows=min(max_rows, MAX_ROWS),
        max_relation_pairs=max_pairs,
        max_total_relation_pairs=_setting(
            settings, MAX_TOTAL_RELATION_PAIRS_KEY, DEFAULT_MAX_TOTAL_RELATION_PAIRS
        ),
        max_templates=_setting(settings, MAX_TEMPLATES_KEY, DEFAULT_MAX_TEMPLATES),
        max_template_bytes=_setting(settings, MAX_TEMPLATE_BYTES_KEY, DEFAULT_MAX_TEMPLATE_BYTES),
        run_seconds=_setting(settings, RUN_SECONDS_KEY, DEFAULT_RUN_SECONDS),
    )


def _setting(settings: Mapping[str, object], key: str, default: int) -> int:
    """The whole number > 0 set under `key`, else `default`."""
    return _positive_int(settings.get(key, default), key)


def _positive_int(value: object, key: str) -> int:
    text = str(value).strip().replace("_", "").replace(",", "")
    if not is_whole_number(text) or int(text) == 0:
        raise InputError(f"{key}={value!r} must be a whole number > 0")
    return int(text)
