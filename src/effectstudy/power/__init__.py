"""Simulation-based power for planned single-case, multilevel and responder studies."""

from effectstudy.power.api import *  # noqa: F403
from effectstudy.power.api import __all__  # noqa: F401
