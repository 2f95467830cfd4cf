"""Font glyphs: the quick profile's offline stand-in for ImageNet pretraining.

The papers fine-tune a backbone pretrained on a large, many-class task that is disjoint from
the retrieval classes. The quick profile does the same at 28 px: :class:`FontGlyphs` renders
characters of the fonts that ship with matplotlib (DejaVu, STIX, Computer Modern) as
Omniglot-like images -- bright strokes on black, random stroke width, rotation, shear, scale
and position -- so nothing is downloaded. A class is one Unicode code point; its renderings
cycle through the fonts that draw it, as Omniglot's 20 drawers each draw a character once.

**Disjoint from the test alphabets** (Early Aramaic, katakana, Latin, Tagalog; see
:mod:`bierlib.data.omniglot`): code points of the Latin, IPA and phonetic blocks, Latin
mathematical letters, fullwidth forms and kana are excluded, as is anything named LATIN,
KATAKANA, SCRIPT or DOUBLE-STRUCK, and so is every remaining glyph that looks like a Latin
letter or digit, accented ones included (Cyrillic A, Greek O, ...): its normalised rendering
correlates above ``LOOKALIKE_CORRELATION`` with one of them in the same font. The fonts have
no Aramaic or Tagalog (Baybayin) glyphs. Filled or dotted shapes (box drawings, dominoes,
Braille, BLACK ...) are not strokes and are left out too.

Deterministic: the same arguments give the same images on every machine with the same
matplotlib and Pillow versions (the fonts are matplotlib's files).
"""
from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .base import ImageTensorDataset

FONT_FOLDER = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
MIN_FONTS = 4  # a class needs renderings from at least this many fonts
LOOKALIKE_CORRELATION = 0.7
CANVAS = 105  # Omniglot's drawing size; images are box-resized to image_size like Omniglot's
SPLIT_SEEDS = {"train": 0, "heldout": 1}  # held-out renderings use other random draws
_EXCLUDED_BLOCKS = (  # (first, last) code points
    (0x0000, 0x036F),  # ASCII, Latin-1, Latin Extended A/B, IPA, modifiers, combining marks
    (0x1D00, 0x1EFF),  # phonetic extensions, Latin Extended Additional
    (0x2C60, 0x2C7F), (0xA720, 0xA7FF), (0xAB30, 0xAB6F),  # Latin Extended C, D, E
    (0x2460, 0x24FF), (0x1F100, 0x1F1FF),  # enclosed (circled) Latin letters and digits
    (0x3040, 0x30FF), (0x31F0, 0x31FF),  # hiragana, katakana
    (0xE000, 0xF8FF), (0xFF00, 0xFFEF),  # private use, fullwidth forms
    (0x1D400, 0x1D7FF),  # mathematical alphanumeric symbols (Latin letters in many styles)
)
_LATIN_LIKE = ("LATIN", "KATAKANA", "COMBINING", "DOUBLE-STRUCK", "SCRIPT", "BLACK-LETTER",
               "ROMAN NUMERAL")
_FILLED_OR_DOTTED = ("BOX DRAWINGS", "DOMINO", "PLAYING CARD", "TETRAGRAM", "HEXAGRAM",
                     "BRAILLE", "BLACK", "FULL BLOCK", "SHADE", "UPPER", "LOWER", "QUADRANT")


def font_files() -> list[Path]:
    """matplotlib's TrueType fonts (LastResort, which draws placeholder boxes, excluded)."""
    files = sorted(p for p in FONT_FOLDER.glob("*.ttf") if not p.name.startswith("LastResort"))
    if not files:
        raise FileNotFoundError(f"no TrueType fonts in {FONT_FOLDER}: is matplotlib installed "
                                "completely (its mpl-data folder)?")
    return files


def _allowed(cp: int) -> bool:
    if any(lo <= cp <= hi for lo, hi in _EXCLUDED_BLOCKS):
        return False
    char = chr(cp)
    if unicodedata.category(char)[0] not in "LS":  # letters and symbols only
        return False
    name = unicodedata.name(char, "")
    return (bool(name) and not any(w in name for w in _LATIN_LIKE)
            and not name.startswith(_FILLED_OR_DOTTED))


@functools.lru_cache(maxsize=None)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _draw(char: str, font_path: Path, size: int = 64, stroke: int = 0) -> Image.Image:
    """``char`` white on black, centred on a CANVAS x CANVAS image."""
    font = _font(str(font_path), size)
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=font, stroke_width=stroke)
    xy = ((CANVAS - (right - left)) / 2 - left, (CANVAS - (bottom - top)) / 2 - top)
    draw.text(xy, char, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    return image


def _shape(image: Image.Image, side: int = 24) -> np.ndarray | None:
    """The inked bounding box resized to side x side, standardised; None if (nearly) empty."""
    box = image.getbbox()
    if box is None or max(box[2] - box[0], box[3] - box[1]) < 8:
        return None
    a = np.asarray(image.crop(box).resize((side, side), Image.Resampling.BILINEAR), np.float32)
    return (a - a.mean()) / (a.std() + 1e-6)


@functools.lru_cache(maxsize=None)
def _latin_shapes(font: str) -> np.ndarray:
    """(N, 576) shapes of the Latin letters (accented ones too) and digits that ``font``
    draws."""
    from fontTools.ttLib import TTFont

    cmap = TTFont(FONT_FOLDER / font, lazy=True).getBestCmap() or {}
    shapes = [_shape(_draw(chr(cp), FONT_FOLDER / font)) for cp in sorted(cmap)
              if (0x30 <= cp <= 0x24F or 0x1E00 <= cp <= 0x1EFF)
              and unicodedata.category(chr(cp))[0] in "LN"]
    shapes = [s.ravel() for s in shapes if s is not None]
    return np.stack(shapes) if shapes else np.zeros((1, 576), np.float32)


@functools.lru_cache(maxsize=None)
def glyph_classes() -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Every usable class: ``(code point, font file names that draw it)``, by code point.

    Usable: allowed (see the module docstring), drawn by at least ``MIN_FONTS`` fonts, with
    enough ink to be a character, and not a look-alike of a Latin letter or digit.
    """
    from fontTools.ttLib import TTFont

    files = font_files()
    fonts_of: dict[int, list[str]] = {}
    for path in files:
        for cp in TTFont(path, lazy=True).getBestCmap() or {}:
            if _allowed(cp):
                fonts_of.setdefault(cp, []).append(path.name)
    classes = []
    for cp in sorted(fonts_of):
        if len(fonts_of[cp]) < MIN_FONTS:
            continue
        font = "DejaVuSans.ttf" if "DejaVuSans.ttf" in fonts_of[cp] else fonts_of[cp][0]
        shape = _shape(_draw(chr(cp), FONT_FOLDER / font))
        if shape is None:
            continue
        if (_latin_shapes(font) @ shape.ravel() / shape.size).max() > LOOKALIKE_CORRELATION:
            continue
        classes.append((cp, tuple(fonts_of[cp])))
    return tuple(classes)


def choose_classes(num_classes: int) -> list[tuple[int, tuple[str, ...]]]:
    """``num_classes`` classes spread evenly over :func:`glyph_classes` (so every script
    contributes), deterministic."""
    pool = glyph_classes()
    if not 1 <= num_classes <= len(pool):
        raise ValueError(f"num_classes must be between 1 and {len(pool)} (the usable glyphs of "
                         f"matplotlib's fonts), found {num_classes}")
    index = np.linspace(0, len(pool) - 1, num_classes).round().astype(int)
    return [pool[i] for i in index]


def render(char: str, font_path: Path, rng: np.random.Generator, image_size: int) -> np.ndarray:
    """One random rendering of ``char``: stroke width, size, rotation, shear, scale and
    shift drawn from ``rng``; uint8 (image_size, image_size), strokes bright."""
    size = int(rng.integers(44, 73))
    image = _draw(char, font_path, size, stroke=int(rng.integers(0, 3)))
    angle, shear = np.deg2rad(rng.uniform(-12, 12)), rng.uniform(-0.2, 0.2)
    scale = rng.uniform(0.85, 1.1)
    shift = rng.uniform(-6, 6, size=2)
    c, s = np.cos(angle), np.sin(angle)
    forward = scale * np.array([[c, -s + shear], [s, c]])  # output = A @ (input - centre)
    inverse = np.linalg.inv(forward)  # PIL maps output pixels back to input pixels
    centre = np.array([CANVAS / 2, CANVAS / 2])
    offset = centre - inverse @ (centre + shift)
    image = image.transform((CANVAS, CANVAS), Image.Transform.AFFINE,
                            (*inverse[0], offset[0], *inverse[1], offset[1]),
                            resample=Image.Resampling.BILINEAR)
    if image_size != CANVAS:
        image = image.resize((image_size, image_size), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.uint8)


class FontGlyphs(ImageTensorDataset):
    """Rendered font glyphs as a many-class classification set (see the module docstring).

    Args:
        split: ``"train"`` (the renderings the backbone is pretrained on) or ``"heldout"``
            (other renderings of the same classes: the classifier's held-out accuracy).
        num_classes: how many code points (default 1,000 of about 2,900 usable).
        renderings: images per class.
        image_size: side in pixels (8-105).
        seed: changes every random draw (fonts cycle in a seeded order per class).

    Attributes as :class:`~bierlib.data.ImageTensorDataset`; ``class_names`` are like
    ``"U+0416 CYRILLIC CAPITAL LETTER ZHE"``.
    """

    def __init__(self, split: str = "train", num_classes: int = 1000, renderings: int = 24,
                 image_size: int = 28, seed: int = 0, transform=None):
        if split not in SPLIT_SEEDS:
            raise ValueError(f"split must be one of {sorted(SPLIT_SEEDS)}, found {split!r}")
        if not 8 <= int(image_size) <= CANVAS:
            raise ValueError(f"image_size must be between 8 and {CANVAS}, found {image_size}")
        if isinstance(renderings, bool) or not isinstance(renderings, int) or renderings < 1:
            raise ValueError(f"renderings must be a positive integer, found {renderings!r}")
        classes = choose_classes(num_classes)
        images, targets = [], []
        for target, (cp, fonts) in enumerate(classes):
            rng = np.random.default_rng([seed, SPLIT_SEEDS[split], cp])
            order = rng.permutation(len(fonts))
            for r in range(renderings):
                font = FONT_FOLDER / fonts[order[r % len(fonts)]]
                images.append(render(chr(cp), font, rng, int(image_size)))
                targets.append(target)
        names = [f"U+{cp:04X} {unicodedata.name(chr(cp))}" for cp, _ in classes]
        super().__init__(torch.from_numpy(np.stack(images)[:, None]), targets, names, transform)
        self.split, self.code_points = split, [cp for cp, _ in classes]
