"""Demo section for ``neuroana demo``: simulate a small switching-state network and recover it."""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import linear_sum_assignment


def demo_section(rng_seed: int = 0, quick: bool = False) -> dict:
    """Simulate a small HMM-GLM dataset, fit the three models and score recovery against the truth.

    Returns a dict with, per model (``"none"``, ``"gaussian"``, ``"onehot"``): the test
    log-likelihood per bin next to the true-parameter value, Hungarian-matched state accuracy,
    weight MSE, per-state and prior adjacency accuracy next to the trivial all-"none" rate, and
    the fit's CPU seconds. ``out["fitted"]`` holds, for figures, the one-hot model, the test spikes,
    the true test states and the simulation.

    Examples
    --------
    >>> from neuroana.hmmglm.demo import demo_section
    >>> out = demo_section(quick=True)
    >>> out["onehot"]["state_accuracy"] > 0.9
    True
    """
    from neuroana.datasets.hmmglm_sim import simulate_hmmglm
    from neuroana.hmmglm import HMMGLM

    K, N = 3, 8
    n_trials, n_time = (10, 400) if quick else (16, 800)
    sim = simulate_hmmglm(K, N, n_trials=2 * n_trials, n_time=n_time, random_state=rng_seed)
    train, test = sim.spikes[:n_trials], sim.spikes[n_trials:]
    states_tr, states_te = sim.states.values[:n_trials], sim.states.values[n_trials:]
    truth = HMMGLM.from_params(sim.weights, sim.bias, sim.transition, link="sigmoid")
    out: dict = {
        "n_states": K,
        "n_units": N,
        "n_train_bins": n_trials * n_time,
        "true_test_ll_per_bin": truth.score(test),
        "trivial_adjacency_accuracy": float((sim.adjacency == 0).mean()),
        "trivial_prior_adjacency_accuracy": float((sim.anatomical_adjacency == 0).mean()),
    }
    for prior in ("none", "gaussian", "onehot"):
        t0 = time.process_time()
        m = HMMGLM(K, prior=prior, link="sigmoid", n_restarts=3, random_state=rng_seed)
        m.fit(train)
        cpu = time.process_time() - t0
        C = np.zeros((K, K))
        np.add.at(C, (states_tr.ravel(), m.predict_states(train).values.ravel()), 1)
        perm = linear_sum_assignment(-C)[1]
        acc = float((np.argsort(perm)[m.predict_states(test).values] == states_te).mean())
        out[prior] = {
            "test_ll_per_bin": m.score(test),
            "state_accuracy": acc,
            "weight_mse": float(((m.weights_.values[perm] - sim.weights) ** 2).mean()),
            "adjacency_accuracy": float((m.adjacency_.values[perm] == sim.adjacency).mean()),
            "prior_adjacency_accuracy": float(
                (m.prior_adjacency_.values == sim.anatomical_adjacency).mean()
            ),
            "cpu_seconds": cpu,
        }
        if prior == "onehot":
            out["fitted"] = {
                "model": m,
                "test": test,
                "states_test": states_te,
                "sim": sim,
                "perm": perm,
            }
    return out
