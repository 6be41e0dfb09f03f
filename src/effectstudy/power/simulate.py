"""Simulation driver: seeds, chunking, joblib / Dask back-ends, progress, results.

Reproducibility
---------------
Randomness is ``rng=``: an int seed, a :class:`numpy.random.Generator` or
``None`` (fresh entropy). Replicate ``i`` always uses the generator
``numpy.random.default_rng(SeedSequence(root).spawn(nsim)[i])``, whatever the
chunking, ``n_jobs`` or scheduler, with ``root`` the int seed (or, for a
Generator or ``None``, an integer drawn from it / from the operating system);
``root`` is recorded in ``PowerResult.extra["seed"]`` so that any run can be
repeated with ``rng=root``. Results are identical across back-ends for the
same seed. ``seed=`` is the deprecated spelling of ``rng=`` (one release).

Significance versus confidence
------------------------------
``alpha`` here is the significance level of the simulated test (power is the
proportion of replicates with ``p < alpha``); it is not a confidence level, so
it keeps its name. The Monte Carlo interval of the power is a 95%
Clopper-Pearson interval (``ci_lower``, ``ci_upper``).
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from effectstudy._compat import renamed_keywords, seed_to_rng
from effectstudy._stats import clopper_pearson as _clopper_pearson
from effectstudy._validate import RNGLike, check_confidence, check_significance

from .._results import ResultMixin
from ..errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PowerResult", "PowerCurve", "simulate", "power_curve", "clopper_pearson"]


@dataclass(frozen=True, eq=False)
class PowerResult(ResultMixin):
    """Simulated power of one design.

    Attributes
    ----------
    power : float
        Rejections / nsim. Replicates without a usable fit count as
        non-rejections (conservative); they are counted in ``n_failed``.
    ci_lower, ci_upper : float
        95% Clopper-Pearson interval of the Monte Carlo estimate.
    nsim, successes, n_failed, n_singular : int
        Replicates, rejections, failed fits (non-convergence or error) and
        singular fits (a variance component or correlation on the boundary;
        kept in the power, as simr does).
    alpha : float
    design : str
    test : str
    elapsed_seconds : float
    replicates : DataFrame
        One row per replicate (estimate, se, df, t, p, flags).
    extra : dict
        Design-specific summaries, e.g. ``power_wald_z`` (naive z-test).
    """

    power: float
    ci_lower: float
    ci_upper: float
    nsim: int
    successes: int
    n_failed: int
    n_singular: int
    alpha: float
    design: str
    test: str
    elapsed_seconds: float
    replicates: pd.DataFrame = field(repr=False)
    extra: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    _title = "Simulated power"

    @property
    def mc_se(self) -> float:
        """Binomial Monte Carlo standard error of ``power``."""
        return float(np.sqrt(self.power * (1 - self.power) / self.nsim))

    def to_frame(self) -> pd.DataFrame:
        row = {
            "design": self.design,
            "test": self.test,
            "power": self.power,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "mc_se": self.mc_se,
            "nsim": self.nsim,
            "successes": self.successes,
            "n_failed": self.n_failed,
            "n_singular": self.n_singular,
            "alpha": self.alpha,
            "elapsed_seconds": self.elapsed_seconds,
        }
        row.update({k: v for k, v in self.extra.items() if np.isscalar(v)})
        # cpu_seconds: CPU time summed over workers (single-threaded BLAS per worker)
        return pd.DataFrame([row])

    def summary(self) -> str:
        """Plain-text summary: power, its Monte Carlo interval, failures and the test."""
        lines = [
            f"Simulated power of {self.design}: {self.power:.3f} "
            f"(95% Clopper-Pearson {self.ci_lower:.3f} to {self.ci_upper:.3f}; "
            f"MC SE {self.mc_se:.3f})",
            f"  test: {self.test}, alpha = {self.alpha:g} (significance level)",
            f"  replicates: {self.nsim}, rejections: {self.successes}, failed fits: "
            f"{self.n_failed}, singular fits: {self.n_singular}",
        ]
        if "seed" in self.extra:
            lines.append(f"  repeat with rng={self.extra['seed']}")
        lines += [f"  note: {w}" for w in self.warnings]
        return "\n".join(lines)

    def plot(self, ax: Axes | None = None, **kwargs: Any) -> Figure:
        """Histogram of the replicate p-values with alpha marked.

        ``ax``: axes to draw on (a new figure otherwise); ``kwargs`` go to
        :meth:`matplotlib.axes.Axes.hist`. Returns the Figure.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3))
        p = self.replicates["p"].dropna()
        ax.hist(p, **{"bins": np.linspace(0, 1, 41), "color": "0.6", **kwargs})
        ax.axvline(self.alpha, color="C3", ls="--", label=f"alpha = {self.alpha:g}")
        ax.set_xlabel("p-value")
        ax.set_ylabel("replicates")
        ax.set_title(f"power {self.power:.3f} [{self.ci_lower:.3f}, {self.ci_upper:.3f}]")
        ax.legend()
        return ax.figure


@dataclass(frozen=True, eq=False)
class PowerCurve(ResultMixin):
    """Power as a function of one varied design parameter."""

    parameter: str
    results: tuple[PowerResult, ...]
    values: tuple[Any, ...]
    target: float = 0.8

    _title = "Power curve"

    def to_frame(self) -> pd.DataFrame:
        frames = []
        for v, r in zip(self.values, self.results, strict=True):
            f = r.to_frame()
            f.insert(0, self.parameter, v)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> str:
        """Plain-text table: power and its Monte Carlo interval at every value."""
        lines = [f"Simulated power by {self.parameter} (target {self.target:g})"]
        for v, r in zip(self.values, self.results, strict=True):
            lines.append(f"  {self.parameter} = {v}: {r.power:.3f} "
                         f"[{r.ci_lower:.3f}, {r.ci_upper:.3f}] (nsim {r.nsim})")
        return "\n".join(lines)

    def plot(self, ax: Axes | None = None, **kwargs: Any) -> Figure:
        """Power vs the varied parameter with Clopper-Pearson bands and the target line.

        ``ax``: axes to draw on (a new figure otherwise); ``kwargs`` go to the
        power line (:meth:`matplotlib.axes.Axes.plot`). Returns the Figure.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        f = self.to_frame()
        x = pd.to_numeric(f[self.parameter], errors="coerce")
        if x.isna().any():
            x = np.arange(len(f))
            ax.set_xticks(x, [str(v) for v in self.values])
        ax.fill_between(
            x,
            f["ci_lower"],
            f["ci_upper"],
            alpha=0.25,
            color="C0",
            label="95% MC interval (Clopper-Pearson)",
        )
        ax.plot(x, f["power"], **{"marker": "o", "ls": "-", "color": "C0",
                                  "label": "simulated power", **kwargs})
        ax.axhline(self.target, color="C3", ls="--", lw=1, label=f"power = {self.target:g}")
        ax.set_ylim(0, 1)
        ax.set_xlabel(self.parameter)
        ax.set_ylabel("power")
        ax.legend(loc="lower right")
        return ax.figure


# ----------------------------------------------------------------------
def _engine_for(design: Any):
    """The design's simulation engine (``design.simulation_engine()``)."""
    make = getattr(design, "simulation_engine", None)
    if not callable(make):
        raise SpecError(f"cannot simulate a {type(design).__name__}")
    return make()


def _run_chunk(design: Any, seeds: Sequence[np.random.SeedSequence], alpha: float) -> pd.DataFrame:
    """Run replicates (one per SeedSequence) with single-threaded BLAS."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    cpu0 = _time.process_time()
    engine = _engine_for(design)
    if threadpool_limits is not None:
        with threadpool_limits(limits=1):
            frame = engine.run_chunk(seeds, alpha)
    else:  # pragma: no cover
        frame = engine.run_chunk(seeds, alpha)
    frame["_cpu_seconds"] = (_time.process_time() - cpu0) / max(1, len(frame))
    return frame


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(n, i + size)) for i in range(0, n, size)]


def _progress(total: int, enabled: bool, label: str):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    prog = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )
    return prog


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper & Pearson 1934) confidence interval of a binomial proportion.

    Clopper, C. J. & Pearson, E. S. (1934). The use of confidence or fiducial
    limits illustrated in the case of the binomial. *Biometrika* 26, 404-413.
    ``(nan, nan)`` when ``n == 0``.
    """
    return _clopper_pearson(int(successes), int(n), check_confidence(confidence))


def _root_seed(rng: RNGLike) -> int:
    """The int root of the replicate seeds: ``rng`` itself, or drawn from it / fresh."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63))
    if rng is None:
        return int(np.random.SeedSequence().entropy % 2**63)
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer) or int(rng) < 0:
        raise SpecError(f"rng must be an int seed >= 0, a numpy Generator or None, got {rng!r}")
    return int(rng)


@renamed_keywords("simulate", {"seed": seed_to_rng})
def simulate(
    design: Any,
    nsim: int = 1000,
    rng: RNGLike = None,
    n_jobs: int = 1,
    alpha: float = 0.05,
    scheduler: Any = None,
    *,
    progress: bool = True,
    chunk_size: int | None = None,
) -> PowerResult:
    """Simulated power of a design.

    Parameters
    ----------
    design : GrowthDesign, SingleCaseDesign or ResponderDesign
    nsim : int
        Number of replicates.
    rng : int, numpy.random.Generator or None
        Randomness: an int root seed (replicate i uses
        ``SeedSequence(rng).spawn(nsim)[i]``), a Generator (an int root is drawn
        from it) or ``None`` (fresh entropy). The root is recorded in
        ``extra["seed"]``. ``seed=`` is accepted for one release with a
        :class:`FutureWarning`.
    n_jobs : int
        Local processes (joblib/loky); ``-1`` for all cores. Ignored when
        ``scheduler`` is given.
    alpha : float
        Significance level of the per-replicate test (not a confidence level).
    scheduler : str or dask.distributed.Client, optional
        ``"tcp://host:port"`` of a Dask scheduler or a Client: replicate chunks
        are run on its workers. Same results as local runs with the same seed.
    progress : bool
        Show a rich progress bar (only if the run takes longer than ~1 s).
    chunk_size : int, optional
        Replicates per task (default: about 4 tasks per worker, at most 100).

    Returns
    -------
    PowerResult
    """
    if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 1:
        raise SpecError(f"nsim must be an integer >= 1, got {nsim!r}")
    alpha = check_significance(alpha)
    root = _root_seed(rng)
    t0 = _time.perf_counter()
    seeds = np.random.SeedSequence(root).spawn(int(nsim))
    _engine_for(design)  # validate early in the calling process
    if scheduler is not None:
        frames = _run_dask(design, seeds, alpha, scheduler, progress, chunk_size)
    else:
        frames = _run_local(design, seeds, alpha, n_jobs, progress, chunk_size)
    reps = pd.concat(frames, ignore_index=True)
    cpu = float(reps.pop("_cpu_seconds").sum())
    reps.insert(0, "replicate", np.arange(nsim))
    elapsed = _time.perf_counter() - t0
    res = _summarise(design, reps, alpha, elapsed)
    res.extra["cpu_seconds"] = cpu
    res.extra["seed"] = root
    return res


def _summarise(design: Any, reps: pd.DataFrame, alpha: float, elapsed: float) -> PowerResult:
    nsim = len(reps)
    reject = (reps["p"] < alpha).fillna(False).to_numpy(bool)
    k = int(reject.sum())
    lo, hi = clopper_pearson(k, nsim)
    n_failed = int(reps["failed"].sum()) if "failed" in reps else 0
    n_sing = int(reps["singular"].sum()) if "singular" in reps else 0
    extra: dict[str, Any] = {}
    if "p_wald_z" in reps:
        extra["power_wald_z"] = float((reps["p_wald_z"] < alpha).mean())
    ok = ~reps["failed"].to_numpy(bool) if "failed" in reps else np.ones(nsim, bool)
    if ok.any():
        extra["power_among_converged"] = float(reject[ok].mean())
    warnings = []
    if n_failed:
        warnings.append(
            f"{n_failed} of {nsim} replicates failed to converge (counted as non-rejections)"
        )
    if n_sing:
        warnings.append(f"{n_sing} of {nsim} replicates gave a singular fit (kept in the power)")
    test = getattr(design, "test_description", None)
    test = test() if callable(test) else str(test or "")
    return PowerResult(
        power=k / nsim,
        ci_lower=lo,
        ci_upper=hi,
        nsim=nsim,
        successes=k,
        n_failed=n_failed,
        n_singular=n_sing,
        alpha=alpha,
        design=getattr(design, "name", type(design).__name__),
        test=test,
        elapsed_seconds=elapsed,
        replicates=reps,
        extra=extra,
        warnings=tuple(warnings),
    )


def _run_local(design, seeds, alpha, n_jobs, progress, chunk_size) -> list[pd.DataFrame]:
    import os

    nsim = len(seeds)
    if n_jobs is None or n_jobs == 0:
        n_jobs = 1
    if n_jobs < 0:
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    size = chunk_size or max(1, min(100, -(-nsim // (4 * n_jobs))))
    if n_jobs == 1:
        size = chunk_size or max(1, min(25, nsim))
    bounds = _chunks(nsim, size)
    t0 = _time.perf_counter()
    out: list[pd.DataFrame | None] = [None] * len(bounds)
    prog = _progress(nsim, progress, getattr(design, "name", "power"))
    task = None
    started = False

    def tick(i: int, frame: pd.DataFrame) -> None:
        nonlocal started, task
        out[i] = frame
        if progress and not started and _time.perf_counter() - t0 > 1.0:
            prog.start()
            task = prog.add_task("sim", total=nsim)
            prog.update(task, completed=sum(len(f) for f in out if f is not None))
            started = True
        elif started:
            prog.update(task, advance=len(frame))

    try:
        if n_jobs == 1:
            for i, (a, b) in enumerate(bounds):
                tick(i, _run_chunk(design, seeds[a:b], alpha))
        else:
            from joblib import Parallel, delayed

            par = Parallel(n_jobs=n_jobs, return_as="generator")
            gen = par(delayed(_run_chunk)(design, seeds[a:b], alpha) for a, b in bounds)
            for i, frame in enumerate(gen):
                tick(i, frame)
    finally:
        if started:
            prog.stop()
    return [f for f in out if f is not None]


def _run_dask(design, seeds, alpha, scheduler, progress, chunk_size) -> list[pd.DataFrame]:
    from distributed import Client, as_completed

    own = False
    if isinstance(scheduler, str):
        client = Client(scheduler)
        own = True
    elif isinstance(scheduler, Client):
        client = scheduler
    else:
        raise SpecError(
            "scheduler must be a 'tcp://host:port' address or a dask.distributed.Client"
        )
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        nsim = len(seeds)
        size = chunk_size or max(1, min(100, -(-nsim // (4 * n_workers))))
        bounds = _chunks(nsim, size)
        dfut = client.scatter(design, broadcast=True)
        futs = [client.submit(_run_chunk, dfut, seeds[a:b], alpha, pure=False) for a, b in bounds]
        index = {f.key: i for i, f in enumerate(futs)}
        out: list[pd.DataFrame | None] = [None] * len(futs)
        prog = _progress(nsim, progress, getattr(design, "name", "power"))
        with prog:
            task = prog.add_task("sim", total=nsim)
            for fut in as_completed(futs):
                frame = fut.result()
                out[index[fut.key]] = frame
                prog.update(task, advance=len(frame))
        return [f for f in out if f is not None]
    finally:
        if own:
            client.close()


@renamed_keywords("power_curve", {"seed": seed_to_rng})
def power_curve(
    design: Any,
    vary: Mapping[str, Iterable[Any]],
    nsim: int = 1000,
    rng: RNGLike = None,
    n_jobs: int = 1,
    alpha: float = 0.05,
    scheduler: Any = None,
    *,
    progress: bool = True,
    target: float = 0.8,
) -> PowerCurve:
    """Simulated power over a range of one design parameter.

    Parameters
    ----------
    design : a design object
    vary : dict with one entry
        Parameter name and its values. A design field (``sd_slope``...), a
        ``fixed:<coef>`` effect, or (for designs built with ``planned``) a plan
        argument such as ``clients_per_programme`` or ``programmes``.
    nsim, rng, n_jobs, alpha, scheduler, progress
        As in :func:`simulate`; the same root seed is used at every value
        (common random numbers make the curve smoother). ``seed=`` is accepted
        for one release with a :class:`FutureWarning`.
    target : float
        Power drawn as a reference line by :meth:`PowerCurve.plot`.
    """
    if len(vary) != 1:
        raise SpecError("vary must name exactly one parameter")
    ((param, values),) = vary.items()
    values = tuple(values)
    root = _root_seed(rng)
    results = []
    for v in values:
        d = design.replace(**{param: v})
        results.append(
            simulate(
                d,
                nsim=nsim,
                rng=root,
                n_jobs=n_jobs,
                alpha=alpha,
                scheduler=scheduler,
                progress=progress,
            )
        )
    return PowerCurve(parameter=param, results=tuple(results), values=values, target=target)
