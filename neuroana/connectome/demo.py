"""``demo_section``: the connectome pipeline on small synthetic traces, scored against the truth."""

from __future__ import annotations

import time

import numpy as np


def demo_section(rng_seed: int = 0, quick: bool = False) -> dict:
    """Run :class:`DynamicConnectome` on planted traces and return recovered-vs-true scores.

    Two planted problems, scored against their truth:

    * tensor level (:func:`~neuroana.datasets.connectome_sim.make_connectome_tensor`, 10-30%
      missing neurons per animal): factor match score (FMS) of the NTF against the true factors;
    * trace level (:func:`~neuroana.datasets.connectome_sim.make_connectome_traces`): the rank
      :func:`~neuroana.connectome.select_rank` recommends vs the number of planted episodes, and the
      community NMI per episode (each episode matched to the component whose window factor
      correlates best with the episode indicator).

    Returns a dict: ``rank_true``, ``rank_chosen``, ``fms`` (tensor level), ``nmi_per_episode``,
    ``ntf_rel_error``, ``passed`` (rank right, FMS >= 0.95, every NMI >= 0.9), ``seconds`` and
    ``fitted`` (the fitted ``DynamicConnectome``, for figures).

    Examples
    --------
    >>> from neuroana.connectome.demo import demo_section
    >>> out = demo_section(quick=True)
    >>> out["rank_chosen"] == out["rank_true"], out["fms"] >= 0.95, min(out["nmi_per_episode"]) >= 0.9
    (True, True, True)
    """
    from neuroana.connectome.estimator import NonNegativeTensorFactorization
    from neuroana.connectome.matching import factor_match_score
    from neuroana.connectome.model import DynamicConnectome
    from neuroana.datasets.connectome_sim import make_connectome_tensor, make_connectome_traces

    t0 = time.perf_counter()
    tsim = make_connectome_tensor(
        n_rois=20 if quick else 30, n_windows=30 if quick else 40, random_state=rng_seed
    )
    est = NonNegativeTensorFactorization(
        tsim.factors[0].shape[1],
        n_restarts=3,
        max_iter=200,
        tol=1e-5,
        device="cpu",
        random_state=rng_seed,
    ).fit(tsim.tensor)
    fms = float(factor_match_score(tsim.factors, est.factor_list()).score)
    n_ep = 2 if quick else 3
    sim = make_connectome_traces(
        n_rois=20 if quick else 30,
        n_animals=3,
        n_episodes=n_ep,
        episode_duration=120.0,
        random_state=rng_seed,
    )
    dc = DynamicConnectome(
        window=30.0,
        step=15.0,
        affinity="differential",
        n_components="auto",
        ranks=tuple(range(1, n_ep + 3)),
        n_restarts=4,
        max_iter=300,
        n_runs=3,
        device="cpu",
        random_state=rng_seed,
    ).fit(sim.traces)
    scores = episode_scores(dc, sim)
    rank = int(dc.result_.attrs["rank"])
    return {
        "rank_true": n_ep,
        "rank_chosen": rank,
        "fms": fms,
        "nmi_per_episode": scores,
        "passed": bool(rank == n_ep and fms >= 0.95 and min(scores) >= 0.9),
        "ntf_rel_error": float(dc.ntf_.reconstruction_error_),
        "seconds": time.perf_counter() - t0,
        "fitted": dc,
    }


def episode_scores(dc, sim) -> list[float]:
    """Per-episode NMI between the planted partition and the best-matching component's communities."""
    from sklearn.metrics import normalized_mutual_info_score

    wf = dc.result_["window_factor"]
    t = wf["time"].values
    out = []
    for e in range(sim.episodes.sizes["episode"]):
        ind = (t >= float(sim.episodes["start"][e])) & (t < float(sim.episodes["stop"][e]))
        corr = [np.corrcoef(ind.astype(float), wf.values[:, r])[0, 1] for r in range(wf.shape[1])]
        r = int(np.nanargmax(corr))
        found = dc.result_["communities"].values[r]
        placed = found >= 0  # ROIs never recorded with another ROI have no estimable community
        out.append(
            float(normalized_mutual_info_score(sim.communities.values[e][placed], found[placed]))
        )
    return out
