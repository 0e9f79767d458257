"""Dynamic functional connectomes (Dyballa et al., ICLR 2024).

Pairwise affinities per time window -> non-negative tensor factorisation (pair x window x animal)
-> weighted community detection on each component's pair factor. The public entry points are
:class:`DynamicConnectome` and :class:`NonNegativeTensorFactorization` (:mod:`.estimator`); the
cores are :mod:`.affinity`, :mod:`.ntf`, :mod:`.rank`, :mod:`.communities`, :mod:`.episodes`,
:mod:`.matching` and :mod:`.baseline`. Names are imported lazily (PEP 562). The
functional NTF is :func:`neuroana.connectome.ntf.ntf` (the package attribute ``ntf`` is that
module, so the function is not re-exported under the same name).
"""

from neuroana._lazy import attach

_LAZY = {
    "Alignment": "neuroana.connectome.matching",
    "CommunityResult": "neuroana.connectome.communities",
    "ConnectomeInputError": "neuroana.connectome.errors",
    "DynamicConnectome": "neuroana.connectome.estimator",
    "EpisodeGroups": "neuroana.connectome.episodes",
    "Epochs": "neuroana.connectome.episodes",
    "NTFFit": "neuroana.connectome.ntf",
    "NonNegativeTensorFactorization": "neuroana.connectome.estimator",
    "RankSelection": "neuroana.connectome.rank",
    "as_epochs": "neuroana.connectome.episodes",
    "compute_affinity": "neuroana.connectome.affinity",
    "detect_communities": "neuroana.connectome.communities",
    "episode_groups": "neuroana.connectome.episodes",
    "factor_match_score": "neuroana.connectome.matching",
    "modularity": "neuroana.connectome.communities",
    "pair_to_matrix": "neuroana.connectome.affinity",
    "per_animal_communities": "neuroana.connectome.baseline",
    "select_rank": "neuroana.connectome.rank",
    "stack_animals": "neuroana.connectome.affinity",
}
__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
