"""Sweeps on a real LocalCluster of 2 worker processes, including a worker killed mid-sweep."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

distributed = pytest.importorskip("distributed")
from dask.distributed import Client, LocalCluster  # noqa: E402

from neuroana.parallel import sweep  # noqa: E402


def ridge_fit(data, alpha):
    """Closed-form ridge coefficients: a real fit whose answer we can compute here too."""
    X, y = data
    coef = np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T @ y)
    return xr.Dataset({"coef": ("feature", coef), "alpha_used": alpha})


def flaky_fit(data, alpha, marker_dir):
    """Kills its own worker process the first time it sees session 'b' with alpha 1.0."""
    X, y = data
    marker = Path(marker_dir) / "died-once"
    if alpha == 1.0 and X[0, 0] == SESSION_B_FIRST and not marker.exists():
        marker.write_text("x")
        os._exit(1)
    return ridge_fit(data, alpha)


def failing_fit(data, alpha):
    if alpha == 0.1:
        raise ValueError("alpha 0.1 is rejected by this fit")
    return ridge_fit(data, alpha)


def _sessions():
    rng = np.random.default_rng(0)
    out = {}
    for name in ("a", "b", "c"):
        X = rng.normal(size=(50, 3))
        y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=50)
        out[name] = (X, y)
    return out


SESSIONS = _sessions()
SESSION_B_FIRST = SESSIONS["b"][0][0, 0]


@pytest.fixture(scope="module")
def client():
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with Client(cluster) as c:
            yield c


def _expected(name, alpha):
    return ridge_fit(SESSIONS[name], alpha)["coef"].values


def test_sweep_assembles_all_results_with_sweep_dims(client):
    grid = {"alpha": [0.1, 1.0, 10.0]}
    out = sweep(ridge_fit, SESSIONS, grid, client=client)
    assert out.failures == []
    coef = out.results["coef"]
    assert coef.dims == ("session", "alpha", "feature")
    assert list(coef.session.values) == ["a", "b", "c"] and list(coef.alpha.values) == grid["alpha"]
    for s in SESSIONS:
        for a in grid["alpha"]:
            np.testing.assert_allclose(coef.sel(session=s, alpha=a).values, _expected(s, a))


def test_failed_tasks_are_reported_and_finished_results_kept(client):
    with pytest.warns(RuntimeWarning, match="3 of 6 sweep tasks failed"):
        out = sweep(failing_fit, SESSIONS, {"alpha": [0.1, 1.0]}, client=client)
    assert sorted(f.session for f in out.failures) == ["a", "b", "c"]
    assert all(f.params == {"alpha": 0.1} and "rejected" in f.error for f in out.failures)
    coef = out.results["coef"]
    assert np.isnan(coef.sel(alpha=0.1).values).all()
    for s in SESSIONS:
        np.testing.assert_allclose(coef.sel(session=s, alpha=1.0).values, _expected(s, 1.0))
    with pytest.raises(RuntimeError, match="alpha 0.1 is rejected"):
        out.raise_failures()


def test_worker_killed_mid_sweep_is_retried(client, tmp_path):
    grid = {"alpha": [0.1, 1.0], "marker_dir": [str(tmp_path)]}
    out = sweep(flaky_fit, SESSIONS, grid, client=client)
    assert (tmp_path / "died-once").exists()  # a worker really died
    assert out.failures == []
    coef = out.results["coef"].squeeze("marker_dir", drop=True)
    for s in SESSIONS:
        for a in (0.1, 1.0):
            np.testing.assert_allclose(coef.sel(session=s, alpha=a).values, _expected(s, a))


def test_bad_grid_is_rejected(client):
    with pytest.raises(ValueError, match="grid\\['alpha'\\] must be a non-empty list"):
        sweep(ridge_fit, SESSIONS, {"alpha": []}, client=client)
    with pytest.raises(ValueError, match="sessions is empty"):
        sweep(ridge_fit, {}, {"alpha": [1.0]}, client=client)


def test_slurm_job_script():
    pytest.importorskip("dask_jobqueue")
    from neuroana.parallel import slurm_cluster

    cluster = slurm_cluster(cores=4, memory="16GB", walltime="01:00:00", queue="gpu", gpus=1)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p gpu" in script
    assert "#SBATCH --cpus-per-task=4" in script
    assert "#SBATCH --gres=gpu:1" in script
    assert "#SBATCH -t 01:00:00" in script
    assert "--nthreads 4" in script


def test_sweep_analysis_matches_the_runner_fit(client, tmp_path):
    """A registered analysis swept by name over NWB files gives the fits made one by one."""
    from neuroana.datasets import make_session
    from neuroana.hmmglm.pipeline import read_inputs
    from neuroana.io import write_session_nwb
    from neuroana.parallel import sweep_analysis
    from neuroana.runner import fit_analysis

    files = {
        k: write_session_nwb(
            make_session(random_state=seed, duration=20.0, n_units=3, n_rois=4),
            tmp_path / f"{k}.nwb",
        )
        for k, seed in (("a", 0), ("b", 1))
    }
    data = {"bin_size": 0.1, "interval": ["epochs", "wake"], "trial_length": 5}
    params = {"max_iter": 3, "n_restarts": 1, "device": "cpu", "random_state": 0}
    out = sweep_analysis(
        "hmmglm", files, {"n_states": [1, 2]}, client=client, data=data, params=params
    )
    assert out.failures == []
    got = out.results["transition"]
    assert got.dims[:2] == ("session", "n_states")
    for k, p in files.items():
        inputs = read_inputs([p], {**data, "interval": ("epochs", "wake")})
        for n in (1, 2):
            _, ds, _ = fit_analysis("hmmglm", inputs, {**params, "n_states": n})
            sel = got.sel(session=k, n_states=n).isel(state=slice(n), state_next=slice(n))
            np.testing.assert_allclose(sel.values, ds["transition"].values, rtol=1e-6)
    with pytest.raises(ValueError, match=r"data: unknown key\(s\) \['bins'\]"):
        sweep_analysis("hmmglm", files, client=client, data={"bins": 1})
