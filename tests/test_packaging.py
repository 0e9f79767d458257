"""environment.yml and pyproject.toml name the same dependencies with the same bounds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]

# PyPI name -> conda-forge name(s), where they differ
CONDA_NAMES = {
    "torch": ["pytorch"],
    "dask": ["dask", "distributed"],
    "igraph": ["python-igraph"],
}
# not packaged on conda-forge: environment.yml takes them from PyPI in its pip section
PIP_ONLY = {"mwatershed", "pyqt6"}


def _pyproject_requirements() -> dict[str, Requirement]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in meta["dependencies"]]
    for items in meta["optional-dependencies"].values():
        reqs += [Requirement(r) for r in items if not r.startswith("neuroana")]
    return {r.name.lower(): r for r in reqs}


def _split(dep: str) -> tuple[str, str]:
    name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", dep).groups()
    return name.lower(), spec.replace(" ", "")


def _conda_specs() -> dict[str, str]:
    """Conda-forge packages and, for what conda-forge lacks, the pip section's packages."""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    specs = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            specs.update([_split(dep)])
        else:
            specs.update(_split(d) for d in dep["pip"] if d != "-e .")
    return specs


def test_environment_channels_are_conda_forge_only():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    assert "defaults" not in env["channels"]
    pip_items = [d for d in env["dependencies"] if isinstance(d, dict)]
    # one pip section: what conda-forge lacks (listed in PIP_ONLY), then the package itself
    assert len(pip_items) == 1 and pip_items[0]["pip"][-1] == "-e ."
    assert {_split(d)[0] for d in pip_items[0]["pip"][:-1]} == PIP_ONLY


def test_every_pyproject_dependency_is_in_environment_with_same_bounds():
    conda = _conda_specs()
    problems = []
    for name, req in _pyproject_requirements().items():
        for conda_name in CONDA_NAMES.get(name, [name]):
            if conda_name not in conda:
                problems.append(f"{name} (conda-forge {conda_name}) missing from environment.yml")
                continue
            pip_spec = ",".join(sorted(str(s) for s in req.specifier))
            conda_spec = ",".join(sorted(conda[conda_name].split(","))) if conda[conda_name] else ""
            if pip_spec != conda_spec:
                problems.append(f"{name}: pyproject {pip_spec!r} != environment.yml {conda_spec!r}")
    assert not problems, "\n".join(problems)


def test_environment_has_nothing_pyproject_lacks():
    known = {"python", "pip"}
    for name in _pyproject_requirements():
        known.update(CONDA_NAMES.get(name, [name]))
    extra = set(_conda_specs()) - known
    assert not extra, f"environment.yml lists packages pyproject.toml does not: {sorted(extra)}"


def test_torch_range_admits_the_cpu_build_on_disk():
    req = _pyproject_requirements()["torch"]
    assert req.specifier.contains("2.13.0")


def test_manifests_ship_inside_the_package():
    # wheels carry data_manifests/ through this link (package data "data_manifests/*.yaml")
    link = REPO / "neuroana" / "data_manifests"
    assert link.resolve() == (REPO / "data_manifests").resolve()
    assert sorted(p.name for p in link.glob("*.yaml")) == sorted(
        p.name for p in (REPO / "data_manifests").glob("*.yaml")
    )
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "data_manifests/*.yaml" in meta["tool"]["setuptools"]["package-data"]["neuroana"]
