# %% [markdown]
# # 03 - Growth across programmes: multilevel models with few clients and few programmes
#
# Clients are measured repeatedly (intake, during care, discharge, follow-ups), clients are nested in six
# programmes, and the programmes use different questionnaires. This notebook models the change of
# **internalising problems** over time on a common metric, and shows why the small numbers (a few dozen
# clients, six programmes) need small-sample inference.

# %%
# %matplotlib inline
import shutil
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from effectstudy import synth
from effectstudy.harmonise import harmonise
from effectstudy.multilevel import cluster_robust, fit, fit_ar1, spaghetti_plot

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)

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
# ## 1. A common metric: norm-referenced z
#
# Programmes measure internalising problems with the SDQ (self-report) or the YSR. The harmonised table
# gives `z`, the score relative to the verified Dutch norm group for the client's age (0 = norm mean,
# 1 = one SD worse for these scales, where lower is better), so the instruments can be analysed together.
# Scores without a verified norm have no `z` and are left out. Time is `week` since intake; the weekly
# single-case sessions are left out here.

# %%
growth = table[(table["construct"] == "internalising") & table["z"].notna()
               & (table["occasion"] != "session")]
print("direction of the scales:", sorted(growth["better"].unique()))
growth = growth[["programme", "client", "occasion", "week", "instrument", "z"]].reset_index(drop=True)
growth.groupby(["programme", "instrument"]).agg(
    clients=("client", "nunique"), scores=("z", "size"), last_week=("week", "max")).round(1)

# %%
programmes = sorted(growth["programme"].unique())
fig, axes = plt.subplots(2, 3, figsize=(11, 6), sharex=True, sharey=True)
for ax, p in zip(axes.flat, programmes, strict=False):
    d = growth[growth["programme"] == p]
    for _, g in d.groupby("client"):
        ax.plot(g["week"], g["z"], "-o", ms=3, lw=0.8, alpha=0.6)
    ax.axhline(0, color="0.5", lw=0.8, ls=":")
    ax.set_title(f"{p} ({d['client'].nunique()} clients)")
fig.supxlabel("weeks since intake")
fig.supylabel("internalising z (0 = norm mean; higher = worse)")
fig.tight_layout()

# %% [markdown]
# ## 2. Two-level growth model: occasions in clients
#
# `fit("z ~ week + (1 + week | client)", data)` fits, by REML, a straight line per client (random intercept
# and slope, correlated) around the average line. The formula syntax is lme4's.

# %%
m2 = fit("z ~ week + (1 + week | client)", growth)
print(f"{m2.nobs} scores, groups: {m2.n_groups}, singular fit: {m2.is_singular}")
m2.variance_components()

# %% [markdown]
# ### Why the degrees of freedom matter
#
# A t-test of a fixed effect needs denominator degrees of freedom. With hundreds of *scores* but only a few
# dozen *clients* (and the time slope varying between clients), the information about the average slope is
# closer to the number of clients than to the number of scores:
#
# * `"residual"`: n - p, as if all scores were independent: far too many df, CIs too narrow, p too small;
# * `"satterthwaite"` (lmerTest): df from the variance of the estimate's variance;
# * `"kenward-roger"` (pbkrtest): Satterthwaite-like df *and* an inflated standard error that accounts for
#   the uncertainty in the variance components. The safest choice with few clusters.

# %%
ddf = pd.concat({d: m2.coefficients(ddf=d).set_index("term")[["estimate", "se", "df", "p_value",
                                                                 "ci_lower", "ci_upper"]]
                 for d in ("residual", "satterthwaite", "kenward-roger")}, names=["ddf"])
ddf.round(4)

# %% [markdown]
# The slope is per week: multiply by 26 for half a year of care.

# %%
slope = m2.coefficients(ddf="kenward-roger").set_index("term").loc["week"]
print(f"change per 26 weeks: {26 * slope['estimate']:.2f} SD "
      f"(95% CI {26 * slope['ci_lower']:.2f} to {26 * slope['ci_upper']:.2f})")

# %% [markdown]
# ## 3. A third level for six programmes?
#
# The obvious next step is a random intercept per programme: `(1 | programme)`. With **six** programmes the
# programme variance is estimated from six numbers: it is very imprecise and often ends on zero (a
# *singular* fit, reported in `messages`). `fit` warns (`FewClustersWarning`) whether or not the fit is
# singular, and suggests the alternative.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    m3 = fit("z ~ week + (1 | programme) + (1 + week | client)", growth)
for w in caught:
    print(f"{w.category.__name__}: {w.message}")
print("singular fit:", m3.is_singular, m3.messages)
m3.variance_components()

# %% [markdown]
# **Fixed-effect alternative.** Six programmes are not a sample from a population of programmes; they are
# *the* programmes of this study. Entering `programme` as a fixed factor estimates each programme's level
# directly (relative to a reference programme) and keeps the client-level random effects:

# %%
mfe = fit("z ~ week + programme + (1 + week | client)", growth)
mfe.coefficients(ddf="kenward-roger").round(3)

# %% [markdown]
# `spaghetti_plot` draws each client's trajectory (never labelled) with the fitted mean line per programme;
# with programme as a fixed factor the lines differ in level and share the slope:

# %%
fig = spaghetti_plot(mfe, time="week", outcome="z", client="client", by="programme")

# %% [markdown]
# ## 4. Cluster-robust (CR2) inference on programmes
#
# If the question is about the *average* slope across programmes, a cluster-robust variance with programmes
# as clusters protects against mis-specifying how programmes differ. The usual sandwich estimator is badly
# biased with few clusters; `cluster_robust(..., cluster="programme")` uses the bias-reduced CR2 estimator
# with Satterthwaite degrees of freedom (Bell & McCaffrey, 2002; Pustejovsky & Tipton, 2018; as R's
# clubSandwich). It accepts a fitted mixed model (the working model) or an OLS formula.

# %%
cr = cluster_robust(m2, cluster="programme")
cr.conf_int().round(4)

# %% [markdown]
# **The tiny df are the message.** With six clusters the CR2 degrees of freedom can never exceed five, and
# they drop further when a coefficient's information sits in one or two programmes (for the slope, the
# programme with the long follow-ups weighs heavily). A df around 1 or 2 means the t reference distribution
# has very heavy tails: the interval is wide, and honest about how little six programmes say about
# programmes in general. Tipton (2015) advises caution whenever these df fall below 4. The OLS version
# (no working model) for comparison:

# %%
cluster_robust("z ~ week", growth, cluster="programme").conf_int().round(4)

# %% [markdown]
# ## 5. Dense series: AR(1) errors
#
# Weekly single-case ratings (notebook 02) are many measurements close together, so consecutive residuals
# are correlated. `fit_ar1` fits a mixed model with AR(1) within-client errors, as `nlme::lme(...,
# correlation = corAR1())`: here the phase effect (B vs A) on the SUD-week rating with a random intercept
# per client. `phi` is the lag-1 autocorrelation; the likelihood-ratio test compares with independent errors.

# %%
sud = table[(table["occasion"] == "session") & (table["instrument"] == "SUD-week")]
ar = fit_ar1("raw ~ sced_phase", sud, group="client", random="1", correlation="AR1", index="session")
print(f"phi = {ar.phi:.2f}; LRT against independent errors = {ar.lrt:.1f} (p = {ar.lrt_p:.2g})")
ar.fixed.round(4)

# %% [markdown]
# Note the containment df of the phase effect: they count sessions, and with autocorrelated series that is
# optimistic. For the phase effect across cases, prefer the single-case tools of notebook 02 (randomization
# test, between-case SMD with its small df).

# %% [markdown]
# Clean up the temporary folder (the synthetic exports and anything written to it).

# %%
shutil.rmtree(workdir, ignore_errors=True)
