"""observe_fits: a client sees every fit_loop iteration of an estimator's fit and can cancel it."""

import threading

import numpy as np
import pytest
import torch

from neuroana.backend import FitCancelled, fit_loop, observe_fits


def _quadratic():
    state = {"x": torch.zeros(2, dtype=torch.float64)}
    target = torch.tensor([1.0, -2.0], dtype=torch.float64)

    def step(i):
        state["x"] = state["x"] - 0.1 * 2 * (state["x"] - target)
        return {"loss": float(((state["x"] - target) ** 2).sum()) + 1.0, "i": float(i)}

    return state, step


def test_reports_every_iteration_with_its_metrics():
    _, step = _quadratic()
    seen = []
    with observe_fits(seen.append):
        res = fit_loop(step, max_iter=50, tol=1e-3, verbose=False, desc="quad")
    assert res.converged and res.n_iter < 50  # stopped early: the reports stop with it
    assert [p.iteration for p in seen] == list(range(res.n_iter + 1))
    assert {(p.run, p.max_iter, p.desc) for p in seen} == {(1, 50, "quad")}
    assert seen[0].metrics == {} and seen[0].value is None
    np.testing.assert_array_equal([p.value for p in seen[1:]], res.history["loss"].values)
    # outside the block nothing is reported
    fit_loop(step, max_iter=3, verbose=False)
    assert len(seen) == res.n_iter + 1


def test_hmmglm_reports_are_its_history():
    from neuroana.datasets.hmmglm_sim import simulate_hmmglm
    from neuroana.hmmglm import HMMGLM

    sim = simulate_hmmglm(2, 4, n_trials=3, n_time=200, random_state=0)
    seen = []
    est = HMMGLM(2, prior="gaussian", n_restarts=2, max_iter=6, random_state=0, verbose=False)
    with observe_fits(seen.append):
        est.fit(sim.spikes)
    runs = sorted({p.run for p in seen})
    assert runs == [1, 2]  # the no-prior EM, then the Gaussian-prior EM
    for r in runs:
        its = [p.iteration for p in seen if p.run == r]
        assert its == list(range(len(its))) and its[-1] <= 6
        assert {p.monitor for p in seen if p.run == r} == {"objective"}
    reported = [p.metrics["objective"] for p in seen if p.iteration > 0]
    np.testing.assert_array_equal(reported, est.history_["objective"].values)


def test_cancel_stops_the_whole_fit_and_keeps_a_resumable_checkpoint(tmp_path):
    state, step = _quadratic()
    seen = []

    def stop():
        return len(seen) > 4  # the start report and 4 iterations

    gs, ss = (lambda: {"x": state["x"].clone()}), (lambda s: state.update(x=s["x"].clone()))
    ckpt = tmp_path / "fit.ckpt"
    with observe_fits(seen.append, cancel=stop), pytest.raises(FitCancelled, match="iteration 4"):
        fit_loop(step, max_iter=20, checkpoint=ckpt, get_state=gs, set_state=ss, verbose=False)
    assert [p.iteration for p in seen] == [0, 1, 2, 3, 4]

    ref_state, ref_step = _quadratic()
    ref = fit_loop(ref_step, max_iter=20, verbose=False)
    res = fit_loop(
        step, max_iter=20, checkpoint=ckpt, resume=True, get_state=gs, set_state=ss, verbose=False
    )
    np.testing.assert_array_equal(res.history["loss"].values, ref.history["loss"].values)
    torch.testing.assert_close(state["x"], ref_state["x"], rtol=0, atol=0)


def test_cancel_ends_an_estimator_fit_without_fitted_attributes():
    from neuroana.datasets.hmmglm_sim import simulate_hmmglm
    from neuroana.hmmglm import HMMGLM

    sim = simulate_hmmglm(2, 4, n_trials=2, n_time=200, random_state=0)
    seen = []
    est = HMMGLM(2, n_restarts=2, max_iter=50, tol=0.0, random_state=0, verbose=False)
    with observe_fits(seen.append, cancel=lambda: len(seen) > 2), pytest.raises(FitCancelled):
        est.fit(sim.spikes)
    assert [p.iteration for p in seen] == [0, 1, 2]
    assert not hasattr(est, "history_") and not hasattr(est, "weights_")


def test_the_hook_is_local_to_the_thread_that_set_it():
    seen, other = [], []

    def fit_elsewhere():
        with observe_fits(other.append):
            fit_loop(_quadratic()[1], max_iter=2, verbose=False)

    with observe_fits(seen.append):
        t = threading.Thread(target=fit_elsewhere)
        t.start()
        t.join()
        fit_loop(_quadratic()[1], max_iter=3, verbose=False)
    assert [p.iteration for p in seen] == [0, 1, 2, 3]
    assert [p.iteration for p in other] == [0, 1, 2]
