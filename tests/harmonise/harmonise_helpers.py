"""Small hand-written exports for the harmonise tests (besides effectstudy.synth).

A uniquely named module (not conftest) so that tests can import it whatever the
other conftest.py files of the suite are."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

KEY = b"test-key-0123456789abcdef"

# Fake identifiers used in the mini exports: the privacy tests grep for them.
NAMES = ["Zoë Jansenvdb", "Fleur Mulderqx", "Sanne Bakkerzz"]
BSNS = ["123456782", "234567891", "345678912"]
BIRTHS = ["2008-03-14", "2007-11-02", "2009-06-30"]
RAW_IDS = ["R-7781", "R-7782", "R-7783"]
# intermetzo declares client_id_format: integer
INT_IDS = [520101, 520102, 520103]


def _dmy(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{d}-{m}-{y}"


def write_pinq_gesloten(folder: Path, rows: list[dict] | None = None) -> Path:
    """Dutch-locale occasion-rows CSV (cp1252, ';', ',')."""
    if rows is None:
        rows = []
        for i in range(3):
            for j, (lab, date) in enumerate([("Voormeting", "01-02-2023"),
                                              ("Nameting", "01-08-2023")]):
                rows.append({
                    "Cliëntnummer": RAW_IDS[i], "Naam": NAMES[i], "Geboortedatum": _dmy(BIRTHS[i]),
                    "BSN": BSNS[i], "Meetmoment": lab, "Datum": date, "Fase": "Verblijf",
                    "CRIES totaal": f"{30 - 5 * j + i}", "SDQ internaliserend": f"{8 - j},5",
                    "SDQ externaliserend": "6", "RSES totaal": "15", "HoNOSCA totaal": "20",
                    "Weken in zorg": "26", "Laatste fase": "Verblijf", "Reden einde": "Afgerond",
                    "Interventies": "traumabehandeling;onderwijs", "Programmatrouw": "0,8",
                })
    path = folder / "pinq_gesloten_metingen.csv"
    pd.DataFrame(rows).to_csv(path, sep=";", index=False, encoding="cp1252")
    return path


def write_egoversterkend(folder: Path, rows: list[dict] | None = None) -> Path:
    if rows is None:
        rows = []
        for i in range(3):
            for lab, date in [("T0", "2023-01-10"), ("T3", "2023-12-20")]:
                for il, sl, sc in [("YSR", "INT", 65), ("CBSA", "GSW", 12), ("GAS", "T", 45)]:
                    rows.append({
                        "client_id": RAW_IDS[i], "name": NAMES[i], "birth_date": BIRTHS[i],
                        "bsn": BSNS[i], "occasion": lab, "date": date, "phase": "treatment",
                        "instrument": il, "scale": sl, "score": sc, "weeks_in_care": 50,
                        "last_phase": "aftercare", "end_reason": "completed",
                        "interventions": "meidengroep", "fidelity": 0.7,
                    })
    path = folder / "egoversterkend_scores_long.csv"
    pd.DataFrame(rows).to_csv(path, index=False, encoding="utf-8")
    return path


def write_intermetzo(folder: Path, frame: pd.DataFrame | None = None, sheet: str = "ROM") -> Path:
    if frame is None:
        recs = []
        for i in range(3):
            r = {"Dossiernr": INT_IDS[i], "Voornaam": NAMES[i].split()[0],
                 "Achternaam": NAMES[i].split()[1], "Geb.datum": BIRTHS[i], "BSN-nummer": BSNS[i],
                 "Duur_weken": 30, "Fase_bereikt": "4 Nazorg", "Uitstroomreden": "Regulier",
                 "Modules": "traumabehandeling", "Modelgetrouwheid": 0.9}
            for k, occ in enumerate(["T0", "T1", "T2", "T3"]):
                r[f"Datum_{occ}"] = f"2023-0{1 + 2 * k}-01"
                r[f"Fase_{occ}"] = ["1 Stabilisatie", "2 Diagnostiek", "3 Versterking",
                                    "4 Nazorg"][k]
                r[f"CRIES_{occ}"] = 40 - 5 * k
                r[f"YSR_INT_{occ}"] = 70 - 3 * k
                r[f"YSR_EXT_{occ}"] = 60 - 2 * k
                r[f"RSES_{occ}"] = 10 + k
                r[f"KIDS_OUDERS_{occ}"] = 40 + k
            recs.append(r)
        frame = pd.DataFrame(recs)
    path = folder / "intermetzo_rom.xlsx"
    frame.to_excel(path, sheet_name=sheet, index=False)
    return path
