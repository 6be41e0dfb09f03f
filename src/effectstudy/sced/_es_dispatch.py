"""Dispatch from measure names to the vectorised effect-size cores.

:func:`compute_group` computes every requested index for ``k`` cases of equal
phase lengths, direction and options at once (rows of ``A`` and ``B``), with
the cores of :mod:`effectstudy.sced._es_cores` (SingleCaseES 0.7.4
definitions) and, for Tau-U with a ``method``, :func:`effectstudy.sced.indices.tau_u`
(scan 0.67.1; Parker et al., 2011).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from effectstudy.errors import DataError
from effectstudy.sced._es_cores import (
    check_pretest,
    norm_se,
    signed,
    v_ird,
    v_lor,
    v_lrm,
    v_lrr,
    v_nap,
    v_pand,
    v_pem,
    v_pnd,
    v_pogo,
    v_smd,
    v_tau,
    v_tau_bc,
    v_tau_u_sces,
)
from effectstudy.sced._numeric import NAN
from effectstudy.sced.indices import tau_u

__all__ = ["compute_group", "plan_measures"]


def plan_measures(measures: Sequence[str], opts: Mapping[str, Any]) -> list[tuple[str, bool, bool]]:
    """(index, emit its own row, emit a Pct_Change row) in output order."""
    want = list(measures)
    plan: list[tuple[str, bool, bool]] = []
    for measure in want:
        if measure in ("Pct_Change_d", "Pct_Change_i"):
            base = "LRRd" if measure.endswith("d") else "LRRi"
            if base not in want:
                plan.append((base, False, True))
            continue
        pct = measure in ("LRRd", "LRRi") and (
            bool(opts.get("pct_change")) or f"Pct_Change_{measure[-1]}" in want
        )
        plan.append((measure, True, pct))
    return plan


def compute_group(
    A: np.ndarray,
    B: np.ndarray,
    improvement: str,
    plan: Sequence[tuple[str, bool, bool]],
    opts: Mapping[str, Any],
    confidence: float | None,
) -> list[tuple[str, dict[str, np.ndarray]]]:
    """All requested indices for k cases of equal phase lengths (rows of A, B)."""
    k = A.shape[0]
    SA, SB = signed(A, B, improvement)
    se = norm_se(opts.get("se", "unbiased"))
    nan = np.full(k, NAN)
    out: list[tuple[str, dict[str, np.ndarray]]] = []

    def est_only(values: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "estimate": np.asarray(values, dtype=float),
            "se": nan,
            "ci_lower": nan,
            "ci_upper": nan,
        }

    for measure, own, pct in plan:
        if measure == "NAP":
            r = v_nap(SA, SB, se, confidence)
        elif measure == "Tau":
            r = v_tau(SA, SB, se, confidence)
        elif measure == "IRD":
            r = est_only(v_ird(SA, SB))
        elif measure == "PND":
            r = est_only(v_pnd(SA, SB))
        elif measure == "PEM":
            r = est_only(v_pem(SA, SB))
        elif measure == "PAND":
            r = est_only(v_pand(SA, SB))
        elif measure == "Tau_U":
            if opts.get("method") is None:
                # SingleCaseES's Tau_U() reports the estimate only; scan's SE and
                # CI are reported when a Tau-U method is chosen explicitly.
                r = est_only(v_tau_u_sces(SA, SB))
            else:
                res = [
                    tau_u(
                        A[i],
                        B[i],
                        improvement,
                        method=str(opts["method"]),
                        tau_method=str(opts.get("tau_method") or "b"),
                        continuity_correction=bool(opts.get("continuity_correction", False)),
                        confidence=confidence,
                    )
                    for i in range(k)
                ]
                r = {
                    key: np.array([getattr(x, key) for x in res], dtype=float)
                    for key in ("estimate", "se", "ci_lower", "ci_upper")
                }
        elif measure == "Tau_BC":
            pre = opts.get("pretest_trend", False)
            pre = False if pre is None else pre
            check_pretest(pre)
            r = v_tau_bc(A, B, improvement, se, confidence, bool(opts.get("kendall", False)), pre)
        elif measure == "SMD":
            r = v_smd(
                A,
                B,
                improvement,
                opts.get("std_dev") or "baseline",
                bool(opts.get("bias_correct", True)),
                confidence,
            )
        elif measure in ("LRRd", "LRRi"):
            r = v_lrr(
                measure,
                A,
                B,
                improvement,
                opts.get("scale", "count"),
                opts.get("observation_length"),
                opts.get("intervals"),
                opts.get("d_const"),
                bool(opts.get("bias_correct", True)),
                pct,
                confidence,
            )
        elif measure == "LRM":
            r = v_lrm(A, B, improvement, bool(opts.get("delta_method", False)), confidence)
        elif measure == "LOR":
            r = v_lor(
                A,
                B,
                improvement,
                opts.get("scale", "percentage"),
                opts.get("intervals"),
                opts.get("d_const"),
                bool(opts.get("bias_correct", True)),
                confidence,
            )
        elif measure == "PoGO":
            if opts.get("goal") is None:
                raise DataError("PoGO needs the goal level of the behaviour (option goal=...)")
            r = v_pogo(A, B, opts["goal"], confidence)
        else:  # pragma: no cover - guarded by _resolve_measures
            raise DataError(f"unknown measure {measure!r}")
        if own:
            out.append((measure, r))
        if pct:
            out.append(
                (
                    f"Pct_Change_{measure[-1]}",
                    {
                        "estimate": r["pct_change"],
                        "se": nan,
                        "ci_lower": r["pct_change_lower"],
                        "ci_upper": r["pct_change_upper"],
                    },
                )
            )
    return out
