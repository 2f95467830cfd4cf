"""Where bierlib and the authors' released code differ: one table, read by the chapters.

Each :class:`Deviation` says what the authors' code does (with its file:line at a pinned
commit of :data:`REPOSITORIES`), what bierlib does by default, why, which setting gives the
authors' choice (if any), and whether a run has measured the difference. ``status`` is

* ``"fixed"``: bierlib now does what the authors' code does (the row records what it did
  before, and which committed runs that touches);
* ``"setting"``: bierlib's default differs, and a setting gives the authors' choice (the paper
  configurations in ``configs/paper`` use it, except in two rows of the margin loss:
  ``dc_*.yaml`` and ``margin_cub200.yaml`` keep Wu et al.'s distance-weighted sampling, the
  papers' method, instead of the code's closest negatives, and divide by the number of
  active hinges, the code's meaning on the PyTorch of its time, instead of the OR count, as
  the comments of ``dc_*.yaml`` say);
* ``"kept"``: bierlib keeps another choice on purpose, with no setting.

What is *not* in the table matches the authors' code: BIER's loss, boosting weights and
test-time embedding (its default "simple" boosting variant); A-BIER's adversarial term, gradient
reversal and regressor penalties, on learner outputs computed from a stop-gradient copy of the
features; the margin loss on given triplets, its beta fixed at 1.2 (their optimiser never
receives it, train.py:114-125); divide and conquer's re-clustering every 2 epochs and its
removal of the classes seen once in a cluster. ``tests/test_official.py`` runs line-by-line
transcriptions of the authors' functions against bierlib. A sentence, comment or docstring of
the project calls a choice "official" only when this table or those tests back it.

:func:`show` renders the rows of some methods as a Markdown table in a notebook.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

#: The authors' repositories, at the commit the table and the reference tests were read at.
REPOSITORIES = {
    "bier": ("mop/bier", "cd04edf64980484c00e561682ede97969234d81e"),
    "divide_and_conquer": ("CompVis/metric-learning-divide-and-conquer",
                           "1766c2cffe1075692657898d2086af4bc9d92929"),
}
#: The methods with rows, and the repository each was checked against.
METHOD_REPOSITORY = {"bier": "bier", "abier": "bier", "divide_and_conquer": "divide_and_conquer",
                     "margin": "divide_and_conquer"}
STATUSES = ("fixed", "setting", "kept")
_SOURCE = re.compile(r"^[\w./-]+\.(py|sh|json)(:\d+(-\d+)?(, ?\d+(-\d+)?)*)?$")


@dataclasses.dataclass(frozen=True)
class Deviation:
    """One difference between bierlib and the authors' code."""

    methods: tuple[str, ...]  # keys of METHOD_REPOSITORY
    topic: str
    official: str  # what the authors' code does
    sources: tuple[str, ...]  # "file:line" or "file:first-last" at the pinned commit
    bierlib: str  # what bierlib does by default
    why: str
    status: str  # one of STATUSES
    setting: str | None  # the settings giving the authors' choice ("fixed": the old one)
    measured: str  # "no", or which run or test measured the difference


DEVIATIONS: tuple[Deviation, ...] = (
    # ---------------------------------------------------------------- BIER and A-BIER
    Deviation(
        ("bier", "abier"), "weight decay",
        "an L2 loss 2e-4 * sum(w^2) on the convolution kernels and the embedding heads' "
        "weights only, minimised with the rest by Adam (gradient 4e-4 * w)",
        ("train_bier.py:536-540", "train_bier.py:79-81", "kaffe/tensorflow/network.py:147"),
        "Adam's weight_decay = 2e-4 on every parameter, biases, BatchNorm and A-BIER's regressors "
        "included (gradient 2e-4 * w)",
        "the quick profile's committed runs were tuned with it",
        "setting", "weight_decay_form='l2-weights'", "no"),
    Deviation(
        ("bier", "abier"), "learning-rate schedule",
        "constant by default; the released run (run.sh, A-BIER on SOP) halves it every 25,000 "
        "of its 100,000 steps",
        ("train_bier.py:548-552", "run.sh:7-9"),
        "constant",
        "train_bier.py's default; the quick profile's runs are 160 to 2,000 steps",
        "setting", "lr_anneal=25000, lr_decay=0.5", "no"),
    Deviation(
        ("bier", "abier"), "embedding heads' initialisation",
        "one TF-slim fully_connected head per learner with its defaults: Xavier-uniform weights, "
        "zero biases",
        ("train_bier.py:63-65",),
        "one nn.Linear for all learners with PyTorch's default (uniform in +-1/sqrt(F), "
        "biases too)",
        "the quick profile's committed runs use it",
        "setting", "embedding_init='xavier-uniform'", "no"),
    Deviation(
        ("bier", "abier"), "backbone and images",
        "Caffe's GoogLeNet converted to TensorFlow (local response normalisation, no "
        "BatchNorm), images padded to a white 256 x 256 square, random 224 crops and flips, "
        "mean subtraction, float32",
        ("train_bier.py:488-489, 510", "prepare_cub.py:14-41", "dataset.py:27-40"),
        "paper profile: torchvision's GoogLeNet (BatchNorm after every convolution, batch "
        "statistics in training), short side resized to 256, random 224 crops and flips, "
        "bf16 autocast on CUDA (amp=False: float32); quick profile: a small CNN pretrained on "
        "font glyphs",
        "the Caffe weights are not distributed with torchvision; the quick profile is a CPU "
        "miniature (the introduction's 'Datasets and the two run profiles')",
        "kept", None, "no"),
    Deviation(
        ("bier", "abier"), "batches and length",
        "by default 20,000 steps of 32 images from 6 classes (not P x K); run.sh: 100,000 "
        "steps of 64 classes x 2 images",
        ("train_bier.py:21, 452, 461-462", "run.sh:9-12"),
        "P x K batches: 64 x 2 (run.sh's) in the paper configurations, which train as many "
        "images as the default on CUB and Cars (4,995 and 5,022 steps of 128, about 640,000 "
        "images: about 109 and 80 passes) and run.sh's 100,000 steps on SOP; 32 x 4 for 160 "
        "steps in the quick profile",
        "one batch shape for every method of the book",
        "kept", None,
        "the long study trains BIER for 2,000 steps in the miniature (results/study/long.json)"),
    Deviation(
        ("abier",), "embedding layer's unit-norm penalty",
        "a sum over the M heads' (F x d_m) weights (TensorFlow's layout: PyTorch's d_m x F "
        "transposed) of the mean over input units of (|W_m[k, :]|^2 - 1)^2; the activation "
        "variant per output unit, summed over heads alike",
        ("train_bier.py:275-277, 366-369", "train_bier.py:421-424"),
        "the same since issue 27 (unit_norm='per-learner'); before, one penalty over the whole "
        "D x F matrix, mean over k of (sum_m |W_m[k, :]|^2 - 1)^2, a different function (its "
        "optimum has norm 1 per input unit instead of 1 per learner)",
        "it was a bug (its docstring called it official)",
        "fixed", "unit_norm='whole-layer' gives the old penalty",
        "reference tests: 2.10 per learner vs 0.25 whole on a random 512 x 1024 layer "
        "(asserted to 0.01); the "
        "A-BIER runs of results/study were trained again with the fix (December 2026), not "
        "beside the old penalty"),
    Deviation(
        ("abier",), "regressors' initialisation",
        "TF-slim fully_connected defaults: Xavier-uniform weights, zero biases",
        ("train_bier.py:312-317",),
        "the same since issue 27 (regressor_init='xavier'); before, PyTorch's default",
        "it was an oversight",
        "fixed", "regressor_init='pytorch' gives the old initialisation",
        "no (the A-BIER study runs were trained again with both fixes together)"),
    Deviation(
        ("abier",), "lambda_div and lambda_w",
        "the released run: lambda_div 5e-5, lambda_w 1e5 (train_bier.py's defaults: lambda_div "
        "0, i.e. plain BIER, and lambda_w 100)",
        ("run.sh:15-16", "train_bier.py:26, 445-446"),
        "the released weights by default (before December 2026: lambda_div 0.1, lambda_w 100); "
        "the quick profile's tuning also tries lambda_div 3e-3 and 0.1 with lambda_w 100 and "
        "keeps the winner; Chapter 4 teaches with 0.1; paper configurations: run.sh's",
        "the authors' weights were set for GoogLeNet on SOP; the miniature tunes around them "
        "under the same budget as every method",
        "setting", "lambda_div=5e-5, lambda_w=1e5",
        "the tuning study (results/study/tune.json): A-BIER's six trials, four at the released "
        "weights, then lambda_div 3e-3 and 0.1 with lambda_w 100"),
    # ---------------------------------------------------------------- divide and conquer
    Deviation(
        ("divide_and_conquer",), "schedule",
        "the entry point's --finetune-epoch default, 190 of 200, overrides config.json's 100; "
        "the slice loss until epoch 190 * 8 / 19 = 80, then the whole embedding on the "
        "clusters' batches (still re-clustered every 2 epochs) until 190, then on all data",
        ("experiment.py:18, 47-49", "config.json:10", "train.py:86-92, 245-263"),
        "the slices until finetune_epoch (default: half of the epochs), then the whole "
        "embedding on all data",
        "the quick profile's committed runs; a simpler two-part schedule for the chapter",
        "setting", "finetune_epoch=190, whole_embedding_epoch=80", "no"),
    Deviation(
        ("divide_and_conquer",), "images that are clustered",
        "the training images through the evaluation transform (no augmentation), model in "
        "evaluation mode",
        ("lib/clustering.py:56-62", "train.py:195-205", "lib/data/loader/utils.py:39-46"),
        "the training set as the training loop reads it (augmented where the dataset augments; "
        "the quick profile's Omniglot is not augmented, so both are the same there)",
        "the quick profile's committed runs",
        "setting", "cluster_images='evaluation'", "no"),
    Deviation(
        ("divide_and_conquer",), "k-means",
        "faiss's Clustering: 100 iterations from random points, one run (the nredo=5 that "
        "clustering.py passes is dropped by do_clustering), faiss's fixed seed",
        ("lib/clustering.py:34-42", "lib/faissext.py:88-135, 147-162"),
        "faiss, 50 iterations from k-means++ centres, seeded by the run's seed and the stage",
        "k-means++ avoids two initial centres in one cluster (bierlib.evaluation.kmeans)",
        "setting", "kmeans='faiss'", "no"),
    Deviation(
        ("divide_and_conquer", "margin"), "BatchNorm",
        "statistics frozen (eval mode), affine parameters trained",
        ("lib/model.py:24-28", "train.py:114-125"),
        "frozen_batchnorm freezes both",
        "a wholly frozen BatchNorm is the simpler, common choice (as torchvision's "
        "FrozenBatchNorm2d); the setting gives the authors'",
        "setting", "train_batchnorm_affine=True", "no"),
    Deviation(
        ("divide_and_conquer", "margin"), "learning rates and weight decay",
        "Adam with one learning rate, 1e-5, for the backbone and for the embedding layer, and "
        "Adam's weight decay 1e-4 on both parameter groups",
        ("experiment.py:30-33, 42-45", "config.json:50-59", "train.py:114-125"),
        "the quick profile, as for every method: Adam at 1e-4 with 10 times that on the "
        "embedding layer (BIER's structure) and weight decay 2e-4; the committed study tunes "
        "the base rate per method",
        "one optimiser layout for every method of the miniature; the quick profile's committed "
        "runs use it",
        "setting", "lr=1e-5, embedding_lr_multiplier=1.0, weight_decay=1e-4", "no"),
    Deviation(
        ("divide_and_conquer", "margin"), "dropout and initialisation of the embedding",
        "Dropout(0.01) before the embedding layer; each slice's weights Xavier-normal with its "
        "own fan-out, biases of a fresh nn.Linear",
        ("lib/model.py:55-71, 79, 85-94, 124",),
        "no dropout; PyTorch's default initialisation of the whole layer",
        "the quick profile's committed runs",
        "setting", "embedding_dropout=0.01, embedding_init='xavier-normal'", "no"),
    Deviation(
        ("divide_and_conquer", "margin"), "training augmentation",
        "RandomResizedCrop(224) and a flip",
        ("lib/data/set/transform.py:46-62", "config.json:64-70"),
        "the short side resized to 256, a random 224 crop and a flip (quick profile: none)",
        "one pipeline for every paper configuration",
        "setting", "augmentation='random-resized-crop'", "no"),
    Deviation(
        ("divide_and_conquer",), "batches per epoch",
        "M x (largest cluster's images // 80): every cluster's loader restarts until the "
        "largest is through",
        ("lib/data/loader/utils.py:79-94", "lib/data/loader/sampler.py:71-72",
         "train.py:277-281"),
        "N / B batches of B images (one pass over the data), shared evenly by the clusters",
        "an epoch stays one pass over the data, whatever the clustering",
        "setting", "epoch_length='largest-cluster'", "no"),
    Deviation(
        ("divide_and_conquer",), "normalisation of the whole embedding",
        "each slice L2-normalised by the model, then the whole vector by the training step",
        ("lib/model.py:126-131", "train.py:92"),
        "the raw whole vector L2-normalised",
        "the quick profile's committed runs",
        "setting", "whole_normalization='slices-then-whole'", "no"),
    Deviation(
        ("divide_and_conquer", "margin"), "negatives of the margin loss",
        "the closest negatives at distance 0.5 or more, (positive pairs) / B of them per "
        "anchor, paired with its positives in index order",
        ("lib/loss/sampler.py:44-98",),
        "distance-weighted sampling as the paper and Wu et al. describe; an anchor whose "
        "negatives are all beyond 1.4 draws uniformly among its negatives",
        "the papers' method, which Chapter 5 teaches",
        "setting", "sampler='closest'",
        "reference tests: the closest-negative triplets equal the authors' on class-balanced "
        "batches"),
    Deviation(
        ("divide_and_conquer", "margin"), "normaliser of the margin loss",
        "sum((pos > 0) + (neg > 0)): on PyTorch >= 1.2 the + of two boolean tensors is a "
        "logical OR, counting triplets with a non-zero term; the active hinges on the PyTorch "
        "of its time",
        ("lib/loss/margin_loss.py:80",),
        "the number of non-zero terms (active hinges), as pytorch-metric-learning",
        "the code's original meaning; the OR count depends on the PyTorch version",
        "setting", "normalizer='triplets-with-a-hinge'",
        "reference tests: the OR count gives 1.73 to 2 times the loss on their three random "
        "class-balanced batches (asserted to 0.01)"),
    Deviation(
        ("divide_and_conquer",), "matching of cluster ids",
        "linear_sum_assignment's (row, col) = (current, previous) unpacked as (previous, "
        "current): a renaming of the clusters is applied again instead of undone, harmless for "
        "swaps, but on a cycle of 3 or more clusters the slices get other clusters' data",
        ("lib/data/loader/reassignment.py:34-39",),
        "the matching itself: each slice keeps the cluster that overlaps its previous one most",
        "the evident intent (clustering.py:85: 'assign s.t. least costs'); a quirk",
        "kept", None,
        "reference tests: equal on swaps, different on 3-cycles"),
)


def deviations(methods: Sequence[str] | None = None,
               table: Sequence[Deviation] | None = None) -> list[Deviation]:
    """The rows of ``table`` (default ``DEVIATIONS``) that concern any of ``methods``
    (None: all), in table order."""
    table = DEVIATIONS if table is None else table
    if methods is not None:
        unknown = set(methods) - set(METHOD_REPOSITORY)
        if unknown:
            raise ValueError(f"methods must be among {sorted(METHOD_REPOSITORY)}, found "
                             f"{sorted(unknown)}")
    return [d for d in table if methods is None or set(d.methods) & set(methods)]


def check(table: Sequence[Deviation] | None = None) -> None:
    """A ValueError naming the first malformed row of ``table`` (default ``DEVIATIONS``):
    unknown method or status, a source not of the form ``file:line[-line][, line...]``, an
    empty field, a setting missing where the status says there is one (or given where it says
    there is none), rows of one repository mixed with another's, two rows of one topic for a
    method."""
    table = DEVIATIONS if table is None else table
    for d in table:
        where = f"deviation {d.topic!r}"
        if not d.methods or set(d.methods) - set(METHOD_REPOSITORY):
            raise ValueError(f"{where}: methods must be among {sorted(METHOD_REPOSITORY)}, "
                             f"found {d.methods}")
        if len({METHOD_REPOSITORY[m] for m in d.methods}) != 1:
            raise ValueError(f"{where}: its methods were checked against different "
                             f"repositories: {d.methods}")
        if d.status not in STATUSES:
            raise ValueError(f"{where}: status must be one of {STATUSES}, found {d.status!r}")
        for name in ("topic", "official", "bierlib", "why", "measured"):
            if not getattr(d, name).strip():
                raise ValueError(f"{where}: {name} is empty")
        if not d.sources or not all(_SOURCE.match(s) for s in d.sources):
            raise ValueError(f"{where}: sources must be 'file:line' or 'file:first-last', "
                             f"found {d.sources}")
        if (d.status == "setting" and d.setting is None) or (d.status == "kept" and d.setting):
            raise ValueError(f"{where}: status {d.status!r} with setting {d.setting!r}")
    topics = [(m, d.topic) for d in table for m in d.methods]
    if len(topics) != len(set(topics)):
        raise ValueError("a method has two rows of one topic")


def source_url(method: str, source: str) -> str:
    """The GitHub address of ``source`` ("file:line" or "file:first-last", first part only)
    at the pinned commit of ``method``'s repository."""
    repo, commit = REPOSITORIES[METHOD_REPOSITORY[method]]
    path, _, lines = source.partition(":")
    anchor = ""
    if lines:
        first, _, last = lines.split(",")[0].strip().partition("-")
        anchor = f"#L{first}" + (f"-L{last}" if last else "")
    return f"https://github.com/{repo}/blob/{commit}/{path}{anchor}"


def markdown(methods: Sequence[str] | None = None) -> str:
    """The rows of ``methods`` as a Markdown table, sources linked at the pinned commits."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    rows = ["| What | The authors' code | bierlib | Why | Setting | Measured |",
            "|---|---|---|---|---|---|"]
    for d in deviations(methods):
        links = ", ".join(f"[{s}]({source_url(d.methods[0], s)})" for s in d.sources)
        setting = f"`{d.setting}`" if d.setting else "none"
        status = {"fixed": " (fixed)", "setting": "", "kept": " (kept)"}[d.status]
        rows.append(f"| {cell(d.topic)}{status} | {cell(d.official)} ({links}) | "
                    f"{cell(d.bierlib)} | {cell(d.why)} | {cell(setting)} | "
                    f"{cell(d.measured)} |")
    repos = sorted({REPOSITORIES[METHOD_REPOSITORY[m]] for d in deviations(methods)
                    for m in d.methods})
    pinned = "; ".join(f"{repo} at {commit[:7]}" for repo, commit in repos)
    return "\n".join(rows) + f"\n\nRead at: {pinned}."


def show(methods: Sequence[str] | None = None):
    """Display :func:`markdown` of ``methods`` in a notebook (an ``IPython.display.Markdown``)."""
    from IPython.display import Markdown

    return Markdown(markdown(methods))
