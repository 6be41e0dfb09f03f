"""Reliable change, clinical significance and pre-post comparisons.

Works on the harmonised long table (columns ``programme, client, occasion,
construct, instrument, scale, raw``) and takes every psychometric number from
the data dictionary: the norm SD and reliability for the reliable change index,
the published clinical cut-off or the norms for the cut-offs a, b and c. A number
without a published source is never used; the affected rows say why they could
not be classified instead.

References
----------
Jacobson N.S. & Truax P. (1991). Clinical significance: a statistical approach to
    defining meaningful change in psychotherapy research. J Consult Clin Psychol 59:12-19.
Christensen L. & Mendoza J.L. (1986). A method of assessing change in a single
    subject: an alteration of the RC index. Behav Ther 17:305-308.
Maassen G.H. (2004). The standard error in the Jacobson and Truax Reliable Change
    Index: the classical approach to the assessment of reliable change. J Int
    Neuropsychol Soc 10:888-893.
Hageman W.J.J.M. & Arrindell W.A. (1999). Establishing clinically significant
    change: increment of precision and the distinction between individual and group
    level of analysis. Behav Res Ther 37:1169-1193.
Lakens D. (2013). Calculating and reporting effect sizes to facilitate cumulative
    science: a practical primer for t-tests and ANOVAs. Front Psychol 4:863.
Borenstein M., Hedges L.V., Higgins J.P.T. & Rothstein H.R. (2009). Introduction to
    Meta-Analysis. Wiley (chapter 4: variance of d for matched groups).
Clopper C.J. & Pearson E.S. (1934). The use of confidence or fiducial limits
    illustrated in the case of the binomial. Biometrika 26:404-413.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy._stats import clopper_pearson
from effectstudy._validate import check_choice, check_confidence
from effectstudy.dictionary import Dictionary, load_dictionary
from effectstudy.errors import DataError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CATEGORIES = ("recovered", "improved", "unchanged", "deteriorated")
RCI_METHODS = ("jacobson-truax", "maassen", "hageman-arrindell")
_KEYS = ["programme", "client", "construct", "instrument", "scale"]


class SmallSampleWarning(UserWarning):
    """A test or estimate rests on so few clients that it can hardly inform."""


# --------------------------------------------------------------------------- #
# Bare formulas
# --------------------------------------------------------------------------- #
def standard_error_difference(sd: float, reliability: float) -> float:
    """Standard error of the difference of two scores (Christensen & Mendoza 1986).

    ``S_diff = sqrt(2 * SE^2)`` with ``SE = sd * sqrt(1 - reliability)``
    (Jacobson & Truax 1991, eq. 2 and the text below it). The one implementation
    in the package: reliable change here and the responder power design of
    :mod:`effectstudy.power` both use it.

    Parameters
    ----------
    sd:
        SD of the scores (normative or baseline), ``> 0``.
    reliability:
        Reliability of the instrument in ``[0, 1)``. ``0`` is allowed (an
        instrument without reliability: ``S_diff = sd * sqrt(2)``); ``1`` is not,
        as it makes every change reliable (``S_diff = 0``).

    Raises
    ------
    DataError
        ``reliability`` outside ``[0, 1)`` or ``sd`` not positive (or not finite).
    """
    try:
        r, s = float(reliability), float(sd)
    except (TypeError, ValueError):
        raise DataError("reliability and SD must be numbers") from None
    if not 0 <= r < 1:
        raise DataError(f"reliability must lie in [0, 1), got {reliability}")
    if not (s > 0 and np.isfinite(s)):
        raise DataError(f"the SD must be positive, got {sd}")
    return float(np.sqrt(2.0) * s * np.sqrt(1.0 - r))


def reliable_change_index(pre, post, *, sd: float, reliability: float) -> np.ndarray:
    """Reliable change index of Jacobson and Truax (1991).

    ``RCI = (post - pre) / S_diff`` with ``S_diff = sqrt(2) * sd * sqrt(1 - r)``.
    ``|RCI| > 1.96`` marks change that measurement error alone would produce in
    fewer than 5% of retests. The sign is that of the raw change; whether it is an
    improvement depends on the scale's direction.

    Parameters
    ----------
    pre, post
        Scores (array-like, same shape).
    sd
        Standard deviation of the scale in the reference population (Jacobson and
        Truax use the pre-treatment or normative SD).
    reliability
        Reliability of the scale (internal consistency or test-retest).
    """
    s_diff = standard_error_difference(sd, reliability)
    return (np.asarray(post, dtype=float) - np.asarray(pre, dtype=float)) / s_diff


def clinical_cutoff(
    *,
    kind: Literal["a", "b", "c"] = "c",
    clinical_mean: float | None = None,
    clinical_sd: float | None = None,
    norm_mean: float | None = None,
    norm_sd: float | None = None,
    better: Literal["higher", "lower"] = "lower",
) -> float:
    """Cut-off a, b or c for clinically significant change (Jacobson & Truax 1991).

    a
        Two SDs beyond the mean of the clinical (dysfunctional) population, in the
        direction of improvement: ``M_clin -/+ 2 SD_clin``.
    b
        Two SDs within the mean of the functional (normative) population:
        ``M_norm +/- 2 SD_norm``.
    c
        The point between the two means weighted by their SDs, where membership of
        either population is equally likely:
        ``(SD_clin * M_norm + SD_norm * M_clin) / (SD_clin + SD_norm)``.

    ``better='lower'`` for symptom scales (a = M_clin - 2 SD_clin, b = M_norm + 2 SD_norm),
    ``'higher'`` for strength scales.
    """
    sign = -1.0 if better == "lower" else 1.0
    if better not in ("lower", "higher"):
        raise DataError(f"better must be 'lower' or 'higher', got {better!r}")
    if kind == "a":
        _require(clinical_mean=clinical_mean, clinical_sd=clinical_sd)
        return float(clinical_mean + sign * 2.0 * clinical_sd)
    if kind == "b":
        _require(norm_mean=norm_mean, norm_sd=norm_sd)
        return float(norm_mean - sign * 2.0 * norm_sd)
    if kind == "c":
        _require(clinical_mean=clinical_mean, clinical_sd=clinical_sd, norm_mean=norm_mean,
                 norm_sd=norm_sd)
        return float((clinical_sd * norm_mean + norm_sd * clinical_mean) / (clinical_sd + norm_sd))
    raise DataError(f"kind must be 'a', 'b' or 'c', got {kind!r}")


def _require(**values: float | None) -> None:
    missing = [k for k, v in values.items() if v is None or not np.isfinite(v)]
    if missing:
        raise DataError(f"cut-off needs {', '.join(missing)}")


def reliable_change_maassen(pre, post, *, sd_pre: float, sd_post: float,
                            reliability: float) -> np.ndarray:
    """RCI with Maassen's (2004) standard error for unequal pre and post variances.

    ``S_diff = sqrt((sd_pre^2 + sd_post^2) * (1 - r))``. Equal to Jacobson-Truax
    when ``sd_pre == sd_post``. Prefer it when treatment changes the spread of the
    scores (common in youth care: some clients improve a lot, others not at all)
    *and* the group is large enough to estimate both SDs (say 20 or more clients);
    with a handful of clients the estimated SDs are too noisy and the
    Jacobson-Truax index with a published SD is the safer choice.
    """
    if not 0 < reliability < 1:
        raise DataError(f"reliability must lie strictly between 0 and 1, got {reliability}")
    s_diff = np.sqrt((sd_pre**2 + sd_post**2) * (1.0 - reliability))
    return (np.asarray(post, dtype=float) - np.asarray(pre, dtype=float)) / s_diff


def reliable_change_hageman_arrindell(pre, post, *, sd_pre: float, sd_post: float,
                                      reliability: float, r_prepost: float) -> np.ndarray:
    """Individual reliable change RC_ID of Hageman and Arrindell (1999).

    Shrinks the observed change towards the group's mean change by the reliability
    of the difference scores::

        r_DD  = (sd_pre^2 r + sd_post^2 r - 2 sd_pre sd_post r_prepost)
                / (sd_pre^2 + sd_post^2 - 2 sd_pre sd_post r_prepost)
        RC_ID = [(post - pre) r_DD + (M_post - M_pre)(1 - r_DD)]
                / sqrt(r_DD (SE_pre^2 + SE_post^2)),   SE_t = sd_t sqrt(1 - r)

    Prefer it when the difference scores are unreliable (pre and post highly
    correlated, or a scale of modest reliability): it corrects the regression to
    the mean that the Jacobson-Truax index ignores. It needs the group's pre-post
    correlation and means, so like Maassen's index it is only stable with enough
    clients; with fewer than about 20 report it beside, not instead of, the
    Jacobson-Truax index.
    """
    pre = np.asarray(pre, dtype=float)
    post = np.asarray(post, dtype=float)
    num = sd_pre**2 * reliability + sd_post**2 * reliability - 2 * sd_pre * sd_post * r_prepost
    den = sd_pre**2 + sd_post**2 - 2 * sd_pre * sd_post * r_prepost
    r_dd = num / den
    if not r_dd > 0:
        raise DataError(f"the reliability of the difference scores is {r_dd:.3f} <= 0; "
                        "RC_ID is undefined")
    se2 = (sd_pre**2 + sd_post**2) * (1.0 - reliability)
    mean_change = np.nanmean(post - pre)
    return ((post - pre) * r_dd + mean_change * (1.0 - r_dd)) / np.sqrt(r_dd * se2)


# --------------------------------------------------------------------------- #
# Per-client table
# --------------------------------------------------------------------------- #
def _pairs(data: pd.DataFrame, pre: str, post: str, constructs: Sequence[str] | None) -> pd.DataFrame:
    need = set(_KEYS) | {"occasion", "raw"}
    missing = need - set(data.columns)
    if missing:
        raise DataError(f"data lacks column(s) {sorted(missing)}; pass the harmonised table")
    d = data[data["occasion"].isin([pre, post])]
    if constructs is not None:
        unknown = set(constructs) - set(data["construct"].unique())
        if unknown:
            raise DataError(f"construct(s) {sorted(unknown)} not in the data")
        d = d[d["construct"].isin(constructs)]
    if "session" in d.columns:
        d = d[d["session"].isna()]
    dup = d.duplicated(_KEYS + ["occasion"], keep=False)
    if dup.any():
        raise DataError(
            f"{int(dup.sum())} rows share client x construct x instrument x occasion at "
            f"{pre!r}/{post!r}; reduce to one score per occasion first")
    wide = d.pivot_table(index=_KEYS, columns="occasion", values="raw", aggfunc="first")
    wide = wide.reindex(columns=[pre, post])
    wide.columns = ["pre", "post"]
    wide = wide.dropna().reset_index()
    # The norm group harmonise applied at the pre occasion (by the client's age), and the age.
    at_pre = d[d["occasion"] == pre]
    for col in ("norm_group", "age"):
        if col in at_pre.columns:
            wide = wide.merge(at_pre[_KEYS + [col]].drop_duplicates(_KEYS), on=_KEYS, how="left")
    return wide


def reliable_change(
    data: pd.DataFrame,
    *,
    pre: str = "intake",
    post: str = "discharge",
    constructs: Sequence[str] | None = None,
    method: Literal["jacobson-truax", "maassen", "hageman-arrindell"] = "jacobson-truax",
    sd: Literal["norm", "sample"] = "norm",
    criterion: float = 1.96,
    dictionary: Dictionary | None = None,
) -> pd.DataFrame:
    """Reliable and clinically significant change per client and construct.

    Parameters
    ----------
    data
        Harmonised long table (:func:`effectstudy.harmonise.harmonise` ``.table``).
    pre, post
        Canonical occasions compared (e.g. ``"intake"`` and ``"discharge"`` or
        ``"follow_up_3m"``). Clients without both are left out.
    constructs
        Restrict to these constructs.
    method
        ``"jacobson-truax"`` (default; Jacobson & Truax 1991), ``"maassen"``
        (Maassen 2004) or ``"hageman-arrindell"`` (Hageman & Arrindell 1999, RC_ID);
        see their functions for when to prefer them.
    sd
        ``"norm"``: the SD of the verified norm group in the dictionary applicable to
        the programme's clients (T-score scales: 10); ``"sample"``: the SD of the
        clients' own pre scores per programme and scale. With ``"norm"`` a scale
        without a verified norm falls back to the sample SD and says so in
        ``sd_source``.
    criterion
        |RCI| above which change counts as reliable (1.96: 95% two-sided).
    dictionary
        Data dictionary (default: the shipped one).

    Returns
    -------
    DataFrame
        One row per client x construct: programme, client, construct, instrument,
        scale, better, pre, post, change, rci, reliable, direction ('improved',
        'deteriorated' or 'none'), clinically_significant, category (recovered,
        improved, unchanged, deteriorated, or 'not assessable'), and the provenance
        of every number: sd, sd_source, reliability, reliability_type,
        reliability_source, cutoff, cutoff_kind, cutoff_source, note. The English
        texts ``sd_source``, ``cutoff_source`` and ``note`` are also given as codes,
        for reports in other languages (:data:`CODE_COLUMNS`): ``note_codes``
        (``;``-joined keys of :data:`NOTES`, in the order of ``note``),
        ``sd_source_code`` (:data:`SD_SOURCES`) with ``sd_source_key`` (the norm's
        reference key), ``cutoff_source_code`` (:data:`CUTOFF_SOURCES`) with
        ``cutoff_source_key`` (the reference key of the published cut-off or of the
        norm mean), and ``norm_used`` (the verified norm group used for the SD or
        the cut-off, as the dictionary names it in English, or empty).

    Notes
    -----
    Category (Jacobson & Truax 1991): *recovered* = reliable improvement and moving
    from the dysfunctional to the functional side of the cut-off; *improved* =
    reliable improvement otherwise; *deteriorated* = reliable worsening;
    *unchanged* = no reliable change. The cut-off is the instrument's published
    clinical cut-off where the dictionary has one (kind 'published'), else c from the
    verified norm and the sample's pre scores, else a from the sample's pre scores
    (the output names which). Reliability must have a published source; otherwise
    the row is 'not assessable' and ``note`` says why.
    """
    method = check_choice("method", method, RCI_METHODS)  # type: ignore[assignment]
    sd = check_choice("sd", sd, ("norm", "sample"))  # type: ignore[assignment]
    dd = dictionary if dictionary is not None else load_dictionary()
    pairs = _pairs(data, pre, post, constructs)
    out = []
    for (prog, inst, scale_id), grp in pairs.groupby(["programme", "instrument", "scale"], sort=True):
        out.append(_classify_group(grp.copy(), dd, prog, inst, scale_id, method, sd, criterion,
                                   pre))
    cols = ["programme", "client", "construct", "instrument", "scale", "better", "pre", "post",
            "change", "rci", "reliable", "direction", "clinically_significant", "category", "sd",
            "sd_source", "reliability", "reliability_type", "reliability_source", "cutoff",
            "cutoff_kind", "cutoff_source", "method", "note", *CODE_COLUMNS]
    if not out:
        return pd.DataFrame(columns=cols)
    return pd.concat(out, ignore_index=True)[cols]


#: The notes of :func:`reliable_change` by code (``note_codes``), in English (``note``).
#: Fields: ``instrument``, ``scale`` and ``method`` of the row.
NOTES = {
    "ages_unknown": "clients' ages unknown: the norm group is assumed to apply",
    "norm_not_covering": ("the verified norm group does not cover every client (age): SD and "
                          "cut-off taken from the sample"),
    "no_verified_norm": "no verified norm: SD taken from the sample",
    "no_reliability": "no published reliability for {instrument} {scale}: RCI not computed",
    "no_usable_sd": "no usable SD (too few clients or no spread): RCI not computed",
    "needs_three": "{method} needs at least three clients: RCI not computed",
    "unstable_sd": "{method} with fewer than 20 clients: sample SDs are unstable",
    "no_cutoff": "no cut-off: clinical significance not assessed",
}
#: The coded provenance columns of :func:`reliable_change` (see its Returns).
CODE_COLUMNS = ("note_codes", "sd_source_code", "sd_source_key", "cutoff_source_code",
                "cutoff_source_key", "norm_used")
#: Where the SD of a row comes from (``sd_source_code``): a verified norm or the sample.
SD_SOURCES = ("norm", "sample")
#: Where the cut-off of a row comes from (``cutoff_source_code``): the published clinical
#: cut-off, c from a verified norm and the sample's pre scores, or a from the pre scores.
CUTOFF_SOURCES = ("published", "norm_sample", "sample")


def _applicable_norm(sc, grp: pd.DataFrame, notes: list[str]):
    """The verified norm that covers every client of the group, else None.

    Harmonised data say which norm group applied to each score (``norm_group``, by
    the client's age); without it the clients' ``age`` decides; with neither the
    first verified norm is assumed to apply, and the note says so.
    """
    verified = [n for n in sc.norms if n.verified]
    if not verified:
        return None
    if "norm_group" in grp.columns:
        groups = {g if isinstance(g, str) else None for g in grp["norm_group"]}
        norm = next((n for n in verified if groups == {n.group}), None)
    elif "age" in grp.columns:
        found = {id(sc.norm_for(a)): sc.norm_for(a) for a in grp["age"]}
        norm = next(iter(found.values())) if len(found) == 1 else None
    else:
        notes.append("ages_unknown")
        return verified[0]
    if norm is None:
        notes.append("norm_not_covering")
    return norm


def _classify_group(grp, dd, prog, inst, scale_id, method, sd_choice, criterion, pre_occ):
    sc = dd.scale(inst, scale_id)
    better = sc.better
    grp["better"] = better
    grp["method"] = method
    sign = -1.0 if better == "lower" else 1.0
    pre, post = grp["pre"].to_numpy(float), grp["post"].to_numpy(float)
    n = len(grp)
    notes: list[str] = []

    norm = _applicable_norm(sc, grp, notes)
    sample_sd = float(np.std(pre, ddof=1)) if n >= 2 else np.nan
    if sd_choice == "norm" and norm is not None:
        sd_val, sd_src = float(norm.sd.value), f"{norm.sd.source} ({norm.group})"
        grp["sd_source_code"], grp["sd_source_key"] = "norm", norm.sd.source
    else:
        sd_val, sd_src = sample_sd, f"sample SD of {pre_occ} scores (the programme's own clients)"
        grp["sd_source_code"], grp["sd_source_key"] = "sample", None
        if sd_choice == "norm":
            notes.append("no_verified_norm")
    grp["norm_used"] = norm.group if norm is not None else None
    rel = sc.reliability
    grp["sd"], grp["sd_source"] = sd_val, sd_src
    grp["reliability"] = rel.value if rel.verified else np.nan
    grp["reliability_type"] = rel.type
    grp["reliability_source"] = rel.source

    rci = np.full(n, np.nan)
    if not rel.verified:
        notes.append("no_reliability")
    elif not (np.isfinite(sd_val) and sd_val > 0):
        notes.append("no_usable_sd")
    elif method == "jacobson-truax":
        rci = reliable_change_index(pre, post, sd=sd_val, reliability=rel.value)
    elif n < 3:
        notes.append("needs_three")
    else:
        sd_pre, sd_post = float(np.std(pre, ddof=1)), float(np.std(post, ddof=1))
        if method == "maassen":
            rci = reliable_change_maassen(pre, post, sd_pre=sd_pre, sd_post=sd_post,
                                          reliability=rel.value)
        else:
            r_pp = float(np.corrcoef(pre, post)[0, 1])
            rci = reliable_change_hageman_arrindell(pre, post, sd_pre=sd_pre, sd_post=sd_post,
                                                    reliability=rel.value, r_prepost=r_pp)
        if n < 20:
            notes.append("unstable_sd")
    grp["change"] = post - pre
    grp["rci"] = rci
    reliable = np.abs(rci) > criterion
    grp["reliable"] = np.where(np.isfinite(rci), reliable, pd.NA)
    improving = sign * rci > criterion
    worsening = sign * rci < -criterion
    assessable = np.isfinite(rci)
    direction = np.select([improving, worsening], ["improved", "deteriorated"], "none")
    grp["direction"] = pd.Series(direction, index=grp.index, dtype=object).where(assessable, pd.NA)

    cutoff, kind, csrc = _cutoff(sc, norm, pre, better)
    if cutoff is None:
        notes.append("no_cutoff")
    grp["cutoff"], grp["cutoff_kind"], grp["cutoff_source"] = cutoff, kind, csrc
    code = (None if cutoff is None else "published" if kind.startswith("published")
            else "norm_sample" if kind == "c" else "sample")
    grp["cutoff_source_code"] = code
    grp["cutoff_source_key"] = (sc.cutoff.source if code == "published"
                                else norm.mean.source if code == "norm_sample" else None)
    if cutoff is not None:
        functional_post = _functional(post, cutoff, kind, better)
        dysfunctional_pre = ~_functional(pre, cutoff, kind, better)
        crossed = functional_post & dysfunctional_pre
        grp["clinically_significant"] = pd.Series(crossed & improving, index=grp.index,
                                                  dtype=object).where(assessable, pd.NA)
    else:
        crossed = np.zeros(n, dtype=bool)
        grp["clinically_significant"] = pd.NA
    cat = np.select([improving & crossed, improving, worsening], ["recovered", "improved",
                                                                  "deteriorated"], "unchanged")
    grp["category"] = np.where(np.isfinite(rci), cat, "not assessable")
    fields = {"instrument": inst, "scale": scale_id, "method": method}
    grp["note"] = "; ".join(NOTES[code].format(**fields) for code in notes)
    grp["note_codes"] = ";".join(notes)
    return grp


def _functional(x: np.ndarray, cutoff: float, kind: str, better: str) -> np.ndarray:
    """Which scores lie on the functional side of the cut-off.

    A published cut-off states the clinical range ('clinical if >= 30'); its
    complement is functional. A computed cut-off (a, c) splits strictly.
    """
    if kind.startswith("published"):
        rule = kind[kind.index("(") + 1 : -1]
        clinical = {">=": x >= cutoff, ">": x > cutoff, "<=": x <= cutoff, "<": x < cutoff}[rule]
        return ~clinical
    return x < cutoff if better == "lower" else x > cutoff


def _cutoff(sc, norm, pre: np.ndarray, better: str):
    if sc.cutoff is not None and sc.cutoff.verified:
        return float(sc.cutoff.value), f"published ({sc.cutoff.rule})", sc.cutoff.source
    if len(pre) < 2:
        return None, None, None
    m_clin, s_clin = float(np.mean(pre)), float(np.std(pre, ddof=1))
    if not s_clin > 0:
        return None, None, None
    if norm is not None:
        c = clinical_cutoff(kind="c", clinical_mean=m_clin, clinical_sd=s_clin,
                            norm_mean=norm.mean.value, norm_sd=norm.sd.value, better=better)
        return c, "c", f"{norm.mean.source} ({norm.group}) + sample pre scores"
    a = clinical_cutoff(kind="a", clinical_mean=m_clin, clinical_sd=s_clin, better=better)
    return a, "a", "sample pre scores (no verified norm)"


# --------------------------------------------------------------------------- #
# Summaries
# --------------------------------------------------------------------------- #
def proportion_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson 1934) confidence interval for a proportion."""
    return clopper_pearson(int(successes), int(n), check_confidence(confidence))


def summary(rc_table: pd.DataFrame, by: str | Sequence[str] = "programme",
            confidence: float = 0.95) -> pd.DataFrame:
    """Counts and proportions per reliable-change category, with exact CIs.

    Proportions are of the clients that could be assessed; the 'not assessable'
    rows are counted separately so nothing disappears.
    """
    check_confidence(confidence)
    by = [by] if isinstance(by, str) else list(by)
    keys = by + ["construct"] if "construct" not in by else by
    rows = []
    for key, grp in rc_table.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        assessed = grp[grp["category"] != "not assessable"]
        n = len(assessed)
        for cat in CATEGORIES:
            k = int((assessed["category"] == cat).sum())
            lo, hi = proportion_ci(k, n, confidence)
            rows.append(dict(zip(keys, key, strict=True), category=cat, n=k, n_assessed=n,
                             n_not_assessable=len(grp) - n,
                             proportion=k / n if n else np.nan, ci_lower=lo, ci_upper=hi))
    return pd.DataFrame(rows)


def prepost(
    data: pd.DataFrame,
    *,
    pre: str = "intake",
    post: str = "discharge",
    by: Sequence[str] = ("programme", "construct"),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Pre-post comparison per group: effect sizes with CIs, paired t and Wilcoxon.

    Effect sizes (Lakens 2013), with the change signed so that positive means
    improvement on the scale's direction:

    * ``d_z = M_diff / SD_diff`` with an exact CI from the noncentral t;
    * ``d_av = M_diff / ((SD_pre + SD_post) / 2)`` and Hedges' ``g_av = d_av * J``,
      ``J = 1 - 3 / (4 (n - 1) - 1)``;
    * ``d_rm = M_diff / sqrt(SD_pre^2 + SD_post^2 - 2 r SD_pre SD_post) * sqrt(2 (1 - r))``;

    (pingouin's paired Cohen d divides by the root mean square of the two SDs
    instead; the two agree when the SDs are equal.) CIs of d_av and d_rm use the large-sample variance for matched groups
    ``V = (1/n + d^2 / (2 n)) * 2 (1 - r)`` (Borenstein et al. 2009, eq. 4.28), which
    is rough with few clients. The paired t-test and Wilcoxon signed-rank test come
    from pingouin. A :class:`SmallSampleWarning` is raised, and ``warning`` filled,
    where the Wilcoxon test cannot reach p < .05 at all (n < 6) or the t-test has less
    than 50% power for a large effect (d_z = 0.8).
    """
    confidence = check_confidence(confidence)  # type: ignore[assignment]
    import pingouin as pg

    by = list(by)
    rows = []
    for key, grp in data.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        pairs = _pairs(grp, pre, post, None)
        for (inst, scale_id), pg_ in pairs.groupby(["instrument", "scale"]):
            better = grp.loc[(grp["instrument"] == inst) & (grp["scale"] == scale_id), "better"]
            better = better.iloc[0] if "better" in grp and len(better) else "higher"
            sign = -1.0 if better == "lower" else 1.0
            x, y = pg_["pre"].to_numpy(float), pg_["post"].to_numpy(float)
            row = dict(zip(by, key, strict=True), instrument=inst, scale=scale_id, better=better,
                       n=len(x))
            row.update(_prepost_stats(x, y, sign, confidence, pg))
            rows.append(row)
    return pd.DataFrame(rows)


def _prepost_stats(x, y, sign, confidence, pg) -> dict:
    n = len(x)
    out = dict(mean_pre=np.mean(x) if n else np.nan, mean_post=np.mean(y) if n else np.nan)
    nan = dict(sd_pre=np.nan, sd_post=np.nan, r=np.nan, d_z=np.nan, d_z_ci_lower=np.nan,
               d_z_ci_upper=np.nan, d_av=np.nan, g_av=np.nan, d_av_ci_lower=np.nan,
               d_av_ci_upper=np.nan, d_rm=np.nan, d_rm_ci_lower=np.nan, d_rm_ci_upper=np.nan,
               t=np.nan, df=np.nan, p_t=np.nan, w=np.nan, p_wilcoxon=np.nan, power_d08=np.nan)
    out.update(nan)
    warn: list[str] = []
    if n < 2:
        out["warning"] = f"n={n}: no comparison possible"
        warnings.warn(out["warning"], SmallSampleWarning, stacklevel=3)
        return out
    diff = sign * (y - x)
    sd_pre, sd_post = np.std(x, ddof=1), np.std(y, ddof=1)
    sd_diff = np.std(diff, ddof=1)
    r = float(np.corrcoef(x, y)[0, 1]) if sd_pre > 0 and sd_post > 0 else np.nan
    m = float(np.mean(diff))
    out.update(sd_pre=sd_pre, sd_post=sd_post, r=r)
    alpha = 1 - confidence
    if sd_diff > 0:
        dz = m / sd_diff
        tval = dz * np.sqrt(n)
        lo, hi = _nct_ci(tval, n - 1, alpha)
        out.update(d_z=dz, d_z_ci_lower=lo / np.sqrt(n), d_z_ci_upper=hi / np.sqrt(n))
        res = pg.ttest(sign * y, sign * x, paired=True)
        out.update(t=float(res["T"].iloc[0]), df=float(res["dof"].iloc[0]),
                   p_t=float(res["p_val"].iloc[0] if "p_val" in res else res["p-val"].iloc[0]))
        out["power_d08"] = float(pg.power_ttest(d=0.8, n=n, contrast="paired"))
    z = stats.norm.ppf(1 - alpha / 2)
    if sd_pre + sd_post > 0:
        d_av = m / ((sd_pre + sd_post) / 2)
        # Hedges' J is 0 at n = 2 (df = 1): g is undefined there, not 0.
        j = 1 - 3 / (4 * (n - 1) - 1) if n > 2 else np.nan
        rr = r if np.isfinite(r) else 0.0
        v = (1 / n + d_av**2 / (2 * n)) * 2 * (1 - rr)
        out.update(d_av=d_av, g_av=d_av * j, d_av_ci_lower=d_av - z * np.sqrt(v),
                   d_av_ci_upper=d_av + z * np.sqrt(v))
        if np.isfinite(r):
            denom = np.sqrt(sd_pre**2 + sd_post**2 - 2 * r * sd_pre * sd_post)
            if denom > 0:
                d_rm = m / denom * np.sqrt(2 * (1 - r))
                v_rm = (1 / n + d_rm**2 / (2 * n)) * 2 * (1 - r)
                out.update(d_rm=d_rm, d_rm_ci_lower=d_rm - z * np.sqrt(v_rm),
                           d_rm_ci_upper=d_rm + z * np.sqrt(v_rm))
    if np.any(diff != 0):
        wres = pg.wilcoxon(sign * y, sign * x)
        out.update(w=float(wres["W_val"].iloc[0] if "W_val" in wres else wres["W-val"].iloc[0]),
                   p_wilcoxon=float(wres["p_val"].iloc[0] if "p_val" in wres else
                                    wres["p-val"].iloc[0]))
    if n < 6:
        warn.append(f"n={n}: the Wilcoxon test cannot reach p < .05 (smallest p = {2 / 2**n:.3f})")
    if np.isfinite(out["power_d08"]) and out["power_d08"] < 0.5:
        warn.append(f"n={n}: power of the paired t-test for d_z = 0.8 is {out['power_d08']:.2f}")
    out["warning"] = "; ".join(warn)
    for w in warn:
        warnings.warn(w, SmallSampleWarning, stacklevel=3)
    return out


def _nct_ci(t_obs: float, df: float, alpha: float) -> tuple[float, float]:
    """CI for the noncentrality parameter of a t statistic (Steiger & Fouladi 1997)."""
    from scipy.optimize import brentq

    def cdf(ncp: float) -> float:
        # scipy's noncentral t cdf can return NaN far in the tails: there it is 1
        # (noncentrality far below t) or 0 (far above).
        value = stats.nct.cdf(t_obs, df, ncp)
        if np.isnan(value):
            return 1.0 if ncp < t_obs else 0.0
        return float(value)

    def solve(p):
        f = lambda ncp: cdf(ncp) - p  # noqa: E731
        lo, hi = t_obs - 10 - abs(t_obs), t_obs + 10 + abs(t_obs)
        return brentq(f, lo, hi, xtol=1e-12)

    return solve(1 - alpha / 2), solve(alpha / 2)


# --------------------------------------------------------------------------- #
# Plot
# --------------------------------------------------------------------------- #
def jacobson_plot(rc_table: pd.DataFrame, construct: str, *, fig: Figure | None = None,
                  ax: Axes | Sequence[Axes] | None = None, **kwargs: Any) -> Figure:
    """Pre versus post scatter with the reliable-change band and the cut-off lines.

    One panel per instrument scale measuring the construct (Jacobson & Truax
    1991, fig. 1). Points below/above the diagonal band have changed reliably;
    the cut-off lines divide functional from dysfunctional. Clients are not
    labelled.

    Parameters
    ----------
    rc_table:
        Output of :func:`reliable_change`.
    construct:
        The construct to draw.
    fig:
        Figure to draw the panels in (a new figure otherwise).
    ax:
        Instead of ``fig``: one Axes per panel (a single Axes when the construct
        has one scale). Fewer axes than panels is an error, never a silently
        shortened plot.
    **kwargs:
        Forwarded to :meth:`matplotlib.axes.Axes.scatter` for the points.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from effectstudy.style import GREY, OKABE_ITO, use_style

    d = rc_table[rc_table["construct"] == construct]
    if d.empty:
        raise DataError(f"no reliable-change rows for construct {construct!r}")
    groups = list(d.groupby(["instrument", "scale"], sort=True))
    # fixed colour per category in every plot; order of the legend follows CATEGORIES
    colours = {"recovered": OKABE_ITO["bluish_green"], "improved": OKABE_ITO["sky_blue"],
               "unchanged": GREY, "deteriorated": OKABE_ITO["vermillion"],
               "not assessable": "white"}
    if fig is not None and ax is not None:
        raise SpecError("jacobson_plot(): give fig= or ax=, not both")
    given_axes = ax is not None
    if given_axes:
        axes = list(ax) if isinstance(ax, Sequence | np.ndarray) else [ax]
        if len(axes) != len(groups):
            raise SpecError(f"jacobson_plot(): construct {construct!r} has {len(groups)} "
                            f"panel(s) (one per scale) but {len(axes)} axes were given; pass "
                            "one Axes per panel or fig=")
        fig = axes[0].figure
    with use_style():
        if not given_axes:
            if fig is None:
                fig = plt.figure(figsize=(3.5 * len(groups), 3.9))
            axes = list(fig.subplots(1, len(groups), squeeze=False)[0])
        for axis, ((inst, scale_id), g) in zip(axes, groups, strict=True):
            lo = float(min(g["pre"].min(), g["post"].min()))
            hi = float(max(g["pre"].max(), g["post"].max()))
            pad = 0.08 * (hi - lo or 1)
            lims = (lo - pad, hi + pad)
            axis.plot(lims, lims, color="0.3", lw=1, label="no change (post = pre)")
            sd, rel = g["sd"].iloc[0], g["reliability"].iloc[0]
            if np.isfinite(sd) and np.isfinite(rel):
                band = 1.96 * standard_error_difference(sd, rel)
                axis.fill_between(lims, [lims[0] - band, lims[1] - band],
                                  [lims[0] + band, lims[1] + band], color="0.85", alpha=0.6,
                                  lw=0, label="no reliable change")
            cut = g["cutoff"].iloc[0]
            if cut is not None and np.isfinite(cut):
                kind = str(g["cutoff_kind"].iloc[0]).split(" (")[0]
                axis.axhline(cut, ls="--", color="0.4", lw=1, label=f"clinical cut-off ({kind})")
                axis.axvline(cut, ls="--", color="0.4", lw=1)
            present = set(g["category"])
            for cat in [c for c in (*CATEGORIES, "not assessable") if c in present] + sorted(
                    present - set(CATEGORIES) - {"not assessable"}):
                gg = g[g["category"] == cat]
                axis.scatter(gg["pre"], gg["post"], **{
                    "s": 30, "edgecolor": GREY if cat == "not assessable" else "white",
                    "linewidth": 0.8 if cat == "not assessable" else 0.5, "zorder": 3,
                    **kwargs, "color": colours.get(cat, "black"), "label": cat})
            axis.set_xlim(lims)
            axis.set_ylim(lims)
            axis.set_aspect("equal", adjustable="box")
            axis.set_xlabel("pre score")
            axis.set_ylabel("post score")
            scale_label = str(scale_id)
            if scale_label.endswith("_t"):
                scale_label = scale_label[:-2] + " (T-score)"
            scale_label = scale_label.replace("_", " ")
            axis.set_title(f"{inst} {scale_label}\n({g['better'].iloc[0]} is better)",
                           fontsize=11)
        # one legend for all panels, below them, so that it never covers a point
        handles: dict = {}
        for axis in axes:
            for h, lab in zip(*axis.get_legend_handles_labels(), strict=True):
                handles.setdefault(lab, h)
        if not given_axes:
            fig.suptitle(construct.replace("_", " "), fontsize=12)
            fig.tight_layout()
            fig.legend(list(handles.values()), list(handles.keys()), loc="upper center",
                       bbox_to_anchor=(0.5, 0.0), ncols=min(3, len(handles)), frameon=False)
        else:
            axes[-1].legend(list(handles.values()), list(handles.keys()), fontsize=8,
                            loc="best")
    return fig
