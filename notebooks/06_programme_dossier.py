# %% [markdown]
# # 06 - A programme dossier
#
# Each provider wants to know what the data say about **its own** programme: does it help its girls, on
# what, for how many, and how sure are we? And what does that mean for recognition in the Dutch databank
# of effective youth interventions? The programme dossier answers that for one programme, from the same
# saved study results as the cross-programme report (notebook 05). It starts with a plain-language
# summary ("Samenvatting"), then the programme, its sample flow, reliable and clinically significant change
# with the norm-referenced view, the single-case results, its growth slope among the six programmes,
# follow-up, the recognition section ("Erkenning") and the limitations with their numbers.
#
# A dossier shows only this programme's results, and in the public audience every count below 5 is
# suppressed, also for a programme of four girls.

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
from effectstudy.report import build_report
from effectstudy.report.build import known_programmes

pd.set_option("display.width", 160)

# %% [markdown]
# ## 1. Harmonised data and the study results
#
# Synthetic demo data, harmonised with a key for SYNTHETIC data only (real data: see notebook 01). The
# study is run once and its results saved; dossiers are rendered from them without recomputing.

# %%
workdir = Path(tempfile.mkdtemp(prefix="effectstudy_dossier_"))
synth.generate(workdir / "exports", seed=2026)
h = harmonise(workdir / "exports", key="synthetic-demo-key-do-not-use-for-real-data")
spec = study.load_spec(None)
spec["power"]["nsim"] = 20  # the power section is not part of a dossier; keep it quick
results = study.run(spec, h)
results.save(workdir / "results")
results = study.StudyResults.load(workdir / "results")
known_programmes(results)

# %% [markdown]
# ## 2. The dossier of Veilig Lima, in Dutch, for the public

# %%
dossier = build_report(results, out=workdir / "dossiers", audience="public", programme="veilig_lima",
                       language="nl", pdf=False)
print(dossier.html_path.name)
list(dossier.sections)

# %% [markdown]
# The summary comes first, in plain language (only numbers the dossier's tables also publish):

# %%
html = dossier.html_path.read_text(encoding="utf-8")


def section_text(html: str, sid: str) -> str:
    """The visible text of one section of a report."""
    body = re.split(r'<h2 id="[a-z_]+">', html.split(f'<h2 id="{sid}">', 1)[1])[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()


print(section_text(html, "summary"))

# %% [markdown]
# The recognition section states per level what the data support and what is missing for the next level:

# %%
print(section_text(html, "recognition")[:1500])

# %% [markdown]
# The programme's growth slope per construct, among the six programmes (forest plot with Kenward-Roger
# intervals; its own programme highlighted):

# %%
slopes_html = html.split('<h2 id="slopes">', 1)[1].split('<h2 id="follow_up">', 1)[0]
figures = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", slopes_html)
print(len(figures), "forest plots")
display(Image(data=base64.b64decode(figures[0])))

# %% [markdown]
# ## 3. Small programmes: every count is protected
#
# Hoenderloo has four girls in the demo. Its public dossier shows no count below 5 anywhere: the flow row
# reads `<5` throughout, and no percentage or text gives a count away.

# %%
small = build_report(results, out=workdir / "dossiers", audience="public", programme="hoenderloo",
                     language="en", pdf=False)
flow = section_text(small.html_path.read_text(encoding="utf-8"), "flow")
print(flow[:400])

# %% [markdown]
# An unknown programme id is an error that lists the ids the results know:

# %%
try:
    build_report(results, out=workdir / "dossiers", programme="veilig_lmia", pdf=False)
except Exception as exc:  # noqa: BLE001 - shown, not handled
    print(type(exc).__name__, ":", exc)

# %% [markdown]
# Clean up the temporary folder (skip this cell to keep the dossiers and open them in a browser).

# %%
shutil.rmtree(workdir, ignore_errors=True)
