# %% [markdown]
# # 01 - From raw exports to reliable change
#
# This notebook walks through the first half of an effect study with `effectstudy`:
#
# 1. **generate** synthetic raw exports of the six programmes (so nothing here is real client data),
# 2. **harmonise** them into one long, pseudonymised table, and look at what was rejected and why,
# 3. look up **where every psychometric number comes from** (the data dictionary),
# 4. compute **reliable and clinically significant change** per client (Jacobson & Truax, 1991) and
#    pre-post effect sizes per programme.
#
# Everything runs on a temporary folder and takes a few seconds.

# %%
# %matplotlib inline
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

# %% [markdown]
# ## 1. Synthetic raw exports
#
# `synth.generate(folder, seed=...)` writes, for every programme in the data dictionary, the export files
# exactly as the programme delivers them: Excel workbooks with one row per client, SPSS `.sav` files with
# value labels, a Dutch-locale CSV (`;` separator, decimal comma), a long CSV and the weekly single-case
# series. The same seed always gives the same files. The groups are small and unequal (4 to 25 clients),
# and a quarter or more of the clients leave early (absconded or transferred), as in the real programmes.

# %%
workdir = Path(tempfile.mkdtemp(prefix="effectstudy_demo_"))
exports = workdir / "exports"
demo = synth.generate(exports, seed=2026)

pd.DataFrame({
    "file": [p.name for p in demo.files],
    "kB": [round(p.stat().st_size / 1024, 1) for p in demo.files],
})

# %% [markdown]
# The generator also plants a few realistic errors in every file (a score outside the scale's range, an
# impossible date, an occasion label nobody declared, a duplicated row), and tells us where. We will see the
# harmoniser find them.

# %%
demo.injected.groupby(["programme", "kind"]).size().unstack(fill_value=0)

# %% [markdown]
# ## 2. Harmonise: one long table, pseudonymised at the door
#
# `harmonise(folder, key=...)` reads every export the dictionary describes, maps the programme's own labels
# (occasions, phases, instruments) to the canonical ones, checks every score against the scale's range,
# and replaces each client id by a **keyed pseudonym** (`HMAC-SHA256(key, programme + id)`, shown as e.g.
# `VL-3f9a1c2e07b4d58e6a13`). Names, dates of birth and BSNs never leave the reader.
#
# **About the key.** Here we pass an explicit demo key because the data are synthetic. For real data,
# do *not* write the key in a notebook: leave `key=` out and `effectstudy` takes it from the environment
# variable `EFFECTSTUDY_PSEUDONYM_KEY`, or from a key file (`EFFECTSTUDY_KEY_FILE`, default
# `~/.config/effectstudy/pseudonym.key`, created once with a random key). Keep that file **outside the data
# folder** (the harmoniser refuses a key file inside the data or output folder) and back it up: the same key
# is needed to link next year's exports to this year's pseudonyms.

# %%
DEMO_KEY = "synthetic-demo-key-do-not-use-for-real-data"   # synthetic data only!
h = harmonise(exports, key=DEMO_KEY)
h.summary()

# %% [markdown]
# `summary()` gives one row per programme: the files read, clients, occasions, constructs and instruments,
# the number of scores that reached the table (`rows`), the number of score records read (`rows_in`) and
# rejected, and the reasons.
#
# ### The rejection log
#
# Every score that did not reach the table is in the rejection log with the file, the row (as a
# spreadsheet counts it), the column, the kind of problem and a reason. The `value` column never shows an
# identifier or a date of birth.

# %%
h.rejection_counts()

# %%
h.rejections.head(10)

# %% [markdown]
# The planted errors and the log agree kind by kind (the generator's `bad_date` is the log's
# `unparseable_date`; a duplicated client row in a wide file gives one log entry per score it repeats):

# %%
pd.DataFrame({
    "planted": demo.injected["kind"].replace({"bad_date": "unparseable_date"}).value_counts(),
    "log entries": h.rejections["kind"].value_counts(),
}).fillna(0).astype(int)

# %% [markdown]
# Per input file the accounting must close exactly: score records read = scores in the table + scores rejected.

# %%
acc = h.accounting
assert (acc["rows_in"] == acc["rows_out"] + acc["rows_rejected"]).all()
acc

# %% [markdown]
# ### The long table
#
# One row per accepted score. `occasion` is the canonical occasion (`intake`, `during`, `discharge`,
# `follow_up_3m`, ..., or `session` for the weekly single-case series), `occasion_label` the programme's own
# label, `week` the time since intake. `raw` is the score as delivered; `z` and `t` are norm-referenced
# scores, filled **only** where the dictionary has a verified norm for the client's age (otherwise `note`
# says why). `better` gives the direction of the scale. We leave the `client` column out of the displays:
# there is no need to look at pseudonyms.

# %%
table = h.table
print(f"{len(table)} scores, {table['client'].nunique()} clients, {table['programme'].nunique()} programmes")
table.drop(columns=["client"]).head(8)

# %%
(table[table["occasion"] != "session"]
 .groupby(["construct", "instrument", "scale", "better"])
 .agg(scores=("raw", "size"), with_z=("z", "count"), programmes=("programme", "nunique")))

# %%
table["note"].value_counts()

# %% [markdown]
# ### The client table
#
# One row per programme x client, with the moderators: age at intake, weeks in care, the last phase
# reached, the end reason, interventions and the programme's fidelity score. The cross table below shows
# how many clients left early per programme. Counts this small are fine inside the team, but would be
# suppressed in a public report (notebook 05).

# %%
clients = h.clients
clients.drop(columns=["client"]).head()

# %%
pd.crosstab(clients["programme"], clients["end_reason"], margins=True)

# %% [markdown]
# ## 3. Where do the numbers come from? The data dictionary
#
# Reliable change needs a reliability and an SD; clinical significance needs a cut-off or norms. None of
# these are typed into the analysis code: they come from the data dictionary (`data_dictionary/*.yaml`),
# and every number there carries its source. A number without a published source is flagged **unverified**
# and is never used: the analyses then say what they could not compute, instead of using a guess.
#
# `scales_frame()` shows, per instrument scale, the verified reliability, norm group (mean, SD) and
# clinical cut-off with their sources (empty where nothing verified exists):

# %%
dd = load_dictionary()
scales = dd.scales_frame()
scales[["instrument", "scale", "better", "reliability", "reliability_type", "reliability_source",
        "norm_group", "norm_mean", "norm_sd", "cutoff", "cutoff_source"]]

# %% [markdown]
# `unverified()` lists every number in the dictionary that still lacks a published source. This is the
# to-do list for whoever maintains the dictionary: each entry fixed there changes the results below
# without touching any code.

# %%
unverified = dd.unverified()
print(len(unverified), "numbers in the dictionary have no published source yet")
unverified.head(15)

# %% [markdown]
# ## 4. Reliable change per client
#
# `change.reliable_change(table, pre="intake", post="discharge")` pairs every client's intake and discharge
# score per construct and instrument and computes the reliable change index (Jacobson & Truax, 1991)
#
# $$RCI = \frac{post - pre}{S_{diff}}, \qquad S_{diff} = \sqrt{2}\, SD \sqrt{1 - r_{xx}}$$
#
# with $SD$ the SD of the verified norm group (T-scores: 10; without a verified norm the SD of the
# programme's own intake scores, and `sd_source` says so) and $r_{xx}$ the published reliability. $|RCI| > 1.96$ is reliable
# change. A client who improves reliably *and* crosses the cut-off is *recovered*. Clients without both
# occasions (early leavers often lack a discharge measurement) are left out, and a scale without a
# published reliability gives `not assessable` rows, with the reason in `note`.

# %%
rc = change.reliable_change(table, pre="intake", post="discharge")
rc["category"].value_counts()

# %% [markdown]
# Every row carries the provenance of its numbers. The SD and the cut-off are chosen per programme and
# scale, so we show one row per programme x scale: where the SD, the reliability and the cut-off came from,
# and why a scale could not be assessed.

# %%
provenance = ["programme", "construct", "instrument", "scale", "sd", "sd_source", "reliability",
              "reliability_source", "cutoff", "cutoff_kind", "note"]
(rc.drop_duplicates(["programme", "instrument", "scale"])[provenance]
   .sort_values(["construct", "instrument", "programme"]).reset_index(drop=True))

# %% [markdown]
# `change.summary(rc)` counts the categories per programme and construct with exact (Clopper-Pearson)
# 95% confidence intervals. With groups of 2 to 20 clients the intervals are wide: a proportion of
# recovered clients from six girls says very little on its own.

# %%
summ = change.summary(rc)
summ[summ["construct"] == "internalising"].round(3)

# %% [markdown]
# The Jacobson plot: intake against discharge per client. Points inside the grey band have not changed
# reliably; the dashed lines are the cut-off. Lower is better on these scales, so points *below* the band
# improved. Clients are not labelled.

# %%
fig = change.jacobson_plot(rc, construct="internalising")

# %% [markdown]
# ## 5. Pre-post effect sizes per programme
#
# `change.prepost` compares intake and discharge per programme and instrument: $d_z$ with an exact CI,
# $d_{av}$ / Hedges' $g_{av}$ and $d_{rm}$ (Lakens, 2013), the paired t-test and the Wilcoxon signed-rank test.
# The change is signed so that **positive means improvement**. With very small groups it warns: the Wilcoxon
# test cannot reach p < .05 below six pairs, and the t-test has little power.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pp = change.prepost(table, pre="intake", post="discharge")
print(f"{len(caught)} small-sample warnings")
pp[["programme", "construct", "instrument", "scale", "n", "mean_pre", "mean_post", "d_z", "d_z_ci_lower",
    "d_z_ci_upper", "g_av", "p_t", "p_wilcoxon", "power_d08", "warning"]].round(3)

# %% [markdown]
# **Reading this.** Effect sizes from a handful of clients have confidence intervals that span "no effect" to
# "very large effect"; the `power_d08` column gives the power the paired t-test had for a large effect
# ($d_z = 0.8$). That is why the later notebooks turn to designs that use *more measurements per client*
# (single-case series, notebook 02; growth models, notebook 03) and plan the sample size first
# (notebook 04).

# %% [markdown]
# Clean up the temporary folder (the synthetic exports and anything written to it).

# %%
shutil.rmtree(workdir, ignore_errors=True)
