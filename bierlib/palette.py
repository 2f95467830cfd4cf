"""One colour, marker, line style and hatch per method, on every page of the book.

Colours are Okabe & Ito's eight (2008), chosen to stay apart for the common forms of colour
blindness, and three more that stay apart from them (:data:`EXTRA_COLOURS`);
``tests/test_palette.py`` simulates deuteranopia and protanopia and checks that every pair of
them (and the grey of reference lines) stays at least :data:`MIN_DELTA_E` apart. Colour never
carries meaning alone: every method also has its own marker, line style and bar hatch, and the
figures' descriptions name the series.

Continuous quantities use :data:`CONTINUOUS` (cividis, readable with every form of colour
blindness and in greyscale).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from matplotlib import patheffects

#: Okabe & Ito's colour-blind-safe palette, by name.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9",
             "bluish green": "#009E73", "yellow": "#F0E442", "blue": "#0072B2",
             "vermillion": "#D55E00", "reddish purple": "#CC79A7"}
#: Three more series colours, found by the colour-vision test of tests/test_palette.py to stay
#: apart from Okabe & Ito's eight and from the reference grey: for the methods after the book's
#: papers Paul Tol's indigo and the darkest brown of ColorBrewer's PuOr scheme, and for the
#: squared contrastive loss a cornflower blue (contrast 3.2:1 on white, the least a graphic
#: needs, WCAG 2.1).
EXTRA_COLOURS = {"indigo": "#332288", "brown": "#7F3B08", "cornflower": "#4D8CFF"}
#: The colour of reference lines, e.g. the pretrained features' Recall@1 (dashed).
REFERENCE_COLOUR = "#595959"
#: The smallest colour difference (CIE ΔE in CAM02-UCS) between any two series colours under
#: simulated deuteranopia and protanopia (severity 100); the just-noticeable difference is
#: about 1-2, thin lines and small markers need much more.
MIN_DELTA_E = 12.0
#: The colour map for continuous values (heatmaps, distances).
CONTINUOUS = "cividis"
#: The glyph and colour of a right and of a wrong neighbour in a retrieval gallery.
CORRECT = ("\u2713", OKABE_ITO["blue"])  # check mark
WRONG = ("\u2717", OKABE_ITO["vermillion"])  # ballot x


@dataclass(frozen=True)
class Style:
    """How one series is drawn: ``line()`` for plot/errorbar, ``marker()`` for scatter,
    ``bar()`` for bars and histograms."""

    colour: str
    marker: str
    linestyle: str
    hatch: str

    @property
    def _edged(self) -> bool:  # yellow is too light on white alone: outline it
        return self.colour == OKABE_ITO["yellow"]

    def line(self) -> dict:
        kwargs = {"color": self.colour, "marker": self.marker, "linestyle": self.linestyle}
        if self._edged:
            kwargs.update(markeredgecolor="black", path_effects=[
                patheffects.Stroke(linewidth=3.2, foreground="0.25"), patheffects.Normal()])
        return kwargs

    def marker_kwargs(self) -> dict:
        return {"color": self.colour, "marker": self.marker,
                "edgecolors": "black" if self._edged else "face"}

    def bar(self) -> dict:
        return {"color": self.colour, "hatch": self.hatch, "edgecolor": "white" if not
                self._edged else "black"}


_STYLES = {  # method -> Style; chapters that compare methods draw each in its own style
    "contrastive": Style(OKABE_ITO["sky blue"], "o", "-", ""),
    "triplet": Style(OKABE_ITO["yellow"], "v", "--", ".."),
    "lifted": Style(OKABE_ITO["black"], "^", "-.", "xx"),
    "binomial": Style(OKABE_ITO["blue"], "s", "-", "//"),
    "bier": Style(OKABE_ITO["vermillion"], "*", "--", "\\\\"),
    "abier": Style(OKABE_ITO["bluish green"], "P", "-.", "oo"),
    "margin": Style(OKABE_ITO["reddish purple"], "D", "-", "--"),
    "divide_and_conquer": Style(OKABE_ITO["orange"], "X", "--", "++"),
    "multi_similarity": Style(EXTRA_COLOURS["brown"], "p", ":", "||"),
    "proxy_anchor": Style(EXTRA_COLOURS["indigo"], "h", ":", "**"),
    "contrastive_squared": Style(EXTRA_COLOURS["cornflower"], "<", ":", "O"),
}
METHODS = tuple(_STYLES)
#: Other names of the methods in the chapters' legends.
ALIASES = {"lifted structured": "lifted", "single embedding": "binomial",
           "single embedding (binomial)": "binomial", "binomial deviance": "binomial",
           "single": "binomial", "baseline": "binomial", "a-bier": "abier",
           "margin loss": "margin", "margin loss (m = 1)": "margin", "m = 1": "margin",
           "divide and conquer": "divide_and_conquer", "d&c": "divide_and_conquer",
           "multi-similarity": "multi_similarity", "multi-similarity loss": "multi_similarity",
           "ms loss": "multi_similarity", "proxy-anchor": "proxy_anchor",
           "proxy anchor loss": "proxy_anchor", "proxy-anchor loss": "proxy_anchor",
           "squared contrastive": "contrastive_squared"}
# Series that are not methods (e.g. two forms of one loss, clusters): markers and line
# styles used in turn with the colours.
_CATEGORY_COLOURS = tuple(OKABE_ITO[n] for n in ("blue", "vermillion", "bluish green", "orange",
                                                  "reddish purple", "sky blue", "black"))
_MARKERS, _LINES, _HATCHES = "osD^vPX", ("-", "--", "-.", ":"), ("", "//", "\\\\", "xx", "..")
REFERENCE = Style(REFERENCE_COLOUR, "", "--", "")


def method_key(name: str) -> str | None:
    """The method a legend label names, or None: "BIER", "single embedding", "lifted
    structured (ch. 2)" and "divide and conquer, M = 4" name methods; what follows a comma
    or an opening parenthesis is read only where the whole label is not a name."""
    for candidate in (name, name.split(",")[0], name.split(" (")[0]):
        candidate = candidate.strip().lower()
        key = ALIASES.get(candidate, candidate.replace("-", "").replace(" ", "_"))
        if key in _STYLES:
            return key
    return None


def method_style(name: str) -> Style:
    """The style of a method, given its key ("bier") or a label that names it ("A-BIER")."""
    key = method_key(name)
    if key is None:
        raise ValueError(f"unknown method {name!r}: expected one of {', '.join(METHODS)} "
                         f"or {', '.join(sorted(ALIASES))}")
    return _STYLES[key]


def category_style(index: int) -> Style:
    """The style of the ``index``-th of a few categories that are not methods (clusters,
    backbones, forms of one loss): Okabe-Ito's colours in turn, each with its own marker."""
    if index < 0:
        raise ValueError(f"index must be >= 0, found {index}")
    if index >= len(_CATEGORY_COLOURS):
        raise ValueError(f"at most {len(_CATEGORY_COLOURS)} categories are told apart by "
                         f"colour, found index {index}: highlight a few instead")
    return Style(_CATEGORY_COLOURS[index], _MARKERS[index],
                 _LINES[index % len(_LINES)], _HATCHES[index % len(_HATCHES)])


def series_styles(names: Iterable[str]) -> dict[str, Style]:
    """A style for each name: a method's own style where the name is a method, otherwise the
    categories' styles in order, skipping colours the methods among ``names`` already use."""
    names = list(names)
    styles = {n: _STYLES[method_key(n)] for n in names if method_key(n) is not None}
    taken = {s.colour for s in styles.values()}
    free = (category_style(i) for i in range(len(_CATEGORY_COLOURS)))
    for n in names:
        if n not in styles:
            style = next(s for s in free if s.colour not in taken)
            styles[n] = style
            taken.add(style.colour)
    return {n: styles[n] for n in names}
