"""Multilevel growth design for simulation-based power (issue 6).

``GrowthDesign`` describes a planned study: the measurement layout (with its
dropout pattern), the fixed part of the analysis model, the true fixed effects
and variance components, and the test.  Data are generated from the same
model that is fitted (as in simr; Green & MacLeod 2016):

.. math::

    y_{ijt} = x_{ijt}'\\beta + v_i + u_{0ij} + u_{1ij}\\,\\mathrm{time}_{ijt} + e_{ijt}

with programme intercepts ``v_i ~ N(0, sd_programme^2)``, client effects
``(u0, u1) ~ N(0, [[sd_intercept^2, .], [cor sd_intercept sd_slope, sd_slope^2]])``
and residuals ``e ~ N(0, sd_residual^2)``.  The analysis model is
``formula + (1 | programme) + (1 + time | client)`` (the programme term only if
``sd_programme > 0``, the slope only if ``sd_slope > 0``), fitted by REML with
the fast engine :class:`effectstudy.multilevel.fastlmm.FastLMM`, built from the
same lme4 formula that :func:`effectstudy.multilevel.fit` takes
(:meth:`GrowthDesign.analysis_formula`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from .._validate import RNGLike, check_rng
from ..errors import ModelError, SpecError
from ..multilevel.ddf import DDF_ALIASES, DDF_METHODS
from ..multilevel.design import design_matrix
from ..multilevel.fastlmm import FastLMM, RandomTerm

__all__ = ["GrowthDesign", "reference_design"]


def _plan_seed(rng: RNGLike) -> int:
    """The int seed of a plan's attrition draw (kept so that the plan can be redrawn)."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63))
    if rng is None:
        return int(np.random.SeedSequence().entropy % 2**63)
    check_rng(rng)  # an int seed >= 0 (raises SpecError otherwise)
    return int(rng)


def _fixed_key(name: str) -> str:
    return "Intercept" if name in ("(Intercept)", "Intercept", "1") else name


@dataclass(frozen=True, eq=False)
class GrowthDesign:
    """A planned multilevel growth study (programme / client / occasion).

    Parameters
    ----------
    layout : DataFrame
        One row per planned measurement that will be observed (dropout already
        applied): columns ``programme``, ``client``, ``time`` and any arm
        columns used in ``formula`` (e.g. ``treat``).  Build one with
        :meth:`GrowthDesign.planned` or read a design file.
    formula : str
        Fixed part of the analysis model, e.g. ``"y ~ time"`` or
        ``"y ~ time * treat"`` (the grammar of
        :mod:`effectstudy.multilevel.design`; the left side is ignored).
    fixed : dict
        True fixed effects by coefficient name (``"Intercept"`` or
        ``"(Intercept)"``, ``"time"``, ``"time:treat"``...). Coefficients not
        given are 0.
    sd_programme : float
        SD of programme random intercepts; ``> 0`` puts ``(1 | programme)`` in
        both the data-generating and the analysis model.
    sd_intercept, sd_slope, cor_intercept_slope : float
        Client-level random intercept and time-slope SDs and their correlation
        (``(1 + time | client)``); ``sd_slope = 0`` gives ``(1 | client)``.
    sd_residual : float
        Residual (occasion-level) SD.
    test_term : str
        The fixed-effect coefficient tested (``H0: beta = 0``, two-sided).
    ddf : {"satterthwaite", "kenward-roger"}
        Denominator df of the t-test (Kuznetsova et al. 2017; Kenward & Roger
        1997).
    programme, client, time : str
        Column names in ``layout``.
    plan : dict, optional
        The arguments of :meth:`planned` that built ``layout`` (lets
        :func:`power_curve` vary e.g. ``clients_per_programme``).
    name : str
        Label used in results.
    """

    layout: pd.DataFrame
    formula: str = "y ~ time"
    fixed: dict = field(default_factory=lambda: {"Intercept": 50.0, "time": -0.10})
    sd_programme: float = 2.0
    sd_intercept: float = 6.0
    sd_slope: float = 0.15
    cor_intercept_slope: float = -0.3
    sd_residual: float = 5.0
    test_term: str = "time"
    ddf: Literal["satterthwaite", "kenward-roger"] = "satterthwaite"
    programme: str = "programme"
    client: str = "client"
    time: str = "time"
    plan: dict | None = None
    name: str = "growth"

    def __post_init__(self) -> None:
        if not isinstance(self.layout, pd.DataFrame):
            raise SpecError("layout must be a pandas DataFrame")
        for col in (self.programme, self.client, self.time):
            if col not in self.layout.columns:
                raise SpecError(f"layout lacks column {col!r}", column=col)
        if self.sd_residual <= 0 or self.sd_intercept <= 0:
            raise SpecError("sd_residual and sd_intercept must be > 0")
        if self.sd_programme < 0 or self.sd_slope < 0:
            raise SpecError("sd_programme and sd_slope must be >= 0")
        if not -1 < self.cor_intercept_slope < 1:
            raise SpecError("cor_intercept_slope must lie in (-1, 1)")
        ddf = str(self.ddf).lower().replace("_", "-")
        ddf = DDF_ALIASES.get(ddf, ddf)
        if ddf not in DDF_METHODS or ddf == "residual":
            raise SpecError(f"ddf must be 'satterthwaite' or 'kenward-roger', not {self.ddf!r}")
        object.__setattr__(self, "ddf", ddf)
        object.__setattr__(
            self, "fixed", {_fixed_key(k): float(v) for k, v in dict(self.fixed).items()}
        )
        names = self.fixed_names()
        unknown = set(self.fixed) - set(names)
        if unknown:
            raise SpecError(f"fixed effects {sorted(unknown)} are not in the model {names}")
        if _fixed_key(self.test_term) not in names:
            raise SpecError(f"test_term {self.test_term!r} is not a coefficient of {names}")

    # ------------------------------------------------------------------
    @classmethod
    def planned(
        cls,
        programmes: int = 6,
        clients_per_programme: int | Sequence[int] = 8,
        weeks: Sequence[float] = (0, 8, 16, 24, 32),
        dropout: float = 0.25,
        hazard: float | Sequence[float] | None = None,
        mcar: float = 0.0,
        treat_programmes: Sequence[int] | None = None,
        rng: RNGLike = None,
        **design: Any,
    ) -> GrowthDesign:
        """Build a design from a balanced plan with attrition drawn once.

        Parameters
        ----------
        programmes : int
            Number of programmes (level 3).
        clients_per_programme : int or sequence of int
            Clients per programme (one number, or one per programme).
        weeks : sequence of float
            Planned measurement times (the first is intake).
        dropout : float
            Proportion of clients who drop out (rounded to a whole number of
            clients), each from a uniformly chosen occasion >= 2 onwards
            (monotone attrition, as in the reference designs).
        hazard : float or sequence, optional
            Alternative monotone attrition: after each occasion k (k = 1..K-1)
            a remaining client drops out with probability ``hazard[k-1]``.
            Used instead of ``dropout`` when given.
        mcar : float
            Probability that an otherwise observed post-intake occasion is
            missing completely at random (intermittent).
        treat_programmes : sequence of int, optional
            1-based indices of the programmes in the new arm; adds a 0/1
            ``treat`` column.
        rng : int, numpy.random.Generator or None
            Randomness of the attrition draw: an int seed, a Generator (an int
            seed is drawn from it) or ``None`` (fresh). The seed used is kept in
            ``plan["rng"]``, so :meth:`replace` and :func:`power_curve` redraw
            the same pattern. The pattern is fixed across simulation
            replicates (as in the reference simr designs). ``seed=`` is
            accepted for one release with a :class:`FutureWarning`.
        **design
            Remaining :class:`GrowthDesign` fields (formula, fixed, SDs, ...).
        """
        if "seed" in design:
            design = dict(design)
            if rng is not None:
                raise SpecError("GrowthDesign.planned(): give seed= or rng=, not both")
            warnings.warn("GrowthDesign.planned(): seed= is deprecated and will be removed in "
                          "the next release; use rng=", FutureWarning, stacklevel=2)
            rng = design.pop("seed")
        seed = _plan_seed(rng)
        rng = np.random.default_rng(seed)
        weeks = [float(w) for w in weeks]
        K = len(weeks)
        if K < 2:
            raise SpecError("at least two measurement occasions are needed")
        cpp = (
            [int(clients_per_programme)] * programmes
            if np.isscalar(clients_per_programme)
            else [int(c) for c in clients_per_programme]
        )
        if len(cpp) != programmes or min(cpp) < 1:
            raise SpecError("clients_per_programme must be positive, one per programme")
        clients = [(p, c) for p in range(programmes) for c in range(cpp[p])]
        n_cl = len(clients)
        last = np.full(n_cl, K)  # number of occasions observed
        if hazard is not None:
            hz = np.broadcast_to(np.asarray(hazard, float), (K - 1,))
            for i in range(n_cl):
                for k in range(1, K):
                    if rng.random() < hz[k - 1]:
                        last[i] = k
                        break
        elif dropout > 0:
            if not 0 <= dropout <= 1:
                raise SpecError("dropout must lie in [0, 1]")
            n_drop = int(round(dropout * n_cl))
            who = rng.choice(n_cl, size=n_drop, replace=False)
            # drop out from occasion 2..K: last observed occasion 1..K-1
            last[who] = rng.integers(1, K, size=n_drop)
        rows = []
        treat = set(treat_programmes or [])
        for i, (p, c) in enumerate(clients):
            for k in range(last[i]):
                if k > 0 and mcar > 0 and rng.random() < mcar:
                    continue
                row = {
                    "programme": f"P{p + 1}",
                    "client": f"P{p + 1}_C{c + 1:02d}",
                    "occasion": k + 1,
                    "time": weeks[k],
                }
                if treat_programmes is not None:
                    row["treat"] = int((p + 1) in treat)
                rows.append(row)
        plan = dict(
            programmes=programmes,
            clients_per_programme=clients_per_programme
            if np.isscalar(clients_per_programme)
            else list(clients_per_programme),
            weeks=list(weeks),
            dropout=dropout,
            hazard=None
            if hazard is None
            else (float(hazard) if np.isscalar(hazard) else list(hazard)),
            mcar=mcar,
            treat_programmes=None if treat_programmes is None else list(treat_programmes),
            rng=seed,
        )
        return cls(layout=pd.DataFrame(rows), plan=plan, **design)

    def replace(self, **changes: Any) -> GrowthDesign:
        """A copy with fields, plan arguments or ``fixed:<name>`` values changed."""
        fields = {f.name for f in dataclasses.fields(self)}
        direct = {k: v for k, v in changes.items() if k in fields}
        fixed_ch = {k.split(":", 1)[1]: v for k, v in changes.items() if k.startswith("fixed:")}
        plan_ch = {
            k: v for k, v in changes.items() if k not in fields and not k.startswith("fixed:")
        }
        if "seed" in plan_ch:
            warnings.warn("GrowthDesign.replace(): seed= is deprecated and will be removed in "
                          "the next release; use rng=", FutureWarning, stacklevel=2)
            plan_ch["rng"] = plan_ch.pop("seed")
        if fixed_ch:
            direct["fixed"] = {**self.fixed, **{_fixed_key(k): v for k, v in fixed_ch.items()}}
        if plan_ch:
            if self.plan is None:
                raise SpecError(
                    f"cannot vary {sorted(plan_ch)}: the design was not built with GrowthDesign.planned"
                )
            kw = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
            kw.pop("layout")
            kw.pop("plan")
            kw.update(direct)
            return GrowthDesign.planned(**{**self.plan, **plan_ch}, **kw)
        return dataclasses.replace(self, **direct)

    # ------------------------------------------------------------------
    def fixed_matrix(self) -> tuple[np.ndarray, list[str]]:
        """Fixed-effects model matrix of ``formula`` on the layout.

        The formula is parsed by :mod:`effectstudy.multilevel.design` (never
        evaluated as code); coefficient names are patsy's.
        """
        rhs = self.formula.split("~", 1)[-1] if isinstance(self.formula, str) else self.formula
        try:
            X = design_matrix(rhs, self.layout, NA_action="raise")
        except ModelError as exc:
            raise SpecError(f"cannot build the fixed part of the formula: {exc.message}",
                            column=exc.column) from exc
        return np.asarray(X.matrix, dtype=float), [_fixed_key(c) for c in X.column_names]

    def fixed_names(self) -> list[str]:
        return self.fixed_matrix()[1]

    def analysis_formula(self) -> str:
        """The lme4 formula of the analysis model (as :func:`effectstudy.multilevel.fit` takes).

        ``formula`` plus ``(1 | programme)`` (if ``sd_programme > 0``) and
        ``(1 + time | client)`` (``(1 | client)`` if ``sd_slope == 0``).
        """
        lhs, _, rhs = self.formula.rpartition("~")
        response = lhs.strip() or "y"
        parts = [rhs.strip()]
        if self.sd_programme > 0:
            parts.append(f"(1 | {self.programme})")
        slope = f"1 + {self.time}" if self.sd_slope > 0 else "1"
        parts.append(f"({slope} | {self.client})")
        return f"{response} ~ " + " + ".join(parts)

    def model(self) -> FastLMM:
        """The fast REML engine for :meth:`analysis_formula` on the layout."""
        try:
            return FastLMM.from_lme4_formula(self.analysis_formula(), self.layout)
        except ModelError as exc:
            raise SpecError(f"cannot build the analysis model: {exc.message}",
                            column=exc.column) from exc

    def random_terms(self) -> list[RandomTerm]:
        """The random-effect terms of the analysis model (built from its formula)."""
        return self.model().terms

    def true_covariances(self) -> list[np.ndarray]:
        covs = []
        if self.sd_programme > 0:
            covs.append(np.array([[self.sd_programme**2]]))
        if self.sd_slope > 0:
            c = self.cor_intercept_slope * self.sd_intercept * self.sd_slope
            covs.append(np.array([[self.sd_intercept**2, c], [c, self.sd_slope**2]]))
        else:
            covs.append(np.array([[self.sd_intercept**2]]))
        return covs

    @property
    def sd_total(self) -> float:
        """Total outcome SD at time 0 (all variance components)."""
        return float(np.sqrt(self.sd_programme**2 + self.sd_intercept**2 + self.sd_residual**2))

    @property
    def duration(self) -> float:
        t = self.layout[self.time]
        return float(t.max() - t.min())

    def standardised_effect(self, term: str | None = None) -> float:
        """Feingold (2009) d of a slope coefficient: ``beta * duration / sd_total``."""
        b = self.fixed.get(_fixed_key(term or self.test_term), 0.0)
        return float(b) * self.duration / self.sd_total

    def with_standardised_effect(self, d: float, term: str | None = None) -> GrowthDesign:
        """A copy whose slope coefficient gives Feingold's (2009) standardised effect ``d``.

        ``beta = d * sd_total / duration`` with ``sd_total`` the total outcome SD
        at time 0 and ``duration`` the time span of the layout. Never derive
        ``d`` from observed data ("observed power"); take it from the literature
        or the smallest effect of clinical interest.
        """
        name = _fixed_key(term or self.test_term)
        beta = float(d) * self.sd_total / self.duration
        return self.replace(**{f"fixed:{name}": beta})

    def simulation_engine(self) -> _GrowthEngine:
        """The machinery :func:`~effectstudy.power.simulate` runs (built in each worker)."""
        return _GrowthEngine(self)

    def test_description(self) -> str:
        ddf = "Satterthwaite" if self.ddf == "satterthwaite" else "Kenward-Roger"
        return f"t-test of {self.test_term} = 0 ({ddf} df), REML"

    def test_code(self) -> dict[str, str]:
        """The test of :meth:`test_description` as a code and its fields, for reports in
        other languages: ``{"code": "growth_t", "term": ..., "ddf": ...}`` (``ddf`` is
        ``satterthwaite`` or ``kenward-roger``)."""
        return {"code": "growth_t", "term": str(self.test_term), "ddf": str(self.ddf)}

    def describe(self) -> dict:
        lay = self.layout
        return {
            "n_obs": len(lay),
            "n_programmes": lay[self.programme].nunique(),
            "n_clients": lay[self.client].nunique(),
            "test_term": self.test_term,
            "ddf": self.ddf,
            "d_feingold": self.standardised_effect(),
        }


# parameters of the reference power designs (see ``reference_design``)
_REFERENCE: dict[str, dict[str, Any]] = {
    "A": dict(
        formula="y ~ time",
        fixed={"Intercept": 50, "time": -0.10},
        sd_slope=0.15,
        test_term="time",
        ddf="satterthwaite",
    ),
    "B": dict(
        formula="y ~ time * treat",
        fixed={"Intercept": 50, "time": -0.05, "treat": 0, "time:treat": -0.15},
        sd_slope=0.15,
        test_term="time:treat",
        ddf="satterthwaite",
    ),
    "C": dict(
        formula="y ~ time",
        fixed={"Intercept": 50, "time": -0.15},
        sd_slope=0.0,
        test_term="time",
        ddf="kenward-roger",
    ),
}


def reference_design(which: str, layout: pd.DataFrame) -> GrowthDesign:
    """Reference power design A, B or C (simr reference) on ``layout``.

    ``layout`` is the design file ``data/power_design_<which>.csv`` of the
    multilevel reference (README of ``reference/multilevel``, section
    ``expected_power.csv``):

    - **A**: ``y ~ time + (1|programme) + (1+time|client)``, intercept 50,
      slope -0.10 per week; SDs programme 2, client intercept 6, client slope
      0.15, correlation -0.3, residual 5; the time slope is tested with
      Satterthwaite.
    - **B**: the same random part, ``y ~ time*treat`` with time -0.05 and
      time:treat -0.15; time:treat is tested with Satterthwaite.
    - **C**: ``y ~ time + (1|programme) + (1|client)``, slope -0.15, SDs 2, 6
      and 5; tested with Kenward-Roger.
    """
    if which not in _REFERENCE:
        raise SpecError(f"reference design must be 'A', 'B' or 'C', not {which!r}")
    spec = _REFERENCE[which]
    return GrowthDesign(
        layout=layout,
        formula=spec["formula"],
        fixed=dict(spec["fixed"]),
        sd_programme=2.0,
        sd_intercept=6.0,
        sd_slope=spec["sd_slope"],
        cor_intercept_slope=-0.3,
        sd_residual=5.0,
        test_term=spec["test_term"],
        ddf=spec["ddf"],
        name=which,
    )


class _GrowthEngine:
    """Prepared simulation machinery for one design (built in each worker)."""

    def __init__(self, design: GrowthDesign) -> None:
        self.design = design
        self.model = design.model()
        self.X = X = self.model.X
        self.names = names = [_fixed_key(c) for c in self.model.fixed_names or []]
        self.terms = self.model.terms
        self.beta = np.array([design.fixed.get(nm, 0.0) for nm in names])
        self.mu = X @ self.beta
        self.covs = design.true_covariances()
        self.chols = [np.linalg.cholesky(c) for c in self.covs]
        self.theta0 = self.model.theta_from_cov(self.covs, design.sd_residual)
        self.L = np.zeros(len(names))
        self.L[names.index(_fixed_key(design.test_term))] = 1.0
        self.kr = design.ddf == "kenward-roger"

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One simulated response vector."""
        y = self.mu.copy()
        for t, ch in zip(self.terms, self.chols, strict=True):
            b = rng.standard_normal((t.n_groups, t.r)) @ ch.T
            y += np.einsum("ij,ij->i", t.cols, b[t.groups])
        y += self.design.sd_residual * rng.standard_normal(len(y))
        return y

    def replicate(self, rng: np.random.Generator) -> dict:
        y = self.draw(rng)
        out = {
            "estimate": np.nan,
            "se": np.nan,
            "df": np.nan,
            "t": np.nan,
            "p": np.nan,
            "p_wald_z": np.nan,
            "df_satterthwaite": np.nan,
            "converged": False,
            "singular": False,
            "failed": True,
            "message": "",
        }
        try:
            fit = self.model.fit(self.model.stats(y), start=self.theta0)
            r = self.model.contrast_tests(fit, self.L, satterthwaite=True, kr=self.kr)
        except Exception as exc:  # counted, never silently dropped
            out["message"] = f"{type(exc).__name__}: {exc}"
            return out
        se = r["se_kr"] if self.kr else r["se"]
        df = r["df_kr"] if self.kr else r["df_satterthwaite"]
        t = r["estimate"] / se
        out.update(
            estimate=r["estimate"],
            se=se,
            df=df,
            t=t,
            p=float(2 * stats.t.sf(abs(t), df)) if np.isfinite(df) else np.nan,
            p_wald_z=float(2 * stats.norm.sf(abs(r["estimate"] / r["se"]))),
            df_satterthwaite=r["df_satterthwaite"],
            converged=fit.converged,
            singular=fit.singular,
            failed=not (fit.converged and np.isfinite(t) and np.isfinite(df)),
            message=fit.message,
        )
        return out

    def run_chunk(self, seeds, alpha: float) -> pd.DataFrame:
        """Replicates for a list of SeedSequences (one generator each)."""
        rows = [self.replicate(np.random.default_rng(s)) for s in seeds]
        return pd.DataFrame(rows)
