"""Proxy-anchor loss (Kim, Kim, Cho & Kwak, CVPR 2020).

Every training class has a learnable proxy, a vector of the embedding space (C, D). Each proxy
p is an anchor compared with the whole batch at once; with s(x, p) the cosine similarity of an
embedding x and a proxy::

    L = 1/|P+| sum_{p in P+} log(1 + sum_{x in X_p+} exp(-alpha (s(x, p) - delta)))
      + 1/|P|  sum_{p in P}  log(1 + sum_{x in X_p-} exp( alpha (s(x, p) + delta)))

P are all C proxies, P+ those whose class has an embedding in the batch, X_p+ the batch's
embeddings of p's class and X_p- the others; delta is the margin and alpha the scale. The
gradient of an embedding with respect to a proxy is weighted by a softmax over the batch's
embeddings on the same side of that proxy, so each embedding's pull depends on the others.

Defaults, as the authors' code (tjddus9597/Proxy-Anchor-CVPR2020 at 51db570,
``code/losses.py:27-31`` and ``code/train.py:241-242``; ``tests/test_official.py`` transcribes
its loss) and pytorch-metric-learning's ``ProxyAnchorLoss``: delta = 0.1, alpha = 32,
the proxies drawn by ``kaiming_normal_(mode="fan_out")`` (normal, standard deviation
sqrt(2 / C)) and trained at 100 times the network's learning rate (:class:`ProxyAnchorLoss`'s
``lr_multiplier``, which :func:`bierlib.training.train` applies).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils import check_batch, check_embeddings, check_labels, check_positive_int
from .pairs import masked_log1p_sum_exp


def proxy_anchor_loss(embeddings: torch.Tensor, labels: torch.Tensor, proxies: torch.Tensor,
                      margin: float = 0.1, alpha: float = 32.0) -> torch.Tensor:
    """Proxy-anchor loss of a batch: embeddings (B, D), labels (B,) indexing the proxies
    (C, D) (both normalised here) -> scalar."""
    embeddings, labels = check_batch(embeddings, labels)
    proxies = check_embeddings(proxies, "proxies")
    c, d = proxies.shape
    if d != embeddings.shape[1]:
        raise ValueError(f"proxies must have shape (C, D) with the embeddings' D = "
                         f"{embeddings.shape[1]}, found shape {tuple(proxies.shape)}")
    if ((labels < 0) | (labels >= c)).any():
        raise ValueError(f"labels must index the C = {c} proxies (0 <= label < {c}), found "
                         f"labels from {int(labels.min())} to {int(labels.max())}; number the "
                         "classes 0..C-1 (ProxyAnchorLoss does it from the training classes)")
    x = F.normalize(embeddings, dim=1)
    cos = x @ F.normalize(proxies.to(x.dtype), dim=1).T  # (B, C)
    pos = labels[:, None] == torch.arange(c, device=labels.device)  # (B, C)
    pos_term = masked_log1p_sum_exp(-alpha * (cos - margin).T, pos.T)  # (C,), 0 without positives
    neg_term = masked_log1p_sum_exp(alpha * (cos + margin).T, ~pos.T)  # (C,)
    return pos_term.sum() / pos.any(dim=0).sum() + neg_term.sum() / c


class ProxyAnchorLoss(nn.Module):
    """Proxy-anchor loss with its own proxies (``proxies``, C x D, an ``nn.Parameter``).

    Args:
        classes: the number of training classes C (labels 0..C-1), or the training classes'
            ids (C,) in any numbering (CUB-200's 1..100, say): a batch's labels must be
            among them.
        embedding_dim: D.
        margin: delta; alpha: the scale.
        lr_multiplier: the proxies' learning rate as a multiple of the base rate, applied by
            :func:`bierlib.training.train` (100 in the authors' ``code/train.py:242``).
    """

    def __init__(self, classes, embedding_dim: int, margin: float = 0.1, alpha: float = 32.0,
                 lr_multiplier: float = 100.0):
        super().__init__()
        if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
            ids = torch.arange(check_positive_int(classes, "classes"))
        else:
            ids = check_labels(classes, "classes")
            if len(ids) == 0 or len(ids.unique()) != len(ids):
                raise ValueError(f"classes must be a number of classes or distinct class ids, "
                                 f"found {len(ids)} ids of which {len(ids.unique())} distinct")
        if alpha <= 0 or lr_multiplier <= 0:
            raise ValueError(f"need alpha > 0 and lr_multiplier > 0, found alpha={alpha}, "
                             f"lr_multiplier={lr_multiplier}")
        self.register_buffer("class_ids", ids.sort().values)  # (C,) proxy c is class_ids[c]
        self.proxies = nn.Parameter(torch.empty(len(ids), check_positive_int(embedding_dim,
                                                                             "embedding_dim")))
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")
        self.margin, self.alpha, self.lr_multiplier = margin, alpha, lr_multiplier

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embeddings, labels = check_batch(embeddings, labels)
        index = torch.searchsorted(self.class_ids, labels).clamp_max(len(self.class_ids) - 1)
        unknown = self.class_ids[index] != labels  # (B,)
        if unknown.any():
            raise ValueError(f"labels {labels[unknown].unique().tolist()[:8]} are not among the "
                             f"{len(self.class_ids)} classes the proxies were made for; build "
                             "the loss with the training set's classes")
        return proxy_anchor_loss(embeddings, index, self.proxies, self.margin, self.alpha)

    def extra_repr(self) -> str:
        return (f"classes={len(self.class_ids)}, embedding_dim={self.proxies.shape[1]}, "
                f"margin={self.margin}, alpha={self.alpha}, lr_multiplier={self.lr_multiplier}")
