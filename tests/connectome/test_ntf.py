"""NTF exactness: sklearn NMF objective, mask invariance, planted recovery, loss identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroana.connectome import (
    ConnectomeInputError,
    NonNegativeTensorFactorization,
    factor_match_score,
)
from neuroana.connectome.affinity import subtract_floor
from neuroana.connectome.ntf import ntf, refit_factor
from neuroana.datasets.connectome_sim import make_connectome_tensor


def test_two_way_matches_sklearn_nmf_objective():
    from sklearn.decomposition import NMF

    rng = np.random.default_rng(0)
    x = rng.random((40, 3)) @ rng.random((3, 30)) + 0.05 * rng.random((40, 30))
    nmf = NMF(3, init="nndsvda", solver="cd", tol=1e-10, max_iter=5000, random_state=0).fit(x)
    sk = np.linalg.norm(x - nmf.transform(x) @ nmf.components_)
    fit = ntf(x, 3, n_restarts=8, tol=1e-10, max_iter=5000, device="cpu", random_state=0)
    ours = fit.rel_error * np.linalg.norm(x)
    # our objective reported from Grams+MTTKRP equals the dense residual
    a, b = fit.factors
    dense = np.linalg.norm(x - (a * fit.weights) @ b.T)
    assert ours == pytest.approx(dense, rel=1e-6)
    assert ours <= sk * (1 + 1e-4)
    assert ours == pytest.approx(sk, rel=1e-3)


def test_masked_entries_have_no_influence():
    rng = np.random.default_rng(1)
    x = np.einsum("ir,jr,kr->ijk", rng.random((15, 2)), rng.random((12, 2)), rng.random((6, 2)))
    x += 0.05 * rng.random(x.shape)
    mask = rng.random(x.shape) > 0.3
    y = x.copy()
    y[~mask] = rng.random((~mask).sum()) * 100.0  # garbage where masked
    kw = dict(n_restarts=2, max_iter=50, tol=0, device="cpu", random_state=3)
    f1 = ntf(x, 2, mask=mask, **kw)
    f2 = ntf(y, 2, mask=mask, **kw)
    f3 = ntf(np.where(mask, x, np.nan), 2, **kw)
    for a, b, c in zip(f1.factors, f2.factors, f3.factors, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-12)
    # the reported error is the masked objective, checked densely
    xh = np.einsum("ir,jr,kr,r->ijk", *f1.factors, f1.weights)
    dense = np.linalg.norm((x - xh)[mask]) / np.linalg.norm(x[mask])
    assert f1.rel_error == pytest.approx(dense, rel=1e-8)


def test_masked_hals_is_monotone_and_fits_observed():
    rng = np.random.default_rng(2)
    x = np.einsum("ir,jr,kr->ijk", rng.random((20, 3)), rng.random((10, 3)), rng.random((8, 3)))
    mask = rng.random(x.shape) > 0.4
    kw = dict(n_restarts=4, tol=1e-10, max_iter=1500, device="cpu", random_state=0)
    fit = ntf(x, 3, mask=mask, extrapolate=False, **kw)
    loss = fit.history["loss"].values
    assert np.all(np.diff(loss) <= 1e-9 * loss[:-1] + 1e-12 * loss[0])
    xh = np.einsum("ir,jr,kr,r->ijk", *fit.factors, fit.weights)
    # exact low-rank data: the held-out (masked) entries are predicted too
    assert np.linalg.norm((x - xh)[~mask]) / np.linalg.norm(x[~mask]) < 1e-2


@pytest.mark.parametrize("init", ["random", "nndsvd"])
def test_planted_recovery_fms(init):
    sim = make_connectome_tensor(n_rois=24, n_windows=40, n_animals=4, random_state=0)
    est = NonNegativeTensorFactorization(
        3, n_restarts=4, init=init, max_iter=400, tol=1e-6, device="cpu", random_state=0
    ).fit(sim.tensor)
    score = factor_match_score(sim.factors, est.factor_list()).score
    assert score >= 0.95
    assert est.factors_["pair_factor"].dims == ("pair", "component")
    assert "roi_i" in est.factors_["pair_factor"].coords
    assert est.history_.sizes["iteration"] == est.n_iter_


def test_four_way_tensor_exact():
    rng = np.random.default_rng(4)
    f = [rng.random((s, 2)) for s in (7, 6, 5, 4)]
    x = np.einsum("ir,jr,kr,lr->ijkl", *f)
    fit = ntf(x, 2, n_restarts=6, tol=1e-12, max_iter=3000, device="cpu", random_state=0)
    assert fit.rel_error < 1e-4
    assert (
        factor_match_score(
            f, [a * (fit.weights if n == 0 else 1) for n, a in enumerate(fit.factors)]
        ).score
        > 0.99
    )


def test_fms_oracle_permutation_and_scale():
    rng = np.random.default_rng(0)
    f = [rng.random((6, 3)), rng.random((5, 3))]
    g = [f[0][:, [1, 2, 0]] * 3.0, f[1][:, [1, 2, 0]] / 3.0]
    al = factor_match_score(f, g)
    assert al.score == pytest.approx(1.0)
    assert al.permutation.tolist() == [2, 0, 1]
    h = [f[0] * [1.0, 1.0, 2.0], f[1]]  # component 2 weight doubled -> its similarity is 1/2
    assert factor_match_score(f, h).similarities[2] == pytest.approx(0.5)


def test_bad_inputs():
    x = np.random.default_rng(0).random((5, 4, 3))
    with pytest.raises(ConnectomeInputError, match="negative"):
        ntf(x - 0.5, 2, device="cpu")
    with pytest.raises(ConnectomeInputError, match="shape"):
        ntf(x, 2, mask=np.ones((5, 4)), device="cpu")
    with pytest.raises(ConnectomeInputError, match="rank"):
        ntf(x, 0, device="cpu")
    with pytest.raises(ConnectomeInputError, match="init"):
        ntf(x, 2, init="svd", device="cpu")


@pytest.mark.gpu
def test_cpu_and_gpu_agree():
    sim = make_connectome_tensor(random_state=0)
    kw = dict(n_restarts=2, max_iter=40, tol=0, random_state=0, dtype="float64")
    init = [np.random.default_rng(0).random((2, s, 3)) for s in sim.tensor.shape]
    a = ntf(sim.tensor, 3, init=init, device="cpu", **kw)
    b = ntf(sim.tensor, 3, init=init, device="cuda", **kw)
    assert torch.cuda.is_available()
    for fa, fb in zip(a.factors, b.factors, strict=True):
        np.testing.assert_allclose(fa, fb, rtol=1e-6, atol=1e-8)


def test_gpu_benchmark_code_runs_on_cpu_at_small_size():
    """benchmarks/ntf_gpu.py (the paper-scale GPU check) runs its CUDA code path on the CPU."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "benchmarks/ntf_gpu.py", "--device", "cpu", "--small", "--iters", "3"]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1].removeprefix("RESULT "))
    assert res["ms_per_iteration_1_restarts"] > 0 and res["ms_per_iteration_3_restarts"] > 0
    errs = {row["rank"]: row["best_rel_error"] for row in res["sweep"]}
    # planted rank 4 with 10 % |noise|: the error falls with rank and reaches the noise level
    assert errs[2] > errs[3] > errs[4]
    assert errs[4] < 0.05


def test_tree_mttkrps_and_reduced_weight_grams_match_brute_force():
    """Dimension-tree MTTKRPs (pivot not first, 4-way) and the weighted row Grams with W stored
    reduced along the modes it is constant on equal dense einsums."""
    from neuroana.connectome._hals import Problem

    rng = np.random.default_rng(5)
    shape, r, b = (5, 9, 4, 3), 3, 2
    x = torch.as_tensor(rng.random(shape))
    # missing (i, k, l) fibres: constant along mode 1 (the pivot) and varying elsewhere
    w = torch.as_tensor((rng.random((5, 1, 4, 3)) > 0.3).astype(float)).expand(shape).clone()
    facs = [torch.as_tensor(rng.random((b, s, r))) for s in shape]
    letters = "ijkl"
    for weights in (None, w):
        prob = Problem(x, weights)
        assert prob.pivot == 1
        if weights is not None:
            assert prob.w_shape == (5, 1, 4, 3)
        xw = x if weights is None else weights * x
        t = prob.xt.partial(facs[1])
        for n in range(4):
            others = [m for m in range(4) if m != n]
            spec = "ijkl," + ",".join(f"b{letters[m]}r" for m in others) + f"->b{letters[n]}r"
            want = torch.einsum(spec, xw, *[facs[m] for m in others])
            if n == 1:
                got = prob.xt.pivot_mttkrp(facs)
            else:
                hats = list(facs)
                got = prob.xt.mode_mttkrp(t, hats, n)
            torch.testing.assert_close(got, want)
            if weights is None:
                continue
            spec = (
                "ijkl,"
                + ",".join(f"b{letters[m]}r,b{letters[m]}s" for m in others)
                + f"->b{letters[n]}rs"
            )
            ops = [v for m in others for v in (facs[m], facs[m])]
            want_h = torch.einsum(spec, weights, *ops)
            wm = prob._wmats(facs)
            if n == 1:
                hp = prob.wt.pivot_mttkrp(wm)
            else:
                hp = prob.wt.mode_mttkrp(prob.wt.partial(prob.wmat(facs[1], 1)), wm, n)
            got_h = prob._unpack(hp, r).expand_as(want_h)
            torch.testing.assert_close(got_h, want_h)


def test_extrapolation_reaches_the_plain_hals_optimum_with_fewer_iterations():
    sim = make_connectome_tensor(
        n_rois=20, n_windows=30, n_animals=5, missing_fraction=(0.0, 0.0), random_state=1
    )
    kw = dict(n_restarts=1, tol=1e-9, max_iter=3000, device="cpu", random_state=0)
    her = ntf(sim.tensor, 3, **kw)
    plain = ntf(sim.tensor, 3, extrapolate=False, **kw)
    assert her.rel_error == pytest.approx(plain.rel_error, rel=1e-5)
    assert her.n_iter < plain.n_iter
    # the fibre-masked (reduced-weight) path keeps masked entries inert and reports the exact error
    rng = np.random.default_rng(0)
    arr = sim.tensor.values
    mask = np.broadcast_to(rng.random((arr.shape[0], 1, arr.shape[2])) > 0.2, arr.shape)
    assert np.isfinite(arr).all()  # (else NaNs would add entry-wise missing values)
    garbage = np.where(mask, arr, 1e3)
    f1 = ntf(arr, 3, mask=mask, **kw)
    f2 = ntf(garbage, 3, mask=mask, **kw)
    np.testing.assert_allclose(f1.factors[0], f2.factors[0], rtol=1e-10, atol=1e-12)
    xh = np.einsum("ir,jr,kr,r->ijk", *f1.factors, f1.weights)
    dense = np.linalg.norm((arr - xh)[mask]) / np.linalg.norm(arr[mask])
    assert f1.rel_error == pytest.approx(dense, rel=1e-8)


def test_thread_rule(monkeypatch):
    import os

    from neuroana.backend.threads import fit_threads
    from neuroana.connectome.ntf import _SMALL_WORK

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
        assert fit_threads(_SMALL_WORK - 1, small=_SMALL_WORK) == 1  # small problem
        assert fit_threads(_SMALL_WORK, small=_SMALL_WORK) == 2  # capped at the usable cores
        monkeypatch.setattr(os, "getloadavg", lambda: (2.5, 2.0, 2.0))
        assert fit_threads(_SMALL_WORK * 100, small=_SMALL_WORK) == 1  # saturated machine
        ntf(np.ones((4, 3, 2)), 1, max_iter=2, device="cpu")
        assert torch.get_num_threads() == 4  # restored
    finally:
        torch.set_num_threads(before)


def test_refit_on_the_floor_free_tensor_zeroes_an_animal_with_only_noise():
    """Oracle: animal 0 has no component-0 structure, only clipped noise. The CP animal factor of
    a fit to the clipped tensor keeps the noise floor; the refit to the signed floor-free tensor
    puts animal 0's loading near 0 and keeps the others'."""
    import xarray as xr

    rng = np.random.default_rng(0)
    n_pair, n_win = 300, 20
    pattern = (rng.random(n_pair) < 0.3).astype(float)
    animal = np.array([0.0, 1.0, 0.8])
    signal = 0.2 * np.einsum("p,w,a->pwa", pattern, np.ones(n_win), animal)
    raw = np.maximum(signal + rng.normal(0, 0.15, (n_pair, n_win, 3)), 0.0)
    signed = subtract_floor(xr.DataArray(raw, dims=("pair", "window", "animal")))
    clipped = np.maximum(signed.values, 0.0)
    fit = ntf(clipped, 1, n_restarts=2, random_state=0, device="cpu")
    cp = fit.factors[2][:, 0] / fit.factors[2][:, 0].max()
    assert cp[0] > 0.4  # the floor: what a reader of the plain CP factor would see
    unit, w = refit_factor(signed.values, fit.factors, fit.weights, mode=2)
    load = unit[:, 0] / unit[:, 0].max()
    assert load[0] < 0.1 and load[2] > 0.6, load
    np.testing.assert_allclose(load[2], 0.8, atol=0.1)
