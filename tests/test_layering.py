"""Layering: the import-linter contracts of pyproject.toml hold, and would catch an upward import;
every package face is lazy, so importing one part of neuroana does not import the others."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports")
needs_linter = pytest.mark.skipif(LINT is None, reason="import-linter (dev extra) not installed")


def _lint(root: Path, *contracts: str) -> subprocess.CompletedProcess:
    cmd = [LINT, "--no-cache", *(a for c in contracts for a in ("--contract", c))]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def _contract_ids() -> list[str]:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return [c["id"] for c in cfg["contracts"]]


@needs_linter
def test_import_contracts_hold():
    res = _lint(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{len(_contract_ids())} kept, 0 broken" in res.stdout


# (file to edit, an upward import to add, the contract that must then break)
UPWARD = [
    (
        "neuroana/io/fisbe.py",
        "from neuroana.segmentation.errors import FisbeInputError",
        "io-no-analysis",
    ),
    ("neuroana/io/benucci.py", "import neuroana.datasets.adaptation_sim", "io-no-analysis"),
    ("neuroana/backend/fitloop.py", "from neuroana.io.atomic import atomic_path", "bottom"),
    (
        "neuroana/hmmglm/estimator.py",
        "from neuroana.io import read_spike_counts",
        "analyses-below-clients",
    ),
    ("neuroana/adaptation/tuning.py", "import neuroana.hmmglm.emissions", "analyses-independent"),
    ("neuroana/preprocess/binning.py", "import h5py", "only-io-files"),
    ("neuroana/viz/hmmglm.py", "import qtpy", "only-napari-qt"),
]


@needs_linter
def test_contracts_break_on_upward_imports(tmp_path):
    """Each contract fails when the upward import it forbids is added to a copy of the package."""
    root = tmp_path / "repo"
    shutil.copytree(
        REPO / "neuroana", root / "neuroana", ignore=shutil.ignore_patterns("__pycache__", "*.csv")
    )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    assert _lint(root).returncode == 0
    assert {c for _, _, c in UPWARD} == set(_contract_ids())
    for rel, line, contract in UPWARD:
        target = root / rel
        original = target.read_text()
        target.write_text(original + f"\n{line}  # noqa\n")
        res = _lint(root, contract)
        target.write_text(original)
        assert res.returncode != 0, f"{contract} did not catch `{line}` in {rel}\n{res.stdout}"
        assert "BROKEN" in res.stdout


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


ANALYSES = ("connectome", "hmmglm", "adaptation", "pretrain", "segmentation")


def test_import_neuroana_io_loads_no_torch_and_no_analysis():
    mods = _modules_after("import neuroana.io")
    assert "torch" not in mods and "sklearn" not in mods and "pynwb" not in mods
    assert "numba" not in mods
    assert not {f"neuroana.{a}" for a in ANALYSES} & mods


@pytest.mark.parametrize(
    "package",
    ["hmmglm", "adaptation", "pretrain", "segmentation", "preprocess", "backend", "datasets"],
)
def test_importing_one_package_imports_no_other_analysis(package):
    mods = _modules_after(f"import neuroana.{package}")
    others = {f"neuroana.{a}" for a in ANALYSES if a != package}
    assert not others & mods, sorted(others & mods)
    # the face itself is lazy: no submodule is imported until a name is used
    assert not {m for m in mods if m.startswith(f"neuroana.{package}.")}
    if package == "datasets":  # the simulators sit above the analyses they simulate
        return
    # using every public name still imports no other analysis
    used = _modules_after(f"import neuroana.{package} as p; [getattr(p, n) for n in p.__all__]")
    assert not others & used, sorted(others & used)


@pytest.mark.parametrize("package", ANALYSES)
def test_an_analysis_face_loads_no_torch_until_a_name_is_used(package):
    mods = _modules_after(f"import neuroana.{package}")
    assert "torch" not in mods and "numba" not in mods  # numba: only the compiled kernels
    if package == "pretrain":  # the check would see torch: using a name imports it
        assert "torch" in _modules_after("import neuroana.pretrain as p; p.SpikeRateModel")


LAZY_PACKAGES = [
    "neuroana",
    "neuroana.io",
    "neuroana.hmmglm",
    "neuroana.adaptation",
    "neuroana.pretrain",
    "neuroana.segmentation",
    "neuroana.preprocess",
    "neuroana.backend",
    "neuroana.datasets",
]


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_lazy_faces_resolve_every_name_within_the_package(name):
    pkg = importlib.import_module(name)
    lazy = getattr(pkg, "_LAZY", {})
    for attr, module in lazy.items():
        # a face only points into its own package (lazy imports are invisible to import-linter)
        assert module.startswith(f"{name}."), (attr, module)
    for attr in pkg.__all__:
        assert getattr(pkg, attr) is not None
        assert attr in dir(pkg)
    with pytest.raises(AttributeError, match="no attribute"):
        pkg.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    "name",
    ["neuroana.hmmglm", "neuroana.adaptation", "neuroana.pretrain", "neuroana.segmentation"],
)
def test_faces_are_complete(name):
    """Every estimator and exception class defined in an analysis is in its package's __all__."""
    import pkgutil

    from sklearn.base import BaseEstimator

    pkg = importlib.import_module(name)
    missing = []
    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{name}.{info.name}")
        for attr, obj in vars(mod).items():
            if (
                isinstance(obj, type)
                and obj.__module__.startswith("neuroana.")
                and not attr.startswith("_")
                and issubclass(obj, (BaseEstimator, Exception))
                and attr not in pkg.__all__
            ):
                missing.append(f"{mod.__name__}.{attr}")
    assert not missing, missing


def test_neuroana_info_imports_no_torch_xarray_pandas_or_matplotlib(nwb_dir, capsys):
    path = nwb_dir / "pynapple_suite2p_2022_08_08.nwb"
    mods = _modules_after(
        f"from neuroana.cli import main; assert main(['info', {str(path)!r}]) == 0"
    )
    heavy = {"torch", "sklearn", "xarray", "pandas", "matplotlib", "pynwb", "dask"} & mods
    assert not heavy, sorted(heavy)
    assert "neuroana.io.nwb_contents" in mods
    # what it prints is list_contents' table
    from neuroana.cli import main
    from neuroana.io import list_contents

    assert main(["info", str(path)]) == 0
    assert capsys.readouterr().out == list_contents(path).to_string(index=False) + "\n"
