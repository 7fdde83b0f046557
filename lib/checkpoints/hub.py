"""The Hugging Face hub: revisions pinned to commits, offline known at once, errors that say
what to do.

A hub revision (`main`, `step1000`) is a branch: it moves. `fetch_config` resolves it to the
commit it names now (the folder `.../snapshots/<commit>/` that `hf_hub_download` returns), and
everything after it (weights, tokenizer, cache keys, the table's `commit` column) uses that
commit, so a table can be reproduced exactly (docs/methods.md §7). A 40-hex commit is accepted
as a revision as it is.

Offline: `HF_HUB_OFFLINE` is respected; otherwise `hub_offline` asks the hub once, with a short
timeout (`PROBE_TIMEOUT_S`), and remembers the answer for `PROBE_MEMORY_S`. Offline, files are
taken from the local hub cache only (`local_files_only`), so a cached checkpoint still loads at
once and an uncached one is refused at once, instead of after the client's retries.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from huggingface_hub import constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import get_session

from lib.core.errors import InputError

COMMIT = re.compile(r"[0-9a-f]{40}")
"""A git commit hash as the hub writes it: 40 lowercase hex digits."""
PROBE_TIMEOUT_S = 2.0
"""How long the reachability probe waits for the hub before calling it offline."""
PROBE_MEMORY_S = 300.0
"""How long a probe's answer is trusted (a laptop's network comes and goes)."""
SNAPSHOT_FILES = ["*.json", "*.safetensors", "merges.txt", "tokenizer.model"]
"""What a checkpoint needs from a hub repository: config, weights, tokenizer; never pickles."""
OFFLINE_HINT = (
    "this machine cannot reach the Hugging Face hub (offline) and the files are not cached; "
    "download the checkpoint elsewhere with `save_pretrained` (model and tokenizer) and pass "
    "its folder"
)
OFFLINE_NOTE = (
    "The Hugging Face hub cannot be reached: only checkpoints already in the local hub cache "
    "can be run; a local folder always can."
)

_probe_lock = threading.Lock()
_probed: tuple[float, bool] | None = None  # (monotonic time, offline) of the last probe


def is_commit(revision: str) -> bool:
    """True for a full commit hash (40 hex digits), which pins a revision by itself."""
    return COMMIT.fullmatch(revision) is not None


def offline_by_setting() -> bool:
    """`HF_HUB_OFFLINE` set (in the environment now, or as huggingface_hub read it)."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return constants.HF_HUB_OFFLINE or value in {"1", "ON", "YES", "TRUE"}


def probe_hub(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the hub answers a HEAD request within `timeout` seconds (any status counts:
    it answered); through huggingface_hub's own client, so proxies and endpoint apply."""
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:  # any failure to get an answer (DNS, refused, timeout, TLS) is offline
        return False
    return True


def hub_offline() -> bool:
    """Whether hub files must come from the local cache only (module docstring)."""
    global _probed
    if offline_by_setting():
        return True
    with _probe_lock:
        now = time.monotonic()
        if _probed is None or now - _probed[0] > PROBE_MEMORY_S:
            _probed = (now, not probe_hub())
        return _probed[1]


def forget_probe() -> None:
    """Forget the last probe's answer (the next `hub_offline` asks again)."""
    global _probed
    with _probe_lock:
        _probed = None


@contextmanager
def hub_errors(repo_id: str, revision: str, filename: str) -> Iterator[None]:
    """Turn each hub failure inside the block into an `InputError` saying what to do."""
    try:
        yield
    except HFValidationError as error:
        raise InputError(f"{repo_id!r} is neither an existing folder nor a hub id") from error
    except GatedRepoError as error:
        raise InputError(f"{repo_id} is gated on the hub; log in with access to it") from error
    except RevisionNotFoundError as error:
        raise InputError(f"{repo_id} has no revision {revision!r} on the hub") from error
    except RepositoryNotFoundError as error:
        raise InputError(
            f"unknown model {repo_id!r}: no such repository on the hub; "
            "Pythia ids look like EleutherAI/pythia-70m"
        ) from error
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as error:
        raise InputError(f"cannot load {repo_id}@{revision}: {OFFLINE_HINT}") from error
    except EntryNotFoundError as error:
        raise InputError(f"{repo_id}@{revision} has no {filename}; is it a model?") from error
    except HfHubHTTPError as error:
        raise InputError(f"the hub refused {repo_id}@{revision}: {error}") from error


def commit_of(path: Path, repo_id: str, revision: str) -> str:
    """The commit of a file in the hub cache, `.../snapshots/<commit>/<file>`."""
    commit = path.parent.name
    if path.parent.parent.name != "snapshots" or not is_commit(commit):
        raise InputError(
            f"cannot tell which commit {repo_id}@{revision} is: the hub cache returned {path}; "
            "pass a local folder instead"
        )
    return commit


def fetch_config(repo_id: str, revision: str) -> tuple[Path, str]:
    """`config.json` of `repo_id` at `revision` and the commit the revision resolved to."""
    with hub_errors(repo_id, revision, "config.json"):
        path = Path(
            hf_hub_download(
                repo_id, "config.json", revision=revision, local_files_only=hub_offline()
            )
        )
    return path, commit_of(path, repo_id, revision)


def fetch_snapshot(repo_id: str, commit: str) -> Path:
    """The folder of `repo_id` at `commit` in the hub cache, with `SNAPSHOT_FILES` downloaded
    unless cached (offline: cached only)."""
    offline = hub_offline()
    with hub_errors(repo_id, commit, "model.safetensors"):
        folder = Path(
            snapshot_download(
                repo_id, revision=commit, allow_patterns=SNAPSHOT_FILES, local_files_only=offline
            )
        )
    # Offline, a snapshot whose config was cached but not its weights comes back as it is.
    if offline and not any(folder.glob("*.safetensors")):
        raise InputError(f"cannot load {repo_id}@{commit}: {OFFLINE_HINT}")
    return folder
