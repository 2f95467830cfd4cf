import pytest
import torch
import torch.nn.functional as F

from bierlib.book.exercises import ExerciseError, check_contrastive_loss
from bierlib.losses import contrastive_loss


def correct(e, y, m):
    return contrastive_loss(e, y, m)


@pytest.mark.parametrize("answer,message", [
    (lambda e, y, m: -contrastive_loss(e, y, m), "sign is wrong"),
    (lambda e, y, m: 2 * contrastive_loss(e, y, m), "factor 1/2"),
    (lambda e, y, m: contrastive_loss(e, y, 1e-9), "margin seems to be missing"),
    (lambda e, y, m: contrastive_loss(e, y, m, normalize=False), "not L2-normalised"),
    (lambda e, y, m: contrastive_loss(e, y, m).reshape(1),
     r"scalar tensor \(shape \(\)\), found \(1,\)"),
    (lambda e, y, m: contrastive_loss(e, y, m).item(), "scalar tensor"),
    (lambda e, y, m: torch.tensor(contrastive_loss(e, y, m).item(), dtype=torch.float64),
     "no finite gradient"),
    (lambda e, y, m: contrastive_loss(e, y, m, form="pml"), "expected .*found"),
    (lambda e, y, m: e.nonexistent, "raised AttributeError"),
])
def test_mistakes_are_named(answer, message):
    with pytest.raises(ExerciseError, match=message):
        check_contrastive_loss(answer)


def test_correct_answers_pass(capsys):
    check_contrastive_loss(correct)

    def from_scratch(e, y, m):
        x = F.normalize(e, dim=1)
        d = torch.cdist(x, x)
        same = y[:, None] == y[None, :]
        pos = same & ~torch.eye(len(y), dtype=torch.bool)
        return 0.5 * ((d[pos] ** 2).mean() + ((m - d[~same]).clamp(min=0) ** 2).mean())

    check_contrastive_loss(from_scratch)
    assert capsys.readouterr().out.count("correct") == 2


def test_lifted_check():
    from bierlib.book.exercises import check_lifted_loss
    from bierlib.losses import lifted_structured_loss
    check_lifted_loss(lifted_structured_loss)
    with pytest.raises(ExerciseError, match="normalised"):
        check_lifted_loss(lambda e, y, m: lifted_structured_loss(e, y, m, normalize=True))
    with pytest.raises(ExerciseError, match="sign is wrong"):
        check_lifted_loss(lambda e, y, m: -lifted_structured_loss(e, y, m))
    with pytest.raises(ExerciseError, match="both"):
        check_lifted_loss(lambda e, y, m: lifted_structured_loss(e, y, m) + 1)


def test_margin_check():
    from bierlib.book.exercises import check_margin_loss
    from bierlib.losses.margin import margin_loss

    def from_scratch(e, y, triplets):
        a, p, n = triplets
        x = F.normalize(e, dim=1)
        pos = (torch.linalg.vector_norm(x[a] - x[p], dim=1) - 1.2 + 0.2).clamp(min=0)
        neg = (1.2 - torch.linalg.vector_norm(x[a] - x[n], dim=1) + 0.2).clamp(min=0)
        return (pos.sum() + neg.sum()) / ((pos > 0).sum() + (neg > 0).sum())

    def all_terms_mean(e, t):
        a, p, n = t
        x = F.normalize(e, dim=1)
        pos = (torch.linalg.vector_norm(x[a] - x[p], dim=1) - 1.0).clamp(min=0)
        neg = (1.4 - torch.linalg.vector_norm(x[a] - x[n], dim=1)).clamp(min=0)
        return (pos.sum() + neg.sum()) / (2 * len(a))

    check_margin_loss(from_scratch)
    check_margin_loss(lambda e, y, t: margin_loss(e, y, triplets=t))
    with pytest.raises(ExerciseError, match="not L2-normalised"):
        check_margin_loss(lambda e, y, t: margin_loss(e, y, triplets=t, normalize=False))
    with pytest.raises(ExerciseError, match="non-zero terms only"):
        check_margin_loss(lambda e, y, t: margin_loss(e, y, triplets=t) * 0 + all_terms_mean(e, t))
    with pytest.raises(ExerciseError, match="sign is wrong"):
        check_margin_loss(lambda e, y, t: -from_scratch(e, y, t))
