"""One vocabulary across effectstudy.sced (issue 15): signatures, deprecations, imports."""

from __future__ import annotations

import inspect
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import effectstudy.sced as sced  # noqa: E402
from effectstudy.errors import SpecError  # noqa: E402
from effectstudy.sced._compat import REQUIRED  # noqa: E402

#: functions re-exported from elsewhere: their vocabulary is checked where they live
REEXPORTED = {"meta_analysis"}  # effectstudy.multilevel.meta
#: DataFrame functions that take any number of phases, so no baseline/treatment labels
ANY_PHASES = {"design_check", "piecewise", "phase_plot"}
#: DataFrame functions without a direction of improvement (raw-scale estimates or graphs)
NO_DIRECTION = {"design_check", "piecewise", "phase_plot", "multiple_baseline_plot",
                "between_case_smd"}
#: names replaced by the vocabulary
FORBIDDEN = {"alpha", "cover", "seed", "ci", "conf_level", "phases"}
# piecewise keeps `phases=`: the expected order of any number of phases (A, B, C, ...),
# not a baseline/treatment pair
ALLOWED = {("piecewise", "phases")}


def _public_functions():
    out = []
    for name in sced.__all__:
        if name in REEXPORTED:
            continue
        obj = getattr(sced, name)
        if inspect.isfunction(obj):
            out.append((name, obj))
    return out


FUNCTIONS = _public_functions()
DATA_FUNCTIONS = [(n, f) for n, f in FUNCTIONS
                  if next(iter(inspect.signature(f).parameters)) == "data"]


def test_the_lists_cover_the_api():
    names = {n for n, _ in FUNCTIONS}
    assert {"randomization_test", "effect_sizes", "nap", "random_start_points"} <= names
    assert {n for n, _ in DATA_FUNCTIONS} == {
        "batch_effect_sizes", "between_case_smd", "design_check", "effect_sizes",
        "multiple_baseline_plot", "overlap", "phase_plot", "piecewise", "randomization_test",
    }


@pytest.mark.parametrize(("name", "func"), FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_no_old_names_and_one_confidence_and_rng(name, func):
    params = inspect.signature(func).parameters
    bad = {p for p in params if p in FORBIDDEN and (name, p) not in ALLOWED}
    assert not bad, f"{name} still takes {sorted(bad)}"
    level = params.get("level")
    assert level is None or isinstance(level.default, bool), f"{name}: level= as a confidence"
    if "confidence" in params:
        assert params["confidence"].default == 0.95
    if "rng" in params:
        assert params["rng"].default is None
    assert "improvement" not in params or params["improvement"].default in ("increase",
                                                                             "decrease")


@pytest.mark.parametrize(("name", "func"), DATA_FUNCTIONS, ids=[n for n, _ in DATA_FUNCTIONS])
def test_dataframe_functions_share_one_signature(name, func):
    params = list(inspect.signature(func).parameters.values())
    assert params[0].name == "data"
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]
               if p.kind is not inspect.Parameter.VAR_KEYWORD)
    names = [p.name for p in params[1:]]
    assert names[:4] == ["outcome", "session", "phase", "case"], name
    by = {p.name: p for p in params}
    for role in ("outcome", "session", "phase"):
        default = by[role].default
        optional_outcome = name == "design_check" and role == "outcome"  # None: count all rows
        assert default is inspect.Parameter.empty or default is REQUIRED or (
            optional_outcome and default is None), f"{name}({role}=) must be required"
    assert by["case"].default is None
    if name not in ANY_PHASES:
        assert names[4:6] == ["baseline_phase", "treatment_phase"], name
        assert by["baseline_phase"].default == "A" and by["treatment_phase"].default == "B"
    if name not in NO_DIRECTION:
        assert names[6] == "improvement", name


def _ab(n_a=6, n_b=6, case=None):
    y = np.r_[np.linspace(1, 2, n_a), np.linspace(4, 5, n_b)]
    d = pd.DataFrame({"session": np.arange(1, n_a + n_b + 1), "phase": ["A"] * n_a + ["B"] * n_b,
                      "outcome": y})
    return d if case is None else d.assign(case=case)


def _mb():
    return pd.concat([_ab(4 + i, 10 - i, f"c{i}") for i in range(3)], ignore_index=True)


COLS = dict(outcome="outcome", session="session", phase="phase")


def test_old_keywords_warn_naming_the_new_one_and_give_the_same_result():
    d = _mb()
    new = sced.randomization_test(d, **COLS, case="case", design="MB", exhaustive=False,
                                  n_samples=99, rng=3, confidence=0.9)
    with pytest.warns(FutureWarning, match=r"seed=.*use rng="):
        old = sced.randomization_test(d, **COLS, case="case", design="MB", exhaustive=False,
                                      n_samples=99, seed=3, confidence=0.9)
    assert old.p_value == new.p_value and old.seed == 3
    np.testing.assert_array_equal(old.null_distribution, new.null_distribution)
    with pytest.warns(FutureWarning, match=r"alpha=.*use confidence="):
        old = sced.randomization_test(d, **COLS, case="case", design="MB", alpha=0.1)
    assert old.confidence == pytest.approx(0.9)
    with pytest.warns(FutureWarning, match=r"phases=.*baseline_phase=, treatment_phase="):
        old = sced.randomization_test(d.replace({"phase": {"A": "base", "B": "trt"}}), **COLS,
                                      case="case", design="MB", phases=("base", "trt"))
    assert old.p_value == sced.randomization_test(d, **COLS, case="case", design="MB").p_value
    with pytest.warns(FutureWarning, match="use rng="):
        a = sced.random_start_points(3, 12, 3, seed=5)
    pd.testing.assert_frame_equal(a, sced.random_start_points(3, 12, 3, rng=5))
    with pytest.warns(FutureWarning, match="use confidence="):
        old = sced.corrected_tau([1, 2, 3, 2, 4], [6, 7, 8, 9], alpha=0.1)
    pd.testing.assert_frame_equal(old, sced.corrected_tau([1, 2, 3, 2, 4], [6, 7, 8, 9],
                                                          confidence=0.9))


def test_old_and_new_keyword_together_is_a_spec_error():
    with pytest.raises(SpecError, match="not both"):
        sced.randomization_test(_ab(), **COLS, seed=1, rng=1)
    with pytest.raises(SpecError, match="rng"):
        sced.randomization_test(_ab(), **COLS, rng="seven")


def test_omitted_column_names_fall_back_with_one_warning():
    with pytest.warns(FutureWarning) as caught:
        res = sced.randomization_test(_ab(10, 10))
    messages = [str(w.message) for w in caught if w.category is FutureWarning]
    assert len(messages) == 1
    assert "outcome=, session=, phase=" in messages[0]
    assert res.p_value == sced.randomization_test(_ab(10, 10), **COLS).p_value


def test_two_sided_randomization_test_doubles_the_smaller_tail():
    d = _ab(8, 8)
    up = sced.randomization_test(d, **COLS)
    down = sced.randomization_test(d, **COLS, improvement="decrease")
    two = sced.randomization_test(d, **COLS, alternative="two-sided")
    assert two.p_value == pytest.approx(min(1.0, 2 * min(up.p_value, down.p_value)))
    assert two.min_p == pytest.approx(2 * up.min_p)
    with pytest.raises(SpecError):
        sced.randomization_test(d, **COLS, alternative="greater")


def test_plots_take_ax_or_fig_forward_kwargs_and_return_the_figure():
    d = _mb()
    fig = plt.figure()
    out = sced.multiple_baseline_plot(d, **COLS, case="case", fig=fig, markersize=11)
    assert out is fig and len(fig.axes) == 3
    sizes = {line.get_markersize() for a in fig.axes for line in a.lines if line.get_marker() == "o"}
    assert sizes == {11}
    _, ax = plt.subplots()
    assert sced.phase_plot(_ab(), **COLS, ax=ax, marker="s") is ax.figure
    assert {line.get_marker() for line in ax.lines if line.get_gid() is None} == {"s"}
    fig2 = plt.figure()
    assert sced.phase_plot(d, **COLS, case="case", fig=fig2) is fig2
    with pytest.raises(SpecError):
        sced.phase_plot(d, **COLS, case="case", ax=ax, fig=fig2)
    pw = sced.piecewise(d, **COLS, case="case")
    fig3 = plt.figure()
    assert pw.plot(fig=fig3, lw=3) is fig3 and len(fig3.axes) == 3
    with pytest.raises(SpecError, match="fig="):
        pw.plot(ax=ax)
    plt.close("all")


def test_import_loads_neither_pyplot_nor_multilevel():
    code = ("import effectstudy.sced, sys; "
            "assert 'matplotlib.pyplot' not in sys.modules and "
            "'effectstudy.multilevel' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_meta_analysis_is_still_reachable_lazily():
    from effectstudy.multilevel.meta import meta_analysis

    assert sced.meta_analysis is meta_analysis
    with pytest.raises(AttributeError):
        sced.no_such_function  # noqa: B018


def test_no_private_name_is_imported_across_sced_modules():
    import ast
    from pathlib import Path

    root = Path(sced.__file__).parent
    found = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                found += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_")]
    assert found == []
    assert len(list(root.glob("*.py"))) > 10  # the walk saw the package
    longest = max(len(p.read_text(encoding="utf-8").splitlines()) for p in root.glob("*.py"))
    assert longest <= 800
