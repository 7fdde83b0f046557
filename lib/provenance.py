"""What a stored score depends on besides the checkpoint: the code and data that compute it.

`scoring_code_digest` hashes the source of every module a score passes through and the
relation datasets, so a change to what a score means changes every cache key and store
settings digest built on it (docs/methods.md §7); a hand-bumped version string would not.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCORING_MODULES = (
    "lib/loader.py",
    "lib/operations.py",
    "lib/patterns.py",
    "lib/relations.py",
    "lib/relation_files.py",
    "lib/classify.py",
)
"""Modules whose code decides a table's numbers (loading, scoring, tokenizing, labelling)."""
SCORING_DATA = "data/relations"


@cache
def scoring_code_digest() -> str:
    """sha256 (16 hex digits) of `SCORING_MODULES` and every relation file, by path and bytes."""
    files = [ROOT / name for name in SCORING_MODULES]
    files += sorted((ROOT / SCORING_DATA).rglob("*.json"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
