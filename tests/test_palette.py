"""One style per method, and colours that people with red-green colour blindness tell apart."""
import pytest

from bierlib import palette
from bierlib.palette import (EXTRA_COLOURS, MIN_DELTA_E, OKABE_ITO, REFERENCE_COLOUR,
                             category_style, method_key, method_style, series_styles)
from bierlib.study import METHODS

from .colour_vision import too_close


def test_every_pair_of_series_colours_differs_under_deuteranopia_and_protanopia():
    # every colour a series can get
    colours = [*OKABE_ITO.values(), *EXTRA_COLOURS.values(), REFERENCE_COLOUR]
    assert not too_close(colours, MIN_DELTA_E)


def test_the_test_finds_colours_that_only_differ_in_red_and_green():
    assert too_close(["#d62728", "#2ca02c"], MIN_DELTA_E)  # tab10's red and green


def test_each_method_has_its_own_colour_marker_line_and_hatch():
    styles = [method_style(m) for m in METHODS]  # every method of the study
    for field in ("colour", "marker", "hatch"):
        assert len({getattr(s, field) for s in styles}) == len(METHODS), field
    assert len({(s.linestyle, s.marker) for s in styles}) == len(METHODS)


def test_every_styled_method_is_told_apart():
    """The methods after the book's papers too (multi-similarity, proxy anchor)."""
    styles = [method_style(m) for m in palette.METHODS]
    for field in ("colour", "marker", "hatch"):
        assert len({getattr(s, field) for s in styles}) == len(styles), field


@pytest.mark.parametrize("label, key", [
    ("BIER", "bier"), ("A-BIER (ch. 4)", "abier"), ("single embedding", "binomial"),
    ("lifted structured (ch. 2)", "lifted"), ("margin loss (M = 1)", "margin"),
    ("divide and conquer, M = 4", "divide_and_conquer"), ("contrastive (ch. 1-2)", "contrastive"),
    ("binomial deviance (ch. 3)", "binomial"), ("raw pixels", None), ("hadsell", None),
    ("multi-similarity", "multi_similarity"), ("proxy anchor, 100x proxies", "proxy_anchor"),
    ("squared contrastive", "contrastive_squared")])
def test_legend_labels_name_their_method(label, key):
    assert method_key(label) == key


def test_series_styles_keep_methods_and_give_others_free_colours():
    styles = series_styles(["BIER", "pml", "hadsell"])
    assert styles["BIER"] == method_style("bier")
    assert len({s.colour for s in styles.values()}) == 3
    with pytest.raises(ValueError, match="unknown method 'mystery'"):
        method_style("mystery")
    with pytest.raises(ValueError, match="highlight a few"):
        category_style(7)


def test_light_colours_are_outlined():
    line = method_style("triplet").line()  # yellow: too light on white alone
    assert line["markeredgecolor"] == "black" and line["path_effects"]
    assert "path_effects" not in method_style("bier").line()
