"""Studies: the experiments that do not fit into a chapter's time budget, run by a command and
committed with their provenance.

::

    python -m bierlib.study tune              # each method's learning rate (and margin) on
                                              # the validation split of the training alphabets
    python -m bierlib.study ablation          # the papers' claims with one ingredient toggled
    python -m bierlib.study long              # BIER's claim in a run of 2,000 steps
    python -m bierlib.study check ablation    # re-run one committed run and compare (CI does)
    python -m bierlib.study oneshot ablation  # add Omniglot's one-shot error from the run folders

A study is a list of :class:`~bierlib.experiments.ExperimentConfig` runs in named *cells*. Each
run goes through :func:`~bierlib.experiments.run_experiment` (run folders under
``--runs``, default ``runs/study``: an interrupted study resumes), and after every run the
results file ``results/study/<study>.json`` is rewritten atomically with each run's
configuration, evaluation records, final metrics, the test peak ("oracle", an upper bound:
older files call it "best") and, for runs with ``select_on="validation"``, the evaluation
chosen on validation ("chosen"; such runs' records also keep the test classes' per-class
Recall@1), the final model's correlations and its provenance (command, commit, machine,
date, seconds). The book's pages read these files.

``ablation`` and ``long`` need ``tune``'s file: every method trains at the learning rate and
knob value that won its tuning, so that no method loses for want of tuning (Musgrave et al.
2020).
"""
from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from .boosting import cross_learner_correlation
from .evaluation import correlation_matrix, mean_abs_correlation
from .experiments import ExperimentConfig, run_experiment
from .models import pretrained_metadata
from .oneshot import load_runs, one_shot_error
from .pretrain import features_per_class
from .profiles import PROFILES, load_datasets
from .training import PER_CLASS, embed
from .utils import atomic_write


def _results_folder() -> Path:
    """``results/study`` of the source tree, or of the repository the working folder is in (an
    installed bierlib run from a clone, as on Colab)."""
    here = Path.cwd().resolve()
    for folder in (Path(__file__).resolve().parents[1], here, *here.parents):
        if (folder / "results" / "study").is_dir():
            return folder / "results" / "study"
    return Path(__file__).resolve().parents[1] / "results" / "study"


RESULTS = _results_folder()
#: The long regime of the studies: 480 steps, 3x the chapters' 160, towards the baselines'
#: over-fitting; evaluated every 80 steps.
LONG = {"epochs": 24, "eval_every": 4}
#: The ablation's and the long study's runs stop where the held-out validation alphabet peaks
#: (``History.chosen``); the test peak is kept only as an upper bound ("oracle").
CHOSEN = {"select_on": "validation"}
#: The four claims and the methods they compare (the first is the paper's method).
CLAIMS = {
    "lifted": ("lifted", "contrastive", "triplet", "contrastive_squared"),
    "bier": ("bier", "binomial"),
    "abier": ("abier", "bier"),
    "divide_and_conquer": ("divide_and_conquer", "margin"),
}
METHODS = ("contrastive", "triplet", "lifted", "binomial", "bier", "abier", "margin",
           "divide_and_conquer", "contrastive_squared", "multi_similarity", "proxy_anchor")
#: Study methods that are a bierlib method with other options: the lifted structured loss
#: paper's baseline, Hadsell et al.'s *squared* contrastive loss (bierlib's "contrastive" is
#: pytorch-metric-learning's non-squared form). {study method: (bierlib method, options)}
VARIANTS = {"contrastive_squared": ("contrastive", {"form": "hadsell"})}


def study_method(config: dict) -> str:
    """The study's name of a run's resolved ``config``: its variant (``VARIANTS``) where it has
    the variant's options, else its bierlib method."""
    for variant, (method, options) in VARIANTS.items():
        if config["method"] == method and all(config.get(k) == v for k, v in options.items()):
            return variant
    return config["method"]


def study_config(method: str, **settings) -> ExperimentConfig:
    """The configuration of a run of the study's ``method`` (a bierlib method or one of
    ``VARIANTS``) with ``settings``."""
    base, options = VARIANTS.get(method, (method, {}))
    return ExperimentConfig(base, **options, **settings)


#: The tuning budget, the same for every method: three learning rates at the default options,
#: then a fourth trial at the winning rate -- the other margin for a method with a margin, the
#: next rate beyond the winner (or between the two best) for a method without one -- then two
#: more values of the method's own knob (``KNOB_TRIALS``). Every trial trains once per seed of
#: ``TUNE_SEEDS`` and is scored by the mean of their final validation Recall@1.
LEARNING_RATES = (3e-5, 1e-4, 3e-4)
TUNE_SEEDS = (0, 1, 2)
OTHER_MARGIN = {"contrastive": 0.5, "triplet": 0.1, "lifted": 0.5, "margin": 0.1,
                "divide_and_conquer": 0.1, "contrastive_squared": 0.5, "proxy_anchor": 0.2}
#: Ingredients toggled one at a time from the miniature (the training length is read from the
#: long runs' records at SHORT_STEP, the chapters' length: the learning rate is constant).
TOGGLES = {
    "from scratch": {"pretrained": False},
    "flat learning rate": {"embedding_lr_multiplier": 1.0},
    "D = 512 > F = 256": {"embedding_dim": 512},
}
SEEDS = (0, 1, 2, 3, 4)
#: A-BIER's diversity term has two parts (the official code's): the adversarial regressors and
#: a unit-norm penalty on the embedding layer. Each alone, and neither (BIER trained at
#: A-BIER's tuned rate and shrinkage), at A-BIER's tuned settings: with A-BIER itself, a 2 x 2
#: design whose every difference changes one term and nothing else.
ABIER_TERMS = {"A-BIER: regressors alone": {"diversity": "regressors"},
               "A-BIER: unit-norm penalty alone": {"diversity": "unit-norm"},
               "A-BIER: neither term": {"diversity": None}}
#: The same 2 x 2 design as the pages read it: name -> (cell, method) of its runs, "neither
#: term" first (every other variant is compared with it), A-BIER itself from the miniature.
ABIER_DESIGN = {"neither term": ("A-BIER: neither term", "abier"),
                "regressors alone": ("A-BIER: regressors alone", "abier"),
                "unit-norm penalty alone": ("A-BIER: unit-norm penalty alone", "abier"),
                "both terms (A-BIER)": ("miniature", "abier")}
HEATMAPS = ("binomial", "bier", "abier")  # seed 0 of the miniature keeps its correlation matrix
#: The chapters' training length in steps (the quick profile's), at which the studies' long runs
#: are also read; a multiple of their evaluation interval (80 steps).
SHORT_STEP = PROFILES["quick"].train.epochs * PROFILES["quick"].train.steps_per_epoch


#: The long study's length, 100 epochs of 20 steps of 128 images, evaluated every 80 steps,
#: about as many passes over the training images as train_bier.py's default makes over CUB's
#: (20,000 x 32, about 109; the released code does not say which length the papers used) -- at
#: the miniature's constant learning rate, without run.sh's staircase annealing, on the
#: miniature's data and backbone: a longer run, not the papers' regime.
PAPER_LENGTH = {"epochs": 100, "eval_every": 4}
#: The long study: BIER's claim in that longer run, at D = 128 and D = 512 (F = 256).
LONG_DIMS = (128, 512)
LONG_SEEDS = (0, 1, 2, 3, 4)
#: Trials 5 and 6 of the tuning budget: two more values of each method's own knob (its margin,
#: binomial deviance's negative cost C, BIER's shrinkage, A-BIER's lambda_div) at the rate
#: that won trials 1-4. A-BIER's trials 1-4 run at its default, the authors' released setting
#: (run.sh: lambda_div 5e-5 with lambda_w 1e5); its knob trials go up from there to 0.1, evenly
#: in log scale, with train_bier.py's default lambda_w 100 (KNOB_COMPANIONS).
KNOB_TRIALS = {"contrastive": ("margin", (0.25, 0.75)),
               "contrastive_squared": ("margin", (0.25, 0.75)),
               "multi_similarity": ("base", (0.3, 1.0)), "proxy_anchor": ("margin", (0.05, 0.3)),
               "triplet": ("margin", (0.05, 0.3)),
               "lifted": ("margin", (0.75, 1.5)), "binomial": ("C", (10.0, 50.0)),
               "bier": ("shrinkage", (0.03, 0.12)), "abier": ("lambda_div", (3e-3, 0.1)),
               "margin": ("margin", (0.05, 0.3)), "divide_and_conquer": ("margin", (0.15, 0.3))}
#: Settings that a knob value brings along ({method: {value: settings}}), and the tuned
#: settings that come with the knob's (:func:`tuned_settings`).
KNOB_COMPANIONS = {"abier": {3e-3: {"lambda_w": 100.0}, 0.1: {"lambda_w": 100.0}}}
COMPANION_SETTINGS = {"abier": ("lambda_w",)}
#: Knobs a method shares with the method it extends, tuned once, on the simpler one: BIER
#: trains every trial at the negative cost C its single embedding (binomial deviance) chose,
#: A-BIER at BIER's C and shrinkage. So BIER minus its single embedding differs by the
#: boosting alone, A-BIER minus BIER by the diversity terms alone. {method: (parent, knobs)}
SHARED_KNOBS = {"bier": ("binomial", ("C",)), "abier": ("bier", ("C", "shrinkage"))}
#: The order methods are tuned in: every parent of SHARED_KNOBS before its children.
TUNE_ORDER = ("contrastive", "triplet", "lifted", "binomial", "margin", "divide_and_conquer",
              "bier", "abier", "contrastive_squared", "multi_similarity", "proxy_anchor")
TRIALS = 6  # per method: 3 rates, the fourth trial, 2 knob trials


def _trial(cell: str, method: str, inherited: dict | None = None, **settings
           ) -> list[tuple[str, ExperimentConfig]]:
    """One tuning trial: the cell's run at each of ``TUNE_SEEDS``, on the validation split."""
    return [(cell, study_config(method, dataset="omniglot-validation", seed=s,
                                **(inherited or {}), **settings, **LONG))
            for s in TUNE_SEEDS]


def trial_scores(trials: list[dict]) -> dict[str, dict]:
    """Tuning runs grouped by trial (cell), in first-seen order: ``{cell: {"values": final
    validation Recall@1 per seed, in seed order, "mean": their mean, "config": the first
    run's configuration}}``."""
    groups: dict[str, list[dict]] = {}
    for r in trials:
        groups.setdefault(r["cell"], []).append(r)
    out = {}
    for cell, group in groups.items():
        group = sorted(group, key=lambda r: r["config"].get("seed", 0))
        values = [r["final"]["recall@1"] for r in group]
        out[cell] = {"values": values, "mean": float(np.mean(values)), "config": group[0]["config"]}
    return out


def _winner(scores: dict[str, dict]) -> dict:
    return max(scores.values(), key=lambda t: t["mean"])  # max keeps the first of equal means


def tune_cells(methods: tuple[str, ...] = METHODS, inherited: dict[str, dict] | None = None
               ) -> list[tuple[str, ExperimentConfig]]:
    """The first three trials of each of ``methods`` (the fourth depends on them), at the
    shared knobs ``inherited[method]`` (see ``SHARED_KNOBS``)."""
    inherited = inherited or {}
    return [run for m in methods for lr in LEARNING_RATES
            for run in _trial(f"{m} lr={lr:g}", m, inherited.get(m), lr=lr)]


def fourth_trial(method: str, trials: list[dict], inherited: dict | None = None
                 ) -> list[tuple[str, ExperimentConfig]]:
    """The fourth tuning trial of ``method`` given the runs of its first three."""
    scores = {t["config"]["lr"]: t["mean"] for t in trial_scores(trials).values()}
    best = max(scores, key=scores.get)
    if method in OTHER_MARGIN:
        return _trial(f"{method} lr={best:g} margin={OTHER_MARGIN[method]:g}", method,
                      inherited, lr=best, margin=OTHER_MARGIN[method])
    rates = sorted(scores)
    if best == rates[-1]:
        lr = best * 3
    elif best == rates[0]:
        lr = best / 3
    else:
        second = max((r for r in rates if r != best), key=scores.get)
        lr = math.sqrt(best * second)
    return _trial(f"{method} lr={lr:.2g}", method, inherited, lr=float(f"{lr:.2g}"))


def knob_trials(method: str, trials: list[dict], inherited: dict | None = None
                ) -> list[tuple[str, ExperimentConfig]]:
    """Tuning trials 5 and 6 of ``method``: ``KNOB_TRIALS`` at the rate that won the runs of
    its first four ``trials``."""
    lr = _winner(trial_scores(trials))["config"]["lr"]
    knob, values = KNOB_TRIALS[method]
    out = []
    for v in values:
        extra = KNOB_COMPANIONS.get(method, {}).get(v, {})
        label = "".join(f" {k}={x:g}" for k, x in extra.items())
        out += _trial(f"{method} lr={lr:g} {knob}={v:g}{label}", method, inherited, lr=lr,
                      **{knob: v}, **extra)
    return out


def _tune_file(tune_file: Path | None) -> list[dict]:
    tune_file = Path(tune_file) if tune_file is not None else RESULTS / "tune.json"
    if not tune_file.is_file():
        raise FileNotFoundError(f"{tune_file} is missing: run `python -m bierlib.study tune` "
                                "first (the ablation trains every method at its tuned settings)")
    return json.loads(tune_file.read_text())["runs"]


def _settings(method: str, config: dict) -> dict:
    """The tuned settings of ``method`` in a trial's ``config``: lr, knob, companions and the
    knobs it shares with its parent."""
    defaults = study_config(method).options
    keys = (KNOB_TRIALS[method][0], *COMPANION_SETTINGS.get(method, ()),
            *SHARED_KNOBS.get(method, ("", ()))[1])
    return {"lr": config["lr"], **{k: config.get(k, defaults[k]) for k in keys}}


def tuned_settings(tune_file: Path | None = None,
                   methods: tuple[str, ...] = METHODS) -> dict[str, dict]:
    """The winning settings (``lr``, the knob of ``KNOB_TRIALS``, its
    companions, the shared knobs) of each of ``methods`` from the tuning file, by the mean
    final validation Recall@1 over each trial's seeds (default file: ``RESULTS /
    "tune.json"``)."""
    runs = _tune_file(tune_file)
    out = {}
    for method in methods:
        scores = trial_scores([r for r in runs if study_method(r["config"]) == method])
        if len(scores) < TRIALS:
            raise ValueError(f"the tuning file has {len(scores)} of {method}'s {TRIALS} tuning "
                             "trials: finish `python -m bierlib.study tune`")
        out[method] = _settings(method, _winner(scores)["config"])
    return out


def tuning_table(runs: list[dict], method: str) -> list[dict]:
    """``method``'s tuning trials for a page: per trial its settings (:func:`_settings`), the
    seeds' values, their mean and standard deviation, ``"winner"`` (the highest mean, the
    first trial on equal means), and for the runner-up-within-noise ``"tie"``: its gap to
    the winner is smaller than the standard error of the paired (same-seed) difference, so the
    winner was picked by a mean difference the seeds do not resolve."""
    scores = trial_scores([r for r in runs if study_method(r["config"]) == method])
    best = _winner(scores)
    rows = []
    for cell, t in scores.items():
        values = np.asarray(t["values"])
        row = {"cell": cell, "settings": _settings(method, t["config"]),
               "values": t["values"], "mean": t["mean"],
               "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
               "winner": t is best, "tie": False}
        if t is not best and len(values) == len(best["values"]) > 1:
            gap = np.asarray(best["values"]) - values
            row["tie"] = bool(gap.mean() < gap.std(ddof=1) / math.sqrt(len(gap)))
        rows.append(row)
    return rows


def ablation_cells(tuned: dict[str, dict]) -> list[tuple[str, ExperimentConfig]]:
    """The ablation's runs: every method at its ``tuned`` settings x ``SEEDS`` ("miniature"),
    then BIER and its single embedding with each of ``TOGGLES``, then A-BIER with each of
    ``ABIER_TERMS``."""
    cells = [("miniature", study_config(m, seed=s, **tuned[m], **LONG, **CHOSEN))
             for m in METHODS for s in SEEDS]
    for toggle, change in TOGGLES.items():
        cells += [(toggle, ExperimentConfig(m, seed=s, **tuned[m], **LONG, **CHOSEN, **change))
                  for m in CLAIMS["bier"] for s in SEEDS]
    for toggle, change in ABIER_TERMS.items():
        cells += [(toggle, ExperimentConfig("abier", seed=s, **tuned["abier"], **LONG, **CHOSEN,
                                            **change))
                  for s in SEEDS]
    return cells


def long_cells(tuned: dict[str, dict]) -> list[tuple[str, ExperimentConfig]]:
    """The long study's runs: BIER and its single embedding at their ``tuned`` settings for
    ``PAPER_LENGTH``, at each of ``LONG_DIMS``, seed by seed (so that finished seeds
    are complete pairs)."""
    return [(f"D = {d}", ExperimentConfig(m, seed=s, embedding_dim=d, **tuned[m],
                                          **PAPER_LENGTH, **CHOSEN))
            for s in LONG_SEEDS for d in LONG_DIMS for m in CLAIMS["bier"]]


def load_results(study: str, results: Path | None = None) -> dict:
    """The committed results file of ``study`` ("tune" or "ablation"), from ``results``
    (default ``RESULTS``)."""
    path = Path(results if results is not None else RESULTS) / f"{study}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m bierlib.study {study}` from "
                                "the repository root (see its --help)")
    return json.loads(path.read_text())


def methods_of(data: dict) -> tuple[str, ...]:
    """The study methods (``METHODS``, in that order) that have runs in a results file."""
    present = {study_method(r["config"]) for r in data["runs"]}
    return tuple(m for m in METHODS if m in present)


def runs_of(data: dict, cell: str | None = None, method: str | None = None) -> list[dict]:
    """The runs of a results file in ``cell`` and of ``method`` (None: any), in seed order."""
    runs = [r for r in data["runs"] if (cell is None or r["cell"] == cell)
            and (method is None or study_method(r["config"]) == method)]
    return sorted(runs, key=lambda r: r["config"]["seed"])


def paired_values(data: dict, a: tuple[str, str], b: tuple[str, str], key: str = "recall@1",
                  step: int | None = None, b_data: dict | None = None
                  ) -> tuple[list[float], list[float]]:
    """``key`` of the runs ``a`` and ``b`` (each a ``(cell, method)``; ``b`` from ``b_data``
    if given) over the seeds both have, in seed order: the two sides of a paired comparison.
    ``key`` is a metric (read with :func:`value` at ``step``) or a run field such as
    ``"cross_learner_correlation"``."""
    sides = []
    for (cell, method), source in ((a, data), (b, b_data or data)):
        sides.append({r["config"]["seed"]: r for r in runs_of(source, cell, method)})
    seeds = sorted(set(sides[0]) & set(sides[1]))
    get = (lambda r: value(r, key, step)) if key in METRIC_KEYS else (lambda r: r[key])
    return [get(sides[0][s]) for s in seeds], [get(sides[1][s]) for s in seeds]


METRIC_KEYS = ("recall@1", "recall@2", "recall@4", "recall@8", "r_precision", "map@r", "nmi",
               "f1", PER_CLASS)


#: The named records of a results file's run that :func:`value` reads as ``step``.
NAMED_RECORDS = ("final", "chosen", "oracle", "best")


def named_record(run: dict, which: str) -> dict:
    """A run's ``"final"`` record, its ``"chosen"`` one (where validation Recall@1 peaked) or
    its ``"oracle"`` one (the test peak, an upper bound; ``"best"`` is its older name, and older
    entries that store it as "best" are read too)."""
    if which not in NAMED_RECORDS:
        raise ValueError(f"which must be one of {NAMED_RECORDS}, found {which!r}")
    if which in ("oracle", "best"):
        return run["oracle"] if "oracle" in run else run["best"]
    if which not in run:
        raise KeyError(f"{run['name']} has no {which!r} record: it was trained without "
                       "select_on='validation'")
    return run[which]


def value(run: dict, key: str, step: int | str | None = None) -> float:
    """``key`` of a run's final record, of its record at ``step`` (e.g. ``SHORT_STEP``, the
    chapters' length), or of a named record (``step="chosen"``: the validation peak;
    ``"oracle"`` or, its older name, ``"best"``: the test peak, see :func:`named_record`)."""
    if step is None or isinstance(step, str):
        return named_record(run, step or "final")[key]
    for record in run["records"]:
        if record["step"] == step:
            return record[key]
    raise KeyError(f"{run['name']} has no evaluation at step {step}; evaluated at "
                   f"{[r['step'] for r in run['records']]}")


def features_entry() -> dict:
    """The pretrained features' entry of a results file: their Recall@1 and each test class's
    (:func:`bierlib.pretrain.features_per_class`), with the weights' sha256."""
    per_class = features_per_class()
    if per_class is None:
        raise FileNotFoundError("Omniglot's test alphabets are missing: run "
                                "`python data_scripts/fetch_omniglot.py` first")
    return {"recall@1": round(float(per_class.mean()), 4),
            PER_CLASS: np.round(per_class, 4).tolist(), "weights": pretrained_metadata()["sha256"]}


def summarise(cell: str, result, seconds: float, keep_matrix: bool) -> dict:
    """One run's entry in the results file: configuration, records (with the final, the
    oracle and, for ``select_on="validation"``, the chosen one; such runs' records also hold
    the test classes' per-class Recall@1, for a bootstrap over classes), and the final
    model's correlations and one-shot error."""
    config = result.config
    _, test = load_datasets(config.resolved_profile())
    emb, _ = embed(result.model, test)
    sizes = config.learner_sizes() if config.method in ("bier", "abier") else _slices(config)
    history = result.history
    select_on = config.resolved_profile().train.select_on
    chosen = {"chosen": history.chosen} if select_on == "validation" else {}
    entry = {"cell": cell, "name": config.name, "config": config.resolved(),
             "final": history.final, "oracle": history.oracle, **chosen,
             "records": history.records,
             "cross_learner_correlation": round(cross_learner_correlation(emb, sizes), 4),
             "learner_sizes": list(sizes),
             "mean_abs_correlation": round(mean_abs_correlation(emb), 4),
             "one_shot_error": round(one_shot_error(result.model, _one_shot_runs()).mean, 4),
             "seconds": round(seconds, 1), "finished": _now(), "machine": _machine()}
    if keep_matrix:
        entry["correlation_matrix"] = np.round(correlation_matrix(emb), 3).tolist()
    return entry


@functools.lru_cache(maxsize=1)
def _one_shot_runs():
    """Omniglot's 20 official one-shot runs (evaluation alphabets), loaded once."""
    return load_runs()


def config_of(entry: dict) -> ExperimentConfig:
    """The configuration of a results file's run ``entry``; an AssertionError if today's code
    resolves it to another run (its configuration's defaults changed)."""
    values = {k: v for k, v in entry["config"].items()
              if k not in ("method", "profile", "seed", "name")}
    config = ExperimentConfig(entry["config"]["method"], entry["config"]["profile"],
                              entry["config"]["seed"], **values)
    if config.name != entry["name"]:
        raise AssertionError(f"the committed run {entry['name']} resolves to {config.name} with "
                             "today's code: its configuration's defaults changed; re-run the study")
    return config


def _stale(entry: dict) -> bool:
    """Whether today's code resolves a results file's run ``entry`` to another run."""
    try:
        config_of(entry)
    except AssertionError:
        return True
    return False


def add_one_shot(study: str, results: Path | None = None, runs_dir: Path = Path("runs/study"),
                 train_missing: bool = False, tolerance: float = 0.01) -> tuple[int, int]:
    """Add the one-shot error (:mod:`bierlib.oneshot`) to every run of ``study`` that lacks it,
    loading its finished run folder from ``runs_dir``; a run without a folder is skipped, or with
    ``train_missing`` trained again there (an AssertionError if its final Recall@1 then differs
    from the file's by more than ``tolerance``). Rewrites the file; returns (added, skipped)."""
    results = Path(results if results is not None else RESULTS)
    data, added, skipped = load_results(study, results), 0, 0
    for entry in data["runs"]:
        if "one_shot_error" in entry:
            continue
        if not train_missing and not (Path(runs_dir) / entry["name"] / "metrics.json").is_file():
            skipped += 1
            continue
        result = run_experiment(config_of(entry), runs_dir=runs_dir, progress=False)
        if abs(result.history.final["recall@1"] - entry["final"]["recall@1"]) > tolerance:
            raise AssertionError(f"{entry['name']}: final Recall@1 "
                                 f"{result.history.final['recall@1']:.4f} in {runs_dir}, "
                                 f"{entry['final']['recall@1']:.4f} in the file")
        entry["one_shot_error"] = round(one_shot_error(result.model, _one_shot_runs()).mean, 4)
        added += 1
    atomic_write(results / f"{study}.json", lambda f: f.write(json.dumps(data, indent=1) + "\n"),
                 binary=False)
    return added, skipped


def _slices(config: ExperimentConfig) -> tuple[int, ...]:
    """The groups of dimensions whose cross-correlation a single embedding is measured on:
    divide and conquer's K slices (its margin-loss baseline: the default K's), otherwise
    BIER's learner sizes for the same D."""
    d = config.resolved_profile().embedding_dim
    if config.method in ("margin", "divide_and_conquer"):
        k = config.options.get("num_learners",
                               ExperimentConfig("divide_and_conquer").options["num_learners"])
        return (d // k,) * k
    return ExperimentConfig("bier", embedding_dim=d).learner_sizes()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
        dirty = subprocess.run(  # the results files a study rewrites do not count
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/",
             ":(exclude,top)results"],
            capture_output=True, text=True, cwd=Path(__file__).parent).stdout
        return out + ("+changes" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_study(study: str, results: Path | None = None, runs_dir: Path = Path("runs/study"),
              progress: bool = True, command: str | None = None,
              methods: tuple[str, ...] = METHODS) -> dict:
    """Run every missing run of ``study`` ("tune", "ablation" or "long"), rewriting its results
    file after each; return the file's content. ``methods`` restricts "tune" to some methods."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"methods must be among {METHODS}, found {sorted(unknown)}")
    results = Path(results if results is not None else RESULTS)
    path = results / f"{study}.json"
    data = json.loads(path.read_text()) if path.is_file() else {"study": study, "runs": []}
    done = {(r["cell"], r["name"]) for r in data["runs"]}
    data["provenance"] = {"command": command or f"python -m bierlib.study {study}",
                          "commit": _commit(), "machine": _machine(), "started": _now()}

    def run(cell, config):
        if (cell, config.name) in done:
            return
        result = run_experiment(config, runs_dir=runs_dir, progress=progress)
        seconds = result.history.final["seconds"]
        keep = study == "ablation" and cell == "miniature" and config.seed == 0 \
            and config.method in HEATMAPS
        data["runs"].append(summarise(cell, result, seconds, keep))
        print(f"{study} {len(data['runs'])}: {cell} {config.name}: final Recall@1 "
              f"{result.history.final['recall@1']:.3f} ({seconds:.0f} s)", flush=True)
        done.add((cell, config.name))
        data["provenance"]["finished"] = _now()
        atomic_write(path, lambda f: f.write(json.dumps(data, indent=1) + "\n"), binary=False)

    if study == "tune":
        # trials that today's code resolves to other runs (their method changed) are trained
        # again: they leave the file (git keeps them), so that the fourth trial and the knob
        # trials follow from the new ones
        data["runs"] = [r for r in data["runs"]
                        if study_method(r["config"]) not in methods or not _stale(r)]
        done = {(r["cell"], r["name"]) for r in data["runs"]}
        for method in (m for m in TUNE_ORDER if m in methods):
            parent, shared = SHARED_KNOBS.get(method, (None, ()))
            inherited = ({k: tuned_settings(path, (parent,))[parent][k] for k in shared}
                         if parent else {})
            design = tune_cells((method,), {method: inherited})
            for cell, config in design:
                run(cell, config)

            def trials():
                wanted = {(c, config.name) for c, config in design}
                return [r for r in data["runs"] if (r["cell"], r["name"]) in wanted]

            design += fourth_trial(method, trials(), inherited)
            for cell, config in design[-len(TUNE_SEEDS):]:
                run(cell, config)
            extra = knob_trials(method, trials(), inherited)
            design += extra
            for cell, config in extra:
                run(cell, config)
            # runs of an earlier design of this method (one seed, other shared knobs) leave
            # the file: git keeps them
            wanted = {(c, config.name) for c, config in design}
            data["runs"] = [r for r in data["runs"] if study_method(r["config"]) != method
                            or (r["cell"], r["name"]) in wanted]
            atomic_write(path, lambda f: f.write(json.dumps(data, indent=1) + "\n"),
                         binary=False)
    elif study in ("ablation", "long"):
        if "features" not in data:  # the free baseline, per test class, beside the runs
            data["features"] = features_entry()
        cells = (ablation_cells(tuned_settings(results / "tune.json")) if study == "ablation"
                 else long_cells(tuned_settings(results / "tune.json", CLAIMS["bier"])))
        wanted = {(cell, config.name) for cell, config in cells}
        # runs of an earlier design (e.g. before a tuning changed) leave the file: git keeps them
        data["runs"] = [r for r in data["runs"] if (r["cell"], r["name"]) in wanted]
        done &= wanted
        for cell, config in cells:
            run(cell, config)
    else:
        raise ValueError(f"study must be 'tune', 'ablation' or 'long', found {study!r}")
    return data


def check(study: str, results: Path | None = None, index: int = 0, tolerance: float = 0.01,
          progress: bool = False, epochs: int | None = None) -> dict:
    """Re-run run ``index`` of a committed study in a temporary folder; raise an
    AssertionError if its final Recall@1 or cross-learner correlation differs from the file by
    more than ``tolerance``. With ``epochs``, only that many epochs are re-run and Recall@1 is
    compared with the committed record at their last step (training is the same prefix of the
    full run: nothing but the length depends on ``epochs``). Returns
    ``{"committed": ..., "now": ...}``."""
    entry = load_results(study, results)["runs"][index]
    config = config_of(entry)
    if epochs is not None:
        config = config.replace(epochs=epochs)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_experiment(config, runs_dir=tmp, progress=progress)
        now = summarise(entry["cell"], result, result.history.final["seconds"], False)
    step = now["final"]["step"]
    committed = value(entry, "recall@1", step if epochs is not None else None)
    if abs(now["final"]["recall@1"] - committed) > tolerance:
        raise AssertionError(f"{entry['name']}: Recall@1 at step {step} "
                             f"{now['final']['recall@1']:.4f} now, {committed:.4f} committed "
                             f"(tolerance {tolerance})")
    if epochs is None and abs(now["cross_learner_correlation"]
                              - entry["cross_learner_correlation"]) > tolerance:
        raise AssertionError(f"{entry['name']}: cross-learner correlation "
                             f"{now['cross_learner_correlation']} now, "
                             f"{entry['cross_learner_correlation']} committed")
    return {"committed": entry, "now": now}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bierlib.study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("tune", "ablation", "long", "check", "oneshot"))
    parser.add_argument("study", nargs="?",
                        help="for check: the study to re-check; for oneshot: the study whose "
                             "runs get their one-shot error from their run folders")
    parser.add_argument("--results", default=None, help=f"default {RESULTS}")
    parser.add_argument("--runs", default="runs/study", help="run folders (resumable)")
    parser.add_argument("--index", type=int, default=0, help="for check: which run")
    parser.add_argument("--epochs", type=int, default=None,
                        help="for check: re-run only the first EPOCHS epochs (a prefix check)")
    parser.add_argument("--train-missing", action="store_true",
                        help="for oneshot: train again the runs whose folder is missing")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="for tune: comma-separated methods (default: all)")
    args = parser.parse_args(argv)
    if args.what == "check":
        out = check(args.study or "ablation", args.results, args.index, progress=True,
                    epochs=args.epochs)
        print(f"{out['now']['name']}: Recall@1 {out['now']['final']['recall@1']:.4f} now, "
              f"{out['committed']['final']['recall@1']:.4f} committed")
        return
    if args.what == "oneshot":
        added, skipped = add_one_shot(args.study or "ablation", args.results, Path(args.runs),
                                      train_missing=args.train_missing)
        print(f"one-shot error added to {added} runs; {skipped} skipped (no run folder in "
              f"{args.runs}; --train-missing trains them again)")
        return
    command = shlex.join(["python", "-m", "bierlib.study", *sys.argv[1:]])
    run_study(args.what, args.results, Path(args.runs), command=command,
              methods=tuple(args.methods.split(",")))


if __name__ == "__main__":
    main()
