"""Writing the drafts: :func:`draft_source` (a source file of the data dictionary)
and :func:`draft_programme` (a programme entry), both re-exported by
:mod:`effectstudy.scaffold`, whose docstring describes what is detected and what a
draft may show.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import Counter
from pathlib import Path

from effectstudy.dictionary import (
    END_REASONS,
    Dictionary,
    Programme,
)
from effectstudy.errors import DictionaryError, EffectStudyError, SourceError
from effectstudy.harmonise.pseudonym import programme_code
from effectstudy.harmonise.readers import is_empty
from effectstudy.scaffold._columns import (
    CLIENT_FIELD_PATTERNS,
    H_CLIENT,
    H_DATE,
    H_INSTRUMENT,
    H_OCCASION,
    H_PHASE,
    H_SCALE,
    H_SCED,
    H_SCORE,
    H_SESSION,
    H_SEX,
    ExportColumn,
    InstrumentMatch,
    as_dictionary,
    check_programme_id,
    closed_list,
    constructs_of,
    date_format,
    identifier_kind,
    instrument_aliases,
    known_columns,
    match_instrument,
    pick,
    session_like,
    suggest_occasion,
    supports,
    values_by_client,
    wide_groups,
)
from effectstudy.scaffold._read import (
    MAX_LABEL_LENGTH,
    MISSING_CODES,
    NUM_COMMA,
    NUM_DOT,
    PHONE,
    SEP_NAMES,
    ExportTable,
    Finding,
    cell_text,
    fold,
    id_digits,
    is_number,
    mentions_name,
    name_shaped,
    natural,
    read_table,
    tokens,
    yaml_scalar,
)
from effectstudy.scaffold._vocabulary import dictionary_words, header_hint, header_is_safe

__all__ = ["draft_programme", "draft_source"]


def draft_source(export: str | Path, *, programme: str,
                 dictionary: Dictionary | str | Path | None = None
                 ) -> tuple[str, list[Finding]]:
    """Draft ``sources/<programme>.yaml`` from one export.

    Parameters
    ----------
    export
        The export file: ``.csv`` (any encoding, separator and decimal mark), ``.xlsx``
        (title rows above the header, merged cells, several sheets) or ``.sav``.
    programme
        The programme id the source belongs to (lower case, e.g. ``nieuw_programma``).
    dictionary
        The data dictionary whose instruments the score columns are matched to (a loaded
        :class:`~effectstudy.dictionary.Dictionary` or a folder); default: the
        ``EFFECTSTUDY_DICTIONARY`` folder, else the shipped one.

    Returns
    -------
    tuple of (str, list of Finding)
        The draft YAML (comments explain each detection; ``# TODO`` marks what the user
        must decide) and the findings, under the package's privacy rule: no cell value of an
        identifier-looking or free-text column anywhere, a header not made of column words
        as ``column #N (not shown: may be a value)``.

    Raises
    ------
    SourceError
        When the export cannot be read (naming the file, never a cell).
    DictionaryError
        On a malformed programme id or dictionary.
    """
    check_programme_id(programme)
    path = Path(export)
    if not path.is_file():
        raise SourceError("export file not found", file=path)
    d = as_dictionary(dictionary)
    try:
        table = read_table(path)
    except EffectStudyError:
        raise
    except Exception as exc:  # a parser's message may quote the file: class name only
        raise SourceError(f"the export could not be read ({type(exc).__name__})",
                          file=path) from None
    return _Drafter(path, programme, d, table).run()


class _Drafter:
    def __init__(self, path: Path, programme: str, d: Dictionary, table: ExportTable) -> None:
        self.path, self.programme, self.d, self.t = path, programme, d, table
        self.findings: list[Finding] = list(table.findings)
        # column words of the dictionary in use; the programme id's words count for the
        # file and sheet names only (a header is not shown for holding them)
        self.vocabulary = dictionary_words(d)
        self.name_words = self.vocabulary | frozenset(tokens(programme))
        self.cols: list[ExportColumn] = []
        width = max([len(table.header)] + [len(r) for r in table.body])
        for i in range(width):
            header = table.header[i] if i < len(table.header) else ""
            values = [r[i] for r in table.body if i < len(r) and not is_empty(r[i])]
            if not header and not values:
                continue
            self.cols.append(ExportColumn(i, header, values, header_is_safe(header, self.vocabulary)))
        self.lines: list[str] = []
        self.occ_labels: list[str] = []
        #: date_column / phase_column found in a column whose header is not shown
        self.hidden_roles: dict[str, ExportColumn] = {}

    def note(self, level: str, message: str) -> None:
        self.findings.append(Finding(level, message))

    # -- column roles ---------------------------------------------------------
    def classify(self) -> None:
        for c in self.cols:
            if not c.header:
                self.note("warning", f"column #{c.index + 1} has data but no header: give it "
                                     "a header in the export (the harmoniser refuses it)")
                continue
            found = identifier_kind(c)
            if (found and found[0] in ("free_text", "contact", "name")
                    and not found[1].startswith("header")
                    and CLIENT_FIELD_PATTERNS["interventions"].search(fold(c.header))):
                # the harmoniser keeps only the mapped vocabulary of an interventions cell
                self.note("warning", f"{c.shown}: interventions cells may also hold free text "
                                     f"({found[1]}); the harmoniser keeps only the labels mapped "
                                     "under labels: interventions and logs the rest without "
                                     "its text")
                found = None
            if found:
                c.kind, c.why = found
        hidden = [c.index for c in self.cols if c.header and not c.safe]
        if hidden:
            self.note("warning", header_hint(hidden))

    def run(self) -> tuple[str, list[Finding]]:
        self.classify()
        d = self.d
        used: set[int] = set()
        ids = [c for c in self.cols if c.identifier]
        used.update(c.index for c in ids)
        client = pick(self.cols, H_CLIENT, used)
        if client is None:
            self.note("todo", "no client-number column recognised: set client_id")
        else:
            used.add(client.index)
        known, constructs = known_columns(d), constructs_of(d)
        aliases = instrument_aliases(d)
        groups, occ_labels = wide_groups([c for c in self.cols if c.index not in used])
        self.occ_labels = occ_labels
        decimal = self.decimal()
        # wide templates
        measures: list[tuple[str, InstrumentMatch | None, list[ExportColumn]]] = []
        date_col = phase_col = None
        for stem, by_occ in sorted(groups.items(), key=lambda kv: min(c.index for c in
                                                                      kv[1].values())):
            cols_ = sorted(by_occ.values(), key=lambda c: c.index)
            first = cols_[0]
            label0 = next(lab for lab, c in by_occ.items() if c is first)
            template = first.header[: len(first.header) - len(label0)] + "{occasion}"
            folded = fold(stem)
            if date_col is None and H_DATE.search(folded):
                date_col = template
            elif phase_col is None and re.search(r"^fase|^phase", folded):
                phase_col = template
            else:
                m = match_instrument(stem, d, known, constructs, aliases)
                measures.append((template, m, cols_))
            used.update(c.index for c in cols_)
        layout = "wide" if measures else None
        # non-wide roles
        occasion = pick(self.cols, H_OCCASION, used)
        roles: dict[str, ExportColumn] = {}
        if occasion is not None and layout is None and session_like(occasion):
            roles["session_column"] = occasion  # week numbers of a single-case series
            occasion = None
        if occasion is not None:
            used.add(occasion.index)
        for key, rx in (("instrument_column", H_INSTRUMENT), ("scale_column", H_SCALE),
                        ("score_column", H_SCORE), ("session_column", H_SESSION),
                        ("sced_phase_column", H_SCED)):
            c = pick(self.cols, rx, used)
            if c is not None and key not in roles:
                roles[key] = c
        if "session_column" in roles and "sced_phase_column" not in roles:
            c = pick(self.cols, H_PHASE, used | {roles["session_column"].index})
            if c is not None and len({cell_text(v) for v in c.values}) <= 4:
                roles["sced_phase_column"] = c
        if layout is None:
            if {"instrument_column", "scale_column", "score_column"} <= set(roles):
                layout = "long"
            elif occasion is None and {"session_column", "sced_phase_column"} <= set(roles):
                layout = "series"
            else:
                layout = "occasion_rows"
        keep_roles = {"long": ("instrument_column", "scale_column", "score_column"),
                      "series": ("session_column", "sced_phase_column")}.get(layout, ())
        roles = {k: v for k, v in roles.items() if k in keep_roles}
        used.update(c.index for c in roles.values())
        fields: dict[str, ExportColumn] = {}
        for key, rx in CLIENT_FIELD_PATTERNS.items():
            c = pick(self.cols, rx, used)
            if c is not None:
                fields[key] = c
                used.add(c.index)
        if layout != "wide":
            for key, rx in (("date_column", H_DATE), ("phase_column", H_PHASE)):
                c = pick(self.cols, rx, used)
                if c is None:
                    continue
                used.add(c.index)
                if not c.safe:
                    self.hidden_roles[key] = c
                elif key == "date_column":
                    date_col = c.header
                else:
                    phase_col = c.header
            if layout == "long":
                measures.extend(self.long_measures(roles, client, known, constructs, aliases))
            if layout in ("occasion_rows", "series"):
                for c in self.cols:
                    if c.index in used or c.identifier:
                        continue
                    m = match_instrument(c.header, d, known, constructs, aliases)
                    if m is not None and c.safe:
                        measures.append((c.header, m, [c]))
                        used.add(c.index)
        sex = pick(self.cols, H_SEX, used)
        if sex is not None:
            used.add(sex.index)
        self.emit(layout=layout, client=client, ids=ids, decimal=decimal, measures=measures,
                  occ_labels=occ_labels, occasion=occasion, roles=roles, fields=fields,
                  date_col=date_col, phase_col=phase_col, sex=sex, used=used)
        return "\n".join(self.lines) + "\n", self.findings

    def long_measures(self, roles: dict[str, ExportColumn], client: ExportColumn | None, known: dict,
                      constructs: dict, aliases: dict) -> list:
        """(label pair, match, []) for each instrument x scale label pair of a long file."""
        inst, scale = roles["instrument_column"], roles["scale_column"]
        if (closed_list(inst, None, self.t.body)[1]
                or closed_list(scale, None, self.t.body)[1]
                or closed_list(inst, None, self.t.body)[0] is None
                or closed_list(scale, None, self.t.body)[0] is None):
            self.note("todo", "the instrument and scale labels are not a closed list: write "
                              "the measures' label pairs from the export")
            return []
        pairs = sorted({(cell_text(r[inst.index]), cell_text(r[scale.index]))
                        for r in self.t.body
                        if max(inst.index, scale.index) < len(r)
                        and not is_empty(r[inst.index]) and not is_empty(r[scale.index])},
                       key=lambda p: (natural(p[0]), natural(p[1])))
        return [(pair, match_instrument(" ".join(pair), self.d, known, constructs, aliases), [])
                for pair in pairs]

    def decimal(self) -> str:
        comma = dot = 0
        for c in self.cols:
            if c.identifier:
                continue
            for v in c.values:
                if isinstance(v, str):
                    s = v.strip()
                    if NUM_COMMA.match(s):
                        comma += 1
                    elif "." in s and NUM_DOT.match(s):
                        dot += 1
        if self.t.format != "csv":
            if comma:
                self.note("warning", f"{comma} text cell(s) hold numbers written with a "
                                     "decimal comma; the harmoniser reads numbers in Excel and "
                                     "SPSS files as stored: store them as numbers")
            return "."
        dec = "," if comma > dot else "."
        self.note("info", f"decimal mark {dec!r}: {comma} number-like cell(s) written with ',', "
                          f"{dot} with '.'")
        return dec

    # -- YAML -----------------------------------------------------------------
    def out(self, line: str = "") -> None:
        self.lines.append(line)

    def emit(self, *, layout: str, client: ExportColumn | None, ids: list[ExportColumn], decimal: str,
             measures: list, occ_labels: list[str], occasion: ExportColumn | None,
             roles: dict[str, ExportColumn], fields: dict[str, ExportColumn], date_col: str | None,
             phase_col: str | None, sex: ExportColumn | None, used: set[int]) -> None:
        t, d, prog_id = self.t, self.d, self.programme
        prog: Programme | None = d.programmes.get(prog_id)
        stem_safe = header_is_safe(self.path.stem, self.name_words)
        self.out(f"# DRAFT of data_dictionary/sources/{prog_id}.yaml, written by "
                 "`effectstudy dictionary new-source`.")
        self.out("# Check every line against the export, fill in every TODO (uncomment the "
                 "lines you keep),")
        self.out("# then run `effectstudy dictionary check DIR`. No cell value of an "
                 "identifier or free-text")
        self.out("# column is shown here; a header not made of column words (datum, score, "
                 "meting, an")
        self.out("# instrument id, ...) appears as 'column #N (not shown: may be a value)'.")
        if prog is None:
            self.out(f"# Programme {prog_id!r} is not in programmes.yaml yet: add it first "
                     f"(`effectstudy dictionary new-programme {prog_id}`).")
            self.note("todo", f"programme {prog_id!r} is not in the dictionary yet: draft it "
                              "with `effectstudy dictionary new-programme`")
        elif prog_id in d.sources:
            self.out(f"# sources/{prog_id}.yaml exists: add the entry below under its files: "
                     "(with an id of its own).")
            self.note("todo", f"sources/{prog_id}.yaml exists: add this entry to its files:")
        self.out(f"programme: {prog_id}")
        self.out("files:")
        file_id = re.sub(r"[^a-z0-9]+", "_", fold(self.path.stem)).strip("_")
        file_id = re.sub(rf"^{re.escape(prog_id)}_?", "", file_id) or "export"
        self.out(f"  - id: {yaml_scalar(file_id if stem_safe else 'export')}")
        if stem_safe:
            self.out(f"    path: {yaml_scalar(self.path.name)}   # the file's name in the export folder")
        else:
            self.out("    path: TODO   # the file name is not shown (it may hold a name): "
                     "write it here")
            self.note("todo", "the export's file name looks like it holds a name or number "
                              "and is not shown: write `path:` yourself (better: rename it)")
        self.out(f"    format: {t.format}")
        if t.format == "csv":
            self.out(f"    csv: {{sep: {SEP_NAMES[t.sep or ',']}, decimal: {yaml_scalar(decimal)}, "
                     f"encoding: {t.encoding}}}")
        if t.format == "excel":
            sheet_safe = header_is_safe(t.sheet or "", self.name_words)
            if sheet_safe:
                self.out(f"    sheet: {yaml_scalar(t.sheet or '')}   # sheet #{(t.sheet_index or 0) + 1}")
            else:
                self.out(f"    sheet: TODO   # the name of sheet #{(t.sheet_index or 0) + 1} "
                         "is not shown (it may hold a name)")
        if t.format in ("csv", "excel"):
            what = "title row(s) above it" if t.header_row > 1 else "no title rows"
            if supports("header_row"):
                self.out(f"    header_row: {t.header_row}   # {what}")
            else:
                self.out(f"    # header_row: {t.header_row}   # {what}; this version reads the "
                         "header from row 1: delete the rows above it")
            self.note("info", f"header in row {t.header_row} ({what})")
        self.out(f"    layout: {layout}")
        self.layout_note(layout)
        # client id
        if client is not None and client.safe:
            fmt = "integer" if client.values and all(
                id_digits(v) is not None for v in client.values) else "text"
            self.out(f"    client_id: {yaml_scalar(client.header)}   # values not shown")
            self.out(f"    client_id_format: {fmt}")
            self.note("info", f"client number in {client.shown} (format {fmt}; values not "
                              "shown)")
        elif client is not None:
            self.out(f"    client_id: TODO   # column #{client.index + 1} looks like the client "
                     "number (its header is not shown)")
        else:
            self.out("    client_id: TODO   # the column of the provider's client number")
        # identifiers
        safe_ids = [c for c in ids if c.safe]
        self.out("    identifiers: [" + ", ".join(yaml_scalar(c.header) for c in safe_ids) + "]"
                 "   # dropped at the door; never read beyond the birth date's age")
        for c in ids:
            self.out(f"    #   {c.shown}: {c.kind.replace('_', ' ')} ({c.why})")
            self.note("info", f"{c.shown}: identifier ({c.kind.replace('_', ' ')}: {c.why}); "
                              "marked to be dropped")
            if not c.safe:
                self.out(f"    #   TODO add the header of column #{c.index + 1} to identifiers")
        births = [c for c in ids if c.kind == "birth_date"]
        if births and births[0].safe:
            self.out(f"    birth_date: {yaml_scalar(births[0].header)}   # used once for the age, "
                     "then dropped")
        # date format
        date_values = [v for c in self.cols if (c.kind == "birth_date" or c.kind == "other")
                       for v in c.values]
        fmt, failed = date_format(date_values)
        if fmt:
            self.out(f"    date_format: {yaml_scalar(fmt)}   # from the shape of the text dates")
            self.note("info", f"text dates shaped {fmt}" + (
                f"; {failed} date-like cell(s) do not fit it" if failed else ""))
        elif any(isinstance(v, dt.date | dt.datetime) for c in self.cols for v in c.values):
            self.out("    # dates are stored as dates: no date_format needed")
        serials = [c.shown for c in self.cols
                   if (c.kind == "birth_date" or H_DATE.search(fold(c.header))) and c.values
                   and all(is_number(v) and not isinstance(v, str)
                           and 10000 <= float(v) <= 80000 for v in c.values)]
        if serials:
            self.note("info", f"{', '.join(serials)}: dates stored as numbers (Excel date "
                              "serials, days since 1899-12-30)")
        if sex is not None:
            self.emit_sex(sex, client)
        # client fields
        if fields:
            self.out("    client_fields:")
            for key, c in fields.items():
                self.out(f"      {key}: {yaml_scalar(c.header) if c.safe else 'TODO'}"
                         f"{'' if c.safe else f'   # column #{c.index + 1}'}")
        for key, c in roles.items():
            self.out(f"    {key}: {yaml_scalar(c.header) if c.safe else 'TODO'}")
        if occasion is not None:
            self.out(f"    occasion_column: {yaml_scalar(occasion.header) if occasion.safe else 'TODO'}")
        elif layout in ("occasion_rows", "long"):
            self.out("    occasion_column: TODO   # the column of the occasion label")
            self.note("todo", "no occasion column recognised: set occasion_column")
        if date_col:
            self.out(f"    date_column: {yaml_scalar(date_col)}")
        if phase_col:
            self.out(f"    phase_column: {yaml_scalar(phase_col)}")
        for key, c in self.hidden_roles.items():
            self.out(f"    {key}: TODO   # column #{c.index + 1} (its header is not shown: "
                     "write it here)")
        # occasions
        if layout != "series":
            self.emit_occasions(layout, occ_labels, occasion, client)
        self.emit_measures(measures, decimal)
        self.emit_missing(measures, decimal)
        self.emit_labels(layout, fields, phase_col, occasion, client, roles, prog)
        self.emit_rest(used)

    def layout_note(self, layout: str) -> None:
        why = {"wide": "a row per client, a column per measure and occasion",
               "occasion_rows": "a row per client and measurement (TODO check)",
               "long": "a row per score (instrument, scale and score columns)",
               "series": "weekly single-case ratings (session and A/B phase columns)"}[layout]
        self.lines[-1] += f"   # {why}"
        self.note("info", f"layout {layout}: {why}")

    def emit_sex(self, sex: ExportColumn, client: ExportColumn | None) -> None:
        vals, _rare = closed_list(sex, client, self.t.body,
                                   self.t.value_labels.get(sex.header))
        if supports("sex_column") and sex.safe:
            self.out(f"    # TODO sex_column: {yaml_scalar(sex.header)}   # uncomment with labels: sex: "
                     "(female/male) below")
        if vals:
            self.out("    #   labels found: " + ", ".join(yaml_scalar(v) for v in vals))
        self.note("todo", f"{sex.shown}: looks like the client's sex; declare it for the norms")

    def emit_occasions(self, layout: str, occ_labels: list[str], occasion: ExportColumn | None,
                       client: ExportColumn | None) -> None:
        canon = ", ".join(self.d.occasions)
        labels: list[str] | None = occ_labels if layout == "wide" else None
        rare = 0
        if occasion is not None:
            labels, rare = closed_list(occasion, client, self.t.body,
                                        self.t.value_labels.get(occasion.header))
        self.out(f"    occasions:   # TODO map each label onto an occasion ({canon}); "
                 "uncomment the lines")
        if labels:
            for lab in labels:
                hint = suggest_occasion(lab, self.d)
                self.out(f"      # {yaml_scalar(lab)}: {{occasion: TODO}}"
                         + (f"   # {hint}?" if hint else ""))
            if rare:
                self.out(f"      # and {rare} label(s) held by one client only, not shown: "
                         "add them from the export")
            self.note("todo", f"map {len(labels)} occasion label(s) onto canonical occasions: "
                              + ", ".join(labels) + (f" (and {rare} not shown)" if rare else ""))
        elif occasion is not None:
            n = len({cell_text(v) for v in occasion.values})
            self.out(f"      # {n} labels in {occasion.shown}, not shown (not a closed list): "
                     "write them from the export")
            self.note("todo", f"{occasion.shown} holds {n} occasion labels that are not shown "
                              "(not a closed list): map them from the export")

    def emit_measures(self, measures: list, decimal: str) -> None:
        self.out("    measures:")
        if not measures:
            self.out("      # TODO no score column matched an instrument of the dictionary: "
                     "add - {column, instrument, scale, construct}")
            self.note("todo", "no score column matched an instrument of the dictionary")
        for template, m, cols in measures:
            if isinstance(template, tuple):
                self.emit_long_measure(template, m)
                continue
            shown = ", ".join(c.shown for c in cols)
            numeric = sum(1 for c in cols for v in c.values
                          if not isinstance(v, str) or NUM_DOT.match(v.strip())
                          or (decimal == "," and NUM_COMMA.match(v.strip())))
            if m is None:
                self.out(f"      # TODO {yaml_scalar(template)}: no instrument of the dictionary "
                         f"matches ({numeric} number cell(s)); add it or leave it out")
                self.note("todo", f"{shown}: no instrument matched")
                continue
            inst_name = self.d.instruments[m.instrument].name
            if m.scale is None:
                self.out(f"      # TODO - {{column: {yaml_scalar(template)}, instrument: {m.instrument}, "
                         f"scale: TODO, construct: TODO}}   # scales: {', '.join(m.scales)}")
                self.note("todo", f"{shown} -> {m.instrument}: which scale? "
                                  f"({', '.join(m.scales)})")
                continue
            construct = m.construct or "TODO"
            self.out(f"      - {{column: {yaml_scalar(template)}, instrument: {m.instrument}, scale: "
                     f"{m.scale}, construct: {construct}}}")
            self.out(f"        # matched {shown} -> {m.instrument} {m.scale} ({m.how}: "
                     f"{inst_name}); {numeric} number cell(s)")
            if m.construct is None:
                self.out(f"        # TODO construct: one of {', '.join(self.d.constructs)}")
            self.note("info", f"{shown} -> {m.instrument} {m.scale} ({m.how})")

    def emit_long_measure(self, pair: tuple[str, str], m: InstrumentMatch | None) -> None:
        label = f"[{yaml_scalar(pair[0])}, {yaml_scalar(pair[1])}]"
        if m is None or m.scale is None:
            inst = m.instrument if m else "TODO"
            self.out(f"      # TODO - {{label: {label}, instrument: {inst}, scale: TODO, "
                     "construct: TODO}" + (f"   # scales: {', '.join(m.scales)}" if m else ""))
            self.note("todo", f"label pair {pair[0]} / {pair[1]}: no instrument scale matched")
            return
        self.out(f"      - {{label: {label}, instrument: {m.instrument}, scale: {m.scale}, "
                 f"construct: {m.construct or 'TODO'}}}")
        self.out(f"        # matched {pair[0]} / {pair[1]} -> {m.instrument} {m.scale} ({m.how})")
        if m.construct is None:
            self.out(f"        # TODO construct: one of {', '.join(self.d.constructs)}")
        self.note("info", f"{pair[0]} / {pair[1]} -> {m.instrument} {m.scale} ({m.how})")

    def emit_missing(self, measures: list, decimal: str) -> None:
        codes: Counter = Counter()
        other = 0
        for _t, _m, cols in measures:
            for c in cols:
                for v in c.values:
                    if not isinstance(v, str):
                        continue
                    s = v.strip()
                    if NUM_DOT.match(s) or (decimal == "," and NUM_COMMA.match(s)):
                        continue
                    if s.lower() in MISSING_CODES:
                        codes[s] += 1
                    else:
                        other += 1
        if codes:
            listed = ", ".join(yaml_scalar(k) for k in sorted(codes))
            if supports("missing_values"):
                self.out(f"    missing_values: [{listed}]   # text in score cells meaning "
                         "'not measured' (check)")
            else:
                self.out(f"    # text in score cells: {listed}")
            self.note("info", "text codes in score cells: " + ", ".join(
                f"{k!r} ({n})" for k, n in sorted(codes.items())))
        if other:
            self.note("warning", f"{other} other text cell(s) in score columns (not shown): "
                                 "the harmoniser will reject them")

    def emit_labels(self, layout: str, fields: dict[str, ExportColumn], phase_col: str | None,
                    occasion: ExportColumn | None, client: ExportColumn | None, roles: dict[str, ExportColumn],
                    prog: Programme | None) -> None:
        phase_ids = ", ".join(p.id for p in prog.phases) if prog else (
            f"the phase ids of {self.programme} in programmes.yaml")
        targets = {"phase": phase_ids, "last_phase": phase_ids,
                   "end_reason": ", ".join(END_REASONS),
                   "sced_phase": "A, B",
                   "interventions": ", ".join(iv.id for iv in prog.interventions) if prog
                   and prog.interventions else "the intervention ids of the programme"}
        cols: dict[str, list[ExportColumn]] = {}
        if phase_col:
            names = ({phase_col.replace("{occasion}", lab) for lab in self.occ_labels}
                     if "{occasion}" in phase_col else {phase_col})
            cols["phase"] = [c for c in self.cols if c.header in names]
        elif "phase_column" in self.hidden_roles:
            cols["phase"] = [self.hidden_roles["phase_column"]]
        for kind in ("last_phase", "end_reason", "interventions"):
            if kind in fields:
                cols[kind] = [fields[kind]]
        if "sced_phase_column" in roles:
            cols["sced_phase"] = [roles["sced_phase_column"]]
        if not cols:
            return
        self.out("    # TODO labels: map each export label onto the dictionary, then uncomment")
        self.out("    # labels:")
        for kind, cs in cols.items():
            values: set[str] = set()
            hidden = False
            rare = 0
            for c in cs:
                if kind == "interventions":
                    got, n_hidden = self.intervention_items(c, client)
                    if n_hidden:
                        self.note("info", f"{c.shown}: {n_hidden} intervention item(s) not "
                                          "shown (held by one client, or shaped like a name, "
                                          "a number or an address)")
                else:
                    got, n_rare = closed_list(c, client, self.t.body,
                                               self.t.value_labels.get(c.header))
                    rare += n_rare
                if got is None:
                    hidden = True
                else:
                    values.update(got)
            if hidden or (not values and cs):
                where = ", ".join(c.shown for c in cs)
                self.out(f"    #   {kind}: {{}}   # labels of {where} not shown (not a closed "
                         f"list); targets: {targets[kind]}")
                self.note("todo", f"{kind}: labels of {where} not shown (not a closed list); "
                                  "map them from the export")
                continue
            vals = sorted(values, key=natural)
            body = ", ".join(f"{yaml_scalar(v)}: TODO" for v in vals)
            self.out(f"    #   {kind}: {{{body}}}")
            self.out(f"    #     # targets: {targets[kind]}")
            more = (f" (and {rare} label(s) held by one client only, not shown: add them from "
                    "the export)" if rare else "")
            if rare:
                self.out(f"    #     # {more.strip(' ()')}")
            self.note("todo", f"map {kind} labels: " + ", ".join(vals) + more)

    def intervention_items(self, c: ExportColumn, client: ExportColumn | None) -> tuple[list[str] | None, int]:
        """The items of an interventions column that may be shown, and how many are not.

        Each ``;``/``,``/``|``-separated item is a label of its own: it is shown when at
        least two clients (rows, without a client column) have it and it passes the
        closed-list shape test (short, no 7+ digits, no ``@``, no name shape, no capitalised
        word after the first, which may be a third party's name, no phone).
        """
        if c.identifier or not c.safe:
            return None, 0
        holders: dict[str, set] = {}
        for n, (who, value) in enumerate(values_by_client(c, client, self.t.body)):
            for item in re.split(r"[;,|\n]", value):
                if item.strip():
                    holders.setdefault(item.strip(), set()).add(who if who is not None else n)
        shown = [v for v, h in holders.items()
                 if len(h) >= 2 and len(v) <= MAX_LABEL_LENGTH and "@" not in v
                 and sum(ch.isdigit() for ch in v) < 7 and not name_shaped(v)
                 and not mentions_name(v) and not PHONE.search(v) and v.isprintable()]
        return sorted(shown, key=natural) or None, len(holders) - len(shown)

    def emit_rest(self, used: set[int]) -> None:
        rest = [c for c in self.cols if c.index not in used and c.header]
        if not rest:
            return
        self.out("    # Not declared (dropped unread; declare them above if they are needed):")
        for c in rest:
            nums = sum(1 for v in c.values if is_number(v))
            hint = ("   # numbers: an instrument not in the dictionary? add it to "
                    "instruments.yaml" if c.values and nums >= 0.8 * len(c.values) else "")
            self.out(f"    #   {c.shown}{hint}")
        self.note("info", f"{len(rest)} column(s) not declared (dropped unread): "
                          + ", ".join(c.shown for c in rest))


# --------------------------------------------------------------------------- #
# Programme entry
# --------------------------------------------------------------------------- #
def draft_programme(programme_id: str, *, name: str | None = None,
                    dictionary: Dictionary | str | Path | None = None) -> str:
    """Draft a ``programmes.yaml`` entry for a new programme.

    Parameters
    ----------
    programme_id
        The new id: lower-case letters, digits and ``_`` (its initials give the
        pseudonym prefix, e.g. ``nieuw_programma`` -> ``NP-``).
    name
        The programme's name, if known.
    dictionary
        Used only to list the canonical phases (default: the shipped dictionary, or
        ``EFFECTSTUDY_DICTIONARY``).

    Returns
    -------
    str
        YAML lines to paste under ``programmes:`` (indented by two spaces). Every required
        key is present; numbers are ``UNVERIFIED`` until a source is found; ``TODO`` marks
        what must be written (``reach`` and the phases' ``canonical`` are left ``TODO`` so
        that ``effectstudy dictionary check`` stops until they are chosen).
    """
    check_programme_id(programme_id)
    d = as_dictionary(dictionary)
    if programme_id in d.programmes:
        raise DictionaryError(f"programme {programme_id!r} is already in the dictionary",
                              file=d.path / "programmes.yaml", key=f"programmes.{programme_id}")
    canon = ", ".join(d.phases)
    code = programme_code(programme_id)
    sexes = any(f.name == "sex" for f in dataclasses.fields(Programme))
    title = yaml_scalar(name) if name else "TODO"
    lines = [
        f"  # DRAFT entry for programme {programme_id}, written by `effectstudy dictionary "
        "new-programme`.",
        "  # Paste it under `programmes:` in data_dictionary/programmes.yaml. Every number "
        "carries a source",
        "  # (a key of references.yaml) or UNVERIFIED; replace every TODO; then run "
        "`effectstudy dictionary check DIR`.",
        f"  # Pseudonyms of its clients will start with {code}- (initials of the id's parts).",
        f"  {programme_id}:",
        f"    name: {title}   # the programme's name",
        "    short_name: " + (title if name else "TODO") + "   # optional: name in tables",
        "    provider: TODO   # the care provider",
        "    setting: TODO   # e.g. {en: residential treatment, nl: residentiële behandeling}: "
        "texts in English and Dutch (docs/dictionary.md)",
        "    security: TODO   # open or closed",
        "    duration_weeks:",
        "      typical: {value: null, source: UNVERIFIED}   # TODO number of weeks and its "
        "source",
        "      maximum: {value: null, source: UNVERIFIED}   # TODO",
        "    age_range: {min: null, max: null, source: UNVERIFIED}   # TODO ages served",
        "    group: TODO   # who is admitted, e.g. girls only; girls and boys",
    ]
    if sexes:
        lines.append("    sex: TODO   # female, male or mixed: decides which norm groups apply")
    lines += [
        "    reach: TODO   # regional or national",
        "    aims: TODO   # optional: the aims as the programme description states them",
        "    interventions:   # optional: the closed vocabulary the description names",
        "      # - {id: TODO_id, label: \"TODO label as described\"}",
        "    phases:   # in order; canonical: one of " + canon,
        "      - id: TODO_phase",
        "        label: TODO",
        "        canonical: TODO",
        "        typical_weeks: {value: null, source: UNVERIFIED}",
    ]
    return "\n".join(lines) + "\n"
