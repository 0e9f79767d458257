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
