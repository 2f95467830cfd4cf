"""bierlib: the small, tested deep-metric-learning library behind the book.

Submodules: ``losses``, ``sampling``, ``models``, ``data``, ``evaluation``,
``training``, ``profiles``, ``plotting``, ``widgets``, ``exercises``.
"""
__version__ = "0.1.0"
