"""Switching brain states: HMM-GLMs with no prior, a Gaussian prior or a one-hot connectivity prior.

Li, Kim, Rodgers, Choi & Wu, "One-hot Generalized Linear Model for Switching Brain State
Discovery", ICLR 2024. The public entry point is :class:`HMMGLM`.
"""

from neuroana.hmmglm.data import HMMGLMInputError
from neuroana.hmmglm.model import HMMGLM

__all__ = ["HMMGLM", "HMMGLMInputError"]
