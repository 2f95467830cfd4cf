"""Figures carry descriptions generated from their data (the book's alt text), and their
series stay distinguishable under simulated colour blindness."""
import html
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bierlib.book.figures import figure_html, figure_metadata  # noqa: E402
from bierlib.describe import describe_figure, fmt, note, plain, series_colours  # noqa: E402
from bierlib.palette import MIN_DELTA_E, method_style  # noqa: E402
from bierlib.plotting import (plot_correlation, plot_cross_correlation,  # noqa: E402
                              plot_embedding_2d, plot_history, plot_learner_recall,
                              plot_retrieval, reference_line)
from bierlib.training import History  # noqa: E402

from .colour_vision import too_close  # noqa: E402

X = torch.randn(60, 6, generator=torch.Generator().manual_seed(0))
Y = torch.arange(60) % 5
IMAGES = torch.randint(0, 255, (60, 1, 12, 12), dtype=torch.uint8)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_numbers_are_written_for_readers():
    assert [fmt(v) for v in (3, 2240.0, 0.74321, 0.0051234, 1234.5)] == \
        ["3", "2,240", "0.743", "0.00512", "1,234"]


def test_lines_are_read_with_first_last_and_highest_value_and_reference_lines():
    fig, ax = plt.subplots()
    ax.plot([0, 2, 4], [0.70, 0.78, 0.75], label="BIER", **method_style("bier").line())
    ax.plot([0, 2, 4], [0.71, 0.72, 0.76], label="single embedding")
    reference_line(ax, 0.743, "pretrained features")
    ax.set(xlabel="epoch", ylabel="Recall@1", title="test classes")
    text = describe_figure(fig)
    assert text.startswith("Test classes, Recall@1 against epoch: ")
    assert "BIER goes from 0.7 to 0.75, highest 0.78 at epoch 2" in text
    assert "single embedding goes from 0.71 to 0.76" in text
    assert "dashed horizontal line at 0.743 (pretrained features)" in text


def test_bars_histograms_heatmaps_and_pictures_are_read():
    fig, (a, b, c, d) = plt.subplots(1, 4)
    a.bar([0, 1], [0.5, 0.7], label="BIER")
    a.set_xticks([0, 1], ["learner 1", "ensemble"])
    b.hist(np.random.default_rng(0).normal(size=500), bins=20, label="negative pairs")
    c.imshow(np.array([[0.0, 0.2], [0.3, 0.4]]))
    d.imshow(np.zeros((4, 4)))
    d.set(xticks=[], yticks=[], title="a drawing")
    text = describe_figure(fig, lead="Four kinds of panel.")
    assert text.startswith("Four kinds of panel. Panel 1 of 4: ")
    assert "BIER: learner 1 0.5, ensemble 0.7" in text
    assert "histogram of negative pairs: values from " in text
    assert "heatmap of 2 x 2 values from 0 to 0.4" in text
    assert "Panel 4 of 4: Picture: a drawing." in text
    with pytest.raises(ValueError, match="pass a lead sentence"):
        describe_figure(plt.figure())


def test_notes_replace_the_reading_and_cover_panels():
    fig, axes = plt.subplots(1, 2)
    axes[0].plot([1, 2], label="x")
    note(fig, "Two panels, one sentence.", covers=axes)
    assert describe_figure(fig) == "Two panels, one sentence."


def test_retrieval_gallery_counts_right_neighbours_per_query():
    emb = torch.tensor([[1.0, 0], [0.99, 0.1], [0.98, -0.1], [0, 1], [0.1, 0.99], [0.9, 0.4]])
    labels = torch.tensor([0, 0, 1, 1, 1, 0])
    names = ["Greek/alpha", "Greek/beta"]
    text = describe_figure(plot_retrieval(IMAGES[:6], emb, labels, [0, 3], k=2,
                                          class_names=names))
    # query 0 (alpha): neighbours 1 (alpha), 2 (beta); query 3 (beta): 4 (beta), 5 (alpha)
    assert "Greek, alpha: 1 of 2 (first wrong at rank 2)" in text
    assert "Greek, beta: 1 of 2 (first wrong at rank 2)" in text and "In all, 2 of 4." in text
    assert "check mark" in text and ".png" not in text


def test_retrieval_gallery_marks_right_and_wrong_by_glyph_and_line_style():
    fig = plot_retrieval(IMAGES, X, Y, [0, 7], k=4)
    glyphs = {t.get_text() for ax in fig.axes for t in ax.texts}
    styles = {ax.spines["top"].get_linestyle() for ax in fig.axes}
    assert glyphs <= {"\u2713", "\u2717"} and glyphs and len(styles) >= 1


def test_umap_with_many_classes_greys_them_and_highlights_six():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(112), 4)
    points = rng.normal(size=(448, 2)) + labels[:, None] % 7  # some structure
    ax = plot_embedding_2d(points, labels, highlight=6,
                           class_names=[f"Alphabet/character{c:03d}" for c in range(112)])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "106 other classes" and len(legend) == 7
    markers = {c.get_paths()[0].vertices.tobytes() for c in ax.collections[1:]}
    assert len(markers) == 6  # a marker of its own for each highlighted class
    text = describe_figure(ax.figure)
    assert "448 points of 112 classes (grey, except 6 highlighted" in text
    assert re.search(r"same class for \d+% of points \(chance: 1%\)", text)
    assert not too_close(series_colours(ax), MIN_DELTA_E)


def test_umap_with_few_classes_gives_each_a_colour_and_marker():
    ax = plot_embedding_2d(np.random.default_rng(0).normal(size=(60, 2)), Y,
                           class_names={c: f"cluster {c}" for c in range(5)})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        [f"cluster {c}" for c in range(5)]
    assert "(colour and marker)" in describe_figure(ax.figure)


def test_correlation_heatmap_and_histograms_say_their_means():
    ax = plot_correlation(X, blocks=(2, 4), title="BIER")
    corr = np.abs(np.corrcoef(X.numpy().T))
    text = describe_figure(ax.figure)
    assert f"{corr[:2, 2:].mean():.3f} between them (cross-learner)" in text
    assert "Heatmap (BIER) of the absolute correlation between the 6 embedding dimensions" in text
    fig, ax = plt.subplots()
    plot_cross_correlation({"single embedding": np.corrcoef(X.numpy().T), "BIER": np.eye(6)},
                           (2, 4), ax=ax)
    text = describe_figure(fig)
    assert "BIER mean 0.000" in text and f"single embedding mean {corr[:2, 2:].mean():.3f}" in text
    assert not too_close(series_colours(ax), MIN_DELTA_E)


def test_learner_bars_and_history_curves():
    ax = plot_learner_recall({"single embedding": [[0.1, 0.2, 0.3], [0.2, 0.3, 0.4]],
                              "BIER": [[0.3, 0.3, 0.5]]}, (4, 4))
    text = describe_figure(ax.figure)
    assert "single embedding: learner 1 (d = 4) 0.150" in text and "ensemble 0.500" in text
    assert {p.get_hatch() for p in ax.patches} == {method_style("binomial").hatch,
                                                   method_style("bier").hatch}
    assert not too_close(series_colours(ax), MIN_DELTA_E)
    history = History([{"epoch": 0, "recall@1": 0.1, "nmi": 0.2},
                       {"epoch": 1, "recall@1": 0.3, "nmi": 0.4}])
    ax = plot_history(history, label="BIER")
    assert "BIER Recall@1 goes from 0.1 to 0.3" in describe_figure(ax.figure)
    assert not too_close(series_colours(ax), MIN_DELTA_E)


def test_output_metadata_and_widget_image_carry_the_description():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0.2, 0.4], label='"quoted" <series>')
    metadata = figure_metadata(fig, lead="A lead.")
    assert metadata["image/png"]["alt"].startswith("A lead. Chart: ")
    assert metadata["bierlib"]["series_colours"] == [["#1f77b4"]]
    alt = describe_figure(fig)
    tag = figure_html(fig)
    assert tag.startswith('<img src="data:image/png;base64,')
    assert f'alt="{html.escape(alt, quote=True)}"' in tag and "&lt;series&gt;" in tag


def test_histograms_give_each_panel_its_own_data_range_for_both_kinds_of_pair():
    # two panels share bins from 0 (linspace: floating-point noise at the bars' left edge);
    # the data of panel 1 start at 0.25, the positive pairs are an outline near 0.38
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, 2, sharex=True, sharey=True)
    bins = np.linspace(0, 1.2, 41)  # bins of 0.03
    for ax, low in zip(axes, (0.25, 0.0)):
        ax.hist(rng.uniform(low, 0.9, 500), bins=bins, label="negative pairs")
        ax.hist(rng.uniform(0.37, 0.39, 50), bins=bins, histtype="step", ls="--",
                label="positive pairs")
        ax.set(yscale="log")
    text = describe_figure(fig)
    assert "Panel 1 of 2: Chart: histogram of negative pairs: values from 0.24 to 0.9" in text
    assert "Panel 2 of 2: Chart: histogram of negative pairs: values from 0 to 0.9" in text
    assert text.count("histogram outline of positive pairs: values from 0.36 to 0.39, "
                      "highest bar at 0.375") == 2
    assert "e-" not in text and "1.2," not in text  # no noise, not the shared bin range


def test_a_band_of_one_seed_is_not_described():
    fig, ax = plt.subplots()
    curves = np.array([[0.6, 0.7, 0.72]])  # one seed: min == max, a band of no width
    ax.plot([0, 1, 2], curves.mean(0), label="margin loss")
    ax.fill_between([0, 1, 2], curves.min(0), curves.max(0), alpha=0.15)
    assert "shaded" not in describe_figure(fig)
    curves = np.array([[0.6, 0.7, 0.72], [0.62, 0.69, 0.75]])
    ax.fill_between([0, 1, 2], curves.min(0), curves.max(0), alpha=0.15)
    assert "1 shaded band around the lines (the range over seeds)" in describe_figure(fig)


def test_tex_in_labels_is_read_as_plain_words():
    assert plain(r"$\lambda_{div}$ from 0 to 1, $\eta$") == "lambda_div from 0 to 1, eta"
    assert plain(r"push  $-\partial L / \partial D_{ik}$") == "push -∂L / ∂D_ik"
    assert plain(r"costs \$5, $\mathrm{Recall}@1$") == "costs $5, Recall@1"
    fig, ax = plt.subplots()
    ax.scatter([1, 2], [3, 4], label="negative pairs")
    ax.set(xlabel=r"$\lambda_{div}$", ylabel=r"push  $-\partial L / \partial D_{ik}$",
           title=r"$\eta$ = 0.1")
    text = describe_figure(fig)
    assert text.startswith("eta = 0.1, push -∂L / ∂D_ik against lambda_div: negative pairs")
    assert "$" not in text and "\\" not in text


def test_umap_of_clusters_names_them_clusters():
    ax = plot_embedding_2d(np.random.default_rng(0).normal(size=(60, 2)), Y % 4,
                           class_names={c: f"cluster {c}" for c in range(4)}, groups="clusters")
    text = describe_figure(ax.figure)
    assert "60 points of 4 clusters (colour and marker)" in text
    assert re.search(r"same cluster for \d+% of points \(chance: \d+%\); by cluster: "
                     r"cluster 0 \d+%", text)
    assert "class" not in text


def test_learner_bars_take_the_captions_names_and_say_one_seed():
    ax = plot_learner_recall({"margin loss (M = 1)": [[0.48, 0.49, 0.46, 0.49, 0.735]]},
                             (32,) * 4, part="quarter", whole="whole embedding")
    text = describe_figure(ax.figure)
    assert "of each quarter alone and of the whole embedding, one seed." in text
    assert "quarter 1 (d = 32) 0.480" in text and "whole embedding 0.735" in text
    assert "learner" not in text and "ensemble" not in text and "seeds" not in text
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "whole embedding"
