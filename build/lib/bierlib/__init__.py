"""bierlib: the small, tested deep-metric-learning library behind the book.

Submodules: ``losses``, ``sampling``, ``models``, ``data``, ``evaluation``,
``training``, ``boosting``, ``adversarial``, ``divide``, ``experiments``, ``profiles``,
``plotting``, ``widgets``, ``exercises``, ``report``; ``python -m bierlib.cli`` is the
command line.
"""
__version__ = "0.1.0"
