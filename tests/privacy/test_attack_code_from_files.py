"""Attack corpus, issue 10 items 8, 9 and 17: no file the package reads can run code.

* A model formula in an analysis spec, a power design or a function argument is
  parsed by the package's own grammar: the classic patsy injection
  ``I(__import__('os').system(...))`` is refused with a package error through
  every entry point, and the command it carries never runs.
* The package's source holds no ``eval``/``exec``, no pickle, no patsy and no
  unsafe YAML loader.
* Spec and design files that are not YAML text (a cp1252 client export, an SPSS
  ``.sav``, a huge file, a YAML file with tags or a syntax error) give a
  ``SpecError`` that names the file and carries none of its content.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from effectstudy import multilevel
from effectstudy.cli import app
from effectstudy.errors import EffectStudyError, ModelError, SpecError
from effectstudy.power import GrowthDesign
from effectstudy.power.yaml_design import load_design, run_from_yaml
from effectstudy.report.spec import load_spec

SRC = Path(__file__).resolve().parents[2] / "src" / "effectstudy"

# identifiers planted in the hostile files; none may appear in any error
NAME, BSN, PHONE, BIRTH = "Naomi Jansen", "641693266", "0612345678", "07-11-2009"
SECRETS = (NAME, "Naomi", "Jansen", BSN, PHONE, BIRTH, "Mila")


def _exploit(marker: Path) -> str:
    return (f"z ~ week + I(__import__('os').system('touch {marker}')*0 + week)"
            " + (1|client)")


def _assert_clean(err: BaseException) -> None:
    text = str(err) + repr(getattr(err, "__cause__", None)) + repr(err.__context__)
    for s in SECRETS:
        assert s not in text, f"{s!r} leaked into {text!r}"


@pytest.fixture()
def growth() -> pd.DataFrame:
    rng = np.random.default_rng(10)
    rows = []
    for c in range(8):
        u = rng.normal()
        for w in (0, 8, 16, 24):
            rows.append({"client": f"c{c}", "programme": f"P{c % 2 + 1}", "week": float(w),
                         "z": u - 0.02 * w + rng.normal(scale=0.5), "age": 14.0 + c % 3,
                         "fidelity": 5.0 + c % 4})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# formula injection through every entry point
# ---------------------------------------------------------------------------
def test_exploit_formula_through_multilevel_fit(tmp_path, growth):
    marker = tmp_path / "PWNED_fit"
    with pytest.raises(ModelError, match="__import__"):
        multilevel.fit(_exploit(marker), growth)
    assert not marker.exists()


@pytest.mark.parametrize("call", ["cluster_robust", "fit_ar1", "meta_analysis", "lmm_random"])
def test_exploit_formula_through_other_model_functions(tmp_path, growth, call):
    marker = tmp_path / f"PWNED_{call}"
    attack = f"I(__import__('os').system('touch {marker}')*0 + week)"
    with pytest.raises(ModelError, match="__import__"):
        if call == "cluster_robust":
            multilevel.cluster_robust(f"z ~ week + {attack}", growth, cluster="client")
        elif call == "fit_ar1":
            multilevel.fit_ar1(f"z ~ {attack}", growth, group="client", correlation=None)
        elif call == "meta_analysis":
            es = growth.assign(yi=growth["z"], vi=0.1, case=growth["client"])
            multilevel.meta_analysis(es, yi="yi", vi="vi", levels=["programme", "case"],
                                     mods=f"~ {attack}")
        else:
            multilevel.fit(f"z ~ week + ({attack} | client)", growth)
    assert not marker.exists()


def test_exploit_formula_through_a_growth_design_argument(tmp_path):
    marker = tmp_path / "PWNED_growth"
    with pytest.raises(SpecError, match="__import__"):
        GrowthDesign.planned(programmes=2, clients_per_programme=3,
                             formula=_exploit(marker).replace(" + (1|client)", ""))
    assert not marker.exists()


@pytest.mark.parametrize("random_part", ["", " + (1|client)"])
def test_exploit_formula_in_a_power_design_file(tmp_path, random_part):
    marker = tmp_path / "PWNED_design"
    formula = _exploit(marker).replace(" + (1|client)", random_part)
    path = tmp_path / "design.yaml"
    path.write_text(
        "type: growth\n"
        "layout:\n  planned: {programmes: 2, clients_per_programme: 3, weeks: [0, 8, 16]}\n"
        f"formula: \"{formula}\"\n"
        "fixed: {Intercept: 50, time: -0.1}\n"
        "test: {term: time}\n", encoding="utf-8")
    for load in (load_design, lambda p: run_from_yaml(p, nsim=2, progress=False)):
        with pytest.raises(SpecError) as err:
            load(path)
        assert err.value.file == str(path) and "__import__" in str(err.value)
    res = CliRunner().invoke(app, ["power", str(path), "--nsim", "2", "--n-jobs", "1"])
    assert res.exit_code == 1 and res.output.startswith("error:")
    assert not marker.exists()


def test_exploit_formula_in_an_analysis_spec(tmp_path, growth):
    marker = tmp_path / "PWNED_spec"
    path = tmp_path / "ANALYSIS.yaml"
    path.write_text(
        "title: attack\n"
        f"multilevel: {{construct: internalising, formula: \"{_exploit(marker)}\"}}\n"
        "power:\n  design: {programmes: 2, clients_per_programme: 3, weeks: [0, 8],\n"
        f"           formula: \"{_exploit(marker).replace(' + (1|client)', '')}\"}}\n",
        encoding="utf-8")
    spec = load_spec(path)  # a formula is text to the schema ...
    # ... and is refused where the report's multilevel section fits it
    with pytest.raises(ModelError, match="__import__"):
        multilevel.fit(spec["multilevel"]["formula"], growth)
    from effectstudy.report.analyses import Context, multilevel_section

    table = growth.assign(construct="internalising", session=np.nan)
    ctx = Context(table=table, clients=growth.drop_duplicates("client"), dictionary=None,
                  spec=spec, audience="public")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ModelError, match="__import__"):
            multilevel_section(ctx)
    # the power section builds its design from the same spec
    with pytest.raises(SpecError, match="__import__"):
        GrowthDesign.planned(**spec["power"]["design"])
    assert not marker.exists()


# ---------------------------------------------------------------------------
# the source itself
# ---------------------------------------------------------------------------
_FORBIDDEN_MODULES = {"patsy", "pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve"}
_FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
_FORBIDDEN_ATTRS = {"eval", "query", "read_pickle", "to_pickle", "unsafe_load", "full_load",
                    "dmatrix", "dmatrices", "build_design_matrices", "from_formula"}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            out += [f"{where} import {a.name}" for a in node.names
                    if a.name.split(".")[0] in _FORBIDDEN_MODULES
                    or a.name.startswith("statsmodels.formula")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if (node.module.split(".")[0] in _FORBIDDEN_MODULES
                    or node.module.startswith("statsmodels.formula")):
                out.append(f"{where} from {node.module}")
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in _FORBIDDEN_CALLS:
                out.append(f"{where} {f.id}()")
            if isinstance(f, ast.Attribute) and f.attr in _FORBIDDEN_ATTRS:
                out.append(f"{where} .{f.attr}()")
            if isinstance(f, ast.Attribute) and f.attr == "load":
                loader = [k for k in node.keywords if k.arg == "Loader"]
                if isinstance(f.value, ast.Name) and f.value.id == "yaml" and not (
                        loader and "Safe" in ast.unparse(loader[0].value)):
                    out.append(f"{where} yaml.load without a safe loader")
                if any(k.arg == "allow_pickle" for k in node.keywords):
                    out.append(f"{where} allow_pickle")
            if isinstance(f, ast.Name) and f.id == "import_module":
                out.append(f"{where} import_module()")
        elif isinstance(node, ast.Name) and node.id == "patsy":
            out.append(f"{where} patsy")
    return out


def test_source_has_no_eval_exec_pickle_or_patsy():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    found = [v for p in files for v in _violations(p)]
    assert found == []
    for p in files:  # and no textual import of patsy anywhere (comments and docstrings aside)
        for line in p.read_text(encoding="utf-8").splitlines():
            code = line.split("#", 1)[0].strip()
            assert not code.startswith(("import patsy", "from patsy")), f"{p}: {line}"


def test_the_checker_finds_what_it_forbids(tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text("import patsy\nimport pickle\nx = eval('1')\nimport yaml\n"
                   "yaml.load('a')\ndf.query('a > 1')\n", encoding="utf-8")
    monkeypatch.setattr(__import__("sys").modules[__name__], "SRC", tmp_path)
    assert len(_violations(bad)) == 5


# ---------------------------------------------------------------------------
# spec and design files that are not YAML text
# ---------------------------------------------------------------------------
def _export_cp1252(path: Path) -> Path:
    path.write_bytes(
        ("Cliëntnummer;Naam;Geboortedatum;BSN;Opmerking\n"
         f"829259;{NAME};{BIRTH};{BSN};belt {PHONE} – ‘Mila’ weet ervan\n").encode("cp1252"))
    return path


def _export_utf8(path: Path) -> Path:
    path.write_text(f"Cliëntnummer,Naam,Opmerking: {NAME}\n829259,{NAME},{PHONE}\n",
                    encoding="utf-8")
    return path


def _sav(path: Path) -> Path:
    path.write_bytes(b"$FL2@(#) IBM SPSS STATISTICS 64-bit Linux\x00\x00\x02\x00\x00\x00"
                     + NAME.encode() + b"\x00\xff\xfe" + BSN.encode() + bytes(range(256)))
    return path


def _huge(path: Path) -> Path:
    path.write_text("title: x\n# " + f"{NAME} " * 300_000 + "\n", encoding="utf-8")
    return path


def _yaml_syntax_error(path: Path) -> Path:
    path.write_text(f"title: x\nmultilevel: {{formula: z ~ week\nnote: [{NAME} {BSN}\n",
                    encoding="utf-8")
    return path


def _yaml_tab_error(path: Path) -> Path:
    path.write_text(f"title: x\n\t{NAME}: {BSN}\n", encoding="utf-8")
    return path


def _yaml_tag(path: Path) -> Path:
    marker = path.parent / "PWNED_tag"
    path.write_text(f"title: !!python/object/apply:os.system ['touch {marker}']\n"
                    f"x: !!python/name:os.system '{NAME}'\n", encoding="utf-8")
    return path


def _yaml_list(path: Path) -> Path:
    path.write_text(f"- {NAME}\n- {BSN}\n", encoding="utf-8")
    return path


def _yaml_scalar(path: Path) -> Path:
    path.write_text(f"{NAME} {BSN}\n", encoding="utf-8")
    return path


def _deep(path: Path) -> Path:
    path.write_text("title: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    return path


def _yaml_bad_tagged_values(path: Path) -> Path:
    path.write_text(f"title: !!int {NAME}\nseed: !!timestamp {BSN}x\n", encoding="utf-8")
    return path


def _yaml_alias(path: Path) -> Path:
    path.write_text(f"title: *{NAME.replace(' ', '')}\n", encoding="utf-8")
    return path


HOSTILE = {"tagged_values.yaml": _yaml_bad_tagged_values, "alias.yaml": _yaml_alias,
           "export_cp1252.csv": _export_cp1252, "export_utf8.csv": _export_utf8,
           "client.sav": _sav, "huge.yaml": _huge, "syntax.yaml": _yaml_syntax_error,
           "tab.yaml": _yaml_tab_error, "tags.yaml": _yaml_tag, "list.yaml": _yaml_list,
           "scalar.yaml": _yaml_scalar, "deep.yaml": _deep}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("reader", ["load_spec", "load_design", "run_from_yaml"])
def test_hostile_spec_files_give_a_clean_spec_error(tmp_path, name, reader):
    path = HOSTILE[name](tmp_path / name)
    read = {"load_spec": load_spec, "load_design": load_design,
            "run_from_yaml": lambda p: run_from_yaml(p, nsim=2, progress=False)}[reader]
    with pytest.raises(SpecError) as err:
        read(path)
    assert err.value.file == str(path)
    _assert_clean(err.value)
    assert err.value.__cause__ is None or isinstance(err.value.__cause__, FileNotFoundError)
    assert not (tmp_path / "PWNED_tag").exists()


def test_yaml_syntax_errors_give_line_and_column_only(tmp_path):
    with pytest.raises(SpecError) as err:
        load_spec(_yaml_syntax_error(tmp_path / "a.yaml"))
    assert "line 4, column 1" in str(err.value) or "line 3" in str(err.value)
    with pytest.raises(SpecError, match=r"line 2, column 1") as err:
        load_spec(_yaml_tab_error(tmp_path / "b.yaml"))
    _assert_clean(err.value)


@pytest.mark.parametrize("name", ["export_cp1252.csv", "client.sav", "syntax.yaml",
                                  "export_utf8.csv"])
def test_cli_report_with_an_export_as_spec_echoes_nothing(tmp_path, name):
    path = HOSTILE[name](tmp_path / name)
    res = CliRunner().invoke(app, ["report", "--data", str(tmp_path), "--spec", str(path),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.output.startswith("error:") and name in res.output
    for s in SECRETS:
        assert s not in res.output


def test_unknown_keys_are_named_only_when_they_are_typos(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(f"title: x\npowr: {{}}\n{NAME}: {BSN}\n", encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "'powr' (did you mean 'power'?)" in str(err.value)
    assert "1 other key(s), not shown" in str(err.value)
    _assert_clean(err.value)
    path.write_text(f"type: growth\n{NAME}: 1\n", encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_design(path)
    _assert_clean(err.value)
    path.write_text(f"title: x\nseed: '{NAME}'\n", encoding="utf-8")
    with pytest.raises(SpecError, match="expected int, got str") as err:
        load_spec(path)
    _assert_clean(err.value)


def test_what_held_still_holds(tmp_path):
    # a valid spec still loads, with a BOM too, and every error is a package error
    path = tmp_path / "ok.yaml"
    path.write_bytes(b"\xef\xbb\xbftitle: Study\nseed: 3\n")
    assert load_spec(path) == {"title": "Study", "seed": 3}
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(EffectStudyError):
        load_spec(tmp_path)
