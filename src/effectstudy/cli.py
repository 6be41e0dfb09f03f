"""Command-line interface: ``effectstudy demo``, ``harmonise``, ``report`` and ``power``.

One function per command; add a command with ``@app.command()``. Every
:class:`~effectstudy.errors.EffectStudyError` becomes a one-line message on stderr
and exit code 1 (no traceback). Messages never contain raw client identifiers.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from effectstudy.errors import EffectStudyError

app = typer.Typer(
    name="effectstudy",
    help="Effect research on small, heterogeneous outcome studies in Dutch youth care.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@app.callback()
def main() -> None:
    """effectstudy: harmonise exports, analyse, report."""


# --------------------------------------------------------------------------- #
# Shared helpers
# --------------------------------------------------------------------------- #
def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def errors_as_exit() -> Iterator[None]:
    """Turn EffectStudyError (and unreadable paths) into a one-line message + exit 1."""
    try:
        yield
    except EffectStudyError as exc:
        raise fail(str(exc).replace("\n", " ")) from None
    except (OSError, PermissionError) as exc:
        raise fail(f"{type(exc).__name__}: {exc.strerror or exc}") from None


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress display shown only when the work takes longer than a second."""
    start = time.monotonic()
    prog = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=err_console, transient=True, auto_refresh=False)
    task = None
    started = False

    def update(name: str, i: int, n: int) -> None:
        nonlocal task, started
        if not started and time.monotonic() - start > 1.0:
            prog.start()
            started = True
        if task is None:
            task = prog.add_task(label, total=n)
        prog.update(task, completed=i, description=f"{label}: {name} ({i + 1}/{n})")
        if started:
            prog.refresh()

    try:
        yield update
    finally:
        if started:
            prog.stop()


def print_summary(h, title: str) -> None:
    """Per-programme summary of a Harmonised result, and the rejections by reason."""
    summ = h.summary()
    table = Table(title=title)
    heads = (("programme", "programme"), ("clients", "clients"), ("occasions", "occ."),
             ("constructs", "constr."), ("instruments", "instr."), ("rows", "rows"),
             ("rows_rejected", "rejected"), ("notes", "notes"))
    for col, head in heads:
        table.add_column(head, justify="left" if col == "programme" else "right",
                         no_wrap=True)
    for rec in summ.to_dict("records"):
        table.add_row(*(str(rec[c]) for c, _ in heads))
    console.print(table)
    counts = h.rejection_counts()
    if len(counts):
        why = Table(title="Rejected score records and notes, by reason")
        for head in ("programme", "reason", "log entries", "scores rejected"):
            why.add_column(head, justify="left" if head in ("programme", "reason") else "right",
                           no_wrap=True)
        for rec in counts.to_dict("records"):
            why.add_row(rec["programme"], rec["kind"], str(rec["entries"]), str(rec["scores"]))
        console.print(why)
    ignored = h.provenance.get("ignored_files", 0)
    if ignored:
        console.print(f"[yellow]{ignored} file(s) in the folder are not described in the data "
                      "dictionary and were not read[/]")
    acc = h.accounting
    console.print(f"score records: {int(acc['rows_in'].sum())} read = {len(h.table)} in the table "
                  f"+ {int(acc['rows_rejected'].sum())} rejected (details: rejections.csv)")


def _write(h, out: Path) -> list[Path]:
    """Write parquet + csv atomically (0600 files in a 0700 folder, see effectstudy.table)."""
    return h.write(out, format=("parquet", "csv"))


@contextmanager
def key_notices() -> Iterator[None]:
    """Show every :class:`PseudonymKeyWarning` (new key file and where, open mode) as a
    console line; other warnings go on as they would have."""
    from effectstudy.harmonise.pseudonym import PseudonymKeyWarning

    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always", PseudonymKeyWarning)
            try:
                yield
            finally:
                caught = list(rec)
    finally:  # also when harmonising fails: a created key file is announced all the same
        for w in caught:
            if issubclass(w.category, PseudonymKeyWarning):
                console.print(f"pseudonym key: {w.message}", style="yellow", markup=False,
                              highlight=False, soft_wrap=True)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


# --------------------------------------------------------------------------- #
# Commands
# --------------------------------------------------------------------------- #
@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo_output"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic data.")] = 2026,
    report: Annotated[bool, typer.Option(
        "--report/--no-report", help="End with the full study report (OUT/report).")] = True,
) -> None:
    """Generate synthetic exports (OUT/raw), harmonise them (OUT/harmonised), write the report.

    The report (OUT/report/report.html and .pdf, public audience) is built from the
    harmonised folder with the demo analysis spec, exactly as ``effectstudy report``
    would build it.
    """
    from effectstudy import synth
    from effectstudy.dictionary import load_dictionary
    from effectstudy.harmonise import harmonise
    from effectstudy.harmonise.pseudonym import demo_key

    with errors_as_exit():
        raw = out / "raw"
        d = load_dictionary()
        with progress_bar("generating synthetic exports") as update:
            update("all programmes", 0, 1)
            result = synth.generate(raw, seed=seed, dictionary=d)
        console.print(f"wrote {len(result.files)} synthetic export files to {raw}")
        console.print("[yellow]pseudonym key: derived from the seed, for this SYNTHETIC demo "
                      "only; real data always uses a secret key (never do this for real data)[/]")
        with progress_bar("harmonising") as update:
            h = harmonise(raw, d, key=demo_key(seed), progress=update)
        print_summary(h, f"Harmonised synthetic exports (seed {seed})")
        written = _write(h, out / "harmonised")
        console.print(f"wrote {len(written)} files to {out / 'harmonised'}")
        if report:
            _build_report(out / "harmonised", None, out / "report", "public", seed=seed)


def _build_report(data: Path, spec: Path | None, out: Path, audience: str,
                  seed: int | None = None) -> None:
    from effectstudy.report import build_report, load_spec

    spec_dict = load_spec(spec)
    if seed is not None:
        spec_dict["seed"] = seed
    with progress_bar(f"building the {audience} report") as update:
        update("analyses", 0, 1)
        result = build_report(data, spec_dict, out=out, audience=audience)
    console.print(f"report ({audience}): {result.html_path.resolve()}")
    if result.pdf_path is not None:
        console.print(f"report PDF: {result.pdf_path.resolve()}")


@app.command("report")
def report_cmd(
    data: Annotated[Path, typer.Option("--data", help="Harmonised folder (from harmonise).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("report"),
    spec: Annotated[Path | None, typer.Option(
        "--spec", help="ANALYSIS.yaml (default: the demo spec).")] = None,
    audience: Annotated[str, typer.Option(
        "--audience", help="public (small cells suppressed, no case-level identifiers) or "
                           "internal (pseudonymised case-level detail).")] = "public",
) -> None:
    """Build the study report (self-contained HTML + PDF) from harmonised data."""
    with errors_as_exit():
        if audience not in ("public", "internal"):
            raise fail(f"--audience must be 'public' or 'internal', not {audience!r}")
        _build_report(data, spec, out, audience)


@app.command("power")
def power_cmd(
    design: Annotated[Path, typer.Argument(help="Design YAML (see effectstudy.power.load_design).")],
    nsim: Annotated[int | None, typer.Option(
        "--nsim", help="Number of simulated studies (default: the file's, else 1000).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (default: the file's).")] = None,
    n_jobs: Annotated[int, typer.Option("--n-jobs", help="Parallel workers (-1: all cores).")] = -1,
) -> None:
    """Simulated power of a planned design, with its Monte Carlo interval."""
    from effectstudy.power import run_from_yaml

    with errors_as_exit():
        result = run_from_yaml(design, nsim=nsim, seed=seed, n_jobs=n_jobs)
        frame = result.to_frame()
        table = Table(title=f"Power of {design.name}")
        table.add_column("quantity")
        for i in range(len(frame)):
            table.add_column("value" if len(frame) == 1 else f"row {i + 1}", justify="right")
        for col in frame.columns:
            table.add_row(str(col), *(f"{v:.4g}" if isinstance(v, float) else str(v)
                                      for v in frame[col]))
        console.print(table)


@app.command("harmonise")
def harmonise_cmd(
    data: Annotated[Path, typer.Argument(help="Folder with the programme exports.")],
    out: Annotated[Path, typer.Option(
        "--out", help="Output folder: replaced as a whole, atomically (files 0600, folder "
                      "0700); refused if it holds anything but an earlier output.")
    ] = Path("harmonised"),
    dictionary: Annotated[Path | None, typer.Option(
        "--dictionary", help="Data dictionary folder (default: the shipped one).")] = None,
    key_file: Annotated[Path | None, typer.Option(
        "--key-file", help="Pseudonym key file (created once if absent; never inside DATA "
                           "or OUT). Default: env EFFECTSTUDY_KEY_FILE or "
                           "~/.config/effectstudy/pseudonym.key.")] = None,
) -> None:
    """Harmonise real exports in DATA into OUT (parquet + csv, provenance.json).

    OUT is written atomically (an interrupted run leaves the earlier OUT as it was),
    private (files 0600, folder 0700), with each file's row count and sha256 in
    provenance.json. A new key file, or one that others can read, is announced.
    """
    from effectstudy.harmonise import harmonise
    from effectstudy.harmonise.pseudonym import (
        ENV_KEY,
        check_key_file_location,
        default_key_file,
    )

    with errors_as_exit():
        if not data.is_dir():
            raise fail(f"data folder not found: {data}")
        if key_file is not None or not os.environ.get(ENV_KEY):
            # the key file that will be used (created once if absent): never in DATA or OUT
            check_key_file_location(key_file or default_key_file(), [data, out])
        with key_notices(), progress_bar("harmonising") as update:
            h = harmonise(data, dictionary, key_file=key_file, progress=update)
        print_summary(h, f"Harmonised exports from {data}")
        written = _write(h, out)
        console.print(f"wrote {len(written)} files to {out}")


if __name__ == "__main__":  # pragma: no cover
    app()
