import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bierlib.plotting import (plot_correlation, plot_embedding_2d, plot_history,  # noqa: E402
                              plot_cross_correlation, plot_retrieval, reference_line,
                              umap_2d)
from bierlib.profiles import get_profile, load_datasets  # noqa: E402
from bierlib.book.report import results_table  # noqa: E402
from bierlib.training import History  # noqa: E402
from bierlib.book.widgets import retrieval_explorer  # noqa: E402

X = torch.randn(60, 6, generator=torch.Generator().manual_seed(0))
Y = torch.arange(60) % 5
IMAGES = torch.randint(0, 255, (60, 1, 12, 12), dtype=torch.uint8)


def test_umap_and_scatter():
    points = umap_2d(X, n_neighbors=5)
    assert points.shape == (60, 2) and np.isfinite(points).all()
    ax = plot_embedding_2d(points, Y, images=IMAGES, n_thumbnails=5)
    assert len(ax.collections) == 5 and len(ax.artists) == 5  # one scatter per class
    plt.close("all")
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        plot_embedding_2d(np.zeros((60, 3)), Y)


def test_retrieval_gallery_marks_correct_and_wrong():
    fig = plot_retrieval(IMAGES, X, Y, [0, 7], k=4)
    assert len(fig.axes) == 2 * 5
    colours = {tuple(ax.spines["top"].get_edgecolor()) for ax in fig.axes}
    assert len(colours) >= 2  # black queries plus blue and/or vermillion neighbours
    plt.close(fig)
    with pytest.raises(ValueError, match="queries must be indices"):
        plot_retrieval(IMAGES, X, Y, [60])


def test_correlation_and_history_plots():
    ax = plot_correlation(X, title="t")
    assert "mean |corr|" in ax.get_title() and ax.images[0].get_array().shape == (6, 6)
    assert len(plot_correlation(X, blocks=(2, 4)).lines) == 2  # one boundary, drawn both ways
    shown = ax.images[0].get_array()
    corr = np.corrcoef(X.numpy().T)
    assert np.ma.getmaskarray(shown)[0, 0] and shown[0, 1] == pytest.approx(abs(corr[0, 1]))
    assert ax.images[0].get_clim() == (0, 0.4)
    ax = plot_correlation(X, blocks=(2, 4))
    cross = np.abs(corr[:2, 2:]).mean()  # the one cross-learner block (and its mirror)
    assert f"cross-learner {cross:.3f}" in ax.get_title() and len(ax.patches) == 2
    with pytest.raises(ValueError, match="blocks must add up to the 6 dimensions"):
        plot_correlation(X, blocks=(2, 3))
    ax = plot_cross_correlation({"a": corr, "b": np.eye(6)}, (2, 4))
    assert len(ax.patches) == 2 and "(0.000)" in ax.get_legend().get_texts()[1].get_text()
    with pytest.raises(ValueError, match=r"expected a \(4, 4\) matrix .* found \(6, 6\)"):
        plot_cross_correlation({"a": corr}, (2, 2))
    ax = reference_line(plt.subplots()[1], 0.74, "pretrained features")
    assert ax.lines[0].get_ydata()[0] == 0.74 and ax.lines[0].get_label() == "pretrained features"
    history = History([{"epoch": 0, "recall@1": 0.1, "nmi": 0.2},
                       {"epoch": 1, "recall@1": 0.3, "nmi": 0.4}])
    ax = plot_history(history)
    assert [list(line.get_ydata()) for line in ax.lines] == [[0.1, 0.3], [0.2, 0.4]]
    plt.close("all")


def test_retrieval_explorer_builds():
    box = retrieval_explorer(IMAGES, X, Y, k=3)
    slider = box.children[0].children[0]
    assert slider.max == 59
    slider.value = 5  # redraws without error
    plt.close("all")


def test_results_table():
    table = results_table({"a": {"recall@1": 0.5}, "b": {"recall@1": [0.4, 0.6]}},
                          ["recall@1", "nmi"])
    assert table.splitlines()[2] == "| a | 0.500 | - |"
    assert "0.500 ± 0.141" in table.splitlines()[3]
    assert results_table({"a": {"seconds": [15.87, 19.2]}}, ["seconds"]).endswith("| 18 ± 2 |")
    with pytest.raises(ValueError, match="empty"):
        results_table({})


def test_profiles():
    config = get_profile("quick", epochs=3, lr=0.1).train_config(seed=2)
    assert (config.epochs, config.seed, config.lr, config.classes_per_batch) == (3, 2, 0.1, 32)
    assert get_profile("paper").needs_gpu and get_profile("paper").model == "googlenet"
    with pytest.raises(ValueError, match="profile must be one of"):
        get_profile("fast")
    with pytest.raises(ValueError, match="unknown profile fields"):
        get_profile("quick", epoch=3)


def test_load_datasets(fake_omniglot):
    train, test = load_datasets(get_profile("quick"), root=fake_omniglot)
    assert train.images.shape[-1] == 28 and not set(train.class_names) & set(test.class_names)
    from bierlib.data import DatasetNotFoundError
    with pytest.raises(DatasetNotFoundError, match="fetch_cub200.py"):
        load_datasets(get_profile("paper"), root=fake_omniglot)
    with pytest.raises(ValueError, match="query against gallery"):
        load_datasets(get_profile("paper", dataset="inshop"))


def test_view_switcher_draws_each_option():
    from bierlib.book.widgets import view_switcher
    drawn = []
    box = view_switcher(lambda key, ax: drawn.append(key), ["a", "b"])
    box.children[0].value = "b"
    assert drawn == ["a", "b"]
    with pytest.raises(ValueError, match="empty"):
        view_switcher(lambda key, ax: None, [])
    plt.close("all")


def test_learner_recall_bars():
    from bierlib.plotting import plot_learner_recall
    ax = plot_learner_recall({"a": [[0.1, 0.2, 0.3], [0.2, 0.3, 0.4]], "b": [[0.3, 0.3, 0.5]]},
                             (4, 4))
    heights = [p.get_height() for p in ax.patches]
    assert (heights[:3] == pytest.approx([0.15, 0.25, 0.35])
            and heights[3:] == pytest.approx([0.3, 0.3, 0.5]))
    with pytest.raises(ValueError, match="expected 3 values per seed"):
        plot_learner_recall({"a": [[0.1, 0.2]]}, (4, 4))
    plt.close("all")


def test_umap_panels_of_a_grid_keep_their_size_and_put_long_legends_below():
    """A legend of long class names inside a narrow panel collapsed it under a constrained
    layout (Chapter 3's three maps in a 2 x 2 grid): it goes below, the figure grows."""
    import warnings
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(112), 5)
    names = [f"Japanese (katakana)/character{c:02d}" for c in range(112)]
    fig, axes = plt.subplots(2, 2, figsize=(7.5, 7.5), layout="constrained")
    for ax in axes.flat[:3]:
        plot_embedding_2d(rng.normal(size=(560, 2)), labels, ax=ax, class_names=names)
    axes[1, 1].axis("off")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied ..."
        fig.canvas.draw()
    assert fig.get_figwidth() == 7.5 and fig.get_figheight() > 7.5
    for ax in axes.flat[:3]:
        box, legend = ax.get_window_extent(), ax.get_legend().get_window_extent()
        assert box.width / fig.dpi > 3.2 and box.height / fig.dpi > 3.0  # not squashed
        assert legend.y1 <= box.y0 + 1 and legend.width <= box.width  # below, not wider
        assert len(ax.get_legend().get_texts()) == 7
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")  # 4 short names: inside
    plot_embedding_2d(rng.normal(size=(60, 2)), Y % 4, ax=ax)
    fig.canvas.draw()
    assert ax.get_window_extent().contains(*ax.get_legend().get_window_extent().p0)
    assert fig.get_figheight() == 3.8
    plt.close(fig)
