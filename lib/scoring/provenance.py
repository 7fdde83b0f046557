"""What a stored score depends on besides the checkpoint: the code and data that compute it.

`scoring_code_digest` hashes the source of every module a score passes through and the
relation datasets, so a change to what a score means changes every cache key and store
settings digest built on it (docs/methods.md §7); a hand-bumped version string would not.
The modules are found, not listed: `lib/scoring/pipeline.py` (the one scoring path) and every
module of the scoring code it imports, directly or through others, so a module added to the
scoring path is covered without anyone remembering to add it here. Only the scoring code
counts (`SCORING_CODE`: the `lib.scoring` package, the GPT-NeoX layout decoder and the
reader of a checkpoint's tensors, which decides which tensor is `W_U`): the
layers it also imports (errors, progress, tables, CSV writing) never change a number, so
editing a message or a writer leaves every cached result and stored sweep valid.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

from lib.core.paths import PROJECT_ROOT as ROOT

SCORING_ENTRY = "lib/scoring/pipeline.py"
"""The module of `classify_heads`, where every score is computed from."""
ABLATION_ENTRY = "lib/scoring/ablation.py"
"""The module of the causal check (`ablation_curves`), which scores through the pipeline too."""
SCORING_DATA = "data/relations"
SCORING_CODE = ("lib/scoring/", "lib/checkpoints/neox.py", "lib/checkpoints/weights.py")
"""The files that decide a number, as paths from the project root (a folder ends in `/`)."""


def imported_lib_modules(path: Path) -> set[Path]:
    """The files of the `lib` modules that the source at `path` imports (`import lib.x`,
    `from lib.x import y`, `from lib import x`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    files = set()
    for name in names:
        if name == "lib" or name.startswith("lib."):
            parts = name.split(".")
            for candidate in (
                ROOT.joinpath(*parts).with_suffix(".py"),
                ROOT.joinpath(*parts, "__init__.py"),
            ):
                if candidate.is_file():
                    files.add(candidate)
    return files


def is_scoring_code(path: Path) -> bool:
    """Whether `path` is one of `SCORING_CODE`'s files."""
    relative = path.relative_to(ROOT).as_posix()
    return any(
        relative.startswith(part) if part.endswith("/") else relative == part
        for part in SCORING_CODE
    )


def scoring_modules(entry: str = SCORING_ENTRY) -> list[Path]:
    """`entry` and every scoring-code module it imports, directly or through other
    scoring-code modules, sorted."""
    found: set[Path] = set()
    todo = [ROOT / entry]
    while todo:
        path = todo.pop()
        if path not in found:
            found.add(path)
            todo.extend(p for p in imported_lib_modules(path) - found if is_scoring_code(p))
    return sorted(found)


@cache
def scoring_code_digest() -> str:
    """sha256 (16 hex digits) of `scoring_modules()` and every relation file, by path and
    bytes."""
    return code_digest(SCORING_ENTRY)


@cache
def ablation_code_digest() -> str:
    """The same digest for the causal check: `scoring_modules(ABLATION_ENTRY)` (the pipeline
    included) and every relation file. A sweep's stored curves depend on it."""
    return code_digest(ABLATION_ENTRY)


def code_digest(entry: str) -> str:
    """sha256 (16 hex digits) of `scoring_modules(entry)` and every relation file, by path
    and bytes."""
    files = scoring_modules(entry) + sorted((ROOT / SCORING_DATA).rglob("*.json"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
