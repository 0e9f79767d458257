"""The per-animal baseline the episode communities are compared with.

Per animal and episode: Pearson correlation of the traces in non-overlapping windows inside the
episode, averaged over the windows, negatives set to 0, diagonal 0; normalised spectral
clustering (``sklearn.cluster.SpectralClustering`` on the precomputed affinity) with a **given**
number of communities. It knows the number of communities, which :class:`DynamicConnectome` has to
find, and it sees one animal at a time.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from neuroana.connectome.episodes import as_epochs
from neuroana.errors import ConnectomeInputError


def per_animal_communities(
    traces: Mapping[str, xr.DataArray],
    epochs,
    n_communities,
    *,
    window: float = 60.0,
    random_state: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Communities per episode and animal by windowed correlation + spectral clustering.

    Parameters
    ----------
    traces : mapping of animal -> ``("time", "roi")`` DataArray
        With a numeric ``time`` coordinate in seconds.
    epochs : DataFrame or sequence
        See :func:`neuroana.connectome.episodes.as_epochs`.
    n_communities : sequence of int
        The number of communities of every episode (given, not estimated).
    window : float
        Window length in seconds.

    Returns
    -------
    dict
        ``{episode name: {animal: labels aligned with that animal's roi coordinate}}``.

    Examples
    --------
    >>> from neuroana.datasets.connectome_sim import make_calcium_recordings
    >>> from neuroana.connectome.baseline import per_animal_communities
    >>> sim = make_calcium_recordings(n_neurons=12, n_animals=2, episode_durations=(120.0,),
    ...                               n_communities=(2,), non_participating=None)
    >>> out = per_animal_communities(sim.traces, sim.epochs, [2])
    >>> sorted(out["episode-0"])
    ['animal-0', 'animal-1']
    """
    from sklearn.cluster import SpectralClustering

    first = next(iter(traces.values()))
    t = first["time"].values.astype(float)
    ep = as_epochs(epochs, float(t[0]), float(t[-1]), tolerance=float(np.median(np.diff(t))))
    if len(n_communities) != len(ep.start):
        raise ConnectomeInputError(
            f"{len(n_communities)} community counts for {len(ep.start)} episodes"
        )
    fs = 1.0 / float(np.median(np.diff(t)))
    win = int(round(window * fs))
    out: dict[str, dict[str, np.ndarray]] = {}
    for e, name in enumerate(ep.name):
        out[name] = {}
        for animal, tr in traces.items():
            x = tr.transpose("time", "roi").values.astype(float)
            tt = tr["time"].values.astype(float)
            idx = np.flatnonzero((tt >= ep.start[e]) & (tt < ep.stop[e]))
            mats = []
            for s in range(idx[0], idx[-1] - win + 2, win):
                c = np.corrcoef(x[s : s + win].T)
                mats.append(np.maximum(np.nan_to_num(c), 0.0))
            if not mats:
                raise ConnectomeInputError(
                    f"episode {name!r} is shorter than one {window}-s window"
                )
            aff = np.mean(mats, axis=0)
            np.fill_diagonal(aff, 0.0)
            sc = SpectralClustering(
                int(n_communities[e]),
                affinity="precomputed",
                n_init=30,
                random_state=random_state,
            )
            out[name][animal] = sc.fit_predict(aff)
    return out
