# %% [markdown]
# # 07 - Programme integrity, dose and tailored care
#
# The programme descriptions end with three warnings for effect research: the target group is
# small, the programmes offer a broad and partly tailored range of interventions, and how far each
# programme is implemented differs per provider (programme integrity is not yet established). This
# notebook shows the tools of `effectstudy.fidelity` for the last two warnings:
#
# 1. the **components** of each programme and its **fidelity checklist**, as declared in the data
#    dictionary,
# 2. **synthetic delivery logs and fidelity ratings** with a known truth (so nothing here is real
#    client data), checked against the dictionary,
# 3. **adherence** (share of prescribed components delivered in their phase) and the **dose
#    received**, with the fidelity profile and fidelity over time,
# 4. a **programme fidelity score** from the checklist ratings, with rater variance in its
#    uncertainty,
# 5. **dose-response**, **tailoring** and **fidelity as a moderator**, all observational.
#
# No client is shown: tables are per programme or per component.

# %%
# %matplotlib inline
import warnings

import pandas as pd

from effectstudy import fidelity
from effectstudy.dictionary import load_integrity
from effectstudy.study.integrity import dose_curve_range
from effectstudy.synth_integrity import generate_integrity

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)
warnings.simplefilter("ignore", UserWarning)

# %% [markdown]
# ## 1. Components and fidelity checklists in the dictionary
#
# `components:` in `programmes.yaml` lists, per programme, the parts of care its description
# names: phase (or `all`), whether every girl gets it (`universal`) or only the girls it is
# prescribed to (`tailored`), and the intended dose. Doses are planning values
# (`UNVERIFIED`) unless the description gives a number.

# %%
integ = load_integrity()
integ.components_frame()[["programme", "component", "phase", "delivery", "dose", "dose_unit",
                          "dose_source"]]

# %%
pd.DataFrame([{"instrument": i.id, "programme": i.programme, "target": i.target,
               "raters": ", ".join(i.raters), "scoring": f"{i.score_min:g}-{i.score_max:g}",
               "items": len(i.items), "source": i.source}
              for i in integ.fidelity_instruments.values()])

# %% [markdown]
# ## 2. Synthetic logs and ratings, validated
#
# `generate_integrity` simulates per programme a delivery log (client x week x prescribed
# component), checklist ratings (team-months or sessions x three raters x items) and a growth
# outcome that depends on the cumulative dose received. The truth is returned with it.
# `validate_logs` checks a log against the dictionary; to show it, two bad rows are added: a
# component the dictionary does not list and negative minutes. They go to the rejection log,
# which names the row and the reason without repeating the cell's text.

# %%
sim = generate_integrity(integ, seed=2026)
bad = sim.logs.head(2).copy()
bad["component"] = ["free text that must never pass", bad["component"].iloc[1]]
bad["minutes"] = [30.0, -15.0]
logs_in = pd.concat([sim.logs, bad], ignore_index=True)
logs, rejected = fidelity.validate_logs(logs_in, integ, file="delivery_log.csv")
rejected[["programme", "file", "row", "column", "kind", "reason", "value"]]

# %% [markdown]
# ## 3. Adherence and dose received
#
# Per programme: the pooled share of prescribed components delivered in their phase, with a
# Korn-Graubard interval that treats the clients as clusters (the components of one girl are not
# independent), and the mean dose received per client with a t interval.

# %%
adh = fidelity.adherence(logs, integ)
table = adh.programmes[["programme", "n_clients", "adherence", "ci_lower", "ci_upper",
                        "sessions_mean", "minutes_mean", "weeks_exposed_mean"]]
table.merge(sim.truth[["programme", "adherence"]].rename(columns={"adherence": "true"}),
            on="programme").round(3)

# %%
fig = adh.profile_plot()

# %%
fig = adh.drift_plot()

# %% [markdown]
# ## 4. Programme fidelity score
#
# Per programme the crossed random-effects model `score ~ 1 + (1 | target) + (1 | rater)` gives
# the fidelity score (share of the checklist's range) with Kenward-Roger SE and df; the raters
# are a random factor, so their disagreement widens the interval. The interval is computed on
# the logit scale and transformed back, so it never passes 0% or 100%. `rater_agreement` gives
# the Shrout-Fleiss ICCs of the same ratings.

# %%
score = fidelity.fidelity_score(sim.ratings, integ)
score.scores[["programme", "n_targets", "n_raters", "score", "ci_lower", "ci_upper", "df",
              "rater_share"]].round(3)

# %%
one = sim.ratings[sim.ratings["programme"] == "veilig_lima"]
per_cell = one.groupby(["target", "rater"], as_index=False)["score"].mean()
fidelity.rater_agreement(per_cell, targets="target", raters="rater", ratings="score").to_frame().round(3)

# %% [markdown]
# ## 5. Dose-response, tailoring and fidelity as a moderator
#
# **Dose-response.** The cumulative number of delivered sessions enters the growth model as a
# time-varying predictor (`outcome ~ time + dose + programme + (1 + time | client)`), tested with
# Kenward-Roger df. Dose is not randomised: the coefficient is an association.

# %%
dr = fidelity.dose_response(sim.outcomes, logs)
print(f"dose coefficient {dr.dose['estimate']:.3f} "
      f"(95% CI {dr.dose['ci_lower']:.3f} to {dr.dose['ci_upper']:.3f}, KR df {dr.dose['df']:.1f}); "
      f"generator: {sim.params['dose_slope']}")
dr.by_group.round(3)

# %%
fig = dr.plot()

# %% [markdown]
# The plot above shows every observed dose (the rug) and runs to the largest one: one girl's
# value, so it is for internal use. A study run saves the curve only over a trimmed range
# (10th-90th percentile, at least five girls beyond each end, rounded inwards) and the report
# draws those saved points:

# %%
span = dose_curve_range(dr.data, threshold=5)
print(f"published dose range: {span[0]:g} to {span[1]:g} sessions")
dr.curve(*span, points=5).round(3)

# %% [markdown]
# **Tailoring.** Which tailored components the girls received, per programme, and the
# difference in change between girls who did and did not receive each one. Exploratory: the
# number of tests is stated and the p-values are Holm-adjusted.

# %%
tl = fidelity.tailoring(logs, sim.outcomes, integ)
print(tl.notes[0])
tl.tests[["programme", "component", "n_received", "n_not", "difference", "ci_lower", "ci_upper",
          "p_value", "p_adjusted"]].round(3)

# %% [markdown]
# **Fidelity as a moderator.** Programme fidelity moderating the programme slopes, with a
# programme random slope so that the test has programme-level (Kenward-Roger) df, a CR2 check and
# the simulated power for more programmes (few replicates here to keep the notebook fast; use
# `nsim=1000` for planning).

# %%
mod = fidelity.fidelity_moderator(sim.outcomes, score.scores, power_programmes=(6, 48), nsim=20,
                                  n_jobs=1)
print(mod.sentence)
print(mod.notes[-1])
pd.concat([mod.moderator.to_frame("Kenward-Roger").T[["estimate", "se", "df", "p_value"]],
           mod.cr2.set_index("term").loc[["time:fidelity"], ["estimate", "se", "df", "p_value"]]
           .rename(index={"time:fidelity": "CR2"})]).round(3)
