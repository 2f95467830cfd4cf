"""Text descriptions of figures, generated from the data they draw (the pictures' alt text).

A reader who cannot see a figure gets a description instead: what is plotted, the comparison
it makes and its key numbers, computed from the same data. Two sources, combined by
:func:`describe_figure`:

* the functions of :mod:`bierlib.plotting` attach what they know to the Axes they draw on
  (:func:`note`): a retrieval gallery counts the right neighbours of each query, a heatmap
  gives its mean correlation;
* every other Axes is read from its artists (:func:`describe_axes`): its title and axis
  labels, each labelled line (first, last and highest value), bar, scatter, histogram,
  heatmap, picture and reference line.

Labels are read without their TeX (:func:`plain`: ``$\\lambda_{div}$`` is read "lambda_div").
A histogram is described by its own data's range (its non-empty bins), a shaded band only
where it has a width (one seed draws none).

:func:`series_colours` lists the colours that tell an Axes' series apart (what the
colour-blindness test checks).
"""
from __future__ import annotations

import re
import weakref
from collections import defaultdict

import numpy as np
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer
from matplotlib.patches import Polygon

_NOTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Axes or Figure -> sentences
_COVERED: weakref.WeakSet = weakref.WeakSet()  # Axes a Figure's note already describes
MAX_ITEMS = 12  # series or categories named per Axes; more are counted, not listed


def note(target, text: str, covers=()):
    """Attach a sentence describing ``target`` (an Axes or a Figure) and return ``target``.
    ``covers``: Axes that this sentence describes too (they are not read again)."""
    _NOTES.setdefault(target, []).append(text.strip())
    _COVERED.update(covers)
    return target


def notes(target) -> list[str]:
    return list(_NOTES.get(target, []))


def fmt(value) -> str:
    """A number as a reader wants it: whole numbers with separators, others to 3 digits."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


_TEX_SYMBOLS = {"partial": "∂", "nabla": "∇", "cdot": "·", "times": "×", "le": "≤",
                "leq": "≤", "ge": "≥", "geq": "≥", "neq": "≠", "approx": "≈", "infty": "∞",
                "pm": "±", "to": "→", "rightarrow": "→", "in": "∈", "sum": "sum", "log": "log",
                "exp": "exp", "ell": "l"}
_TEX_MATH = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$")


def _command(match) -> str:
    """A TeX command as a word (its name: ``\\lambda`` -> ``lambda``) or a symbol (``∂``);
    the space after it separates the next word from a name, not from a symbol."""
    word = _TEX_SYMBOLS.get(match.group(1), match.group(1))
    return word + (" " if match.group(2) and word.isalnum() else "")


def _plain_math(tex: str) -> str:
    tex = re.sub(r"\\(?:mathrm|mathbf|mathit|text|operatorname|mathcal|boldsymbol)\s*", "", tex)
    tex = re.sub(r"\\[,;:! ]", " ", tex)  # TeX spacing
    tex = re.sub(r"\\([A-Za-z]+)(\s*)", _command, tex)
    tex = tex.replace("{", "").replace("}", "").replace("\\", "")
    return re.sub(r"\s+", " ", tex).strip()


def plain(text: str) -> str:
    """``text`` without TeX, as a screen reader should read it: each ``$...$`` loses its
    markup, Greek letters and commands become their names or symbols (``$\\lambda_{div}$``
    -> ``lambda_div``, ``$\\eta$`` -> ``eta``, ``$\\partial L$`` -> ``∂L``)."""
    text = _TEX_MATH.sub(lambda m: _plain_math(m.group(1)), text).replace("\\$", "$")
    return re.sub(r"(?<=\S) {2,}", " ", text)


def _label(artist) -> str | None:
    label = artist.get_label()
    return None if not label or label.startswith("_") else label


def _reference(line) -> str | None:
    """'dashed line at 0.743 (pretrained features)' for a line across the Axes, else None."""
    try:
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    except (TypeError, ValueError):  # categorical data (strings): not a reference line
        return None
    if len(x) != 2:
        return None
    style = {"--": "dashed", ":": "dotted", "-.": "dash-dotted"}.get(line.get_linestyle(), "")
    name = f" ({_label(line)})" if _label(line) else ""
    if y[0] == y[1] and list(x) == [0, 1]:
        return f"{style} horizontal line at {fmt(y[0])}{name}".strip()
    if x[0] == x[1] and list(y) == [0, 1]:
        return f"{style} vertical line at {fmt(x[0])}{name}".strip()
    return None


def _curve(label: str, lines, xname: str) -> str:
    if len(lines) > 1:  # several lines under one label (e.g. one per seed)
        ends = [float(np.asarray(ln.get_ydata(), float)[-1]) for ln in lines]
        return f"{label} ({len(lines)} lines) ends between {fmt(min(ends))} and {fmt(max(ends))}"
    x, y = np.asarray(lines[0].get_xdata()), np.asarray(lines[0].get_ydata(), float)
    if len(y) == 1:
        return f"{label} at {fmt(y[0])}"
    top = int(np.nanargmax(y))
    text = f"{label} goes from {fmt(y[0])} to {fmt(y[-1])}"
    if 0 < top < len(y) - 1:
        where = f" at {xname} {fmt(x[top])}" if np.issubdtype(np.asarray(x).dtype, np.number) \
            else f" at {x[top]}"
        text += f", highest {fmt(y[top])}{where}"
    return text


def _ticks(ax, axis: str) -> dict:
    locs = getattr(ax, f"get_{axis}ticks")()
    texts = [t.get_text() for t in getattr(ax, f"get_{axis}ticklabels")()]
    return {float(loc): text.replace("\n", " ") for loc, text in zip(locs, texts) if text}


def _category(ticks: dict, position: float) -> str:
    if ticks:
        loc = min(ticks, key=lambda t: abs(t - position))
        if abs(loc - position) < 0.5:
            return ticks[loc]
    return fmt(position)


def _bars(ax, container: BarContainer) -> str:
    horizontal = getattr(container, "orientation", "vertical") == "horizontal"
    rects = list(container.patches)
    if not rects:
        return ""
    if horizontal:  # a bar's value is its length (stacked bars: the segment's)
        positions = [r.get_y() + r.get_height() / 2 for r in rects]
        values = [r.get_width() for r in rects]
    else:
        positions = [r.get_x() + r.get_width() / 2 for r in rects]
        values = [r.get_height() for r in rects]
    lefts = [r.get_x() for r in rects]
    widths = [r.get_width() for r in rects]
    label = _label(container) or _label(rects[0])  # ax.hist labels the first bar
    if len(rects) > MAX_ITEMS and np.allclose(np.add(lefts[:-1], widths[:-1]), lefts[1:]):
        return _histogram("histogram", label, lefts + [lefts[-1] + widths[-1]], values)
    ticks = _ticks(ax, "y" if horizontal else "x")
    pairs = [f"{_category(ticks, p)} {fmt(v)}" for p, v in zip(positions, values)][:MAX_ITEMS]
    return f"{label + ': ' if label else ''}{', '.join(pairs)}"


def _histogram(kind: str, label: str | None, edges, heights) -> str:
    """'histogram of negative pairs: values from 0.03 to 1.22, highest bar at 0.138' from its
    bin ``edges`` (n + 1) and ``heights`` (n): the range is the data's own (its non-empty
    bins), not the bins' (which several panels may share), and a value that differs from 0
    by floating-point noise alone is 0."""
    edges, heights = np.asarray(edges, float), np.asarray(heights, float)
    span = float(edges[-1] - edges[0]) or 1.0
    edges = np.where(np.abs(edges) < 1e-9 * span, 0.0, edges)
    full = np.flatnonzero(heights > 0)
    name = f"{kind}{' of ' + label if label else ''}"
    if not len(full):
        return f"{name}: empty"
    peak = int(np.argmax(heights))
    return (f"{name}: values from {fmt(edges[full[0]])} to {fmt(edges[full[-1] + 1])}, "
            f"highest bar at {fmt((edges[peak] + edges[peak + 1]) / 2)}")


def _outline(patch: Polygon) -> str:
    """A histogram drawn as an outline (``histtype="step"``) in words, from its vertices:
    each horizontal segment is the top of one bin."""
    xy = np.asarray(patch.get_xy(), float)
    bottom = min(xy[0, 1], xy[-1, 1])
    edges, heights = [], []
    for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:]):
        if y0 == y1 and x1 > x0:
            if not edges or edges[-1] != x0:
                edges.append(x0)
            edges.append(x1)
            heights.append(y0 - bottom)
    if len(heights) < 2 or len(edges) != len(heights) + 1:  # not a vertical step histogram
        return _label(patch)
    return _histogram("histogram outline", _label(patch), edges, heights)


def _band(collection) -> bool:
    """Does a shaded band (``fill_between``) cover any area? One seed draws none."""
    for path in collection.get_paths():
        x, y = path.vertices[:, 0], path.vertices[:, 1]
        area = abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2
        if area > 1e-9 * np.ptp(x) * np.ptp(y):
            return True
    return False


def _picture(ax) -> bool:
    return bool(ax.images) and not len(ax.get_xticks()) and not len(ax.get_yticks())


def _heading(ax, newline: str = ", ") -> str:
    """Title and axis labels; a title's line breaks become ``newline`` (a space where the
    title is one wrapped name)."""
    title = " ".join(t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right"))
                     if t).replace("\n", newline)
    x, y = ax.get_xlabel().replace("\n", " "), ax.get_ylabel().replace("\n", " ")
    axes = f"{y} against {x}" if x and y else (x or y)
    return ", ".join(t for t in (title, axes) if t)


def describe_axes(ax) -> str:
    """One Axes in words: its notes where a plotting function left some, else what its
    artists show; reference lines are always read."""
    references = [r for r in map(_reference, ax.get_lines()) if r]
    parts = notes(ax)
    if not parts:
        parts = _read(ax)
    elif references:
        parts.append("Also: " + "; ".join(references) + ".")
    return plain(" ".join(parts))


def _read(ax) -> list[str]:
    heading = _heading(ax)
    if _picture(ax):
        return [f"Picture{': ' + heading if heading else ''}."]
    found = []
    for image in ax.images:
        data = np.asarray(image.get_array(), float)
        found.append(f"heatmap of {data.shape[0]} x {data.shape[1]} values from "
                     f"{fmt(np.nanmin(data))} to {fmt(np.nanmax(data))}")
    curves, references = defaultdict(list), []
    for line in ax.get_lines():
        reference = _reference(line)
        if reference:
            references.append(reference)
        elif _label(line):
            curves[_label(line)].append(line)
    xname = ax.get_xlabel().split("\n")[0] or "x"
    found += [_curve(label, lines, xname) for label, lines in list(curves.items())[:MAX_ITEMS]]
    found += [text for text in (_bars(ax, c) for c in ax.containers
                                if isinstance(c, BarContainer)) if text][:MAX_ITEMS]
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and len(collection.get_offsets()):
            xy = np.asarray(collection.get_offsets(), float)
            found.append(f"{_label(collection) or 'points'}: {len(xy):,} points, x from "
                         f"{fmt(xy[:, 0].min())} to {fmt(xy[:, 0].max())}, y from "
                         f"{fmt(xy[:, 1].min())} to {fmt(xy[:, 1].max())}")
    bands = sum(isinstance(c, PolyCollection) and _band(c) for c in ax.collections)
    if bands:  # zero-width bands (one seed) show nothing: not described
        found.append(f"{bands} shaded band{'s' if bands > 1 else ''} around the lines "
                     "(the range over seeds)")
    found += [_outline(p) for p in ax.patches if isinstance(p, Polygon) and _label(p)]
    found += references
    if not found:
        return []
    return [f"{heading[0].upper() + heading[1:] if heading else 'Chart'}: "
            + "; ".join(found) + "."]


def describe_figure(fig, lead: str | None = None) -> str:
    """The whole figure in words: ``lead`` (optional), the figure's notes, then each panel."""
    parts = ([lead.strip()] if lead else []) + notes(fig)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax not in _COVERED
              and ax.get_label() != "<colorbar>"]
    if panels and all(_picture(ax) for ax in panels):
        titles = [_heading(ax, newline=" ") for ax in panels]
        named = [t for t in titles if t]
        parts.append(f"{len(panels)} pictures" + (": " + "; ".join(named) + "." if named
                                                  else "."))
        return plain(" ".join(parts))
    described = [(ax, describe_axes(ax)) for ax in panels]
    described = [(ax, text) for ax, text in described if text]
    for i, (ax, text) in enumerate(described, start=1):
        parts.append(f"Panel {i} of {len(described)}: {text}" if len(described) > 1 else text)
    if not parts:
        raise ValueError("the figure draws nothing that can be described: pass a lead sentence")
    return plain(" ".join(parts))


def series_colours(ax) -> list[str]:
    """The distinct colours (hex) of the labelled series of ``ax``: lines, bars, scatters,
    histogram outlines; reference lines excluded (they differ by grey and dashes)."""
    colours = []
    for line in ax.get_lines():
        if _label(line) and not _reference(line):
            colours.append(line.get_color())
    for container in ax.containers:
        if isinstance(container, BarContainer) and container.patches:
            colours.append(container.patches[0].get_facecolor())
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and _label(collection):
            colours.append(collection.get_facecolor()[0])
    colours += [p.get_edgecolor() for p in ax.patches if isinstance(p, Polygon) and _label(p)]
    return list(dict.fromkeys(to_hex(c) for c in colours))
