"""Build the researcher notebooks in this folder (run: ``.venv/bin/python notebooks/_build_notebooks.py``).

The notebooks are written without outputs; ``tests/test_notebooks.py`` executes
them fresh. Edit the cell texts here, not the ``.ipynb`` files, and rebuild.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def _clean(text: str) -> str:
    return text.strip("\n")


def md(text: str):
    return new_markdown_cell(_clean(text))


def code(text: str):
    return new_code_cell(_clean(text))


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{Path(name).stem[:2]}-{i:02d}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    path = HERE / name
    nbformat.write(nb, path)
    return path


# The synthetic demo data are generated and harmonised the same way in every notebook.
SETUP_DATA = '''
workdir = Path(tempfile.mkdtemp(prefix="effectstudy_demo_"))
exports = workdir / "exports"                  # the raw (synthetic) exports
demo = synth.generate(exports, seed=2026)       # six programmes, seeded: same data every run

# An explicit key, for SYNTHETIC data only (real data: see notebook 01).
DEMO_KEY = "synthetic-demo-key-do-not-use-for-real-data"
h = harmonise(exports, key=DEMO_KEY)
table = h.table
print(f"{len(table)} scores of {table['client'].nunique()} clients in {table['programme'].nunique()} programmes")
'''

# --------------------------------------------------------------------------- #
# 01 harmonise and change
# --------------------------------------------------------------------------- #
NB01 = [
    md('''
# 01 - From raw exports to reliable change

This notebook walks through the first half of an effect study with `effectstudy`:

1. **generate** synthetic raw exports of the six programmes (so nothing here is real client data),
2. **harmonise** them into one long, pseudonymised table, and look at what was rejected and why,
3. look up **where every psychometric number comes from** (the data dictionary),
4. compute **reliable and clinically significant change** per client (Jacobson & Truax, 1991) and
   pre-post effect sizes per programme.

Everything runs on a temporary folder and takes a few seconds.
'''),
    code('''
%matplotlib inline
import shutil
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from effectstudy import change, synth
from effectstudy.dictionary import load_dictionary
from effectstudy.harmonise import harmonise

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)
pd.set_option("display.max_colwidth", 60)
'''),
    md('''
## 1. Synthetic raw exports

`synth.generate(folder, seed=...)` writes, for every programme in the data dictionary, the export files
exactly as the programme delivers them: Excel workbooks with one row per client, SPSS `.sav` files with
value labels, a Dutch-locale CSV (`;` separator, decimal comma), a long CSV and the weekly single-case
series. The same seed always gives the same files. The groups are small and unequal (4 to 25 clients),
and a quarter or more of the clients leave early (absconded or transferred), as in the real programmes.
'''),
    code('''
workdir = Path(tempfile.mkdtemp(prefix="effectstudy_demo_"))
exports = workdir / "exports"
demo = synth.generate(exports, seed=2026)

pd.DataFrame({
    "file": [p.name for p in demo.files],
    "kB": [round(p.stat().st_size / 1024, 1) for p in demo.files],
})
'''),
    md('''
The generator also plants a few realistic errors in every file (a score outside the scale's range, an
impossible date, an occasion label nobody declared, a duplicated row), and tells us where. We will see the
harmoniser find them.
'''),
    code('''
demo.injected.groupby(["programme", "kind"]).size().unstack(fill_value=0)
'''),
    md('''
## 2. Harmonise: one long table, pseudonymised at the door

`harmonise(folder, key=...)` reads every export the dictionary describes, maps the programme's own labels
(occasions, phases, instruments) to the canonical ones, checks every score against the scale's range,
and replaces each client id by a **keyed pseudonym** (`HMAC-SHA256(key, programme + id)`, shown as e.g.
`VL-3f9a1c2e`). Names, dates of birth and BSNs never leave the reader.

**About the key.** Here we pass an explicit demo key because the data are synthetic. For real data,
do *not* write the key in a notebook: leave `key=` out and `effectstudy` takes it from the environment
variable `EFFECTSTUDY_PSEUDONYM_KEY`, or from a key file (`EFFECTSTUDY_KEY_FILE`, default
`~/.config/effectstudy/pseudonym.key`, created once with a random key). Keep that file **outside the data
folder** (the harmoniser refuses a key file inside the data or output folder) and back it up: the same key
is needed to link next year's exports to this year's pseudonyms.
'''),
    code('''
DEMO_KEY = "synthetic-demo-key-do-not-use-for-real-data"   # synthetic data only!
h = harmonise(exports, key=DEMO_KEY)
h.summary()
'''),
    md('''
`summary()` gives one row per programme: the files read, clients, occasions, constructs and instruments,
the number of scores that reached the table (`rows`), the number of score records read (`rows_in`) and
rejected, and the reasons.

### The rejection log

Every score that did not reach the table is in the rejection log with the file, the row (as a
spreadsheet counts it), the column, the kind of problem and a reason. The `value` column never shows an
identifier or a date of birth.
'''),
    code('''
h.rejection_counts()
'''),
    code('''
h.rejections.head(10)
'''),
    md('''
The planted errors and the log agree kind by kind (the generator's `bad_date` is the log's
`unparseable_date`; a duplicated client row in a wide file gives one log entry per score it repeats):
'''),
    code('''
pd.DataFrame({
    "planted": demo.injected["kind"].replace({"bad_date": "unparseable_date"}).value_counts(),
    "log entries": h.rejections["kind"].value_counts(),
}).fillna(0).astype(int)
'''),
    md('''
Per input file the accounting must close exactly: score records read = scores in the table + scores rejected.
'''),
    code('''
acc = h.accounting
assert (acc["rows_in"] == acc["rows_out"] + acc["rows_rejected"]).all()
acc
'''),
    md('''
### The long table

One row per accepted score. `occasion` is the canonical occasion (`intake`, `during`, `discharge`,
`follow_up_3m`, ..., or `session` for the weekly single-case series), `occasion_label` the programme's own
label, `week` the time since intake. `raw` is the score as delivered; `z` and `t` are norm-referenced
scores, filled **only** where the dictionary has a verified norm for the client's age (otherwise `note`
says why). `better` gives the direction of the scale. We leave the `client` column out of the displays:
there is no need to look at pseudonyms.
'''),
    code('''
table = h.table
print(f"{len(table)} scores, {table['client'].nunique()} clients, {table['programme'].nunique()} programmes")
table.drop(columns=["client"]).head(8)
'''),
    code('''
(table[table["occasion"] != "session"]
 .groupby(["construct", "instrument", "scale", "better"])
 .agg(scores=("raw", "size"), with_z=("z", "count"), programmes=("programme", "nunique")))
'''),
    code('''
table["note"].value_counts()
'''),
    md('''
### The client table

One row per programme x client, with the moderators: age at intake, weeks in care, the last phase
reached, the end reason, interventions and the programme's fidelity score. The cross table below shows
how many clients left early per programme. Counts this small are fine inside the team, but would be
suppressed in a public report (notebook 05).
'''),
    code('''
clients = h.clients
clients.drop(columns=["client"]).head()
'''),
    code('''
pd.crosstab(clients["programme"], clients["end_reason"], margins=True)
'''),
    md('''
## 3. Where do the numbers come from? The data dictionary

Reliable change needs a reliability and an SD; clinical significance needs a cut-off or norms. None of
these are typed into the analysis code: they come from the data dictionary (`data_dictionary/*.yaml`),
and every number there carries its source. A number without a published source is flagged **unverified**
and is never used: the analyses then say what they could not compute, instead of using a guess.

`scales_frame()` shows, per instrument scale, the verified reliability, norm group (mean, SD) and
clinical cut-off with their sources (empty where nothing verified exists):
'''),
    code('''
dd = load_dictionary()
scales = dd.scales_frame()
scales[["instrument", "scale", "better", "reliability", "reliability_type", "reliability_source",
        "norm_group", "norm_mean", "norm_sd", "cutoff", "cutoff_source"]]
'''),
    md('''
`unverified()` lists every number in the dictionary that still lacks a published source. This is the
to-do list for whoever maintains the dictionary: each entry fixed there changes the results below
without touching any code.
'''),
    code('''
unverified = dd.unverified()
print(len(unverified), "numbers in the dictionary have no published source yet")
unverified.head(15)
'''),
    md('''
## 4. Reliable change per client

`change.reliable_change(table, pre="intake", post="discharge")` pairs every client's intake and discharge
score per construct and instrument and computes the reliable change index (Jacobson & Truax, 1991)

$$RCI = \\frac{post - pre}{S_{diff}}, \\qquad S_{diff} = \\sqrt{2}\\, SD \\sqrt{1 - r_{xx}}$$

with $SD$ the SD of the verified norm group (T-scores: 10; without a verified norm the SD of the
programme's own intake scores, and `sd_source` says so) and $r_{xx}$ the published reliability. $|RCI| > 1.96$ is reliable
change. A client who improves reliably *and* crosses the cut-off is *recovered*. Clients without both
occasions (early leavers often lack a discharge measurement) are left out, and a scale without a
published reliability gives `not assessable` rows, with the reason in `note`.
'''),
    code('''
rc = change.reliable_change(table, pre="intake", post="discharge")
rc["category"].value_counts()
'''),
    md('''
Every row carries the provenance of its numbers. The SD and the cut-off are chosen per programme and
scale, so we show one row per programme x scale: where the SD, the reliability and the cut-off came from,
and why a scale could not be assessed.
'''),
    code('''
provenance = ["programme", "construct", "instrument", "scale", "sd", "sd_source", "reliability",
              "reliability_source", "cutoff", "cutoff_kind", "note"]
(rc.drop_duplicates(["programme", "instrument", "scale"])[provenance]
   .sort_values(["construct", "instrument", "programme"]).reset_index(drop=True))
'''),
    md('''
`change.summary(rc)` counts the categories per programme and construct with exact (Clopper-Pearson)
95% confidence intervals. With groups of 2 to 20 clients the intervals are wide: a proportion of
recovered clients from six girls says very little on its own.
'''),
    code('''
summ = change.summary(rc)
summ[summ["construct"] == "internalising"].round(3)
'''),
    md('''
The Jacobson plot: intake against discharge per client. Points inside the grey band have not changed
reliably; the dashed lines are the cut-off. Lower is better on these scales, so points *below* the band
improved. Clients are not labelled.
'''),
    code('''
fig = change.jacobson_plot(rc, construct="internalising")
'''),
    md('''
## 5. Pre-post effect sizes per programme

`change.prepost` compares intake and discharge per programme and instrument: $d_z$ with an exact CI,
$d_{av}$ / Hedges' $g_{av}$ and $d_{rm}$ (Lakens, 2013), the paired t-test and the Wilcoxon signed-rank test.
The change is signed so that **positive means improvement**. With very small groups it warns: the Wilcoxon
test cannot reach p < .05 below six pairs, and the t-test has little power.
'''),
    code('''
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pp = change.prepost(table, pre="intake", post="discharge")
print(f"{len(caught)} small-sample warnings")
pp[["programme", "construct", "instrument", "scale", "n", "mean_pre", "mean_post", "d_z", "d_z_ci_lower",
    "d_z_ci_upper", "g_av", "p_t", "p_wilcoxon", "power_d08", "warning"]].round(3)
'''),
    md('''
**Reading this.** Effect sizes from a handful of clients have confidence intervals that span "no effect" to
"very large effect"; the `power_d08` column gives the power the paired t-test had for a large effect
($d_z = 0.8$). That is why the later notebooks turn to designs that use *more measurements per client*
(single-case series, notebook 02; growth models, notebook 03) and plan the sample size first
(notebook 04).
'''),
    md('''
Clean up the temporary folder (the synthetic exports and anything written to it).
'''),
    code('''
shutil.rmtree(workdir, ignore_errors=True)
'''),
]

# --------------------------------------------------------------------------- #
# 02 single case
# --------------------------------------------------------------------------- #
NB02 = [
    md('''
# 02 - Single-case analysis of a multiple-baseline design

Two programmes measure their clients weekly with a short distress rating (**SUD-week**, 0-10, **lower is
better**): a baseline phase **A** of a few weeks, then the intervention phase **B**, with the start of B
staggered over the clients. That is a *multiple-baseline design across participants*: each client is her
own control, and the staggered starts rule out that something else that happened at one moment explains
the change.

Steps: design check (WWC standards), the multiple-baseline graph, per-case effect sizes, a randomization
test, piecewise regression and a design-comparable between-case effect size.
'''),
    code('''
%matplotlib inline
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
'''),
    md('''
## 1. The demo data

Synthetic exports, harmonised with a demo key (see notebook 01 for both steps and for how to handle the
key with real data).
'''),
    code(SETUP_DATA),
    md('''
The weekly series are the rows with `occasion == "session"`: columns `session` (1, 2, ...), `sced_phase`
(`A` or `B`) and `raw` (the rating).
'''),
    code('''
series = table[table["occasion"] == "session"]
series.groupby(["programme", "instrument"]).agg(
    cases=("client", "nunique"), sessions=("session", "size"),
    baseline_sessions=("sced_phase", lambda s: int((s == "A").sum())))
'''),
    md('''
We analyse the programme with the most cases as one multiple-baseline study (the other programme follows
at the end). Cases are numbered instead of showing their pseudonyms: the analysis does not need them, and
a graph with pseudonyms should not leave the team.
'''),
    code('''
focus = series.groupby("programme")["client"].nunique().idxmax()
mb = series[(series["programme"] == focus) & (series["instrument"] == "SUD-week")].copy()
number = {c: f"case {i}" for i, c in enumerate(sorted(mb["client"].unique()), start=1)}
mb["case"] = mb["client"].map(number)
mb = mb[["case", "session", "sced_phase", "raw"]].sort_values(["case", "session"]).reset_index(drop=True)
print(focus, "-", mb["case"].nunique(), "cases,", len(mb), "sessions")
mb.head()
'''),
    md('''
## 2. Does the design meet the standards?

`design_check` rates the design against the What Works Clearinghouse pilot standards (Kratochwill et al.,
2010, 2013): at least three tiers (cases) with three *different* intervention start sessions, and at least
five data points per phase (three or four: *with reservations*). What the data cannot show (systematic
manipulation of the intervention, inter-assessor agreement) is reported as *not assessed*.
'''),
    code('''
check = design_check(mb, case="case", phase="sced_phase", session="session", design="MB", outcome="raw")
print("Overall:", check.attrs["rating"])
check
'''),
    md('''
## 3. Look first: the multiple-baseline graph

One panel per case, ordered by the start of B; the dashed staircase connects the phase changes.
Visual analysis looks at level, trend, variability, the immediacy of the change and the overlap between
the phases; `trend=True` draws an OLS line per phase.
'''),
    code('''
fig = multiple_baseline_plot(mb, case="case", phase="sced_phase", session="session", outcome="raw",
                             trend=True, ylabel="SUD-week (lower is better)",
                             title=f"{focus}: weekly distress rating")
'''),
    md('''
## 4. Effect sizes per case

`effect_sizes(..., improvement="decrease")` computes the indices of the R package SingleCaseES with its
orientation: the non-overlap indices and the SMD are positive (NAP above 0.5) for an improvement, the
log response ratio for a decreasing outcome is negative:

* **NAP** - non-overlap of all pairs: the share of (A, B) pairs in which B is better (0.5 = no effect);
* **Tau_U** - Kendall-type non-overlap with a correction for baseline trend (Parker et al., 2011; this
  variant can exceed 1 in absolute value, one reason to report NAP or Tau alongside it);
* **PND** - percentage of B points better than the best A point (sensitive to one outlying baseline point);
* **SMD** - within-case standardised mean difference (baseline SD);
* **LRRd** - log response ratio for a decreasing outcome, `log(mean B / mean A)`: negative is
  improvement, and `exp(LRRd)` is the ratio of the phase means (LRRd = -0.4: B is about a third lower).
'''),
    code('''
es = effect_sizes(mb, case="case", phase="sced_phase", session="session", outcome="raw",
                  improvement="decrease", measures=["NAP", "Tau_U", "PND", "SMD", "LRRd"])
es.pivot(index="case", columns="measure", values="estimate").round(2)
'''),
    code('''
es.round(3)
'''),
    md('''
## 5. A randomization test

If the start of B had been drawn at random (within a window agreed in advance), the test statistic under
the actual assignment can be compared with its value under every assignment the procedure *could* have
produced. The observations are never shuffled, only the start points (Edgington, 1980; Marascuilo & Busk,
1988). With `min_phase_length=3` each case's start can fall anywhere that leaves three sessions in A and
in B, so the number of possible assignments is the **product of the cases' numbers of start points**.
The smallest attainable p-value is `1 / n_assignments` (exact) - a design with too few possible
assignments can never give p < .05, however large the effect (one case with five possible start points:
the smallest p is 0.2). Plan the randomization before the study starts.
'''),
    code('''
rt = randomization_test(mb, case="case", phase="sced_phase", session="session", outcome="raw",
                        design="MB", statistic="mean_difference", improvement="decrease",
                        min_phase_length=3, seed=1)
rt.to_frame()
'''),
    code('''
rt.per_case
'''),
    code('''
starts = " x ".join(str(n) for n in rt.per_case["n_start_points"])
print(f"possible assignments: {starts} = {rt.n_assignments:,}")
how = "all enumerated (exact)" if rt.exact else f"Monte Carlo sample of {rt.n_used:,}"
print(f"reference distribution: {how}")
print(f"smallest attainable p: {rt.min_p:.2g}   observed p: {rt.p_value:.3g}")
fig = rt.plot()
'''),
    md('''
The test is valid only if the start points really were drawn at random, before the study, from exactly
these possibilities; for the synthetic data the p-value only illustrates the method.
With a Monte Carlo reference distribution (`exact=False`) the p-value is `(b + 1) / (m + 1)`, never 0,
and `seed` makes it reproducible.

## 6. Piecewise regression

The level- and slope-change model (Huitema & McKean, 2000), per case, with the coding of scan's `plm()`
(`model="W"`: the intercept is the level at the first session): `level_B` is the immediate change in
level when B starts, `slope_B` the change in weekly trend. Negative is better here.
'''),
    code('''
pw = piecewise(mb, case="case", phase="sced_phase", session="session", outcome="raw", model="W")
pw.to_frame().round(3)
'''),
    code('''
fig = pw.plot()
'''),
    md('''
Weekly ratings are autocorrelated; `ar=1` refits each case with AR(1) errors (generalised least squares),
and `multilevel=True` fits one model across the cases with a random intercept per case.
'''),
    code('''
pw_ar = piecewise(mb, case="case", phase="sced_phase", session="session", outcome="raw", ar=1)
pw_ar.fit.round(3)
'''),
    code('''
pw_ml = piecewise(mb, case="case", phase="sced_phase", session="session", outcome="raw", multilevel=True)
pw_ml.to_frame().round(3)
'''),
    md('''
## 7. A design-comparable effect size across cases

To put a multiple-baseline study next to group studies (or into a meta-analysis), the between-case
standardised mean difference divides the treatment effect by the *total* (between- plus within-case) SD,
with a small-sample correction: `method="hps"` (Hedges, Pustejovsky & Shadish, 2013) or `method="reml"`
(Pustejovsky, Hedges & Shadish, 2014; a mixed model with AR(1) errors). It is on the scale's **raw
direction**: a negative value is a decrease in distress, i.e. improvement. The degrees of freedom
(`df`, nu) say how well the between-case variance is estimated; they depend mainly on the number of
*cases*, not sessions. With few cases nu is small, and then the small-sample correction and the t-based
interval matter.
'''),
    code('''
bc = pd.concat([between_case_smd(mb, case="case", phase="sced_phase", session="session", outcome="raw",
                                 method=m) for m in ("hps", "reml")], ignore_index=True)
bc[["method", "estimate", "se", "df", "ci_lower", "ci_upper", "n_cases", "n_obs"]].round(3)
'''),
    md('''
## 8. Both programmes side by side

The same design check and randomization test for every programme with series. Note how the number of
possible assignments (and so the smallest attainable p) depends on the number of cases, and when the test
switches from exact enumeration to a Monte Carlo sample.
'''),
    code('''
rows = []
for programme, grp in series[series["instrument"] == "SUD-week"].groupby("programme"):
    g = grp.assign(case=grp["client"].map(
        {c: f"case {i}" for i, c in enumerate(sorted(grp["client"].unique()), start=1)}))
    chk = design_check(g, case="case", phase="sced_phase", session="session", design="MB")
    res = randomization_test(g, case="case", phase="sced_phase", session="session", outcome="raw",
                             design="MB", improvement="decrease", min_phase_length=3, seed=1)
    rows.append({"programme": programme, "cases": g["case"].nunique(), "design": chk.attrs["rating"],
                 "n_assignments": res.n_assignments, "exact": res.exact, "min_p": res.min_p,
                 "p_value": res.p_value})
pd.DataFrame(rows)
'''),
    md('''
Clean up the temporary folder (the synthetic exports and anything written to it).
'''),
    code('''
shutil.rmtree(workdir, ignore_errors=True)
'''),
]

# --------------------------------------------------------------------------- #
# 03 multilevel
# --------------------------------------------------------------------------- #
NB03 = [
    md('''
# 03 - Growth across programmes: multilevel models with few clients and few programmes

Clients are measured repeatedly (intake, during care, discharge, follow-ups), clients are nested in six
programmes, and the programmes use different questionnaires. This notebook models the change of
**internalising problems** over time on a common metric, and shows why the small numbers (a few dozen
clients, six programmes) need small-sample inference.
'''),
    code('''
%matplotlib inline
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
'''),
    code(SETUP_DATA),
    md('''
## 1. A common metric: norm-referenced z

Programmes measure internalising problems with the SDQ (self-report) or the YSR. The harmonised table
gives `z`, the score relative to the verified Dutch norm group for the client's age (0 = norm mean,
1 = one SD worse for these scales, where lower is better), so the instruments can be analysed together.
Scores without a verified norm have no `z` and are left out. Time is `week` since intake; the weekly
single-case sessions are left out here.
'''),
    code('''
growth = table[(table["construct"] == "internalising") & table["z"].notna()
               & (table["occasion"] != "session")]
print("direction of the scales:", sorted(growth["better"].unique()))
growth = growth[["programme", "client", "occasion", "week", "instrument", "z"]].reset_index(drop=True)
growth.groupby(["programme", "instrument"]).agg(
    clients=("client", "nunique"), scores=("z", "size"), last_week=("week", "max")).round(1)
'''),
    code('''
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
'''),
    md('''
## 2. Two-level growth model: occasions in clients

`fit("z ~ week + (1 + week | client)", data)` fits, by REML, a straight line per client (random intercept
and slope, correlated) around the average line. The formula syntax is lme4's.
'''),
    code('''
m2 = fit("z ~ week + (1 + week | client)", growth)
print(f"{m2.nobs} scores, groups: {m2.n_groups}, singular fit: {m2.is_singular}")
m2.variance_components()
'''),
    md('''
### Why the degrees of freedom matter

A t-test of a fixed effect needs denominator degrees of freedom. With hundreds of *scores* but only a few
dozen *clients* (and the time slope varying between clients), the information about the average slope is
closer to the number of clients than to the number of scores:

* `"residual"`: n - p, as if all scores were independent: far too many df, CIs too narrow, p too small;
* `"satterthwaite"` (lmerTest): df from the variance of the estimate's variance;
* `"kenward-roger"` (pbkrtest): Satterthwaite-like df *and* an inflated standard error that accounts for
  the uncertainty in the variance components. The safest choice with few clusters.
'''),
    code('''
ddf = pd.concat({d: m2.coefficients(ddf=d).set_index("term")[["estimate", "se", "df", "p_value",
                                                                 "ci_lower", "ci_upper"]]
                 for d in ("residual", "satterthwaite", "kenward-roger")}, names=["ddf"])
ddf.round(4)
'''),
    md('''
The slope is per week: multiply by 26 for half a year of care.
'''),
    code('''
slope = m2.coefficients(ddf="kenward-roger").set_index("term").loc["week"]
print(f"change per 26 weeks: {26 * slope['estimate']:.2f} SD "
      f"(95% CI {26 * slope['ci_lower']:.2f} to {26 * slope['ci_upper']:.2f})")
'''),
    md('''
## 3. A third level for six programmes?

The obvious next step is a random intercept per programme: `(1 | programme)`. With **six** programmes the
programme variance is estimated from six numbers: it is very imprecise and often ends on zero (a
*singular* fit, reported in `messages`). `fit` warns (`FewClustersWarning`) whether or not the fit is
singular, and suggests the alternative.
'''),
    code('''
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    m3 = fit("z ~ week + (1 | programme) + (1 + week | client)", growth)
for w in caught:
    print(f"{w.category.__name__}: {w.message}")
print("singular fit:", m3.is_singular, m3.messages)
m3.variance_components()
'''),
    md('''
**Fixed-effect alternative.** Six programmes are not a sample from a population of programmes; they are
*the* programmes of this study. Entering `programme` as a fixed factor estimates each programme's level
directly (relative to a reference programme) and keeps the client-level random effects:
'''),
    code('''
mfe = fit("z ~ week + programme + (1 + week | client)", growth)
mfe.coefficients(ddf="kenward-roger").round(3)
'''),
    md('''
`spaghetti_plot` draws each client's trajectory (never labelled) with the fitted mean line per programme;
with programme as a fixed factor the lines differ in level and share the slope:
'''),
    code('''
fig = spaghetti_plot(mfe, time="week", outcome="z", client="client", group="programme")
'''),
    md('''
## 4. Cluster-robust (CR2) inference on programmes

If the question is about the *average* slope across programmes, a cluster-robust variance with programmes
as clusters protects against mis-specifying how programmes differ. The usual sandwich estimator is badly
biased with few clusters; `cluster_robust(..., cluster="programme")` uses the bias-reduced CR2 estimator
with Satterthwaite degrees of freedom (Bell & McCaffrey, 2002; Pustejovsky & Tipton, 2018; as R's
clubSandwich). It accepts a fitted mixed model (the working model) or an OLS formula.
'''),
    code('''
cr = cluster_robust(m2, cluster="programme")
cr.conf_int().round(4)
'''),
    md('''
**The tiny df are the message.** With six clusters the CR2 degrees of freedom can never exceed five, and
they drop further when a coefficient's information sits in one or two programmes (for the slope, the
programme with the long follow-ups weighs heavily). A df around 1 or 2 means the t reference distribution
has very heavy tails: the interval is wide, and honest about how little six programmes say about
programmes in general. Tipton (2015) advises caution whenever these df fall below 4. The OLS version
(no working model) for comparison:
'''),
    code('''
cluster_robust("z ~ week", growth, cluster="programme").conf_int().round(4)
'''),
    md('''
## 5. Dense series: AR(1) errors

Weekly single-case ratings (notebook 02) are many measurements close together, so consecutive residuals
are correlated. `fit_ar1` fits a mixed model with AR(1) within-client errors, as `nlme::lme(...,
correlation = corAR1())`: here the phase effect (B vs A) on the SUD-week rating with a random intercept
per client. `phi` is the lag-1 autocorrelation; the likelihood-ratio test compares with independent errors.
'''),
    code('''
sud = table[(table["occasion"] == "session") & (table["instrument"] == "SUD-week")]
ar = fit_ar1("raw ~ sced_phase", sud, group="client", random="1", correlation="AR1", index="session")
print(f"phi = {ar.phi:.2f}; LRT against independent errors = {ar.lrt:.1f} (p = {ar.lrt_p:.2g})")
ar.fixed.round(4)
'''),
    md('''
Note the containment df of the phase effect: they count sessions, and with autocorrelated series that is
optimistic. For the phase effect across cases, prefer the single-case tools of notebook 02 (randomization
test, between-case SMD with its small df).
'''),
    md('''
Clean up the temporary folder (the synthetic exports and anything written to it).
'''),
    code('''
shutil.rmtree(workdir, ignore_errors=True)
'''),
]

# --------------------------------------------------------------------------- #
# 04 power
# --------------------------------------------------------------------------- #
NB04 = [
    md('''
# 04 - Power: how many clients, programmes and measurements?

Power analysis by simulation: describe the planned study, generate many data sets from the model you
expect, analyse each one exactly as you will analyse the real data, and count how often the test rejects.
This notebook sizes

1. a **growth-model study** across the six programmes,
2. a **multiple-baseline single-case study** with one case per programme,
3. a **responder (reliable change) study**,

and compares with the classic t-test formulas.

**Small `nsim` here.** To keep the notebook fast we use 50-200 replicates. The Monte Carlo standard error
of a power estimate is `sqrt(p (1 - p) / nsim)`: 0.07 at nsim = 50, 0.016 at nsim = 1000. **Real planning
needs nsim >= 1000** (run it with `n_jobs=-1` or on a Dask cluster via `scheduler=`).
'''),
    code('''
%matplotlib inline
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
'''),
    md('''
## 1. A growth-model study

`GrowthDesign.planned(...)` builds the measurement layout: programmes, clients per programme, the planned
weeks, and dropout (here a quarter of the clients leave early, each from a random occasion on; the
pattern is drawn once with `seed`). The model is the growth model of notebook 03:
`y ~ time + (1 | programme) + (1 + time | client)`, with the true values you expect: the fixed effects and
the SDs of the random effects (on the raw scale, e.g. T-scores). The test is the t-test of the time slope
with Satterthwaite df.
'''),
    code('''
design = GrowthDesign.planned(
    programmes=6, clients_per_programme=8, weeks=[0, 8, 16, 24, 32], dropout=0.25, seed=1,
    formula="y ~ time", fixed={"Intercept": 50, "time": -0.10},
    sd_programme=2.0, sd_intercept=6.0, sd_slope=0.15, cor_intercept_slope=-0.3, sd_residual=5.0,
    test_term="time", ddf="satterthwaite", name="6 x 8 clients")
pd.Series(design.describe())
'''),
    md('''
`d_feingold` is the standardised effect of the planned slope over the whole study (Feingold, 2009):
slope x duration / total SD. Dropout thins the later occasions:
'''),
    code('''
design.layout.groupby("time")["client"].nunique().rename("clients observed")
'''),
    code('''
res = simulate(design, nsim=100, seed=1, progress=False)
res.to_frame().T
'''),
    md('''
`power` with its exact 95% Monte Carlo interval, the number of failed and singular fits (singular fits are
kept, as in simr; failed fits count as non-rejections). Many fits are singular: a programme SD of 2 is
often estimated as zero from six programmes, the problem of notebook 03. The histogram shows the
replicate p-values.
'''),
    code('''
fig = res.plot()
'''),
    md('''
### Power curve

`power_curve(design, {"clients_per_programme": [...]})` re-plans the layout at each value (any argument
of `planned`, any design field, or `"fixed:time"` for the effect) and simulates with the same seed, so the
curve is smooth.
'''),
    code('''
curve = power_curve(design, {"clients_per_programme": [4, 8, 12, 16]}, nsim=50, seed=1, progress=False)
curve.to_frame()[["clients_per_programme", "power", "ci_lower", "ci_upper", "n_singular"]]
'''),
    code('''
fig = curve.plot()
'''),
    md('''
## 2. A multiple-baseline study with one case per programme

`SingleCaseDesign` simulates AR(1) series (SD 1, so effects are in within-case SD units) with a level shift
at a randomly drawn start point per case, and analyses each with the multiple-baseline randomization test
of notebook 02. For the SUD-week rating lower is better: a negative shift and `alternative="less"`.
The number of possible assignments (each case's start window, multiplied) sets the smallest attainable p.
'''),
    code('''
sc = SingleCaseDesign(n_cases=6, series_length=20, start_window=(6, 15), level_shift=-1.0, ar=0.3,
                      statistic="mean_difference", alternative="less", name="MB, 6 cases")
print(f"possible assignments: {sc.n_assignments:,}; test: {sc.test_description()}")
sc_res = simulate(sc, nsim=200, seed=1, progress=False)
sc_res.to_frame()[["design", "power", "ci_lower", "ci_upper", "nsim"]]
'''),
    code('''
sc_curve = power_curve(sc, {"n_cases": [3, 4, 6]}, nsim=200, seed=1, progress=False)
fig = sc_curve.plot()
'''),
    md('''
## 3. A responder study: enough reliable improvers?

`ResponderDesign` asks: if the true mean change is `mean_change` (raw units), how likely is it that more
than `null_proportion` of the clients improve *reliably* (|RCI| > 1.96, Jacobson & Truax)? The SD and the
reliability come from the data dictionary, never from a guess - here the YSR internalising T-score
(SD 10 in the T metric):
'''),
    code('''
scales = load_dictionary().scales_frame()
ysr = scales[(scales["instrument"] == "YSR") & (scales["scale"] == "internalising_t")].iloc[0]
print(f"YSR internalising: reliability {ysr['reliability']} ({ysr['reliability_source']}), "
      f"norm SD {ysr['norm_sd']}")
# group sizes of the demo programmes
resp = ResponderDesign(n_per_programme=[12, 9, 16, 25, 6, 4], mean_change=-8.0, sd=float(ysr["norm_sd"]),
                       reliability=float(ysr["reliability"]), sd_true_change=5.0, null_proportion=0.2)
print(f"S_diff = {resp.s_diff:.2f}; probability of a reliable improvement = {resp.responder_probability:.2f}")
resp.analytic().round(3)
'''),
    md('''
Per programme the exact binomial test has little power with these group sizes; pooled over the
programmes it is ample. The simulation agrees with the exact calculation:
'''),
    code('''
simulate(resp, nsim=200, seed=1, progress=False).to_frame()[["design", "power", "ci_lower", "ci_upper"]]
'''),
    md('''
## 4. The classic formulas

For a simple pre-post comparison (paired t-test), `t_test_power` gives the analytic power (as R's `pwr`),
`solve_n` the number of clients for a target power, and `slope_from_d` translates a standardised effect
into the growth-model slope of section 1.
'''),
    code('''
grid = pd.DataFrame([{"n": n, **{f"d_z = {d}": t_test_power(d, n, kind="paired") for d in (0.5, 0.8, 1.2)}}
                     for n in (4, 6, 9, 12, 16, 25)])
grid.round(3)
'''),
    code('''
for d in (0.5, 0.8):
    print(f"paired t-test, d_z = {d}: {int(np.ceil(solve_n(d, power=0.8, kind='paired')))} clients for 80% power")
print(f"slope for d = 0.5 over 32 weeks with total SD {design.sd_total:.2f}: "
      f"{slope_from_d(0.5, duration=design.duration, sd_total=design.sd_total):.3f} per week")
'''),
    md('''
**Before you plan for real:** rerun with `nsim=1000` or more, vary the assumptions you are least sure of
(the slope SD, the dropout, the effect) with `power_curve`, and write the design down in a YAML file
(`effectstudy.power.load_design` / `run_from_yaml`) so the calculation can be repeated.
'''),
]

# --------------------------------------------------------------------------- #
# 05 report
# --------------------------------------------------------------------------- #
NB05 = [
    md('''
# 05 - The study report

`build_report` runs the analyses of notebooks 01-04 on the harmonised data, as described in an analysis
spec (`ANALYSIS.yaml`), and writes one HTML and one PDF report. It reads only harmonised data, never the
raw exports. There are two audiences:

* **public** (the default): small cells suppressed, no pseudonyms, no case-level series;
* **internal**: for the research team, with pseudonymised case-level detail.
'''),
    code('''
%matplotlib inline
import base64
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from effectstudy import synth
from effectstudy.harmonise import harmonise
from effectstudy.report import build_report, load_spec, suppress_table

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)
'''),
    md('''
## 1. Harmonised data on disk

The report starts from a harmonised folder (written by `Harmonised.write`) or a `Harmonised` object.
Write it once; analyses and reports read it back.
'''),
    code(SETUP_DATA + '''
harmonised_dir = workdir / "harmonised"
written = h.write(harmonised_dir, format="parquet")
sorted(p.name for p in written)
'''),
    md('''
## 2. The analysis spec

With `spec=None` the demo spec is used. A real study keeps its own `ANALYSIS.yaml` next to the data
(every key is checked: a typo is an error, not a silently missing section). The demo spec:
'''),
    code('''
spec = load_spec(None)
spec
'''),
    md('''
## 3. Build the public report
'''),
    code('''
public = build_report(harmonised_dir, spec=None, out=workdir / "report_public", audience="public")
print("HTML:", public.html_path.name, f"({public.html_path.stat().st_size / 1024:.0f} kB)")
if public.pdf_path is not None:
    print("PDF: ", public.pdf_path.name, f"({public.pdf_path.stat().st_size / 1024:.0f} kB)")
list(public.sections)
'''),
    md('''
The report records how it was made (package versions, the data hash, the dictionary hash, the spec), so
a number in it can be traced back:
'''),
    code('''
pd.Series({k: v for k, v in public.provenance.items() if not isinstance(v, (dict, list))})
'''),
    md('''
A figure from the report (figures are embedded in the HTML as PNG):
'''),
    code('''
html_public = public.html_path.read_text(encoding="utf-8")
figures = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html_public)
print(len(figures), "figures in the public report")
display(Image(data=base64.b64decode(figures[0])))
'''),
    md('''
## 4. Small-cell suppression

A public table must not let anyone recognise a girl. Counts below the threshold (5, zero included) are
shown as `<5` (**primary suppression**); then further cells are hidden so that a hidden count cannot be
recovered by subtracting the visible cells from a row or column total (**secondary suppression**,
Statistics Netherlands' usual rule). Statistics computed on few clients (means, proportions) are hidden
with their count. An example with the end reasons per programme:
'''),
    code('''
counts = pd.crosstab(h.clients["programme"], h.clients["end_reason"])
counts
'''),
    code('''
suppress_table(counts, threshold=5)
'''),
    md('''
## 5. Public versus internal

The internal report keeps pseudonyms, small counts and the case-level single-case graphs; it is for the
team only. Here it
is built from the `Harmonised` object instead of the folder, without a PDF. We compare the two without
printing any pseudonym: we only *count* them.
'''),
    code('''
internal = build_report(h, spec=None, out=workdir / "report_internal", audience="internal", pdf=False)
html_internal = internal.html_path.read_text(encoding="utf-8")

pseudonym = re.compile(r"\\b[A-Z]{1,4}-[0-9a-f]{8}\\b")
pd.DataFrame({
    "public": [len(pseudonym.findall(html_public)), html_public.count("&lt;5"),
               len(re.findall("data:image/png", html_public))],
    "internal": [len(pseudonym.findall(html_internal)), html_internal.count("&lt;5"),
                 len(re.findall("data:image/png", html_internal))],
}, index=["pseudonyms", "suppressed cells (<5)", "figures"])
'''),
    md('''
**Rules of thumb.** Send only the public report outside the team. Never edit a report by hand: change the
spec or the dictionary and rebuild, so the provenance stays true. The internal report and the harmonised
folder are research data: store them like the raw exports, and keep the pseudonym key elsewhere.
'''),
    md('''
Clean up the temporary folder with the exports, the harmonised data and both reports (skip this cell\nto keep the reports and open `public.html_path` in a browser).
'''),
    code('''
shutil.rmtree(workdir, ignore_errors=True)
'''),
]


def main() -> None:
    for name, cells in [("01_harmonise_and_change.ipynb", NB01), ("02_single_case.ipynb", NB02),
                        ("03_multilevel.ipynb", NB03), ("04_power.ipynb", NB04),
                        ("05_report.ipynb", NB05)]:
        print("wrote", write(name, cells).relative_to(HERE.parent))


if __name__ == "__main__":
    main()
