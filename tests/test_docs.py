"""The documentation site builds without a warning (``mkdocs build --strict``).

The build renders every page, the API reference from the docstrings (mkdocstrings) and the
notebooks (mkdocs-jupyter, not executed: ``tests/test_notebooks.py`` executes them), so a
broken link, a missing page, a module that does not import or a docstring mkdocstrings cannot
read fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir",
         str(tmp_path / "site"), "--config-file", str(ROOT / "mkdocs.yml")],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    for page in ("index.html", "privacy/index.html", "dictionary/index.html",
                 "api/multilevel/index.html", "notebooks/01_harmonise_and_change/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    api = (tmp_path / "site" / "api" / "multilevel" / "index.html").read_text(encoding="utf-8")
    assert "kenward" in api.lower()  # docstrings were rendered, not an empty page


def test_privacy_model_is_in_the_readme_and_the_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/privacy.md" in readme
    page = (ROOT / "docs" / "privacy.md").read_text(encoding="utf-8")
    for heading in ("What counts as an identifier", "What a public report may show",
                    "No file can run code", "Nothing lost, nothing half-written"):
        assert heading in page


def _dictionary_keys() -> set[str]:
    """Every key name the dictionary loader accepts: the strings in its ``required=``/
    ``optional=`` tuples and in its module-level key tuples (read from the source, so a key
    added to the loader without documentation fails the test below)."""
    import ast

    import effectstudy.dictionary as dictionary_module

    tree = ast.parse(Path(dictionary_module.__file__).read_text(encoding="utf-8"))
    keys: set[str] = set()

    def strings(node) -> None:
        if isinstance(node, ast.Tuple):
            keys.update(e.value for e in node.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str))

    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("required", "optional"):
            strings(node.value)
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in ("_FILE_REQUIRED", "_FILE_OPTIONAL",
                                                     "CLIENT_FIELDS") for t in node.targets):
            strings(node.value)
    return keys


def test_every_dictionary_key_is_documented():
    keys = _dictionary_keys()
    assert {"client_id", "measures", "labels", "cutoff", "typical_weeks"} <= keys  # the parse works
    page = (ROOT / "docs" / "dictionary.md").read_text(encoding="utf-8")
    # a key counts as documented when it is a word inside some `code span` of the page
    words = {w for span in re.findall(r"`([^`]+)`", page) for w in re.findall(r"\w+", span)}
    undocumented = sorted(keys - words)
    assert not undocumented, f"keys missing from docs/dictionary.md: {undocumented}"
