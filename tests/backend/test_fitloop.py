"""The shared fit loop on toy problems whose optimum is known."""

import numpy as np
import pytest
import torch

from neuroana.backend import fit_loop, make_generators, resolve_device, resolve_dtype


def _quadratic(target=3.0, lr=0.1):
    """Gradient descent on (x - target)^2; the optimum is x = target."""
    state = {"x": 0.0}

    def step(i):
        state["x"] -= lr * 2 * (state["x"] - target)
        return {"loss": (state["x"] - target) ** 2 + 1.0}

    return state, step


def test_converges_to_known_optimum():
    state, step = _quadratic()
    res = fit_loop(step, max_iter=1000, tol=1e-12, verbose=False)
    assert res.converged and res.stop_reason == "converged"
    assert abs(state["x"] - 3.0) < 1e-5
    assert res.history["loss"].sizes["iteration"] == res.n_iter
    assert np.all(np.diff(res.history["loss"].values) <= 0)


def test_max_iter_stops_without_convergence():
    state, step = _quadratic(lr=1e-4)
    res = fit_loop(step, max_iter=5, tol=1e-12, verbose=False)
    assert res.n_iter == 5 and not res.converged and res.stop_reason == "max_iter"


def test_early_stopping_keeps_best_state():
    # the held-out metric is best at iteration 7, then worsens
    state = {"i": None}

    def step(i):
        state["i"] = i
        return {"loss": 1.0 / (i + 1), "val": (i - 7) ** 2}

    res = fit_loop(
        step,
        max_iter=100,
        early_stop="val",
        patience=3,
        get_state=lambda: dict(state),
        verbose=False,
    )
    assert res.stop_reason == "early_stop"
    assert res.best_iteration == 7 and res.best_state == {"i": 7}
    assert res.n_iter == 11


def test_callback_stops():
    _, step = _quadratic()
    res = fit_loop(step, max_iter=100, callbacks=[lambda i, m: i == 4], verbose=False)
    assert res.stop_reason == "callback" and res.n_iter == 5


def test_nan_metric_raises():
    with pytest.raises(ValueError, match="diverged"):
        fit_loop(lambda i: {"loss": float("nan")}, max_iter=3, verbose=False)


def test_missing_metric_raises():
    with pytest.raises(ValueError, match="'loss' is missing"):
        fit_loop(lambda i: {"nll": 1.0}, max_iter=3, verbose=False)


def test_checkpoint_interrupt_resume_equals_uninterrupted(tmp_path):
    ckpt = tmp_path / "fit.ckpt"

    def make():
        state = {"x": torch.zeros(3, dtype=torch.float64)}
        target = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

        def step(i):
            state["x"] = state["x"] - 0.1 * 2 * (state["x"] - target)
            return {"loss": float(((state["x"] - target) ** 2).sum())}

        def get_state():
            return {"x": state["x"].clone()}

        def set_state(s):
            state["x"] = s["x"].clone()

        return state, step, get_state, set_state

    ref_state, step, gs, ss = make()
    ref = fit_loop(step, max_iter=20, verbose=False, get_state=gs, set_state=ss)

    state, step, gs, ss = make()

    def interrupting(i):
        if i == 9:
            raise KeyboardInterrupt
        return step(i)

    with pytest.raises(KeyboardInterrupt):
        fit_loop(
            interrupting, max_iter=20, checkpoint=ckpt, get_state=gs, set_state=ss, verbose=False
        )
    assert ckpt.exists()
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written is left

    state2, step2, gs2, ss2 = make()
    res = fit_loop(
        step2,
        max_iter=20,
        checkpoint=ckpt,
        resume=True,
        get_state=gs2,
        set_state=ss2,
        verbose=False,
    )
    assert res.n_iter == 20
    torch.testing.assert_close(state2["x"], ref_state["x"], rtol=0, atol=0)
    np.testing.assert_array_equal(res.history["loss"].values, ref.history["loss"].values)


def test_checkpoint_requires_state_functions(tmp_path):
    with pytest.raises(ValueError, match="get_state and set_state"):
        fit_loop(lambda i: {"loss": 1.0}, max_iter=2, checkpoint=tmp_path / "c.pt", verbose=False)


def test_device_and_dtype_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="not a device"):
        resolve_device("banana")
    assert resolve_dtype("float64") is torch.float64
    with pytest.raises(ValueError, match="not supported"):
        resolve_dtype("int3")


def test_generators_reproducible():
    a_np, a_t = make_generators(5)
    b_np, b_t = make_generators(5)
    assert a_np.random() == b_np.random()
    assert torch.equal(torch.rand(4, generator=a_t), torch.rand(4, generator=b_t))
    c_np, _ = make_generators(6)
    assert c_np.random() != make_generators(5)[0].random()
    with pytest.raises(ValueError, match="random_state"):
        make_generators("seed")
