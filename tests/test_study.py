"""The studies: their design, and that the committed results still come out of the code."""
import json

import pytest

from bierlib import study


def _runs(trials, scores):
    """Fake tuning runs of ``trials`` ((cell, config) pairs): final Recall@1 from ``scores``
    (config -> value)."""
    return [{"cell": cell, "name": c.name, "config": c.resolved(),
             "final": {"recall@1": scores(c)}} for cell, c in trials]


def test_tuning_gives_every_method_the_same_budget_over_seeds():
    cells = study.tune_cells()
    assert len(cells) == 3 * len(study.METHODS) * len(study.TUNE_SEEDS)
    for _, config in cells:
        assert config.resolved()["dataset"] == "omniglot-validation"  # never the test alphabets
    assert len(study.TUNE_SEEDS) >= 3
    by_lr = {3e-5: 0.5, 1e-4: 0.7, 3e-4: 0.6}
    first = study.tune_cells(("bier",), {"bier": {"C": 10.0}})
    assert {c.seed for _, c in first} == set(study.TUNE_SEEDS)
    assert all(c.options["C"] == 10.0 for _, c in first)  # the shared knob, in every trial
    # seed 0 alone would pick 3e-4; the mean over the seeds picks 1e-4
    trials = _runs(first, lambda c: by_lr[c.resolved()["lr"]]
                   + (0.15 if c.seed == 0 and c.resolved()["lr"] == 3e-4 else 0))
    fourth = study.fourth_trial("bier", trials, {"C": 10.0})  # between the two best rates
    assert [c.resolved()["lr"] for _, c in fourth] == [pytest.approx(1.7e-4)] * 3
    assert len(fourth) == len(study.TUNE_SEEDS) and fourth[0][1].options["C"] == 10.0
    triplet = _runs(study.tune_cells(("triplet",)), lambda c: by_lr[c.resolved()["lr"]])
    _, config = study.fourth_trial("triplet", triplet)[0]
    assert config.options["margin"] == 0.1 and config.resolved()["lr"] == 1e-4
    # trials 5 and 6: the method's own knob at the winning rate, two values besides the default
    for method, (knob, values) in study.KNOB_TRIALS.items():
        runs = _runs(study.tune_cells((method,)), lambda c: by_lr[c.resolved()["lr"]])
        extra = study.knob_trials(method, runs)
        assert [c.options[knob] for _, c in extra[::len(study.TUNE_SEEDS)]] == list(values)
        assert all(c.resolved()["lr"] == 1e-4 for _, c in extra)
        default = study.study_config(method).options[knob]
        assert default not in values and len(set(values)) == 2


def test_every_knob_grid_spans_the_authors_value():
    """The tuned knobs' grids (default plus KNOB_TRIALS) reach below and above the released
    value: C 25, shrinkage 0.06, lambda_div 5e-5 (DESIGN.md, the authors' code)."""
    for method, knob, released in (("binomial", "C", 25.0), ("bier", "shrinkage", 0.06),
                                   ("abier", "lambda_div", 5e-5)):
        values = (study.ExperimentConfig(method).options[knob], *study.KNOB_TRIALS[method][1])
        assert released in values and min(values) <= released <= max(values), method
    assert study.ExperimentConfig("bier").options["C"] == 25.0


def test_tuning_table_marks_the_winner_and_ties():
    cells = study.tune_cells(("margin",))
    runs = _runs(cells, lambda c: {3e-5: 0.60, 1e-4: 0.61, 3e-4: 0.5}[c.resolved()["lr"]]
                 + (0.02 * c.seed if c.resolved()["lr"] == 1e-4 else -0.01 * c.seed))
    rows = study.tuning_table(runs, "margin")
    assert [r["winner"] for r in rows] == [False, True, False]
    assert rows[1]["mean"] == pytest.approx(0.63) and rows[1]["sd"] == pytest.approx(0.02)
    # 3e-5 is 0.04 below on average, paired differences 0.01, 0.04, 0.07: SE 0.017 < 0.04
    assert rows[0]["tie"] is False and rows[2]["tie"] is False
    values = {3e-5: (0.61, 0.58, 0.62), 1e-4: (0.60, 0.64, 0.59), 3e-4: (0.5, 0.5, 0.5)}
    runs = _runs(cells, lambda c: values[c.resolved()["lr"]][c.seed])
    rows = study.tuning_table(runs, "margin")
    # 3e-5 is 0.007 below on average, paired differences -0.01, 0.06, -0.03: SE 0.027, a tie
    assert rows[1]["winner"] and rows[0]["tie"] and not rows[2]["tie"]


def test_tuning_runs_the_parents_first_and_shares_their_knobs(tmp_path, monkeypatch):
    from types import SimpleNamespace

    def fake_run(config, runs_dir, progress):
        o = config.options
        score = 0.5 + {3e-5: 0.0, 1e-4: 0.02}.get(config.resolved()["lr"], 0.01) \
            + (0.03 if o.get("C") == 10.0 else 0) + (0.02 if o.get("shrinkage") == 0.12 else 0)
        final = {"recall@1": score, "seconds": 1.0}
        return SimpleNamespace(config=config, history=SimpleNamespace(final=final))

    monkeypatch.setattr(study, "run_experiment", fake_run)
    monkeypatch.setattr(study, "summarise", lambda cell, result, seconds, keep: {
        "cell": cell, "name": result.config.name, "config": result.config.resolved(),
        "final": result.history.final})
    old = study.ExperimentConfig("bier", dataset="omniglot-validation", lr=1e-4, **study.LONG)
    (tmp_path / "tune.json").write_text(json.dumps({"runs": _runs([("bier lr=0.0001", old)],
                                                                  lambda c: 0.9)}))
    with pytest.raises(ValueError, match="0 of binomial's 6 tuning trials"):
        study.run_study("tune", tmp_path, tmp_path / "runs", progress=False, methods=("bier",))
    data = study.run_study("tune", tmp_path, tmp_path / "runs", progress=False,
                           methods=("binomial", "bier"))
    assert len(data["runs"]) == 2 * study.TRIALS * len(study.TUNE_SEEDS)
    assert old.name not in {r["name"] for r in data["runs"]}  # the earlier design left
    tuned = study.tuned_settings(tmp_path / "tune.json", ("binomial", "bier"))
    assert tuned["binomial"] == {"lr": 1e-4, "C": 10.0}
    assert tuned["bier"] == {"lr": 1e-4, "shrinkage": 0.12, "C": 10.0}
    assert all(r["config"]["C"] == 10.0 for r in data["runs"]
               if r["config"]["method"] == "bier")


def test_ablation_needs_the_tuning_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m bierlib.study tune"):
        study.tuned_settings(tmp_path / "tune.json")
    knobs = {"margin": 0.2, "C": 25.0, "shrinkage": 0.06, "lambda_div": 0.1}

    def config(m, **settings):
        base, options = study.VARIANTS.get(m, (m, {}))
        return {"method": base, **options, **knobs, **settings}

    runs = [{"cell": f"{m} lr={lr:g}", "config": config(m, lr=lr),
             "final": {"recall@1": lr}}
            for m in study.METHODS for lr in (1e-4, 3e-4, 1e-3, 3e-5)]
    (tmp_path / "tune.json").write_text(json.dumps({"runs": runs}))
    with pytest.raises(ValueError, match="4 of contrastive's 6 tuning trials"):
        study.tuned_settings(tmp_path / "tune.json")
    runs += [{"cell": f"{m} {v}", "config": config(m, lr=1e-3, **{study.KNOB_TRIALS[m][0]: v}),
              "final": {"recall@1": 1e-3 + v}}
             for m in study.METHODS for v in study.KNOB_TRIALS[m][1]]
    (tmp_path / "tune.json").write_text(json.dumps({"runs": runs}))
    tuned = study.tuned_settings(tmp_path / "tune.json")
    assert tuned["bier"] == {"lr": 1e-3, "shrinkage": 0.12, "C": 25.0}
    assert tuned["triplet"] == {"lr": 1e-3, "margin": 0.3}
    assert study.tuned_settings(tmp_path / "tune.json", ("binomial",)) == {
        "binomial": {"lr": 1e-3, "C": 50.0}}
    assert tuned["contrastive_squared"] == {"lr": 1e-3, "margin": 0.75}
    assert study.methods_of({"runs": runs}) == study.METHODS
    cells = study.ablation_cells(tuned)
    miniature = [c for cell, c in cells if cell == "miniature"]
    # the pages' 2 x 2 design of A-BIER's terms reads runs the ablation trains
    assert {cell for cell, _ in study.ABIER_DESIGN.values()} == {*study.ABIER_TERMS, "miniature"}
    assert {cell for cell, _ in cells} >= set(study.ABIER_TERMS)
    assert len(miniature) == len(study.METHODS) * len(study.SEEDS)
    squared = [c for c in miniature if c.options.get("form") == "hadsell"]  # the lifted paper's
    assert len(squared) == len(study.SEEDS) and squared[0].method == "contrastive"  # baseline
    assert all(c.resolved()["dataset"] == "omniglot" and c.resolved()["select_on"] ==
               "validation" for _, c in cells)  # stopping chosen on the validation alphabet
    long = study.long_cells(tuned)
    assert len(long) == len(study.LONG_SEEDS) * len(study.LONG_DIMS) * 2
    assert {c.resolved()["embedding_dim"] for _, c in long} == set(study.LONG_DIMS)
    assert all(c.resolved()["epochs"] == 100 and c.options["shrinkage"] == 0.12
               and c.resolved()["select_on"] == "validation" for _, c in long
               if c.method == "bier")


@pytest.mark.parametrize("name", ["tune", "ablation", "long"])
def test_committed_study_reproduces(name):
    """The first run of each committed study is re-run for its first 80 steps and compared
    with the file's record at step 80 (``make check-study`` re-runs the whole first runs)."""
    if not (study.RESULTS / f"{name}.json").is_file():
        pytest.fail(f"results/study/{name}.json is not committed")
    out = study.check(name, epochs=4)
    committed = out["committed"]
    assert study.config_of(committed).name == committed["name"]  # the file's run, today's code
    assert {k: v for k, v in out["now"]["config"].items() if k != "epochs"} == \
        {k: v for k, v in committed["config"].items() if k != "epochs"}
    assert out["now"]["final"]["step"] == 80


def test_one_shot_error_is_added_from_finished_run_folders(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import torch

    from bierlib.oneshot import OneShotRun

    gen = torch.Generator().manual_seed(0)
    train = torch.randint(0, 255, (20, 1, 28, 28), dtype=torch.uint8, generator=gen)
    runs = [OneShotRun("run01", train, train.clone(), torch.arange(20))]  # test = train
    monkeypatch.setattr(study, "_one_shot_runs", lambda: runs)
    flat = torch.nn.Flatten()  # raw pixels: each test drawing finds itself, error 0
    history = SimpleNamespace(final={"recall@1": 0.5})
    monkeypatch.setattr(study, "run_experiment", lambda config, runs_dir, progress:
                        SimpleNamespace(model=flat, history=history))
    config, gone = study.ExperimentConfig("bier"), study.ExperimentConfig("bier", seed=1)
    entries = [{"cell": "miniature", "name": c.name, "config": c.resolved(),
                "final": {"recall@1": 0.5}} for c in (config, gone)]
    (tmp_path / "ablation.json").write_text(json.dumps({"study": "ablation", "runs": entries}))
    (tmp_path / "runs" / config.name).mkdir(parents=True)
    (tmp_path / "runs" / config.name / "metrics.json").write_text("{}")
    assert study.add_one_shot("ablation", tmp_path, tmp_path / "runs") == (1, 1)
    saved = json.loads((tmp_path / "ablation.json").read_text())["runs"]
    assert saved[0]["one_shot_error"] == 0.0 and "one_shot_error" not in saved[1]
    history.final["recall@1"] = 0.6  # a run trained again must reproduce its file
    with pytest.raises(AssertionError, match="final Recall@1 0.6000 in"):
        study.add_one_shot("ablation", tmp_path, tmp_path / "runs", train_missing=True)


@pytest.mark.parametrize("name", ["tune", "ablation", "long"])
def test_every_committed_run_keeps_its_name(name):
    """Settings added since (``select_on``, ...) leave every committed run its name (A-BIER's
    runs were trained again after its defaults changed what it computes)."""
    runs = study.load_results(name)["runs"]
    assert runs and not [r["name"] for r in runs if study._stale(r)]
    assert all("select_on" not in r["config"] for r in runs)


def test_summarise_records_the_chosen_and_oracle_records_and_per_class_recall(
        fake_omniglot, monkeypatch, tmp_path):
    import numpy as np
    import torch

    from bierlib.oneshot import OneShotRun

    monkeypatch.setenv("BIERLIB_DATA", str(fake_omniglot))
    drawings = torch.randint(0, 255, (20, 1, 28, 28), dtype=torch.uint8,
                             generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(study, "_one_shot_runs",
                        lambda: [OneShotRun("run01", drawings, drawings, torch.arange(20))])
    config = study.ExperimentConfig("contrastive", select_on="validation", classes_per_batch=4,
                                    images_per_class=2, steps_per_epoch=2, epochs=4,
                                    eval_every=1, clustering=False, eval_ks=(1, 2))
    result = study.run_experiment(config, runs_dir=tmp_path, progress=False)
    entry = study.summarise("cell", result, 1.0, False)
    assert entry["chosen"] == result.history.chosen and entry["oracle"] == result.history.oracle
    assert entry["final"] == result.history.final and "best" not in entry
    for record in entry["records"]:  # every evaluation keeps its test classes' Recall@1
        per_class = record["per_class_recall@1"]
        assert len(per_class) == 8  # the fake test alphabets: 4 x 2 characters, 3 drawings each
        assert set(per_class) <= {0.0, 0.3333, 0.6667, 1.0}
        assert np.mean(per_class) == pytest.approx(record["recall@1"], abs=1e-4)
        assert "val_per_class_recall@1" not in record
    assert study.value(entry, "per_class_recall@1", "chosen") == entry["chosen"][
        "per_class_recall@1"]
    assert study.value(entry, "val_recall@1", "chosen") == max(result.history["val_recall@1"])
    assert study.value(entry, "recall@1", "oracle") == max(result.history["recall@1"])
    older = {"name": "older", "final": {"recall@1": 0.5}, "best": {"recall@1": 0.7}}
    assert study.value(older, "recall@1", "best") == study.value(older, "recall@1", "oracle") \
        == 0.7
    with pytest.raises(KeyError, match="older has no 'chosen' record"):
        study.value(older, "recall@1", "chosen")
