"""The shape of the package: imports, module sizes and one vocabulary (issue 15).

* (a) no import cycle among effectstudy modules;
* (b) no private name imported across modules, and private modules used only
  inside their own package (rules in :func:`_private_import_problems`);
* (c) no module over :data:`MAX_LINES` lines unless its docstring says why
  ("Long because ...");
* (d) the public signatures of sced, multilevel, change, power, survival,
  missing and fidelity use ``confidence=`` for a confidence level and ``rng=``
  for randomness; exceptions are listed in :data:`VOCABULARY_ALLOWED` with the
  reason;
* (e) ``import effectstudy.sced`` / ``import effectstudy.multilevel`` do not load
  :mod:`matplotlib.pyplot` (it is imported when a plot is drawn).

The import graph is read from the source (ASTs), never by importing it, so a
module that does not import (yet) still shows up here with its imports.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "effectstudy"
MAX_LINES = 800
LONG_REASON = "Long because"


# ---------------------------------------------------------------------------
# reading the modules
# ---------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, module: str | None, level: int) -> str:
    """Absolute name of ``from <level dots><module> import ...`` in ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, *, top_level_only: bool) -> list[tuple[str, str | None, int]]:
    """``(module, imported name or None, line)`` for each effectstudy import in ``name``.

    ``top_level_only`` keeps the imports run when the module is imported: module
    level statements (also inside ``if``/``try`` blocks), not function bodies and
    not ``if TYPE_CHECKING:`` blocks.
    """
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    out: list[tuple[str, str | None, int]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                out.extend((a.name, None, node.lineno) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                mod = _resolve(name, node.module, node.level)
                out.extend((mod, a.name, node.lineno) for a in node.names)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody,
                              *[h.body for h in node.handlers]):
                    visit(block)
            elif isinstance(node, ast.With):
                visit(node.body)
            elif not top_level_only and isinstance(
                    node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                visit(node.body)
            elif not top_level_only and isinstance(node, ast.For | ast.While):
                visit(node.body)

    visit(tree.body)
    return [(m, n, line) for m, n, line in out if m == "effectstudy" or
            m.startswith("effectstudy.")]


def _target(module: str, imported: str | None) -> str:
    """The module an import loads: ``from pkg import mod`` is ``pkg.mod`` when that is a module."""
    if imported is not None and f"{module}.{imported}" in MODULES:
        return f"{module}.{imported}"
    return module


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name in MODULES:
        for module, imported, _ in _imports(name, top_level_only=True):
            target = _target(module, imported)
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles (module-level imports):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


# ---------------------------------------------------------------------------
# (b) private names and private modules
# ---------------------------------------------------------------------------
#: Private modules deliberately shared with one other package, and why. Keep it short:
#: an entry is a module that belongs one level up (``effectstudy._name``).
#: (The randomization null distribution that sced and power share lives in
#: ``effectstudy._randomization`` for that reason and needs no entry.)
SHARED_PRIVATE_MODULES: dict[tuple[str, str], str] = {}


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _owner(module: str) -> str:
    """The package whose internals a module is: the parent of its first private part."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if _is_private(part):
            return ".".join(parts[:i])
    return module


def _private_import_problems() -> list[str]:
    """Imports that reach into another module's privates.

    The rules:

    1. A leading-underscore NAME (function, class, constant) may not be imported
       from another module: ``from effectstudy.x import _name`` is an error in
       any module other than ``effectstudy.x`` itself.
    2. A leading-underscore MODULE (``effectstudy.sced._null``) is an internal of
       the package that contains it (``effectstudy.sced``): it may be imported by
       that package and its modules and subpackages only. Private modules of the
       top-level package (``effectstudy._io``) are therefore shared by all.
    3. Dunder names (``__all__``, ``__version__``) are not private.

    All imports count here, also those inside functions.
    """
    problems = []
    for name in MODULES:
        for module, imported, line in _imports(name, top_level_only=False):
            target = _target(module, imported)
            where = f"{MODULES[name].relative_to(SRC)}:{line}"
            if target == module and imported is not None and _is_private(imported) \
                    and module != name:
                problems.append(f"{where}: private name {imported} from {module}")
            owner = _owner(target)
            if owner != target and not (name == owner or name.startswith(owner + ".")):
                if (name, target) not in SHARED_PRIVATE_MODULES:
                    problems.append(f"{where}: private module {target} outside {owner}")
    return problems


def test_private_import_rules_themselves():
    assert _owner("effectstudy.sced._null") == "effectstudy.sced"
    assert _owner("effectstudy._io") == "effectstudy"
    assert _owner("effectstudy.sced.plots") == "effectstudy.sced.plots"
    assert not _is_private("__all__") and _is_private("_x")
    assert all(reason.strip() for reason in SHARED_PRIVATE_MODULES.values())


def test_no_private_name_imported_across_modules():
    problems = _private_import_problems()
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------
# (c) module length
# ---------------------------------------------------------------------------
def test_no_long_module_without_a_reason():
    long = []
    for path in MODULES.values():
        text = path.read_text(encoding="utf-8")
        n = text.count("\n") + (not text.endswith("\n"))
        doc = ast.get_docstring(ast.parse(text)) or ""
        if n > MAX_LINES and LONG_REASON.lower() not in doc.lower():
            long.append(f"{path.relative_to(SRC)}: {n} lines")
    assert not long, (f"modules over {MAX_LINES} lines without '{LONG_REASON} ...' in their "
                      "docstring:\n" + "\n".join(long))


# ---------------------------------------------------------------------------
# (d) vocabulary of the public API
# ---------------------------------------------------------------------------
VOCABULARY_PACKAGES = ("sced", "multilevel", "change", "power", "survival", "missing",
                       "fidelity")
#: A confidence level is ``confidence=``; these names may not mean one.
CONFIDENCE_WORDS = ("alpha", "level", "cover", "conf_level", "ci_level", "coverage")
#: Randomness is ``rng=``; these names may not carry it.
RANDOM_WORDS = ("seed", "random_state", "random_seed")

#: ``qualified name:parameter`` -> why the name is right there.
_SIGNIFICANCE = ("a significance level of a (simulated) test, not a confidence level: "
                 "power is P(p < alpha), the field's word (pwr, simr, G*Power)")
VOCABULARY_ALLOWED: dict[str, str] = {
    "effectstudy.power.simulate:alpha": _SIGNIFICANCE,
    "effectstudy.power.power_curve:alpha": _SIGNIFICANCE,
    "effectstudy.power.run_from_yaml:alpha": _SIGNIFICANCE,
    "effectstudy.power.t_test_power:alpha": _SIGNIFICANCE,
    "effectstudy.power.solve_n:alpha": _SIGNIFICANCE,
    "effectstudy.power.simulate_t_test_power:alpha": _SIGNIFICANCE,
    "effectstudy.power.ResponderDesign:alpha": _SIGNIFICANCE,
    "effectstudy.power.PowerResult:alpha": _SIGNIFICANCE + " (recorded in the result)",
    "effectstudy.sced.piecewise:level":
        "level=True/False switches the level-change term of the piecewise regression "
        "(scan's plm(level=)); a model term, not a confidence level",
    "effectstudy.multilevel.IccResult.value:level":
        "a level of the hierarchy ('programme', 'client'), not a confidence level",
    "effectstudy.sced.RandomizationResult:seed":
        "a result field recording the int seed that was used (output, so that the run can "
        "be repeated with rng=seed), not a source of randomness",
}


def _public_callables(package: str):
    """``(qualified name, callable)`` for the package's ``__all__`` and public methods."""
    mod = importlib.import_module(f"effectstudy.{package}")
    names = getattr(mod, "__all__", None) or [
        n for n, v in vars(mod).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == mod.__name__]
    for n in names:
        obj = getattr(mod, n, None)
        if inspect.isclass(obj):
            yield f"effectstudy.{package}.{n}", obj
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, staticmethod | classmethod):
                    member = member.__func__
                if inspect.isfunction(member):
                    yield f"effectstudy.{package}.{n}.{attr}", member
        elif callable(obj) and not inspect.ismodule(obj):
            yield f"effectstudy.{package}.{n}", obj


def _vocabulary_problems(package: str) -> list[str]:
    problems = []
    for qual, obj in _public_callables(package):
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        for p in params:
            key = f"{qual}:{p}"
            if key in VOCABULARY_ALLOWED:
                continue
            if p in CONFIDENCE_WORDS:
                problems.append(f"{key}: a confidence level is confidence=")
            elif p in RANDOM_WORDS:
                problems.append(f"{key}: randomness is rng= (int, Generator or None)")
    return problems


def test_vocabulary_allow_list_is_live_and_reasoned():
    """Every allow-list entry names a parameter that exists, with a reason."""
    params = {}
    for package in VOCABULARY_PACKAGES:
        try:
            items = list(_public_callables(package))
        except ImportError:  # reported by test_vocabulary_of_public_signatures
            continue
        for qual, obj in items:
            try:
                params[qual] = set(inspect.signature(obj).parameters)
            except (TypeError, ValueError):
                continue
    for key, reason in VOCABULARY_ALLOWED.items():
        qual, p = key.split(":")
        if qual.split(".")[1] in {q.split(".")[1] for q in params}:
            assert p in params.get(qual, set()), f"stale allow-list entry {key}"
        assert len(reason) > 20, key


@pytest.mark.parametrize("package", VOCABULARY_PACKAGES)
def test_vocabulary_of_public_signatures(package):
    problems = _vocabulary_problems(package)
    assert not problems, "\n".join(problems)


def test_vocabulary_check_catches_old_names(monkeypatch):
    """The check is not vacuous: a public function with seed= / level= is reported."""
    import effectstudy.change as change

    def bad(data, *, seed=None, level=0.95):  # pragma: no cover - never called
        return data

    bad.__module__ = "effectstudy.change"
    monkeypatch.setattr(change, "bad_example", bad, raising=False)
    monkeypatch.setattr(change, "__all__", [*getattr(change, "__all__", []), "bad_example"],
                        raising=False)
    problems = _vocabulary_problems("change")
    assert "effectstudy.change.bad_example:seed: randomness is rng= (int, Generator or None)" \
        in problems
    assert any(p.startswith("effectstudy.change.bad_example:level") for p in problems)


# ---------------------------------------------------------------------------
# (e) no pyplot on import
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("module", ["effectstudy.sced", "effectstudy.multilevel"])
def test_import_does_not_load_pyplot(module):
    code = (f"import sys, {module}\n"
            "print('matplotlib.pyplot' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
                                           "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "False", f"import {module} loads matplotlib.pyplot"
