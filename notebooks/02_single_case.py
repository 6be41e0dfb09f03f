# %% [markdown]
# # 02 - Single-case analysis of a multiple-baseline design
#
# Two programmes measure their clients weekly with a short distress rating (**SUD-week**, 0-10, **lower is
# better**): a baseline phase **A** of a few weeks, then the intervention phase **B**, with the start of B
# staggered over the clients. That is a *multiple-baseline design across participants*: each client is her
# own control, and the staggered starts rule out that something else that happened at one moment explains
# the change.
#
# Steps: design check (WWC standards), the multiple-baseline graph, per-case effect sizes, a randomization
# test, piecewise regression and a design-comparable between-case effect size.

# %%
# %matplotlib inline
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from effectstudy import synth
from effectstudy.harmonise import harmonise
from effectstudy.sced import (
    between_case_smd,
    design_check,
    effect_sizes,
    multiple_baseline_plot,
    piecewise,
    randomization_test,
)

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)

# %% [markdown]
# ## 1. The demo data
#
# Synthetic exports, harmonised with a demo key (see notebook 01 for both steps and for how to handle the
# key with real data).

# %%
workdir = Path(tempfile.mkdtemp(prefix="effectstudy_demo_"))
exports = workdir / "exports"                  # the raw (synthetic) exports
demo = synth.generate(exports, seed=2026)       # six programmes, seeded: same data every run

# An explicit key, for SYNTHETIC data only (real data: see notebook 01).
DEMO_KEY = "synthetic-demo-key-do-not-use-for-real-data"
h = harmonise(exports, key=DEMO_KEY)
table = h.table
print(f"{len(table)} scores of {table['client'].nunique()} clients in {table['programme'].nunique()} programmes")

# %% [markdown]
# The weekly series are the rows with `occasion == "session"`: columns `session` (1, 2, ...), `sced_phase`
# (`A` or `B`) and `raw` (the rating).

# %%
series = table[table["occasion"] == "session"]
series.groupby(["programme", "instrument"]).agg(
    cases=("client", "nunique"), sessions=("session", "size"),
    baseline_sessions=("sced_phase", lambda s: int((s == "A").sum())))

# %% [markdown]
# We analyse the programme with the most cases as one multiple-baseline study (the other programme follows
# at the end). Cases are numbered instead of showing their pseudonyms: the analysis does not need them, and
# a graph with pseudonyms should not leave the team.

# %%
focus = series.groupby("programme")["client"].nunique().idxmax()
mb = series[(series["programme"] == focus) & (series["instrument"] == "SUD-week")].copy()
number = {c: f"case {i}" for i, c in enumerate(sorted(mb["client"].unique()), start=1)}
mb["case"] = mb["client"].map(number)
mb = mb[["case", "session", "sced_phase", "raw"]].sort_values(["case", "session"]).reset_index(drop=True)
print(focus, "-", mb["case"].nunique(), "cases,", len(mb), "sessions")
mb.head()

# %% [markdown]
# ## 2. Does the design meet the standards?
#
# `design_check` rates the design against the What Works Clearinghouse pilot standards (Kratochwill et al.,
# 2010, 2013): at least three tiers (cases) with three *different* intervention start sessions, and at least
# five data points per phase (three or four: *with reservations*). What the data cannot show (systematic
# manipulation of the intervention, inter-assessor agreement) is reported as *not assessed*.

# %%
check = design_check(mb, case="case", phase="sced_phase", session="session", design="MB", outcome="raw")
print("Overall:", check.attrs["rating"])
check

# %% [markdown]
# ## 3. Look first: the multiple-baseline graph
#
# One panel per case, ordered by the start of B; the dashed staircase connects the phase changes.
# Visual analysis looks at level, trend, variability, the immediacy of the change and the overlap between
# the phases; `trend=True` draws an OLS line per phase.

# %%
fig = multiple_baseline_plot(mb, case="case", phase="sced_phase", session="session", outcome="raw",
                             trend=True, ylabel="SUD-week (lower is better)",
                             title=f"{focus}: weekly distress rating")

# %% [markdown]
# ## 4. Effect sizes per case
#
# `effect_sizes(..., improvement="decrease")` computes the indices of the R package SingleCaseES with its
# orientation: the non-overlap indices and the SMD are positive (NAP above 0.5) for an improvement, the
# log response ratio for a decreasing outcome is negative:
#
# * **NAP** - non-overlap of all pairs: the share of (A, B) pairs in which B is better (0.5 = no effect);
# * **Tau_U** - Kendall-type non-overlap with a correction for baseline trend (Parker et al., 2011; this
#   variant can exceed 1 in absolute value, one reason to report NAP or Tau alongside it);
# * **PND** - percentage of B points better than the best A point (sensitive to one outlying baseline point);
# * **SMD** - within-case standardised mean difference (baseline SD);
# * **LRRd** - log response ratio for a decreasing outcome, `log(mean B / mean A)`: negative is
#   improvement, and `exp(LRRd)` is the ratio of the phase means (LRRd = -0.4: B is about a third lower).

# %%
es = effect_sizes(mb, case="case", phase="sced_phase", session="session", outcome="raw",
                  improvement="decrease", measures=["NAP", "Tau_U", "PND", "SMD", "LRRd"])
es.pivot(index="case", columns="measure", values="estimate").round(2)

# %%
es.round(3)

# %% [markdown]
# ## 5. A randomization test
#
# If the start of B had been drawn at random (within a window agreed in advance), the test statistic under
# the actual assignment can be compared with its value under every assignment the procedure *could* have
# produced. The observations are never shuffled, only the start points (Edgington, 1980; Marascuilo & Busk,
# 1988). With `min_phase_length=3` each case's start can fall anywhere that leaves three sessions in A and
# in B, so the number of possible assignments is the **product of the cases' numbers of start points**.
# The smallest attainable p-value is `1 / n_assignments` (exact) - a design with too few possible
# assignments can never give p < .05, however large the effect (one case with five possible start points:
# the smallest p is 0.2). Plan the randomization before the study starts.

# %%
rt = randomization_test(mb, case="case", phase="sced_phase", session="session", outcome="raw",
                        design="MB", statistic="mean_difference", improvement="decrease",
                        min_phase_length=3, rng=1)
rt.to_frame()

# %%
rt.per_case

# %%
starts = " x ".join(str(n) for n in rt.per_case["n_start_points"])
print(f"possible assignments: {starts} = {rt.n_assignments:,}")
how = "all enumerated (exact)" if rt.exact else f"Monte Carlo sample of {rt.n_used:,}"
print(f"reference distribution: {how}")
print(f"smallest attainable p: {rt.min_p:.2g}   observed p: {rt.p_value:.3g}")
fig = rt.plot()

# %% [markdown]
# The test is valid only if the start points really were drawn at random, before the study, from exactly
# these possibilities; for the synthetic data the p-value only illustrates the method.
# With a Monte Carlo reference distribution (`exact=False`) the p-value is `(b + 1) / (m + 1)`, never 0,
# and `seed` makes it reproducible.
#
# ## 6. Piecewise regression
#
# The level- and slope-change model (Huitema & McKean, 2000), per case, with the coding of scan's `plm()`
# (`model="W"`: the intercept is the level at the first session): `level_B` is the immediate change in
# level when B starts, `slope_B` the change in weekly trend. Negative is better here.

# %%
pw = piecewise(mb, case="case", phase="sced_phase", session="session", outcome="raw", model="W")
pw.to_frame().round(3)

# %%
fig = pw.plot()

# %% [markdown]
# Weekly ratings are autocorrelated; `ar=1` refits each case with AR(1) errors (generalised least squares),
# and `multilevel=True` fits one model across the cases with a random intercept per case.

# %%
pw_ar = piecewise(mb, case="case", phase="sced_phase", session="session", outcome="raw", ar=1)
pw_ar.fit.round(3)

# %%
pw_ml = piecewise(mb, case="case", phase="sced_phase", session="session", outcome="raw", multilevel=True)
pw_ml.to_frame().round(3)

# %% [markdown]
# ## 7. A design-comparable effect size across cases
#
# To put a multiple-baseline study next to group studies (or into a meta-analysis), the between-case
# standardised mean difference divides the treatment effect by the *total* (between- plus within-case) SD,
# with a small-sample correction: `method="hps"` (Hedges, Pustejovsky & Shadish, 2013) or `method="reml"`
# (Pustejovsky, Hedges & Shadish, 2014; a mixed model with AR(1) errors). It is on the scale's **raw
# direction**: a negative value is a decrease in distress, i.e. improvement. The degrees of freedom
# (`df`, nu) say how well the between-case variance is estimated; they depend mainly on the number of
# *cases*, not sessions. With few cases nu is small, and then the small-sample correction and the t-based
# interval matter.

# %%
bc = pd.concat([between_case_smd(mb, case="case", phase="sced_phase", session="session", outcome="raw",
                                 method=m).to_frame() for m in ("hps", "reml")],
               ignore_index=True)
bc[["method", "estimate", "se", "df", "ci_lower", "ci_upper", "n_cases", "n_obs"]].round(3)

# %% [markdown]
# ## 8. Both programmes side by side
#
# The same design check and randomization test for every programme with series. Note how the number of
# possible assignments (and so the smallest attainable p) depends on the number of cases, and when the test
# switches from exact enumeration to a Monte Carlo sample.

# %%
rows = []
for programme, grp in series[series["instrument"] == "SUD-week"].groupby("programme"):
    g = grp.assign(case=grp["client"].map(
        {c: f"case {i}" for i, c in enumerate(sorted(grp["client"].unique()), start=1)}))
    chk = design_check(g, case="case", phase="sced_phase", session="session", design="MB")
    res = randomization_test(g, case="case", phase="sced_phase", session="session", outcome="raw",
                             design="MB", improvement="decrease", min_phase_length=3, rng=1)
    rows.append({"programme": programme, "cases": g["case"].nunique(), "design": chk.attrs["rating"],
                 "n_assignments": res.n_assignments, "exact": res.exact, "min_p": res.min_p,
                 "p_value": res.p_value})
pd.DataFrame(rows)

# %% [markdown]
# Clean up the temporary folder (the synthetic exports and anything written to it).

# %%
shutil.rmtree(workdir, ignore_errors=True)
