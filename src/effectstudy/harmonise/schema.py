"""Pandera schemas of the harmonised output (table, clients, rejection log).

Built from the dictionary so that allowed values (programmes, occasions, phases,
constructs, instruments) follow it; :func:`table_schema`, :func:`clients_schema` and
:func:`rejections_schema` are used by :func:`~effectstudy.harmonise.harmonise` and by
:func:`~effectstudy.harmonise.read_harmonised`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from effectstudy.dictionary import CLIENT_SEXES, END_REASONS, Dictionary
from effectstudy.harmonise.log import KINDS, LOG_COLUMNS
from effectstudy.harmonise.pseudonym import PSEUDONYM_PATTERN

TABLE_COLUMNS = (
    "programme", "client", "occasion", "occasion_label", "week", "session", "phase",
    "programme_phase", "sced_phase", "construct", "instrument", "scale", "raw", "z", "t",
    "better", "norm_group", "note", "source_file", "source_row", "source_column",
)
#: Plausible client ages in years (a birth date giving another age is logged, not used).
AGE_RANGE = (5.0, 40.0)
#: Plausible weeks in care (ten years); outside [0, this] a value is logged, not used.
MAX_WEEKS_IN_CARE = 520.0
#: Plausible single-case session numbers: 0 .. this.
MAX_SESSION = 100_000
CLIENT_COLUMNS = (
    "programme", "client", "age", "sex", "weeks_in_care", "last_phase", "last_phase_canonical",
    "end_reason", "interventions", "fidelity", "n_scores",
)


def _t_matches_z(df: pd.DataFrame) -> pd.Series:
    both = df["z"].notna()
    ok = pd.Series(True, index=df.index)
    ok[both] = np.isclose(df.loc[both, "t"], 50 + 10 * df.loc[both, "z"], atol=1e-9)
    return ok & (df["z"].notna() == df["t"].notna())


def _unique_key(df: pd.DataFrame) -> bool:
    key = ["programme", "client", "occasion_label", "session", "instrument", "scale"]
    return not df.duplicated(subset=key).any()


def _series_rows(df: pd.DataFrame) -> pd.Series:
    is_session = df["occasion"] == "session"
    return (is_session == df["session"].notna()) & (is_session == df["sced_phase"].notna())


def table_schema(d: Dictionary) -> pa.DataFrameSchema:
    """Schema of the long tidy table (one row per score)."""
    ranges = {(s.instrument, s.id): (s.range_min, s.range_max)
              for i in d.instruments.values() for s in i.scales.values()}

    def _raw_in_scale_range(df: pd.DataFrame) -> pd.Series:
        lo = pd.Series([ranges[(i, s)][0] for i, s in zip(df["instrument"], df["scale"],
                                                          strict=True)], index=df.index)
        hi = pd.Series([ranges[(i, s)][1] for i, s in zip(df["instrument"], df["scale"],
                                                          strict=True)], index=df.index)
        return (df["raw"] >= lo) & (df["raw"] <= hi)

    prog_phases = sorted({p.id for pr in d.programmes.values() for p in pr.phases})
    return pa.DataFrameSchema(
        {
            "programme": pa.Column(str, pa.Check.isin(sorted(d.programmes))),
            "client": pa.Column(str, pa.Check.str_matches(PSEUDONYM_PATTERN)),
            "occasion": pa.Column(str, pa.Check.isin(sorted(d.occasions))),
            "occasion_label": pa.Column(str),
            "week": pa.Column(float, nullable=True),
            "session": pa.Column("Int64", pa.Check.in_range(0, MAX_SESSION), nullable=True),
            "phase": pa.Column(str, pa.Check.isin(sorted(d.phases)), nullable=True),
            "programme_phase": pa.Column(str, pa.Check.isin(prog_phases), nullable=True),
            "sced_phase": pa.Column(str, pa.Check.isin(["A", "B"]), nullable=True),
            "construct": pa.Column(str, pa.Check.isin(sorted(d.constructs))),
            "instrument": pa.Column(str, pa.Check.isin(sorted(d.instruments))),
            "scale": pa.Column(str),
            "raw": pa.Column(float),
            "z": pa.Column(float, nullable=True),
            "t": pa.Column(float, nullable=True),
            "better": pa.Column(str, pa.Check.isin(["higher", "lower"])),
            "norm_group": pa.Column(str, nullable=True),
            "note": pa.Column(str, nullable=True),
            "source_file": pa.Column(str),
            "source_row": pa.Column("int64", pa.Check.ge(1)),
            "source_column": pa.Column(str),
        },
        checks=[
            pa.Check(_raw_in_scale_range, error="raw score outside the scale range"),
            pa.Check(_t_matches_z, error="t must equal 50 + 10 z, and be missing with z"),
            pa.Check(_unique_key, error="duplicate client x occasion x instrument x scale"),
            pa.Check(_series_rows, error="session/sced_phase only (and always) on series rows"),
        ],
        strict=True,
        ordered=True,
        coerce=True,
        name="harmonised table",
    )


def clients_schema(d: Dictionary) -> pa.DataFrameSchema:
    """Schema of the client-level table (one row per programme x client)."""
    prog_phases = sorted({p.id for pr in d.programmes.values() for p in pr.phases})

    def fidelity_constant(df: pd.DataFrame) -> bool:
        return bool((df.groupby("programme")["fidelity"].nunique(dropna=True) <= 1).all())

    return pa.DataFrameSchema(
        {
            "programme": pa.Column(str, pa.Check.isin(sorted(d.programmes))),
            "client": pa.Column(str, pa.Check.str_matches(PSEUDONYM_PATTERN), unique=True),
            "age": pa.Column(float, pa.Check.in_range(*AGE_RANGE), nullable=True),
            # the programme's sex (female/male programmes) or the export's sex column;
            # empty for a client of a mixed programme without a sex value
            "sex": pa.Column(str, pa.Check.isin(list(CLIENT_SEXES)), nullable=True),
            "weeks_in_care": pa.Column(float, pa.Check.in_range(0, MAX_WEEKS_IN_CARE),
                                       nullable=True),
            "last_phase": pa.Column(str, pa.Check.isin(prog_phases), nullable=True),
            "last_phase_canonical": pa.Column(str, pa.Check.isin(sorted(d.phases)),
                                              nullable=True),
            # never empty: a client whose export records no end of care is "unknown"
            "end_reason": pa.Column(str, pa.Check.isin(list(END_REASONS))),
            "interventions": pa.Column(str, nullable=True),
            "fidelity": pa.Column(float, nullable=True),
            "n_scores": pa.Column("int64", pa.Check.ge(0)),
        },
        checks=[pa.Check(fidelity_constant, error="fidelity must be constant within a programme")],
        strict=True,
        ordered=True,
        coerce=True,
        name="harmonised clients",
    )


def rejections_schema() -> pa.DataFrameSchema:
    """Schema of the rejection log."""
    return pa.DataFrameSchema(
        {
            "programme": pa.Column(str),
            "file": pa.Column(str),
            "row": pa.Column("Int64", pa.Check.ge(1), nullable=True),
            "column": pa.Column(str, nullable=True),
            "kind": pa.Column(str, pa.Check.isin(list(KINDS))),
            "reason": pa.Column(str),
            "value": pa.Column(str, nullable=True),
            "scores": pa.Column("int64", pa.Check.ge(0)),
        },
        strict=True,
        ordered=True,
        coerce=True,
        name="rejection log",
    )


assert tuple(rejections_schema().columns) == LOG_COLUMNS
