"""Simulated power of multilevel growth designs: simr reference (designs A, B, C),
type I error, seeds / n_jobs / Dask invariance, YAML and power curves.

Type I error at effect 0 (nsim = 2000, seed 7, reference layouts; measured on
the development machine) - naive Wald z versus the small-sample t-tests:

=======  ===================  ================  ===========
design   test                 rejection rate    naive z
=======  ===================  ================  ===========
A        Satterthwaite t      0.042             0.0455
A        Kenward-Roger t      0.040             0.0455
B        Satterthwaite t      0.052             0.060
C        Kenward-Roger t      0.046             0.048
C        Satterthwaite t      0.0465            0.048
=======  ===================  ================  ===========

The slope tests have 30-60 denominator df here, so the naive z-test is only
mildly anti-conservative (most visibly for the cross-level interaction in B).
By construction the z-test rejects whenever the Satterthwaite test does (same
SE, lighter tails), which the test below checks replicate by replicate.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import SpecError
from effectstudy.power.growth import GrowthDesign, reference_design
from effectstudy.power.simulate import power_curve, simulate
from effectstudy.power.yaml_design import load_design, run_from_yaml
from refdata import REFERENCE

ML = REFERENCE / "multilevel"
EXAMPLE = (
    __import__("pathlib").Path(__file__).resolve().parents[2]
    / "src"
    / "effectstudy"
    / "power"
    / "examples"
    / "design_A.yaml"
)
RAND = dict(
    sd_programme=2.0, sd_intercept=6.0, sd_slope=0.15, cor_intercept_slope=-0.3, sd_residual=5.0
)


def design(which: str, **changes) -> GrowthDesign:
    d = reference_design(which, pd.read_csv(ML / "data" / f"power_design_{which}.csv"))
    return d.replace(**changes) if changes else d


def simr_value(which: str, quantity: str) -> float:
    ref = pd.read_csv(ML / "expected_power.csv")
    r = ref[
        (ref.section == "simr") & (ref.design_id == f"simr_{which}") & (ref.quantity == quantity)
    ]
    return float(r["value"].iloc[0])


@pytest.mark.slow
@pytest.mark.parametrize("which", ["A", "B", "C"])
def test_power_matches_simr_within_mc_error(which):
    nsim = 1000
    res = simulate(design(which), nsim=nsim, rng=20 + ord(which), n_jobs=2, progress=False)
    p_r, n_r = simr_value(which, "power"), simr_value(which, "nsim")
    se = np.sqrt(p_r * (1 - p_r) / n_r + res.power * (1 - res.power) / nsim)
    assert abs(res.power - p_r) < 3 * se, (res.power, p_r, se)
    assert res.nsim == nsim and res.successes == round(res.power * nsim)
    assert res.ci_lower < res.power < res.ci_upper
    # failures and singular fits are counted and reported, never dropped
    assert len(res.replicates) == nsim
    assert res.n_singular == int(res.replicates["singular"].sum())
    assert res.n_failed == int(res.replicates["failed"].sum())
    frame = res.to_frame()
    assert {"power", "ci_lower", "ci_upper", "n_failed", "n_singular"} <= set(frame.columns)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["A", "C"])
def test_type_one_error_within_mc_error(which):
    nsim = 1000
    res = simulate(
        design(which, **{"fixed:time": 0.0}), nsim=nsim, rng=7, n_jobs=2, progress=False
    )
    se = np.sqrt(0.05 * 0.95 / nsim)
    assert abs(res.power - 0.05) < 3 * se
    reps = res.replicates
    # naive Wald z rejects at least whenever the small-sample t does
    assert res.extra["power_wald_z"] >= res.power
    if which == "A":
        assert np.all((reps["p_wald_z"] <= reps["p"] + 1e-12) | reps["failed"])


def test_same_seed_same_result_whatever_n_jobs():
    d = design("A")
    r1 = simulate(d, nsim=24, rng=5, n_jobs=1, progress=False)
    r2 = simulate(d, nsim=24, rng=5, n_jobs=2, progress=False, chunk_size=5)
    r3 = simulate(d, nsim=24, rng=5, n_jobs=1, progress=False, chunk_size=7)
    pd.testing.assert_frame_equal(r1.replicates, r2.replicates)
    pd.testing.assert_frame_equal(r1.replicates, r3.replicates)
    r4 = simulate(d, nsim=24, rng=6, n_jobs=1, progress=False)
    assert not np.allclose(r1.replicates["estimate"], r4.replicates["estimate"])


def test_rng_vocabulary_and_deprecated_seed():
    """rng= takes an int, a Generator or None; seed= works for one release with a warning."""
    import warnings

    d = design("C")
    by_int = simulate(d, nsim=6, rng=5, progress=False)
    assert by_int.extra["seed"] == 5
    with pytest.warns(FutureWarning, match="seed= is deprecated"):
        by_seed = simulate(d, nsim=6, seed=5, progress=False)
    pd.testing.assert_frame_equal(by_int.replicates, by_seed.replicates)
    with pytest.raises(SpecError, match="not both"):
        simulate(d, nsim=6, seed=5, rng=5, progress=False)
    # a Generator: the root seed drawn from it is recorded and repeats the run
    by_gen = simulate(d, nsim=6, rng=np.random.default_rng(11), progress=False)
    again = simulate(d, nsim=6, rng=by_gen.extra["seed"], progress=False)
    pd.testing.assert_frame_equal(by_gen.replicates, again.replicates)
    fresh = simulate(d, nsim=6, progress=False)
    assert fresh.extra["seed"] != by_gen.extra["seed"]
    for bad in (1.5, "1", -3, True):
        with pytest.raises(SpecError, match="rng"):
            simulate(d, nsim=6, rng=bad, progress=False)
    with pytest.warns(FutureWarning, match="seed= is deprecated"):
        old = GrowthDesign.planned(programmes=3, clients_per_programme=3, seed=4, **RAND)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = GrowthDesign.planned(programmes=3, clients_per_programme=3, rng=4, **RAND)
        assert new.plan["rng"] == 4
        pd.testing.assert_frame_equal(old.layout, new.layout)
        again = new.replace(clients_per_programme=3)
    pd.testing.assert_frame_equal(again.layout, new.layout)
    text = simulate(d, nsim=6, rng=5, progress=False).summary()
    assert "repeat with rng=5" in text and "alpha = 0.05" in text


@pytest.mark.parametrize("processes", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_dask_cluster_gives_the_local_result(processes):
    distributed = pytest.importorskip("distributed")
    d = design("C")
    local = simulate(d, nsim=20, rng=3, progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            via_client = simulate(
                d, nsim=20, rng=3, scheduler=client, progress=False, chunk_size=6
            )
        via_address = simulate(
            d, nsim=20, rng=3, scheduler=cluster.scheduler_address, progress=False
        )
    pd.testing.assert_frame_equal(local.replicates, via_client.replicates)
    pd.testing.assert_frame_equal(local.replicates, via_address.replicates)


def test_planned_design_and_standardised_effect():
    d = GrowthDesign.planned(
        programmes=6,
        clients_per_programme=8,
        weeks=[0, 8, 16, 24, 32],
        dropout=0.25,
        rng=1001,
        **RAND,
    )
    assert d.layout["client"].nunique() == 48
    n_drop = (d.layout.groupby("client").size() < 5).sum()
    assert n_drop == 12
    # monotone: observed occasions are a prefix of the plan
    occ = d.layout.groupby("client")["occasion"].agg(["max", "size"])
    assert (occ["max"] == occ["size"]).all()
    assert d.standardised_effect() == pytest.approx(-0.10 * 32 / np.sqrt(4 + 36 + 25))
    d5 = d.with_standardised_effect(-0.5)
    assert d5.fixed["time"] == pytest.approx(-0.5 * np.sqrt(65) / 32)
    assert d5.standardised_effect() == pytest.approx(-0.5)
    h = GrowthDesign.planned(
        programmes=3,
        clients_per_programme=[5, 6, 7],
        weeks=[0, 4, 8, 12],
        dropout=0,
        hazard=0.2,
        mcar=0.1,
        treat_programmes=[1],
        rng=2,
        formula="y ~ time * treat",
        fixed={"Intercept": 1},
        test_term="time:treat",
    )
    assert set(h.layout["treat"]) == {0, 1}
    assert h.replace(clients_per_programme=4).layout["client"].nunique() == 12


def test_invalid_designs_raise_spec_error():
    lay = pd.read_csv(ML / "data" / "power_design_A.csv")
    with pytest.raises(SpecError):
        GrowthDesign(layout=lay, fixed={"tiem": 1.0})
    with pytest.raises(SpecError):
        GrowthDesign(layout=lay, test_term="treat")
    with pytest.raises(SpecError):
        GrowthDesign(layout=lay, ddf="wald")
    with pytest.raises(SpecError):
        GrowthDesign(layout=lay.drop(columns="time"))
    with pytest.raises(SpecError):
        design("A").replace(clients_per_programme=4)  # not built with planned()


def test_power_curve_and_plot():
    import matplotlib.figure

    d = GrowthDesign.planned(
        programmes=4, clients_per_programme=4, weeks=[0, 8, 16], dropout=0.2, rng=1, **RAND
    )
    curve = power_curve(
        d, vary={"clients_per_programme": range(4, 9, 4)}, nsim=12, rng=1, progress=False
    )
    f = curve.to_frame()
    assert list(f["clients_per_programme"]) == [4, 8]
    assert (f["ci_lower"] <= f["power"]).all() and (f["power"] <= f["ci_upper"]).all()
    fig = curve.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    assert isinstance(curve.results[0].plot(), matplotlib.figure.Figure)
    # given axes are used, keyword arguments reach the main artist, the Figure comes back
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2)
    try:
        assert curve.plot(ax=ax1, color="C2", lw=3) is fig
        (line,) = [ln for ln in ax1.lines if ln.get_label() == "simulated power"]
        assert line.get_linewidth() == 3 and line.get_color() == "C2"
        assert curve.results[0].plot(ax=ax2, bins=5) is fig
        assert len(ax2.patches) == 5
    finally:
        plt.close("all")
    text = curve.summary()
    assert text.splitlines()[0] == "Simulated power by clients_per_programme (target 0.8)"
    assert len(text.splitlines()) == 3


def test_yaml_example_and_run_from_yaml(tmp_path):
    d = load_design(EXAMPLE)
    assert isinstance(d, GrowthDesign)
    assert d.fixed == {"Intercept": 50.0, "time": -0.10}
    assert d.layout["client"].nunique() == 48 and d.ddf == "satterthwaite"
    # a design file pointing at the reference layout reproduces design A exactly
    text = EXAMPLE.read_text().replace(
        "  planned:\n    programmes: 6\n    clients_per_programme: 8\n    weeks: [0, 8, 16, 24, 32]\n"
        "    dropout: 0.25\n    seed: 1001\n",
        f"  file: {ML / 'data' / 'power_design_A.csv'}\n",
    )
    p = tmp_path / "a.yaml"
    p.write_text(text)
    r_yaml = run_from_yaml(p, nsim=8, rng=4, n_jobs=1, progress=False)
    r_api = simulate(design("A"), nsim=8, rng=4, progress=False)
    pd.testing.assert_frame_equal(r_yaml.replicates, r_api.replicates)
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: growth\nlayout: {file: nope.csv}\n")
    with pytest.raises(SpecError):
        load_design(bad)
    bad.write_text("type: growth\nlayuot: {}\n")
    with pytest.raises(SpecError):
        load_design(bad)
