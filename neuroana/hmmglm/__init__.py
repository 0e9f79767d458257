"""Switching brain states: HMM-GLMs with no prior, a Gaussian prior or a one-hot connectivity prior.

Li, Kim, Rodgers, Choi & Wu, "One-hot Generalized Linear Model for Switching Brain State
Discovery", ICLR 2024. The public entry point is :class:`HMMGLM` (:mod:`.estimator`); the cores are
:mod:`.inference` (forward-backward, Viterbi), :mod:`.emissions`, :mod:`.priors`, :mod:`.init` and
:mod:`.em`. Names are imported lazily (PEP 562).
"""

from neuroana._lazy import attach

_LAZY = {
    "HMMGLM": "neuroana.hmmglm.estimator",
    "HMMGLMInputError": "neuroana.hmmglm.errors",
    "exp_filter": "neuroana.hmmglm.emissions",
    "raised_cosine_basis": "neuroana.hmmglm.emissions",
}
__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
