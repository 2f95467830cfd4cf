"""Diversity between learners: gradient reversal, adversarial regressors (A-BIER) and the
simpler activation loss (Opitz et al., TPAMI 2020; gradient reversal after Ganin et al. 2016).

A-BIER asks, for every pair of learners i < j, a small regressor g_ij to predict
learner i's output from learner j's. The regressor is trained to make the
prediction agree with the target (it *maximises* ``mean((f_i * g_ij(f_j))^2)``);
the learners receive the same gradient with the opposite sign through a
gradient-reversal layer, so they learn to make each other unpredictable. Without
a constraint the regressor could win by scaling its weights, so their norms are
kept near 1 by a penalty scaled by ``lambda_w``.

What follows the authors' TensorFlow code (``mop/bier``, checked line by line in
``tests/test_official.py``; see :mod:`bierlib.deviations`): one hidden layer of 512 ReLU
units; Xavier-uniform weights and zero biases; the penalty ``mean((|w_in|^2 - 1)^2)`` over
each layer's input units plus ``max(0, |b|^2 - 1)`` on each bias; the embedding layer's
penalty summed over the M learners' weight matrices (:func:`learner_unit_norm_penalty`);
the learner outputs given to the regressors computed from a stop-gradient copy of the
backbone features (see :class:`bierlib.boosting.EnsembleEmbedder`), so that diversity
shapes the embedding layer and not the backbone.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .utils import check_positive_int


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``-scale`` in the backward pass."""
    return _GradientReversal.apply(x, scale)


def unit_norm_penalty(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """``mean((|w|^2 - 1)^2)`` over the vectors of ``weight`` obtained by summing along ``dim``:
    ``dim=0`` penalises each input unit's outgoing weights of an (out, in) matrix, ``dim=1``
    each output unit's incoming weights."""
    return (weight.pow(2).sum(dim=dim) - 1).pow(2).mean()


#: How the embedding layer's unit-norm penalty is taken. Either per learner matrix and summed
#: over the M learners (the authors' code), or once over the whole D x F matrix (bierlib
#: before December 2026, kept to measure the difference).
UNIT_NORMS = ("per-learner", "whole-layer")


def learner_unit_norm_penalty(weight: torch.Tensor, sizes: Sequence[int], dim: int,
                              form: str = "per-learner") -> torch.Tensor:
    """The embedding layer's penalty for an (D, F) weight whose rows are the M learners of
    ``sizes``: ``sum_m unit_norm_penalty(W_m, dim)`` with W_m the (d_m, F) block of learner m
    (``form="per-learner"``), or ``unit_norm_penalty(W, dim)`` over the whole matrix
    (``"whole-layer"``). ``dim=0``: each input unit's weights within a learner (A-BIER),
    ``dim=1``: each output unit's (the activation loss)."""
    if form not in UNIT_NORMS:
        raise ValueError(f"form must be one of {UNIT_NORMS}, found {form!r}")
    if weight.ndim != 2 or sum(sizes) != weight.shape[0]:
        raise ValueError(f"expected a weight (D, F) with D = sum of the learner sizes "
                         f"{list(sizes)}, found shape {tuple(weight.shape)}")
    if form == "whole-layer":
        return unit_norm_penalty(weight, dim)
    return sum(unit_norm_penalty(block, dim) for block in torch.split(weight, list(sizes)))


def _layer_penalty(linear: nn.Linear) -> torch.Tensor:
    """A regressor layer's penalty: unit-norm input units plus ``max(0, |b|^2 - 1)``."""
    penalty = unit_norm_penalty(linear.weight, dim=0)
    if linear.bias is not None:
        penalty = penalty + (linear.bias.pow(2).sum() - 1).clamp_min(0)
    return penalty


#: The regressors' initialisations (see :class:`AdversarialDiversity`).
REGRESSOR_INITS = ("xavier", "pytorch")


class AdversarialDiversity(nn.Module):
    """The A-BIER diversity term over learner outputs [(B, d_1), ..., (B, d_M)] -> scalar.

    Args:
        sizes: the learner sizes d_1..d_M.
        hidden: width of each regressor's hidden layer (512 in the paper).
        lambda_w: weight of the unit-norm penalty on the regressors' layers.
        init: ``"xavier"`` (Xavier-uniform weights, zero biases: the authors' code) or
            ``"pytorch"`` (``nn.Linear``'s default; bierlib before December 2026).

    The returned value is ``sum_{i<j} [-mean((f_i * g_ij(f_j))^2) + lambda_w * penalty(g_ij)]``
    with f_i, f_j passed through gradient reversal: minimising it trains the regressors
    to agree and the learners to disagree.
    """

    def __init__(self, sizes: Sequence[int], hidden: int = 512, lambda_w: float = 100.0,
                 init: str = "xavier"):
        super().__init__()
        self.sizes = [check_positive_int(s, "learner size") for s in sizes]
        check_positive_int(hidden, "hidden")
        if init not in REGRESSOR_INITS:
            raise ValueError(f"init must be one of {REGRESSOR_INITS}, found {init!r}")
        self.lambda_w, self.init = lambda_w, init
        self.regressors = nn.ModuleDict({
            f"{i}_{j}": nn.Sequential(nn.Linear(self.sizes[j], hidden), nn.ReLU(),
                                      nn.Linear(hidden, self.sizes[i]))
            for i in range(len(self.sizes)) for j in range(i + 1, len(self.sizes))})
        if init == "xavier":
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)

    def forward(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        _check_outputs(outputs, self.sizes)
        total = outputs[0].new_zeros(())
        for key, regressor in self.regressors.items():
            i, j = map(int, key.split("_"))
            target, source = grad_reverse(outputs[i]), grad_reverse(outputs[j])
            agreement = (target * regressor(source)).pow(2).mean()
            penalty = sum(_layer_penalty(m) for m in regressor if isinstance(m, nn.Linear))
            total = total - agreement + self.lambda_w * penalty
        return total


def activation_diversity(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The simpler diversity term: ``sum_{i<j} mean_b mean_{k,l} (f_i[b, k] f_j[b, l])^2``,
    the mean squared product of every pair of activations of two learners."""
    total = outputs[0].new_zeros(())
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            total = total + (outputs[i][:, None, :] * outputs[j][:, :, None]).pow(2).mean()
    return total


def _check_outputs(outputs: Sequence[torch.Tensor], sizes: Sequence[int]) -> None:
    found = [tuple(o.shape) for o in outputs]
    if len(outputs) != len(sizes) or any(o.ndim != 2 or o.shape[1] != s
                                         for o, s in zip(outputs, sizes)):
        raise ValueError(f"expected {len(sizes)} learner outputs of shapes (B, d) with d in "
                         f"{list(sizes)}, found shapes {found}")
