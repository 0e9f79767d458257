"""Dynamic functional connectomes (Dyballa et al., ICLR 2024).

Pairwise affinities per time window -> non-negative tensor factorisation (pair x window x animal)
-> weighted community detection on each component's pair factor.
"""

from neuroana.connectome.errors import ConnectomeInputError
from neuroana.connectome.estimator import NonNegativeTensorFactorization
from neuroana.connectome.matching import Alignment, factor_match_score
from neuroana.connectome.ntf import NTFFit, ntf

__all__ = [
    "Alignment",
    "ConnectomeInputError",
    "NTFFit",
    "NonNegativeTensorFactorization",
    "factor_match_score",
    "ntf",
]

from neuroana.connectome.affinity import compute_affinity, pair_to_matrix  # noqa: E402
from neuroana.connectome.baseline import per_animal_communities  # noqa: E402
from neuroana.connectome.communities import CommunityResult, detect_communities  # noqa: E402
from neuroana.connectome.episodes import as_epochs, episode_groups  # noqa: E402
from neuroana.connectome.model import DynamicConnectome  # noqa: E402
from neuroana.connectome.rank import RankSelection, select_rank  # noqa: E402

__all__ += [
    "CommunityResult",
    "DynamicConnectome",
    "RankSelection",
    "as_epochs",
    "compute_affinity",
    "detect_communities",
    "episode_groups",
    "pair_to_matrix",
    "per_animal_communities",
    "select_rank",
]
