"""effectstudy: effect research on small, heterogeneous outcome studies.

Built for six Dutch youth-care programmes for girls and young women who are
(suspected) victims of loverboys and domestic human trafficking: harmonised
outcome data, single-case designs, multilevel growth models with small-sample
inference, reliable change, power simulation and privacy-safe reports.
"""

from __future__ import annotations

__version__ = "0.1.0"
