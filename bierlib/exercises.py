"""Checks for the book's coding exercises.

Each ``check_*`` function runs the reader's implementation on fixed inputs,
compares it with the library's, and either prints a short confirmation or raises
:class:`ExerciseError` with a plain-words diagnosis of the most likely mistake.
"""
from __future__ import annotations

import torch

from .losses import contrastive_loss


class ExerciseError(AssertionError):
    """The reader's answer is not right yet; the message says what looks wrong."""


def _fixed_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(12, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4])
    return embeddings, labels


def _close(a, b) -> bool:
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                          rtol=1e-5, atol=1e-8)


def check_contrastive_loss(fn) -> None:
    """Check ``fn(embeddings, labels, margin)`` against the squared (Hadsell) contrastive loss
    on L2-normalised embeddings, each term averaged over its own pairs."""
    embeddings, labels = _fixed_batch()
    margin = 1.2
    x = embeddings.clone().requires_grad_(True)
    try:
        got = fn(x, labels, margin)
    except Exception as err:  # report the reader's crash in words, with its cause attached
        raise ExerciseError(f"your function raised {type(err).__name__}: {err}") from err
    if not isinstance(got, torch.Tensor) or got.ndim != 0:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise ExerciseError(f"expected a scalar tensor (shape ()), found {shape}; "
                            "average the pair terms into one number")
    want = contrastive_loss(embeddings, labels, margin, form="hadsell")
    got_value = got.detach()
    if _close(got_value, want):
        if got.requires_grad:
            got.backward()
        if x.grad is None or not torch.isfinite(x.grad).all():
            raise ExerciseError("the value is right but no finite gradient reaches the embeddings; "
                                "avoid .detach(), .item() or NumPy inside the loss")
        print(f"correct: {got.item():.6f} matches bierlib's contrastive_loss")
        return
    diagnoses = [
        (-want, "the sign is wrong: a loss must grow when positives move apart"),
        (2 * want, "the value is twice the expected one: each term carries a factor 1/2"),
        (contrastive_loss(embeddings, labels, 1e-9, form="hadsell"),
         "the margin seems to be missing: negatives count only while closer than the margin"),
        (contrastive_loss(embeddings, labels, margin, form="hadsell", normalize=False),
         "the embeddings were not L2-normalised before taking distances"),
    ]
    for value, message in diagnoses:
        if _close(got_value, value):
            raise ExerciseError(message)
    raise ExerciseError(f"expected {want.item():.6f}, found {got.detach().item():.6f}. Check that each "
                        "term is averaged over its own pairs, that a point is not paired with "
                        "itself, and that the negative term is max(0, margin - d)^2")
