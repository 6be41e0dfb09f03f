"""The report package is a pure renderer: it computes no statistic and reads no raw data.

1. In a fresh process, every function that computes a statistic is patched to raise,
   and the Dutch dossier and the cross-programme report are rendered from saved
   results (``effectstudy report --results``): they build, and for the public
   audience no statistics module is even imported.
2. The source of ``effectstudy.report`` imports no statistics module and not
   ``effectstudy.harmonise`` (only drawing helpers that plot saved numbers).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from effectstudy import study

REPORT_DIR = Path(study.__file__).resolve().parents[1] / "report"
STAT_MODULES = ("effectstudy.change", "effectstudy.sced", "effectstudy.multilevel",
                "effectstudy.power", "effectstudy.survival", "effectstudy.missing",
                "effectstudy.fidelity", "effectstudy.harmonise")
#: Drawing helpers the renderer may import (they plot saved numbers, computing nothing).
ALLOWED = {("effectstudy.change", "jacobson_plot"), ("effectstudy.sced.plots",
                                                     "multiple_baseline_plot")}

SCRIPT = textwrap.dedent('''
    import json, sys
    import effectstudy.change, effectstudy.multilevel, effectstudy.sced, effectstudy.power
    import effectstudy.multilevel.lmm, effectstudy.multilevel.trends, effectstudy.multilevel.robust
    import effectstudy.survival, effectstudy.missing, effectstudy.fidelity

    def boom(*args, **kwargs):
        raise RuntimeError("a statistic was computed while rendering")

    PATCH = {
        effectstudy.multilevel: ["fit", "slopes", "cluster_robust", "predicted_means"],
        effectstudy.multilevel.lmm: ["fit"],
        effectstudy.multilevel.trends: ["slopes"],
        effectstudy.multilevel.robust: ["cluster_robust"],
        effectstudy.change: ["reliable_change", "summary", "prepost"],
        effectstudy.sced: ["effect_sizes", "randomization_test", "design_check"],
        effectstudy.power: ["simulate"],
        effectstudy.survival: ["kaplan_meier", "cox", "logrank", "cumulative_incidence",
                               "event_rate"],
        sys.modules["effectstudy.survival.kaplan_meier"]: ["kaplan_meier", "logrank"],
        sys.modules["effectstudy.survival.cox"]: ["cox"],
        effectstudy.missing: ["impute", "tipping_point", "analyse_imputed"],
        sys.modules["effectstudy.missing.impute"]: ["impute", "analyse_imputed"],
        sys.modules["effectstudy.missing.sensitivity"]: ["tipping_point"],
        effectstudy.fidelity: ["adherence", "fidelity_score", "dose_response",
                               "fidelity_moderator", "tailoring"],
        sys.modules["effectstudy.fidelity.delivery"]: ["adherence"],
        sys.modules["effectstudy.fidelity.score"]: ["fidelity_score"],
        sys.modules["effectstudy.fidelity.dose"]: ["dose_response", "fidelity_moderator",
                                                   "tailoring"],
    }
    for module, names in PATCH.items():
        for name in names:
            setattr(module, name, boom)
    import effectstudy.study.run as run_module
    run_module.run = boom
    from effectstudy.cli import app
    codes = []
    for args in json.loads(sys.argv[1]):
        try:
            app(args)
        except SystemExit as exc:
            codes.append(exc.code)
    print(json.dumps(codes))
''')

PUBLIC_SCRIPT = textwrap.dedent('''
    import json, sys
    from effectstudy.cli import app
    try:
        app(json.loads(sys.argv[1]))
    except SystemExit as exc:
        code = exc.code
    print(json.dumps({"code": code, "loaded": sorted(m for m in sys.modules
                                                   if m.startswith("effectstudy."))}))
''')


@pytest.fixture(scope="module")
def saved(demo_saved, tmp_path_factory):
    # a copy of the shared demo's saved results and harmonised data (tests/conftest.py):
    # the tests write their reports beside them
    root = tmp_path_factory.mktemp("pure")
    shutil.copytree(demo_saved.results, root / "results")
    shutil.copytree(demo_saved.harmonised, root / "harmonised")
    return root


def _run(script: str, args, cwd: Path) -> str:
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_reports_build_from_saved_results_with_every_statistic_disabled(saved):
    res = str(saved / "results")
    jobs = [["report", "--results", res, "--out", str(saved / "nl"), "--programme",
             "veilig_lima", "--language", "nl"],
            ["report", "--results", res, "--out", str(saved / "int"), "--audience", "internal",
             "--programme", "hoenderloo"],
            ["report", "--results", res, "--out", str(saved / "all"), "--language", "nl"]]
    codes = json.loads(_run(SCRIPT, jobs, saved))
    assert codes == [0, 0, 0], codes
    html = (saved / "nl" / "dossier_veilig_lima.html").read_text(encoding="utf-8")
    assert "Samenvatting" in html and "Erkenning" in html and "Betrouwbare verandering" in html
    assert (saved / "nl" / "dossier_veilig_lima.pdf").read_bytes()[:4] == b"%PDF"
    assert (saved / "int" / "dossier_hoenderloo.html").is_file()
    assert (saved / "all" / "report.html").is_file()


def test_the_patch_does_bite(saved):
    # positive control: in the same patched process, rendering from harmonised data
    # (which runs the study) hits a patched statistic and fails
    args = [["report", "--data", str(saved / "harmonised"), "--out", str(saved / "x")]]
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(args)], cwd=saved, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "a statistic was computed while rendering" in proc.stderr


def test_public_rendering_loads_no_statistics_module(saved):
    out = json.loads(_run(PUBLIC_SCRIPT, ["report", "--results", str(saved / "results"),
                                          "--out", str(saved / "p"), "--programme",
                                          "intermetzo", "--language", "nl"], saved))
    assert out["code"] == 0
    loaded = [m for m in out["loaded"] if m.startswith(STAT_MODULES)]
    assert not loaded, loaded
    assert "effectstudy.report.build" in out["loaded"]  # the check looked at the right process


def _imports(path: Path) -> list[tuple[str, str | None]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, a.name) for a in node.names]
    return found


def test_report_source_imports_no_statistic_and_not_harmonise():
    files = sorted(REPORT_DIR.rglob("*.py"))  # the section modules too
    assert {f.name for f in files} >= {"analyses.py", "build.py", "i18n.py", "suppression.py",
                                       "publication.py", "change.py", "flow.py", "slopes.py"}
    bad = []
    for f in files:
        for module, name in _imports(f):
            if module == "effectstudy" and name in {m.split(".")[1] for m in STAT_MODULES}:
                bad.append((f.name, module, name))
            elif module.startswith(STAT_MODULES) and (module, name) not in ALLOWED:
                bad.append((f.name, module, name))
            elif module == "effectstudy.study" and name != "run":
                bad.append((f.name, module, name))
    assert not bad, bad
