# %% [markdown]
# # 04 - Power: how many clients, programmes and measurements?
#
# Power analysis by simulation: describe the planned study, generate many data sets from the model you
# expect, analyse each one exactly as you will analyse the real data, and count how often the test rejects.
# This notebook sizes
#
# 1. a **growth-model study** across the six programmes,
# 2. a **multiple-baseline single-case study** with one case per programme,
# 3. a **responder (reliable change) study**,
#
# and compares with the classic t-test formulas.
#
# **Small `nsim` here.** To keep the notebook fast we use 50-200 replicates. The Monte Carlo standard error
# of a power estimate is `sqrt(p (1 - p) / nsim)`: 0.07 at nsim = 50, 0.016 at nsim = 1000. **Real planning
# needs nsim >= 1000** (run it with `n_jobs=-1` or on a Dask cluster via `scheduler=`).

# %%
# %matplotlib inline
import numpy as np
import pandas as pd

from effectstudy.dictionary import load_dictionary
from effectstudy.power import (
    GrowthDesign,
    ResponderDesign,
    SingleCaseDesign,
    power_curve,
    simulate,
    slope_from_d,
    solve_n,
    t_test_power,
)

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)

# %% [markdown]
# ## 1. A growth-model study
#
# `GrowthDesign.planned(...)` builds the measurement layout: programmes, clients per programme, the planned
# weeks, and dropout (here a quarter of the clients leave early, each from a random occasion on; the
# pattern is drawn once with `rng`, an int seed). The model is the growth model of notebook 03:
# `y ~ time + (1 | programme) + (1 + time | client)`, with the true values you expect: the fixed effects and
# the SDs of the random effects (on the raw scale, e.g. T-scores). The test is the t-test of the time slope
# with Satterthwaite df.

# %%
design = GrowthDesign.planned(
    programmes=6, clients_per_programme=8, weeks=[0, 8, 16, 24, 32], dropout=0.25, rng=1,
    formula="y ~ time", fixed={"Intercept": 50, "time": -0.10},
    sd_programme=2.0, sd_intercept=6.0, sd_slope=0.15, cor_intercept_slope=-0.3, sd_residual=5.0,
    test_term="time", ddf="satterthwaite", name="6 x 8 clients")
pd.Series(design.describe())

# %% [markdown]
# `d_feingold` is the standardised effect of the planned slope over the whole study (Feingold, 2009):
# slope x duration / total SD. Dropout thins the later occasions:

# %%
design.layout.groupby("time")["client"].nunique().rename("clients observed")

# %%
res = simulate(design, nsim=100, rng=1, progress=False)
print(res.summary())
res.to_frame().T

# %% [markdown]
# `power` with its exact 95% Monte Carlo interval, the number of failed and singular fits (singular fits are
# kept, as in simr; failed fits count as non-rejections). Many fits are singular: a programme SD of 2 is
# often estimated as zero from six programmes, the problem of notebook 03. The histogram shows the
# replicate p-values.

# %%
fig = res.plot()

# %% [markdown]
# ### Power curve
#
# `power_curve(design, {"clients_per_programme": [...]})` re-plans the layout at each value (any argument
# of `planned`, any design field, or `"fixed:time"` for the effect) and simulates with the same seed, so the
# curve is smooth.

# %%
curve = power_curve(design, {"clients_per_programme": [4, 8, 12, 16]}, nsim=50, rng=1, progress=False)
curve.to_frame()[["clients_per_programme", "power", "ci_lower", "ci_upper", "n_singular"]]

# %%
fig = curve.plot()

# %% [markdown]
# ## 2. A multiple-baseline study with one case per programme
#
# `SingleCaseDesign` simulates AR(1) series (SD 1, so effects are in within-case SD units) with a level shift
# at a randomly drawn start point per case, and analyses each with the multiple-baseline randomization test
# of notebook 02. For the SUD-week rating lower is better: a negative shift and `alternative="less"`.
# The number of possible assignments (each case's start window, multiplied) sets the smallest attainable p.

# %%
sc = SingleCaseDesign(n_cases=6, series_length=20, start_window=(6, 15), level_shift=-1.0, ar=0.3,
                      statistic="mean_difference", alternative="less", name="MB, 6 cases")
print(f"possible assignments: {sc.n_assignments:,}; test: {sc.test_description()}")
sc_res = simulate(sc, nsim=200, rng=1, progress=False)
sc_res.to_frame()[["design", "power", "ci_lower", "ci_upper", "nsim"]]

# %%
sc_curve = power_curve(sc, {"n_cases": [3, 4, 6]}, nsim=200, rng=1, progress=False)
fig = sc_curve.plot()

# %% [markdown]
# ## 3. A responder study: enough reliable improvers?
#
# `ResponderDesign` asks: if the true mean change is `mean_change` (raw units), how likely is it that more
# than `null_proportion` of the clients improve *reliably* (|RCI| > 1.96, Jacobson & Truax)? The SD and the
# reliability come from the data dictionary, never from a guess - here the YSR internalising T-score
# (SD 10 in the T metric):

# %%
scales = load_dictionary().scales_frame()
ysr = scales[(scales["instrument"] == "YSR") & (scales["scale"] == "internalising_t")].iloc[0]
print(f"YSR internalising: reliability {ysr['reliability']} ({ysr['reliability_source']}), "
      f"norm SD {ysr['norm_sd']}")
# group sizes of the demo programmes
resp = ResponderDesign(n_per_programme=[12, 9, 16, 25, 6, 4], mean_change=-8.0, sd=float(ysr["norm_sd"]),
                       reliability=float(ysr["reliability"]), sd_true_change=5.0, null_proportion=0.2)
print(f"S_diff = {resp.s_diff:.2f}; probability of a reliable improvement = {resp.responder_probability:.2f}")
resp.analytic().round(3)

# %% [markdown]
# Per programme the exact binomial test has little power with these group sizes; pooled over the
# programmes it is ample. The simulation agrees with the exact calculation:

# %%
simulate(resp, nsim=200, rng=1, progress=False).to_frame()[["design", "power", "ci_lower", "ci_upper"]]

# %% [markdown]
# ## 4. The classic formulas
#
# For a simple pre-post comparison (paired t-test), `t_test_power` gives the analytic power (as R's `pwr`),
# `solve_n` the number of clients for a target power, and `slope_from_d` translates a standardised effect
# into the growth-model slope of section 1.

# %%
grid = pd.DataFrame([{"n": n, **{f"d_z = {d}": t_test_power(d, n, kind="paired") for d in (0.5, 0.8, 1.2)}}
                     for n in (4, 6, 9, 12, 16, 25)])
grid.round(3)

# %%
for d in (0.5, 0.8):
    print(f"paired t-test, d_z = {d}: {int(np.ceil(solve_n(d, power=0.8, kind='paired')))} clients for 80% power")
print(f"slope for d = 0.5 over 32 weeks with total SD {design.sd_total:.2f}: "
      f"{slope_from_d(0.5, duration=design.duration, sd_total=design.sd_total):.3f} per week")

# %% [markdown]
# **Before you plan for real:** rerun with `nsim=1000` or more, vary the assumptions you are least sure of
# (the slope SD, the dropout, the effect) with `power_curve`, and write the design down in a YAML file
# (`effectstudy.power.load_design` / `run_from_yaml`) so the calculation can be repeated.
