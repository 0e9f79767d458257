"""Scoring of episode communities against planted truth (tests and benchmarks; never the package)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import normalized_mutual_info_score


def episode_nmi(result, truth_by_episode: list[dict]) -> list[float]:
    """NMI per episode between ``result_["episode_communities"]`` and ``{label: community}``.

    Scored on the neurons the method placed (label >= 0) that the truth knows.
    """
    out = []
    rois = [str(r) for r in result["roi"].values]
    for e, truth in enumerate(truth_by_episode):
        found = result["episode_communities"].values[e]
        keep = [k for k, r in enumerate(rois) if r in truth and found[k] >= 0]
        if not keep:  # no component group (or nothing placed): no communities found
            out.append(0.0)
            continue
        out.append(
            float(
                normalized_mutual_info_score(
                    [truth[rois[k]] for k in keep], [int(found[k]) for k in keep]
                )
            )
        )
    return out


def baseline_nmi(traces: dict, epochs, truth_by_episode, n_communities, participating) -> list:
    """Mean NMI over participating animals of the per-animal correlation + spectral baseline."""
    from neuroana.connectome.baseline import per_animal_communities

    per = per_animal_communities(traces, epochs, n_communities)
    out = []
    for e, (_, by_animal) in enumerate(per.items()):
        scores = []
        for animal, labels in by_animal.items():
            if animal not in participating[e]:
                continue
            rois = [str(r) for r in traces[animal]["roi"].values]
            truth = truth_by_episode[e]
            scores.append(normalized_mutual_info_score([truth[r] for r in rois], labels))
        out.append(float(np.mean(scores)))
    return out
