"""``effectstudy dictionary``: scaffold and check data-dictionary entries.

Sub-commands:

``new-source EXPORT --programme ID [--out FILE] [--dictionary DIR]``
    draft ``sources/<ID>.yaml`` from an export (see :mod:`effectstudy.scaffold`);
``new-programme ID [--out FILE] [--name NAME]``
    draft the programme's entry of ``programmes.yaml``;
``check DIR``
    validate a dictionary folder and print a summary.

Mounted in :mod:`effectstudy.cli` as ``app.add_typer(dictionary_app, name="dictionary")``.
Like every command, an :class:`~effectstudy.errors.EffectStudyError` becomes one line on
stderr and exit code 1. Nothing printed here holds a cell value of an identifier or
free-text column, nor a header that is not made of column words (the scaffolder's privacy
rule: such a header may be a value, and no option shows it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["dictionary_app"]

dictionary_app = typer.Typer(
    name="dictionary",
    help="Draft and check data-dictionary entries (new programmes, new exports).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: The environment variable that names the dictionary folder (as for every command).
ENV_DICTIONARY = "EFFECTSTUDY_DICTIONARY"
_LEVEL_STYLE = {"info": "", "todo": "yellow", "warning": "bold yellow"}


def _consoles() -> tuple[Console, Console]:
    # Imported here, not at module level: effectstudy.cli imports this module to mount it.
    from effectstudy.cli import console, err_console

    return console, err_console


def _write_draft(text: str, out: Path | None, what: str) -> None:
    from effectstudy._io import atomic_write_text
    from effectstudy.cli import fail

    console, _err = _consoles()
    if out is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
        return
    if out.exists():
        raise fail(f"{out} already exists: choose another --out, or delete it first (a draft "
                   "never overwrites a file)")
    atomic_write_text(out, text)
    console.print(f"wrote the draft {what} to {out}", markup=False, highlight=False,
                  soft_wrap=True)


@dictionary_app.command("new-source")
def new_source(
    export: Annotated[Path, typer.Argument(help="The export: .csv, .xlsx or .sav.")],
    programme: Annotated[str, typer.Option("--programme", help="The programme id.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the draft YAML here (default: print it).")] = None,
    dictionary: Annotated[Path | None, typer.Option(
        "--dictionary", envvar=ENV_DICTIONARY,
        help="Data dictionary folder whose instruments the columns are matched to "
             f"(default: env {ENV_DICTIONARY}, else the shipped one).")] = None,
) -> None:
    """Draft sources/<ID>.yaml from an export: format, header row, identifiers, scores.

    The draft detects the encoding, separator and decimal mark of a CSV, the sheet and
    header row of a workbook, the date format, the identifier columns (to be dropped),
    and the score columns matched to the dictionary's instruments; the occasion and
    phase labels found are listed as TODO lines to map. No cell value of an identifier
    or free-text column is shown, and a header only when it is made of column words
    (datum, score, meting, an instrument id, ...): any other header may be a value (a
    name, a date, a number) and is shown as 'column #N (not shown: may be a value)'.
    There is no option to show it.
    """
    from effectstudy.cli import errors_as_exit
    from effectstudy.scaffold import draft_source

    console, err = _consoles()
    with errors_as_exit():
        text, findings = draft_source(export, programme=programme, dictionary=dictionary)
        _write_draft(text, out, "source description")
        for f in findings:
            err.print(f"{f.level}: {f.message}", style=_LEVEL_STYLE.get(f.level, ""),
                      markup=False, highlight=False, soft_wrap=True)
        todo = sum(f.level == "todo" for f in findings)
        warn = sum(f.level == "warning" for f in findings)
        err.print(f"{todo} TODO(s), {warn} warning(s): fill in the TODOs, then run "
                  "`effectstudy dictionary check DIR`", markup=False, highlight=False)


@dictionary_app.command("new-programme")
def new_programme(
    programme_id: Annotated[str, typer.Argument(metavar="ID", help="The new programme id.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the draft here (default: print it).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="The programme's name.")] = None,
) -> None:
    """Draft a programmes.yaml entry: every required key, UNVERIFIED numbers, TODOs."""
    from effectstudy.cli import errors_as_exit
    from effectstudy.scaffold import draft_programme

    with errors_as_exit():
        _write_draft(draft_programme(programme_id, name=name), out, "programme entry")


@dictionary_app.command("check")
def check(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Data dictionary folder.")],
) -> None:
    """Validate a dictionary folder; print programmes, sources, instruments, unverified numbers.

    Errors name the file and the key path; a missing folder or any error exits with 1.
    """
    from effectstudy.cli import errors_as_exit, fail
    from effectstudy.dictionary import load_dictionary

    console, _err = _consoles()
    with errors_as_exit():
        if not folder.is_dir():
            raise fail(f"data dictionary folder not found: {folder}")
        d = load_dictionary(folder)
        unverified = d.unverified()
        table = Table(title=f"Data dictionary {folder} is valid")
        table.add_column("programme", no_wrap=True)
        table.add_column("phases", justify="right")
        table.add_column("export files", justify="right")
        table.add_column("measures", justify="right")
        table.add_column("unverified numbers", justify="right")
        missing = []
        for pid, prog in d.programmes.items():
            src = d.sources.get(pid)
            if src is None:
                missing.append(pid)
            where = unverified["where"]
            n_unv = int(((where == f"programmes.yaml: {pid}")
                         | where.str.startswith(f"programmes.yaml: {pid}.")).sum())
            table.add_row(pid, str(len(prog.phases)), str(len(src.files)) if src else "-",
                          str(sum(len(f.measures) for f in src.files)) if src else "-",
                          str(n_unv))
        console.print(table)
        n_scales = sum(len(i.scales) for i in d.instruments.values())
        console.print(f"{len(d.programmes)} programme(s), {len(d.sources)} source file(s) with "
                      f"{sum(len(s.files) for s in d.sources.values())} export(s), "
                      f"{len(d.instruments)} instrument(s) with {n_scales} scale(s), "
                      f"{len(d.constructs)} construct(s), {len(d.references)} reference(s)",
                      markup=False, highlight=False)
        console.print(f"{len(unverified)} number(s) without a published source (UNVERIFIED: "
                      "kept for range checks and planning, never shown as a norm)",
                      markup=False, highlight=False)
        for pid in missing:
            console.print(f"programme {pid} has no sources/{pid}.yaml: its exports cannot be "
                          "harmonised yet", style="yellow", markup=False, highlight=False)
        _print_untranslated(console, d)
        console.print(f"sha256 {d.sha256}", markup=False, highlight=False)
        left = _todos_left(folder)
        if left:
            shown = "; ".join(f"{file} line {line}" for file, line in left[:5])
            more = f" and {len(left) - 5} more" if len(left) > 5 else ""
            raise fail(f"{len(left)} TODO(s) of a draft are still in the dictionary: {shown}"
                       f"{more} (fill them in)")


def _print_untranslated(console: Console, d) -> None:
    """Name every text field without a Dutch text (a Dutch report marks its English text
    as untranslated); the dictionary stays valid."""
    import pandas as pd

    from effectstudy.dictionary import load_integrity

    missing = pd.concat([d.untranslated("nl"), load_integrity(d).untranslated("nl")],
                        ignore_index=True)
    if missing.empty:
        console.print("every text has a Dutch translation", markup=False, highlight=False)
        return
    console.print(f"{len(missing)} text(s) without a Dutch translation (a Dutch report shows "
                  "them in English, marked as not translated); write them as {en: ..., nl: ...}:",
                  style="yellow", markup=False, highlight=False)
    for _, row in missing.iterrows():
        console.print(f"  {row['file']}: {row['key']}", style="yellow", markup=False,
                      highlight=False)


_TODO = re.compile(r"\bTODO\b")


def _todos_left(folder: Path) -> list[tuple[str, int]]:
    """(file, line) of every ``TODO`` outside a comment in the dictionary's YAML files.

    A draft's TODO in a text field (``provider: TODO``) loads as text; it must not pass
    unnoticed. A ``#`` at the start of a line or after white space starts a comment.
    """
    out = []
    for file in sorted(folder.rglob("*.yaml")):
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(lines, start=1):
            active = re.split(r"(?:^|\s)#", line, maxsplit=1)[0]
            if _TODO.search(active):
                out.append((str(file.relative_to(folder)), number))
    return out
