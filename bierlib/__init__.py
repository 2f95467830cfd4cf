"""bierlib: the small, tested deep-metric-learning library behind the book.

Submodules: ``losses``, ``sampling``, ``models``, ``data``, ``evaluation``,
``training``, ``boosting``, ``adversarial``, ``divide``, ``experiments``, ``profiles``,
``plotting`` and ``maps`` (figures), ``palette`` (one colour-blind-safe style per method),
``describe`` (figures described in words), ``widgets``, ``exercises``, ``report``;
``python -m bierlib.cli`` is the command line.
"""
__version__ = "0.1.0"
