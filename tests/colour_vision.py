"""Colour differences as people with colour-vision deficiencies see them (colorspacious).

Each colour is passed through Machado et al.'s (2009) simulation of deuteranopia or
protanopia at severity 100 (``sRGB1+CVD``), then compared in CAM02-UCS, where Euclidean
distance is the perceived difference (ΔE); :data:`bierlib.palette.MIN_DELTA_E` is the
smallest difference allowed between two series of one figure.
"""
import itertools

import numpy as np
from colorspacious import cspace_convert, deltaE
from matplotlib.colors import to_rgb

DEFICIENCIES = ("deuteranomaly", "protanomaly")  # at severity 100: deuteranopia, protanopia


def simulated(colour, deficiency: str) -> np.ndarray:
    space = {"name": "sRGB1+CVD", "cvd_type": deficiency, "severity": 100}
    return np.clip(cspace_convert(to_rgb(colour), space, "sRGB1"), 0, 1)


def too_close(colours, threshold: float) -> list[str]:
    """Every pair of ``colours`` closer than ``threshold`` (ΔE, CAM02-UCS) under a simulated
    deficiency, as readable lines ("#e69f00 vs #d55e00 under protanomaly: ΔE 9.1")."""
    found = []
    for deficiency in DEFICIENCIES:
        for a, b in itertools.combinations(dict.fromkeys(colours), 2):
            d = float(deltaE(simulated(a, deficiency), simulated(b, deficiency),
                             input_space="sRGB1"))
            if d < threshold:
                found.append(f"{a} vs {b} under {deficiency}: ΔE {d:.1f}")
    return found
