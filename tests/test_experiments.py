"""The one run path: configurations, run identities and folders, training once and loading after."""
import pytest
import torch

from bierlib.experiments import ExperimentConfig, run_experiment
from bierlib.losses import BIERLoss, ContrastiveLoss, DivideAndConquerLoss
from bierlib.profiles import get_profile
from bierlib.training import train

from .conftest import REPO

TINY = dict(classes_per_batch=4, images_per_class=2, steps_per_epoch=2, epochs=2,
            clustering=False, eval_ks=(1, 2))


def test_settings_are_validated_by_name():
    with pytest.raises(ValueError, match=r"unknown settings \['shrinkage'\] for method 'triplet'"):
        ExperimentConfig("triplet", shrinkage=0.1)  # a BIER option
    with pytest.raises(ValueError, match="method must be one of"):
        ExperimentConfig("bierr")
    with pytest.raises(ValueError, match="learner_fractions must be positive and sum to 1"):
        ExperimentConfig("bier", learner_fractions=(0.5, 0.6))
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        ExperimentConfig("bier", epochs=0)
    with pytest.raises(ValueError, match="form"):
        ExperimentConfig("contrastive", form="squared")
    with pytest.raises(ValueError, match="not divisible"):
        ExperimentConfig("divide_and_conquer", num_learners=3)  # D = 128


def test_profile_holds_its_train_config_and_overrides_reach_both():
    p = get_profile("quick", epochs=3, embedding_dim=32)
    assert p.train.epochs == 3 and p.embedding_dim == 32 and p.train_config(seed=5).seed == 5
    with pytest.raises(ValueError, match="unknown profile fields"):
        get_profile("quick", seed=1)  # the seed belongs to the run


def test_every_setting_is_in_the_identity_and_the_name():
    base = ExperimentConfig("bier")
    assert base == ExperimentConfig("bier", shrinkage=0.06)  # a default, spelled out
    assert ExperimentConfig("triplet", margin=1, lr=1).name == \
        ExperimentConfig("triplet", margin=1.0, lr=1.0).name  # 1 and 1.0 are one setting
    assert base.name == ExperimentConfig("bier", num_workers=4).name  # speed only
    changed = [base.replace(shrinkage=0.5), base.replace(seed=1), base.replace(epochs=24),
               base.replace(embedding_dim=64), base.replace(learner_fractions=(0.5, 0.5)),
               base.replace(method="abier"), base.replace(lr=3e-4)]
    names = {c.name for c in changed} | {base.name}
    assert len(names) == len(changed) + 1
    assert base.name.startswith("bier-quick-seed0-")
    resolved = ExperimentConfig("abier", lambda_div=0.5).resolved()
    assert (resolved["lambda_div"] == 0.5 and resolved["epochs"] == 8
            and resolved["shrinkage"] == 0.06)


def test_with_method_keeps_the_setup_and_drops_the_other_options():
    bier = ExperimentConfig("bier", seed=2, epochs=3, shrinkage=0.2, frozen_batchnorm=True)
    plain = bier.with_method("binomial")
    assert plain == ExperimentConfig("binomial", seed=2, epochs=3, frozen_batchnorm=True)


def test_build_uses_the_options():
    model, loss = ExperimentConfig("contrastive", form="hadsell", margin=1.4).build()
    assert isinstance(loss, ContrastiveLoss) and loss.margin == 1.4
    _, loss = ExperimentConfig("bier", shrinkage=0.2, learner_fractions=(0.5, 0.5)).build()
    assert isinstance(loss, BIERLoss) and loss.shrinkage == 0.2 and loss.sizes == (64, 64)
    _, loss = ExperimentConfig("abier", diversity="activation").build()
    assert loss.diversity == "activation"
    _, loss = ExperimentConfig("margin").build()
    assert isinstance(loss, DivideAndConquerLoss) and loss.num_learners == 1


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_build_seeds_the_loss_parameters_too():
    """A-BIER's regressors start from the run's seed, whatever the process drew before, so a
    run is the same in every process (torchrun's ranks, a re-run of a study)."""
    config = ExperimentConfig("abier", embedding_dim=16)
    first = config.build()
    torch.rand(100)  # another process would be elsewhere in its random stream
    second = config.build()
    for (model_a, loss_a), (model_b, loss_b) in ((first, second),):
        for a, b in zip([*model_a.parameters(), *loss_a.parameters()],
                        [*model_b.parameters(), *loss_b.parameters()]):
            assert torch.equal(a, b)
    other = config.replace(seed=1).build()[1]
    assert not all(torch.equal(a, b) for a, b in zip(first[1].parameters(), other.parameters()))


def test_a_run_is_trained_once_then_loaded(fake_omniglot, monkeypatch, tmp_path):
    monkeypatch.setenv("BIERLIB_DATA", str(fake_omniglot))
    monkeypatch.setenv("BIERLIB_RUNS", str(tmp_path / "runs"))
    config = ExperimentConfig("contrastive", **TINY)
    first = run_experiment(config, progress=False)
    assert first.run_dir == tmp_path / "runs" / config.name
    assert ({p.name for p in first.run_dir.iterdir()}
            == {"config.yaml", "checkpoint", "metrics.json"})
    before = _files(first.run_dir)
    calls = []
    monkeypatch.setattr("bierlib.training._train_epoch",
                        lambda *a, **k: calls.append(1) or pytest.fail("retrained"))
    again = run_experiment(ExperimentConfig("contrastive", **TINY), progress=False)
    assert calls == [] and again.history["recall@1"] == first.history["recall@1"]
    assert _files(first.run_dir) == before  # loading writes nothing
    other = ExperimentConfig("contrastive", margin=0.5, **TINY)
    assert other.name != config.name  # a changed option is another run, never the old one


def test_a_folder_of_another_configuration_is_refused_untouched(fake_omniglot, monkeypatch,
                                                                tmp_path):
    monkeypatch.setenv("BIERLIB_DATA", str(fake_omniglot))
    folder = tmp_path / "run"
    run_experiment(ExperimentConfig("contrastive", **TINY), run_dir=folder, progress=False)
    before = _files(folder)
    with pytest.raises(ValueError, match=r"another configuration.*'margin': \(1\.0, 0\.5\)"):
        run_experiment(ExperimentConfig("contrastive", margin=0.5, **TINY), run_dir=folder,
                       progress=False)
    assert _files(folder) == before


def test_a_checkpoint_of_another_configuration_is_refused_with_the_fields(fake_omniglot,
                                                                          monkeypatch, tmp_path):
    monkeypatch.setenv("BIERLIB_DATA", str(fake_omniglot))
    a = ExperimentConfig("contrastive", **TINY)
    result = run_experiment(a, run_dir=tmp_path / "a", progress=False)
    checkpoint = result.run_dir / "checkpoint"
    before = _files(checkpoint)
    b = a.replace(form="hadsell")
    model, loss = b.build()
    from bierlib.profiles import load_datasets
    train_set, test_set = load_datasets(b.resolved_profile())
    with pytest.raises(ValueError, match=r"different configuration.*'form': \('pml', 'hadsell'\)"):
        train(model, loss, train_set, test_set, b.resolved_profile().train_config(), checkpoint,
              progress=False, identity=b.identity())
    assert _files(checkpoint) == before


def test_divide_and_conquer_runs_through_the_same_path(fake_omniglot, monkeypatch, tmp_path):
    monkeypatch.setenv("BIERLIB_DATA", str(fake_omniglot))
    config = ExperimentConfig("divide_and_conquer", num_learners=2, keep_features=True,
                              **{**TINY, "epochs": 4})
    result = run_experiment(config, runs_dir=tmp_path, progress=False)
    assert [c["epoch"] for c in result.extras["clusterings"]] == [0, 2]
    assert "features" in result.extras["clusterings"][0]
    assert result.model.sizes == (64, 64) and not result.model.training
    again = run_experiment(config, runs_dir=tmp_path, progress=False)
    assert again.history["recall@1"] == result.history["recall@1"]
    assert torch.equal(again.extras["clusterings"][0]["clusters"],
                       result.extras["clusterings"][0]["clusters"])


def test_settings_added_later_leave_the_earlier_runs_their_names():
    """A setting added after the committed studies is part of a run's configuration only when
    it differs from what bierlib computed before it existed; A-BIER's changed penalty and
    regressors are always part of it (its earlier runs are other runs)."""
    from bierlib.experiments import LATER_SETTINGS

    for method in ("bier", "margin", "divide_and_conquer"):
        resolved = ExperimentConfig(method).resolved()
        assert not set(LATER_SETTINGS) & set(resolved)
        changed = ExperimentConfig(method, weight_decay_form="l2-weights")
        assert changed.resolved()["weight_decay_form"] == "l2-weights"
        assert changed.name != ExperimentConfig(method).name
    abier = ExperimentConfig("abier").resolved()
    assert abier["unit_norm"] == "per-learner" and abier["regressor_init"] == "xavier"
    spelled = ExperimentConfig("divide_and_conquer", kmeans="k-means++", lr_anneal=None)
    assert spelled == ExperimentConfig("divide_and_conquer")


def test_paper_configs_run_the_official_schedules():
    import yaml

    from bierlib.cli import load_config

    def options(name):
        config = load_config(REPO / "configs" / "paper" / f"{name}.yaml", {})
        return {**config.resolved(), **config.options}

    for name in ("bier_cub200", "abier_cub200", "abier_sop"):
        o = options(name)
        assert o["weight_decay_form"] == "l2-weights" and o["weight_decay"] == 2e-4
    sop = options("abier_sop")
    assert (sop["lr_anneal"], sop["lr_decay"], sop["lambda_div"], sop["lambda_w"]) == (
        25000, 0.5, 5e-5, 1e5)
    assert sop["epochs"] * sop["steps_per_epoch"] == 100_000
    for name in ("dc_cub200", "dc_cars196", "dc_sop"):
        o = options(name)
        assert (o["finetune_epoch"], o["whole_embedding_epoch"]) == (190, 190 * 8 // 19)
        assert (o["cluster_images"], o["kmeans"], o["epoch_length"]) == (
            "evaluation", "faiss", "largest-cluster")
        assert o["train_batchnorm_affine"] and o["embedding_dropout"] == 0.01
    for path in (REPO / "configs" / "paper").glob("*.yaml"):
        comments = " ".join(line for line in path.read_text().splitlines()
                            if line.startswith("#"))
        assert "official SOP configuration" not in comments, path
        assert yaml.safe_load(path.read_text())["method"]


def test_select_on_validation_trains_without_the_validation_alphabet(fake_omniglot, monkeypatch,
                                                                     tmp_path):
    """``select_on="validation"``: trained on the training alphabets but the validation one,
    which every evaluation measures beside the test alphabets; the stop chosen on it is in
    metrics.json; the default keeps every earlier run's name."""
    import json

    from bierlib.profiles import load_datasets, load_validation

    monkeypatch.setenv("BIERLIB_DATA", str(fake_omniglot))
    config = ExperimentConfig("contrastive", select_on="validation", **TINY)
    assert config.resolved()["select_on"] == "validation"
    assert "select_on" not in ExperimentConfig("contrastive", **TINY).resolved()
    assert ExperimentConfig("contrastive", select_on="test", **TINY) == \
        ExperimentConfig("contrastive", **TINY)
    assert config.name != ExperimentConfig("contrastive", **TINY).name
    train_set, test_set = load_datasets(config.resolved_profile())
    validation = load_validation(config.resolved_profile())
    assert (train_set.split, test_set.split, validation.split) == ("tune", "test", "validation")
    assert load_validation(get_profile("quick")) is None
    result = run_experiment(config, runs_dir=tmp_path, progress=False)
    assert all("val_recall@1" in r and "recall@1" in r for r in result.history.records)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["chosen"]["step"] == result.history.chosen["step"]
    assert metrics["oracle"]["step"] == result.history.oracle["step"] and "best" not in metrics
    dc = ExperimentConfig("divide_and_conquer", num_learners=2, select_on="validation", **TINY)
    assert "val_map@r" in run_experiment(dc, runs_dir=tmp_path, progress=False).history.final
    with pytest.raises(ValueError, match="datasets must be the .train, test, validation. triple"):
        run_experiment(config, run_dir=tmp_path / "pair", progress=False,
                       datasets=(train_set, test_set))
    with pytest.raises(ValueError, match="select_on='validation' needs a dataset with held-out "
                                         "validation classes.*found dataset='cub200'"):
        ExperimentConfig("contrastive", profile="paper", select_on="validation")
    with pytest.raises(ValueError, match="found dataset='omniglot-validation'"):
        ExperimentConfig("contrastive", dataset="omniglot-validation", select_on="validation")


def test_methods_after_the_papers_build_with_their_defaults():
    from bierlib.losses import MultiSimilarityLoss, ProxyAnchorLoss

    _, loss = ExperimentConfig("multi_similarity").build()
    assert isinstance(loss, MultiSimilarityLoss)
    assert (loss.alpha, loss.beta, loss.base, loss.epsilon) == (2.0, 50.0, 0.5, 0.1)
    assert ExperimentConfig("multi_similarity", epsilon=None).build()[1].epsilon is None
    config = ExperimentConfig("proxy_anchor", embedding_dim=16)
    with pytest.raises(ValueError, match="the proxy-anchor loss needs the training classes"):
        config.build()
    _, loss = config.build(train_classes=torch.tensor([3, 1, 2]))
    assert isinstance(loss, ProxyAnchorLoss) and loss.proxies.shape == (3, 16)
    assert (loss.margin, loss.alpha, loss.lr_multiplier) == (0.1, 32.0, 100.0)
    again = config.build(train_classes=torch.tensor([3, 1, 2]))[1]
    assert torch.equal(again.proxies, loss.proxies)  # seeded by the run's seed
    assert config.name != config.replace(proxy_lr_multiplier=10).name
    with pytest.raises(ValueError, match="lr_multiplier"):
        ExperimentConfig("proxy_anchor", proxy_lr_multiplier=0)
    with pytest.raises(ValueError, match="epsilon=-1"):
        ExperimentConfig("multi_similarity", epsilon=-1)


def test_proxy_anchor_resumes_with_its_proxies_and_their_optimiser_state(fake_omniglot,
                                                                         monkeypatch, tmp_path):
    """The proxies (one per training class) train at proxy_lr_multiplier x lr; a run killed
    after its first epoch and resumed ends exactly where an uninterrupted run ends: the
    checkpoint holds the proxies and their Adam moments."""
    from bierlib import training
    from bierlib.profiles import load_datasets

    monkeypatch.setenv("BIERLIB_DATA", str(fake_omniglot))
    config = ExperimentConfig("proxy_anchor", **{**TINY, "epochs": 3})
    whole = run_experiment(config, run_dir=tmp_path / "whole", progress=False)
    save = training.atomic_torch_save

    def killed_after_epoch_1(state, path):
        save(state, path)
        if state["epoch"] == 1:
            raise KeyboardInterrupt  # as if the process were stopped there

    with monkeypatch.context() as patched:
        patched.setattr(training, "atomic_torch_save", killed_after_epoch_1)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(config, run_dir=tmp_path / "resumed", progress=False)
    resumed = run_experiment(config, run_dir=tmp_path / "resumed", progress=False)
    a, b = (torch.load(r.run_dir / "checkpoint" / "last.pt", weights_only=True)
            for r in (whole, resumed))
    for part in ("model", "loss_fn"):
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    for i, moments in a["optimizer"]["state"].items():
        assert all(torch.equal(v, b["optimizer"]["state"][i][k]) for k, v in moments.items())

    def metrics(history):  # the untrained model's loss is NaN, never equal to itself
        return [{k: v for k, v in r.items() if k != "seconds" and v == v}
                for r in history.records]

    assert metrics(resumed.history) == metrics(whole.history)
    train_classes = load_datasets(config.resolved_profile())[0].targets.unique()
    assert a["loss_fn"]["proxies"].shape == (len(train_classes), 128)
    assert a["optimizer"]["param_groups"][-1]["lr"] == 100 * config.resolved_profile().train.lr
    initial = config.build(train_classes=train_classes)[1].proxies
    assert not torch.allclose(initial, a["loss_fn"]["proxies"])  # they trained


def test_multi_similarity_trains_through_the_same_path(fake_omniglot, monkeypatch, tmp_path):
    monkeypatch.setenv("BIERLIB_DATA", str(fake_omniglot))
    result = run_experiment(ExperimentConfig("multi_similarity", **TINY), runs_dir=tmp_path,
                            progress=False)
    assert [r["epoch"] for r in result.history.records] == [0, 2]
    assert result.history.final["loss"] > 0
