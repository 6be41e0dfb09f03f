"""Programme-integrity exports: delivery logs and fidelity ratings (issue 12).

A source file with ``layout: delivery`` or ``layout: fidelity_ratings`` (see
``docs/dictionary.md``) holds no scores. The harmoniser reads it here and carries it
into the ``delivery`` and ``fidelity_ratings`` frames of
:class:`~effectstudy.harmonise.Harmonised`, written and verified with the others.

Privacy (the rules of the score exports apply):

* only the columns declared under ``columns:`` (and ``client_id``) are read; any other
  column is dropped unread, logged by position, its header never shown;
* client ids become the keyed pseudonyms of the score exports (same key, same
  pseudonym: :func:`~effectstudy.harmonise.pseudonym.pseudonymise`); rater ids are
  staff and get a keyed pseudonym with their own prefix (``R`` + programme code, e.g.
  ``RVL-...``); rated targets (sessions, team-months) likewise (``T`` + code), so no
  free text of the export passes; the pseudonyms of every row read, before any row is
  rejected, are kept in :attr:`IntegrityResult.ids` for the run-wide collision check of
  :func:`~effectstudy.harmonise.harmonise` (a rater space and a target space, so two
  raters or two targets are never merged silently);
* components, phases, checklist items and rater roles are checked against closed lists
  of the dictionary (:func:`effectstudy.fidelity.validate_logs` and
  :func:`~effectstudy.fidelity.validate_ratings`); a bad row goes to the rejection log
  with file, row, column and reason, its value shown only when it is a number.

Accounting unit: the **log row** (one row of the export). Per file
``rows in = rows out + rows rejected`` exactly; the counts are in ``provenance.json``
under ``integrity`` (the score accounting is unchanged: an integrity file reads no score
cell). Rejected rows remove no score, so their ``scores`` is 0. Checks that exist only for
these exports have their own rejection kinds
(:data:`~effectstudy.harmonise.log.INTEGRITY_KINDS`): ``component_not_in_programme``,
``delivery_out_of_range`` (negative minutes, ``delivered`` not 0/1, a week below 1),
``delivery_outside_care`` (a week after the client's time in care),
``item_not_on_checklist``, ``rating_missing_id`` (no target or rater),
``rating_out_of_range``, ``unknown_rater_role``, ``wrong_fidelity_instrument`` and
``integrity_unknown_programme``; a missing client id, an unknown phase, a cell that is
not a number and a second rating of the same target, rater and item keep the shared
kinds (``missing_client_id``, ``unknown_phase``, ``non_numeric``, ``duplicate``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from effectstudy.dictionary import IntegrityDictionary, SourceFile
from effectstudy.errors import HarmoniseError
from effectstudy.harmonise.log import RejectionLog
from effectstudy.harmonise.pseudonym import (
    PSEUDONYM_HEX_DIGITS,
    normalise_id,
    programme_code,
    pseudonymise,
)
from effectstudy.harmonise.readers import RawTable, is_empty

__all__ = ["DELIVERY_COLUMNS", "RATINGS_COLUMNS", "IntegrityResult", "read_integrity",
           "build_integrity", "delivery_frame", "ratings_frame", "staff_pseudonym",
           "STAFF_PREFIXES"]

#: Columns of the harmonised delivery log (:attr:`Harmonised.delivery`).
DELIVERY_COLUMNS = ("programme", "client", "week", "phase", "component", "delivered", "minutes",
                    "source_file", "source_row")
#: Columns of the harmonised fidelity ratings (:attr:`Harmonised.fidelity_ratings`).
RATINGS_COLUMNS = ("programme", "instrument", "target", "rater", "rater_role", "item", "score",
                   "source_file", "source_row")
#: Pseudonym prefix of each staff or target field of a fidelity-ratings export
#: (:func:`staff_pseudonym`); each field is its own pseudonym space in the collision check.
STAFF_PREFIXES = {"rater": "R", "target": "T"}
#: Rater roles accepted (a closed list; anything else is logged and not kept).
RATER_ROLES = ("team", "external")

_DTYPES = {"week": "int64", "delivered": "int64", "minutes": "float64", "score": "float64",
           "source_row": "int64"}


def _typed(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = df.reindex(columns=list(columns)).reset_index(drop=True)
    for c in columns:
        out[c] = out[c].astype(_DTYPES.get(c, "str"))
    return out


def delivery_frame(df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The delivery frame with its columns and dtypes (empty without ``df``)."""
    return _typed(pd.DataFrame(columns=list(DELIVERY_COLUMNS)) if df is None else df,
                  DELIVERY_COLUMNS)


def ratings_frame(df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The fidelity-ratings frame with its columns and dtypes (empty without ``df``)."""
    return _typed(pd.DataFrame(columns=list(RATINGS_COLUMNS)) if df is None else df,
                  RATINGS_COLUMNS)


def staff_pseudonym(programme: str, raw: object, key: bytes, prefix: str = "R") -> str:
    """Keyed pseudonym of a staff id (``prefix="R"``: rater) or a rated target (``"T"``).

    ``<prefix><CODE>-<20 hex>``; the HMAC message is tagged with the prefix, so a rater id
    equal to a client id never gets the client's pseudonym.
    """
    rid = normalise_id(raw)
    if rid is None:
        raise HarmoniseError("cannot pseudonymise a missing staff or target id")
    mac = hmac.new(key, f"{prefix}\x1f{programme}\x1f{rid}".encode(), hashlib.sha256)
    return f"{prefix}{programme_code(programme)}-{mac.hexdigest()[:PSEUDONYM_HEX_DIGITS]}"


@dataclass
class IntegrityResult:
    """What one integrity export gave: kept rows, rejections and its row accounting."""

    file: str
    programme: str
    layout: str
    rows: pd.DataFrame
    rejected: pd.DataFrame
    rows_in: int = 0
    #: Source row number of each row read (the export's own numbering).
    source_rows: tuple[int, ...] = ()
    #: Ratings only: field (``"rater"``, ``"target"``) -> the pseudonym given to each row
    #: read (None when empty), aligned with :attr:`source_rows`. Taken before validation,
    #: so the collision check also sees rows that are rejected later.
    ids: dict[str, tuple[object, ...]] = field(default_factory=dict)


def _pseudo(value: object, fn) -> object:
    if is_empty(value):
        return None
    try:
        return fn(value)
    except HarmoniseError:
        return None


def read_integrity(raw: RawTable, sf: SourceFile, integ: IntegrityDictionary, key: bytes,
                   log: RejectionLog, file: str) -> IntegrityResult:
    """Map one delivery-log or fidelity-ratings export (privacy and accounting as above).

    The logs' weeks are not checked against time in care here; :func:`build_integrity`
    does that once the clients of every file are known.
    """
    from effectstudy.fidelity import validate_ratings

    frame = raw.frame
    declared = dict(sf.columns)
    if sf.layout == "delivery":
        declared = {"client": sf.client_id, **declared}
    missing = [c for c in declared.values() if c not in frame.columns]
    if missing:
        raise HarmoniseError(f"required column(s) missing: {', '.join(sorted(missing))} "
                             f"(declared under columns: of {sf.id})", file=file)
    keep = set(declared.values())
    for i, col in enumerate(frame.columns):
        if col not in keep:
            log.add(programme=sf.programme, file=file, row=None, column=f"column #{i + 1}",
                    kind="undeclared_columns",
                    reason="column not declared in the data dictionary was dropped unread "
                           "(header not shown)")
    data = pd.DataFrame({field_: frame[col].to_numpy(object) for field_, col in declared.items()})
    data.insert(0, "programme", sf.programme)
    n = len(data)
    if sf.layout == "delivery":
        data["client"] = [_pseudo(v, lambda x: pseudonymise(sf.programme, x, key))
                          for v in data["client"]]
        return IntegrityResult(file, sf.programme, sf.layout, data, _empty_rej(), n,
                               tuple(raw.rows))
    ids: dict[str, tuple[object, ...]] = {}
    for fld, prefix in STAFF_PREFIXES.items():
        given = [_pseudo(v, lambda x, p=prefix: staff_pseudonym(sf.programme, x, key, p))
                 for v in data[fld]]
        ids[fld] = tuple(given)  # as given, before pandas may turn None into NaN
        data[fld] = given
    clean, rej = validate_ratings(data, integ, file=file, first_row=0)
    rej = _to_source_rows(rej, raw.rows, sf, declared)
    if "rater_role" in declared:
        role = clean["rater_role"].map(lambda v: None if is_empty(v) else str(v).strip())
        bad = ~role.isin(RATER_ROLES)
        for idx in np.flatnonzero(bad.to_numpy()):
            rej.loc[len(rej)] = _rej_row(sf, file, raw.rows[int(clean.index[idx])],
                                         declared["rater_role"], "unknown_rater_role",
                                         "rater role is not one of: " + ", ".join(RATER_ROLES))
        clean = clean.assign(rater_role=role)[~bad.to_numpy()]
    else:
        clean = clean.assign(rater_role=None)
    try:
        inst_id = integ.instrument_for(sf.programme).id
    except KeyError:  # every row was rejected (unknown programme)
        inst_id = None
    if "instrument" in declared:
        bad = (clean["instrument"].map(lambda v: "" if is_empty(v) else str(v).strip())
               != inst_id).to_numpy()
        for idx in np.flatnonzero(bad):
            rej.loc[len(rej)] = _rej_row(sf, file, raw.rows[int(clean.index[idx])],
                                         declared["instrument"], "wrong_fidelity_instrument",
                                         f"instrument is not {inst_id} (the programme's "
                                         "fidelity instrument)")
        clean = clean[~bad]
    clean = clean.assign(instrument=inst_id)
    clean["source_file"] = file
    clean["source_row"] = [raw.rows[int(i)] for i in clean.index]
    return IntegrityResult(file, sf.programme, sf.layout, ratings_frame(clean), rej, n,
                           tuple(raw.rows), ids)


def _empty_rej() -> pd.DataFrame:
    from effectstudy.harmonise.log import LOG_COLUMNS
    return pd.DataFrame({c: pd.Series(dtype="Int64" if c == "row" else "int64" if c == "scores"
                                      else "object") for c in LOG_COLUMNS})


def _rej_row(sf: SourceFile, file: str, row: int, column: str, kind: str, reason: str) -> dict:
    return {"programme": sf.programme, "file": file, "row": row, "column": column,
            "kind": kind, "reason": reason, "value": None, "scores": 0}


def _to_source_rows(rej: pd.DataFrame, rows: tuple[int, ...], sf: SourceFile,
                    declared: dict[str, str]) -> pd.DataFrame:
    """Validator rows (0-based positions) -> source rows and export column names."""
    if rej.empty:
        return rej.assign(scores=0)
    out = rej.copy()
    out["row"] = [rows[int(i)] for i in out["row"]]
    out["column"] = [declared.get(str(c), str(c)) for c in out["column"]]
    out["programme"] = sf.programme
    out["scores"] = 0
    return out.reset_index(drop=True)


def build_integrity(integ: IntegrityDictionary, results: list[IntegrityResult], sources: dict[str, SourceFile],
                    clients: pd.DataFrame, log: RejectionLog
                    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, int]]]:
    """Validate the delivery logs against the clients, log every rejection, count.

    Returns
    -------
    (delivery, fidelity_ratings, accounting)
        ``accounting``: per file ``{"layout", "in", "out", "rejected"}`` with
        ``in == out + rejected`` (checked).
    """
    from effectstudy.fidelity import validate_logs

    deliveries, ratings, acc = [], [], {}
    care = clients[["client", "weeks_in_care"]].dropna() if len(clients) else None
    for res in results:
        if res.layout == "delivery":
            sf = sources[res.file]
            declared = {"client": sf.client_id, **sf.columns}
            known = care if care is not None else pd.DataFrame(columns=["client", "weeks_in_care"])
            # clients of the log not in the score exports: no time in care to check against
            extra = sorted(set(res.rows["client"].dropna()) - set(known["client"]))
            ref = pd.concat([known, pd.DataFrame({"client": extra, "weeks_in_care": np.inf})],
                            ignore_index=True)
            clean, rej = validate_logs(res.rows, integ, clients=ref, file=res.file, first_row=0)
            rows = res.source_rows
            rej = _to_source_rows(rej, rows, sf, declared)
            clean = clean.assign(source_file=res.file,
                                 source_row=[rows[int(i)] for i in clean.index])
            kept = delivery_frame(clean)
            deliveries.append(kept)
        else:
            kept, rej = res.rows, res.rejected
            ratings.append(kept)
        for e in rej.to_dict("records"):
            log.add(programme=res.programme, file=res.file,
                    row=None if pd.isna(e["row"]) else int(e["row"]), column=e["column"],
                    kind=e["kind"], reason=e["reason"], value=e["value"], shape="number",
                    scores=0)
        out, bad = len(kept), len(rej)
        if out + bad != res.rows_in:
            raise HarmoniseError(f"integrity accounting failed: {res.rows_in} rows read, "
                                 f"{out} kept + {bad} rejected", file=res.file)
        acc[res.file] = {"layout": res.layout, "in": int(res.rows_in), "out": int(out),
                         "rejected": int(bad)}
    delivery = delivery_frame(pd.concat(deliveries, ignore_index=True) if deliveries else None)
    fid = ratings_frame(pd.concat(ratings, ignore_index=True) if ratings else None)
    return delivery, fid, acc
