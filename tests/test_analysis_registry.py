"""The analysis registry (neuroana.analysis): every entry is complete, the clients name no analysis,
and a sixth analysis registered from a temporary module runs through runner, demo and sweep."""

from __future__ import annotations

import ast
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from neuroana import analysis as registry

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = [
    ROOT / "neuroana" / "runner.py",
    ROOT / "neuroana" / "demo.py",
    ROOT / "neuroana" / "parallel.py",
    ROOT / "benchmarks" / "run_all.py",
]
BUILTIN = ["connectome", "hmmglm", "adaptation", "pretrain", "segmentation"]


def test_registry_lists_the_five_complete_entries():
    assert registry.names()[:5] == BUILTIN
    for a in registry.analyses():
        if a.name not in BUILTIN:
            continue
        cls = a.estimator_class()
        assert callable(cls.fit) and isinstance(cls().get_params(), dict)
        p = a.pipeline_module()
        assert isinstance(p.DATA_KEYS, dict) and all(
            isinstance(v, bool) for v in p.DATA_KEYS.values()
        )
        assert callable(p.read_inputs) and callable(p.results)
        assert callable(a.simulator()) and callable(a.demo_section())
        assert a.benchmarks, a.name
        for b in a.benchmarks:
            script = ROOT / "benchmarks" / b.script
            tree = ast.parse(script.read_text())
            assert "parse_rows" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_get_and_register_errors():
    with pytest.raises(KeyError, match=r"unknown analysis 'nope'; registered: \['connectome'"):
        registry.get("nope")
    entry = registry.get("hmmglm")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(entry)
    with pytest.raises(TypeError, match="takes an Analysis"):
        registry.register("hmmglm")
    with pytest.raises(ValueError, match="expected letters"):
        registry.register(registry.Analysis("a b", "x:y", "x", "x:y", "x:y"))


def _code_strings_and_names(path: Path) -> set[str]:
    """String constants (docstrings excluded), identifiers and imported module names in a file."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                out.add(node.value)
        elif isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            out.add(node.module or "")
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.FunctionDef):
            out.add(node.name)
    return out


@pytest.mark.parametrize("path", CLIENTS, ids=lambda p: p.name)
def test_clients_name_no_analysis(path):
    words = ("connectome", "hmmglm", "adaptation", "pretrain", "segmentation", "fisbe")
    hits = sorted(s for s in _code_strings_and_names(path) if any(w in s.lower() for w in words))
    assert hits == [], f"{path.name} names analyses in code: {hits}"


# ----------------------------------------------------------------------------- a sixth analysis
TOY = '''
"""A toy analysis: per-unit firing rates from an NWB units table."""
import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator

DATA_KEYS = {"stop": True, "scale_by": False}


class RateEstimator(BaseEstimator):
    def __init__(self, scale=1.0, random_state=None):
        self.scale = scale
        self.random_state = random_state

    def fit(self, counts):
        self.rate_ = self.scale * counts.mean("time") / counts.attrs["bin_size"]
        self.n_units_ = int(counts.sizes["unit"])
        return self


def check_data(data, n_inputs, resolve):
    if data["stop"] <= 0:
        raise ValueError(f"data.stop={data['stop']!r}; expected > 0")
    return dict(data)


def read_inputs(paths, data):
    from neuroana.io import read_spike_counts

    counts = read_spike_counts(paths[0], 0.5, start=0.0, stop=float(data["stop"]))
    return {"counts": counts * data.get("scale_by", 1)}


def results(estimator, inputs):
    ds = xr.Dataset({"rate": estimator.rate_})
    return ds, {"fitted": {"n_units": estimator.n_units_},
                "scores": {"mean_rate": float(estimator.rate_.mean())}}


def simulate(random_state=0):
    from neuroana.datasets import make_session

    return make_session(random_state=random_state, duration=10.0, n_units=3, n_rois=4)


def demo_section(ctx):
    from neuroana.demo import score

    inputs = read_inputs([ctx.nwb_path], {"stop": ctx.session.duration})
    got = RateEstimator().fit(**inputs).rate_.values
    true = ctx.session.spike_counts.sum("time").values / ctx.session.duration
    err = float(np.max(np.abs(got - true)))
    return {"rate max |error| (Hz)": score(err, 0.0, tol=1e-9)}
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A sixth analysis in a module that exists only in tmp_path, registered for one test."""
    mod = tmp_path / "mods" / "toy_rates_mod.py"
    mod.parent.mkdir()
    mod.write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(mod.parent))
    entry = registry.register(
        registry.Analysis(
            "toyrates",
            estimator="toy_rates_mod:RateEstimator",
            pipeline="toy_rates_mod",
            simulate="toy_rates_mod:simulate",
            demo="toy_rates_mod:demo_section",
            n_inputs=1,
        )
    )
    yield entry
    registry.unregister("toyrates")
    sys.modules.pop("toy_rates_mod", None)


@pytest.fixture(scope="module")
def nwb_files(tmp_path_factory):
    from neuroana.datasets import make_session
    from neuroana.io import write_session_nwb

    d = tmp_path_factory.mktemp("toy_nwb")
    return {
        k: write_session_nwb(
            make_session(random_state=k, duration=10.0, n_units=3, n_rois=4), d / f"s{k}.nwb"
        )
        for k in (0, 1)
    }


def _direct_rate(path, scale):
    from neuroana.io import read_spike_counts

    c = read_spike_counts(path, 0.5, start=0.0, stop=8.0)
    return scale * c.mean("time").values / 0.5


def test_toy_analysis_runs_through_the_runner(toy, nwb_files, tmp_path):
    from neuroana.cli import main
    from neuroana.runner import ConfigError, load_config, run_config

    cfg = {
        "analysis": "toyrates",
        "inputs": str(nwb_files[0]),
        "data": {"stop": 8.0},
        "params": {"scale": 2.0},
        "output": "out",
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path), "--check"]) == 0
    res = run_config(path)
    with xr.open_dataset(res.output / "results.nc") as ds:
        np.testing.assert_allclose(ds["rate"].values, _direct_rate(nwb_files[0], 2.0))
        assert ds.attrs["analysis"] == "toyrates" and ds.attrs["estimator"] == "RateEstimator"
    summary = json.loads((res.output / "summary.json").read_text())
    assert summary["params"] == {"scale": 2.0, "random_state": None}
    assert summary["fitted"] == {"n_units": 3}
    # the runner's validation uses the toy's DATA_KEYS, check_data, n_inputs and get_params
    for change, message in [
        (
            {"data": {"stop": 8.0, "bins": 1}},
            r"unknown key\(s\) \['bins'\].*valid: \['scale_by', 'stop'\]",
        ),
        ({"data": {}}, r"data: missing key\(s\) \['stop'\]"),
        ({"data": {"stop": -1}}, r"data.stop=-1; expected > 0"),
        ({"params": {"scal": 1}}, r"unknown parameter 'scal' for RateEstimator"),
        ({"inputs": [str(nwb_files[0])] * 2}, r"takes exactly 1 input file\(s\); got 2"),
    ]:
        path.write_text(yaml.safe_dump({**cfg, **change}))
        with pytest.raises(ConfigError, match=message):
            load_config(path)


def test_toy_analysis_runs_in_the_demo(toy, tmp_path):
    from neuroana.demo import run_demo, sections

    assert [n for n, _ in sections()][-1] == "toyrates"
    res = run_demo(tmp_path, quick=True, only=["toyrates"])
    assert list(res["sections"]) == ["toyrates"]
    row = res["sections"]["toyrates"]["rate max |error| (Hz)"]
    assert row["ok"] is True and row["value"] == 0.0
    with pytest.raises(ValueError, match=r"unknown section\(s\) \['nope'\]; valid: .*'toyrates'"):
        run_demo(tmp_path / "b", quick=True, only=["nope"])


def test_toy_analysis_runs_in_a_sweep(toy, nwb_files):
    pytest.importorskip("distributed")
    from dask.distributed import Client, LocalCluster

    from neuroana.parallel import sweep_analysis

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            out = sweep_analysis(
                "toyrates", nwb_files, {"scale": [1.0, 3.0]}, client=client, data={"stop": 8.0}
            )
            with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['alpha'\]"):
                sweep_analysis("toyrates", nwb_files, {"alpha": [1]}, client=client)
    assert out.failures == []
    rate = out.results["rate"]
    assert rate.dims == ("session", "scale", "unit")
    for k, p in nwb_files.items():
        for scale in (1.0, 3.0):
            np.testing.assert_allclose(
                rate.sel(session=k, scale=scale).values, _direct_rate(p, scale)
            )


def test_toy_benchmark_would_be_listed(toy, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import run_all
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    before = {b.name for b in run_all.benches()}
    registry.register(
        registry.Analysis(
            "toyrates",
            "toy_rates_mod:RateEstimator",
            "toy_rates_mod",
            "toy_rates_mod:simulate",
            "toy_rates_mod:demo_section",
            benchmarks=(registry.Benchmark("toy_bench", "toy.py", (), None),),
        ),
        replace=True,
    )
    got = {b.name: b for b in run_all.benches()}
    assert set(got) - before == {"toy_bench"} and got["toy_bench"].analysis == "toyrates"
