"""``neuroana demo`` section: HMM-GLMs fitted to the units of the demo's NWB session.

The spikes are read from the session file with :func:`neuroana.hmmglm.pipeline.read_inputs` (wake
epoch, cut into trials); the ground truth (hidden states, couplings, rates) comes from the
generator. The session's spikes follow the HMM-GLM with an exponential link and a one-bin history,
so the true parameters give a reference test log-likelihood.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

PRIORS = ("none", "gaussian", "onehot")


def demo_section(ctx) -> dict:
    """Fit the three priors on the session's wake spikes; score states, likelihood and adjacency.

    ``ctx``: the :class:`neuroana.demo.DemoContext` (spikes read from ``ctx.nwb_path``, hidden
    states and couplings from ``ctx.session``). Returns ``check -> neuroana.demo.score(...)`` rows:
    per prior the test log-likelihood per bin next to the true parameters' (within 0.025 nats per
    unit), the Hungarian-matched state accuracy (> 0.85); the one-hot model's adjacency accuracy
    next to the all-"none" rate.
    """
    from neuroana.demo import score
    from neuroana.hmmglm import HMMGLM
    from neuroana.hmmglm.pipeline import read_inputs

    s = ctx.session
    bs = s.params["bin_size"]
    X = read_inputs(
        [ctx.nwb_path],
        {
            "bin_size": bs,
            "interval": ("epochs", "wake"),
            "trial_length": 5.0 if ctx.quick else 10.0,
        },
    )["spikes"]
    n = X.sizes["trial"]
    n_train = n - max(1, n // 3)
    train, test = X.isel(trial=slice(0, n_train)), X.isel(trial=slice(n_train, None))
    first = np.round(X["trial_start"].values / bs).astype(int)
    states = np.stack([s.states.values[a : a + X.sizes["time"]] for a in first])
    K, N = s.params["n_states"], X.sizes["unit"]
    truth = HMMGLM.from_params(
        s.couplings.values,
        s.log_rates.values + np.log(bs),
        s.transition.values,
        link="exp",
        history=[[1.0]],
    )
    true_ll = truth.score(test)
    true_adj = np.sign(s.couplings.values)
    out = {}
    for prior in PRIORS:
        m = HMMGLM(
            K, prior=prior, link="exp", history=[[1.0]], n_restarts=2, device="cpu", random_state=0
        ).fit(train)
        C = np.zeros((K, K))
        np.add.at(C, (states[:n_train].ravel(), m.predict_states(train).values.ravel()), 1)
        perm = linear_sum_assignment(-C)[1]
        acc = float((np.argsort(perm)[m.predict_states(test).values] == states[n_train:]).mean())
        ll = m.score(test)
        out[f"{prior}: test LL/bin (vs true params)"] = score(
            ll, true_ll, ok=ll >= true_ll - 0.025 * N
        )
        out[f"{prior}: state accuracy"] = score(acc, 1.0, ok=acc > 0.85)
        if prior == "onehot":
            adj = float((m.adjacency_.values[perm] == true_adj).mean())
            trivial = float((true_adj == 0).mean())
            out["onehot: adjacency accuracy (vs all-none rate)"] = score(
                adj, trivial, ok=adj > trivial
            )
            _figures(ctx, m, test, states[n_train:][0], perm)
    return out


def _figures(ctx, m, test, true_states, perm) -> None:
    import matplotlib.pyplot as plt

    from neuroana.viz.hmmglm import plot_connectivity, plot_states

    inferred = m.predict_states(test).isel(trial=0)
    fig, _ = plot_states(test.isel(trial=0), inferred, true=perm[true_states])
    ctx.save_figure("hmmglm", fig, "hmmglm_states", "one-hot HMM-GLM: inferred vs true states")
    plt.close(fig)
    fig, _ = plot_connectivity(m.weights_, m.prior_adjacency_)
    ctx.save_figure("hmmglm", fig, "hmmglm_weights", "per-state weights and the shared connectome")
    plt.close(fig)
