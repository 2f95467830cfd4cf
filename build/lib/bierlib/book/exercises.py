"""Checks for the book's coding exercises.

Each ``check_*`` function runs the reader's implementation on fixed inputs,
compares it with the library's, and either prints a short confirmation or raises
:class:`ExerciseError` with a plain-words diagnosis of the most likely mistake.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..losses import contrastive_loss, lifted_structured_loss
from ..losses.margin import margin_loss
from ..losses.pairs import pair_masks


class ExerciseError(AssertionError):
    """The reader's answer is not right yet; the message says what looks wrong."""


class ExerciseCrash(ExerciseError):
    """The reader's function raised an exception (named in the message) instead of answering."""


def _fixed_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(12, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4])
    return embeddings, labels


def _close(a, b) -> bool:
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64),
                          torch.as_tensor(b, dtype=torch.float64), rtol=1e-5, atol=1e-8)


def _check_loss(fn, args: tuple, reference: Callable, name: str,
                diagnoses: list[tuple[torch.Tensor, str]], hint: str) -> None:
    embeddings, labels = _fixed_batch()
    x = embeddings.clone().requires_grad_(True)
    try:
        got = fn(x, labels, *args)
    except NotImplementedError:  # the exercise is not done yet: say so, not "it crashed"
        raise
    except Exception as err:  # report the reader's crash in words, with its cause attached
        raise ExerciseCrash(f"your function raised {type(err).__name__}: {err}") from err
    if not isinstance(got, torch.Tensor) or got.ndim != 0:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise ExerciseError(f"expected a scalar tensor (shape ()), found {shape}; "
                            "average the terms into one number")
    want = reference(embeddings, labels, *args)
    got_value = got.detach()
    if _close(got_value, want):
        if got.requires_grad:
            got.backward()
        if x.grad is None or not torch.isfinite(x.grad).all():
            raise ExerciseError("the value is right but no finite gradient reaches the embeddings; "
                                "avoid .detach(), .item() or NumPy inside the loss")
        print(f"correct: {got_value.item():.6f} matches bierlib's {name} on the check's own batch")
        return
    for value, message in [(-want, "the sign is wrong: a loss must grow as the embedding gets "
                                   "worse"),
                           *diagnoses]:
        if _close(got_value, value):
            raise ExerciseError(message)
    raise ExerciseError(f"expected {want.item():.6f}, found {got_value.item():.6f}. {hint}")


def check_contrastive_loss(fn) -> None:
    """Check ``fn(embeddings, labels, margin)`` against the squared (Hadsell) contrastive loss
    on L2-normalised embeddings, each term averaged over its own pairs."""
    e, y = _fixed_batch()
    m = 1.2
    _check_loss(fn, (m,), lambda e, y, m: contrastive_loss(e, y, m, form="hadsell"),
                "contrastive_loss", [
                    (2 * contrastive_loss(e, y, m), "the value is twice the expected one: each "
                                                    "term carries a factor 1/2"),
                    (contrastive_loss(e, y, 1e-9), "the margin seems to be missing: negatives "
                                                   "count only while closer than the margin"),
                    (contrastive_loss(e, y, m, normalize=False),
                     "the embeddings were not L2-normalised before taking distances"),
                ],
                "Check that each term is averaged over its own pairs, that a point is not paired "
                "with itself, and that the negative term is max(0, margin - d)^2")


def check_lifted_loss(fn) -> None:
    """Check ``fn(embeddings, labels, margin)`` against the lifted structured loss of Song et
    al. (2016, eq. 4) on the *un-normalised* embeddings."""
    e, y = _fixed_batch()
    m = 1.0
    ordered = lifted_structured_loss(e, y, m) * 2  # each unordered pair counted twice...
    _check_loss(fn, (m,), lifted_structured_loss, "lifted_structured_loss", [
        (lifted_structured_loss(e, y, m, normalize=True), "the embeddings were normalised; "
                                                          "the paper's loss uses them as they are"),
        (ordered, "the value is twice the expected one: sum over unordered positive pairs "
                  "(i < j) and divide by 2|P|"),
        (lifted_structured_loss(e, y, 0.0 + 1e-12), "the margin alpha seems to be missing "
                                                    "from exp(alpha - D)"),
    ], "Check that the log-sum-exp runs over the negatives of *both* i and j, that the "
       "positive distance D_ij is added inside max(0, .), and that the result is squared")


def check_margin_loss(fn) -> None:
    """Check ``fn(embeddings, labels, triplets)`` against the margin loss of Wu et al. (2017)
    with margin 0.2 and beta 1.2 on L2-normalised embeddings, for given (anchor, positive,
    negative) index tensors, normalised by the number of non-zero terms."""
    e, y = _fixed_batch()
    pos, neg = pair_masks(y)
    anchor, positive = pos.nonzero(as_tuple=True)
    negative = neg.long().argmax(dim=1)[anchor]  # a fixed negative per anchor
    t = (anchor, positive, negative)
    x = torch.nn.functional.normalize(e, dim=1)
    d = torch.cdist(x, x)
    pos_terms = (d[anchor, positive] - 1.0).clamp_min(0)
    neg_terms = (1.4 - d[anchor, negative]).clamp_min(0)
    _check_loss(fn, (t,), lambda e, y, t: margin_loss(e, y, triplets=t), "margin_loss", [
        (margin_loss(e, y, triplets=t, normalize=False), "the embeddings were not L2-normalised"),
        ((pos_terms.sum() + neg_terms.sum()) / (2 * len(anchor)),
         "the sum is divided by all 2T terms; divide by the number of non-zero terms only"),
        (neg_terms.sum() / (neg_terms > 0).sum(), "the positive term max(0, d_ap - beta + margin) "
                                                  "seems to be missing"),
    ], "Check the two hinges: max(0, d_ap - beta + margin) and max(0, beta - d_an + margin), with "
       "plain (not squared) Euclidean distances")
