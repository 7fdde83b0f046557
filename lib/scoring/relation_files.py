"""Your own relations: word-pair files read, checked and tokenized (docs/methods.md §3).

A **relation file** is either a CSV whose header names the columns `src` and `dst` (one pair a
row; other columns are ignored; UTF-8, with or without a byte-order mark) or, when its name ends
in `.json`, the bundled form: a JSON list of `[src, dst]` pairs. The relation is named after the
file's stem made safe for a column name (`relation_name`) and scored with `k` = `DEFAULT_K`
unless given. The bundled rules then apply (docs/methods.md §2): every word is tokenized with a
leading space and a pair is kept only when both are single tokens; a custom relation also drops
a row that repeats an earlier pair. A pair's **status** is the first that applies of
`duplicate`, `multi-token source`, `multi-token target`, else `kept`; fewer than `MIN_PAIRS`
kept pairs is an error (`InputError`), not a skipped relation, since the user asked for it.

One reading function, `read_relation_file`, serves the page (an upload) and the command line
(`--relation-file`, `lib.cli.options.relation_options`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, BinaryIO

import pandas as pd

from lib.checkpoints.loader import is_folder_source
from lib.core.errors import InputError, is_whole_number
from lib.scoring.relations import MIN_PAIRS, TokenizedRelation, relation_names, single_token
from lib.tables.labels import PATTERNS

if TYPE_CHECKING:  # a type only: reading a file needs no transformers import
    from transformers import PreTrainedTokenizerBase

MAX_FILE_BYTES = 2 * 2**20
"""Most bytes read from one relation file (about 100,000 pairs of words); a larger file is
refused without reading the rest."""
MAX_NAME_CHARS = 64
DEFAULT_K = 10
MAX_K = 1000
"""k is at most this (and at most the vocabulary), so a top-k stays a small part of a row."""
RESERVED_NAMES = frozenset({*PATTERNS, "unclassified"})
"""Names a relation may not take: its label would read as a pattern's, or as no label."""

KEPT = "kept"
DUPLICATE = "duplicate"
MULTI_TOKEN_SOURCE = "multi-token source"
MULTI_TOKEN_TARGET = "multi-token target"
UNCHECKED = "not yet tokenized"
DROP_REASONS = (DUPLICATE, MULTI_TOKEN_SOURCE, MULTI_TOKEN_TARGET)


@dataclass(frozen=True)
class CustomRelation:
    """A relation read from a user's file, as a run's settings carry it (frozen, hashable).

    `rows` are the file's `(src, dst)` pairs as listed (repeats included: they are dropped at
    tokenization and reported); `sha256` is the hash of the file's bytes. The scores depend on
    `rows` and `k` only: `name` names the columns `score_<name>` and `suppression_<name>`.
    """

    name: str
    sha256: str
    rows: tuple[tuple[str, str], ...]
    k: int = DEFAULT_K

    def __post_init__(self) -> None:
        check_k(self.name, self.k)

    def with_k(self, k: int) -> CustomRelation:
        return replace(self, k=k)


def check_k(name: str, k: int) -> None:
    """`InputError` unless `k` is a whole number in [1, `MAX_K`]."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InputError(f"relation {name}: k={k!r} must be a whole number from 1 to {MAX_K}")


def relation_name(file_name: str) -> str:
    """The relation's name: the file's stem in NFKC form (as Python reads identifiers), lower
    case, each run of characters that cannot be in an identifier replaced by `_`, leading and
    trailing `_` removed. Letters of any script stay, so `Größe` and `Grüße` stay apart."""
    stem = unicodedata.normalize("NFKC", PurePath(file_name).stem).lower()
    kept = "".join(char if f"_{char}".isidentifier() else "_" for char in stem)
    name = re.sub(r"_+", "_", kept).strip("_")
    if not name:
        raise InputError(
            f"relation file {file_name!r}: its name has no letters or digits to name the "
            "relation; rename it, e.g. my_relation.csv"
        )
    if len(name) > MAX_NAME_CHARS:
        raise InputError(
            f"relation file {file_name!r}: the name {name} is longer than {MAX_NAME_CHARS} "
            "characters; rename the file"
        )
    if name in relation_names() or name in RESERVED_NAMES:
        raise InputError(
            f"relation file {file_name!r}: the name {name} is taken by a bundled relation or "
            "a pattern; rename the file"
        )
    return name


def read_relation_file(file_name: str, stream: BinaryIO, k: int = DEFAULT_K) -> CustomRelation:
    """The relation in `stream` (at most `MAX_FILE_BYTES` read), named after `file_name`;
    `InputError` (one line naming the file) for anything but a usable relation file."""
    name = relation_name(file_name)
    data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise InputError(
            f"relation file {file_name!r} is larger than {MAX_FILE_BYTES // 2**20} MiB; "
            "a relation needs a few hundred pairs at most"
        )
    if b"\0" in data:
        raise InputError(f"relation file {file_name!r} is binary, not a CSV or JSON text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"relation file {file_name!r} is not UTF-8 text (byte offset {error.start}); "
            "save it as UTF-8"
        ) from None
    if not text.strip():
        raise InputError(f"relation file {file_name!r} is empty; give a src,dst header and pairs")
    if PurePath(file_name).suffix.lower() == ".json":
        rows = json_rows(file_name, text)
    else:
        rows = csv_rows(file_name, text)
    distinct = len(set(rows))
    if distinct < MIN_PAIRS:
        raise InputError(
            f"relation file {file_name!r} has {distinct} distinct pairs; a relation needs at "
            f"least {MIN_PAIRS}"
        )
    return CustomRelation(name, hashlib.sha256(data).hexdigest(), rows, k)


def csv_rows(file_name: str, text: str) -> tuple[tuple[str, str], ...]:
    """The `(src, dst)` cells of a CSV with a `src,dst` header, stripped of outer spaces."""
    try:
        table = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise InputError(f"relation file {file_name!r} is not a readable CSV: {error}") from None
    # Blank rows are skipped wherever they are, before the header too; rows keep their numbers.
    filled = [(n, cells) for n, cells in enumerate(table, start=1) if any(c.strip() for c in cells)]
    if not filled:
        raise InputError(f"relation file {file_name!r} is empty; give a src,dst header and pairs")
    header = [cell.strip().lower() for cell in filled[0][1]]
    if "src" not in header or "dst" not in header:
        raise InputError(
            f"relation file {file_name!r}: the first row must name the columns src and dst "
            f"(found {', '.join(header)[:80]!r})"
        )
    src, dst = header.index("src"), header.index("dst")
    rows = []
    for number, cells in filled[1:]:
        if len(cells) <= max(src, dst):
            raise InputError(f"relation file {file_name!r} row {number}: no dst cell")
        rows.append(pair(file_name, f"row {number}", cells[src], cells[dst]))
    return tuple(rows)


def json_rows(file_name: str, text: str) -> tuple[tuple[str, str], ...]:
    """The pairs of a JSON list of `[src, dst]` lists of strings."""
    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise InputError(f"relation file {file_name!r} is not valid JSON ({error})") from None
    if not isinstance(items, list):
        raise InputError(f"relation file {file_name!r}: expected a JSON list of [src, dst] pairs")
    rows = []
    for number, item in enumerate(items, start=1):
        if not (
            isinstance(item, list) and len(item) == 2 and all(isinstance(w, str) for w in item)
        ):
            raise InputError(
                f"relation file {file_name!r} item {number}: expected a [src, dst] pair of strings"
            )
        rows.append(pair(file_name, f"item {number}", *item))
    return tuple(rows)


def pair(file_name: str, where: str, src: str, dst: str) -> tuple[str, str]:
    """A pair's words, stripped (the leading space is added at tokenization); no empty word."""
    words = (src.strip(), dst.strip())
    for column, word in zip(("src", "dst"), words, strict=True):
        if not word:
            raise InputError(f"relation file {file_name!r} {where}: empty {column}")
    return words


def check_relation_files(relations: Sequence[CustomRelation]) -> tuple[CustomRelation, ...]:
    """`relations` in name order; `InputError` when two share a name."""
    counts = Counter(relation.name for relation in relations)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise InputError(
            f"two relation files are both named {', '.join(repeated)}; rename one of them"
        )
    return tuple(sorted(relations, key=lambda relation: relation.name))


def pair_report(
    tokenizer: PreTrainedTokenizerBase | None, relation: CustomRelation
) -> pd.DataFrame:
    """One row per row of the file: `src`, `dst` and its `status` (module docstring); without
    a tokenizer, a pair that is no duplicate is `not yet tokenized`."""
    seen: set[tuple[str, str]] = set()
    statuses = []
    for src, dst in relation.rows:
        if (src, dst) in seen:
            statuses.append(DUPLICATE)
            continue
        seen.add((src, dst))
        if tokenizer is None:
            statuses.append(UNCHECKED)
        elif single_token(tokenizer, src) is None:
            statuses.append(MULTI_TOKEN_SOURCE)
        elif single_token(tokenizer, dst) is None:
            statuses.append(MULTI_TOKEN_TARGET)
        else:
            statuses.append(KEPT)
    src, dst = zip(*relation.rows, strict=True)
    return pd.DataFrame({"src": src, "dst": dst, "status": statuses})


def file_record(relation: CustomRelation, report: pd.DataFrame) -> dict[str, Any]:
    """A relation file as a table's settings record it: `name`, `sha256`, `k`, `rows`, `kept`
    and `dropped` (rows per drop reason), from its `pair_report`."""
    counts = report["status"].value_counts()
    return {
        "name": relation.name,
        "sha256": relation.sha256,
        "k": relation.k,
        "rows": len(report),
        "kept": int(counts.get(KEPT, 0)),
        "dropped": {reason: int(counts.get(reason, 0)) for reason in DROP_REASONS},
    }


def relation_file_summary(record: dict[str, Any]) -> str:
    """One line saying what a `file_record` kept and dropped."""
    dropped = ", ".join(f"{n} {reason}" for reason, n in record["dropped"].items() if n)
    return (
        f"relation file {record['name']} (sha256 {record['sha256'][:12]}, k={record['k']}): "
        f"kept {record['kept']} of {record['rows']} pairs"
        + (f"; dropped {dropped}" if dropped else "")
    )


def tokenize_relation_file(
    tokenizer: PreTrainedTokenizerBase, relation: CustomRelation
) -> tuple[TokenizedRelation, dict[str, Any]]:
    """The relation's kept pairs as token ids, and its `file_record`; `InputError` when fewer
    than `MIN_PAIRS` pairs are kept."""
    report = pair_report(tokenizer, relation)
    kept = report[report["status"] == KEPT]
    if len(kept) < MIN_PAIRS:
        raise InputError(
            f"relation file {relation.name}: {len(kept)} of its {len(report)} pairs are single "
            f"tokens for this model's tokenizer; at least {MIN_PAIRS} are needed"
        )
    src = tuple(single_token(tokenizer, word) for word in kept["src"])
    dst = tuple(single_token(tokenizer, word) for word in kept["dst"])
    tokenized = TokenizedRelation(relation.name, relation.k, src, dst)  # kept: never None
    return tokenized, file_record(relation, report)


def cache_identity(relations: Sequence[CustomRelation]) -> tuple[tuple[str, int], ...]:
    """What a table's scores take from `relations`: each file's `(sha256, k)`, sorted. Names are
    left out, so the same file under another name reuses a cached table (`renamed_for`)."""
    return tuple(sorted((relation.sha256, relation.k) for relation in relations))


def read_relation_path(path: Path) -> CustomRelation:
    """`read_relation_file` of a file on disk (k: `DEFAULT_K`)."""
    try:
        with Path(path).open("rb") as stream:
            return read_relation_file(Path(path).name, stream)
    except OSError as error:
        raise InputError(f"cannot read relation file {path}: {error.strerror}") from None


def relation_files_from(args: argparse.Namespace) -> tuple[CustomRelation, ...]:
    """The relations of `--relation-file`, with their `--relation-k`, checked and in name
    order (parsed arguments of `lib.cli.options.relation_options`)."""
    relations = check_relation_files([read_relation_path(path) for path in args.relation_file])
    by_name = {relation.name: relation for relation in relations}
    for assignment in args.relation_k:
        name, _, value = assignment.partition("=")
        if name not in by_name or not is_whole_number(value.strip()):
            known = ", ".join(by_name) or "none (no --relation-file)"
            raise InputError(
                f"--relation-k {assignment!r}: expected NAME=K with K a whole number and NAME "
                f"one of the relation files' names: {known}"
            )
        by_name[name] = by_name[name].with_k(int(value))
    return tuple(by_name.values())


def read_tokenizer(source: str, revision: str) -> PreTrainedTokenizerBase:
    """The tokenizer of `source` (a local folder, or a hub id at `revision`) without its model:
    what a preview needs to find multi-token pairs before anything is scored."""
    from transformers import AutoTokenizer  # only a preview needs it

    local = is_folder_source(source)
    location = str(Path(source).expanduser()) if local else source
    try:
        return AutoTokenizer.from_pretrained(
            location, revision=None if local else revision, trust_remote_code=False
        )
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"cannot read the tokenizer of {source}: {reason}") from None
