"""Small helpers shared by the library: input validation, devices, atomic saves."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch


def check_labels(labels, name: str = "labels", length: int | None = None) -> torch.Tensor:
    """Return ``labels`` as a 1-D int64 tensor, or raise a ValueError that says what is wrong.

    Accepts a tensor, NumPy array or sequence of integers of shape (B,).
    """
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(np.asarray(labels))
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"{name} must be integer class ids, found dtype {labels.dtype}; "
                         "convert with labels.long() after checking the values are whole numbers")
    if labels.ndim != 1:
        raise ValueError(f"{name} must have shape (B,), found shape {tuple(labels.shape)}")
    if length is not None and labels.shape[0] != length:
        raise ValueError(f"{name} must have one entry per embedding: expected {length}, "
                         f"found {labels.shape[0]}")
    return labels.long()


def check_embeddings(embeddings, name: str = "embeddings") -> torch.Tensor:
    """Check that ``embeddings`` is a floating (B, D) tensor with B >= 1 and D >= 1."""
    if not isinstance(embeddings, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, found {type(embeddings).__name__}")
    if not embeddings.dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating-point tensor, found dtype {embeddings.dtype}")
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
        raise ValueError(f"{name} must have shape (B, D) with B, D >= 1, "
                         f"found shape {tuple(embeddings.shape)}")
    return embeddings


def check_batch(embeddings, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a loss's inputs: embeddings (B, D) float, labels (B,) integer on the same device."""
    embeddings = check_embeddings(embeddings)
    labels = check_labels(labels, length=embeddings.shape[0]).to(embeddings.device)
    return embeddings, labels


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, found {value!r}")
    return int(value)


def select_device(preference: str | None = None) -> torch.device:
    """Pick ``preference`` if given, else cuda, then mps, then cpu."""
    if preference is not None:
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def atomic_write(path: str | os.PathLike, write, binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    A crash mid-write leaves the previous file intact, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda f: torch.save(obj, f))
