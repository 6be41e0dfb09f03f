# %% [markdown]
# # 05 - The study report
#
# Two steps. The **study layer** (`effectstudy.study.run`) runs the analyses of notebooks 01-04 once on the
# harmonised data, as an analysis spec (`ANALYSIS.yaml`) describes them, and keeps the exact results
# (`StudyResults`, saved as parquet + JSON and verified on reading). The **report** (`build_report`) is a
# pure renderer of those results: it computes nothing, it suppresses, translates (`language="nl"` or
# `"en"`) and lays out one HTML and one PDF report. Nothing here reads the raw exports. There are two
# audiences:
#
# * **public** (the default): small cells suppressed, no pseudonyms, no case-level series;
# * **internal**: for the research team, with pseudonymised case-level detail.

# %%
# %matplotlib inline
import base64
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from effectstudy import study, synth
from effectstudy.harmonise import harmonise
from effectstudy.report import build_report, suppress_table

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)

# %% [markdown]
# ## 1. Harmonised data on disk
#
# The report starts from a harmonised folder (written by `Harmonised.write`) or a `Harmonised` object.
# Write it once; analyses and reports read it back.

# %%
workdir = Path(tempfile.mkdtemp(prefix="effectstudy_demo_"))
exports = workdir / "exports"                  # the raw (synthetic) exports
demo = synth.generate(exports, seed=2026)       # six programmes, seeded: same data every run

# An explicit key, for SYNTHETIC data only (real data: see notebook 01).
DEMO_KEY = "synthetic-demo-key-do-not-use-for-real-data"
h = harmonise(exports, key=DEMO_KEY)
table = h.table
print(f"{len(table)} scores of {table['client'].nunique()} clients in {table['programme'].nunique()} programmes")

harmonised_dir = workdir / "harmonised"
written = h.write(harmonised_dir, format="parquet")
sorted(p.name for p in written)

# %% [markdown]
# ## 2. The analysis spec
#
# With `spec=None` the demo spec is used. A real study keeps its own `ANALYSIS.yaml` next to the data
# (every key is checked: a typo is an error, not a silently missing section). The demo spec:

# %%
spec = study.load_spec(None)
spec["power"]["nsim"] = 50  # fewer simulated studies than the demo, to keep this notebook quick
spec

# %% [markdown]
# ## 3. Run the study once, keep the results
#
# `study.run` computes every section the spec asks for; `save` writes the results atomically (files `0600`
# in a `0700` folder, each file's sha256 in `provenance.json`), and `load` checks them before use. The
# results are exact and internal (they hold pseudonyms): suppression happens only when a report is made.

# %%
results = study.run(spec, harmonised_dir)
results.save(workdir / "results")
results = study.StudyResults.load(workdir / "results")
results.sections

# %% [markdown]
# ## 4. Build the public report from the saved results

# %%
public = build_report(results, out=workdir / "report_public", audience="public")
print("HTML:", public.html_path.name, f"({public.html_path.stat().st_size / 1024:.0f} kB)")
if public.pdf_path is not None:
    print("PDF: ", public.pdf_path.name, f"({public.pdf_path.stat().st_size / 1024:.0f} kB)")
list(public.sections)

# %% [markdown]
# The report records how it was made (package versions, the data hash, the dictionary hash, the spec), so
# a number in it can be traced back:

# %%
pd.Series({k: v for k, v in public.provenance.items() if not isinstance(v, (dict, list))})

# %% [markdown]
# A figure from the report (figures are embedded in the HTML as PNG):

# %%
html_public = public.html_path.read_text(encoding="utf-8")
figures = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html_public)
print(len(figures), "figures in the public report")
display(Image(data=base64.b64decode(figures[0])))

# %% [markdown]
# ## 5. Small-cell suppression
#
# A public table must not let anyone recognise a girl. Counts below the threshold (5, zero included) are
# shown as `<5` (**primary suppression**); then further cells are hidden so that a hidden count cannot be
# recovered from the row and column totals (**secondary suppression**). A cell hidden only to protect
# another is shown as `x`: it may be 5 or more, so `<5` would lie. The package checks the result the way
# an attacker would: an integer program over every published relation must leave each hidden cell a range
# of at least 2 possible values. Statistics computed on few clients (means, proportions) are hidden with
# their count. An example with the end reasons per programme (this notebook is internal, so the exact
# counts are shown first):

# %%
counts = pd.crosstab(h.clients["programme"], h.clients["end_reason"])
counts

# %%
suppress_table(counts, threshold=5)

# %% [markdown]
# ## 6. Public versus internal
#
# The internal report keeps pseudonyms, small counts and the case-level single-case graphs; it is for the
# team only. It is rendered from the same results (nothing is recomputed), without a PDF. We compare the
# two without printing any pseudonym: we only *count* them.

# %%
internal = build_report(results, out=workdir / "report_internal", audience="internal", pdf=False)
html_internal = internal.html_path.read_text(encoding="utf-8")

pseudonym = re.compile(r"\b[A-Z]{1,4}-[0-9a-f]{20}\b")
pd.DataFrame({
    "public": [len(pseudonym.findall(html_public)), html_public.count("&lt;5"),
               len(re.findall("data:image/png", html_public))],
    "internal": [len(pseudonym.findall(html_internal)), html_internal.count("&lt;5"),
                 len(re.findall("data:image/png", html_internal))],
}, index=["pseudonyms", "suppressed cells (<5)", "figures"])

# %% [markdown]
# ## 7. In Dutch
#
# Every report also exists in Dutch (`language="nl"`): the same results, texts from the Dutch message
# catalogue and numbers with a decimal comma. Its section titles:

# %%
dutch = build_report(results, out=workdir / "report_nl", audience="public", language="nl", pdf=False)
list(dutch.sections)

# %% [markdown]
# **Rules of thumb.** Send only the public report outside the team. Never edit a report by hand: change the
# spec or the dictionary and rebuild, so the provenance stays true. The internal report and the harmonised
# folder are research data: store them like the raw exports, and keep the pseudonym key elsewhere.

# %% [markdown]
# Clean up the temporary folder with the exports, the harmonised data and both reports (skip this cell
# to keep the reports and open `public.html_path` in a browser).

# %%
shutil.rmtree(workdir, ignore_errors=True)
