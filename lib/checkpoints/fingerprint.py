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
        content = blake3(max_threads=blake3.AUTO).update_mmap(path).digest()
        outer.update(path.name.encode() + b"\0" + content)
    return outer.hexdigest()[:32]
