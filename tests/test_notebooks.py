"""Execute the researcher notebooks in ``notebooks/`` from scratch.

The notebooks are jupytext percent scripts (``notebooks/NN_name.py``): code that is
linted with the rest of the package and reviewed as text. Each is converted to a
notebook with jupytext, must run without an error in a fresh ``python3`` kernel
and must produce at least one figure (an ``image/png`` output). They are executed
in a temporary working directory with ``MPLBACKEND=Agg`` (the notebooks select the
inline backend themselves). Open one in Jupyter with jupytext installed, or
convert it: ``jupytext --to ipynb notebooks/01_harmonise_and_change.py``.

Privacy: the text outputs must show no pseudonym (the notebooks number cases
instead) and none of the direct identifiers (names, BSNs, dates of birth, raw
client ids) that the synthetic exports contain.

When a notebook fails because a module or name it imports does not exist (yet),
the failure says so explicitly instead of showing only the traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbclient
import pytest
from nbclient.exceptions import CellExecutionError

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
#: Notebooks that take more than a minute (marked ``slow``; still run in CI).
SLOW: set[str] = set()
CELL_TIMEOUT = 600
MISSING_NAME_ERRORS = ("ModuleNotFoundError", "ImportError")
#: Seed of ``synth.generate`` in the notebooks (for the identifier check).
DEMO_SEED = 2026
#: Any pseudonym (programme code and at least 8 hex digits).
PSEUDONYM = re.compile(r"\b[A-Z]{1,4}-[0-9a-f]{8,}\b")


def _params():
    out = []
    for path in NOTEBOOKS:
        marks = [pytest.mark.slow] if path.name in SLOW else []
        out.append(pytest.param(path, id=path.stem, marks=marks))
    return out


def _figure_count(nb) -> int:
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if "image/png" in out.get("data", {}):
                n += 1
    return n


def _error_outputs(nb) -> list[str]:
    errs = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                errs.append(f"{out.get('ename')}: {out.get('evalue')}")
    return errs


def _text_outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def identifiers(tmp_path_factory) -> list[str]:
    """Direct identifiers written into the synthetic exports the notebooks use."""
    from effectstudy import synth

    demo = synth.generate(tmp_path_factory.mktemp("exports"), seed=DEMO_SEED)
    ids = demo.identifiers
    keep = ids["kind"].isin(["name", "bsn", "birth_date", "client_id"])
    return sorted({str(v) for v in ids.loc[keep, "value"] if len(str(v)) >= 5})


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


def test_no_stored_notebooks_beside_the_scripts():
    """The .py scripts are the only source: a stray .ipynb would drift from them."""
    stray = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert not stray, f"commit notebooks as jupytext .py scripts only, found {stray}"


def test_notebooks_are_linted():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", str(NOTEBOOK_DIR)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("path", _params())
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           identifiers: list[str]):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # never pick up a real pseudonym key or key file from the environment
    monkeypatch.delenv("EFFECTSTUDY_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("EFFECTSTUDY_KEY_FILE", str(tmp_path / "keys" / "pseudonym.key"))
    # one BLAS thread per kernel: the notebooks are small and run next to other tests
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        ename = getattr(exc, "ename", "")
        if ename in MISSING_NAME_ERRORS:
            pytest.fail(
                f"{path.name} cannot run yet: an effectstudy module or name it imports is missing "
                f"({ename}: {getattr(exc, 'evalue', '')}). The notebook stays in the test so that "
                "it runs as soon as the module exists.",
                pytrace=False,
            )
        pytest.fail(f"{path.name} failed in a cell:\n{exc}", pytrace=False)
    elapsed = time.perf_counter() - start
    errors = _error_outputs(nb)
    assert not errors, f"{path.name}: error outputs {errors}"
    assert _figure_count(nb) >= 1, f"{path.name} produced no figure (image/png output)"
    text = _text_outputs(nb)
    n_pseudonyms = len(PSEUDONYM.findall(text))
    assert n_pseudonyms == 0, f"{path.name} shows {n_pseudonyms} pseudonym(s) in its outputs"
    leaked = [v for v in identifiers if re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", text)]
    assert not leaked, f"{path.name} shows {len(leaked)} raw identifier(s) in its outputs"
    print(f"{path.name}: {elapsed:.1f} s")
