"""effectstudy: effect research on small, heterogeneous outcome studies.

Built for six Dutch youth-care programmes for girls and young women who are
(suspected) victims of loverboys and domestic human trafficking: harmonised
outcome data, single-case designs, multilevel growth models with small-sample
inference, reliable change, power simulation and privacy-safe reports.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: Names re-exported lazily at the top level (``effectstudy.read_harmonised`` ...): importing
#: ``effectstudy`` stays cheap, and each name is loaded on first use.
_LAZY = {
    "harmonise_exports": ("effectstudy.harmonise.core", "harmonise"),
    "read_harmonised": ("effectstudy.harmonise.core", "read_harmonised"),
    "load_dictionary": ("effectstudy.dictionary", "load_dictionary"),
    "run_study": ("effectstudy.study", "run"),
    "build_report": ("effectstudy.report.build", "build_report"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'effectstudy' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
