"""Command-line interface: ``effectstudy demo``, ``harmonise``, ``run``, ``report`` and ``power``.

One function per command; add a command with ``@app.command()``. Every
:class:`~effectstudy.errors.EffectStudyError` becomes a one-line message on stderr
and exit code 1 (no traceback). Messages never contain raw client identifiers.

One dictionary everywhere: every command that reads the data dictionary takes
``--dictionary DIR`` and otherwise honours env ``EFFECTSTUDY_DICTIONARY``
(:func:`effectstudy.dictionary.resolve_dictionary`); ``report`` without
``--dictionary`` uses the dictionary the harmonised folder records in provenance.json.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from effectstudy.errors import EffectStudyError

if TYPE_CHECKING:  # the CLI imports the heavy modules only when a command runs
    from effectstudy.dictionary import Dictionary

app = typer.Typer(
    name="effectstudy",
    help="Effect research on small, heterogeneous outcome studies in Dutch youth care.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

DICTIONARY_HELP = ("Data dictionary folder (default: env EFFECTSTUDY_DICTIONARY, else the "
                   "shipped one). Pass the same folder to every command.")


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
    for message in _UNDESCRIBED:
        # named on the console only (the user's own folder listing); written files record
        # an undescribed file by position and extension, since its name may name a client
        console.print(f"warning: {message}; --strict makes this an error", style="yellow",
                      markup=False, highlight=False, soft_wrap=True)
    absent = h.provenance.get("absent_sources", [])
    if absent:
        listed = ", ".join(f"{a['path']} ({a['programme']})" for a in absent)
        console.print(f"declared in the data dictionary but absent from the folder: {listed}",
                      markup=False, highlight=False, soft_wrap=True)
    acc = h.accounting
    if "cells_read" in acc:
        console.print(f"score cells: {int(acc['cells_read'].sum())} read = "
                      f"{int(acc['cells_empty'].sum())} empty (not measured) + "
                      f"{int(acc['rows_in'].sum())} score records")
    console.print(f"score records: {int(acc['rows_in'].sum())} read = {len(h.table)} in the table "
                  f"+ {int(acc['rows_rejected'].sum())} rejected (details: rejections.csv)")


def _write(h, out: Path) -> list[Path]:
    """Write parquet + csv atomically (0600 files in a 0700 folder, see effectstudy.table)."""
    return h.write(out, format=("parquet", "csv"))


#: Messages of the :class:`UndescribedFileWarning` s of the current command (they name the
#: files, which only the console may show); filled by :func:`file_notices`.
_UNDESCRIBED: list[str] = []


@contextmanager
def file_notices() -> Iterator[None]:
    """Collect :class:`UndescribedFileWarning` s for print_summary (which lists them once,
    by name, on the console); other warnings go on as they would have."""
    from effectstudy.harmonise.core import UndescribedFileWarning

    _UNDESCRIBED.clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UndescribedFileWarning)
            yield
    finally:
        # re-emitted outside the recording context (inside it they would be recorded again)
        for w in caught:
            if issubclass(w.category, UndescribedFileWarning):
                _UNDESCRIBED.append(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


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
        "--report/--no-report", help="End with the study results (OUT/results), the "
                                     "cross-programme report and the six dossiers "
                                     "(OUT/report/nl, OUT/report/en).")] = True,
    dictionary: Annotated[Path | None, typer.Option("--dictionary", help=DICTIONARY_HELP)] = None,
) -> None:
    """Generate synthetic exports (OUT/raw), harmonise them (OUT/harmonised), write the reports.

    The study is run once with the demo analysis spec (results in OUT/results, as
    ``effectstudy run`` writes them); from those results the cross-programme report
    and one dossier per programme are written in Dutch (OUT/report/nl) and English
    (OUT/report/en), public audience, HTML and PDF, and their paths printed.
    """
    from effectstudy import synth
    from effectstudy.dictionary import load_dictionary
    from effectstudy.harmonise import harmonise
    from effectstudy.harmonise.pseudonym import demo_key

    with errors_as_exit():
        raw = out / "raw"
        d = load_dictionary(dictionary)
        with progress_bar("generating synthetic exports") as update:
            update("all programmes", 0, 1)
            result = synth.generate(raw, seed=seed, dictionary=d)
        console.print(f"wrote {len(result.files)} synthetic export files to {raw}")
        console.print("[yellow]pseudonym key: derived from the seed, for this SYNTHETIC demo "
                      "only; real data always uses a secret key (never do this for real data)[/]")
        with file_notices(), progress_bar("harmonising") as update:
            h = harmonise(raw, d, key=demo_key(seed), progress=update)
        print_summary(h, f"Harmonised synthetic exports (seed {seed})")
        written = _write(h, out / "harmonised")
        console.print(f"wrote {len(written)} files to {out / 'harmonised'}")
        if report:
            from effectstudy.report import build_report
            from effectstudy.report.build import known_programmes

            results = _run_study(out / "harmonised", None, seed=seed, dictionary=d)
            results.save(out / "results")
            console.print(f"study results: {(out / 'results').resolve()}")
            with progress_bar("writing the reports") as update:
                programmes = known_programmes(results)
                jobs = [(lang, p) for lang in ("nl", "en") for p in (None, *programmes)]
                for i, (lang, prog) in enumerate(jobs):
                    update(f"{lang} {prog or 'all programmes'}", i, len(jobs))
                    rep = build_report(results, out=out / "report" / lang, audience="public",
                                       programme=prog, language=lang)
                    what = "report" if prog is None else f"dossier {prog}"
                    console.print(f"{what} ({lang}, public): {rep.html_path.resolve()}",
                                  markup=False, highlight=False, soft_wrap=True)


def _run_study(data: Path, spec: Path | None, seed: int | None = None,
               dictionary: Dictionary | Path | None = None):
    """Run the study layer on a harmonised folder (a bad spec is reported first)."""
    from effectstudy.harmonise.core import dictionary_for
    from effectstudy.study import load_spec, run

    spec_dict = load_spec(spec)  # first: a bad spec is reported before anything is read
    # the dictionary given, else the one the harmonised folder records (if unchanged),
    # else env EFFECTSTUDY_DICTIONARY / the shipped one
    d = dictionary_for(data, dictionary)
    if seed is not None:
        spec_dict["seed"] = seed
    with progress_bar("running the analyses") as update:
        update("analyses", 0, 1)
        return run(spec_dict, data, dictionary=d)


def _build_report(data: Path | None, spec: Path | None, out: Path, audience: str,
                  seed: int | None = None, dictionary: Dictionary | Path | None = None,
                  results: Path | None = None, programme: str | None = None,
                  language: str = "en") -> None:
    from effectstudy.report import build_report
    from effectstudy.study import StudyResults

    if results is not None:
        source = StudyResults.load(results)  # verified against its manifest; nothing recomputed
    else:
        source = _run_study(data, spec, seed=seed, dictionary=dictionary)
    with progress_bar(f"building the {audience} report") as update:
        update("rendering", 0, 1)
        result = build_report(source, out=out, audience=audience, programme=programme,
                              language=language)
    what = "report" if programme is None else f"dossier {programme}"
    console.print(f"{what} ({audience}, {language}): {result.html_path.resolve()}",
                  markup=False, highlight=False, soft_wrap=True)
    if result.pdf_path is not None:
        console.print(f"{what} PDF: {result.pdf_path.resolve()}", markup=False,
                      highlight=False, soft_wrap=True)


@app.command("run")
def run_cmd(
    data: Annotated[Path, typer.Option("--data", help="Harmonised folder (from harmonise).")],
    out: Annotated[Path, typer.Option(
        "--out", help="Results folder: replaced as a whole, atomically (files 0600, folder "
                      "0700).")] = Path("results"),
    spec: Annotated[Path | None, typer.Option(
        "--spec", help="ANALYSIS.yaml (default: the demo spec).")] = None,
    dictionary: Annotated[Path | None, typer.Option(
        "--dictionary", help="Data dictionary folder (default: the one the harmonised data "
                             "record, if unchanged; else env EFFECTSTUDY_DICTIONARY, else the "
                             "shipped one).")] = None,
) -> None:
    """Run every analysis of the spec once and save the exact results (parquet + JSON).

    The results are internal (pseudonymised client-level detail, nothing suppressed);
    ``effectstudy report --results OUT`` renders reports from them without recomputing.
    """
    with errors_as_exit():
        results = _run_study(data, spec, dictionary=dictionary)
        written = results.save(out)
        console.print(f"wrote {len(written)} files to {out}")


@app.command("report")
def report_cmd(
    data: Annotated[Path | None, typer.Option(
        "--data", help="Harmonised folder (from harmonise); the study is run first.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("report"),
    results: Annotated[Path | None, typer.Option(
        "--results", help="Study results folder (from 'effectstudy run'): render without "
                          "recomputing anything.")] = None,
    programme: Annotated[str | None, typer.Option(
        "--programme", help="Programme id: write that programme's dossier instead of the "
                            "cross-programme report.")] = None,
    language: Annotated[str, typer.Option(
        "--language", help="Language of the report: nl or en.")] = "en",
    spec: Annotated[Path | None, typer.Option(
        "--spec", help="ANALYSIS.yaml (default: the demo spec).")] = None,
    audience: Annotated[str, typer.Option(
        "--audience", help="public (small cells suppressed, no case-level identifiers) or "
                           "internal (pseudonymised case-level detail).")] = "public",
    dictionary: Annotated[Path | None, typer.Option(
        "--dictionary", help="Data dictionary folder (default: the one the harmonised data "
                             "record, if unchanged; else env EFFECTSTUDY_DICTIONARY, else the "
                             "shipped one).")] = None,
) -> None:
    """Build the study report or a programme dossier (self-contained HTML + PDF).

    From harmonised data (``--data``, running the study with ``--spec``) or from saved
    results (``--results``, nothing recomputed). An unknown ``--programme`` is an error
    that lists the known programme ids.
    """
    with errors_as_exit():
        if audience not in ("public", "internal"):
            raise fail(f"--audience must be 'public' or 'internal', not {audience!r}")
        if language not in ("nl", "en"):
            raise fail(f"--language must be 'nl' or 'en', not {language!r}")
        if (data is None) == (results is None):
            raise fail("give either --data (harmonised folder) or --results (study results)")
        _build_report(data, spec, out, audience, dictionary=dictionary, results=results,
                      programme=programme, language=language)


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
        result = run_from_yaml(design, nsim=nsim, rng=seed, n_jobs=n_jobs)
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
    dictionary: Annotated[Path | None, typer.Option("--dictionary", help=DICTIONARY_HELP)] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="A file in DATA that no source describes is an error (default: a "
                         "warning naming it).")] = False,
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
        with key_notices(), file_notices(), progress_bar("harmonising") as update:
            h = harmonise(data, dictionary, key_file=key_file, progress=update, strict=strict)
        print_summary(h, f"Harmonised exports from {data}")
        written = _write(h, out)
        console.print(f"wrote {len(written)} files to {out}")


# `effectstudy dictionary new-source | new-programme | check` (scaffolding a new programme)
from effectstudy.cli_dictionary import dictionary_app  # noqa: E402  (after `app` and its helpers)

app.add_typer(dictionary_app, name="dictionary")


if __name__ == "__main__":  # pragma: no cover
    app()
