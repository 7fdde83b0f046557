"""At most one model resident per process, shared by every caller (e.g. browser sessions).

`ResidentModel.use(key)` lends the model of `key`, loading it only when another one (or none)
is resident. The previous model is released *before* the new one is loaded: its GPU memory is
returned to the device (`torch.cuda.empty_cache`), so the loader's memory check sees it free
and two models never sit on the GPU together. A loan holds the one lock, so work on the device
(loading, scoring, inspecting a head) runs one caller at a time, and a caller asking for
another model waits until the model in use is no longer used.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from lib.errors import InputError
from lib.loader import LoadedModel, load_model
from lib.progress import Progress, ignore


@dataclass(frozen=True)
class ModelKey:
    """What identifies a loaded model: `device` and `dtype` resolved (e.g. `cuda`,
    `bfloat16`), `fingerprint` the files of a local folder (empty for a hub id)."""

    source: str
    revision: str
    device: str
    dtype: str
    fingerprint: str = ""


Loader = Callable[[ModelKey, Progress], LoadedModel]


def load_key(key: ModelKey, progress: Progress) -> LoadedModel:
    """`lib.loader.load_model` of `key`."""
    return load_model(key.source, key.revision, key.device, key.dtype, progress)


class ResidentModel:
    """Holds at most one `LoadedModel` (module docstring)."""

    def __init__(self, load: Loader = load_key) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._key: ModelKey | None = None
        self._loaded: LoadedModel | None = None

    @property
    def key(self) -> ModelKey | None:
        """The key of the resident model, None when none is."""
        return self._key

    @contextmanager
    def use(self, key: ModelKey, progress: Progress | None = None) -> Iterator[LoadedModel]:
        """Lend the model of `key` for the `with` block, loading it first if needed."""
        report = progress or ignore
        if not self._lock.acquire(blocking=False):
            report(0.0, "waiting for another session using the device")
            self._lock.acquire()
        try:
            if self._key != key:
                if self._loaded is not None:
                    self.release()
                self._loaded = self._load(key, report)
                self._key = key
            yield self._loaded
        except torch.OutOfMemoryError as error:
            self.release()  # whatever ran out, the next try starts from an empty device
            raise InputError(
                f"{key.source} ran out of memory on {key.device} in {key.dtype}; pick a smaller "
                "model, a 2-byte dtype (bfloat16 or float16), or the cpu device"
            ) from error
        finally:
            self._lock.release()

    def release(self) -> None:
        """Drop the resident model and give its GPU memory back; callers hold the lock
        (`use`), or no other thread uses this object (tests, shutdown)."""
        self._key, self._loaded = None, None
        gc.collect()  # the model's tensors are freed only once nothing refers to them
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
