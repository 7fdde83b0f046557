"""At most one model resident per process, shared by every caller (e.g. browser sessions).

`ResidentModel.use(key)` lends the model of `key`, loading it only when another one (or none)
is resident; `ResidentModel.read(key)` lends what scoring needs without loading a model (the
resident model when it is `key`'s, else the checkpoint read one layer at a time).

The previous model is released *before* the new one is loaded (or another checkpoint read):
its memory is returned to the device (`torch.cuda.empty_cache`, `torch.mps.empty_cache`), so
the loader's memory check sees it free and two models never sit on the GPU together. A loan
holds the one lock, so work on the device (loading, scoring, inspecting a head) runs one
caller at a time, and a caller asking for another model waits until the model in use is no
longer used.

Out of memory (CUDA's `torch.OutOfMemoryError`, MPS's `RuntimeError`) during a loan drops the
model and becomes an `InputError`. Its memory cannot be returned at that moment: the error's
traceback holds the frames of the work that ran out, and with them the model and the tensors
being built. So the slot is only marked, and the memory is returned at the start of the next
loan, when those frames are gone.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from lib.checkpoints.loader import LoadedModel, StreamedCheckpoint, load_model, open_checkpoint
from lib.core.errors import InputError
from lib.core.progress import Progress, ignore


@dataclass(frozen=True)
class ModelKey:
    """What identifies a loaded model: `device` and `dtype` resolved (e.g. `cuda`,
    `bfloat16`); `fingerprint` the content of a local folder (`lib.checkpoints.fingerprint`, empty
    for a hub id); `commit` the hub commit `revision` resolved to (`lib.checkpoints.hub`, empty for
    a folder)."""

    source: str
    revision: str
    device: str
    dtype: str
    fingerprint: str = ""
    commit: str = ""


Loader = Callable[[ModelKey, Progress], LoadedModel]
Opener = Callable[[ModelKey, Progress], StreamedCheckpoint]


def load_key(key: ModelKey, progress: Progress) -> LoadedModel:
    """`lib.checkpoints.loader.load_model` of `key`, at its commit or fingerprint."""
    pinned = key.commit or key.fingerprint or None
    return load_model(key.source, key.revision, key.device, key.dtype, progress, pinned)


def open_key(key: ModelKey, progress: Progress) -> StreamedCheckpoint:
    """`lib.checkpoints.loader.open_checkpoint` of `key`, at its commit or fingerprint."""
    pinned = key.commit or key.fingerprint or None
    return open_checkpoint(key.source, key.revision, key.device, key.dtype, progress, pinned)


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's out-of-memory error, or MPS's (a plain `RuntimeError` naming it)."""
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "MPS backend out of memory" in str(error)
    )


class ResidentModel:
    """Holds at most one `LoadedModel` (module docstring)."""

    def __init__(self, load: Loader = load_key, open_streamed: Opener = open_key) -> None:
        self._load = load
        self._open = open_streamed
        self._lock = threading.Lock()
        self._key: ModelKey | None = None
        self._loaded: LoadedModel | None = None
        self._memory_owed = False  # dropped after running out; memory not yet returned

    @property
    def key(self) -> ModelKey | None:
        """The key of the resident model, None when none is."""
        return self._key

    @contextmanager
    def use(self, key: ModelKey, progress: Progress | None = None) -> Iterator[LoadedModel]:
        """Lend the model of `key` for the `with` block, loading it first if needed."""
        report = progress or ignore
        with self._loan(key, report):
            if self._key != key:
                if self._loaded is not None:
                    self.release()
                self._loaded = self._load(key, report)
                self._key = key
            yield self._loaded

    @contextmanager
    def read(
        self, key: ModelKey, progress: Progress | None = None
    ) -> Iterator[LoadedModel | StreamedCheckpoint]:
        """Lend the weights of `key` for scoring, without loading a model: the resident model
        when it is `key`'s, else the checkpoint opened to be read one layer at a time
        (`lib.checkpoints.loader.open_checkpoint`; the scores are the same), after another
        resident model is released (its memory would add to the run's)."""
        report = progress or ignore
        with self._loan(key, report):
            if self._key == key and self._loaded is not None:
                yield self._loaded
                return
            if self._loaded is not None:
                self.release()
            yield self._open(key, report)

    @contextmanager
    def _loan(self, key: ModelKey, report: Progress) -> Iterator[None]:
        """The one lock for the block (work on the device runs one caller at a time); memory
        owed by an earlier loan that ran out is returned first, and running out inside the
        block drops the model and becomes an `InputError` (module docstring)."""
        if not self._lock.acquire(blocking=False):
            report(0.0, "waiting for another session using the device")
            self._lock.acquire()
        ran_out = False
        try:
            if self._memory_owed:
                self.release()
            yield
        except (torch.OutOfMemoryError, RuntimeError) as error:
            if not is_out_of_memory(error):
                raise
            # The traceback still holds the model here: drop ours, return memory next loan.
            self._key, self._loaded, self._memory_owed = None, None, True
            ran_out = True
        finally:
            self._lock.release()
        if ran_out:
            raise InputError(
                f"{key.source} ran out of memory on {key.device} in {key.dtype}; pick a smaller "
                "model, a 2-byte dtype (bfloat16 or float16), or the cpu device"
            )

    def release(self) -> None:
        """Drop the resident model and give its memory back to the device; callers hold the
        lock (`use`), or no other thread uses this object (tests, shutdown)."""
        self._key, self._loaded, self._memory_owed = None, None, False
        gc.collect()  # the model's tensors are freed only once nothing refers to them
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if torch.backends.mps.is_available():
            torch.mps.empty_cache()
