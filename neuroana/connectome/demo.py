"""``neuroana demo`` section: the connectome pipeline on the ROI traces of the demo's NWB session,
scored against the planted communities."""

from __future__ import annotations

import numpy as np


def demo_section(ctx) -> dict:
    """The connectome on the demo session's ROI traces, and the NTF on a planted tensor.

    * From the session file (:func:`neuroana.connectome.pipeline.read_inputs`): the rank
      :class:`~neuroana.connectome.DynamicConnectome` selects next to the number of planted
      episodes (the full demo asks for a sensible rank, at least one component per episode; the
      quick demo fixes it), and the community NMI per
      episode (>= 0.9; each episode matched to the component whose window factor correlates best
      with the episode indicator). Windows are 3/8 of an episode, steps a third of a window.
    * Tensor level (:func:`~neuroana.datasets.connectome_sim.make_connectome_tensor`, 10-30%
      missing neurons per animal): the factor match score of the NTF against the true factors
      (>= 0.95).

    ``ctx`` is the :class:`neuroana.demo.DemoContext` (the section contract of
    :mod:`neuroana.analysis`): the ROI traces are read from ``ctx.nwb_path``, the planted episodes
    and communities come from ``ctx.session``. Returns the rows ``check -> score``.
    """
    from neuroana.connectome import DynamicConnectome
    from neuroana.connectome.pipeline import read_inputs
    from neuroana.demo import score

    s = ctx.session
    traces = read_inputs([ctx.nwb_path], {})["traces"]
    n_ep = len(s.episodes)
    episode = float((s.episodes["stop_time"] - s.episodes["start_time"]).min())
    window = 3 * episode / 8
    dc = DynamicConnectome(
        window=window,
        step=window / 3,
        affinity="differential",
        n_components=n_ep if ctx.quick else "auto",
        ranks=tuple(range(1, n_ep + 3)),
        n_restarts=4,
        max_iter=300,
        n_runs=3,
        device="cpu",
        random_state=0,
    ).fit(traces)
    rank = int(dc.result_.attrs["rank"])
    out = {
        "NTF factor match score (planted tensor)": score(
            (fms := _tensor_fms(ctx.quick)), 1.0, ok=fms >= 0.95
        ),
        # the quick demo fixes the rank (rank selection needs the full demo's longer episodes);
        # the full demo asks for a sensible rank: at least one component per episode and at most
        # max(8, 2 x episodes + 2) (a stable rank rule may split an episode over two components)
        "rank chosen": score(
            rank, n_ep, ok=None if ctx.quick else n_ep <= rank <= max(8, 2 * n_ep + 2)
        ),
    }
    truth = _Truth(s.episodes, s.communities)
    for k, nmi in enumerate(episode_scores(dc, truth)):
        out[f"community NMI, episode {k}"] = score(nmi, 1.0, ok=nmi >= 0.9)
    _figures(ctx, dc.result_)
    return out


class _Truth:
    """The session's planted episodes and communities in the layout :func:`episode_scores` reads."""

    def __init__(self, episodes, communities):
        import xarray as xr

        self.episodes = xr.Dataset(
            {
                "start": ("episode", episodes["start_time"].to_numpy()),
                "stop": ("episode", episodes["stop_time"].to_numpy()),
            }
        )
        self.communities = communities


def _tensor_fms(quick: bool, rng_seed: int = 0) -> float:
    from neuroana.connectome.estimator import NonNegativeTensorFactorization
    from neuroana.connectome.matching import factor_match_score
    from neuroana.datasets.connectome_sim import make_connectome_tensor

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
    return float(factor_match_score(tsim.factors, est.factor_list()).score)


def _figures(ctx, result) -> None:
    import matplotlib.pyplot as plt

    from neuroana.viz.connectome import plot_factors, plot_sorted_affinity

    fig, _ = plot_factors(result)
    ctx.save_figure("connectome", fig, "connectome_factors", "NTF window and animal factors")
    plt.close(fig)
    fig, _ = plot_sorted_affinity(result)
    ctx.save_figure("connectome", fig, "connectome_affinity", "pair factors sorted by community")
    plt.close(fig)


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
