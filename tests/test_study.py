"""The studies: their design, and that the committed results still come out of the code."""
import json

import pytest

from bierlib import study


def test_tuning_gives_every_method_the_same_budget():
    cells = study.tune_cells()
    assert len(cells) == 3 * len(study.METHODS)
    for _, config in cells:
        assert config.resolved()["dataset"] == "omniglot-validation"  # never the test alphabets
    trials = [{"config": {"lr": lr}, "final": {"recall@1": r}}
              for lr, r in ((3e-5, 0.5), (1e-4, 0.7), (3e-4, 0.6))]
    name, config = study.fourth_trial("triplet", trials)
    assert config.options["margin"] == 0.1 and config.resolved()["lr"] == 1e-4
    name, config = study.fourth_trial("bier", trials)  # between the two best rates
    assert config.resolved()["lr"] == pytest.approx(1.7e-4)
    trials[2]["final"]["recall@1"] = 0.9
    assert study.fourth_trial("bier", trials)[1].resolved()["lr"] == pytest.approx(9e-4)


def test_ablation_needs_the_tuning_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m bierlib.study tune"):
        study.tuned_settings(tmp_path / "tune.json")
    runs = [{"config": {"method": m, "lr": lr, "margin": 0.2}, "final": {"recall@1": lr}}
            for m in study.METHODS for lr in (1e-4, 3e-4, 1e-3, 3e-5)]
    (tmp_path / "tune.json").write_text(json.dumps({"runs": runs}))
    tuned = study.tuned_settings(tmp_path / "tune.json")
    assert tuned["bier"] == {"lr": 1e-3} and tuned["triplet"] == {"lr": 1e-3, "margin": 0.2}
    cells = study.ablation_cells(tuned)
    miniature = [c for cell, c in cells if cell == "miniature"]
    assert len(miniature) == len(study.METHODS) * len(study.SEEDS)
    assert all(c.resolved()["dataset"] == "omniglot" for _, c in cells)


@pytest.mark.parametrize("name", ["tune", "ablation"])
def test_committed_study_reproduces(name):
    """CI re-runs the first run of each committed study and compares it with the file."""
    if not (study.RESULTS / f"{name}.json").is_file():
        pytest.fail(f"results/study/{name}.json is not committed")
    out = study.check(name)
    assert out["now"]["name"] == out["committed"]["name"]
