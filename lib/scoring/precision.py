"""Scores are computed in float32 whatever dtype the weights are stored in (docs/methods.md §6).

Weights may be held in bfloat16 or float16 to save memory; every score computed from them
(operation scores, first-MLP inputs, salient operations, attention patterns, dynamic scores)
runs in float32, so a half-precision checkpoint's table equals the float32 table of the same
weights upcast (bfloat16 and float16 values are exactly representable in float32). The
helpers never hold a float32 copy of a whole model, only of the piece in use:

- `float32_matmul()`: float32 matrix products at full IEEE precision inside the block (no
  TF32 on CUDA, no bfloat16 in oneDNN on CPU), the previous settings restored after;
- `float32_modules(*modules)`: the modules' parameters replaced by float32 copies inside the
  block, the stored tensors put back untouched after (not re-cast);
- `float32_forward(model)`: a forward pass in float32, one module at a time: each module with
  weights is upcast just before it runs and restored just after it ran, and the input
  embeddings' output is upcast, so every hidden state, the rotary tables and the causal mask
  (whose dtype transformers takes from the embeddings) are float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

COMPUTE_DTYPE = torch.float32
"""The dtype every score is computed in."""

# Backends whose float32 matmuls may run in reduced precision when a user asks for it
# (`torch.backends.<backend>.matmul.fp32_precision`: "tf32" or "bf16" instead of "ieee").
MATMUL_BACKENDS = (torch.backends.cuda.matmul, torch.backends.mkldnn.matmul)

Stored = list[tuple[nn.Parameter, torch.Tensor]]


@contextmanager
def float32_matmul() -> Iterator[None]:
    """Float32 matmuls at full precision in the block (TF32 off); settings restored after.

    Uses the `fp32_precision` settings only: torch refuses to read the legacy `allow_tf32`
    flag once a user has set the new ones, while the new ones can always be read."""
    previous = [backend.fp32_precision for backend in MATMUL_BACKENDS]
    for backend in MATMUL_BACKENDS:
        backend.fp32_precision = "ieee"
    try:
        yield
    finally:
        for backend, precision in zip(MATMUL_BACKENDS, previous, strict=True):
            backend.fp32_precision = precision


def upcast(module: nn.Module, recurse: bool = True) -> Stored:
    """Replace `module`'s floating-point parameters that are not float32 by float32 copies;
    return what was replaced, for `restore`. Parameters already float32 are left alone, so
    a float32 model is never copied."""
    stored: Stored = []
    for parameter in module.parameters(recurse=recurse):
        if parameter.is_floating_point() and parameter.dtype != COMPUTE_DTYPE:
            stored.append((parameter, parameter.data))
            parameter.data = parameter.data.to(COMPUTE_DTYPE)
    return stored


def restore(stored: Stored) -> None:
    """Put back the tensors `upcast` replaced (the very same tensors: nothing is re-cast)."""
    for parameter, data in stored:
        parameter.data = data


@contextmanager
def float32_modules(*modules: nn.Module) -> Iterator[None]:
    """`modules` computing in float32 inside the block (module docstring)."""
    stored = [entry for module in modules for entry in upcast(module)]
    try:
        yield
    finally:
        restore(stored)


def to_float32(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` in float32: itself when it already is, else a float32 copy."""
    return tensor.to(COMPUTE_DTYPE)


@contextmanager
def float32_forward(model: nn.Module) -> Iterator[None]:
    """Forward passes of `model` inside the block compute in float32 (module docstring).

    Hooks are put on every module that holds parameters of its own except the input
    embedding, which is indexed rather than multiplied: its output rows are upcast instead
    of the whole matrix. At most one module's float32 copy exists at a time. Whatever
    happens inside the block, the model leaves it with its stored tensors and no hooks."""
    embedding = model.get_input_embeddings()
    pending: dict[nn.Module, Stored] = {}

    def before(module: nn.Module, _args: Any) -> None:
        pending[module] = upcast(module, recurse=False)

    def after(module: nn.Module, _args: Any, _output: Any) -> None:
        restore(pending.pop(module))

    def embedded(_module: nn.Module, _args: Any, output: torch.Tensor) -> torch.Tensor:
        return to_float32(output)

    def restore_pending() -> None:  # a module that raised never reached its `after` hook
        while pending:
            restore(pending.popitem()[1])

    with ExitStack() as stack:
        stack.callback(restore_pending)
        stack.enter_context(embedding.register_forward_hook(embedded))
        for module in model.modules():
            if module is not embedding and any(True for _ in module.parameters(recurse=False)):
                stack.enter_context(module.register_forward_pre_hook(before))
                stack.enter_context(module.register_forward_hook(after))
        stack.enter_context(float32_matmul())
        yield
