"""The content fingerprint of a checkpoint folder: what identifies a local folder's weights.

`folder_fingerprint` is BLAKE3 (32 hex digits) over the name, length and bytes of every file
that decides a score: `*.safetensors`, `*.index.json`, the config and the tokenizer files
(`FINGERPRINTED_FILES`). It follows the content, never file times: `cp -p`, `rsync -t`, tar and
`os.utime` restore modification times, so a rewrite at the same size and time would fool a
(name, size, mtime) key. Nothing is memoised: a memo keyed by file metadata could be fooled in
the same way. BLAKE3 runs on every core; hashing a folder costs a fraction of loading it
(docs/methods.md §7 gives the measured ratio).
"""

from __future__ import annotations

from pathlib import Path

from blake3 import blake3

FINGERPRINTED_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
)
FINGERPRINTED_PATTERNS = ("*.safetensors", "*.index.json")
READ_CHUNK_BYTES = 64 * 2**20
"""Bytes hashed per read: large enough for BLAKE3 to use every core on each piece."""


def fingerprinted_files(folder: Path) -> list[Path]:
    """The files of `folder` its fingerprint covers, sorted by name."""
    named = {folder / name for name in FINGERPRINTED_FILES}
    matched = {path for pattern in FINGERPRINTED_PATTERNS for path in folder.glob(pattern)}
    return sorted(path for path in named | matched if path.is_file())


def folder_fingerprint(folder: Path) -> str:
    """`files_digest` of `fingerprinted_files(folder)`."""
    return files_digest(fingerprinted_files(folder))


def tokenizer_fingerprint(folder: Path) -> str:
    """`files_digest` of the config and tokenizer files of `folder` (no weights): what
    `AutoTokenizer.from_pretrained` reads, so equal fingerprints give the same tokenizer."""
    return files_digest(
        sorted(folder / name for name in FINGERPRINTED_FILES if (folder / name).is_file())
    )


def files_digest(paths: list[Path]) -> str:
    """BLAKE3 over `paths` in order: each file's name, a NUL and the BLAKE3 digest of its bytes
    (fixed length, so no two folders feed the outer hash the same bytes); 32 hex digits."""
    outer = blake3()
    for path in paths:
        outer.update(path.name.encode() + b"\0" + file_digest(path))
    return outer.hexdigest()[:32]


def file_digest(path: Path) -> bytes:
    """BLAKE3 of a file's bytes, read in `READ_CHUNK_BYTES` pieces into one buffer. Not
    memory-mapped: every page a mapping touches counts in the process's resident memory while
    it lives, so hashing a 2 GB weights file through a mapping peaked at 2.2 GB for a run whose
    weights are streamed in 1.5 GB (bench.footprint, 1b); read() leaves them in the page cache
    instead, outside the process."""
    hasher = blake3(max_threads=blake3.AUTO)
    buffer = bytearray(READ_CHUNK_BYTES)
    view = memoryview(buffer)
    with path.open("rb") as file:
        while size := file.readinto(buffer):
            hasher.update(view[:size])
    return hasher.digest()
