"""Per-case effect sizes for single-case experimental designs (SCED).

Non-overlap indices (NAP, Tau, Tau-BC, Tau-U, IRD, PND, PEM, PAND) and
parametric indices (within-case SMD, LRRd/LRRi, LRM, LOR, PoGO) for the
comparison of a baseline phase A with a treatment phase B of one case.

The definitions, standard errors and confidence intervals follow the R package
SingleCaseES 0.7.4 (Pustejovsky, Chen & Swan) -- the package that the reference
values in ``shared/reference/sced`` were computed with -- and, for the Tau-U
variants, Tarlow's baseline-corrected tau and the ``overlap()`` table, the R
package scan 0.67.1 (Wilbert & Lueke). The code here is an independent
implementation from the papers and the packages' documentation.

Three levels of API:

* one function per index on two arrays (``nap(baseline, treatment, ...)``,
  ``tau``, ``tau_bc``, ``tau_u``, ``ird``, ``pnd``, ``pem``, ``pand``, ``smd``,
  ``lrrd``, ``lrri``, ``lrm``, ``lor``, ``pogo``), each returning an
  :class:`EffectSize` (frozen dataclass; ``to_frame()``, notebook HTML);
* :func:`effect_sizes` -- a tidy table (one row per case and measure) from a
  long DataFrame;
* :func:`batch_effect_sizes` -- as SingleCaseES ``batch_calc_ES``: effect sizes
  per case and phase pair, optionally averaged over phase pairs
  (``aggregate=``, ``weighting='equal'`` or ``'1/V'``);

plus :func:`overlap` (scan's ``overlap()`` table), :func:`tau_u_table` and
:func:`corrected_tau` (scan's ``tau_u()`` and ``corrected_tau()``).

Layout: this module holds the DataFrame API (series parsed by
:mod:`effectstudy.sced._series`, cases carried as a small ``_Case`` dataclass);
the per-index functions live in :mod:`effectstudy.sced.indices` (re-exported
here), the vectorised cores in :mod:`effectstudy.sced._es_cores`, the dispatch
from measure names to cores in :mod:`effectstudy.sced._es_dispatch`, R's
``uniroot`` in :mod:`effectstudy.sced._rootfind` and the R-like numerical
helpers in :mod:`effectstudy.sced._numeric`.

``improvement='decrease'`` means that lower values in phase B are therapeutic
improvements; the indices are then oriented exactly as in SingleCaseES: values
above the null value indicate improvement for all of them except LRRd, whose
negative values are improvements by definition (Pustejovsky 2018). Option
names are SingleCaseES's argument names in snake case (``SE`` -> ``se``,
``Kendall`` -> ``kendall``; keys are case-insensitive).

Reference check: ``tests/sced/test_effect_sizes_reference.py`` reproduces
every row of ``expected_singlecasees.csv``, ``expected_singlecasees_batch.csv``
and ``expected_scan_overlap.csv`` to 1e-6 relative (R's ``uniroot``
tolerance, the *Kendall* package's single precision and ``lm()``'s QR are
emulated where the reference depends on them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.errors import DataError
from effectstudy.sced._es_cores import (
    row2d,
    v_pand,
)
from effectstudy.sced._es_dispatch import compute_group, plan_measures
from effectstudy.sced._numeric import NAN, safe_div, safe_sqrt, sample_var, zcrit
from effectstudy.sced._series import CaseSeries, case_series
from effectstudy.sced._tau import corrected_tau as scan_corrected_tau
from effectstudy.sced._tau import lm_line
from effectstudy.sced._tau import tau_u_table as scan_tau_u_table
from effectstudy.sced.indices import (
    EffectSize,
    TauUResult,
    corrected_tau,
    ird,
    lor,
    lrm,
    lrrd,
    lrri,
    nap,
    pand,
    pem,
    pnd,
    pogo,
    smd,
    tau,
    tau_bc,
    tau_u,
    tau_u_table,
)

__all__ = [
    "EffectSize",
    "TauUResult",
    "MEASURES",
    "effect_sizes",
    "batch_effect_sizes",
    "overlap",
    "nap",
    "tau",
    "tau_bc",
    "tau_u",
    "tau_u_table",
    "corrected_tau",
    "ird",
    "pnd",
    "pem",
    "pand",
    "smd",
    "lrrd",
    "lrri",
    "lrm",
    "lor",
    "pogo",
]

#: Measure names produced by :func:`effect_sizes`, in output order.
MEASURES: tuple[str, ...] = (
    "NAP",
    "IRD",
    "PND",
    "PEM",
    "PAND",
    "Tau",
    "Tau_BC",
    "Tau_U",
    "SMD",
    "LRRd",
    "LRRi",
    "Pct_Change_d",
    "Pct_Change_i",
    "LRM",
    "LOR",
    "PoGO",
)


def _overlap_row(
    a: np.ndarray, b: np.ndarray, mt_a: np.ndarray, mt_b: np.ndarray, decreasing: bool
) -> dict[str, float]:
    """One case of scan's ``overlap()`` table (percentages as in scan)."""
    out: dict[str, float] = {}
    sa, sb = (-a, -b) if decreasing else (a, b)
    out["PND"] = 100 * float(np.mean(sb > sa.max()))
    out["PEM"] = 100 * float(np.mean(sb > np.median(sa)))
    # PET: B points beyond the OLS baseline trend (values ~ mt) extrapolated to B.
    if a.size >= 2 and np.unique(mt_a).size >= 2:
        intercept, slope = lm_line(mt_a, a)
        fit = intercept + slope * mt_b
        out["PET"] = 100 * float(np.mean(b < fit if decreasing else b > fit))
    else:
        out["PET"] = NAN
    q = (sb[None, :] > sa[:, None]) + 0.5 * (sb[None, :] == sa[:, None])
    nap_ = float(q.mean())
    out["NAP"] = nap_ * 100
    out["NAP rescaled"] = 2 * (nap_ * 100) - 100
    # PAND, sort method (Parker et al. 2007 algorithm without randomisation)
    values = np.concatenate([a, b])
    phase = np.concatenate([np.zeros(a.size), np.ones(b.size)])
    if decreasing:
        order = np.lexsort((-phase, -values))
    else:
        order = np.lexsort((phase, values))
    sorted_phase = phase[order]
    out["PAND"] = 100 * float(np.mean(sorted_phase == phase))
    m, n = a.size, b.size
    p_min = float(v_pand(*row2d(sa, sb))[0])
    out["IRD"] = 1 - ((m + n) ** 2 / (2 * m * n)) * (1 - p_min)
    with np.errstate(all="ignore"):
        tab = scan_tau_u_table(a, b, "complete", "b", False, 0.95)
        out["Tau_U(A)"] = float(tab["Tau"][3])
        out["Tau_U(BA)"] = float(tab["Tau"][5])
        ct = scan_corrected_tau(a, b, mt_a, mt_b, 0.05, "b", False)
    out["Base_Tau"] = float(ct["selected"]["tau"])
    ma, mb = float(a.mean()), float(b.mean())
    sda, sdb = safe_sqrt(sample_var(a)), safe_sqrt(sample_var(b))
    out["Diff_mean"] = mb - ma
    out["SMD"] = safe_div(mb - ma, sda)
    sd_hg = safe_sqrt(safe_div((m - 1) * sda**2 + (n - 1) * sdb**2, m + n - 2))
    out["Hedges_g"] = safe_div(mb - ma, sd_hg) * (1 - safe_div(3, 4 * (m + n) - 9))

    def _ols_slope(y: np.ndarray, x: np.ndarray) -> float:
        if y.size < 2 or np.unique(x).size < 2:
            return NAN
        x = x - x[0] + 1
        xm = x.mean()
        return float(np.sum((x - xm) * (y - y.mean())) / np.sum((x - xm) ** 2))

    out["Diff_trend"] = _ols_slope(b, mt_b) - _ols_slope(a, mt_a)
    return out


_OVERLAP_COLS = (
    "PND",
    "PEM",
    "PET",
    "NAP",
    "NAP rescaled",
    "PAND",
    "IRD",
    "Tau_U(A)",
    "Tau_U(BA)",
    "Base_Tau",
    "Diff_mean",
    "Diff_trend",
    "SMD",
    "Hedges_g",
)


_ESTIMATOR_OPTIONS: dict[str, tuple[str, ...]] = {
    "NAP": ("se",),
    "Tau": ("se",),
    "Tau_BC": ("se", "kendall", "pretest_trend"),
    "Tau_U": ("method", "tau_method", "continuity_correction"),
    "IRD": (),
    "PND": (),
    "PEM": (),
    "PAND": (),
    "SMD": ("std_dev", "bias_correct"),
    "LRRd": ("scale", "observation_length", "intervals", "d_const", "bias_correct", "pct_change"),
    "LRRi": ("scale", "observation_length", "intervals", "d_const", "bias_correct", "pct_change"),
    "LRM": ("delta_method",),
    "LOR": ("scale", "intervals", "d_const", "bias_correct"),
    "PoGO": ("goal",),
}


_KNOWN_OPTIONS = frozenset(o for opts in _ESTIMATOR_OPTIONS.values() for o in opts)


_MEASURE_ALIASES = {m.lower().replace("-", "_"): m for m in MEASURES}


_MEASURE_ALIASES.update(
    {
        "tau_u": "Tau_U",
        "tau_bc": "Tau_BC",
        "pct_change_d": "Pct_Change_d",
        "pct_change_i": "Pct_Change_i",
    }
)


def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    opts = {}
    for key, value in options.items():
        k = key.lower()
        if k not in _KNOWN_OPTIONS:
            raise DataError(f"unknown option {key!r}; known options are {sorted(_KNOWN_OPTIONS)}")
        opts[k] = value
    if "se" in opts and opts["se"] is not None:
        opts["se"] = str(opts["se"]).lower()
    return opts


def _resolve_measures(measures: str | Iterable[str] | None, has_goal: bool) -> list[str]:
    if measures is None:
        out = [m for m in MEASURES if m not in ("Pct_Change_d", "Pct_Change_i")]
        if not has_goal:
            out.remove("PoGO")
        return out
    if isinstance(measures, str):
        measures = [measures]
    out = []
    for m in measures:
        key = _MEASURE_ALIASES.get(str(m).lower().replace("-", "_"))
        if key is None:
            raise DataError(f"unknown measure {m!r}; choose from {list(MEASURES)}")
        if key not in out:
            out.append(key)
    return out


def _columns(data: pd.DataFrame, names: Sequence[str | None]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")
    missing = [c for c in names if c is not None and c not in data.columns]
    if missing:
        raise DataError(f"column(s) not found in data: {missing}")


def _numeric(data: pd.DataFrame, column: str) -> np.ndarray:
    try:
        return pd.to_numeric(data[column], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError("column must be numeric", column=column) from exc


def _split(
    s: CaseSeries, baseline_phase: Any, treatment_phase: Any, phase: str, outcome: str
) -> tuple[np.ndarray, ...]:
    """Baseline/treatment arrays of one parsed case (sorted by session), NaN outcomes dropped."""
    where = s.label
    key = str(s.case)
    is_a = s.phase == baseline_phase
    is_b = s.phase == treatment_phase
    if not is_a.any():
        raise DataError(
            f"{where}: no observations in baseline phase {baseline_phase!r}", key=key, column=phase
        )
    if not is_b.any():
        raise DataError(
            f"{where}: no observations in treatment phase {treatment_phase!r}",
            key=key,
            column=phase,
        )
    sess, y = s.session, s.outcome
    if sess[is_a].max() > sess[is_b].min():
        raise DataError(
            f"{where}: phases out of order (a baseline session follows a treatment session); "
            "split phase pairs (e.g. ABAB) into separate series or use batch_effect_sizes(aggregate=...)",
            key=key,
            column=phase,
        )
    a, sa = y[is_a], sess[is_a]
    b, sb = y[is_b], sess[is_b]
    ka, kb = ~np.isnan(a), ~np.isnan(b)
    if not ka.any():
        raise DataError(f"{where}: all baseline outcomes are missing", key=key, column=outcome)
    if not kb.any():
        raise DataError(f"{where}: all treatment outcomes are missing", key=key, column=outcome)
    return a[ka], b[kb], sa[ka], sb[kb]


def _per_case_value(values: np.ndarray, option: str) -> Any:
    """SingleCaseES semantics for per-row option columns: mode for text, mean for numbers."""
    vals = pd.Series(values).dropna()
    if vals.empty:
        return None
    if option in ("improvement", "scale", "std_dev", "se", "method", "tau_method"):
        return vals.astype(str).value_counts().index[0]
    return float(pd.to_numeric(vals).mean())


@dataclass(frozen=True)
class _Case:
    """One case ready for the effect-size cores."""

    key: Any
    baseline: np.ndarray
    treatment: np.ndarray
    baseline_sessions: np.ndarray
    treatment_sessions: np.ndarray
    improvement: str
    options: dict[str, Any]


def _prepared_cases(
    data: pd.DataFrame,
    case: str | None,
    phase: str,
    session: str,
    outcome: str,
    baseline_phase: Any,
    treatment_phase: Any,
    improvement: str,
    opts: Mapping[str, Any],
    case_options: Mapping[str, str],
) -> list[_Case]:
    """Every case parsed by :func:`effectstudy.sced._series.case_series`, with its options."""
    _columns(data, [case, phase, session, outcome, *case_options.values()])
    _numeric(data, session)
    _numeric(data, outcome)
    series = case_series(data, case=case, phase=phase, session=session, outcome=outcome,
                         require_outcome=False, phases=(baseline_phase, treatment_phase))
    rows = {None: data} if case is None else {
        (k.item() if isinstance(k, np.generic) else k): g
        for k, g in data.groupby(case, sort=False)
    }
    cases = []
    for s in series:
        a, b, sa, sb = _split(s, baseline_phase, treatment_phase, phase, outcome)
        case_opts = dict(opts)
        imp = improvement
        for opt, col in case_options.items():
            val = _per_case_value(rows[s.case][col].to_numpy(dtype=object), opt)
            if opt == "improvement":
                imp = val if val is not None else improvement
            elif val is not None:
                case_opts[opt.lower()] = val
        if imp not in ("increase", "decrease"):
            raise DataError(
                f"case {s.case!r}: improvement must be 'increase' or 'decrease', not {imp!r}",
                key=str(s.case),
            )
        cases.append(_Case(s.case, a, b, sa, sb, imp, case_opts))
    return cases


def effect_sizes(
    data: pd.DataFrame,
    *,
    outcome: str,
    session: str,
    phase: str,
    case: str | None = None,
    baseline_phase: Any = "A",
    treatment_phase: Any = "B",
    improvement: str = "increase",
    measures: str | Iterable[str] | None = None,
    confidence: float | None = 0.95,
    case_options: Mapping[str, str] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Per-case SCED effect sizes in a tidy table.

    Parameters
    ----------
    data : DataFrame
        Long format: one row per measurement occasion.
    case, phase, session, outcome : str
        Column names. ``case=None`` treats the whole frame as one case. Within a
        case, rows are ordered by ``session``; missing outcomes are dropped.
    baseline_phase, treatment_phase :
        Labels of phase A and phase B in ``phase``; other phases are ignored.
    improvement : {"increase", "decrease"}
        Direction of therapeutic improvement.
    measures : str or list of str, optional
        Any of :data:`MEASURES`. Default: all except the Pct_Change rows, and
        PoGO only when ``goal`` is given. ``Pct_Change_d``/``_i`` rows come with
        LRRd/LRRi when ``pct_change=True`` or when requested by name.
    confidence : float or None
        Confidence level (None: no intervals).
    case_options : mapping, optional
        Option name -> column holding per-case values (e.g.
        ``{"improvement": "direction", "scale": "metric", "intervals":
        "n_intervals"}``). Text options take the most frequent value in the case,
        numbers the mean (SingleCaseES batch semantics).
    **options
        SingleCaseES argument names in snake case: ``se`` ('unbiased',
        'hanley', 'null'), ``std_dev`` ('baseline', 'pool'), ``bias_correct``,
        ``scale`` ('count', 'rate', 'percentage', 'proportion', 'other'),
        ``observation_length``, ``intervals``, ``d_const``, ``goal``,
        ``pretest_trend`` (a level or False), ``kendall``, ``pct_change``,
        ``delta_method`` (LRM), and for Tau-U ``method`` ('parker', 'complete',
        'tarlow'), ``tau_method`` ('a', 'b'), ``continuity_correction``. An
        option that a measure does not take is ignored for that measure; an
        unknown option raises :class:`~effectstudy.errors.DataError`.

    Returns
    -------
    DataFrame
        Columns ``case, measure, estimate, se, ci_lower, ci_upper`` (NaN where
        undefined).

    Raises
    ------
    DataError
        Unknown option/measure, bad option value, missing columns, or a case
        whose series cannot be analysed (missing phase, phases out of order,
        duplicated sessions, all outcomes missing) -- the message names the
        case.

    Notes
    -----
    Definitions, SEs and intervals are those of SingleCaseES 0.7.4 (see the
    per-index functions: :func:`nap`, :func:`tau`, :func:`tau_bc`,
    :func:`tau_u`, :func:`ird`, :func:`pnd`, :func:`pem`, :func:`pand`,
    :func:`smd`, :func:`lrrd`, :func:`lrri`, :func:`lrm`, :func:`lor`,
    :func:`pogo`). Tau_U: without a ``method`` option the row is SingleCaseES's
    ``Tau_U`` (Parker et al. 2011; estimate only, SE/CI NaN); with
    ``method=`` the scan variant and its SE (Tau / Z) and Fisher-z interval.
    LOR is NaN unless ``scale`` is a percentage or proportion.

    Degenerate but analysable series give defined values following
    SingleCaseES: a constant series gives NAP 0.5, Tau 0, PND 0 and a NaN SMD
    (0/0); zero baseline variance gives an infinite SMD; an all-zero baseline
    gives finite LRRs through the truncated mean 1/(2Dn) (LRM is then
    infinite: log of 0); a one-point phase gives the non-overlap estimates and
    NaN where a variance (or the Theil-Sen slope of Tau-BC) needs two points.
    NaN outcomes are dropped.

    Cases with equal phase lengths, direction and options are computed
    together with NumPy (1,000 cases of 20 + 20 points in well under a
    second; ``benchmarks/sced_effect_sizes.py``).
    """
    opts = _check_options(options)
    case_options = dict(case_options or {})
    for key in case_options:
        if key != "improvement" and key.lower() not in _KNOWN_OPTIONS:
            raise DataError(f"unknown option {key!r} in case_options")
    if improvement not in ("increase", "decrease"):
        raise DataError(f"improvement must be 'increase' or 'decrease', not {improvement!r}")
    has_goal = opts.get("goal") is not None or "goal" in case_options
    wanted = _resolve_measures(measures, has_goal)
    zcrit(confidence)
    cases = _prepared_cases(
        data,
        case,
        phase,
        session,
        outcome,
        baseline_phase,
        treatment_phase,
        improvement,
        opts,
        case_options,
    )
    # stack cases with equal phase lengths, direction and options
    groups: dict[tuple, list[int]] = {}
    for pos, c in enumerate(cases):
        sig = (c.baseline.size, c.treatment.size, c.improvement,
               tuple(sorted((k, repr(v)) for k, v in c.options.items())))
        groups.setdefault(sig, []).append(pos)
    results: list[list[tuple[str, float, float, float, float]]] = [[] for _ in cases]
    for members in groups.values():
        first = cases[members[0]]
        A = np.vstack([cases[i].baseline for i in members])
        B = np.vstack([cases[i].treatment for i in members])
        plan = plan_measures(wanted, first.options)
        try:
            out = compute_group(A, B, first.improvement, plan, first.options, confidence)
        except DataError as exc:
            names = ", ".join(repr(cases[i].key) for i in members[:3])
            more = " ..." if len(members) > 3 else ""
            raise DataError(f"case {names}{more}: {exc.message}", key=str(first.key)) from exc
        for measure, r in out:
            cols = [r["estimate"], r["se"], r["ci_lower"], r["ci_upper"]]
            for j, pos in enumerate(members):
                results[pos].append((measure, *(float(c[j]) for c in cols)))
    rows = [(cases[pos].key, *vals) for pos in range(len(cases)) for vals in results[pos]]
    return pd.DataFrame(rows, columns=["case", "measure", "estimate", "se", "ci_lower", "ci_upper"])


def batch_effect_sizes(
    data: pd.DataFrame,
    *,
    outcome: str,
    session: str,
    phase: str,
    case: str | Sequence[str] | None = None,
    baseline_phase: Any = "A",
    treatment_phase: Any = "B",
    improvement: str = "increase",
    aggregate: str | None = None,
    weighting: str = "equal",
    measures: str | Iterable[str] | None = None,
    confidence: float | None = 0.95,
    case_options: Mapping[str, str] | None = None,
    **options: Any,
) -> pd.DataFrame:
    r"""Effect sizes per case and phase pair, averaged over pairs (SingleCaseES ``batch_calc_ES``).

    Each (case, ``aggregate``) group (e.g. the phase pairs of an ABAB design)
    is analysed as one A-B series with :func:`effect_sizes`; the estimates of a
    case are then averaged over its groups with weights :math:`w_k = 1`
    (``weighting="equal"``) or :math:`w_k = 1/SE_k^2` (``"1/V"``):
    :math:`\hat\theta = \sum w_k\hat\theta_k / \sum w_k`,
    :math:`SE = \sqrt{\sum w_k^2 SE_k^2} / \sum w_k`, Wald interval. Indices
    without an SE (PND, Tau-U, ...) get an equal-weight mean and NaN SE under
    "equal" and NaN under "1/V", as in SingleCaseES.

    Parameters
    ----------
    case : str or list of str, optional
        Column(s) identifying a series (e.g. ``["behavior", "student"]``); the
        output ``case`` is the values joined by ``"|"`` (``"ALL"`` when
        ``case=None``: the whole frame is one series).
    aggregate : str, optional
        Column numbering the phase pairs. None: no aggregation (one result per
        case, as :func:`effect_sizes`).
    weighting : {"equal", "1/V"}

    Other parameters are as in :func:`effect_sizes`.

    Returns
    -------
    DataFrame
        ``case, measure, estimate, se, ci_lower, ci_upper``; ``case`` is the
        ``case`` column values joined by ``"|"``. With ``aggregate=None`` each
        case must be a single A-B series (include the phase-pair column in
        ``case`` to get one row set per pair).
    """
    if weighting not in ("equal", "1/V"):
        raise DataError(f"weighting must be 'equal' or '1/V', not {weighting!r}")
    keys = [] if case is None else [case] if isinstance(case, str) else list(case)
    missing = [
        c
        for c in [*keys, phase, session, outcome, *([aggregate] if aggregate else [])]
        if c not in data.columns
    ]
    if missing:
        raise DataError(f"column(s) not found in data: {missing}")
    frame = data.copy()
    frame["__case__"] = frame[keys].astype(str).agg("|".join, axis=1) if keys else "ALL"
    group_cols = ["__case__"] + ([aggregate] if aggregate else [])
    frame["__series__"] = frame[group_cols].astype(str).agg("\x1f".join, axis=1)
    res = effect_sizes(
        frame,
        case="__series__",
        phase=phase,
        session=session,
        outcome=outcome,
        baseline_phase=baseline_phase,
        treatment_phase=treatment_phase,
        improvement=improvement,
        measures=measures,
        confidence=confidence,
        case_options=case_options,
        **options,
    )
    lookup = frame.drop_duplicates("__series__").set_index("__series__")
    res["__case__"] = lookup.loc[res["case"], "__case__"].to_numpy()
    if aggregate is None:
        res["case"] = res["__case__"]
        return res.drop(columns="__case__")
    res[aggregate] = lookup.loc[res["case"], aggregate].to_numpy()
    z = zcrit(confidence)
    out = []
    for (key, measure), grp in res.groupby(["__case__", "measure"], sort=False):
        est = grp["estimate"].to_numpy(dtype=float)
        se = grp["se"].to_numpy(dtype=float)
        w = np.ones_like(est) if weighting == "equal" else 1 / se**2
        with np.errstate(divide="ignore", invalid="ignore"):
            e = float(np.sum(est * w) / np.sum(w))
            s = float(np.sqrt(np.sum(w**2 * se**2)) / np.sum(w))
        out.append(
            {
                "case": key,
                "measure": measure,
                "estimate": e,
                "se": s,
                "ci_lower": e - z * s if confidence is not None else NAN,
                "ci_upper": e + z * s if confidence is not None else NAN,
            }
        )
    return pd.DataFrame(out, columns=["case", "measure", "estimate", "se", "ci_lower", "ci_upper"])


def overlap(
    data: pd.DataFrame,
    *,
    outcome: str,
    session: str,
    phase: str,
    case: str | None = None,
    baseline_phase: Any = "A",
    treatment_phase: Any = "B",
    improvement: str = "increase",
) -> pd.DataFrame:
    """scan's ``overlap()`` table: one row per case.

    Columns (scan's names): ``PND``, ``PEM`` (ties at the median count 0),
    ``PET`` (percent of B points beyond the OLS baseline trend, Parker et al.
    2011), ``NAP`` and ``NAP rescaled`` (2 NAP - 100), ``PAND`` (sort method of
    Parker, Hagan-Burke & Vannest 2007, without randomisation), ``IRD``,
    ``Tau_U(A)`` and ``Tau_U(BA)`` (rows "A vs. B - Trend A" and "A vs. B +
    Trend B - Trend A" of :func:`tau_u` with ``method="complete"``, tau-b, on
    the raw values), ``Base_Tau`` (:func:`corrected_tau`, raw values),
    ``Diff_mean``, ``Diff_trend`` (difference of OLS slopes on session),
    ``SMD`` (mean difference / baseline SD) and ``Hedges_g`` (pooled SD,
    times 1 - 3/(4N - 9)). PND, PEM, PET, NAP and PAND are percentages (0-100).
    As in scan, only the overlap indices follow ``improvement`` (scan's
    ``decreasing``); Tau-U, Base_Tau and the mean/trend/SMD columns are raw.
    """
    if improvement not in ("increase", "decrease"):
        raise DataError(f"improvement must be 'increase' or 'decrease', not {improvement!r}")
    rows = []
    for c in _prepared_cases(
        data, case, phase, session, outcome, baseline_phase, treatment_phase, improvement, {}, {}
    ):
        row = {"case": c.key}
        row.update(_overlap_row(c.baseline, c.treatment, c.baseline_sessions,
                                c.treatment_sessions, improvement == "decrease"))
        rows.append(row)
    return pd.DataFrame(rows, columns=["case", *_OVERLAP_COLS])
