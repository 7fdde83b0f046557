"""A folder's fingerprint reads its files without holding them in the process's memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from blake3 import blake3

from lib.checkpoints.fingerprint import READ_CHUNK_BYTES, file_digest
from tests.chart_helpers import REPO

FILE_BYTES = 384 * 2**20

PEAK_WHILE_HASHING = """
import resource, sys
from pathlib import Path
from lib.checkpoints.fingerprint import file_digest
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
file_digest(Path(sys.argv[1]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024)
"""


def test_the_digest_is_blake3_of_the_bytes_across_read_pieces(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    content = bytes(range(256)) * (READ_CHUNK_BYTES // 256) + b"tail"  # two pieces, uneven
    path.write_bytes(content)
    assert file_digest(path) == blake3(content).digest()


def test_hashing_a_large_file_does_not_grow_the_process_by_its_size(tmp_path: Path) -> None:
    """Hashed through a memory mapping, the 384 MiB file's pages counted in the process's peak
    resident memory (the 1b footprint peaked at the weights file's size on top of the run)."""
    path = tmp_path / "model.safetensors"
    with path.open("wb") as file:
        file.truncate(FILE_BYTES)  # sparse zeros: cheap to write, still read page by page
    grown = subprocess.run(
        [sys.executable, "-c", PEAK_WHILE_HASHING, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert int(grown) < READ_CHUNK_BYTES + 64 * 2**20
